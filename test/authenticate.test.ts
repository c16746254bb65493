// POST /authenticate through the HTTP surface: bodies, credentials, plan, suspension, domains.
import { env } from "cloudflare:workers";
import { jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { gateway, login, postLogin, problem, randomIp, inOneRateWindow } from "./helpers";

const architect = "architect@acme.example";

async function addMember(
  email: string,
  fields: { orgId?: number; status?: string; orgStatus?: string } = {},
): Promise<void> {
  let orgId = fields.orgId ?? 1;
  if (fields.orgStatus) {
    const suffix = crypto.randomUUID().slice(0, 6);
    const org = await env.DB.prepare(
      "INSERT INTO organisations (identifier, name, domain, plan, status) VALUES (?, ?, ?, 'professional', ?) RETURNING id",
    )
      .bind(`s${suffix}`, "Suspended Org", `${suffix}.example`, fields.orgStatus)
      .first<{ id: number }>();
    orgId = org!.id;
  }
  await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role, status) VALUES (?, ?, ?, ?, 'builder', ?)",
  )
    .bind(
      crypto.randomUUID().slice(0, 8),
      orgId,
      email,
      await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!),
      fields.status ?? "active",
    )
    .run();
}

describe("successful login", () => {
  it("issues an HS256 access token with every seed claim, verifiable by jose", async () => {
    const before = Math.floor(Date.now() / 1000);
    const response = await postLogin({ email: architect, password: SEED_PASSWORD });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await response.json()) as Record<string, any>;
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "architect" });

    const { payload, protectedHeader } = await jwtVerify(body.access_token, new TextEncoder().encode(env.JWT_SECRET), {
      algorithms: ["HS256"],
    });
    expect(protectedHeader.kid).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(Object.keys(payload).sort()).toEqual(
      [
        "exp",
        "iat",
        "iss",
        "jti",
        "memberEntityId",
        "memberEntityIdentifier",
        "organisationEntityIdentifier",
        "scope",
        "secretType",
      ].sort(),
    );
    expect(payload).toMatchObject({
      iss: "gridgate",
      memberEntityId: "2549", // issue 12: a string of decimal digits, as the API documentation shows it
      memberEntityIdentifier: "o6q2is",
      organisationEntityIdentifier: "m7l9hw",
      scope: "architect",
      secretType: "fixed",
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.exp).toBe(payload.iat! + 3600);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("accepts a form-encoded body", async () => {
    const response = await gateway("/authenticate", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", "CF-Connecting-IP": randomIp() },
      body: new URLSearchParams({ email: "viewer@acme.example", password: SEED_PASSWORD }).toString(),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as any).scope).toBe("user");
  });

  it("puts role and extra scopes in the token scope", async () => {
    expect((await login("reader@acme.example")).scope).toBe("getGrids");
    expect((await login("builder@acme.example")).scope).toBe("builder");
  });

  it("trims and ASCII-lower-cases the email and domain", async () => {
    expect((await login("  ARCHITECT@Acme.Example ")).scope).toBe("architect");
    expect((await login("consultant@example.com", { domain: " ACME.example" })).scope).toBe("builder");
  });

  it("does not fold Unicode look-alikes onto another account", async () => {
    // U+0130 (İ) lower-cases to "i̇" under Unicode rules; it must not reach architect@…
    const response = await postLogin({ email: "archİtect@acme.example", password: SEED_PASSWORD });
    expect(response.status).toBe(401);
    const kelvin = await postLogin({ email: "architect@acme.example".replace("a", "\u212A"), password: SEED_PASSWORD });
    expect(kelvin.status).toBe(401);
  });
});

describe("credential failures", () => {
  const cases = {
    "unknown email": { email: "nobody@acme.example", password: SEED_PASSWORD },
    "wrong password": { email: architect, password: "not-the-password" },
    "wrong domain": { email: architect, password: SEED_PASSWORD, domain: "enterprise.example" },
    "unknown domain": { email: architect, password: SEED_PASSWORD, domain: "nowhere.example" },
  };

  it("answers every credential failure with the same 401 status, body and headers", async () => {
    const answers = [];
    for (const body of Object.values(cases)) {
      const response = await postLogin(body);
      expect(response.status).toBe(401);
      const { request_id, ...rest } = await problem(response);
      const headers = [...response.headers].filter(([name]) => name !== "x-request-id");
      answers.push({ rest, headers });
    }
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    expect(answers[0]!.rest.code).toBe("invalid_credentials");
    expect(Object.fromEntries(answers[0]!.headers)["www-authenticate"]).toBe('Bearer realm="api"');
  });
});

describe("refusals after the password verified", () => {
  it("403 plan_not_eligible for a free-plan organisation", async () => {
    const response = await postLogin({ email: "free@free.example", password: SEED_PASSWORD });
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("plan_not_eligible");
  });

  it("401, not 403, for a free-plan member with a wrong password", async () => {
    expect((await postLogin({ email: "free@free.example", password: "wrong" })).status).toBe(401);
  });

  it("403 account_suspended for a suspended member or organisation", async () => {
    await addMember("suspended@acme.example", { status: "suspended" });
    await addMember("member@suspended-org.example", { orgStatus: "suspended" });
    for (const email of ["suspended@acme.example", "member@suspended-org.example"]) {
      const response = await postLogin({ email, password: SEED_PASSWORD });
      expect(response.status).toBe(403);
      expect((await problem(response)).code).toBe("account_suspended");
    }
    expect((await postLogin({ email: "suspended@acme.example", password: "wrong" })).status).toBe(401);
  });

  it("409 domain_required only when the password verifies in several organisations", async () => {
    const response = await postLogin({ email: "consultant@example.com", password: SEED_PASSWORD });
    expect(response.status).toBe(409);
    expect((await problem(response)).code).toBe("domain_required");
    expect((await postLogin({ email: "consultant@example.com", password: "wrong" })).status).toBe(401);

    const acme = await login("consultant@example.com", { domain: "acme.example" });
    const enterprise = await login("consultant@example.com", { domain: "enterprise.example" });
    const orgOf = (token: string) =>
      JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).organisationEntityIdentifier;
    expect(orgOf(acme.access_token)).toBe("m7l9hw");
    expect(orgOf(enterprise.access_token)).toBe("q1w2e3");
  });
});

describe("malformed requests", () => {
  async function expectProblem(response: Response, status: number, code: string): Promise<void> {
    expect(response.status).toBe(status);
    expect((await problem(response)).code).toBe(code);
  }
  const post = (body: BodyInit, contentType: string | null) =>
    gateway("/authenticate", {
      method: "POST",
      headers: { ...(contentType ? { "Content-Type": contentType } : {}), "CF-Connecting-IP": randomIp() },
      body,
    });

  it.each([
    ["invalid JSON", "{"],
    ["a JSON array", "[]"],
    ["a JSON string", '"x"'],
    ["missing password", JSON.stringify({ email: architect })],
    ["missing email", JSON.stringify({ password: SEED_PASSWORD })],
    ["a numeric email", JSON.stringify({ email: 1, password: SEED_PASSWORD })],
    ["an array password", JSON.stringify({ email: architect, password: [SEED_PASSWORD] })],
    ["a null domain", JSON.stringify({ email: architect, password: SEED_PASSWORD, domain: null })],
    ["an empty password", JSON.stringify({ email: architect, password: "" })],
    ["a password over 1,024 bytes", JSON.stringify({ email: architect, password: "é".repeat(513) })],
  ])("400 for %s", async (_name, body) => {
    await expectProblem(await post(body, "application/json"), 400, "invalid_request");
  });

  it("400 for a form field given twice", async () => {
    await expectProblem(
      await post(`email=${architect}&email=x&password=${SEED_PASSWORD}`, "application/x-www-form-urlencoded"),
      400,
      "invalid_request",
    );
  });

  it("400 for a body that is not UTF-8", async () => {
    await expectProblem(await post(new Uint8Array([0x7b, 0xff, 0x7d]), "application/json"), 400, "invalid_request");
  });

  it("413 for a body over 16 KiB, declared or streamed", async () => {
    const big = JSON.stringify({ email: architect, password: SEED_PASSWORD, pad: "x".repeat(17 * 1024) });
    await expectProblem(await post(big, "application/json"), 413, "payload_too_large");
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024)));
        controller.close();
      },
    });
    await expectProblem(await post(stream, "application/json"), 413, "payload_too_large");
  });

  it.each([["text/plain"], ["multipart/form-data; boundary=x"], [null]])("415 for content type %s", async (type) => {
    await expectProblem(
      await post(JSON.stringify({ email: architect, password: SEED_PASSWORD }), type),
      415,
      "unsupported_media_type",
    );
  });

  it("405 with Allow for other methods, 404 for unknown gateway routes", async () => {
    const get = await gateway("/authenticate");
    await expectProblem(get, 405, "method_not_allowed");
    expect(get.headers.get("Allow")).toBe("POST");
    await expectProblem(await gateway("/authenticate/unknown", { method: "POST" }), 404, "not_found");
  });
});

describe("rate limiting", () => {
  it("429 with Retry-After once one IP exceeds the login limit", async () => {
    await inOneRateWindow(async () => {
      const ip = randomIp();
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 15 && !limited; i++) {
        const response = await postLogin(
          { email: `nobody-${i}@acme.example`, password: "x" },
          { "CF-Connecting-IP": ip },
        );
        statuses.push(response.status);
        if (response.status === 429) limited = response;
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
      expect(limited?.status).toBe(429);
      expect(Number(limited!.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect((await problem(limited!)).code).toBe("rate_limited");
    });
  }, 30_000);
});
