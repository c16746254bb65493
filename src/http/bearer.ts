/** Bearer authentication middleware: exactly one `Authorization: Bearer <jwt>`, verified without I/O. */
import type { MiddlewareHandler } from "hono";
import { getConfig, type AppEnv, type Bindings, type WaitUntil } from "../config";
import { GatewayError } from "../errors";
import { fixedKeyRing } from "../tokens/keys";
import { verifyAccessToken, type DynamicKeyResolver } from "../tokens/verify";

/** Options of {@link bearerAuth}. */
export interface BearerAuthOptions {
  /** Resolves dynamic organisation secrets; without it dynamic-secret tokens are refused. */
  dynamicKeys?: (env: Bindings, ctx: WaitUntil) => DynamicKeyResolver;
  /** Accept only tokens signed with the fixed secret (e.g. for secret management). */
  fixedOnly?: boolean;
}

/** `Bearer` (any case), one or more spaces, a token without commas or spaces: one header only. */
const BEARER = /^bearer +([^\s,]+)$/i;

function credentialsOf(request: Request): string {
  const header = request.headers.get("Authorization");
  if (header === null) {
    const url = new URL(request.url);
    const hint =
      url.searchParams.has("access_token") || /(?:^|;\s*)access_token=/.test(request.headers.get("Cookie") ?? "")
        ? " Tokens in the query string or cookies are not accepted."
        : "";
    throw new GatewayError("missing_token", `Send an Authorization: Bearer <token> header.${hint}`);
  }
  const scheme = header.trimStart().split(/\s/, 1)[0]!.toLowerCase();
  if (scheme === "basic") {
    throw new GatewayError(
      "basic_not_supported",
      "HTTP Basic authentication is not supported; send Authorization: Bearer <token>.",
    );
  }
  if (scheme !== "bearer")
    throw new GatewayError("missing_token", "Only the Bearer authentication scheme is supported.");
  const match = BEARER.exec(header);
  if (!match)
    throw new GatewayError("invalid_token", "Send exactly one Authorization header holding one bearer token.");
  return match[1]!;
}

/** Verifies the bearer token and sets `claims`; every failure is a 401 with an RFC 6750 challenge. */
export function bearerAuth(options: BearerAuthOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = credentialsOf(c.req.raw);
    const config = getConfig(c.env);
    const dynamic = options.fixedOnly ? undefined : options.dynamicKeys?.(c.env, c.executionCtx);
    const claims = await verifyAccessToken(token, {
      fixed: await fixedKeyRing(config),
      dynamic,
      rules: { issuer: config.issuer, clockSkew: config.clockSkew, now: Math.floor(Date.now() / 1000) },
    });
    c.set("claims", claims);
    await next();
  };
}
