/** `GET /.well-known/jwks.json`: the public keys an origin verifies `X-Gateway-Assertion` with; cacheable, with an ETag. */
import type { Context } from "hono";
import { JWKS_MAX_AGE } from "../tokens/assertion-keys";
import type { AppEnv } from "./middleware";

const JWK_SET_TYPE = "application/jwk-set+json";

/** RFC 9110 §13.1.2: `If-None-Match` names `etag` (weak comparison) or is `*`. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed.replace(/^W\//, "") === etag;
  });
}

/** The JWKS, or 304 when the client's copy is current. */
export async function jwks(c: Context<AppEnv>): Promise<Response> {
  const { jwks } = await c.get("services").keys.assertionKeys();
  const headers = { "Cache-Control": `public, max-age=${JWKS_MAX_AGE}`, ETag: jwks.etag };
  if (matches(c.req.header("If-None-Match"), jwks.etag)) return c.body(null, 304, headers);
  return c.body(jwks.body, 200, { ...headers, "Content-Type": JWK_SET_TYPE });
}
