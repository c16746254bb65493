/**
 * Stands in for Node's `crypto` (wrangler.toml `[alias]`), which bcryptjs imports for a fallback Workers never reach;
 * the real module would load Node internals at every isolate start. Any use throws, naming this stand-in.
 */
export default new Proxy(
  {},
  {
    get(_, member) {
      throw new Error(`Node's crypto (${String(member)}) is not bundled: see the [alias] entry in wrangler.toml`);
    },
  },
);
