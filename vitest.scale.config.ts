import { defineConfig, type ConfigEnv } from "vitest/config";
import testConfig from "./vitest.config";

/**
 * `npm run scale-sim`: the capacity model's simulation (docs/capacity.md); not part of `npm test`. It runs in the
 * tests' workerd (vitest.config.ts: plugin, bindings, migrations, seed) with its own files and reporter.
 * `SCALE_SIM_TIMES=10 npm run scale-sim` runs it at ten times the target.
 */
export default defineConfig(async (configEnv: ConfigEnv) => {
  const tests = await testConfig(configEnv);
  return {
    ...tests,
    define: { __SCALE_SIM_TIMES__: JSON.stringify(process.env.SCALE_SIM_TIMES ?? "1") },
    test: {
      ...tests.test,
      include: ["bench/scale/**/*.test.ts"],
      testTimeout: 600_000,
      silent: false,
      // Only the simulation's own report: it prints its table and ends with the one `scale-sim:` line.
      reporters: ["./bench/scale/reporter.ts"],
    },
  };
});
