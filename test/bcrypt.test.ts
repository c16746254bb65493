// Imported bcrypt hashes and old PBKDF2 parameters: verification, the 72-byte rule, and transparent re-hashing.
import bcrypt from "bcryptjs";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyBcrypt } from "../src/credentials/bcrypt";
import { Logger } from "../src/log";
import { PBKDF2_ITERATIONS, PEPPER_VERSION } from "../src/credentials/password";
import { postLogin } from "./helpers";

const CURRENT_PREFIX = `$pbkdf2-sha256$i=${PBKDF2_ITERATIONS},p=${PEPPER_VERSION}$`;
const OLD_CHANGE_TIME = 1_600_000_000;
const log = new Logger("bcrypt-test");

/** Inserts an active Acme member whose stored hash is `hash`; returns its email and id. */
async function importedMember(hash: string): Promise<{ email: string; id: number }> {
  const email = `imported-${crypto.randomUUID().slice(0, 8)}@acme.example`;
  const row = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role, password_changed_at) VALUES (?, 1, ?, ?, 'builder', ?) RETURNING id",
  )
    .bind(`b${crypto.randomUUID().slice(0, 7)}`, email, hash, OLD_CHANGE_TIME)
    .first<{ id: number }>();
  return { email, id: row!.id };
}

async function storedHash(id: number): Promise<{ password_hash: string; password_changed_at: number }> {
  return (await env.DB.prepare("SELECT password_hash, password_changed_at FROM members WHERE id = ?")
    .bind(id)
    .first())!;
}

/** Polls until the member's hash is no longer `previous` (the upgrade runs in waitUntil). */
async function hashAfterUpgrade(id: number, previous: string): Promise<string> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const { password_hash } = await storedHash(id);
    if (password_hash !== previous || Date.now() > deadline) return password_hash;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A PBKDF2 hash in the gateway's format with chosen parameters, made independently of the gateway's code. */
async function pbkdf2Hash(password: string, iterations: number, pepperVersion: number): Promise<string> {
  const encoder = new TextEncoder();
  const pepperKey = await crypto.subtle.importKey(
    "raw",
    encoder.encode(env.PASSWORD_PEPPER!),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const peppered = await crypto.subtle.sign("HMAC", pepperKey, encoder.encode(password));
  const material = await crypto.subtle.importKey("raw", peppered, "PBKDF2", false, ["deriveBits"]);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const bits = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, 256),
  );
  const b64 = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });
  return `$pbkdf2-sha256$i=${iterations},p=${pepperVersion}$${b64(salt)}$${b64(bits)}`;
}

describe("bcrypt verification", () => {
  it("verifies a published $2a$ test vector", async () => {
    expect(await verifyBcrypt("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", log)).toBe(true);
    expect(await verifyBcrypt("U*V", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", log)).toBe(false);
  });

  it("accepts $2a$, $2b$ and $2y$ hashes of the same password", async () => {
    const hash = await bcrypt.hash("imported-password", 4);
    for (const prefix of ["$2a$", "$2b$", "$2y$"])
      expect(await verifyBcrypt("imported-password", prefix + hash.slice(4), log)).toBe(true);
  });

  it("never verifies a password over 72 bytes, even when bcrypt would (its first 72 bytes match)", async () => {
    const long = "a".repeat(72) + "-suffix";
    const hash = await bcrypt.hash(long, 4);
    expect(await bcrypt.compare("a".repeat(72) + "-other", hash)).toBe(true);
    expect(await verifyBcrypt(long, hash, log)).toBe(false);
    expect(await verifyBcrypt("a".repeat(72) + "-other", hash, log)).toBe(false);
    expect(await verifyBcrypt("a".repeat(72), await bcrypt.hash("a".repeat(72), 4), log)).toBe(true);
  });

  it("refuses malformed hashes and costs above 12 without verifying", async () => {
    const hash = await bcrypt.hash("pw", 4);
    expect(await verifyBcrypt("pw", hash.slice(0, 59), log)).toBe(false);
    expect(await verifyBcrypt("pw", hash.replace("$04$", "$13$"), log)).toBe(false);
    expect(await verifyBcrypt("pw", hash.replace("$04$", "$03$"), log)).toBe(false);
  });
});

describe("imported bcrypt members through POST /authenticate", () => {
  it("logs in with a $2b$ cost-10 hash and transparently upgrades it to PBKDF2, keeping password_changed_at", async () => {
    const bcryptHash = await bcrypt.hash("origin-password", 10);
    const { email, id } = await importedMember(bcryptHash);

    expect((await postLogin({ email, password: "origin-password " })).status).toBe(401);
    expect((await storedHash(id)).password_hash).toBe(bcryptHash);

    const response = await postLogin({ email, password: "origin-password" });
    expect(response.status).toBe(200);
    const upgraded = await hashAfterUpgrade(id, bcryptHash);
    expect(upgraded.startsWith(CURRENT_PREFIX)).toBe(true);
    expect((await storedHash(id)).password_changed_at).toBe(OLD_CHANGE_TIME);

    expect((await postLogin({ email, password: "origin-password" })).status).toBe(200);
    expect((await postLogin({ email, password: "wrong" })).status).toBe(401);
    expect((await storedHash(id)).password_hash).toBe(upgraded);
  });

  it("refuses a >72-byte password whose first 72 bytes match an imported hash", async () => {
    const long = "p".repeat(72) + "-real-ending";
    const { email, id } = await importedMember(await bcrypt.hash(long, 4));
    expect((await postLogin({ email, password: long })).status).toBe(401);
    expect((await postLogin({ email, password: "p".repeat(72) + "-guess" })).status).toBe(401);
    expect((await storedHash(id)).password_hash.startsWith("$2")).toBe(true);
  });
});

describe("re-hashing PBKDF2 hashes with old parameters", () => {
  it.each([
    ["fewer iterations", 50_000, PEPPER_VERSION],
    ["an older pepper version", PBKDF2_ITERATIONS, 0],
  ])("upgrades a hash with %s on the next successful login", async (_name, iterations, pepperVersion) => {
    const old = await pbkdf2Hash("old-params-password", iterations, pepperVersion);
    const { email, id } = await importedMember(old);
    expect((await postLogin({ email, password: "old-params-password" })).status).toBe(200);
    const upgraded = await hashAfterUpgrade(id, old);
    expect(upgraded.startsWith(CURRENT_PREFIX)).toBe(true);
    expect((await storedHash(id)).password_changed_at).toBe(OLD_CHANGE_TIME);
    expect((await postLogin({ email, password: "old-params-password" })).status).toBe(200);
  });

  it("leaves a current hash alone", async () => {
    const current = await pbkdf2Hash("current-password", PBKDF2_ITERATIONS, PEPPER_VERSION);
    const { email, id } = await importedMember(current);
    expect((await postLogin({ email, password: "current-password" })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await storedHash(id)).password_hash).toBe(current);
  });
});
