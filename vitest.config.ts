import { readFileSync } from "node:fs";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Test-only secrets: ≥ 32 bytes each, never used anywhere else. */
export const TEST_SECRETS = {
  JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
  JWT_SECRET_PREVIOUS: "test-previous-jwt-secret-0123456789abcdef0123456789",
  PASSWORD_PEPPER: "test-password-pepper-0123456789abcdef0123456789",
  SECRETS_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  ASSERTION_SECRET: "test-assertion-secret-0123456789abcdef0123456789",
  /** An Ed25519 and a P-256 private key, PKCS#8: the first signs by default, ASSERTION_ALG=ES256 picks the second. */
  ASSERTION_KEYS: [
    "MC4CAQAwBQYDK2VwBCIEIEVtSgq-53KSRkVW7rqFcyz2L0riXX4P3Ti36CmyqRK4",
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2v5b9lTKRVVwH9TwAzdqHRnZWbJG5VY4cQyXSwAQiw2hRANCAAQk6V_3SmgYaPa6IiBAaNtI5soEcvTICN3Yfy3djtGLxLW_OYj0aLcOLUtdr9EWjrYsPj6BQxD55HMY-f1m-YTM",
  ].join(","),
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
          // The production configuration as text, so a test can check API_RATE_LIMITS against its [[ratelimits]].
          WRANGLER_TOML: readFileSync("./wrangler.toml", "utf8"),
        },
        // wrangler.toml's API_LIMIT_* (600 and 6,000 a minute) stay bound as in production; this small one is
        // for the 429 tests (test/limits.test.ts), which bind it in place of a plan's.
        ratelimits: { API_LIMIT_TEST: { namespace_id: "9001", simple: { limit: 3, period: 60 } } },
        // A second database standing for a D1 read replica that lags (test/d1-replicas.test.ts).
        d1Databases: { LAGGING_REPLICA: "lagging-replica" },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    // A real OpenID Provider on loopback (Node), reached from the workers for single sign-on (test/sso.test.ts).
    globalSetup: ["./test/oidc-provider.setup.mjs"],
    // The gateway logs one JSON line per audit event; show logs only for tests that fail.
    silent: "passed-only" as const,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
}));
