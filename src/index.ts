/** Gridgate: the Worker entry point wiring parse → verify → plan → scope → forward. */
import { Hono } from "hono";
import { getConfig, type AppEnv } from "./config";
import { GatewayError, onError } from "./errors";
import { bearerAuth } from "./http/bearer";
import { requestId } from "./http/request-id";
import { requireEligiblePlan } from "./policy/plan";
import { isAllowed, resourceOf, scopesAllowing } from "./policy/scopes";
import { forwardToOrigin } from "./proxy/forward";
import { authenticateRoutes } from "./routes/authenticate";

const app = new Hono<AppEnv>();

app.use(requestId());
app.onError(onError);

app.get("/health", (c) => c.json({ status: "ok" }));
app.all("/health", () => {
  throw new GatewayError("method_not_allowed", "Use GET.", { headers: { Allow: "GET, HEAD" } });
});
app.route("/authenticate", authenticateRoutes);
app.all("/authenticate", () => {
  throw new GatewayError("method_not_allowed", "Use POST.", { headers: { Allow: "POST" } });
});
app.all("/authenticate/*", () => {
  throw new GatewayError("not_found", "No such gateway route.");
});

app.all("*", bearerAuth(), async (c) => {
  const config = getConfig(c.env);
  const claims = c.get("claims");
  await requireEligiblePlan(config, c.env.DB, claims.organisationEntityIdentifier, c.executionCtx);

  const method = c.req.method;
  const resource = resourceOf(new URL(c.req.url).pathname);
  if (resource === undefined) throw new GatewayError("invalid_request", "The request path is not valid percent-encoding.");
  if (!isAllowed(claims.scope, method, resource)) {
    throw new GatewayError("insufficient_scope", `${method} on ${resource || "/"} needs one of the scopes listed in WWW-Authenticate.`, {
      requiredScope: scopesAllowing(method, resource).join(" "),
    });
  }
  return forwardToOrigin(c.env, config, { request: c.req.raw, claims, requestId: c.get("requestId") });
});

export default app;
