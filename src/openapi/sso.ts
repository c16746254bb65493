/** The OpenAPI description of the single sign-on routes (build time only, like the rest of `src/openapi/`). */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { GATEWAY_MADE_HEADERS, HEADERS, INTERNAL_PROBLEM, problemResponseSpec, UNAVAILABLE_PROBLEM } from "./schemas";

/** Query of `GET /authenticate/sso/start`: `return_to` and exactly one of `email` and `domain`. */
const SsoStartQuery = z.object({
  email: z
    .string()
    .min(3)
    .max(320)
    .optional()
    .meta({ description: "The member's email: its domain picks the connection; sent on as `login_hint`." }),
  domain: z
    .string()
    .min(1)
    .max(253)
    .optional()
    .meta({ description: "Instead of `email`: the organisation's domain (or a domain routed to its connection)." }),
  return_to: z.url().max(2048).meta({
    description:
      "Where the browser goes back to: an absolute URL whose origin is exactly one of CORS_ORIGINS, no credentials, no fragment.",
  }),
});

/** Query of `GET /authenticate/sso/callback`, as the identity provider sends it (RFC 6749 §4.1.2, RFC 9207). */
const SsoCallbackQuery = z.object({
  state: z.string().optional(),
  code: z.string().optional(),
  iss: z.string().optional(),
  error: z.string().optional(),
  error_description: z.string().optional(),
});

const REDIRECT_HEADERS = {
  ...GATEWAY_MADE_HEADERS,
  "Cache-Control": HEADERS.noStore,
  Location: {
    description: "Where the browser goes next.",
    required: true,
    schema: { type: "string" as const, format: "uri" },
  },
  "Referrer-Policy": {
    description: "The callback's URL (with its code) is never sent on as a referrer.",
    required: true,
    schema: { type: "string" as const, const: "no-referrer" },
  },
};

/** Registers `GET /authenticate/sso/start` and `GET /authenticate/sso/callback`. */
export function registerSso(registry: OpenAPIHono["openAPIRegistry"]): void {
  const publicRoute: Record<string, string[]>[] = [];
  registry.registerPath({
    method: "get",
    path: "/authenticate/sso/start",
    operationId: "startSso",
    security: publicRoute,
    summary: "Starts single sign-on at the organisation's OpenID Provider (opened by the browser, not fetched).",
    description:
      "Finds the connection by the email's domain (or the organisation's domain) and redirects to the provider's authorization endpoint with `state`, `nonce` and a PKCE S256 challenge; the sign-in is bound to this browser by an HttpOnly cookie. A domain without a connection, or a provider that is down or slow, sends the browser back to `return_to` with `error` (RFC 6749 §4.1.2.1). Counts against the per-IP login limit.",
    tags: ["single sign-on"],
    request: { query: SsoStartQuery },
    responses: {
      302: {
        description:
          "To the provider's authorization endpoint, with `Set-Cookie: __Secure-gridgate-sso=…; Max-Age=600; Path=/authenticate/sso/callback; HttpOnly; Secure; SameSite=Lax`; or back to `return_to` with `error` (`invalid_request`, `temporarily_unavailable`) and `error_description`.",
        headers: {
          ...REDIRECT_HEADERS,
          "Set-Cookie": {
            description: "The sign-in's binding cookie (only when going to the provider).",
            required: false,
            schema: { type: "string" as const, pattern: "^__Secure-gridgate-sso=" },
          },
        },
      },
      400: problemResponseSpec(
        ["invalid_request"],
        "`return_to` missing or not on an allowed origin (never redirected to), neither or both of `email` and `domain`, or a parameter given twice",
      ),
      429: problemResponseSpec(["rate_limited"], "Too many logins from this IP", { "Retry-After": HEADERS.retryAfter }),
      ...INTERNAL_PROBLEM,
    },
  });
  registry.registerPath({
    method: "get",
    path: "/authenticate/sso/callback",
    operationId: "finishSso",
    security: publicRoute,
    summary: "Where the OpenID Provider sends the browser back; register this URL at the provider.",
    description:
      "Takes the sign-in's state (single use, at most 10 minutes old, from the browser that started it), redeems the code, verifies the ID token and maps its verified email to an active member of the organisation. Success: the refresh cookie (as a password login in a browser app gives) and a redirect to `return_to`, where the app refreshes by cookie for its access token; no token is ever in a URL.",
    tags: ["single sign-on"],
    request: { query: SsoCallbackQuery },
    responses: {
      302: {
        description:
          "To `return_to`: signed in (`Set-Cookie` with the refresh cookie), or with `error` (`access_denied`, `invalid_request`, `server_error`, `temporarily_unavailable`) and `error_description`. The binding cookie is cleared either way.",
        headers: {
          ...REDIRECT_HEADERS,
          "Set-Cookie": {
            description:
              "`__Secure-gridgate-refresh=<refresh token>; Max-Age=<refresh lifetime>; Path=/authenticate; HttpOnly; Secure; SameSite=Strict` on success, and the binding cookie cleared.",
            required: true,
            schema: { type: "string" as const },
          },
        },
      },
      400: problemResponseSpec(
        ["invalid_request"],
        "No `state`, or one that is unknown, already used, or whose `return_to` is no longer allowed: there is no safe place to send the browser",
      ),
      429: problemResponseSpec(["rate_limited"], "Too many sign-in callbacks from this IP", {
        "Retry-After": HEADERS.retryAfter,
      }),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });
}
