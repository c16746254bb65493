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
    }
  }
}
