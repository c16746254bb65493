/** Which client headers reach the origin, and the trusted identity headers that replace the rest. */
import { withoutRefreshCookie } from "../routes/refresh-cookie";
import type { AccessClaims } from "../tokens/claims";
import { headerRule, methodOverrideRefused, outboundHeaders, type OutboundHeaders } from "./header-rules";

const ALWAYS_REPLACED = new Set(["x-request-id", "traceparent"]);

/** Client headers also replaced: `tracestate` unless the client's trace goes on, `accept-encoding` when it is known. */
export interface Replaced {
  tracestate: boolean;
  acceptEncoding: boolean;
}

/** The client's headers the origin may see (docs/forwarding.md § Headers); throws the 400 for a method override. */
export function sanitizedHeaders(client: Headers, replaced: Replaced): OutboundHeaders {
  const connection = client.get("Connection");
  const nominated =
    connection === null
      ? undefined
      : new Set(
          connection
            .split(",")
            .map((name) => name.trim().toLowerCase())
            .filter(Boolean),
        );
  const headers = outboundHeaders();
  for (const [name, value] of client) {
    const rule = headerRule(name);
    if (rule === "refuse") throw methodOverrideRefused(name);
    if (rule === "drop" || nominated?.has(name) || ALWAYS_REPLACED.has(name)) continue;
    if ((replaced.tracestate && name === "tracestate") || (replaced.acceptEncoding && name === "accept-encoding"))
      continue;
    const kept = name === "cookie" ? withoutRefreshCookie(value) : value;
    if (kept !== undefined) headers[name] = kept;
  }
  return headers;
}

/** Adds the identity headers the origin may trust (it must still check `X-Gateway-Assertion`). */
export function addIdentityHeaders(
  headers: OutboundHeaders,
  claims: AccessClaims,
  requestId: string,
  assertion: string,
): void {
  if (claims.memberEntityId !== undefined) headers["x-member-entity-id"] = String(claims.memberEntityId);
  headers["x-member-entity-identifier"] = claims.memberEntityIdentifier;
  headers["x-organisation-entity-identifier"] = claims.organisationEntityIdentifier;
  headers["x-auth-scope"] = claims.scope;
  if (claims.jti !== undefined) headers["x-auth-token-id"] = claims.jti;
  headers["x-auth-secret-type"] = claims.secretType;
  headers["x-request-id"] = requestId;
  headers["x-gateway-assertion"] = assertion;
}
