// GET /openapi.json, and every documented response of every gateway-owned route checked against a real one.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { createApp } from "../src/app";
import { createGateway } from "../src/gateway";
import { GATEWAY, gateway, login as loginSeeded, postLogin, randomIp } from "./helpers";

type Json = Record<string, any>;
let doc: Json;
/** "post /authenticate 401" for every documented response a test produced. */
const exercised = new Set<string>();

beforeAll(async () => {
  const response = await gateway("/openapi.json");
  expect(response.status).toBe(200);
  doc = await response.json();
});

/** Inlines `#/components/schemas/…` references so the schema stands alone. */
function inline(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(inline);
  if (schema === null || typeof schema !== "object") return schema;
  const ref = (schema as Json).$ref;
  if (typeof ref === "string") return inline(doc.components.schemas[ref.replace("#/components/schemas/", "")]);
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, inline(value)]));
}

/** A validator rebuilt from the served document's JSON Schema (not from the source zod schemas). */
function validator(schema: unknown): z.ZodType {
  return z.fromJSONSchema(inline(schema) as Parameters<typeof z.fromJSONSchema>[0]);
}

function documented(method: string, path: string, status: number): Json {
  const response = doc.paths[path]?.[method]?.responses?.[String(status)];
  expect(response, `${method.toUpperCase()} ${path} → ${status} is not in the document`).toBeDefined();
  return response;
}

/** Checks status, content type, required headers and body of a real response against the document. */
async function expectConforms(method: string, path: string, response: Response): Promise<Json> {
  const spec = documented(method, path, response.status);
  for (const [name, header] of Object.entries<Json>(spec.headers ?? {})) {
    if (!header.required) continue;
    const value = response.headers.get(name);
    expect(value, `${name} header`).not.toBeNull();
    expect(validator(header.schema).safeParse(value).success, `${name}: ${value}`).toBe(true);
  }
  if (spec.content === undefined) {
    expect(await response.text()).toBe("");
    exercised.add(`${method} ${path} ${response.status}`);
    return {};
  }
  const mediaType = (response.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
  expect(Object.keys(spec.content)).toContain(mediaType);
  const body = await response.json();
  const result = validator(spec.content[mediaType].schema).safeParse(body);
  expect(result.error?.issues ?? [], JSON.stringify(body)).toEqual([]);
  if (mediaType === "application/problem+json")
    expect(body).toMatchObject({ status: response.status, request_id: response.headers.get("X-Request-Id") });
  exercised.add(`${method} ${path} ${response.status}`);
  return body as Json;
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
  it("is public OpenAPI 3.1 JSON describing the gateway's own routes", async () => {
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
      ]),
    );
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
  });
});

describe("GET /health", () => {
  it("conforms", async () => {
    await expectConforms("get", "/health", await gateway("/health"));
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

describe("POST /authenticate/refresh and /authenticate/revoke", () => {
  it("refresh: 200, 401 for a spent token, 403 once the plan lapsed, and bad bodies", async () => {
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

describe("503 temporarily_unavailable (a gateway whose D1 and KV fail)", () => {
  it("login, refresh, revoke and the secrets routes answer the documented 503", async () => {
    const { refresh_token, access_token } = await loginSeeded("architect@acme.example");
    const down = () => Promise.reject(new Error("injected failure"));
    const failing = {
      ...env,
      DB: { prepare: () => ({ bind: () => ({ all: down, raw: down, run: down, first: down }) }), batch: down },
      TOKENS: { get: down, put: down, delete: down, list: down },
    } as unknown as typeof env;
    const app = createApp({ gatewayFor: () => createGateway(failing) });
    const send = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const ctx = createExecutionContext();
      const init: RequestInit = { method, headers: { "CF-Connecting-IP": randomIp(), ...headers } };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)["Content-Type"] = "application/json";
      }
      const response = await app.fetch(new Request(GATEWAY + path, init), failing, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    };
    const bearer = { Authorization: `Bearer ${access_token}` };
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
        await send("POST", "/authenticate/secrets", {}, bearer),
      ],
      [
        "get",
        "/authenticate/secrets",
        "/authenticate/secrets",
        await send("GET", "/authenticate/secrets", undefined, bearer),
      ],
      [
        "delete",
        "/authenticate/secrets/{kid}",
        "/authenticate/secrets/ds_x",
        await send("DELETE", "/authenticate/secrets/ds_x", undefined, bearer),
      ],
    ];
    for (const [method, path, , response] of cases) {
      expect(response.status, `${method} ${path}`).toBe(503);
      expect((await expectConforms(method, path, response)).code).toBe("temporarily_unavailable");
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
});
