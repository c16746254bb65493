// GET /openapi.json: its lint-independent promises (one Problem schema, X-Request-Id everywhere, codes and statuses as
// the catalogue has them), and every documented response of every route, the proxied API's included, checked
// against a real one.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { createWorker } from "../src/worker";
import type { Bindings } from "../src/config";
import type { ProblemCode } from "../src/gateway-error";
import { PROBLEMS } from "../src/http/problem";
import { createServices } from "../src/services";
import {
  authorization,
  fakeOrigin,
  fixedClaims,
  GATEWAY,
  gateway,
  inOneRateWindow,
  login as loginSeeded,
  newArchitectOrganisation,
  now,
  postLogin,
  randomId,
  randomIp,
  signWithJose,
} from "./helpers";
import { Browser, connectSso, oidc, startUrl } from "./sso-helpers";

type Json = Record<string, any>;
let doc: Json;
/** "post /authenticate 401" (or "get /{proxiedPath} default") for every documented response a test produced. */
const exercised = new Set<string>();
/** The problem codes real requests on the proxied API were answered with. */
const proxiedCodes = new Set<string>();

const PROXIED = "/{proxiedPath}";
/** The methods documented on the proxied path. */
const PROXIED_METHODS = ["get", "head", "post", "put", "patch", "delete", "options"] as const;

beforeAll(async () => {
  const response = await gateway("/openapi.json");
  expect(response.status).toBe(200);
  doc = await response.json();
});

afterEach(() => vi.restoreAllMocks());

/** The object a `#/components/…` reference names, or `value` itself. */
function resolve(value: Json): Json {
  const ref = value.$ref;
  if (typeof ref !== "string") return value;
  const target = ref
    .replace(/^#\//, "")
    .split("/")
    .reduce<Json | undefined>((node, key) => node?.[key], doc);
  expect(target, `${ref} does not resolve`).toBeDefined();
  return resolve(target!);
}

/** Inlines every reference so the schema stands alone. */
function inline(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(inline);
  if (schema === null || typeof schema !== "object") return schema;
  if (typeof (schema as Json).$ref === "string") return inline(resolve(schema as Json));
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, inline(value)]));
}

/**
 * A validator rebuilt from the served document's JSON Schema (not from the source zod schemas). `allOf` is
 * checked part by part, as JSON Schema means it: zod's intersection would let one part's
 * `additionalProperties: false` be outvoted by another part that names fewer properties.
 */
function validator(schema: unknown): z.ZodType {
  const inlined = inline(schema) as Json;
  if (Array.isArray(inlined.allOf)) {
    const parts: z.ZodType[] = inlined.allOf.map(validator);
    return z.unknown().superRefine((value, ctx) => {
      for (const part of parts)
        for (const issue of part.safeParse(value).error?.issues ?? [])
          ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    });
  }
  return z.fromJSONSchema(inlined as Parameters<typeof z.fromJSONSchema>[0]);
}

/** The documented response of `status` (else the operation's `default`), and the key it is documented under. */
function documentedAs(method: string, path: string, status: number): { key: string; response: Json } {
  const responses = doc.paths[path]?.[method]?.responses ?? {};
  const key = String(status) in responses ? String(status) : "default";
  expect(responses[key], `${method.toUpperCase()} ${path} → ${status} is not in the document`).toBeDefined();
  return { key, response: resolve(responses[key]) };
}

function documented(method: string, path: string, status: number): Json {
  return documentedAs(method, path, status).response;
}

/**
 * Checks status, content type, required headers and body of a real response against the document (a HEAD
 * answer has no body, and the origin's answer, documented for any media type, may hold anything).
 */
async function expectConforms(method: string, path: string, response: Response): Promise<Json> {
  const { key, response: spec } = documentedAs(method, path, response.status);
  for (const [name, reference] of Object.entries<Json>(spec.headers ?? {})) {
    const header = resolve(reference);
    if (!header.required) continue;
    const value = response.headers.get(name);
    expect(value, `${name} header`).not.toBeNull();
    expect(validator(header.schema).safeParse(value).success, `${name}: ${value}`).toBe(true);
  }
  exercised.add(`${method} ${path} ${key}`);
  if (spec.content === undefined || method === "head") {
    expect(await response.text()).toBe("");
    return {};
  }
  if ("*/*" in spec.content) return {};
  const mediaType = (response.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
  expect(Object.keys(spec.content)).toContain(mediaType);
  const body = await response.json();
  const result = validator(spec.content[mediaType].schema).safeParse(body);
  expect(result.error?.issues ?? [], JSON.stringify(body)).toEqual([]);
  if (mediaType === "application/problem+json") {
    expect(body).toMatchObject({ status: response.status, request_id: response.headers.get("X-Request-Id") });
    if (path === PROXIED) proxiedCodes.add((body as Json).code);
  }
  return body as Json;
}

/** Every response object of the document: `[where, response]`, references resolved. */
function allResponses(): [string, Json][] {
  const inPaths = Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).flatMap(([method, operation]) =>
      Object.entries<Json>(operation.responses).map(([status, response]): [string, Json] => [
        `${method} ${path} ${status}`,
        resolve(response),
      ]),
    ),
  );
  const components = Object.entries<Json>(doc.components.responses ?? {}).map(([name, response]): [string, Json] => [
    `components.responses.${name}`,
    response,
  ]);
  return [...inPaths, ...components];
}

/** The codes a documented problem response names: its narrowing of `Problem`'s `code`. */
function documentedCodes(response: Json): string[] {
  const schema = response.content?.["application/problem+json"]?.schema;
  if (schema === undefined) return [];
  return (schema.allOf ?? []).flatMap((part: Json) => part.properties?.code?.enum ?? []);
}

function post(
  path: string,
  body: unknown,
  init: { contentType?: string; raw?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return gateway(path, {
    method: "POST",
    headers: {
      "Content-Type": init.contentType ?? "application/json",
      "CF-Connecting-IP": randomIp(),
      ...init.headers,
    },
    body: init.raw ?? JSON.stringify(body),
  });
}

function login(body: unknown, init: { contentType?: string; raw?: string } = {}): Promise<Response> {
  return post("/authenticate", body, init);
}

/** The documented 400, 413 and 415 of a POST route that reads a body. */
async function expectBodyProblems(path: string, headers: Record<string, string> = {}): Promise<void> {
  expect((await expectConforms("post", path, await post(path, null, { raw: "{not json", headers }))).code).toBe(
    "invalid_request",
  );
  expect(
    (
      await expectConforms(
        "post",
        path,
        await post(path, null, { raw: JSON.stringify({ x: "y".repeat(17 * 1024) }), headers }),
      )
    ).code,
  ).toBe("payload_too_large");
  expect(
    (await expectConforms("post", path, await post(path, null, { contentType: "text/plain", raw: "x", headers }))).code,
  ).toBe("unsupported_media_type");
}

async function tokensOf(email: string): Promise<Json> {
  const response = await login({ email, password: SEED_PASSWORD });
  expect(response.status).toBe(200);
  return response.json();
}

describe("the document", () => {
  it("is public OpenAPI 3.1 JSON describing the gateway's own routes and the proxied API", async () => {
    const response = await gateway("/openapi.json");
    expect(response.headers.get("Content-Type")).toBe("application/json");
    const body = await expectConforms("get", "/openapi.json", response);
    expect(body.openapi).toBe("3.1.0");
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining([
        "/health",
        "/authenticate",
        "/authenticate/refresh",
        "/authenticate/revoke",
        "/authenticate/secrets",
        "/authenticate/secrets/{kid}",
        PROXIED,
      ]),
    );
    expect(Object.keys(body.paths[PROXIED]).sort()).toEqual([...PROXIED_METHODS].sort());
    expect(body.paths["/authenticate"].post.requestBody.content).toHaveProperty("application/x-www-form-urlencoded");
    await expectConforms(
      "get",
      "/openapi.json",
      await gateway("/openapi.json", { headers: { Authorization: "Bearer nonsense" } }),
    );
    expect((await gateway("/openapi.json", { method: "POST" })).status).toBe(405);
  });

  it("has validators that refuse what the gateway must not send", () => {
    const tokens = validator(documented("post", "/authenticate", 200).content["application/json"].schema);
    const good = {
      access_token: "a",
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: "r",
      refresh_token_expires_in: 60,
      scope: "user",
    };
    expect(tokens.safeParse(good).success).toBe(true);
    expect(tokens.safeParse({ ...good, refresh_token: undefined }).success).toBe(false);
    expect(tokens.safeParse({ ...good, password_hash: "x" }).success).toBe(false);
    expect(tokens.safeParse({ ...good, token_type: "bearer" }).success).toBe(false);
    const unauthorised = validator(documented("post", "/authenticate", 401).content["application/problem+json"].schema);
    const problem = {
      type: "urn:gridgate:problem:invalid_credentials",
      title: "t",
      status: 401,
      detail: "d",
      code: "invalid_credentials",
      request_id: crypto.randomUUID(),
    };
    expect(unauthorised.safeParse(problem).success).toBe(true);
    expect(unauthorised.safeParse({ ...problem, code: "account_suspended" }).success).toBe(false);
    expect(unauthorised.safeParse({ ...problem, request_id: "1" }).success).toBe(false);
    expect(unauthorised.safeParse({ ...problem, status: 403 }).success).toBe(false);
    expect(unauthorised.safeParse({ ...problem, extra: 1 }).success).toBe(false);
  });

  it("has one Problem schema, referenced by every problem response, with the catalogue's codes and statuses", () => {
    const problemShaped: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (node === null || typeof node !== "object") return;
      if ((node as Json).properties?.request_id !== undefined) problemShaped.push(where);
      for (const [key, value] of Object.entries(node)) walk(value, `${where}/${key}`);
    };
    walk(doc, "#");
    expect(problemShaped).toEqual(["#/components/schemas/Problem"]);
    expect([...doc.components.schemas.Problem.properties.code.enum].sort()).toEqual(Object.keys(PROBLEMS).sort());

    let problemResponses = 0;
    for (const [where, response] of allResponses()) {
      const schema = response.content?.["application/problem+json"]?.schema;
      if (schema === undefined) continue;
      problemResponses++;
      expect(schema.allOf?.[0], where).toEqual({ $ref: "#/components/schemas/Problem" });
      const status: number = schema.allOf[1].properties.status.const;
      if (!where.startsWith("components.")) expect(where.endsWith(` ${status}`), where).toBe(true);
      const codes = documentedCodes(response);
      expect(codes.length, where).toBeGreaterThan(0);
      for (const code of codes) expect(PROBLEMS[code as ProblemCode]?.status, `${where}: ${code}`).toBe(status);
    }
    expect(problemResponses).toBeGreaterThan(20);
  });

  it("documents X-Request-Id, always present, on every response, and nosniff and Vary: Origin on the gateway's own", () => {
    for (const [where, response] of allResponses()) {
      expect(response.headers?.["X-Request-Id"]?.required, where).toBe(true);
      if (where.endsWith(" default") || where.endsWith(".OriginAnswer")) continue; // the origin's answer
      expect(resolve(response.headers?.["X-Content-Type-Options"] ?? {}).required, where).toBe(true);
      expect(resolve(response.headers?.Vary ?? {}).required, where).toBe(true);
    }
  });

  it(`gives every method of ${PROXIED} the same gateway answers, and OPTIONS the preflight's on top`, () => {
    const operations = doc.paths[PROXIED];
    for (const method of PROXIED_METHODS.filter((m) => m !== "options"))
      expect(operations[method].responses, method).toEqual(operations.get.responses);
    expect(operations.options.responses).toEqual({
      ...operations.get.responses,
      204: { $ref: "#/components/responses/PreflightAccepted" },
      403: { $ref: "#/components/responses/ProxiedOptionsForbidden" },
    });
    expect(operations.get.responses.default).toEqual({ $ref: "#/components/responses/OriginAnswer" });
  });
});

describe("GET /health", () => {
  it("conforms", async () => {
    await expectConforms("get", "/health", await gateway("/health"));
  });
});

describe("GET /.well-known/jwks.json", () => {
  it("200 with the keys, 304 for a current ETag", async () => {
    const response = await gateway("/.well-known/jwks.json");
    const body = await expectConforms("get", "/.well-known/jwks.json", response);
    expect(body.keys.length).toBeGreaterThan(0);
    const etag = response.headers.get("ETag")!;
    await expectConforms(
      "get",
      "/.well-known/jwks.json",
      await gateway("/.well-known/jwks.json", { headers: { "If-None-Match": etag } }),
    );
  });
});

describe("POST /authenticate", () => {
  it("200 for JSON and for form bodies", async () => {
    await expectConforms(
      "post",
      "/authenticate",
      await login({ email: "architect@acme.example", password: SEED_PASSWORD }),
    );
    const form = new URLSearchParams({ email: "viewer@acme.example", password: SEED_PASSWORD }).toString();
    const body = await expectConforms(
      "post",
      "/authenticate",
      await login(null, { contentType: "application/x-www-form-urlencoded", raw: form }),
    );
    expect(body.scope).toBe("user");
  });

  it("400, 413 and 415 for bodies it cannot use", async () => {
    expect((await expectConforms("post", "/authenticate", await login({ email: "a@b.c" }))).code).toBe(
      "invalid_request",
    );
    const huge = JSON.stringify({ email: "a@b.c", password: "x".repeat(17 * 1024) });
    expect((await expectConforms("post", "/authenticate", await login(null, { raw: huge }))).code).toBe(
      "payload_too_large",
    );
    expect(
      (await expectConforms("post", "/authenticate", await login(null, { contentType: "text/plain", raw: "x" }))).code,
    ).toBe("unsupported_media_type");
  });

  it("401, 403 (plan and suspended) and 409", async () => {
    expect(
      (
        await expectConforms(
          "post",
          "/authenticate",
          await login({ email: "architect@acme.example", password: "wrong" }),
        )
      ).code,
    ).toBe("invalid_credentials");
    expect(
      (
        await expectConforms(
          "post",
          "/authenticate",
          await login({ email: "free@free.example", password: SEED_PASSWORD }),
        )
      ).code,
    ).toBe("plan_not_eligible");

    const email = `suspended-${crypto.randomUUID().slice(0, 8)}@acme.example`;
    const hash = await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!);
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, role, status) VALUES (?, 1, ?, ?, 'user', 'suspended')",
    )
      .bind(`s${crypto.randomUUID().slice(0, 5)}`, email, hash)
      .run();
    expect((await expectConforms("post", "/authenticate", await login({ email, password: SEED_PASSWORD }))).code).toBe(
      "account_suspended",
    );

    expect(
      (
        await expectConforms(
          "post",
          "/authenticate",
          await login({ email: "consultant@example.com", password: SEED_PASSWORD }),
        )
      ).code,
    ).toBe("domain_required");
  });

  it("429 once one IP exceeds the login limit", async () => {
    const ip = randomIp();
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const response = await postLogin({ email: "nobody@acme.example", password: "x" }, { "CF-Connecting-IP": ip });
      if (response.status === 429) limited = response;
    }
    expect(limited?.status).toBe(429);
    await expectConforms("post", "/authenticate", limited!);
  });
});

describe("single sign-on", () => {
  const start = (query: Record<string, string>, ip = randomIp()) =>
    gateway(`/authenticate/sso/start?${new URLSearchParams(query)}`, {
      redirect: "manual",
      headers: { "CF-Connecting-IP": ip },
    });

  beforeAll(() => connectSso("m7l9hw", { client: oidc.clients.openapi, domains: ["acme.example"] }));

  it("start: 302 to the provider or back to the app, 400 for a return_to off the allowlist, 429", async () => {
    const returnTo = "https://app.test/";
    const toProvider = await start({ email: "architect@acme.example", return_to: returnTo });
    expect(toProvider.headers.get("Location")).toMatch(new RegExp(`^${oidc.issuer}/auth\\?`));
    await expectConforms("get", "/authenticate/sso/start", toProvider);
    const back = await start({ domain: "no-sso.example", return_to: returnTo });
    expect(back.headers.get("Location")).toMatch(/^https:\/\/app\.test\/\?error=invalid_request&/);
    await expectConforms("get", "/authenticate/sso/start", back);
    const refused = await start({ email: "architect@acme.example", return_to: "https://evil.test/" });
    expect((await expectConforms("get", "/authenticate/sso/start", refused)).code).toBe("invalid_request");
    const ip = randomIp();
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const response = await start({ domain: "no-sso.example", return_to: returnTo }, ip);
      if (response.status === 429) limited = response;
    }
    expect((await expectConforms("get", "/authenticate/sso/start", limited!)).code).toBe("rate_limited");
  });

  it("callback: 302 back to the app with the outcome, 400 without a state to trust, 429", async () => {
    const browser = new Browser();
    const started = await browser.fetch(startUrl("architect@acme.example"));
    const state = new URL(started.headers.get("Location")!).searchParams.get("state")!;
    const cancelled = await browser.fetch(
      `${GATEWAY}/authenticate/sso/callback?${new URLSearchParams({ error: "access_denied", state, iss: oidc.issuer })}`,
    );
    expect(cancelled.headers.get("Location")).toMatch(/^https:\/\/app\.test\/signed-in\?error=access_denied&/);
    await expectConforms("get", "/authenticate/sso/callback", cancelled);
    const noState = await gateway("/authenticate/sso/callback?code=abc", { redirect: "manual" });
    expect((await expectConforms("get", "/authenticate/sso/callback", noState)).code).toBe("invalid_request");
    const ip = randomIp();
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const response = await gateway("/authenticate/sso/callback?state=abc&code=def", {
        redirect: "manual",
        headers: { "CF-Connecting-IP": ip },
      });
      if (response.status === 429) limited = response;
    }
    expect((await expectConforms("get", "/authenticate/sso/callback", limited!)).code).toBe("rate_limited");
  });

  it("POST /authenticate: 403 sso_required for an organisation that requires single sign-on", async () => {
    const { identifier } = await newArchitectOrganisation("professional", "sso");
    await connectSso(identifier, { client: oidc.clients.openapi, domains: [`${identifier}.example`], required: true });
    const response = await login({ email: `anyone@${identifier}.example`, password: "whatever" });
    expect((await expectConforms("post", "/authenticate", response)).code).toBe("sso_required");
  });
});

describe("POST /authenticate/refresh and /authenticate/revoke", () => {
  it("refresh: 200, 400 for a spent token, 403 once the plan lapsed, and bad bodies", async () => {
    const { refresh_token } = await tokensOf("builder@acme.example");
    const rotated = await expectConforms(
      "post",
      "/authenticate/refresh",
      await post("/authenticate/refresh", { refresh_token }),
    );
    expect(rotated.refresh_token).not.toBe(refresh_token);
    expect(
      (
        await expectConforms(
          "post",
          "/authenticate/refresh",
          await post("/authenticate/refresh", { refresh_token: "rt_unknown" }),
        )
      ).code,
    ).toBe("invalid_grant");

    const organisation = `p${crypto.randomUUID().slice(0, 6)}`;
    const email = `lapse@${organisation}.example`;
    await env.DB.prepare(
      "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, 'Lapsing', ?, 'professional')",
    )
      .bind(organisation, `${organisation}.example`)
      .run();
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, role) SELECT ?, id, ?, ?, 'user' FROM organisations WHERE identifier = ?",
    )
      .bind(
        `l${crypto.randomUUID().slice(0, 5)}`,
        email,
        await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!),
        organisation,
      )
      .run();
    const lapsing = await tokensOf(email);
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE identifier = ?").bind(organisation).run();
    expect(
      (
        await expectConforms(
          "post",
          "/authenticate/refresh",
          await post("/authenticate/refresh", { refresh_token: lapsing.refresh_token }),
        )
      ).code,
    ).toBe("plan_not_eligible");

    await expectBodyProblems("/authenticate/refresh");

    // a browser app's refresh by cookie, and the CSRF refusal of the same cookie without an allowed Origin
    const browser = await post(
      "/authenticate",
      { email: "builder@acme.example", password: SEED_PASSWORD },
      {
        headers: { Origin: "https://app.test" },
      },
    );
    const cookie = browser.headers.getSetCookie()[0]!.split(";")[0]!;
    expect((await expectConforms("post", "/authenticate", browser)).refresh_token).toBeUndefined();
    const byCookie = await gateway("/authenticate/refresh", {
      method: "POST",
      headers: { Origin: "https://app.test", Cookie: cookie },
    });
    expect((await expectConforms("post", "/authenticate/refresh", byCookie)).refresh_token).toBeUndefined();
    const next = byCookie.headers.getSetCookie()[0]!.split(";")[0]!;
    const refused = await gateway("/authenticate/refresh", { method: "POST", headers: { Cookie: next } });
    expect((await expectConforms("post", "/authenticate/refresh", refused)).code).toBe("origin_not_allowed");
  });

  it("revoke: 200 with an empty body, 401 for all:true without a Bearer token, and bad bodies", async () => {
    const { refresh_token } = await tokensOf("viewer@acme.example");
    await expectConforms("post", "/authenticate/revoke", await post("/authenticate/revoke", { refresh_token }));
    await expectConforms(
      "post",
      "/authenticate/revoke",
      await post("/authenticate/revoke", { refresh_token: "unknown" }),
    );
    const unauthenticated = await post("/authenticate/revoke", { all: true });
    expect((await expectConforms("post", "/authenticate/revoke", unauthenticated)).code).toBe("missing_token");
    await expectBodyProblems("/authenticate/revoke");
    const csrf = await gateway("/authenticate/revoke", {
      method: "POST",
      headers: { Origin: "https://evil.test", Cookie: "__Secure-gridgate-refresh=abc" },
    });
    expect((await expectConforms("post", "/authenticate/revoke", csrf)).code).toBe("origin_not_allowed");
  });
});

describe("/authenticate/secrets", () => {
  it("create (201, 409 at the limit), list, revoke (204, 404), and the refusals", async () => {
    const architect = { Authorization: `Bearer ${(await tokensOf("owner@enterprise.example")).access_token}` };
    const viewer = { Authorization: `Bearer ${(await tokensOf("viewer@acme.example")).access_token}` };

    const created = await expectConforms(
      "post",
      "/authenticate/secrets",
      await post("/authenticate/secrets", { label: "ci" }, { headers: architect }),
    );
    let full: Response | undefined;
    for (let i = 0; i < 12 && !full; i++) {
      const response = await post("/authenticate/secrets", {}, { headers: architect });
      if (response.status === 409) full = response;
      else expect(response.status).toBe(201);
    }
    expect((await expectConforms("post", "/authenticate/secrets", full!)).code).toBe("secret_limit_reached");
    expect((await expectConforms("post", "/authenticate/secrets", await post("/authenticate/secrets", {}))).code).toBe(
      "missing_token",
    );
    expect(
      (
        await expectConforms(
          "post",
          "/authenticate/secrets",
          await post("/authenticate/secrets", {}, { headers: viewer }),
        )
      ).code,
    ).toBe("insufficient_scope");
    await expectBodyProblems("/authenticate/secrets", architect);

    const listed = await expectConforms(
      "get",
      "/authenticate/secrets",
      await gateway("/authenticate/secrets", { headers: architect }),
    );
    expect(listed.secrets.map((secret: Json) => secret.kid)).toContain(created.kid);
    expect((await expectConforms("get", "/authenticate/secrets", await gateway("/authenticate/secrets"))).code).toBe(
      "missing_token",
    );
    expect(
      (
        await expectConforms(
          "get",
          "/authenticate/secrets",
          await gateway("/authenticate/secrets", { headers: viewer }),
        )
      ).code,
    ).toBe("insufficient_scope");

    const path = "/authenticate/secrets/{kid}";
    await expectConforms(
      "delete",
      path,
      await gateway(`/authenticate/secrets/${created.kid}`, { method: "DELETE", headers: architect }),
    );
    expect(
      (
        await expectConforms(
          "delete",
          path,
          await gateway(`/authenticate/secrets/${created.kid}`, { method: "DELETE", headers: architect }),
        )
      ).code,
    ).toBe("not_found");
    expect(
      (
        await expectConforms(
          "delete",
          path,
          await gateway(`/authenticate/secrets/${created.kid}`, { method: "DELETE" }),
        )
      ).code,
    ).toBe("missing_token");
    expect(
      (
        await expectConforms(
          "delete",
          path,
          await gateway(`/authenticate/secrets/${created.kid}`, { method: "DELETE", headers: viewer }),
        )
      ).code,
    ).toBe("insufficient_scope");
  });
});

/** Sends requests to an app whose one gateway uses `bindings` (a smaller limit, failing storage). */
function appSending(bindings: Bindings) {
  const gatewayObject = createServices(bindings);
  const app = createWorker({ servicesFor: () => gatewayObject });
  return async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
    const ctx = createExecutionContext();
    const request = new Request(GATEWAY + path, {
      method: method.toUpperCase(),
      headers: { "CF-Connecting-IP": randomIp(), ...headers },
      body,
    });
    const response = await app.fetch(request, bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

describe(`the proxied API (${PROXIED})`, () => {
  const call = (method: string, path: string, headers: Record<string, string> = {}) =>
    gateway(path, { method: method.toUpperCase(), headers });

  /** Checks a proxied answer against the document, and its problem code where it has a body. */
  async function expectProxied(method: string, response: Response, status: number, code?: string): Promise<void> {
    expect(response.status, `${method} → ${await response.clone().text()}`).toBe(status);
    const body = await expectConforms(method, PROXIED, response);
    if (code !== undefined && method !== "head") expect(body.code, method).toBe(code);
  }

  it("default: the origin's answer, whatever its status, passes through with the gateway's X-Request-Id", async () => {
    const seen = fakeOrigin(
      () =>
        new Response("teapot", {
          status: 418,
          headers: { "Content-Type": "text/plain", "X-Origin": "yes", "X-Request-Id": "the-origin's" },
        }),
    );
    const { token } = await newArchitectOrganisation("enterprise", "p");
    for (const method of PROXIED_METHODS) {
      const response = await call(method, "/grids/12/cells?view=full", authorization(token));
      expect(response.headers.get("X-Origin")).toBe("yes");
      if (method !== "head") expect(await response.clone().text()).toBe("teapot");
      await expectProxied(method, response, 418);
    }
    expect(seen.map((request) => request.method)).toEqual(PROXIED_METHODS.map((method) => method.toUpperCase()));
    expect(seen[0]!.url).toBe("https://origin.test/api/grids/12/cells?view=full");
  });

  it("400 invalid_request or ambiguous_path, nothing forwarded", async () => {
    const seen = fakeOrigin();
    const { token } = await newArchitectOrganisation("enterprise", "p");
    for (const method of PROXIED_METHODS)
      await expectProxied(method, await call(method, "/grids%2F12", authorization(token)), 400, "invalid_request");
    await expectProxied(
      "get",
      await call("get", "/grids", { ...authorization(token), "X-HTTP-Method-Override": "DELETE" }),
      400,
      "invalid_request",
    );
    await expectProxied("get", await call("get", "/grids/..;/secrets", authorization(token)), 400, "ambiguous_path");
    expect(seen).toEqual([]);
  });

  it("401 with a Bearer challenge: no token, Basic, an invalid token", async () => {
    for (const method of PROXIED_METHODS)
      await expectProxied(method, await call(method, "/grids"), 401, "missing_token");
    await expectProxied(
      "get",
      await call("get", "/grids", { Authorization: "Basic dTpw" }),
      401,
      "basic_not_supported",
    );
    const invalid = await call("get", "/grids", authorization("not.a.token"));
    expect(invalid.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
    await expectProxied("get", invalid, 401, "invalid_token");
  });

  it("403 insufficient_scope (with its challenge), plan_not_eligible, account_suspended; OPTIONS preflights", async () => {
    const seen = fakeOrigin();
    const scopeless = await signWithJose(fixedClaims({ scope: "" }));
    for (const method of PROXIED_METHODS) {
      const response = await call(method, "/grids", authorization(scopeless));
      expect(response.headers.get("WWW-Authenticate")).toMatch(
        /^Bearer realm="api", error="insufficient_scope", scope="/,
      );
      await expectProxied(method, response, 403, "insufficient_scope");
    }
    const free = await signWithJose(
      fixedClaims({ organisationEntityIdentifier: "f4r5t6", memberEntityIdentifier: "f3g6hj", memberEntityId: 2554 }),
    );
    await expectProxied("get", await call("get", "/grids", authorization(free)), 403, "plan_not_eligible");

    const org = await newArchitectOrganisation("enterprise", "p");
    const created = await post("/authenticate/secrets", {}, { headers: authorization(org.token) });
    expect(created.status).toBe(201);
    const { kid, secret } = await created.json<{ kid: string; secret: string }>();
    const suspended = randomId("m");
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, status) VALUES (?, ?, ?, 'x', 'suspended')",
    )
      .bind(suspended, org.id, `${suspended}@x.example`)
      .run();
    const dynamic = await signWithJose(
      {
        iat: now(),
        memberEntityIdentifier: suspended,
        organisationEntityIdentifier: org.identifier,
        scope: "organisation",
        secretType: "dynamic",
      },
      secret,
      { kid },
    );
    await expectProxied("get", await call("get", "/grids", authorization(dynamic)), 403, "account_suspended");

    const preflight = (origin: string) =>
      call("options", "/grids", { Origin: origin, "Access-Control-Request-Method": "POST" });
    const accepted = await preflight("https://app.test");
    expect(accepted.headers.get("Access-Control-Allow-Origin")).toBe("https://app.test");
    await expectProxied("options", accepted, 204);
    const refused = await preflight("https://evil.test");
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBeNull();
    await expectProxied("options", refused, 403, "origin_not_allowed");
    expect(seen).toEqual([]);
  });

  it("429 rate_limited with Retry-After, RateLimit-Policy and RateLimit once the organisation's limit is used up", async () => {
    const send = appSending({
      ...env,
      API_LIMIT_PROFESSIONAL: env.API_LIMIT_TEST,
      API_RATE_LIMITS: "professional=3,enterprise=6000",
    });
    await inOneRateWindow(async () => {
      fakeOrigin();
      const { token } = await newArchitectOrganisation("professional", "p");
      for (let i = 0; i < 3; i++) expect((await send("get", "/grids", authorization(token))).status).toBe(200);
      for (const method of PROXIED_METHODS)
        await expectProxied(method, await send(method, "/grids", authorization(token)), 429, "rate_limited");
      vi.restoreAllMocks();
    });
  });

  it("502 origin_unreachable and 504 origin_timeout", async () => {
    const { token } = await newArchitectOrganisation("enterprise", "p");
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("Network connection lost."));
    for (const method of PROXIED_METHODS)
      await expectProxied(method, await call(method, "/grids", authorization(token)), 502, "origin_unreachable");
    vi.restoreAllMocks();
    vi.spyOn(globalThis, "fetch").mockImplementation(
      (input, init) =>
        new Promise((_resolve, reject) => {
          const signal = new Request(input, init).signal;
          signal.addEventListener("abort", () => reject(signal.reason));
        }),
    );
    const timedOut = await Promise.all(PROXIED_METHODS.map((method) => call(method, "/grids", authorization(token))));
    for (const [index, method] of PROXIED_METHODS.entries())
      await expectProxied(method, timedOut[index]!, 504, "origin_timeout");
  });
});

describe("503 temporarily_unavailable (a gateway whose D1 and KV fail)", () => {
  it("login, refresh, revoke, the secrets routes and the proxied API answer the documented 503", async () => {
    const { refresh_token, access_token } = await loginSeeded("architect@acme.example");
    const down = () => Promise.reject(new Error("injected failure"));
    const failing = {
      ...env,
      DB: { prepare: () => ({ bind: () => ({ all: down, raw: down, run: down, first: down }) }), batch: down },
      TOKENS: { get: down, put: down, delete: down, list: down },
    } as unknown as typeof env;
    const sendRaw = appSending(failing);
    const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      body === undefined
        ? sendRaw(method, path, headers)
        : sendRaw(method, path, { ...headers, "Content-Type": "application/json" }, JSON.stringify(body));
    const asMember = authorization(access_token);
    const cases: [string, string, string, Response][] = [
      [
        "post",
        "/authenticate",
        "/authenticate",
        await send("POST", "/authenticate", { email: "a@b.example", password: "x" }),
      ],
      [
        "post",
        "/authenticate/refresh",
        "/authenticate/refresh",
        await send("POST", "/authenticate/refresh", { refresh_token }),
      ],
      [
        "post",
        "/authenticate/revoke",
        "/authenticate/revoke",
        await send("POST", "/authenticate/revoke", { refresh_token }),
      ],
      [
        "post",
        "/authenticate/secrets",
        "/authenticate/secrets",
        await send("POST", "/authenticate/secrets", {}, asMember),
      ],
      [
        "get",
        "/authenticate/secrets",
        "/authenticate/secrets",
        await send("GET", "/authenticate/secrets", undefined, asMember),
      ],
      [
        "delete",
        "/authenticate/secrets/{kid}",
        "/authenticate/secrets/ds_x",
        await send("DELETE", "/authenticate/secrets/ds_x", undefined, asMember),
      ],
    ];
    cases.push([
      "get",
      "/authenticate/sso/callback",
      "/authenticate/sso/callback",
      await send("GET", "/authenticate/sso/callback?state=abc&code=def"),
    ]);
    for (const method of PROXIED_METHODS)
      cases.push([method, PROXIED, "/grids", await send(method, "/grids", undefined, asMember)]);
    for (const [method, path, , response] of cases) {
      expect(response.status, `${method} ${path}`).toBe(503);
      const body = await expectConforms(method, path, response);
      if (method !== "head") expect(body.code).toBe("temporarily_unavailable");
    }
  });
});

describe("coverage", () => {
  it("every documented response except the opaque 500 was produced by a real request above", () => {
    const documentedResponses = Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
      Object.entries<Json>(item).flatMap(([method, operation]) =>
        Object.keys(operation.responses).map((status) => `${method} ${path} ${status}`),
      ),
    );
    expect(documentedResponses.filter((key) => !key.endsWith(" 500") && !exercised.has(key))).toEqual([]);
  });

  it(`every problem code ${PROXIED} answered is documented there, and every documented one but internal was answered`, () => {
    const documentedThere = new Set(
      PROXIED_METHODS.flatMap((method) =>
        Object.values<Json>(doc.paths[PROXIED][method].responses).flatMap((response) =>
          documentedCodes(resolve(response)),
        ),
      ),
    );
    documentedThere.delete("internal");
    expect([...proxiedCodes].sort()).toEqual([...documentedThere].sort());
    expect([...documentedThere]).toEqual(
      expect.arrayContaining([
        "missing_token",
        "invalid_token",
        "plan_not_eligible",
        "insufficient_scope",
        "rate_limited",
        "origin_unreachable",
        "temporarily_unavailable",
        "origin_timeout",
      ]),
    );
  });
});
