/** The gateway's Hono app: its own routes, then parse → verify → plan → limit → scope → forward for everything else. */
import { Hono } from "hono";
import type { Bindings } from "./config";
import { gatewayOf, type AppEnv, type Gateway } from "./gateway";
import { GatewayError } from "./gateway-error";
import { authenticate } from "./http/bearer";
import { cors } from "./http/cors";
import { requestContext } from "./http/context";
import { limitOrganisation, requireActiveDynamicMember, requirePlan, requireScope } from "./http/guards";
import { methodNotAllowed, onError } from "./http/problem";
import openApiDocument from "./openapi/openapi.json";
import { plainProxiedCalls, proxyChain, proxyRoute, withPlainProxiedCalls } from "./proxy/chain";
import { forward } from "./proxy/forward";
import { adminRoutes } from "./routes/admin";
import { authenticateRoutes } from "./routes/authenticate";
import { secretRoutes } from "./routes/secrets";
import { ssoRoutes } from "./routes/sso";
import { tokenRoutes } from "./routes/tokens";

/** The OpenAPI document as served: generated at build time (`npm run openapi:generate`), serialised on first use. */
let openApiJson: string | undefined;

/** How {@link createApp} finds the gateway of a request. */
export interface AppOptions {
  /** Default: one gateway per `env` object ({@link gatewayOf}); tests return one built with fakes. */
  gatewayFor?: (env: Bindings) => Gateway;
  /** Send every request through the router, plain API calls too (tests compare the two ways in). */
  routerOnly?: boolean;
}

/** Builds the app; `app.fetch(request, env, ctx)` serves one request. */
export function createApp(options: AppOptions = {}): Hono<AppEnv> {
  const gatewayFor = options.gatewayFor ?? gatewayOf;
  // The proxied API: these named steps, in this order, then forward (src/proxy/chain.ts).
  const proxied = proxyChain(
    [authenticate, requireActiveDynamicMember, requirePlan, limitOrganisation, requireScope],
    forward,
  );
  const app = new Hono<AppEnv>();

  app.use(requestContext(gatewayFor));
  app.use(cors());
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
  app.route("/authenticate/secrets", secretRoutes);
  app.route("/authenticate/admin", adminRoutes);
  app.route("/authenticate/sso", ssoRoutes);
  app.route("/authenticate", tokenRoutes);
  app.route("/authenticate", authenticateRoutes);
  app.all("/authenticate", methodNotAllowed("POST"));
  app.all("/authenticate/*", () => {
    throw new GatewayError("not_found", "No such gateway route.");
  });

  app.all("*", proxyRoute(proxied));

  // A plain API call (no gateway route can match, no CORS work) runs the same chain without the router.
  if (!options.routerOnly) {
    const bypass = plainProxiedCalls(app.routes.map((route) => route.path));
    app.fetch = withPlainProxiedCalls(app.fetch, bypass, proxied, gatewayFor);
  }
  return app;
}
