/**
 * Stands in for Node's `crypto` module (wrangler.toml `[alias]`): bcryptjs imports it for a random-bytes
 * fallback that Workers never reach (Web Crypto answers first, and the gateway only verifies hashes).
 * Importing the real module loads Node's crypto, stream and zlib internals at every isolate start.
 */
export default {};
