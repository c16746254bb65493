// `npm run deploy:check` refusals and `npm run secrets:generate` (scripts/lib/deployment.ts), on copies of wrangler.toml.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig, type Bindings } from "../../src/config";
import {
  deployProblems,
  generateSecrets,
  readEnvironment,
  requiredSecrets,
  ROOT,
  secretsProblems,
} from "../lib/deployment";

const COMMITTED = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
/** wrangler.toml with its environments filled in as docs/operating.md § Deploy says. */
const FILLED = COMMITTED.replace(
  /^ORIGIN_URL = "<https URL of the staging grids API>".*$/m,
  'ORIGIN_URL = "https://grids-staging.example.com"',
).replace(/^ORIGIN_URL = "<https URL of the production grids API>".*$/m, 'ORIGIN_URL = "https://grids.example.com"');

let dir: string;
let secrets: string;
let counter = 0;

/** A copy of wrangler.toml with `text`, read for `env` as deploy:check reads it. */
function environment(text: string, env = "staging") {
  const path = join(dir, `wrangler-${++counter}.toml`);
  writeFileSync(path, text);
  return readEnvironment(path, env);
}

/** deploy:check's refusals for a wrangler.toml and a secrets file with `lines` (the generated file by default). */
function problems(text: string, env = "staging", secretsText?: string): string[] {
  let file = secrets;
  if (secretsText !== undefined) {
    file = join(dir, `secrets-${++counter}.env`);
    writeFileSync(file, secretsText);
  }
  return deployProblems(environment(text, env), file);
}

/** `text` with `from` replaced inside `[env.staging…]` only; fails the test when `from` is not there. */
function inStaging(text: string, from: string | RegExp, to: string): string {
  const start = text.indexOf("\n[env.staging]\n");
  const end = text.indexOf("\n[env.production]\n");
  const section = text.slice(start, end);
  const changed = section.replace(from, to);
  expect(changed, `${from} in [env.staging]`).not.toBe(section);
  return text.slice(0, start) + changed + text.slice(end);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gridgate-deploy-"));
  secrets = join(dir, "staging.env");
  generateSecrets(environment(FILLED), secrets);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("deploy:check", () => {
  it("accepts staging and production filled in as the docs say, with generated secrets", () => {
    expect(problems(FILLED, "staging")).toEqual([]);
    expect(problems(FILLED, "production")).toEqual([]);
    // Production keeps the Worker and D1 names of the single-environment setup, so an existing deployment keeps its data.
    expect(environment(FILLED, "production")).toMatchObject({
      name: "gridgate",
      d1_databases: [{ database_name: "gridgate" }],
    });
    expect(environment(FILLED, "staging").name).toBe("gridgate-staging");
  });

  it.each(["staging", "production"])("refuses the committed %s section until its origin is filled in", (env) => {
    expect(problems(COMMITTED, env)).toEqual([
      expect.stringMatching(/^vars\.ORIGIN_URL is still a placeholder \("<https URL of the \w+ grids API>"\)/),
    ]);
  });

  it("refuses an unknown environment", () => {
    expect(() => environment(FILLED, "prod")).toThrow(
      "wrangler.toml has no [env.prod]; its environments: staging, production",
    );
  });

  it("refuses placeholder ids: all zeros or <…>", () => {
    const zeros = inStaging(
      FILLED,
      'database_name = "gridgate-staging"',
      '$&\ndatabase_id = "00000000-0000-0000-0000-000000000000"',
    );
    expect(problems(zeros)).toEqual([expect.stringMatching(/^d1_databases\[0\]\.database_id is still a placeholder/)]);
    const angle = inStaging(FILLED, /binding = "TOKENS"/, '$&\nid = "<kv namespace id>"');
    expect(problems(angle)).toEqual([expect.stringMatching(/^kv_namespaces\[0\]\.id is still a placeholder/)]);
  });

  it("refuses an environment without an origin, and accepts a service binding ORIGIN instead of ORIGIN_URL", () => {
    const none = inStaging(FILLED, /^ORIGIN_URL = .*$/m, "");
    expect(problems(none)).toEqual([
      "neither an ORIGIN service binding nor ORIGIN_URL: every proxied request would get 502",
    ]);
    const service = `${none}\n[[env.staging.services]]\nbinding = "ORIGIN"\nservice = "grids-api-staging"\n`;
    expect(problems(service)).toEqual([]);
  });

  it("refuses an ORIGIN_URL that is not https, or that the gateway refuses", () => {
    const plain = inStaging(FILLED, /^ORIGIN_URL = .*$/m, 'ORIGIN_URL = "http://grids-staging.example.com"');
    expect(problems(plain)).toEqual([
      'ORIGIN_URL must be https outside local development, got "http://grids-staging.example.com"',
    ]);
    const query = inStaging(FILLED, /^ORIGIN_URL = .*$/m, 'ORIGIN_URL = "https://grids-staging.example.com/?a=1"');
    expect(problems(query)).toEqual([expect.stringMatching(/^ORIGIN_URL must be an http\(s\) URL without query/)]);
  });

  it("refuses CORS_ORIGINS that are not exact origins, and accepts a comma-separated list of them", () => {
    const slash = inStaging(FILLED, /^# CORS_ORIGINS = .*$/m, 'CORS_ORIGINS = "https://app.example.com/"');
    expect(problems(slash)).toEqual([expect.stringMatching(/^CORS_ORIGINS must list exact origins/)]);
    const star = inStaging(FILLED, /^# CORS_ORIGINS = .*$/m, 'CORS_ORIGINS = "*"');
    expect(problems(star)).toEqual([expect.stringMatching(/^CORS_ORIGINS must list exact origins/)]);
    const two = inStaging(
      FILLED,
      /^# CORS_ORIGINS = .*$/m,
      'CORS_ORIGINS = "https://a.example.com,https://b.example.com"',
    );
    expect(problems(two)).toEqual([]);
  });

  it("refuses a var the gateway would refuse at its first request", () => {
    const ttl = inStaging(FILLED, 'ACCESS_TOKEN_TTL = "3600"', 'ACCESS_TOKEN_TTL = "0"');
    expect(problems(ttl)).toEqual(['ACCESS_TOKEN_TTL must be an integer ≥ 1, got "0"']);
  });

  describe("rate limits: one API_LIMIT_<PLAN> binding per plan in API_PLANS, at the plan's API_RATE_LIMITS", () => {
    it("refuses a binding whose simple.limit differs from API_RATE_LIMITS", () => {
      const text = inStaging(FILLED, "limit = 6000, period = 60", "limit = 5000, period = 60");
      expect(problems(text)).toEqual([
        "API_LIMIT_ENTERPRISE has simple.limit 5000, but API_RATE_LIMITS states enterprise=6000",
      ]);
    });

    it("refuses a binding counting over another period", () => {
      const text = inStaging(FILLED, "limit = 600, period = 60", "limit = 600, period = 10");
      expect(problems(text)).toEqual(["API_LIMIT_PROFESSIONAL has simple.period 10; the API limits are per 60 s"]);
    });

    it("refuses a plan without its binding", () => {
      const text = inStaging(FILLED, /\[\[env\.staging\.ratelimits\]\]\nname = "API_LIMIT_ENTERPRISE"[^[]*/, "");
      expect(problems(text)).toEqual([
        "plan enterprise (in API_PLANS) has no [[ratelimits]] binding API_LIMIT_ENTERPRISE: it would not be limited",
      ]);
    });

    it("refuses a plan API_RATE_LIMITS states no limit for", () => {
      const text = inStaging(FILLED, /^API_RATE_LIMITS = .*$/m, 'API_RATE_LIMITS = "professional=600"');
      expect(problems(text)).toEqual(["API_RATE_LIMITS states no limit for plan enterprise (in API_PLANS)"]);
    });

    it("refuses an API_RATE_LIMITS the gateway cannot read, once", () => {
      const text = inStaging(FILLED, /^API_RATE_LIMITS = .*$/m, 'API_RATE_LIMITS = "professional:600"');
      expect(problems(text)).toEqual([expect.stringMatching(/^API_RATE_LIMITS must be comma-separated/)]);
    });
  });

  describe("the audit trail: each AUDIT_QUEUE_* consumed here, with a consumed dead-letter queue, and AUDIT_BUCKET", () => {
    it("refuses a missing producer, a queue without its consumer, a consumer without a dead-letter queue", () => {
      const noProducer = inStaging(
        FILLED,
        /\[\[env\.staging\.queues\.producers\]\]\nbinding = "AUDIT_QUEUE_1"[^[]*/,
        "",
      );
      expect(problems(noProducer)).toEqual([
        expect.stringMatching(/^no \[\[queues\.producers\]\] binding AUDIT_QUEUE_1/),
      ]);
      const noConsumer = inStaging(
        FILLED,
        /\[\[env\.staging\.queues\.consumers\]\]\nqueue = "gridgate-staging-audit-0"[^[]*/,
        "",
      );
      expect(problems(noConsumer)).toEqual([
        "queue gridgate-staging-audit-0 (AUDIT_QUEUE_0) has no [[queues.consumers]] here: its audit events would never reach R2",
      ]);
      const noDeadLetters = inStaging(FILLED, /dead_letter_queue = .*\n/, "");
      expect(problems(noDeadLetters)).toEqual([
        expect.stringMatching(/^queue gridgate-staging-audit-0 has no dead_letter_queue/),
      ]);
    });

    it("refuses a dead-letter queue nobody consumes, and an environment without AUDIT_BUCKET", () => {
      const unread = inStaging(
        FILLED,
        /\[\[env\.staging\.queues\.consumers\]\]\nqueue = "gridgate-staging-audit-dead"[^[]*/,
        "",
      );
      expect(problems(unread)).toEqual([
        expect.stringMatching(/^dead-letter queue gridgate-staging-audit-dead has no \[\[queues\.consumers\]\] here/),
        expect.stringMatching(/^dead-letter queue gridgate-staging-audit-dead has no \[\[queues\.consumers\]\] here/),
      ]);
      const noBucket = inStaging(FILLED, /\[\[env\.staging\.r2_buckets\]\][^[]*/, "");
      expect(problems(noBucket)).toEqual(["no [[r2_buckets]] binding AUDIT_BUCKET: the audit trail's store"]);
    });
  });

  describe("secrets", () => {
    const generated = () => readFileSync(secrets, "utf8");

    it("refuses a missing secrets file, naming the command that writes it", () => {
      const config = environment(FILLED);
      expect(secretsProblems(config, join(dir, "absent.env"))).toEqual([
        `no secrets file ${join(dir, "absent.env")} (npm run secrets:generate -- --env staging)`,
      ]);
    });

    it("refuses a file without a required secret, one line per secret", () => {
      const text = generated()
        .replace(/^ADMIN_SECRET=.*\n/m, "")
        .replace(/^SECRETS_KEY=.*\n/m, "");
      expect(problems(FILLED, "staging", text)).toEqual([
        expect.stringMatching(/has no SECRETS_KEY$/),
        expect.stringMatching(/has no ADMIN_SECRET$/),
      ]);
    });

    it("refuses values the gateway refuses: a short secret, a SECRETS_KEY that is not 32 bytes of base64url", () => {
      const short = generated().replace(/^JWT_SECRET=.*$/m, "JWT_SECRET=too-short");
      expect(problems(FILLED, "staging", short)).toEqual([
        expect.stringMatching(/: JWT_SECRET must be set to at least 32 bytes/),
      ]);
      const key = generated().replace(/^SECRETS_KEY=.*$/m, `SECRETS_KEY=${"A".repeat(40)}`);
      expect(problems(FILLED, "staging", key)).toEqual([
        expect.stringMatching(/: SECRETS_KEY must be 32 random bytes/),
      ]);
    });

    it("refuses an environment whose [secrets] required is gone (wrangler would check nothing at deploy)", () => {
      const text = inStaging(FILLED, /\[env\.staging\.secrets\]\nrequired = .*\n/, "");
      expect(problems(text)).toEqual(["[env.staging.secrets] required lists no secrets: nothing checks they are set"]);
    });
  });
});

describe("secrets:generate", () => {
  it("writes every required secret, mode 0600: random bytes, and a private key for ASSERTION_ALG, all accepted", () => {
    expect(statSync(secrets).mode & 0o777).toBe(0o600);
    const values = parseEnv(readFileSync(secrets, "utf8"));
    const config = environment(FILLED);
    expect(Object.keys(values).sort()).toEqual([...requiredSecrets(config)].sort());
    expect(requiredSecrets(config)).toEqual([
      "JWT_SECRET",
      "PASSWORD_PEPPER",
      "SECRETS_KEY",
      "ASSERTION_KEYS",
      "ADMIN_SECRET",
    ]);
    const { ASSERTION_KEYS, ...random } = values;
    for (const value of Object.values(random)) {
      expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(value!, "base64url")).toHaveLength(32);
    }
    expect(new Set(Object.values(values)).size).toBe(5);
    // PKCS#8 of an Ed25519 key (RFC 8410): 48 bytes, the id-Ed25519 OID in its AlgorithmIdentifier
    expect(Buffer.from(ASSERTION_KEYS!, "base64url").toString("hex")).toMatch(
      /^302e020100300506032b657004220420[0-9a-f]{64}$/,
    );
    const parsed = parseConfig(values as unknown as Bindings);
    expect(parsed.assertionAlg).toBe("EdDSA");
    expect(parsed.assertionKeys.map((key) => key.alg)).toEqual(["EdDSA"]);
  });

  it("with ASSERTION_ALG=ES256, a P-256 key; HS256 needs ASSERTION_SECRET listed instead", () => {
    const es256 = inStaging(FILLED, /^ASSERTION_ALG = .*$/m, 'ASSERTION_ALG = "ES256"');
    const file = join(dir, "es256.env");
    generateSecrets(environment(es256), file);
    const values = parseEnv(readFileSync(file, "utf8"));
    expect(parseConfig({ ...values, ASSERTION_ALG: "ES256" } as unknown as Bindings).assertionKeys[0]!.alg).toBe(
      "ES256",
    );
    expect(problems(es256, "staging", readFileSync(file, "utf8"))).toEqual([]);
    expect(problems(es256)).toEqual([
      expect.stringMatching(/ASSERTION_ALG is ES256, but ASSERTION_KEYS holds no P-256/),
    ]);

    const hs256 = inStaging(FILLED, /^ASSERTION_ALG = .*$/m, 'ASSERTION_ALG = "HS256"');
    expect(problems(hs256)).toEqual([expect.stringMatching(/ASSERTION_SECRET must be set/)]);
    const listed = inStaging(hs256, '"ASSERTION_KEYS"', '"ASSERTION_SECRET"');
    const hsFile = join(dir, "hs256.env");
    generateSecrets(environment(listed), hsFile);
    expect(problems(listed, "staging", readFileSync(hsFile, "utf8"))).toEqual([]);
  });

  it("never overwrites an existing file", () => {
    const before = readFileSync(secrets, "utf8");
    expect(() => generateSecrets(environment(FILLED), secrets)).toThrow(/already exists and is never overwritten/);
    expect(readFileSync(secrets, "utf8")).toBe(before);
  });

  it("writes new values each time", () => {
    const other = join(dir, "production.env");
    generateSecrets(environment(FILLED, "production"), other);
    expect(parseEnv(readFileSync(other, "utf8")).JWT_SECRET).not.toBe(
      parseEnv(readFileSync(secrets, "utf8")).JWT_SECRET,
    );
  });
});

describe("npm run deploy:check (the command)", () => {
  it("exits 1 with one line per problem for the committed staging section, bundling nothing", () => {
    const run = spawnSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/deploy-check.ts", "--env", "staging"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines[0]).toBe("deploy:check --env staging: refused, nothing bundled:");
    expect(lines).toContainEqual(expect.stringMatching(/^- vars\.ORIGIN_URL is still a placeholder/));
    expect(run.stdout).not.toContain("Total Upload");
  });
});
