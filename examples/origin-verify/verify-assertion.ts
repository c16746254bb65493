/**
 * How an origin verifies `X-Gateway-Assertion` (TypeScript, jose, Web `Request`: Workers, Deno, Bun, Node
 * frameworks): by the gateway's JWKS, or with HS256 by its `ASSERTION_SECRET`. `npx tsx
 * examples/origin-verify/verify-assertion.ts` runs a self-check.
 */
import {
  base64url,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type JWTVerifyGetKey,
} from "jose";

/** How long the gateway lets its JWKS be cached (its `Cache-Control: max-age`), seconds. */
export const JWKS_MAX_AGE = 300;

/**
 * The gateway's public keys, fetched from its `/.well-known/jwks.json` and kept at most `JWKS_MAX_AGE`; an unknown
 * `kid` refetches at most every 30 s. Create it once per process (or isolate), not per request.
 */
export function gatewayJwks(jwksUrl: string | URL): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(jwksUrl), { cacheMaxAge: JWKS_MAX_AGE * 1000, cooldownDuration: 30_000 });
}

/** The identity an origin may rely on once the assertion verified. */
export interface GatewayIdentity {
  memberEntityId?: number;
  memberEntityIdentifier: string;
  organisationEntityIdentifier: string;
  scope: string[];
  secretType: string;
  requestId: string;
}

/** What the origin knows about the gateway: its JWKS, and only for HS256 its secrets. */
export interface VerifyOptions {
  /** The gateway's public keys, from {@link gatewayJwks}: EdDSA and ES256 assertions. */
  jwks?: JWTVerifyGetKey;
  /**
   * HS256 only: the gateway's `ASSERTION_SECRET` and, while it changes, the previous one; the assertion's `kid`
   * picks one. Without it HS256 is refused.
   */
  secrets?: readonly string[];
  /** The gateway's ISSUER (default "gridgate"). */
  issuer?: string;
  /** Seconds of clock difference tolerated between gateway and origin. */
  clockTolerance?: number;
}

const encoder = new TextEncoder();
const kids = new Map<string, Promise<string>>();

/** The `kid` the gateway puts on HS256 assertions signed with `secret` (docs/origin-integration.md), computed once. */
export function hs256Kid(secret: string): Promise<string> {
  let kid = kids.get(secret);
  if (kid === undefined) {
    kid = crypto.subtle
      .importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then((key) => crypto.subtle.sign("HMAC", key, encoder.encode("gridgate assertion key id")))
      .then((mac) => base64url.encode(new Uint8Array(mac, 0, 9)));
    kids.set(secret, kid);
  }
  return kid;
}

/** The key for an assertion's header: the JWKS for EdDSA and ES256, the secret its `kid` names for HS256. */
function keyFor(options: VerifyOptions): JWTVerifyGetKey {
  return async (header, token) => {
    if (header.alg === "HS256") {
      for (const secret of options.secrets ?? [])
        if ((await hs256Kid(secret)) === header.kid) return encoder.encode(secret);
      throw new Error("no ASSERTION_SECRET with this kid");
    }
    if (!options.jwks) throw new Error("no JWKS configured");
    return options.jwks(header, token);
  };
}

/**
 * Returns the verified identity of a request, or throws. The assertion must name this request's
 * method and path-with-query, so it cannot be replayed against another method or path.
 */
export async function verifyGatewayAssertion(request: Request, options: VerifyOptions): Promise<GatewayIdentity> {
  const url = new URL(request.url);
  const headers = request.headers;
  const token = headers.get("x-gateway-assertion");
  if (!token) throw new Error("no X-Gateway-Assertion");
  const { payload } = await jwtVerify(token, keyFor(options), {
    algorithms: options.secrets?.length ? ["EdDSA", "ES256", "HS256"] : ["EdDSA", "ES256"],
    typ: "gridgate-assertion+jwt",
    issuer: options.issuer ?? "gridgate",
    audience: "origin",
    requiredClaims: ["exp", "iat", "jti", "method", "path"],
    maxTokenAge: 60,
    clockTolerance: options.clockTolerance ?? 5,
  });
  if (payload.method !== request.method || payload.path !== url.pathname + url.search)
    throw new Error("assertion is for another request");
  if (
    typeof payload.memberEntityIdentifier !== "string" ||
    typeof payload.organisationEntityIdentifier !== "string" ||
    typeof payload.scope !== "string"
  ) {
    throw new Error("assertion lacks the identity claims");
  }
  if (
    headers.get("x-member-entity-identifier") !== payload.memberEntityIdentifier ||
    headers.get("x-organisation-entity-identifier") !== payload.organisationEntityIdentifier ||
    // The assertion carries memberEntityId as a number, the header as its decimal digits.
    (payload.memberEntityId !== undefined && headers.get("x-member-entity-id") !== String(payload.memberEntityId))
  ) {
    throw new Error("identity headers do not match the assertion");
  }
  return {
    memberEntityId: typeof payload.memberEntityId === "number" ? payload.memberEntityId : undefined,
    memberEntityIdentifier: payload.memberEntityIdentifier,
    organisationEntityIdentifier: payload.organisationEntityIdentifier,
    scope: payload.scope.split(" ").filter(Boolean),
    secretType: String(payload.secretType),
    requestId: String(payload.jti),
  };
}

/** Self-check: an assertion as the gateway makes one passes; the same one on another path or forged headers fails. */
async function selfCheck(): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA");
  const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "EdDSA" }] });
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({
    iss: "gridgate",
    aud: "origin",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + 60,
    method: "GET",
    path: "/api/grids/12?view=full",
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: "architect",
    secretType: "fixed",
  })
    .setProtectedHeader({ typ: "gridgate-assertion+jwt", alg: "EdDSA", kid: "k1" })
    .sign(privateKey);
  const url = "http://origin.internal/api/grids/12?view=full";
  const headers = {
    "X-Gateway-Assertion": assertion,
    "X-Member-Entity-Id": "2549",
    "X-Member-Entity-Identifier": "o6q2is",
    "X-Organisation-Entity-Identifier": "m7l9hw",
  };
  const attempts: [string, Request][] = [
    ["as forwarded", new Request(url, { headers })],
    ["other path", new Request(url.replace("/12", "/13"), { headers })],
    ["other method", new Request(url, { method: "DELETE", headers })],
    ["forged member header", new Request(url, { headers: { ...headers, "X-Member-Entity-Identifier": "admin1" } })],
    ["no assertion", new Request(url, { headers: { "X-Member-Entity-Identifier": "o6q2is" } })],
  ];
  for (const [name, request] of attempts) {
    const outcome = await verifyGatewayAssertion(request, { jwks }).then(
      (identity) => `accepted as ${identity.memberEntityIdentifier}`,
      (error: Error) => `rejected (${error.message})`,
    );
    console.log(`${name.padEnd(22)} ${outcome}`);
  }
}

if (globalThis.process?.argv[1]?.endsWith("verify-assertion.ts")) await selfCheck();
