/** The OpenAPI 3.1 document, built from `schemas.ts` (`npm run openapi:generate` writes `openapi.json`). */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import {
  BEARER_PROBLEMS,
  BODY_PROBLEMS,
  CreateSecretRequest,
  GATEWAY_MADE_HEADERS,
  HEADERS,
  Jwks,
  HealthResponse,
  INTERNAL_PROBLEM,
  JSON_TYPE,
  LoginRequest,
  ORIGIN_NOT_ALLOWED,
  PROXIED_RESPONSES,
  Problem,
  RefreshRequest,
  RevokeRequest,
  SHARED_HEADERS,
  SHARED_RESPONSES,
  SecretCreated,
  SecretList,
  TokenResponse,
  UNAVAILABLE_PROBLEM,
  emptyResponse,
  jsonResponse,
  problemResponseSpec,
  responseRef,
} from "./schemas";
import { registerSso } from "./sso";

/** Request bodies are accepted as JSON or as a form with the same fields. */
function bodyOf(schema: z.ZodType, description: string) {
  return {
    required: true,
    description,
    content: { [JSON_TYPE]: { schema }, "application/x-www-form-urlencoded": { schema } },
  };
}

/** Registers every gateway-owned route; `OpenAPIHono` serves only as registry and 3.1 generator. */
function buildSpec(): OpenAPIHono {
  const spec = new OpenAPIHono();
  const registry = spec.openAPIRegistry;
  registry.register("Problem", Problem);
  for (const [name, response] of Object.entries(SHARED_RESPONSES))
    registry.registerComponent("responses", name, response);
  for (const [name, header] of Object.entries(SHARED_HEADERS)) registry.registerComponent("headers", name, header);

  registry.registerComponent("securitySchemes", "bearerAccessToken", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "An access token from POST /authenticate, or a token signed with a dynamic secret.",
  });
  registry.registerComponent("securitySchemes", "refreshCookie", {
    type: "apiKey",
    in: "cookie",
    name: "__Secure-gridgate-refresh",
    description:
      "Browser apps only: the HttpOnly refresh-token cookie set for requests whose `Origin` is on CORS_ORIGINS (Path=/authenticate; HttpOnly; Secure; SameSite=Strict). Honoured only with such an `Origin` (CSRF); otherwise 403 `origin_not_allowed`.",
  });
  const cookieOrBody: { refreshCookie?: string[] }[] = [{}, { refreshCookie: [] }];
  const publicRoute: Record<string, string[]>[] = [];

  registry.registerPath({
    method: "get",
    path: "/health",
    operationId: "getHealth",
    security: publicRoute,
    summary: "Liveness check; no authentication, touches no storage.",
    tags: ["gateway"],
    responses: { 200: jsonResponse("The gateway is up.", HealthResponse) },
  });

  registry.registerPath({
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    security: publicRoute,
    summary: "This document.",
    tags: ["gateway"],
    responses: {
      200: {
        description: "The OpenAPI 3.1 document.",
        headers: { ...GATEWAY_MADE_HEADERS, "Cache-Control": HEADERS.publicCache },
        content: { [JSON_TYPE]: { schema: { type: "object" } } },
      },
    },
  });

  registry.registerPath({
    method: "get",
    path: "/.well-known/jwks.json",
    operationId: "getJwks",
    security: publicRoute,
    summary: "The public keys X-Gateway-Assertion is verified with (RFC 7517 JWK Set).",
    description:
      "Every EdDSA (Ed25519) and ES256 (P-256) key in ASSERTION_KEYS, the signing one and those still published, whichever ASSERTION_ALG is; never private or symmetric key material. An origin caches it at most `max-age` (docs/origin-integration.md).",
    tags: ["gateway"],
    request: {
      headers: z.object({
        "If-None-Match": z.string().optional().meta({ description: "An ETag of this document: 304 when current." }),
      }),
    },
    responses: {
      200: {
        description: "The JWK Set.",
        headers: { ...GATEWAY_MADE_HEADERS, "Cache-Control": HEADERS.publicCache, ETag: HEADERS.etag },
        content: { "application/jwk-set+json": { schema: Jwks } },
      },
      304: {
        description: "The client's copy (`If-None-Match`) is current.",
        headers: { ...GATEWAY_MADE_HEADERS, "Cache-Control": HEADERS.publicCache, ETag: HEADERS.etag },
      },
      ...INTERNAL_PROBLEM,
    },
  });

  registry.registerPath({
    method: "post",
    path: "/authenticate",
    operationId: "authenticate",
    security: publicRoute,
    summary: "Password login; issues an access token and a refresh token.",
    description:
      "Unknown email, wrong password and wrong domain all give the same 401. The 403s and the 409 are only given once the password verified.",
    tags: ["authentication"],
    request: { body: bodyOf(LoginRequest, "`domain` picks the organisation when the email belongs to several.") },
    responses: {
      200: jsonResponse("Tokens issued.", TokenResponse, {
        "Cache-Control": HEADERS.noStore,
        "Set-Cookie": HEADERS.setRefreshCookie,
      }),
      ...BODY_PROBLEMS,
      401: problemResponseSpec(["invalid_credentials"], "Unknown email, wrong password or wrong domain", {
        "WWW-Authenticate": HEADERS.bearerChallenge,
      }),
      403: problemResponseSpec(
        ["plan_not_eligible", "account_suspended", "sso_required"],
        "Plan without API access, or member or organisation suspended; or the organisation requires single sign-on (`sso_required`, whatever the password)",
      ),
      409: problemResponseSpec(
        ["domain_required"],
        "The password verifies in more than one organisation; send `domain`",
      ),
      429: problemResponseSpec(["rate_limited"], "Too many attempts", { "Retry-After": HEADERS.retryAfter }),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });

  registry.registerPath({
    method: "post",
    path: "/authenticate/refresh",
    operationId: "refreshTokens",
    summary: "Rotates a refresh token: new access and refresh tokens; presenting a rotated one revokes its family.",
    description:
      "A browser app (an `Origin` on CORS_ORIGINS) may send no body: the refresh cookie is used, and the successor comes back as the cookie. A refused refresh clears the cookie.",
    tags: ["authentication"],
    security: cookieOrBody,
    request: {
      body: {
        ...bodyOf(RefreshRequest, "Other fields (e.g. `grant_type`) are ignored."),
        required: false,
      },
    },
    responses: {
      200: jsonResponse("Tokens issued; the presented refresh token is spent.", TokenResponse, {
        "Cache-Control": HEADERS.noStore,
        "Set-Cookie": HEADERS.setRefreshCookie,
      }),
      400: problemResponseSpec(
        ["invalid_request", "invalid_grant"],
        "Malformed body, or a missing or mistyped field (`invalid_request`); or, as RFC 6749 §5.2 answers it, an unknown, expired, revoked or already rotated refresh token (`invalid_grant`)",
        { "Set-Cookie": HEADERS.setRefreshCookie },
      ),
      413: BODY_PROBLEMS[413],
      415: BODY_PROBLEMS[415],
      403: problemResponseSpec(
        ["plan_not_eligible", "account_suspended", "origin_not_allowed"],
        `Plan without API access, or member or organisation suspended; or: ${ORIGIN_NOT_ALLOWED}`,
      ),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });

  registry.registerPath({
    method: "post",
    path: "/authenticate/revoke",
    operationId: "revokeTokens",
    summary:
      "RFC 7009 revocation: 200 also for unknown tokens. `all: true` with a Bearer access token ends every session of that member.",
    description:
      "A browser app (an `Origin` on CORS_ORIGINS) may send no body: the refresh cookie's session is revoked and the cookie cleared (200 also without a cookie).",
    tags: ["authentication"],
    security: cookieOrBody,
    request: {
      body: {
        ...bodyOf(RevokeRequest, "`refresh_token` (or RFC 7009 `token`), and/or `all: true`."),
        required: false,
      },
    },
    responses: {
      200: emptyResponse("Revoked, or nothing to revoke.", {
        "Cache-Control": HEADERS.noStore,
        "Set-Cookie": HEADERS.setRefreshCookie,
      }),
      ...BODY_PROBLEMS,
      ...BEARER_PROBLEMS,
      403: problemResponseSpec(["origin_not_allowed"], ORIGIN_NOT_ALLOWED),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });

  const secretsSecurity = [{ bearerAccessToken: [] }];
  const secretsForbidden = problemResponseSpec(
    ["insufficient_scope", "plan_not_eligible", "account_suspended"],
    "Not an architect (with a WWW-Authenticate challenge), plan without API access, or suspended",
    { "WWW-Authenticate": HEADERS.scopeChallenge },
  );
  registry.registerPath({
    method: "post",
    path: "/authenticate/secrets",
    operationId: "createSecret",
    summary: "Creates a dynamic secret for the caller's organisation; the value is returned this once.",
    tags: ["dynamic secrets"],
    security: secretsSecurity,
    request: {
      body: {
        required: false,
        content: { [JSON_TYPE]: { schema: CreateSecretRequest } },
      },
    },
    responses: {
      201: jsonResponse("Created.", SecretCreated, { "Cache-Control": HEADERS.noStore }),
      ...BODY_PROBLEMS,
      ...BEARER_PROBLEMS,
      403: secretsForbidden,
      409: problemResponseSpec(["secret_limit_reached"], "The organisation already holds the maximum of live secrets"),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });
  registry.registerPath({
    method: "get",
    path: "/authenticate/secrets",
    operationId: "listSecrets",
    summary: "Lists the organisation's live dynamic secrets, without their values.",
    tags: ["dynamic secrets"],
    security: secretsSecurity,
    responses: {
      200: jsonResponse("Live secrets.", SecretList, { "Cache-Control": HEADERS.noStore }),
      ...BEARER_PROBLEMS,
      403: secretsForbidden,
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });
  registry.registerPath({
    method: "delete",
    path: "/authenticate/secrets/{kid}",
    operationId: "revokeSecret",
    summary: "Revokes a dynamic secret; tokens signed with it stop working.",
    tags: ["dynamic secrets"],
    security: secretsSecurity,
    request: { params: z.object({ kid: z.string().min(1).max(64) }) },
    responses: {
      204: emptyResponse("Revoked."),
      ...BEARER_PROBLEMS,
      403: secretsForbidden,
      404: problemResponseSpec(["not_found"], "No live secret with that kid in this organisation"),
      ...UNAVAILABLE_PROBLEM,
      ...INTERNAL_PROBLEM,
    },
  });

  registerSso(registry);
  registerProxiedApi(registry);
  return spec;
}

/** The gateway's own routes: every path except these is proxied. */
const GATEWAY_ROUTES =
  "`/health`, `/openapi.json`, `/authenticate` and every path under `/authenticate/` and `/.well-known/`";

/** The methods a browser app may send (CORS `Access-Control-Allow-Methods`), each documented on the proxied path. */
const PROXIED_METHODS = ["get", "head", "post", "put", "patch", "delete"] as const;

/** Registers the proxied API as one templated path, `/{proxiedPath}`. */
function registerProxiedApi(registry: OpenAPIHono["openAPIRegistry"]): void {
  registry.registerComponent("parameters", "ProxiedPath", {
    name: "proxiedPath",
    in: "path",
    required: true,
    description: `Any path other than ${GATEWAY_ROUTES}, several segments included (\`grids/12/cells\`): this one template stands for all of them. Send \`/\` as it is: a percent-encoded \`/\` or \`\\\` is refused (400). Its first segment, percent-decoded, is the resource the scope check reads; path and query reach the origin unchanged.`,
    schema: { type: "string", minLength: 1 },
    example: "grids/12/cells",
  });
  const common = {
    path: "/{proxiedPath}",
    description:
      "The gateway verifies the Bearer token, checks the organisation's plan, counts the request against the organisation's limit and checks the token's scope (docs/api.md, The proxied API), then forwards the request. Its own refusals and failures are listed by status; the origin's answers (`default`) pass through unchanged.",
    tags: ["proxied API"],
    parameters: [{ $ref: "#/components/parameters/ProxiedPath" }],
  };
  const body = {
    required: false,
    description: "Streamed to the origin unchanged.",
    content: { "*/*": { schema: {} } },
  };
  for (const method of PROXIED_METHODS) {
    registry.registerPath({
      ...common,
      method,
      operationId: `${method}Proxied`,
      summary: `${method.toUpperCase()} on the origin's API, through the gateway's checks${method === "head" ? " (answers carry no body)" : ""}.`,
      security: [{ bearerAccessToken: [] }],
      ...(method === "post" || method === "put" || method === "patch" ? { requestBody: body } : {}),
      responses: PROXIED_RESPONSES,
    });
  }
  registry.registerPath({
    ...common,
    method: "options",
    operationId: "optionsProxied",
    summary: "A CORS preflight is answered by the gateway; any other OPTIONS is proxied like the methods above.",
    security: [{}, { bearerAccessToken: [] }],
    responses: {
      ...PROXIED_RESPONSES,
      204: responseRef("PreflightAccepted"),
      403: responseRef("ProxiedOptionsForbidden"),
    },
  });
}

const INFO = {
  title: "Gridgate gateway",
  version: "1",
  description: [
    `The routes the gateway answers itself (${GATEWAY_ROUTES}), and the proxied API: every other path, forwarded to the origin after Bearer authentication, the plan check, the organisation's rate limit and the scope check (docs/api.md).`,
    "On the proxied API this document describes the gateway's own answers (`/{proxiedPath}`); the origin's own answers pass through unchanged, whatever their status, so a status listed there may also come from the origin with its own body.",
    "Refusals are RFC 9457 problem+json (`Problem`); every response carries X-Request-Id, and every response the gateway makes itself `X-Content-Type-Options: nosniff` and `Vary: Origin`. CORS preflights are answered by the gateway on every path (docs/browser-apps.md).",
  ].join("\n\n"),
  license: { name: "Proprietary: no licence is granted" },
};

/** The document, as `scripts/openapi.ts` writes it to `src/openapi/openapi.json`. */
export function openApiDocument(): unknown {
  return buildSpec().getOpenAPI31Document({
    openapi: "3.1.0",
    info: INFO,
    servers: [{ url: "/", description: "The gateway that serves this document." }],
    tags: [
      { name: "gateway", description: "Liveness and this document; no authentication." },
      { name: "authentication", description: "Login, refresh-token rotation and logout." },
      { name: "dynamic secrets", description: "An organisation's secrets for signing its own access tokens." },
      { name: "single sign-on", description: "Browser sign-in with the organisation's own OpenID Provider." },
      { name: "proxied API", description: "Every other path: the gateway's answers in front of the origin's API." },
    ],
  });
}
