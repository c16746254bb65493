/**
 * Bench-only peer (`npm run bench`): what a team would write in an afternoon instead of the gateway. A Hono app that
 * verifies the bearer token with `hono/jwt` (HS256, the fixed secret, the issuer), requires the token's scope to hold
 * a member role the gateway's policy table allows for the method, sets three identity headers from the claims and
 * fetches the origin. Never part of the production bundle.
 */
import { Hono } from "hono";
import { jwt, type JwtVariables } from "hono/jwt";
import { MEMBER_ROLES, ROLE_POLICY } from "../../src/policy/scopes";

interface PeerEnv {
  ORIGIN_URL: string;
  JWT_SECRET: string;
  ISSUER: string;
}

/** The claims the peer reads. */
interface MemberClaims {
  scope?: string;
  memberEntityId?: number;
  memberEntityIdentifier?: string;
  organisationEntityIdentifier?: string;
}

/** The member roles (architect, builder, user) the policy table allows `method` to. */
function rolesAllowing(method: string): string[] {
  return MEMBER_ROLES.filter((role) => {
    const methods = ROLE_POLICY.get(role);
    return methods?.has("*") || methods?.has(method);
  });
}

const app = new Hono<{ Bindings: PeerEnv; Variables: JwtVariables<MemberClaims> }>();

app.use("*", (c, next) =>
  jwt({ secret: c.env.JWT_SECRET, alg: "HS256", verification: { iss: c.env.ISSUER } })(c, next),
);

app.all("*", (c) => {
  const claims = c.get("jwtPayload");
  const scopes = (claims.scope ?? "").split(" ");
  if (!rolesAllowing(c.req.method).some((role) => scopes.includes(role))) return c.json({ error: "forbidden" }, 403);
  const headers = new Headers(c.req.raw.headers);
  headers.delete("Authorization");
  headers.set("X-Member-Entity-Id", String(claims.memberEntityId));
  headers.set("X-Member-Entity-Identifier", String(claims.memberEntityIdentifier));
  headers.set("X-Organisation-Entity-Identifier", String(claims.organisationEntityIdentifier));
  const url = new URL(c.req.url);
  return fetch(c.env.ORIGIN_URL + url.pathname + url.search, {
    method: c.req.method,
    headers,
    body: c.req.raw.body,
    redirect: "manual",
  });
});

export default app;
