/**
 * The OpenAPI 3.1 document of the gateway's own routes, generated at build time from the zod schemas in
 * `schemas.ts` (`npm run openapi:generate` writes `openapi.json`, which the Worker serves as it is).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import {
  BEARER_PROBLEMS,
  BODY_PROBLEMS,
  CreateSecretRequest,
  HEADERS,
  HealthResponse,
  INTERNAL_PROBLEM,
  JSON_TYPE,
  LoginRequest,
  ORIGIN_NOT_ALLOWED,
  Problem,
  RefreshRequest,
  RevokeRequest,
  SecretCreated,
  SecretList,
  TokenResponse,
  UNAVAILABLE_PROBLEM,
  emptyResponse,
  jsonResponse,
  problemResponseSpec,
} from "./schemas";

/** Request bodies are accepted as JSON or as a form with the same fields. */
function bodyOf(schema: z.ZodType, description: string) {
  return {
    required: true,
    description,
    content: { [JSON_TYPE]: { schema }, "application/x-www-form-urlencoded": { schema } },
  };
}

/**
 * Registers every gateway-owned route. `OpenAPIHono` is used only for its registry and its 3.1
 * generator; the routes themselves stay plain Hono handlers that validate with the same schemas.
 */
function buildSpec(): OpenAPIHono {
  const spec = new OpenAPIHono();
  const registry = spec.openAPIRegistry;
  registry.register("Problem", Problem);

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

  registry.registerPath({
    method: "get",
    path: "/health",
    operationId: "getHealth",
    summary: "Liveness check; no authentication, touches no storage.",
    tags: ["gateway"],
    responses: { 200: jsonResponse("The gateway is up.", HealthResponse) },
  });

  registry.registerPath({
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    summary: "This document.",
    tags: ["gateway"],
    responses: {
      200: {
        description: "The OpenAPI 3.1 document.",
        headers: { "X-Request-Id": HEADERS.requestId },
        content: { [JSON_TYPE]: { schema: { type: "object" } } },
      },
    },
  });

  registry.registerPath({
    method: "post",
    path: "/authenticate",
    operationId: "authenticate",
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
      401: problemResponseSpec(["invalid_credentials"], "Unknown email, wrong password or wrong domain"),
      403: problemResponseSpec(
        ["plan_not_eligible", "account_suspended"],
        "Plan without API access, or member or organisation suspended",
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
      ...BODY_PROBLEMS,
      401: problemResponseSpec(["invalid_grant"], "Unknown, expired, revoked or already rotated refresh token", {
        "Set-Cookie": HEADERS.setRefreshCookie,
      }),
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

  return spec;
}

/** Metadata of the document. */
const INFO = {
  title: "Gridgate gateway",
  version: "1",
  description:
    "The routes the gateway answers itself. Every other path is proxied to the origin after Bearer authentication, plan and scope checks (see README.md). Errors are RFC 9457 problem+json; every response carries X-Request-Id.",
};

/** The document, as `scripts/openapi.ts` writes it to `src/openapi/openapi.json`. */
export function openApiDocument(): unknown {
  return buildSpec().getOpenAPI31Document({ openapi: "3.1.0", info: INFO });
}
