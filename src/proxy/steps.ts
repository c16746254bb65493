/** The proxied API's steps, in order: authenticate → active dynamic member → eligible plan → the organisation's limit → sufficient scope. */
import { GatewayError } from "../gateway-error";
import { checkPathForm } from "../policy/path-forms";
import { verifyBearer } from "../http/bearer";
import type { ProxiedRequest, ProxyStep } from "./request";
import { isAllowed, resourceOf, scopesAllowing } from "../policy/scopes";
import { pathOf } from "../http/request-url";

/** Percent-encoded `/` or `\`: the origin might decode them into separators the scope check never saw. */
const ENCODED_SEPARATOR = /%2f|%5c/i;

async function authenticate(proxied: ProxiedRequest): Promise<void> {
  proxied.claims = await verifyBearer(proxied.request, proxied);
}

/** Dynamic-secret tokens must name an existing, active member; their `memberEntityId` comes from storage. */
function requireActiveDynamicMember(proxied: ProxiedRequest): Promise<void> | void {
  const claims = proxied.verifiedClaims;
  if (claims.secretType !== "dynamic") return;
  return proxied.services.dynamicSecrets.activeMember(proxied.ctx, proxied.log, claims).then((member) => {
    proxied.claims = member;
  });
}

/** Sets `plan` (403 `plan_not_eligible` if none), without waiting while the isolate's copy of it is fresh. */
function requirePlan(proxied: ProxiedRequest): Promise<void> | void {
  const { services } = proxied;
  const organisation = proxied.verifiedClaims.organisationEntityIdentifier;
  const plan = services.plans.eligiblePlanNow(proxied.ctx, organisation);
  if (plan !== undefined) {
    proxied.plan = plan;
    return;
  }
  return services.plans.requireEligible(proxied.ctx, organisation, proxied.request.url).then((eligible) => {
    proxied.plan = eligible;
  });
}

/** Counts the request against its organisation's plan limit (fixed and dynamic tokens share it); 429 past it. */
function limitOrganisation(proxied: ProxiedRequest): Promise<void> | void {
  if (proxied.plan === undefined) throw new Error("the limit step ran before the plan step");
  return proxied.services.limits.count(proxied.plan, proxied.verifiedClaims.organisationEntityIdentifier, proxied.log);
}

/** 403 `insufficient_scope` unless the token's scope allows the method on the resource; 400 for an ambiguous path. */
function requireScope(proxied: ProxiedRequest): void {
  const method = proxied.request.method;
  const path = pathOf(proxied.request.url);
  const resource = resourceOf(path);
  if (resource === undefined)
    throw new GatewayError("invalid_request", "The request path is not valid percent-encoding.");
  if (ENCODED_SEPARATOR.test(path))
    throw new GatewayError("invalid_request", "Percent-encoded slashes and backslashes are not accepted in the path.");
  if (!isAllowed(proxied.services.scopes.of(proxied.verifiedClaims.scope), method, resource)) {
    throw new GatewayError(
      "insufficient_scope",
      `${method} on ${resource || "/"} needs one of the scopes listed in WWW-Authenticate.`,
      {
        requiredScope: scopesAllowing(method, resource).join(" "),
      },
    );
  }
  checkPathForm(path);
}

/** The steps of every proxied request, in this order; `forward` follows them. */
export const PROXY_STEPS: readonly ProxyStep[] = [
  authenticate,
  requireActiveDynamicMember,
  requirePlan,
  limitOrganisation,
  requireScope,
];
