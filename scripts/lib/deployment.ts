/** A deployment environment of wrangler.toml as `npm run deploy:check` and `npm run secrets:*` see it. */
import "../admin/node-base64";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { experimental_readRawConfig, unstable_readConfig, type Unstable_Config } from "wrangler";
import {
  ConfigError,
  DEFAULT_ASSERTION_ALG,
  parseConfig,
  parseCorsSettings,
  type AssertionAlg,
  type Bindings,
} from "../../src/config";

import { AUDIT_QUEUE_BINDINGS } from "../../src/audit/queues";
import { API_LIMIT_WINDOW_SECONDS, limitBindingName } from "../../src/policy/limits";

/** The repository's root directory (the CLIs run there). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Where `npm run secrets:generate` keeps an environment's secrets, relative to the root: `.secrets/<env>.env` (git-ignored). */
export function secretsFile(env: string): string {
  return join(".secrets", `${env}.env`);
}

/** The environments wrangler.toml defines (`[env.<name>]`). */
function environmentNames(configPath: string): string[] {
  return Object.keys(experimental_readRawConfig({ config: configPath }).rawConfig.env ?? {});
}

/** One environment as wrangler resolves it (inherited keys, defaults); throws when wrangler.toml does not define it. */
export function readEnvironment(configPath: string, env: string): Unstable_Config {
  const names = environmentNames(configPath);
  if (!names.includes(env)) {
    throw new Error(`wrangler.toml has no [env.${env}]; its environments: ${names.join(", ") || "none"}`);
  }
  return unstable_readConfig({ config: configPath, env }, { hideWarnings: true });
}

/** The secrets `[env.<name>.secrets] required` lists: wrangler refuses to deploy while any is unset. */
export function requiredSecrets(config: Unstable_Config): string[] {
  return config.secrets?.required ?? [];
}

/**
 * A new private key for `ASSERTION_KEYS`, PKCS#8 DER in unpadded base64url: Ed25519 for EdDSA, P-256 for ES256
 * (HS256 signs with `ASSERTION_SECRET`; a key generated then is an Ed25519 one, for a later switch).
 */
export function newAssertionKey(alg: AssertionAlg): string {
  const pair = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("ed25519");
  return pair.privateKey.export({ type: "pkcs8", format: "der" }).toString("base64url");
}

/** The environment's `ASSERTION_ALG` as wrangler.toml sets it, or the default. */
function assertionAlg(config: Unstable_Config): AssertionAlg {
  const alg = stringVars(config).ASSERTION_ALG;
  return alg === "ES256" || alg === "HS256" || alg === "EdDSA" ? alg : DEFAULT_ASSERTION_ALG;
}

/**
 * Writes a new value for every required secret of the environment to `file` with mode 0600, never replacing an
 * existing file: `ASSERTION_KEYS` a private key for the environment's `ASSERTION_ALG` ({@link newAssertionKey}),
 * every other secret 32 random bytes in unpadded base64url (43 characters). Returns the names written.
 */
export function generateSecrets(config: Unstable_Config, file: string): string[] {
  const names = requiredSecrets(config);
  if (names.length === 0) throw new Error("the environment has no [secrets] required list to generate");
  const lines = names.map(
    (name) =>
      `${name}=${name === "ASSERTION_KEYS" ? newAssertionKey(assertionAlg(config)) : randomBytes(32).toString("base64url")}`,
  );
  const header = `# Secrets of the Gridgate environment ${JSON.stringify(config.targetEnvironment)}, written by npm run secrets:generate. Never commit it.`;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, `${header}\n${lines.join("\n")}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") {
      throw new Error(`${file} already exists and is never overwritten; to replace a secret, see docs/operating.md`);
    }
    throw error;
  }
  return names;
}

/** Values that pass `parseConfig`, standing in for the secrets a check is not about. */
const STAND_INS = {
  JWT_SECRET: "stand-in-jwt-secret-of-at-least-32-bytes",
  PASSWORD_PEPPER: "stand-in-password-pepper-of-at-least-32-bytes",
  ASSERTION_SECRET: "stand-in-assertion-secret-of-at-least-32-bytes",
  ASSERTION_KEYS: `${newAssertionKey("EdDSA")},${newAssertionKey("ES256")}`,
};

/** The gateway's own verdict on `settings` (over valid stand-ins): its ConfigError message, if any. */
function configProblem(settings: Record<string, string | undefined>): string | undefined {
  try {
    parseConfig({ ...STAND_INS, ...settings } as unknown as Bindings);
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

/** A value an operator must still fill in: `<…>`, or an id of zeros only. */
function isPlaceholder(key: string, value: string): boolean {
  return /^<.*>$/s.test(value.trim()) || (/id$/.test(key) && /^[0-]+$/.test(value));
}

/** Every placeholder in `value`, by path (`vars.ORIGIN_URL`, `d1_databases[0].database_id`). */
function placeholders(value: unknown, path: string, found: Map<string, string> = new Map()): Map<string, string> {
  if (typeof value === "string") {
    if (isPlaceholder(path, value)) found.set(path, value);
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => placeholders(item, `${path}[${index}]`, found));
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) placeholders(item, path ? `${path}.${key}` : key, found);
  }
  return found;
}

function stringVars(config: Unstable_Config): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config.vars).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
}

/** The origin: a service binding `ORIGIN`, else an https `ORIGIN_URL` the gateway accepts. */
function originProblems(config: Unstable_Config, url: string | undefined): string[] {
  if (config.services?.some((service) => service.binding === "ORIGIN")) return [];
  if (url === undefined || url.trim() === "") {
    return ["neither an ORIGIN service binding nor ORIGIN_URL: every proxied request would get 502"];
  }
  const problem = configProblem({ ORIGIN_URL: url });
  if (problem) return [problem];
  if (URL.parse(url.trim())?.protocol !== "https:") {
    return [`ORIGIN_URL must be https outside local development, got ${JSON.stringify(url)}`];
  }
  return [];
}

/** One `API_LIMIT_<PLAN>` binding per plan in `API_PLANS`, enforcing exactly the plan's `API_RATE_LIMITS` a minute. */
function rateLimitProblems(config: Unstable_Config, vars: Record<string, string>): string[] {
  let plans: ReadonlySet<string>;
  let limits: ReadonlyMap<string, number>;
  try {
    ({ apiPlans: plans, apiRateLimits: limits } = parseConfig({
      ...STAND_INS,
      API_PLANS: vars.API_PLANS,
      API_RATE_LIMITS: vars.API_RATE_LIMITS,
    } as unknown as Bindings));
  } catch {
    return []; // the vars check reports it
  }
  const problems: string[] = [];
  for (const plan of plans) {
    const name = limitBindingName(plan);
    const binding = config.ratelimits?.find((ratelimit) => ratelimit.name === name);
    const limit = limits.get(plan);
    if (limit === undefined) problems.push(`API_RATE_LIMITS states no limit for plan ${plan} (in API_PLANS)`);
    if (binding === undefined) {
      problems.push(`plan ${plan} (in API_PLANS) has no [[ratelimits]] binding ${name}: it would not be limited`);
      continue;
    }
    if (limit !== undefined && binding.simple.limit !== limit) {
      problems.push(`${name} has simple.limit ${binding.simple.limit}, but API_RATE_LIMITS states ${plan}=${limit}`);
    }
    if (binding.simple.period !== API_LIMIT_WINDOW_SECONDS) {
      problems.push(
        `${name} has simple.period ${binding.simple.period}; the API limits are per ${API_LIMIT_WINDOW_SECONDS} s`,
      );
    }
  }
  return problems;
}

/**
 * The audit trail's pipeline: every `AUDIT_QUEUE_*` producer's queue consumed here with a dead-letter queue that is
 * consumed too (else events wait until the queue's retention drops them), and the `AUDIT_BUCKET` bucket.
 */
function auditProblems(config: Unstable_Config): string[] {
  const problems: string[] = [];
  const consumers = new Map((config.queues.consumers ?? []).map((consumer) => [consumer.queue, consumer]));
  for (const binding of AUDIT_QUEUE_BINDINGS) {
    const queue = config.queues.producers?.find((producer) => producer.binding === binding)?.queue;
    if (queue === undefined) {
      problems.push(`no [[queues.producers]] binding ${binding}: its share of the audit events would go nowhere`);
      continue;
    }
    const consumer = consumers.get(queue);
    if (consumer === undefined) {
      problems.push(
        `queue ${queue} (${binding}) has no [[queues.consumers]] here: its audit events would never reach R2`,
      );
    } else if (consumer.dead_letter_queue === undefined) {
      problems.push(`queue ${queue} has no dead_letter_queue: events still failing after max_retries would be dropped`);
    } else if (!consumers.has(consumer.dead_letter_queue)) {
      problems.push(
        `dead-letter queue ${consumer.dead_letter_queue} has no [[queues.consumers]] here: its events would never reach R2`,
      );
    }
  }
  if (!config.r2_buckets.some((bucket) => bucket.binding === "AUDIT_BUCKET")) {
    problems.push("no [[r2_buckets]] binding AUDIT_BUCKET: the audit trail's store");
  }
  return problems;
}

/** The environment's required secrets against the secrets file, each value checked by the gateway's own rules. */
export function secretsProblems(config: Unstable_Config, file: string): string[] {
  const required = requiredSecrets(config);
  const problems: string[] = [];
  if (required.length === 0) {
    problems.push(`[env.${config.targetEnvironment}.secrets] required lists no secrets: nothing checks they are set`);
  }
  if (!existsSync(file)) {
    return [...problems, `no secrets file ${file} (npm run secrets:generate -- --env ${config.targetEnvironment})`];
  }
  const secrets = parseEnv(readFileSync(file, "utf8"));
  for (const name of required) {
    if (!secrets[name]) problems.push(`${file} has no ${name}`);
  }
  for (const [name, value] of Object.entries(secrets)) {
    const problem = configProblem({ ASSERTION_ALG: stringVars(config).ASSERTION_ALG, [name]: value });
    if (problem) problems.push(`${file}: ${problem}`);
  }
  if (problems.length === 0) {
    const problem = configProblem({
      ASSERTION_ALG: stringVars(config).ASSERTION_ALG,
      JWT_SECRET: "",
      PASSWORD_PEPPER: "",
      ASSERTION_SECRET: "",
      ASSERTION_KEYS: "",
      ...secrets,
    });
    if (problem) problems.push(`${file}: ${problem}`);
  }
  return problems;
}

/**
 * Everything that would make the environment deploy a broken gateway, one line each: placeholders left in,
 * no origin or a plain-http one, vars or `CORS_ORIGINS` the gateway refuses, rate-limit bindings that do not
 * enforce `API_RATE_LIMITS`, an audit queue without its consumers or bucket, required secrets missing from (or
 * invalid in) the secrets file. Empty: deployable.
 */
export function deployProblems(config: Unstable_Config, file: string): string[] {
  const found = placeholders(
    {
      vars: config.vars,
      d1_databases: config.d1_databases,
      kv_namespaces: config.kv_namespaces,
      r2_buckets: config.r2_buckets,
      queues: config.queues,
      services: config.services,
      routes: config.routes,
      route: config.route,
    },
    "",
  );
  const problems = [...found].map(
    ([path, value]) => `${path} is still a placeholder (${JSON.stringify(value)}): fill it in`,
  );
  const vars = Object.fromEntries(Object.entries(stringVars(config)).filter(([name]) => !found.has(`vars.${name}`)));
  const { ORIGIN_URL, CORS_ORIGINS, CORS_ALLOW_HEADERS, ...settings } = vars;
  const varsProblem = configProblem(settings);
  if (varsProblem) problems.push(varsProblem);
  if (!found.has("vars.ORIGIN_URL")) problems.push(...originProblems(config, ORIGIN_URL));
  try {
    parseCorsSettings({ CORS_ORIGINS, CORS_ALLOW_HEADERS } as Bindings);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error.message);
  }
  problems.push(...rateLimitProblems(config, vars), ...auditProblems(config), ...secretsProblems(config, file));
  return problems;
}
