/** Which client headers reach the origin, and the trusted identity headers that replace the rest. */
import type { AccessClaims } from "../tokens/claims";

/** Client headers with these prefixes (any case, `_` read as `-`) never reach the origin. */
export const RESERVED_PREFIXES = ["x-member-", "x-organisation-", "x-auth-", "x-gateway-"] as const;

const ALWAYS_REMOVED = new Set([
  "authorization",
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "host",
]);

function isReserved(name: string): boolean {
  const normalized = name.toLowerCase().replaceAll("_", "-");
  return RESERVED_PREFIXES.some((prefix) => normalized.startsWith(prefix));
}

/** Copies the client's headers minus credentials, hop-by-hop and `Connection`-named headers, and reserved prefixes. */
export function sanitizedHeaders(client: Headers): Headers {
  const nominated = new Set(
    (client.get("Connection") ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers = new Headers();
  for (const [name, value] of client) {
    if (ALWAYS_REMOVED.has(name) || nominated.has(name) || isReserved(name)) continue;
    headers.append(name, value);
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
