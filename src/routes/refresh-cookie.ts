/** The refresh token of browser apps as an HttpOnly cookie, only with an allowed `Origin` (docs/browser-apps.md). */
import type { Context, MiddlewareHandler } from "hono";
import { allowedOriginOf, type AppEnv } from "./middleware";
import { GatewayError } from "../gateway-error";
import { readBody } from "../http/body";
import { objectBody, optionalString } from "../http/fields";

/** `__Secure-`: the browser stores it only with `Secure` from a secure context (https, or loopback). */
export const REFRESH_COOKIE = "__Secure-gridgate-refresh";
const REFRESH_COOKIE_PATH = "/authenticate";

const ATTRIBUTES = `Path=${REFRESH_COOKIE_PATH}; HttpOnly; Secure; SameSite=Strict`;

/** The `Set-Cookie` value that hands a browser its refresh token for `maxAge` seconds. */
export function refreshCookie(token: string, maxAge: number): string {
  return `${REFRESH_COOKIE}=${token}; Max-Age=${Math.max(0, Math.floor(maxAge))}; ${ATTRIBUTES}`;
}

function clearedRefreshCookie(): string {
  return `${REFRESH_COOKIE}=; Max-Age=0; ${ATTRIBUTES}`;
}

/** The pairs of a `Cookie` header: split at `; ` and at the `, ` the runtime joins several `Cookie` fields with. */
function pairs(cookieHeader: string): string[] {
  return cookieHeader.split(/[;,]/).map((pair) => pair.trim());
}

/** The refresh cookie's value in a request, if any (the first one: browsers send the most specific path first). */
function refreshCookieOf(headers: Headers): string | undefined {
  const header = headers.get("Cookie");
  if (header === null || !header.includes(REFRESH_COOKIE)) return undefined;
  const prefix = `${REFRESH_COOKIE}=`;
  const value = pairs(header)
    .find((pair) => pair.startsWith(prefix))
    ?.slice(prefix.length);
  return value ? value : undefined;
}

const REFRESH_COOKIE_NAME = REFRESH_COOKIE.toLowerCase();

/** Whether a cookie pair is named like the refresh cookie in any case or percent-encoding (origins' parsers differ). */
function isRefreshCookiePair(pair: string): boolean {
  const equals = pair.indexOf("=");
  let name = (equals === -1 ? pair : pair.slice(0, equals)).trim();
  if (name.includes("%")) {
    try {
      name = decodeURIComponent(name);
    } catch {
      // not percent-encoding: compared as it is
    }
  }
  return name.toLowerCase() === REFRESH_COOKIE_NAME;
}

/** `Cookie` without any cookie named like the refresh cookie, the rest kept in order; undefined when none is left. */
export function withoutRefreshCookie(cookieHeader: string): string | undefined {
  if (!cookieHeader.includes("%") && !/gridgate-refresh/i.test(cookieHeader)) return cookieHeader;
  const parts = cookieHeader.split(/([;,])/);
  let kept = "";
  for (let i = 0; i < parts.length; i += 2) {
    const pair = parts[i]!;
    if (pair.trim() === "" || isRefreshCookiePair(pair)) continue;
    kept += kept === "" ? pair.trimStart() : `${parts[i - 1]}${pair}`;
  }
  return kept === "" ? undefined : kept;
}

/** The refresh cookie's token, if any; 403 `origin_not_allowed` unless the `Origin` is allowed (the CSRF rule). */
export function cookieRefreshToken(c: Context<AppEnv>): string | undefined {
  const token = refreshCookieOf(c.req.raw.headers);
  if (token === undefined) return undefined;
  if (allowedOriginOf(c) === undefined) {
    throw new GatewayError(
      "origin_not_allowed",
      "The refresh cookie is only accepted from a browser app whose Origin is allowed (CORS_ORIGINS).",
    );
  }
  return token;
}

function bodyOptional(c: Context<AppEnv>): boolean {
  const request = c.req.raw;
  const empty = request.body === null || request.headers.get("Content-Length") === "0";
  return (
    empty &&
    !request.headers.has("Content-Type") &&
    (refreshCookieOf(request.headers) !== undefined || allowedOriginOf(c) !== undefined)
  );
}

/** Reads a refresh or revoke body with `parse`; a browser app (cookie or allowed origin) may send none: `{}`. */
export async function readTokenBody<T>(
  c: Context<AppEnv>,
  parse: (raw: unknown) => T,
): Promise<T | Record<string, never>> {
  return bodyOptional(c) ? {} : readBody(c.req.raw, parse);
}

/** The refresh token of `POST /authenticate/refresh`: the body's `refresh_token`, else the cookie's. */
export async function presentedRefreshToken(
  c: Context<AppEnv>,
  strict: (raw: unknown) => { refresh_token: string },
): Promise<string> {
  if (refreshCookieOf(c.req.raw.headers) === undefined && allowedOriginOf(c) === undefined) {
    return (await readBody(c.req.raw, strict)).refresh_token;
  }
  const body = await readTokenBody(c, parseLooseRefreshBody);
  const token = body.refresh_token ?? cookieRefreshToken(c);
  if (token === undefined) {
    throw new GatewayError("invalid_grant", "No refresh token: the body names none and there is no refresh cookie.");
  }
  return token;
}

function parseLooseRefreshBody(raw: unknown): { refresh_token?: string | undefined } {
  return { refresh_token: optionalString(objectBody(raw), "refresh_token", { min: 1 }) };
}

/** For an allowed origin only: clears the cookie after a refused refresh (4xx, not 5xx) or a successful revoke. */
export function refreshCookieAftercare(route: "refresh" | "revoke"): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    const status = c.res.status;
    const clear = route === "refresh" ? status >= 400 && status < 500 : status === 200;
    if (clear && allowedOriginOf(c) !== undefined) c.res.headers.append("Set-Cookie", clearedRefreshCookie());
  };
}
