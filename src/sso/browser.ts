/** The browser's side of a single sign-on: the binding cookie, the `return_to` allowlist, and the app's error redirect. */
import type { CorsSettings } from "../config";
import type { SsoErrorCode } from "./failure";

/** The cookie that binds a sign-in to the browser that started it (login CSRF: a code only counts in that browser). */
export const SSO_COOKIE = "__Secure-gridgate-sso";
const SSO_COOKIE_PATH = "/authenticate/sso/callback";
/** How long a started sign-in may take, ms: the state's and the cookie's lifetime. */
export const SSO_STATE_TTL_MS = 600_000;
const MAX_RETURN_TO = 2_048;

// Lax, not Strict: docs/security.md § Single sign-on.
const ATTRIBUTES = `Path=${SSO_COOKIE_PATH}; HttpOnly; Secure; SameSite=Lax`;

/** The `Set-Cookie` value binding a new sign-in to this browser. */
export function ssoCookie(value: string): string {
  return `${SSO_COOKIE}=${value}; Max-Age=${SSO_STATE_TTL_MS / 1000}; ${ATTRIBUTES}`;
}

/** The `Set-Cookie` value that makes the browser forget it. */
export function clearedSsoCookie(): string {
  return `${SSO_COOKIE}=; Max-Age=0; ${ATTRIBUTES}`;
}

/** The binding cookie's value in a request, if any. */
export function ssoCookieOf(headers: Headers): string | undefined {
  const prefix = `${SSO_COOKIE}=`;
  const value = (headers.get("Cookie") ?? "")
    .split(";")
    .map((pair) => pair.trim())
    .find((pair) => pair.startsWith(prefix))
    ?.slice(prefix.length);
  return value ? value : undefined;
}

/** `raw` as a URL to return to if its origin is on `CORS_ORIGINS`, without credentials or fragment; else undefined. */
export function allowedReturnTo(cors: CorsSettings, raw: string): URL | undefined {
  if (raw.length > MAX_RETURN_TO || cors.origins.size === 0) return undefined;
  const url = URL.parse(raw);
  if (!url || url.username || url.password || url.hash || raw.includes("#")) return undefined;
  return cors.origins.has(url.origin) ? url : undefined;
}

/** `returnTo` with `error` and `error_description` (RFC 6749 §4.1.2.1) added to its query. */
export function errorRedirect(returnTo: string, error: SsoErrorCode, description: string): string {
  const url = new URL(returnTo);
  url.searchParams.set("error", error);
  url.searchParams.set("error_description", description);
  return url.href;
}
