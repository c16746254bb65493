/** Zod schemas and response building blocks of the OpenAPI document; build time only (the Worker: http/fields.ts). */
import { z } from "zod";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import type { ProblemCode } from "../gateway-error";
import { PROBLEMS } from "../http/problem";

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

/** Body of `POST /authenticate/revoke`: `refresh_token` (or RFC 7009's `token`) and/or `all: true` with a Bearer. */
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

/** Body of every response that issues tokens; a browser app gets no `refresh_token` (it is in the cookie). */
export const TokenResponse = z
  .union([
    z.strictObject(tokenFields).meta({ title: "Tokens (servers, mobile apps, CLI: no allowed Origin)" }),
    z
      .strictObject(browserTokenFields)
      .meta({ title: "Tokens for a browser app (the refresh token is in the HttpOnly cookie)" }),
  ])
  .meta({ id: "TokenResponse" });

/** RFC 9457 problem details as `problemResponse` in http/problem.ts writes them, with the gateway's `code` extension. */
export const Problem = z
  .strictObject({
    type: z.string().regex(/^urn:gridgate:problem:[a-z_]+$/),
    title: z.string(),
    status: z.int().min(400).max(599).describe("The response's HTTP status."),
    detail: z.string(),
    code: z
      .enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]])
      .describe("Machine-readable reason (a closed list); the last segment of `type`."),
    request_id: z.uuid().describe("Same value as the X-Request-Id header."),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details (application/problem+json)." });

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

/** A public key of `GET /.well-known/jwks.json`: only public members (RFC 7517, RFC 8037), never `d` or `k`. */
const PublicJwk = z
  .strictObject({
    kty: z.enum(["OKP", "EC"]),
    crv: z.enum(["Ed25519", "P-256"]),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    y: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/)
      .optional()
      .describe("P-256 keys only."),
    kid: z.string().describe("The key's RFC 7638 thumbprint (SHA-256, base64url); X-Gateway-Assertion names it."),
    alg: z.enum(["EdDSA", "ES256"]),
    use: z.literal("sig"),
  })
  .meta({ id: "PublicJwk" });

/** Body of `GET /.well-known/jwks.json`. */
export const Jwks = z.strictObject({ keys: z.array(PublicJwk) }).meta({ id: "Jwks" });

/** Media types a gateway-owned route answers with. */
export const JSON_TYPE = "application/json";
const PROBLEM_TYPE = "application/problem+json";

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
  noSniff: {
    description: "On every response the gateway makes itself (not on the origin's).",
    required: true,
    schema: { type: "string", const: "nosniff" },
  },
  varyOrigin: {
    description:
      "On every response the gateway makes itself, whatever the request's `Origin`: its CORS headers depend on it, so a cache keys it by `Origin`.",
    required: true,
    schema: { type: "string", pattern: "(^|,)\\s*Origin\\s*(,|$)" },
  },
  bearerChallenge: {
    description: 'RFC 6750 challenge (`Bearer realm="api"`, with `error=` when a token was presented).',
    required: true,
    schema: { type: "string", pattern: "^Bearer " },
  },
  scopeChallenge: {
    description:
      'With `insufficient_scope` only: `Bearer realm="api", error="insufficient_scope", scope="…"` naming the scopes that would allow the request, narrowest first.',
    required: false,
    schema: { type: "string", pattern: '^Bearer realm="api", error="insufficient_scope", scope="' },
  },
  rateLimitPolicy: {
    description:
      'The organisation\'s limit (draft-ietf-httpapi-ratelimit-headers-11): `"organisation";q=<requests>;w=<seconds>`.',
    required: true,
    schema: { type: "string", pattern: '^"organisation";q=[0-9]+;w=[0-9]+$' },
  },
  rateLimit: {
    description: 'What is left of it: `"organisation";r=0;t=<seconds>` (`t` equals Retry-After).',
    required: true,
    schema: { type: "string", pattern: '^"organisation";r=0;t=[0-9]+$' },
  },
  allow: { description: "Methods the route supports.", required: true, schema: { type: "string" } },
  publicCache: {
    description: "Shared caches and origins may keep it this long (seconds).",
    required: true,
    schema: { type: "string", pattern: "^public, max-age=[0-9]+$" },
  },
  etag: {
    description: "Strong validator of the body; send it back in `If-None-Match` for a 304.",
    required: true,
    schema: { type: "string", pattern: '^"[A-Za-z0-9_-]+"$' },
  },
  setRefreshCookie: {
    description:
      "Only for a browser app (an `Origin` on CORS_ORIGINS): `__Secure-gridgate-refresh=<refresh token>; Max-Age=<refresh lifetime>; Path=/authenticate; HttpOnly; Secure; SameSite=Strict`, or the same with an empty value and `Max-Age=0` when the cookie is cleared (logout, refused refresh).",
    required: false,
    schema: { type: "string", pattern: "^__Secure-gridgate-refresh=" },
  },
} satisfies Record<string, HeaderSpec>;

/** Headers registered once under `components.headers`, referenced by every gateway-made response. */
export const SHARED_HEADERS = { NoSniff: HEADERS.noSniff, VaryOrigin: HEADERS.varyOrigin };

/** Headers of every response the gateway makes itself. */
export const GATEWAY_MADE_HEADERS = {
  "X-Request-Id": HEADERS.requestId,
  "X-Content-Type-Options": { $ref: "#/components/headers/NoSniff" },
  Vary: { $ref: "#/components/headers/VaryOrigin" },
};

/** A JSON success response with the headers of every gateway-made response. */
export function jsonResponse(description: string, schema: z.ZodType, headers: Record<string, HeaderSpec> = {}) {
  return {
    description,
    headers: { ...GATEWAY_MADE_HEADERS, ...headers },
    content: { [JSON_TYPE]: { schema } },
  };
}

function componentRef(kind: "schemas" | "responses", name: string): { $ref: string } {
  return { $ref: `#/components/${kind}/${name}` };
}

/** A problem+json response narrowed to the one status its `codes` share in `PROBLEMS`, and to those codes. */
export function problemResponseSpec(
  codes: readonly [ProblemCode, ...ProblemCode[]],
  description: string,
  headers: Record<string, HeaderSpec> = {},
) {
  const status = PROBLEMS[codes[0]].status;
  const other = codes.find((code) => PROBLEMS[code].status !== status);
  if (other !== undefined) throw new Error(`${other} is not a ${status} in PROBLEMS; one response per status`);
  return {
    description,
    headers: { ...GATEWAY_MADE_HEADERS, "Cache-Control": HEADERS.noStore, ...headers },
    content: {
      [PROBLEM_TYPE]: {
        schema: {
          allOf: [
            componentRef("schemas", "Problem"),
            {
              type: "object" as const,
              properties: { status: { const: status }, code: { type: "string" as const, enum: [...codes] } },
            },
          ],
        },
      },
    },
  };
}

/** A success without a body. */
export function emptyResponse(description: string, headers: Record<string, HeaderSpec> = {}) {
  return { description, headers: { ...GATEWAY_MADE_HEADERS, ...headers } };
}

/** The CSRF refusal of the refresh cookie: used without an allowed `Origin`. */
export const ORIGIN_NOT_ALLOWED =
  "The refresh cookie was sent without an `Origin` on CORS_ORIGINS (`origin_not_allowed`); nothing was rotated or revoked";

const PROXIED_FORBIDDEN = [
  "The organisation is not active or not on an API plan (`plan_not_eligible`);",
  "the token's scope does not allow this method on this resource (`insufficient_scope`, with WWW-Authenticate);",
  "or the member of a dynamic-secret token is suspended (`account_suspended`)",
].join(" ");

/** Responses given by several operations: registered once under `components.responses`, referenced by `$ref`. */
export const SHARED_RESPONSES = {
  InvalidBody: problemResponseSpec(["invalid_request"], "Malformed body, or a missing or mistyped field"),
  PayloadTooLarge: problemResponseSpec(["payload_too_large"], "Body over 16 KiB"),
  UnsupportedMediaType: problemResponseSpec(
    ["unsupported_media_type"],
    "Content type other than JSON or form-urlencoded",
  ),
  BearerRefused: problemResponseSpec(
    ["missing_token", "invalid_token", "basic_not_supported"],
    "No, a malformed or an invalid Bearer token (expired, revoked, bad signature, …)",
    { "WWW-Authenticate": HEADERS.bearerChallenge },
  ),
  TemporarilyUnavailable: problemResponseSpec(
    ["temporarily_unavailable"],
    "A storage dependency failed or did not answer in time; nothing was decided or changed. Keep the session and retry after Retry-After",
    { "Retry-After": HEADERS.retryAfter },
  ),
  Internal: problemResponseSpec(["internal"], "Misconfiguration or unexpected error; details only in the logs"),
  ProxiedPathRefused: problemResponseSpec(
    ["invalid_request", "ambiguous_path"],
    "Nothing was forwarded: the path is not valid percent-encoding or holds an encoded `/` or `\\` (`invalid_request`), a method override was asked for (`invalid_request`), or the path is in a form an origin could resolve differently (`ambiguous_path`)",
  ),
  ProxiedForbidden: problemResponseSpec(
    ["plan_not_eligible", "insufficient_scope", "account_suspended"],
    PROXIED_FORBIDDEN,
    {
      "WWW-Authenticate": HEADERS.scopeChallenge,
    },
  ),
  ProxiedOptionsForbidden: problemResponseSpec(
    ["origin_not_allowed", "plan_not_eligible", "insufficient_scope", "account_suspended"],
    `A CORS preflight from an origin not on CORS_ORIGINS (\`origin_not_allowed\`, without CORS headers). Otherwise, as for the other methods: ${PROXIED_FORBIDDEN}`,
    { "WWW-Authenticate": HEADERS.scopeChallenge },
  ),
  ApiRateLimited: problemResponseSpec(
    ["rate_limited"],
    "The organisation's per-minute API limit (set by its plan) is used up; nothing was forwarded",
    { "Retry-After": HEADERS.retryAfter, "RateLimit-Policy": HEADERS.rateLimitPolicy, RateLimit: HEADERS.rateLimit },
  ),
  OriginUnreachable: problemResponseSpec(["origin_unreachable"], "No origin is configured, or it could not be reached"),
  OriginTimeout: problemResponseSpec(
    ["origin_timeout"],
    "The origin sent no response headers within ORIGIN_TIMEOUT_MS",
  ),
  OriginAnswer: {
    description:
      "The origin's own answer, whatever its status, passed through unchanged (status, headers and body); the gateway only sets X-Request-Id and, for a browser app, its CORS headers.",
    headers: { "X-Request-Id": HEADERS.requestId },
    content: { "*/*": { schema: {} } },
  },
  PreflightAccepted: emptyResponse(
    "A CORS preflight (`Origin` on CORS_ORIGINS and `Access-Control-Request-Method`), answered by the gateway: Access-Control-Allow-Origin, -Credentials, -Methods, -Headers and -Max-Age. Never forwarded; no token needed.",
    { "Cache-Control": HEADERS.noStore },
  ),
} as const;

/** The name of a response in {@link SHARED_RESPONSES}. */
export type SharedResponse = keyof typeof SHARED_RESPONSES;

/** A `$ref` to one of {@link SHARED_RESPONSES}. */
export function responseRef(name: SharedResponse): { $ref: string } {
  return componentRef("responses", name);
}

/** Problem responses every gateway-owned POST route can give for a bad body. */
export const BODY_PROBLEMS = {
  400: responseRef("InvalidBody"),
  413: responseRef("PayloadTooLarge"),
  415: responseRef("UnsupportedMediaType"),
} as const;

/** Refusals of routes that need a Bearer access token. */
export const BEARER_PROBLEMS = { 401: responseRef("BearerRefused") } as const;

/** A storage dependency failed or did not answer in time: nothing was decided, retry after `Retry-After`. */
export const UNAVAILABLE_PROBLEM = { 503: responseRef("TemporarilyUnavailable") } as const;

/** The opaque 500 any route can give when the deployment is misconfigured. */
export const INTERNAL_PROBLEM = { 500: responseRef("Internal") } as const;

/** The gateway's own answers on the proxied API; `default` is the origin's answer, passed through. */
export const PROXIED_RESPONSES = {
  default: responseRef("OriginAnswer"),
  400: responseRef("ProxiedPathRefused"),
  401: responseRef("BearerRefused"),
  403: responseRef("ProxiedForbidden"),
  429: responseRef("ApiRateLimited"),
  ...INTERNAL_PROBLEM,
  502: responseRef("OriginUnreachable"),
  ...UNAVAILABLE_PROBLEM,
  504: responseRef("OriginTimeout"),
} as const;
