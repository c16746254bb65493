import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Test-only secrets, like vitest.config.ts's: never used anywhere else. */
const TEST_SECRETS = {
  JWT_SECRET: "scale-sim-jwt-secret-0123456789abcdef0123456789abcdef",
  PASSWORD_PEPPER: "scale-sim-password-pepper-0123456789abcdef0123456789",
  SECRETS_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  ASSERTION_SECRET: "scale-sim-assertion-secret-0123456789abcdef0123456789",
};

/** `npm run scale-sim`: the capacity model's simulation (docs/capacity.md § 9); not part of `npm test`. */
export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          ...TEST_SECRETS,
          ORIGIN_URL: "https://origin.test/api",
          ORIGIN_TIMEOUT_MS: "500",
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
        },
      },
    }),
  ],
  test: {
    include: ["scale/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    testTimeout: 170_000,
    silent: false,
    // Only the simulation's own report: it prints its table and ends with the one `scale-sim:` line.
    reporters: ["./scale/reporter.ts"],
  },
}));
