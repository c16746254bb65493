import { defineConfig } from "vitest/config";

/** `npm test`: the gateway in workerd (vitest.config.ts) and the Node-side tools (vitest.node.config.ts), in one run. */
export default defineConfig({
  test: {
    projects: ["./vitest.config.ts", "./vitest.node.config.ts"],
    silent: "passed-only",
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
