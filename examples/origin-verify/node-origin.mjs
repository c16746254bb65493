// A Node origin (no dependencies: node:http, node:crypto) that only serves requests carrying a valid
// X-Gateway-Assertion. Run: ASSERTION_SECRET=… node examples/origin-verify/node-origin.mjs
// then set the gateway's ORIGIN_URL to http://127.0.0.1:8788.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const MAX_AGE = 60;

function decodeJson(segment) {
  return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
}

/**
 * Returns the verified assertion claims for this request, or throws.
 * @param {{ method: string, url: string, headers: Record<string, string | string[] | undefined> }} request
 * @param {{ secret: string, issuer?: string, clockTolerance?: number }} options
 */
export function verifyGatewayAssertion(request, { secret, issuer = "gridgate", clockTolerance = 5 }) {
  const token = request.headers["x-gateway-assertion"];
  if (typeof token !== "string" || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error("no X-Gateway-Assertion");
  const [header, payload, signature] = token.split(".");

  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error("bad signature");

  const protectedHeader = decodeJson(header);
  if (protectedHeader.alg !== "HS256" || protectedHeader.typ !== "gridgate-assertion+jwt")
    throw new Error("not a gateway assertion");
  const claims = decodeJson(payload);
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== issuer || claims.aud !== "origin") throw new Error("wrong issuer or audience");
  if (!Number.isInteger(claims.exp) || claims.exp + clockTolerance <= now) throw new Error("expired");
  if (!Number.isInteger(claims.iat) || claims.iat - clockTolerance > now || now - claims.iat > MAX_AGE + clockTolerance)
    throw new Error("issued at the wrong time");
  if (claims.method !== request.method || claims.path !== request.url)
    throw new Error("assertion is for another request");
  if (
    request.headers["x-member-entity-identifier"] !== claims.memberEntityIdentifier ||
    request.headers["x-organisation-entity-identifier"] !== claims.organisationEntityIdentifier
  ) {
    throw new Error("identity headers do not match the assertion");
  }
  return claims;
}

if (process.argv[1]?.endsWith("node-origin.mjs")) {
  const secret = process.env.ASSERTION_SECRET;
  if (!secret) throw new Error("set ASSERTION_SECRET to the gateway's value");
  const port = Number(process.env.PORT ?? 8788);
  createServer((request, response) => {
    let claims;
    try {
      claims = verifyGatewayAssertion(request, { secret, issuer: process.env.ISSUER });
    } catch (error) {
      response
        .writeHead(401, { "Content-Type": "application/json" })
        .end(JSON.stringify({ error: "not through the gateway", reason: error.message }));
      return;
    }
    const { memberEntityIdentifier, organisationEntityIdentifier, scope, jti } = claims;
    response.writeHead(200, { "Content-Type": "application/json" }).end(
      JSON.stringify({
        memberEntityIdentifier,
        organisationEntityIdentifier,
        scope: scope.split(" "),
        requestId: jti,
      }),
    );
  }).listen(port, "127.0.0.1", () => console.log(`origin on http://127.0.0.1:${port}`));
}
