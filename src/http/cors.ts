/**
 * CORS for browser apps, with the gateway as the one authority: it answers preflights itself (never
 * the origin) and owns every `Access-Control-*` header of every response (see docs/browser-apps.md).
 */
import type { Context, MiddlewareHandler } from "hono";
import { ConfigError, type Bindings } from "../config";
import type { AppEnv } from "../gateway";
import { GatewayError } from "../gateway-error";

/** `CORS_ORIGINS` and `CORS_ALLOW_HEADERS`, validated. */
export interface CorsConfig {
  /** Exact serialised origins (`scheme://host[:port]`); empty = CORS off. */
  origins: ReadonlySet<string>;
  /** `Access-Control-Allow-Headers` of a preflight. */
  allowHeaders: string;
}

/** Request headers a browser app may send when `CORS_ALLOW_HEADERS` is unset. */
export const DEFAULT_ALLOW_HEADERS = "Authorization, Content-Type";
/** Every method the proxied API may serve; the gateway's own routes refuse the rest with 405. */
export const ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE";
/** Response headers a browser app may read besides the CORS-safelisted ones. */
export const EXPOSE_HEADERS = "WWW-Authenticate, X-Request-Id, Retry-After, RateLimit, RateLimit-Policy";
/** How long a browser may cache a preflight answer, seconds (Chromium caps it at 7200). */
export const PREFLIGHT_MAX_AGE = "600";

/** RFC 9110 token: the characters of a header name. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const cache = new WeakMap<Bindings, CorsConfig>();

function list(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
}

function parseOrigin(entry: string): string {
  const url = URL.parse(entry);
  if (entry === "*" || !url || (url.protocol !== "https:" && url.protocol !== "http:") || url.origin !== entry) {
    const hint = url && url.origin !== "null" ? ` (did you mean ${url.origin}?)` : "";
    throw new ConfigError(
      `CORS_ORIGINS must list exact origins such as https://app.example.com (scheme://host[:port], no path, no trailing slash, no *); got ${JSON.stringify(entry)}${hint}`,
    );
  }
  return entry;
}

function parseAllowHeaders(raw: string | undefined): string {
  const names = list(raw);
  if (names.length === 0) return DEFAULT_ALLOW_HEADERS;
  for (const name of names) {
    if (!HEADER_NAME.test(name) || name === "*") {
      throw new ConfigError(`CORS_ALLOW_HEADERS must list header names, got ${JSON.stringify(name)}`);
    }
  }
  return names.join(", ");
}

/** Reads and validates the CORS settings once per `env` (a bad entry fails the request loudly, like all config). */
export function corsConfig(env: Bindings): CorsConfig {
  let config = cache.get(env);
  if (!config) {
    config = {
      origins: new Set(list(env.CORS_ORIGINS).map(parseOrigin)),
      allowHeaders: parseAllowHeaders(env.CORS_ALLOW_HEADERS),
    };
    cache.set(env, config);
  }
  return config;
}

/** The request's `Origin` when it is on `CORS_ORIGINS`, else undefined (no `Origin`, another one, or CORS off). */
export function allowedOrigin(c: Context<AppEnv>): string | undefined {
  const origin = c.req.raw.headers.get("Origin");
  if (origin === null || !c.env.CORS_ORIGINS) return undefined;
  return corsConfig(c.env).origins.has(origin) ? origin : undefined;
}

/** Adds `Origin` to `Vary` unless it (or `*`) is already named. */
function varyOnOrigin(headers: Headers): void {
  const vary = headers.get("Vary");
  if (!vary) headers.set("Vary", "Origin");
  else if (!/(?:^|,)\s*(?:origin|\*)\s*(?:,|$)/i.test(vary)) headers.set("Vary", `${vary}, Origin`);
}

/** Removes every `Access-Control-*` header (e.g. ones the origin sent): only the gateway's policy applies. */
function dropAccessControl(headers: Headers): void {
  const names = [...headers.keys()].filter((name) => name.startsWith("access-control-"));
  for (const name of names) headers.delete(name);
}

function preflight(origin: string, config: CorsConfig): Response {
  return new Response(null, {
    status: 204,
    headers: {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Credentials": "true",
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": config.allowHeaders,
      "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
      Vary: "Origin",
      "Cache-Control": "no-store",
    },
  });
}

/**
 * The CORS middleware, first after the request id. A request without an `Origin` header (servers,
 * mobile apps, curl, same-origin GETs) passes untouched at the cost of one header lookup. A preflight (`OPTIONS` + `Origin` + `Access-Control-Request-Method`) is
 * answered here: 204 with the policy for an allowed origin, 403 `origin_not_allowed` without any CORS
 * header otherwise; neither reaches a route or the origin. Every other response to a request with an
 * `Origin` drops the `Access-Control-*` headers it carries (e.g. the origin's), varies on `Origin`
 * (when CORS is on) and, for an allowed origin, gets `Allow-Origin`, `Allow-Credentials` and
 * `Expose-Headers`, problem+json answers included.
 */
export function cors(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const origin = c.req.raw.headers.get("Origin");
    // not a browser's call (servers, mobile apps, curl): exactly the JSON behaviour, no CORS work at all
    if (origin === null) return next();
    const config = c.env.CORS_ORIGINS ? corsConfig(c.env) : undefined;
    const allowed = origin !== null && config?.origins.has(origin) ? origin : undefined;
    if (c.req.method === "OPTIONS" && c.req.raw.headers.has("Access-Control-Request-Method")) {
      if (allowed === undefined || config === undefined) {
        throw new GatewayError("origin_not_allowed", "This origin is not allowed to call the gateway from a browser.");
      }
      return preflight(allowed, config);
    }
    await next();
    let headers = c.res.headers;
    try {
      dropAccessControl(headers);
    } catch {
      // immutable headers (a response passed through as it came): copy once, then edit
      c.res = new Response(c.res.body, c.res);
      headers = c.res.headers;
      dropAccessControl(headers);
    }
    if (config) varyOnOrigin(headers);
    if (allowed !== undefined) {
      headers.set("Access-Control-Allow-Origin", allowed);
      headers.set("Access-Control-Allow-Credentials", "true");
      headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
  };
}
