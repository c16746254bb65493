// Types of the test runtime's `env` and `exports` (from "cloudflare:workers").
import type { D1Migration } from "cloudflare:test";
import type { Bindings } from "../src/config";

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
