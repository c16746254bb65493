/** Which client headers reach the origin, and the trusted identity headers that replace the rest. */
import { withoutRefreshCookie } from "../http/refresh-cookie";
import type { AccessClaims } from "../tokens/claims";
import { headerRule, methodOverrideRefused } from "./header-rules";

/**
 * Copies the client's headers minus credentials (the browser refresh cookie too), hop-by-hop and
 * `Connection`-named headers, reserved prefixes, URL overrides and forwarding claims ({@link headerRule}),
 * in one pass; throws the 400 for a method-override header.
 */
export function sanitizedHeaders(client: Headers): Headers {
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
  const headers = new Headers();
  for (const [name, value] of client) {
    const rule = headerRule(name);
    if (rule === "refuse") throw methodOverrideRefused(name);
    if (rule === "drop" || nominated?.has(name)) continue;
    const kept = name === "cookie" ? withoutRefreshCookie(value) : value;
    if (kept !== undefined) headers.append(name, kept);
  }
  return headers;
}

/** Sets the identity headers the origin may trust (it must still check `X-Gateway-Assertion`). */
export function setIdentityHeaders(headers: Headers, claims: AccessClaims, requestId: string, assertion: string): void {
  if (claims.memberEntityId !== undefined) headers.set("X-Member-Entity-Id", String(claims.memberEntityId));
  headers.set("X-Member-Entity-Identifier", claims.memberEntityIdentifier);
  headers.set("X-Organisation-Entity-Identifier", claims.organisationEntityIdentifier);
  headers.set("X-Auth-Scope", claims.scope);
  if (claims.jti !== undefined) headers.set("X-Auth-Token-Id", claims.jti);
  headers.set("X-Auth-Secret-Type", claims.secretType);
  headers.set("X-Request-Id", requestId);
  headers.set("X-Gateway-Assertion", assertion);
}
