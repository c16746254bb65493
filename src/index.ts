/** Gridgate: the Worker entry point wiring parse → verify → plan → scope → forward. */
import { Hono } from "hono";
import type { AppEnv } from "./config";
import { GatewayError, methodNotAllowed, onError } from "./errors";
import { bearerAuth } from "./http/bearer";
import { requestId } from "./http/request-id";
import { requirePlan } from "./policy/plan";
import { requireScope } from "./policy/scopes";
import { forward } from "./proxy/forward";
import { authenticateRoutes } from "./routes/authenticate";
import { secretRoutes } from "./routes/secrets";
import { tokenRoutes } from "./routes/tokens";
import { dynamicKeyResolver, requireActiveDynamicMember } from "./secrets/resolve";

const app = new Hono<AppEnv>();

app.use(requestId());
app.onError(onError);

app.get("/health", (c) => c.json({ status: "ok" }));
app.all("/health", methodNotAllowed("GET, HEAD"));
app.get("/openapi.json", async (c) => {
  const { openApiJson } = await import("./openapi/document");
  return c.body(openApiJson(), 200, { "Content-Type": "application/json", "Cache-Control": "public, max-age=300" });
});
app.all("/openapi.json", methodNotAllowed("GET, HEAD"));
app.route("/authenticate/secrets", secretRoutes);
app.route("/authenticate", tokenRoutes);
app.route("/authenticate", authenticateRoutes);
app.all("/authenticate", methodNotAllowed("POST"));
app.all("/authenticate/*", () => {
  throw new GatewayError("not_found", "No such gateway route.");
});

app.all(
  "*",
  bearerAuth({ dynamicKeys: dynamicKeyResolver }),
  requireActiveDynamicMember(),
  requirePlan(),
  requireScope(),
  forward(),
);

export default app;
