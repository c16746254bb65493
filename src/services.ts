/** The per-isolate gateway object: configuration, keys, caches and stores built once and shared by every request. */
import { AccessLog } from "./access-log";
import { auditQueues } from "./audit/queues";
import { AuditTrail } from "./audit/trail";
import {
  accessLogSampleRate,
  DEFAULT_ACCESS_LOG_SAMPLE_RATE,
  parseConfig,
  parseCorsSettings,
  type Bindings,
  type Config,
  type ConfigSource,
  type CorsSettings,
} from "./config";
import { LoginGuard } from "./credentials/login-guard";
import { LoginThrottle } from "./credentials/throttle";
import { Logger } from "./log";
import { Metrics } from "./metrics";
import { OrganisationLimits } from "./policy/limits";
import { PlanGate } from "./policy/plan";
import { PlanLocationCopy } from "./policy/plan-location";
import { ScopeSets } from "./policy/scopes";
import { DynamicSecrets } from "./dynamic-secrets/resolve";
import { SsoLogins } from "./sso/logins";
import { RelyingParty } from "./sso/relying-party";
import { boundedKv, boundedObjects, boundedR2, LIMITER_WAIT_MS, StorageCalls } from "./storage/bounded";
import { D1Access, type Database } from "./storage/db";
import { MemberReads } from "./revocation/reads";
import type { ClaimRules } from "./tokens/claims";
import { KeyStore } from "./tokens/keys";
import { RefreshSessions } from "./tokens/refresh-session";
import { RefreshStore } from "./tokens/refresh-store";
import { RevocationList } from "./revocation/list";
import { TokenVerifier } from "./tokens/verify";

/** What a test may replace when it builds a gateway. */
export interface ServiceOverrides {
  /** The clock every component reads, in ms since the epoch (default `Date.now()`). */
  now?: () => number;
  // Longest waits (ms) for one storage call, a rate-limiting binding, an identity provider; tests shorten them.
  storageWaitMs?: number;
  limiterWaitMs?: number;
  idpWaitMs?: number;
  /** The access log's uniform draw in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** This location's cache for the plan gate's shared copy (default `caches.default`; null: none). */
  locationCache?: Cache | null;
}

/** Everything that outlives a request; configuration is parsed on first use (a misconfigured one fails with `ConfigError`). */
export class Services implements ConfigSource {
  /** The clock, in ms since the epoch. */
  readonly now: () => number;
  /** The root logger; requests log through `logger.child(requestId)`. */
  readonly logger = new Logger();
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  /** Every storage call's bounded wait and its failure answer (503 `temporarily_unavailable`). */
  readonly storage: StorageCalls;
  /** D1's primary and read-replica sessions (bounded). */
  readonly d1: D1Access;
  /** The drizzle handle over `DB`'s primary (bounded): writes, and reads that must see the latest write. */
  readonly db: Database;
  readonly audit: AuditTrail;
  readonly auditBucket: R2Bucket;
  readonly keys: KeyStore;
  readonly verifier = new TokenVerifier();
  readonly scopes = new ScopeSets();
  readonly plans: PlanGate;
  readonly dynamicSecrets: DynamicSecrets;
  readonly refreshStore: RefreshStore;
  readonly refreshSessions: RefreshSessions;
  readonly revocations: RevocationList;
  readonly throttle: LoginThrottle;
  readonly logins: LoginGuard;
  readonly sso: SsoLogins;
  /** Longest wait for a rate-limiting binding before the request goes on without it (ms). */
  readonly limiterWaitMs: number;
  private parsed: Config | undefined;
  private parsedCors: CorsSettings | undefined;
  private organisationLimits: OrganisationLimits | undefined;

  constructor(
    readonly env: Bindings,
    overrides: ServiceOverrides = {},
  ) {
    const now = overrides.now ?? (() => Date.now());
    this.now = now;
    this.metrics = new Metrics({ dataset: env.METRICS, logger: this.logger });
    this.accessLog = new AccessLog({ sampleRate: sampleRateOf(env), now, random: overrides.random });
    // Every storage binding answers within a bounded wait or fails as 503 (docs/operating.md § Failure policy).
    const storage = new StorageCalls(overrides.storageWaitMs);
    this.storage = storage;
    this.d1 = new D1Access(env.DB, storage);
    const db = this.d1.primary;
    const replica = () => this.d1.session("first-unconstrained").db;
    const kv = boundedKv(env.TOKENS, storage);
    this.db = db;
    this.audit = new AuditTrail({
      queues: auditQueues(env),
      sink: env.AUDIT_SINK,
      logger: this.logger,
      now,
      waitMs: storage.waitMs,
    });
    this.auditBucket = boundedR2(env.AUDIT_BUCKET, storage);
    this.keys = new KeyStore(this);
    const cache = overrides.locationCache === undefined ? caches.default : overrides.locationCache;
    const location = new PlanLocationCopy({ cache: cache ?? undefined, logger: this.logger });
    this.plans = new PlanGate({ source: this, db, location, now, logger: this.logger });
    this.dynamicSecrets = new DynamicSecrets({ source: this, kv, db, replica, now });
    this.revocations = new RevocationList({
      kv,
      objects: boundedObjects(env.REVOCATIONS, "revocations", storage),
      now,
    });
    const members = new MemberReads({ d1: this.d1, revocations: this.revocations });
    const families = boundedObjects(env.REFRESH_FAMILIES, "refresh_family", storage);
    this.refreshStore = new RefreshStore({ kv, families, source: this, now });
    this.refreshSessions = new RefreshSessions({
      source: this,
      store: this.refreshStore,
      keys: this.keys,
      members,
      now,
    });
    this.sso = new SsoLogins({
      source: this,
      db,
      reads: members,
      now,
      sealingKey: () => this.dynamicSecrets.sealingKey(),
      relyingParty: new RelyingParty({ waitMs: overrides.idpWaitMs, now }),
    });
    this.throttle = new LoginThrottle({
      objects: boundedObjects(env.LOGIN_BACKOFF, "login_backoff", storage),
      source: this,
      now,
    });
    this.limiterWaitMs = overrides.limiterWaitMs ?? LIMITER_WAIT_MS;
    const { limiterWaitMs } = this;
    this.logins = new LoginGuard({
      env,
      source: this,
      db,
      members,
      throttle: this.throttle,
      audit: this.audit,
      now,
      limiterWaitMs,
    });
  }

  /** The validated configuration, parsed once; throws `ConfigError` while the deployment is misconfigured. */
  get config(): Config {
    return (this.parsed ??= parseConfig(this.env));
  }

  /** The CORS settings, parsed once; throws `ConfigError` while they are invalid. */
  get cors(): CorsSettings {
    return (this.parsedCors ??= parseCorsSettings(this.env));
  }

  /** The claim rules an access token is checked against now: issuer, audience, clock skew, the clock. */
  claimRules(): ClaimRules {
    const { issuer, audience, clockSkew } = this.config;
    return { issuer, audience, clockSkew, now: Math.floor(this.now() / 1000) };
  }

  /** The per-plan limits of the proxied API, built with the configuration (disabled plans are logged then, once). */
  get limits(): OrganisationLimits {
    return (this.organisationLimits ??= new OrganisationLimits({
      env: this.env,
      config: this.config,
      logger: this.logger,
      now: this.now,
      waitMs: this.limiterWaitMs,
    }));
  }
}

/** `ACCESS_LOG_SAMPLE_RATE`, or its default while it is invalid (the configuration then fails every request that reads it). */
function sampleRateOf(env: Bindings): number {
  try {
    return accessLogSampleRate(env.ACCESS_LOG_SAMPLE_RATE);
  } catch {
    return DEFAULT_ACCESS_LOG_SAMPLE_RATE;
  }
}

const servicesByEnv = new WeakMap<Bindings, Services>();

/** Builds a gateway for `env`; tests pass fakes here (a clock, a stale KV, a failing D1 in `env`). */
export function createServices(env: Bindings, overrides?: ServiceOverrides): Services {
  return new Services(env, overrides);
}

/** The gateway of `env`, built on first use: one per `env` object, i.e. one per isolate in production. */
export function servicesOf(env: Bindings): Services {
  let services = servicesByEnv.get(env);
  if (!services) {
    services = createServices(env);
    servicesByEnv.set(env, services);
  }
  return services;
}
