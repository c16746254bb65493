/** Bearer authentication: exactly one `Authorization: Bearer <jwt>`, verified against the gateway's keys and the recent revocations. */
import type { WaitUntil } from "../config";
import { GatewayError } from "../gateway-error";
import type { Logger } from "../log";
import type { Services } from "../services";
import type { AccessClaims } from "../tokens/claims";

/** Options of {@link verifyBearer}. */
export interface BearerAuthOptions {
  /** Accept only tokens signed with the fixed secret (e.g. for secret management); else dynamic ones too. */
  fixedOnly?: boolean;
}

/** `Bearer` (any case), one or more spaces, a token without commas or spaces: one header only. */
const BEARER = /^bearer +([^\s,]+)$/i;

const PLAIN_TOKEN = /^[^\s,]+$/;

function credentialsOf(request: Request): string {
  const header = request.headers.get("Authorization");
  // the usual `Bearer <token>`: the same answer as the full checks below, without splitting the header
  if (header?.startsWith("Bearer ") && PLAIN_TOKEN.test(header.slice(7))) return header.slice(7);
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

/** What verification uses of the request's scope; `ctx` is read only when background work is scheduled. */
export interface BearerScope {
  readonly services: Services;
  readonly log: Logger;
  readonly ctx: WaitUntil;
}

/** Verifies the request's bearer token (signature, claims, revocation); every failure is a 401 (RFC 6750). */
export async function verifyBearer(
  request: Request,
  scope: BearerScope,
  options: BearerAuthOptions = {},
): Promise<AccessClaims> {
  const { services, log } = scope;
  const token = credentialsOf(request);
  const claims = await services.verifier.verify(
    token,
    services.keys.importedRing ?? (await services.keys.fixedRing()),
    services.claimRules(),
    options.fixedOnly ? undefined : services.dynamicSecrets,
    options.fixedOnly ? NO_BACKGROUND_WORK : scope.ctx,
    log,
  );
  // re-read in the background: a request waits only when the isolate's copy is too old to use
  const stale = services.revocations.ensureFresh(scope.ctx, log);
  if (stale) await stale;
  if (services.revocations.isRevoked(claims)) throw new GatewayError("invalid_token", "token revoked");
  return claims;
}

const NO_BACKGROUND_WORK = { waitUntil: () => undefined };
