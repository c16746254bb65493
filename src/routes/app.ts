/** The gateway's own routes as one Hono app: `/health`, `/openapi.json`, `/.well-known/jwks.json`, `/authenticate…`. */
import { Hono } from "hono/tiny";
import type { Bindings } from "../config";
import { GatewayError } from "../gateway-error";
import { methodNotAllowed } from "../http/problem";
import openApiDocument from "../openapi/openapi.json";
import type { Services } from "../services";
import { adminRoutes } from "./admin";
import { authenticateRoutes } from "./authenticate";
import { jwks } from "./jwks";
import { cors, gatewayMade, onError, requestScope, type AppEnv } from "./middleware";
import { secretRoutes } from "./secrets";
import { ssoRoutes } from "./sso";
import { tokenRoutes } from "./tokens";

/** The OpenAPI document as served: generated at build time (`npm run openapi:generate`), serialised on first use. */
let openApiJson: string | undefined;

/** The app of the gateway's own routes, finding a request's services with `servicesFor`. */
export function createRoutes(servicesFor: (env: Bindings) => Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestScope(servicesFor));
  app.use(gatewayMade());
  app.use(cors());
  // hono/tiny's router also matches a route with a trailing slash; the gateway's routes have one spelling
  app.use((c, next) => {
    if (c.req.path.length > 1 && c.req.path.endsWith("/"))
      throw new GatewayError("not_found", "No such gateway route.");
    return next();
  });
  app.onError(onError);

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.all("/health", methodNotAllowed("GET, HEAD"));
  app.get("/openapi.json", (c) =>
    c.body((openApiJson ??= JSON.stringify(openApiDocument)), 200, {
      "Content-Type": "application/json",
      "Cache-Control": "public, max-age=300",
    }),
  );
  app.all("/openapi.json", methodNotAllowed("GET, HEAD"));
  app.get("/.well-known/jwks.json", jwks);
  app.all("/.well-known/jwks.json", methodNotAllowed("GET, HEAD"));
  app.route("/authenticate/secrets", secretRoutes);
  app.route("/authenticate/admin", adminRoutes);
  app.route("/authenticate/sso", ssoRoutes);
  app.route("/authenticate", tokenRoutes);
  app.route("/authenticate", authenticateRoutes);
  app.all("/authenticate", methodNotAllowed("POST"));
  // any other spelling in the gateway's namespace (src/worker.ts)
  app.all("*", () => {
    throw new GatewayError("not_found", "No such gateway route.");
  });
  return app;
}
