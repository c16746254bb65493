/** The policy middleware after `bearerAuth`: active dynamic member, eligible plan, the organisation's limit, sufficient scope. */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../gateway";
import { GatewayError } from "../gateway-error";
import { checkPathForm } from "../policy/path-forms";
import { isAllowed, resourceOf, scopesAllowing } from "../policy/scopes";
import { pathOf } from "./request-url";

/** Percent-encoded `/` or `\`: the origin might decode them into separators the scope check never saw. */
const ENCODED_SEPARATOR = /%2f|%5c/i;

/** Dynamic-secret tokens must name an existing, active member; their `memberEntityId` comes from storage. */
export function requireActiveDynamicMember(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const claims = c.get("claims");
    if (claims.secretType === "dynamic")
      c.set("claims", await c.get("gateway").dynamicSecrets.activeMember(c.executionCtx, c.get("log"), claims));
    await next();
  };
}

/** The token's organisation must be active and on an API plan (403 `plan_not_eligible`); sets `plan`. */
export function requirePlan(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set(
      "plan",
      await c.get("gateway").plans.requireEligible(c.executionCtx, c.get("claims").organisationEntityIdentifier),
    );
    await next();
  };
}

/**
 * Counts the request against its organisation's plan limit (fixed and dynamic tokens share it): 429
 * `rate_limited` with `Retry-After`, `RateLimit-Policy` and `RateLimit` past it. Answers that pass are not
 * touched: the origin's response goes through unchanged.
 */
export function limitOrganisation(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await c.get("gateway").limits.count(c.get("plan"), c.get("claims").organisationEntityIdentifier, c.get("log"));
    await next();
  };
}

/**
 * 403 `insufficient_scope`, naming the scopes that would do, unless the token's scope allows the
 * method on the path's resource. 400 for a path whose resource is ambiguous (bad percent-encoding,
 * encoded separators), and for a path an origin could resolve differently (`policy/path-forms.ts`).
 */
export function requireScope(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method;
    const path = pathOf(c.req.url);
    const resource = resourceOf(path);
    if (resource === undefined)
      throw new GatewayError("invalid_request", "The request path is not valid percent-encoding.");
    if (ENCODED_SEPARATOR.test(path))
      throw new GatewayError(
        "invalid_request",
        "Percent-encoded slashes and backslashes are not accepted in the path.",
      );
    if (!isAllowed(c.get("gateway").scopes.of(c.get("claims").scope), method, resource)) {
      throw new GatewayError(
        "insufficient_scope",
        `${method} on ${resource || "/"} needs one of the scopes listed in WWW-Authenticate.`,
        {
          requiredScope: scopesAllowing(method, resource).join(" "),
        },
      );
    }
    checkPathForm(path);
    await next();
  };
}
