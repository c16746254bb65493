// `npm run token:dynamic` (scripts/lib/dynamic-token.ts): a lifetime unless --no-exp, and only a real dynamic secret.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { parseLifetime, parseTokenArgs, signDynamicToken, UsageError } from "../lib/dynamic-token";
import { ROOT } from "../lib/deployment";

const SECRET = randomBytes(32).toString("base64url");
const REQUIRED = ["--secret", SECRET, "--org", "m7l9hw", "--member", "o6q2is"];

function parse(...args: string[]) {
  return parseTokenArgs([...REQUIRED, ...args], {});
}

describe("token:dynamic", () => {
  it("takes a secret that starts with a dash (one base64url secret in 64) after --secret", () => {
    const dashed = `-${SECRET.slice(1)}`;
    const options = parseTokenArgs(["--secret", dashed, "--org", "o", "--member", "m", "--exp", "1h"], {});
    expect(options?.secret).toBe(dashed);
  });

  it("requires --exp unless --no-exp is given, and not both", () => {
    expect(() => parse()).toThrow(
      new UsageError("--exp is required (e.g. --exp 15m); --no-exp signs a token valid until its secret is revoked"),
    );
    expect(parse("--no-exp")?.lifetime).toBeUndefined();
    expect(() => parse("--exp", "15m", "--no-exp")).toThrow("--exp and --no-exp exclude each other");
  });

  it.each([
    ["900", 900],
    ["30s", 30],
    ["15m", 900],
    ["1h", 3600],
    ["7d", 604_800],
  ])("reads --exp %s as %i seconds", (raw, seconds) => {
    expect(parseLifetime(raw)).toBe(seconds);
    expect(parse(`--exp=${raw}`)?.lifetime).toBe(seconds);
  });

  it.each(["0", "0m", "-5", "1.5h", "15 minutes", "1w", "h", ""])("refuses --exp %j", (raw) => {
    expect(() => parse("--exp", raw)).toThrow(UsageError);
  });

  it.each([
    ["a fixed secret", "test-jwt-secret-0123456789abcdef0123456789abcdef"],
    ["a kid", "ds_AAECAwQFBgcICQoL"],
    ["44 characters", `${SECRET}A`],
    ["a character outside base64url", `${SECRET.slice(0, 42)}+`],
    ["padding", `${SECRET.slice(0, 42)}=`],
    ["a last character with stray bits (not what the gateway issues)", `${SECRET.slice(0, 42)}B`],
  ])("refuses %s as --secret", (_what, secret) => {
    expect(() => parseTokenArgs(["--secret", secret, "--org", "o", "--member", "m", "--exp", "1h"], {})).toThrow(
      /--secret must be a dynamic secret/,
    );
  });

  it("takes the secret from GRIDGATE_DYNAMIC_SECRET, and refuses a wrong one there too", () => {
    const args = ["--org", "m7l9hw", "--member", "o6q2is", "--exp", "1h"];
    expect(parseTokenArgs(args, { GRIDGATE_DYNAMIC_SECRET: SECRET })?.secret).toBe(SECRET);
    expect(() => parseTokenArgs(args, { GRIDGATE_DYNAMIC_SECRET: "short" })).toThrow(
      /--secret must be a dynamic secret/,
    );
  });

  it("refuses unknown flags and positional arguments", () => {
    expect(() => parse("--exp", "1h", "--expires", "1h")).toThrow(UsageError);
    expect(() => parse("--exp", "1h", "extra")).toThrow(UsageError);
  });

  it("signs with the UTF-8 bytes of the secret, exp = iat + lifetime, and the kid in the header", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signDynamicToken(parse("--exp", "15m", "--kid", "ds_test", "--scope", "architect")!, now);
    const { payload } = await jwtVerify(token, new TextEncoder().encode(SECRET), { algorithms: ["HS256"] });
    expect(payload).toMatchObject({
      iat: now,
      exp: now + 900,
      secretType: "dynamic",
      organisationEntityIdentifier: "m7l9hw",
      memberEntityIdentifier: "o6q2is",
      scope: "architect",
    });
    expect(decodeProtectedHeader(token)).toEqual({ typ: "JWT", alg: "HS256", kid: "ds_test" });
    const forever = await signDynamicToken(parse("--no-exp")!, now);
    expect((await jwtVerify(forever, new TextEncoder().encode(SECRET))).payload.exp).toBeUndefined();
  });

  it("exits 2 with the reason and the usage text when --exp is missing", () => {
    const run = spawnSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/sign-dynamic-token.ts", ...REQUIRED], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^--exp is required .*\n\nUsage: npm run token:dynamic/);
  });
});
