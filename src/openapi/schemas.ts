/**
 * Zod schemas of the gateway's request bodies and responses, and the response/header building blocks of
 * its OpenAPI document. Build-time only (scripts/openapi.ts and the tests): the Worker validates bodies with
 * src/http/fields.ts, and test/fields.test.ts checks that both accept and refuse the same bodies.
 */
import { z } from "zod";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import type { ProblemCode } from "../gateway-error";

const encoder = new TextEncoder();

/** Body of `POST /authenticate`. */
export const LoginRequest = z
  .object({
    email: z.string().min(1).max(320),
    password: z
      .string()
      .min(1)
      .refine(
        (password) => encoder.encode(password).byteLength <= MAX_PASSWORD_BYTES,
        `must be at most ${MAX_PASSWORD_BYTES} bytes`,
      ),
    domain: z.string().min(1).max(253).optional(),
  })
  .meta({ id: "LoginRequest", description: `\`password\` is at most ${MAX_PASSWORD_BYTES} UTF-8 bytes.` });

/** Body of `POST /authenticate/refresh`; other fields (e.g. `grant_type`) are ignored. */
export const RefreshRequest = z.object({ refresh_token: z.string().min(1) }).meta({ id: "RefreshRequest" });

const FormBoolean = z.union([z.boolean(), z.enum(["true", "false"]).transform((value) => value === "true")]);

/**
 * Body of `POST /authenticate/revoke`: `refresh_token` (or RFC 7009's `token`, with an optional,
 * advisory `token_type_hint`), and/or `all: true` with a Bearer access token.
 */
export const RevokeRequest = z
  .object({
    refresh_token: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    token_type_hint: z.string().max(64).optional(),
    all: FormBoolean.optional(),
  })
  .meta({ id: "RevokeRequest" });

/** Body of `POST /authenticate/secrets`; the body itself is optional. */
export const CreateSecretRequest = z
  .object({
    label: z
      .string()
      .max(100)
      .regex(/^[^\p{Cc}]*$/u, "must not contain control characters")
      .optional(),
  })
  .strict()
  .meta({ id: "CreateSecretRequest" });

/** Body of `GET /health`. */
export const HealthResponse = z.strictObject({ status: z.literal("ok") }).meta({ id: "Health" });

const tokenFields = {
  access_token: z.string().min(1).describe("HS256 JWT signed with JWT_SECRET; send as `Authorization: Bearer …`."),
  token_type: z.literal("Bearer"),
  expires_in: z.int().positive().describe("Seconds until the access token expires (ACCESS_TOKEN_TTL)."),
  refresh_token: z.string().min(1).describe("Opaque; single use, rotated by `POST /authenticate/refresh`."),
  refresh_token_expires_in: z.int().positive().describe("Seconds until the refresh token expires (REFRESH_TOKEN_TTL)."),
  scope: z.string().describe("Space-delimited scopes: the member's role, then its granular scopes."),
};

const { refresh_token: _inCookie, ...browserTokenFields } = tokenFields;

/**
 * Body of every response that issues tokens (`POST /authenticate`, `POST /authenticate/refresh`): with
 * `refresh_token` for clients without an allowed `Origin`; without it for a browser app, which gets the
 * refresh token as the HttpOnly cookie `__Secure-gridgate-refresh` instead.
 */
export const TokenResponse = z
  .union([
    z.strictObject(tokenFields).meta({ title: "Tokens (servers, mobile apps, CLI: no allowed Origin)" }),
    z
      .strictObject(browserTokenFields)
      .meta({ title: "Tokens for a browser app (the refresh token is in the HttpOnly cookie)" }),
  ])
  .meta({ id: "TokenResponse" });

const ProblemFields = z.strictObject({
  type: z.string().regex(/^urn:gridgate:problem:[a-z_]+$/),
  title: z.string(),
  status: z.int().min(400).max(599),
  detail: z.string(),
  code: z
    .string()
    .regex(/^[a-z_]+$/)
    .describe("Machine-readable reason; the last segment of `type`."),
  request_id: z.uuid().describe("Same value as the X-Request-Id header."),
});

/** RFC 9457 problem details as `problemResponse` in http/problem.ts writes them, with the gateway's `code` extension. */
export const Problem = ProblemFields.meta({
  id: "Problem",
  description: "RFC 9457 problem details (application/problem+json).",
});

/** Body of `POST /authenticate/secrets` (201): the secret value is shown this once. */
export const SecretCreated = z
  .strictObject({
    kid: z.string().describe("Put it in the JWS header `kid` of tokens signed with this secret."),
    secret: z.string().min(1).describe("The HS256 secret; returned only here."),
    label: z.string(),
    algorithm: z.literal("HS256"),
    organisationEntityIdentifier: z.string(),
    created_at: z.int().describe("Seconds since the epoch."),
  })
  .meta({ id: "SecretCreated" });

/** Body of `GET /authenticate/secrets`: live secrets, never their values. */
export const SecretList = z
  .strictObject({
    secrets: z.array(
      z.strictObject({ kid: z.string(), label: z.string(), created_at: z.int(), created_by: z.int().nullable() }),
    ),
  })
  .meta({ id: "SecretList" });

/** Media types a gateway-owned route answers with. */
export const JSON_TYPE = "application/json";
export const PROBLEM_TYPE = "application/problem+json";

type HeaderSpec = {
  description: string;
  required: boolean;
  schema: { type: "string"; format?: string; pattern?: string; const?: string };
};

/** Headers that appear in the document; `required` ones are checked against real responses in the tests. */
export const HEADERS = {
  requestId: {
    description: "Gateway-generated id of this request, also logged and sent to the origin.",
    required: true,
    schema: { type: "string", format: "uuid" },
  },
  noStore: {
    description: "Responses that carry tokens or refusals are never cached.",
    required: true,
    schema: { type: "string", const: "no-store" },
  },
  retryAfter: {
    description: "Seconds to wait before the next attempt.",
    required: true,
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
  bearerChallenge: {
    description: 'RFC 6750 challenge (`Bearer realm="api"`, with `error=` when a token was presented).',
    required: true,
    schema: { type: "string", pattern: "^Bearer " },
  },
  allow: { description: "Methods the route supports.", required: true, schema: { type: "string" } },
  setRefreshCookie: {
    description:
      "Only for a browser app (an `Origin` on CORS_ORIGINS): `__Secure-gridgate-refresh=<refresh token>; Max-Age=<refresh lifetime>; Path=/authenticate; HttpOnly; Secure; SameSite=Strict`, or the same with an empty value and `Max-Age=0` when the cookie is cleared (logout, refused refresh).",
    required: false,
    schema: { type: "string", pattern: "^__Secure-gridgate-refresh=" },
  },
} satisfies Record<string, HeaderSpec>;

/** A JSON success response whose headers always include X-Request-Id. */
export function jsonResponse(description: string, schema: z.ZodType, headers: Record<string, HeaderSpec> = {}) {
  return {
    description,
    headers: { "X-Request-Id": HEADERS.requestId, ...headers },
    content: { [JSON_TYPE]: { schema } },
  };
}

/**
 * A problem+json response for one status: the shared Problem schema narrowed to the `codes` this
 * route gives with that status (typed against the closed ProblemCode union).
 */
export function problemResponseSpec(
  codes: readonly ProblemCode[],
  description: string,
  headers: Record<string, HeaderSpec> = {},
) {
  const schema = ProblemFields.extend({
    code: z.enum(codes).describe("Machine-readable reason; the last segment of `type`."),
  });
  return {
    description,
    headers: { "X-Request-Id": HEADERS.requestId, "Cache-Control": HEADERS.noStore, ...headers },
    content: { [PROBLEM_TYPE]: { schema } },
  };
}

/** Problem responses every gateway-owned POST route can give for a bad body. */
export const BODY_PROBLEMS = {
  400: problemResponseSpec(["invalid_request"], "Malformed body, or a missing or mistyped field"),
  413: problemResponseSpec(["payload_too_large"], "Body over 16 KiB"),
  415: problemResponseSpec(["unsupported_media_type"], "Content type other than JSON or form-urlencoded"),
} as const;

/** Refusals of routes that need a fixed-secret Bearer access token. */
export const BEARER_PROBLEMS = {
  401: problemResponseSpec(
    ["missing_token", "invalid_token", "basic_not_supported"],
    "No, a malformed or an invalid Bearer token",
    { "WWW-Authenticate": HEADERS.bearerChallenge },
  ),
} as const;

/** The CSRF refusal of the refresh cookie: used without an allowed `Origin`. */
export const ORIGIN_NOT_ALLOWED =
  "The refresh cookie was sent without an `Origin` on CORS_ORIGINS (`origin_not_allowed`); nothing was rotated or revoked";

/** A success without a body. */
export function emptyResponse(description: string, headers: Record<string, HeaderSpec> = {}) {
  return { description, headers: { "X-Request-Id": HEADERS.requestId, ...headers } };
}

/** The opaque 500 any route can give when the deployment is misconfigured. */
/** A storage dependency failed or did not answer in time: nothing was decided, retry after `Retry-After`. */
export const UNAVAILABLE_PROBLEM = {
  503: problemResponseSpec(
    ["temporarily_unavailable"],
    "A storage dependency failed or did not answer in time; nothing was decided or changed. Keep the session and retry after Retry-After",
    { "Retry-After": HEADERS.retryAfter },
  ),
} as const;

export const INTERNAL_PROBLEM = {
  500: problemResponseSpec(["internal"], "Misconfiguration or unexpected error; details only in the logs"),
} as const;
