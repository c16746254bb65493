/** Bindings and the validated gateway configuration (docs/operating.md § Configuration). */

type Vars =
  | "ISSUER"
  | "ACCESS_TOKEN_TTL"
  | "REFRESH_TOKEN_TTL"
  | "REFRESH_GRACE_SECONDS"
  | "CLOCK_SKEW"
  | "API_PLANS"
  | "API_RATE_LIMITS"
  | "ORIGIN_TIMEOUT_MS"
  | "ASSERTION_ALG"
  | "LOGIN_FREE_ATTEMPTS"
  | "LOGIN_BACKOFF_BASE_SECONDS"
  | "LOGIN_BACKOFF_MAX_SECONDS"
  | "ACCESS_LOG_SAMPLE_RATE";

/** Secrets, and bindings and vars wrangler.toml does not declare (the CORS vars, so that CORS is off unless set). */
interface Secrets {
  ORIGIN?: Fetcher;
  AUDIENCE?: string;
  ORIGIN_URL?: string;
  JWT_SECRET?: string;
  JWT_SECRET_PREVIOUS?: string;
  PASSWORD_PEPPER?: string;
  SECRETS_KEY?: string;
  ASSERTION_SECRET?: string;
  ASSERTION_KEYS?: string;
  CORS_ORIGINS?: string;
  CORS_ALLOW_HEADERS?: string;
  ADMIN_SECRET?: string;
}

type OptionalBindings = "LOGIN_LIMITER" | "API_LIMIT_PROFESSIONAL" | "API_LIMIT_ENTERPRISE" | "METRICS";

/** Everything bound into the Worker: `GatewayEnv` as `wrangler types` generates it, vars optional, plus {@link Secrets}. */
export type Bindings = Omit<GatewayEnv, Vars | OptionalBindings> &
  Partial<Pick<GatewayEnv, Vars | OptionalBindings>> &
  Secrets;

/** The part of the execution context background work needs. */
export type WaitUntil = Pick<ExecutionContext, "waitUntil">;

/** Parsed configuration (docs/operating.md § Configuration); secrets stay strings until `tokens/keys` imports them. */
export interface Config {
  issuer: string;
  audience: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  refreshGraceSeconds: number;
  clockSkew: number;
  apiPlans: ReadonlySet<string>;
  apiRateLimits: ReadonlyMap<string, number>;
  originBase: string | undefined;
  originTimeoutMs: number;
  loginFreeAttempts: number;
  loginBackoffBaseSeconds: number;
  loginBackoffMaxSeconds: number;
  jwtSecret: string;
  jwtSecretPrevious: string | undefined;
  passwordPepper: string;
  assertionAlg: AssertionAlg;
  assertionSecret: string | undefined;
  assertionKeys: readonly AssertionPrivateKey[];
  adminSecret: string | undefined;
  secretsKey: Uint8Array<ArrayBuffer> | undefined;
  accessLogSampleRate: number;
}

const ASSERTION_ALGS = ["EdDSA", "ES256", "HS256"] as const;
/** An algorithm `X-Gateway-Assertion` can be signed with (`ASSERTION_ALG`). */
export type AssertionAlg = (typeof ASSERTION_ALGS)[number];
/** The assertion algorithm when `ASSERTION_ALG` is unset (docs/origin-integration.md § Choosing the algorithm). */
export const DEFAULT_ASSERTION_ALG: AssertionAlg = "EdDSA";

/** A private key of `ASSERTION_KEYS`: its algorithm, read from its PKCS#8 header, and its DER bytes. */
export interface AssertionPrivateKey {
  alg: Exclude<AssertionAlg, "HS256">;
  pkcs8: Uint8Array<ArrayBuffer>;
}

/** `CORS_ORIGINS` (exact origins; empty: CORS off) and `CORS_ALLOW_HEADERS`, validated. */
export interface CorsSettings {
  origins: ReadonlySet<string>;
  allowHeaders: string;
}

const DEFAULT_CORS_ALLOW_HEADERS = "Authorization, Content-Type";

/** Thrown while the deployment is misconfigured; `onError` turns it into an opaque 500. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Where a component reads the configuration when it needs it (the gateway parses it on first use). */
export interface ConfigSource {
  readonly config: Config;
}

const MIN_SECRET_BYTES = 32;

/** Reads and validates the configuration; throws {@link ConfigError} naming the first bad setting. */
export function parseConfig(env: Bindings): Config {
  const issuer = env.ISSUER?.trim() || "gridgate";
  return {
    issuer,
    audience: env.AUDIENCE?.trim() || issuer,
    accessTokenTtl: integerAtLeast("ACCESS_TOKEN_TTL", env.ACCESS_TOKEN_TTL, 3600, 1),
    refreshTokenTtl: integerAtLeast("REFRESH_TOKEN_TTL", env.REFRESH_TOKEN_TTL, 604_800, 1),
    refreshGraceSeconds: integerAtLeast("REFRESH_GRACE_SECONDS", env.REFRESH_GRACE_SECONDS, 10, 0),
    clockSkew: integerAtLeast("CLOCK_SKEW", env.CLOCK_SKEW, 30, 0),
    apiPlans: new Set(
      (env.API_PLANS ?? "professional,enterprise")
        .split(",")
        .map((plan) => plan.trim())
        .filter(Boolean),
    ),
    apiRateLimits: rateLimits(env.API_RATE_LIMITS),
    originBase: originBase(env.ORIGIN_URL),
    originTimeoutMs: integerAtLeast("ORIGIN_TIMEOUT_MS", env.ORIGIN_TIMEOUT_MS, 30_000, 1),
    ...loginBackoff(env),
    jwtSecret: secret("JWT_SECRET", env.JWT_SECRET),
    jwtSecretPrevious: env.JWT_SECRET_PREVIOUS ? secret("JWT_SECRET_PREVIOUS", env.JWT_SECRET_PREVIOUS) : undefined,
    passwordPepper: secret("PASSWORD_PEPPER", env.PASSWORD_PEPPER),
    ...assertionSettings(env),
    secretsKey: aesKey("SECRETS_KEY", env.SECRETS_KEY),
    adminSecret: env.ADMIN_SECRET ? secret("ADMIN_SECRET", env.ADMIN_SECRET) : undefined,
    accessLogSampleRate: accessLogSampleRate(env.ACCESS_LOG_SAMPLE_RATE),
  };
}

/** `ACCESS_LOG_SAMPLE_RATE` when unset: one request in a hundred. */
export const DEFAULT_ACCESS_LOG_SAMPLE_RATE = 0.01;

/** `ACCESS_LOG_SAMPLE_RATE`: a decimal from 0 to 1; throws {@link ConfigError} otherwise. */
export function accessLogSampleRate(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return DEFAULT_ACCESS_LOG_SAMPLE_RATE;
  const value = /^\s*(?:0|1|0?\.\d+|1\.0*)\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 0 && value <= 1)) {
    throw new ConfigError(
      `ACCESS_LOG_SAMPLE_RATE must be a decimal from 0 to 1 (0.01 = 1 %), got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function list(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
}

function parseCorsOrigin(entry: string): string {
  const url = URL.parse(entry);
  if (entry === "*" || !url || (url.protocol !== "https:" && url.protocol !== "http:") || url.origin !== entry) {
    const hint = url && url.origin !== "null" ? ` (did you mean ${url.origin}?)` : "";
    throw new ConfigError(
      `CORS_ORIGINS must list exact origins such as https://app.example.com (scheme://host[:port], no path, no trailing slash, no *); got ${JSON.stringify(entry)}${hint}`,
    );
  }
  return entry;
}

/** The CORS settings, parsed apart so that a misconfigured deployment's 500 still carries CORS headers. */
export function parseCorsSettings(env: Bindings): CorsSettings {
  const headers = list(env.CORS_ALLOW_HEADERS);
  for (const name of headers) {
    if (!HEADER_NAME.test(name) || name === "*")
      throw new ConfigError(`CORS_ALLOW_HEADERS must list header names, got ${JSON.stringify(name)}`);
  }
  return {
    origins: new Set(list(env.CORS_ORIGINS).map(parseCorsOrigin)),
    allowHeaders: headers.length === 0 ? DEFAULT_CORS_ALLOW_HEADERS : headers.join(", "),
  };
}

const MAX_ASSERTION_KEYS = 8;

function assertionSettings(env: Bindings): Pick<Config, "assertionAlg" | "assertionSecret" | "assertionKeys"> {
  const raw = env.ASSERTION_ALG?.trim();
  const alg = raw ? ASSERTION_ALGS.find((name) => name === raw) : DEFAULT_ASSERTION_ALG;
  if (alg === undefined) {
    throw new ConfigError(`ASSERTION_ALG must be one of ${ASSERTION_ALGS.join(", ")}, got ${JSON.stringify(raw)}`);
  }
  const keys = assertionKeys(env.ASSERTION_KEYS);
  if (alg !== "HS256" && !keys.some((key) => key.alg === alg)) {
    throw new ConfigError(
      `ASSERTION_ALG is ${alg}, but ASSERTION_KEYS holds no ${alg === "EdDSA" ? "Ed25519" : "P-256"} private key (npm run secrets:generate; docs/origin-integration.md)`,
    );
  }
  return {
    assertionAlg: alg,
    assertionSecret:
      alg === "HS256" || env.ASSERTION_SECRET ? secret("ASSERTION_SECRET", env.ASSERTION_SECRET) : undefined,
    assertionKeys: keys,
  };
}

const ED25519_OID = [0x06, 0x03, 0x2b, 0x65, 0x70];
const EC_PUBLIC_KEY_OID = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

function holds(bytes: Uint8Array, sequence: readonly number[]): boolean {
  outer: for (let start = 0; start + sequence.length <= bytes.length; start++) {
    for (let i = 0; i < sequence.length; i++) if (bytes[start + i] !== sequence[i]) continue outer;
    return true;
  }
  return false;
}

function pkcs8Algorithm(der: Uint8Array): AssertionPrivateKey["alg"] | undefined {
  if (der[0] !== 0x30) return undefined;
  const header = der.subarray(0, 32);
  if (holds(header, ED25519_OID)) return "EdDSA";
  if (holds(header, EC_PUBLIC_KEY_OID) && holds(header, P256_OID)) return "ES256";
  return undefined;
}

function assertionKeys(raw: string | undefined): AssertionPrivateKey[] {
  if (raw === undefined || raw.trim() === "") return [];
  const encoded = raw.includes("-----BEGIN")
    ? [...raw.matchAll(/-----BEGIN PRIVATE KEY-----([^-]*)-----END PRIVATE KEY-----/g)].map((match) => match[1]!)
    : raw.split(/[\s,]+/).filter(Boolean);
  if (encoded.length === 0 || encoded.length > MAX_ASSERTION_KEYS) {
    throw new ConfigError(
      `ASSERTION_KEYS must hold 1–${MAX_ASSERTION_KEYS} PKCS#8 private keys (base64, comma-separated, or PEM PRIVATE KEY blocks)`,
    );
  }
  return encoded.map((text, index) => {
    let der: Uint8Array<ArrayBuffer> | undefined;
    try {
      const base64url = text.replace(/\s+/g, "").replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
      der = Uint8Array.fromBase64(base64url, { alphabet: "base64url" });
    } catch {
      der = undefined;
    }
    const alg = der && pkcs8Algorithm(der);
    if (!der || !alg) {
      throw new ConfigError(
        `ASSERTION_KEYS key ${index + 1} is not an Ed25519 or P-256 private key in PKCS#8 (npm run secrets:generate writes one; openssl pkcs8 -topk8 -nocrypt converts other forms)`,
      );
    }
    return { alg, pkcs8: der };
  });
}

function aesKey(name: string, raw: string | undefined): Uint8Array<ArrayBuffer> | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  try {
    bytes = Uint8Array.fromBase64(raw.trim(), { alphabet: "base64url" });
  } catch {
    bytes = undefined;
  }
  if (bytes?.byteLength !== 32) {
    throw new ConfigError(`${name} must be 32 random bytes in unpadded base64url (43 characters); see README`);
  }
  return bytes;
}

function loginBackoff(
  env: Bindings,
): Pick<Config, "loginFreeAttempts" | "loginBackoffBaseSeconds" | "loginBackoffMaxSeconds"> {
  const loginBackoffBaseSeconds = integerAtLeast("LOGIN_BACKOFF_BASE_SECONDS", env.LOGIN_BACKOFF_BASE_SECONDS, 1, 1);
  const loginBackoffMaxSeconds = integerAtLeast("LOGIN_BACKOFF_MAX_SECONDS", env.LOGIN_BACKOFF_MAX_SECONDS, 900, 1);
  if (loginBackoffMaxSeconds < loginBackoffBaseSeconds) {
    throw new ConfigError("LOGIN_BACKOFF_MAX_SECONDS must not be below LOGIN_BACKOFF_BASE_SECONDS");
  }
  return {
    loginFreeAttempts: integerAtLeast("LOGIN_FREE_ATTEMPTS", env.LOGIN_FREE_ATTEMPTS, 5, 1),
    loginBackoffBaseSeconds,
    loginBackoffMaxSeconds,
  };
}

const RATE_LIMIT_ENTRY = /^([A-Za-z0-9_-]+)=(\d+)$/;

function rateLimits(raw: string | undefined): ReadonlyMap<string, number> {
  const limits = new Map<string, number>();
  for (const entry of (raw ?? "professional=600,enterprise=6000").split(",")) {
    if (entry.trim() === "") continue;
    const match = RATE_LIMIT_ENTRY.exec(entry.trim());
    const value = Number(match?.[2]);
    if (!match || !Number.isSafeInteger(value) || value < 1 || limits.has(match[1]!)) {
      throw new ConfigError(
        `API_RATE_LIMITS must be comma-separated plan=requests-a-minute (each plan once, ≥ 1), got ${JSON.stringify(raw)}`,
      );
    }
    limits.set(match[1]!, value);
  }
  return limits;
}

function integerAtLeast(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function secret(name: string, raw: string | undefined): string {
  if (!raw || new TextEncoder().encode(raw).byteLength < MIN_SECRET_BYTES) {
    throw new ConfigError(`${name} must be set to at least ${MIN_SECRET_BYTES} bytes (wrangler secret put ${name})`);
  }
  return raw;
}

function originBase(raw: string | undefined): string | undefined {
  if (!raw?.trim()) return undefined;
  const url = URL.parse(raw.trim());
  if (
    !url ||
    (url.protocol !== "https:" && url.protocol !== "http:") ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  ) {
    throw new ConfigError(
      `ORIGIN_URL must be an http(s) URL without query, fragment or credentials, got ${JSON.stringify(raw)}`,
    );
  }
  return url.origin + url.pathname.replace(/\/$/, "");
}
