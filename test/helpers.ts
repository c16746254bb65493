// Shared test helpers: requests through the Worker's HTTP surface, seeded logins, hand-made tokens.
import { env, exports } from "cloudflare:workers";
import { SignJWT } from "jose";
import { expect, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { ADMIN_SIGNATURE_HEADER, signAdminRequest } from "../src/admin/signature";
import { AUDIT_PREFIX, byPosition, parseAuditObject, type AuditRow } from "../src/audit/objects";

/** Base URL the tests address the gateway by. */
export const GATEWAY = "https://gateway.test";
/** `ORIGIN_URL` of the test configuration. */
export const ORIGIN = "https://origin.test/api";

/**
 * A spy called with the SQL of every statement prepared on `env.DB`, on the binding (the primary) or in one of its
 * sessions (reads a replica may answer).
 */
export function spyOnD1Statements() {
  const statements = vi.fn<(sql: string) => void>();
  const prepare = env.DB.prepare.bind(env.DB);
  vi.spyOn(env.DB, "prepare").mockImplementation((sql: string) => {
    statements(sql);
    return prepare(sql);
  });
  const withSession = env.DB.withSession.bind(env.DB);
  vi.spyOn(env.DB, "withSession").mockImplementation((constraint) => {
    const session = withSession(constraint);
    const inner = session.prepare.bind(session);
    session.prepare = (sql: string) => {
      statements(sql);
      return inner(sql);
    };
    return session;
  });
  return statements;
}

/** Sends a request through the gateway's own `fetch` handler. */
export function gateway(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(GATEWAY + path, init));
}

/** A fresh client IP per call, so the per-IP login limiter never couples tests. */
export function randomIp(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return `10.${bytes[0]}.${bytes[1]}.${bytes[2]}`;
}

/** The `Authorization` header of a bearer token, to merge into other headers. */
export function authorization(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** Request init carrying `token` as the bearer token. */
export function bearer(token: string): RequestInit {
  return { headers: authorization(token) };
}

/** `POST /authenticate` with a JSON body. */
export function postLogin(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return gateway("/authenticate", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp(), ...headers },
    body: JSON.stringify(body),
  });
}

/** Logs a seeded member in with the seed password and returns the token response body. */
export async function login(email: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const response = await postLogin({ email, password: SEED_PASSWORD, ...extra });
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

/** An access token of a seeded member. */
export async function accessTokenFor(email: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (await login(email, extra)).access_token;
}

/** Seconds since the epoch. */
export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** Claims of a valid fixed-secret token of the seeded architect, to be varied by tests. */
export function fixedClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iat: now(),
    iss: "gridgate",
    jti: crypto.randomUUID(),
    exp: now() + 600,
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: "architect",
    secretType: "fixed",
    ...overrides,
  };
}

/** Signs `claims` with jose (an independent HS256 implementation) under `secret`, default `JWT_SECRET`. */
export function signWithJose(
  claims: Record<string, unknown>,
  secret = env.JWT_SECRET!,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", ...header })
    .sign(new TextEncoder().encode(secret));
}

/** A response the fake origin gives, echoing what reached it. */
export interface OriginSeen {
  method: string;
  url: string;
  /** The redirect mode the gateway asked for: it must never follow the origin's redirects itself. */
  redirect: Request["redirect"];
  headers: Record<string, string>;
  body: string;
}

/**
 * Replaces the network `fetch` the gateway uses for `ORIGIN_URL` with a fake origin that records
 * every request. Returns the list of what reached it; restored by `vi.restoreAllMocks()`.
 */
export function fakeOrigin(
  respond: (request: Request) => Response | Promise<Response> = () => Response.json({ ok: true }),
): OriginSeen[] {
  const seen: OriginSeen[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    seen.push({
      method: request.method,
      url: request.url,
      redirect: request.redirect,
      headers: Object.fromEntries(request.headers),
      body: await request.clone().text(),
    });
    return respond(request);
  });
  return seen;
}

/** Parses a problem+json response and checks its required members. */
export async function problem(response: Response): Promise<Record<string, any>> {
  expect(response.headers.get("Content-Type")).toBe("application/problem+json");
  const body = (await response.json()) as Record<string, any>;
  expect(body).toMatchObject({ status: response.status, request_id: response.headers.get("X-Request-Id") });
  expect(typeof body.type).toBe("string");
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

export type { AuditRow };

/** Every event stored in the audit bucket (each copy), oldest first. */
export async function storedAuditRows(bucket: R2Bucket = env.AUDIT_BUCKET): Promise<AuditRow[]> {
  const rows: AuditRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: AUDIT_PREFIX, cursor });
    for (const object of page.objects) rows.push(...parseAuditObject(await (await bucket.get(object.key))!.text()));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return rows.sort(byPosition);
}

/**
 * The stored audit events of one request, oldest first, polled for up to `timeoutMs` (they reach R2 after the
 * response, through a queue whose consumer writes a batch at least once a second locally) until at least `atLeast`
 * exist.
 */
export async function auditRowsOf(requestId: string, atLeast = 1, timeoutMs = 5000): Promise<AuditRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = (await storedAuditRows()).filter((row) => row.request_id === requestId);
    if (rows.length >= atLeast || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `scenario`, a burst counted against a rate limit, inside one window of the local rate-limit simulator,
 * whose fixed windows are aligned to the wall clock (`floor(now / period)`): a run that straddled two windows
 * (where the count starts over midway) is run again, at most twice more. A run inside one window is final,
 * pass or fail, so a broken limit still fails.
 */
export async function inOneRateWindow(scenario: () => Promise<void>, periodSeconds = 60): Promise<void> {
  const windowOf = () => Math.floor(Date.now() / (periodSeconds * 1000));
  for (let attempt = 0; ; attempt++) {
    const window = windowOf();
    try {
      await scenario();
    } catch (error) {
      if (attempt < 2 && windowOf() !== window) continue;
      throw error;
    }
    if (windowOf() === window || attempt >= 2) return;
  }
}

/** An organisation made for one test, with one active architect and that architect's fixed-secret token. */
export interface TestOrganisation {
  identifier: string;
  id: number;
  member: string;
  memberId: number;
  /** A fixed-secret architect token of `member`. */
  token: string;
}

/** A random identifier: `prefix` and 7 hex digits. */
export function randomId(prefix: string): string {
  return prefix + crypto.randomUUID().replaceAll("-", "").slice(0, 7);
}

async function insertOrganisation(plan: string, prefix: string): Promise<{ identifier: string; id: number }> {
  const identifier = randomId(prefix);
  const org = await env.DB.prepare(
    "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, ?, ?, ?) RETURNING id",
  )
    .bind(identifier, `Test ${identifier}`, `${identifier}.example`, plan)
    .first<{ id: number }>();
  return { identifier, id: org!.id };
}

/** A fresh organisation on `plan` without members; returns its identifier. */
export async function newOrganisation(plan = "professional", prefix = "o"): Promise<string> {
  return (await insertOrganisation(plan, prefix)).identifier;
}

/** A fresh organisation on `plan` with one active architect, so no test shares secrets, budgets or caches. */
export async function newArchitectOrganisation(plan: string, prefix = "o"): Promise<TestOrganisation> {
  const { identifier, id } = await insertOrganisation(plan, prefix);
  const org = { id };
  const member = randomId("m");
  const row = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role) VALUES (?, ?, ?, 'x', 'architect') RETURNING id",
  )
    .bind(member, org!.id, `${member}@${identifier}.example`)
    .first<{ id: number }>();
  const token = await signWithJose(
    fixedClaims({ organisationEntityIdentifier: identifier, memberEntityIdentifier: member, memberEntityId: row!.id }),
  );
  return { identifier, id: org!.id, member, memberId: row!.id, token };
}

/** Unpadded base64url of `value` (a string as UTF-8). */
export function b64url(value: string | Uint8Array): string {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** Signs arbitrary header and payload JSON text exactly as given (default: `JWT_SECRET`), bypassing every library check. */
export async function rawToken(header: string, payload: string, secret = env.JWT_SECRET!): Promise<string> {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return `${input}.${b64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input))))}`;
}

/** What `npm run admin` sends to the admin route `path`: the JSON body, signed with ADMIN_SECRET at `at` (seconds). */
export async function adminRequest(
  path: string,
  body: unknown,
  at = Math.floor(Date.now() / 1000),
  secret = env.ADMIN_SECRET!,
): Promise<RequestInit> {
  const text = JSON.stringify(body);
  return {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      [ADMIN_SIGNATURE_HEADER]: await signAdminRequest(secret, at, path, text),
    },
    body: text,
  };
}

/** The admin route `route` (`org/create`, `member/suspend`, …) called as `npm run admin` calls it, signed, through the gateway. */
export async function adminCall(route: string, body: unknown): Promise<Response> {
  const path = `/authenticate/admin/${route}`;
  return gateway(path, await adminRequest(path, body));
}

/** A new private key of `alg` as ASSERTION_KEYS holds it (PKCS#8, base64url), and its private JWK. */
export async function newAssertionKey(alg: "EdDSA" | "ES256"): Promise<{ pkcs8: string; jwk: JsonWebKey }> {
  const params = alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return { pkcs8: pkcs8.toBase64({ alphabet: "base64url", omitPadding: true }), jwk };
}

/**
 * Routes `fetch` calls to {@link GATEWAY} (the demo origin's JWKS fetch) to the gateway itself, other calls to the
 * real `fetch`; restored by `vi.restoreAllMocks()`. Returns the demo origin's env that verifies by that JWKS.
 */
export function demoOriginVerifyingByJwks(): { GATEWAY_JWKS_URL: string } {
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    const request = new Request(input, init);
    return request.url.startsWith(GATEWAY) ? exports.default.fetch(request) : real(request);
  });
  return { GATEWAY_JWKS_URL: `${GATEWAY}/.well-known/jwks.json` };
}
