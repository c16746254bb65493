import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Test-only secrets: ≥ 32 bytes each, never used anywhere else. */
export const TEST_SECRETS = {
  JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
  JWT_SECRET_PREVIOUS: "test-previous-jwt-secret-0123456789abcdef0123456789",
  PASSWORD_PEPPER: "test-password-pepper-0123456789abcdef0123456789",
  SECRETS_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  ASSERTION_SECRET: "test-assertion-secret-0123456789abcdef0123456789",
  ADMIN_SECRET: "test-admin-secret-0123456789abcdef0123456789abcd",
};

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          ...TEST_SECRETS,
          ORIGIN_URL: "https://origin.test/api",
          ORIGIN_TIMEOUT_MS: "500",
          // Browser apps allowed in the tests (test/cors.test.ts, test/refresh-cookie.test.ts).
          CORS_ORIGINS: "https://app.test,http://127.0.0.1:5173",
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    // The gateway logs one JSON line per audit event; show logs only for tests that fail.
    silent: "passed-only" as const,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
}));
