import { defineConfig } from "vitest/config";

/** The Node-side tools (deploy:check, secrets:*, token:dynamic, the dev stack), tested in Node: part of `npm test`. */
export default defineConfig({
  test: {
    name: "scripts",
    include: ["scripts/test/**/*.test.{ts,mjs}"],
    environment: "node",
    // A few tests run a command (tsx, then wrangler's config reader: seconds on a busy machine).
    testTimeout: 30_000,
  },
});
