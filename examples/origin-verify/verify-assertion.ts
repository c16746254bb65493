/**
 * How an origin verifies `X-Gateway-Assertion` (TypeScript, jose, Web `Request`: Workers, Deno, Bun,
 * Node frameworks). `npx tsx examples/origin-verify/verify-assertion.ts` runs a self-check.
 */
import { SignJWT, jwtVerify } from "jose";

/** The identity an origin may rely on once the assertion verified. */
export interface GatewayIdentity {
  memberEntityId?: number;
  memberEntityIdentifier: string;
  organisationEntityIdentifier: string;
  scope: string[];
  secretType: string;
  requestId: string;
}

/** What the origin knows about itself and the gateway. */
export interface VerifyOptions {
  /** The gateway's ASSERTION_SECRET (shared with the origin only). */
  secret: string;
  /** The gateway's ISSUER (default "gridgate"). */
  issuer?: string;
  /** Seconds of clock difference tolerated between gateway and origin. */
  clockTolerance?: number;
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
  const { payload } = await jwtVerify(token, new TextEncoder().encode(options.secret), {
    algorithms: ["HS256"],
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
  const secret = "example-assertion-secret-0123456789abcdef";
  const now = Math.floor(Date.now() / 1000);
  const claims = {
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
  };
  const assertion = await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "gridgate-assertion+jwt" })
    .sign(new TextEncoder().encode(secret));
  const headers = {
    "X-Gateway-Assertion": assertion,
    "X-Member-Entity-Id": "2549",
    "X-Member-Entity-Identifier": "o6q2is",
    "X-Organisation-Entity-Identifier": "m7l9hw",
  };
  const attempts: [string, Request][] = [
    ["as forwarded", new Request("http://origin.internal/api/grids/12?view=full", { headers })],
    ["other path", new Request("http://origin.internal/api/grids/13?view=full", { headers })],
    ["other method", new Request("http://origin.internal/api/grids/12?view=full", { method: "DELETE", headers })],
    [
      "forged member header",
      new Request("http://origin.internal/api/grids/12?view=full", {
        headers: { ...headers, "X-Member-Entity-Identifier": "admin1" },
      }),
    ],
    [
      "no assertion",
      new Request("http://origin.internal/api/grids/12?view=full", {
        headers: { "X-Member-Entity-Identifier": "o6q2is" },
      }),
    ],
  ];
  for (const [name, request] of attempts) {
    const outcome = await verifyGatewayAssertion(request, { secret }).then(
      (identity) => `accepted as ${identity.memberEntityIdentifier}`,
      (error: Error) => `rejected (${error.message})`,
    );
    console.log(`${name.padEnd(22)} ${outcome}`);
  }
}

if (globalThis.process?.argv[1]?.endsWith("verify-assertion.ts")) await selfCheck();
