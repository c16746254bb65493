/**
 * Stands in for Node's `crypto` module (wrangler.toml `[alias]`): bcryptjs imports it for a random-bytes
 * fallback that Workers never reach (Web Crypto answers first, and the gateway only verifies hashes).
 * Importing the real module loads Node's crypto, stream and zlib internals at every isolate start. Any use
 * throws, naming this stand-in, so a dependency that really needs Node's crypto fails loudly.
 */
export default new Proxy(
  {},
  {
    get(_, member) {
      throw new Error(`Node's crypto (${String(member)}) is not bundled: see the [alias] entry in wrangler.toml`);
    },
  },
);
