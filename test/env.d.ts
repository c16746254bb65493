// Types of the test runtime's `env` and `exports` (from "cloudflare:workers").
import type { D1Migration } from "cloudflare:test";
import type { Bindings } from "../src/config";

/** An SSO test client: its id and secret at the local provider. */
interface OidcTestClient {
  id: string;
  secret: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The OpenID Provider of test/oidc-provider.setup.mjs, a server that never answers, and a closed port. */
    oidc: {
      issuer: string;
      hangingIssuer: string;
      downIssuer: string;
      clients: { sso: OidcTestClient; openapi: OidcTestClient };
    };
  }
}

declare global {
  namespace Cloudflare {
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
    interface Env extends Bindings {
      TEST_MIGRATIONS: D1Migration[];
      /** wrangler.toml as text. */
      WRANGLER_TOML: string;
      /** A rate-limiting binding of 3 requests a minute, for the 429 tests. */
      API_LIMIT_TEST: RateLimit;
      /** A second database, standing for a read replica that has not caught up (test/d1-replicas.test.ts). */
      LAGGING_REPLICA: D1Database;
    }
  }
}
