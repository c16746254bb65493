/** Which client headers reach the origin, and the trusted identity headers that replace the rest. */
import { withoutRefreshCookie } from "../routes/refresh-cookie";
import type { AccessClaims } from "../tokens/claims";
import { headerRule, methodOverrideRefused, outboundHeaders, type OutboundHeaders } from "./header-rules";

/** Client headers the gateway writes itself, whatever the client sent (`X-Forwarded-*`, identity: dropped by rule). */
const ALWAYS_REPLACED = new Set(["x-request-id", "traceparent"]);

/** What else the gateway replaces for this request. */
export interface Replaced {
  /** The client's `tracestate` goes on only with its accepted `traceparent`. */
  tracestate: boolean;
  /** `Accept-Encoding` is the client's own (Cloudflare's `clientAcceptEncoding`) where known. */
  acceptEncoding: boolean;
}

/**
 * Copies the client's headers minus credentials (the browser refresh cookie too), hop-by-hop and
 * `Connection`-named headers, reserved prefixes, URL overrides and forwarding claims ({@link headerRule}),
 * and the headers the gateway writes itself, in one pass; throws the 400 for a method-override header.
 */
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
