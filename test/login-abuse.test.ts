// Login abuse protection through POST /authenticate: per-IP limit, per-account back-off, equal refusals.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { postLogin, problem, randomIp, inOneRateWindow } from "./helpers";
import { backoffRecord, seedBackoff } from "./locations";

const FREE_ATTEMPTS = 5;

/** A fresh active member of the seeded Acme organisation (professional plan) with the seed password. */
async function freshMember(prefix: string): Promise<string> {
  const email = `${prefix}-${crypto.randomUUID().slice(0, 8)}@acme.example`;
  await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role) VALUES (?, 1, ?, ?, 'builder')",
  )
    .bind(`t${crypto.randomUUID().slice(0, 7)}`, email, await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!))
    .run();
  return email;
}

async function fail(email: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return postLogin({ email, password: `wrong-${crypto.randomUUID()}`, ...extra });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Status, body without request_id, and headers without X-Request-Id: what must not differ. */
async function visible(response: Response): Promise<unknown> {
  const { request_id: _id, ...body } = await problem(response);
  const headers = [...response.headers].filter(([name]) => name !== "x-request-id");
  return { status: response.status, body, headers };
}

describe("per-account back-off", () => {
  it("throttles credential stuffing against one account from rotating IPs, then doubles the back-off", async () => {
    const email = await freshMember("stuffed");
    for (let i = 0; i < FREE_ATTEMPTS; i++) expect((await fail(email)).status).toBe(401);

    const locked = await postLogin({ email, password: SEED_PASSWORD }, { "CF-Connecting-IP": randomIp() });
    expect(locked.status).toBe(429);
    expect(locked.headers.get("Retry-After")).toBe("1");
    expect((await problem(locked)).code).toBe("rate_limited");
    const stored = await backoffRecord(email);
    expect(stored).toMatchObject({ failures: FREE_ATTEMPTS });
    expect(stored!.lockedUntil).toBeGreaterThan(Date.now() - 1000);

    await sleep(1100);
    expect((await fail(email)).status).toBe(401);
    const doubled = await fail(email);
    expect(doubled.status).toBe(429);
    expect(doubled.headers.get("Retry-After")).toBe("2");
    expect(await backoffRecord(email)).toMatchObject({
      failures: FREE_ATTEMPTS + 1,
    });
  });

  it("keeps doubling up to LOGIN_BACKOFF_MAX_SECONDS", async () => {
    const email = await freshMember("capped");
    const now = Date.now();
    await seedBackoff(email, { failures: FREE_ATTEMPTS + 3, lockedUntil: 0, expiresAt: now + 600_000 });
    expect((await fail(email)).status).toBe(401);
    expect((await fail(email)).headers.get("Retry-After")).toBe(String(2 ** 4));

    const other = await freshMember("capped");
    await seedBackoff(other, { failures: FREE_ATTEMPTS + 30, lockedUntil: 0, expiresAt: now + 600_000 });
    expect((await fail(other)).status).toBe(401);
    const capped = await fail(other);
    expect(capped.status).toBe(429);
    expect(capped.headers.get("Retry-After")).toBe("900");
  });

  it("a successful login resets the counter", async () => {
    const email = await freshMember("reset");
    for (let i = 0; i < FREE_ATTEMPTS - 1; i++) expect((await fail(email)).status).toBe(401);
    expect(await backoffRecord(email)).toBeDefined();
    expect((await postLogin({ email, password: SEED_PASSWORD })).status).toBe(200);
    expect(await backoffRecord(email)).toBeUndefined();
    for (let i = 0; i < FREE_ATTEMPTS; i++) expect((await fail(email)).status).toBe(401);
    expect((await fail(email)).status).toBe(429);
  });

  it("cannot be bypassed by adding, removing or changing the domain, or by re-casing the email", async () => {
    const email = await freshMember("domains");
    const variants = [
      {},
      { domain: "acme.example" },
      { domain: "enterprise.example" },
      { domain: "nowhere.example" },
      { email: `  ${email.toUpperCase()} ` },
    ];
    for (const extra of variants) expect((await fail(email, extra)).status).toBe(401);
    for (const extra of variants)
      expect((await postLogin({ email, password: SEED_PASSWORD, ...extra })).status).toBe(429);
  });

  it("locks unknown emails the same way, with an identical 429", async () => {
    const known = await freshMember("known");
    const unknown = `nobody-${crypto.randomUUID().slice(0, 8)}@acme.example`;
    for (let i = 0; i < FREE_ATTEMPTS; i++) {
      expect((await fail(known)).status).toBe(401);
      expect((await fail(unknown)).status).toBe(401);
    }
    const [a, b] = [await fail(known), await fail(unknown)];
    expect(a.status).toBe(429);
    expect(await visible(a)).toEqual(await visible(b));
  });

  it("does not count refusals that come after the password verified, nor malformed bodies", async () => {
    for (let i = 0; i < FREE_ATTEMPTS + 1; i++)
      expect((await postLogin({ email: "free@free.example", password: SEED_PASSWORD })).status).toBe(403);
    expect(await backoffRecord("free@free.example")).toBeUndefined();
    const email = await freshMember("toolong");
    for (let i = 0; i < FREE_ATTEMPTS + 1; i++)
      expect((await postLogin({ email, password: "x".repeat(1025) })).status).toBe(400);
    expect(await backoffRecord(email)).toBeUndefined();
    expect((await postLogin({ email, password: SEED_PASSWORD })).status).toBe(200);
  });
});

describe("per-IP limit", () => {
  const unknown = () => ({ email: `ip-${crypto.randomUUID().slice(0, 8)}@acme.example`, password: "wrong" });

  it("keys on CF-Connecting-IP and ignores a rotating X-Forwarded-For", async () => {
    await inOneRateWindow(async () => {
      const ip = randomIp();
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) {
        const response = await postLogin(unknown(), { "CF-Connecting-IP": ip, "X-Forwarded-For": randomIp() });
        statuses.push(response.status);
        if (response.status === 429) {
          expect(response.headers.get("Retry-After")).toBe("60");
          expect((await problem(response)).code).toBe("rate_limited");
        }
      }
      expect(statuses).toEqual([...Array(10).fill(401), 429]);
    });
  }, 30_000);

  it("does not couple clients that share a spoofed X-Forwarded-For", async () => {
    const spoofed = randomIp();
    for (let i = 0; i < 12; i++) expect((await postLogin(unknown(), { "X-Forwarded-For": spoofed })).status).toBe(401);
  });
});

describe("no user enumeration", () => {
  it("unknown email, wrong password and wrong domain give the same status, body and headers", async () => {
    const email = await freshMember("enum");
    const answers = [
      await postLogin({ email: `ghost-${crypto.randomUUID().slice(0, 8)}@acme.example`, password: SEED_PASSWORD }),
      await postLogin({ email, password: "not-the-password" }),
      await postLogin({ email, password: SEED_PASSWORD, domain: "enterprise.example" }),
    ];
    const seen = await Promise.all(answers.map(visible));
    expect(seen[0]).toMatchObject({ status: 401, body: { code: "invalid_credentials" } });
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);
  });

  it("spends a password verification on unknown emails too (comparable time)", async () => {
    const timed = async (body: Record<string, string>) => {
      const start = performance.now();
      expect((await postLogin(body)).status).toBe(401);
      return performance.now() - start;
    };
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const emails = await Promise.all([1, 2, 3, 4, 5].map(() => freshMember("timing")));
    const known: number[] = [];
    const unknown: number[] = [];
    for (const email of emails) {
      known.push(await timed({ email, password: "wrong-password" }));
      unknown.push(await timed({ email: `x${email}`, password: "wrong-password" }));
    }
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.5);
    expect(median(unknown)).toBeLessThan(median(known) * 2);
  });

  it("refuses a password over 1,024 bytes with a fast 400, and accepts exactly 1,024 for checking", async () => {
    const email = await freshMember("long");
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    try {
      const tooLong = await postLogin({ email, password: "é".repeat(512) + "x" });
      expect(tooLong.status).toBe(400);
      expect((await problem(tooLong)).code).toBe("invalid_request");
      expect(derive).not.toHaveBeenCalled();
      expect((await postLogin({ email, password: "é".repeat(512) })).status).toBe(401);
      expect(derive).toHaveBeenCalled();
    } finally {
      derive.mockRestore();
    }
  });
});
