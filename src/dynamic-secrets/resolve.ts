/** Verification-side lookups for dynamic-secret tokens: an organisation's live keys and its members. */
import { ConfigError, type ConfigSource, type WaitUntil } from "../config";
import { GatewayError, refusal, UNAVAILABLE_RETRY_AFTER_SECONDS } from "../gateway-error";
import { LruCache } from "../cache/lru";
import type { Logger } from "../log";
import type { Database } from "../storage/db";
import {
  dynamicOrganisation,
  findMembershipState,
  type DynamicOrganisation,
  type SealedSecret,
} from "../storage/dynamic-secrets";
import { isSealedSecret } from "../storage/rows";
import type { AccessClaims } from "../tokens/claims";
import type { SigningKey } from "../tokens/keys";
import type { DynamicKeySource } from "../tokens/verify";
import { LoadRefused, StalenessBoundCache } from "./cache";
import { dynamicHmacKey, importSealingKey, openSecret } from "./crypto";
import { MissBudget } from "./miss-budget";

interface MemberState {
  memberId?: number;
  active: boolean;
}

/** The live keys of one organisation, by kid and all together, and its members when it has few enough. */
interface OrganisationKeys {
  all: readonly SigningKey[];
  byKid: ReadonlyMap<string, SigningKey>;
  members: ReadonlyMap<string, MemberState> | undefined;
}

/** `dynsec:<org>`: `[]` without live secrets, else its secrets and its members (when few); an earlier release's plain array is keys alone. */
type StoredOrganisation = SealedSecret[] | DynamicOrganisation;

/** An organisation with at most this many members carries them with its keys (≈ 40 B each in KV). */
const MEMBERS_WITH_KEYS = 10;

const secretsOf = (stored: StoredOrganisation) => (Array.isArray(stored) ? stored : stored.secrets);

function isStoredOrganisation(value: unknown): value is StoredOrganisation {
  if (Array.isArray(value)) return value.every(isSealedSecret);
  if (typeof value !== "object" || value === null) return false;
  const { secrets, members } = value as DynamicOrganisation;
  const isMember = (member: unknown) =>
    Array.isArray(member) && Number.isSafeInteger(member[0]) && typeof member[1] === "boolean";
  const membersValid =
    members === null || (typeof members === "object" && Object.values(members as object).every(isMember));
  return Array.isArray(secrets) && secrets.every(isSealedSecret) && membersValid;
}

const ORGANISATIONS_LIMIT = 10_000;
const UNKNOWN_ORGANISATIONS_LIMIT = 10_000;
const MEMBERS_LIMIT = 10_000;
const KID_OWNERS_LIMIT = 10_000;
const KNOWN_ORGANISATION_KV_TTL_SECONDS = 86_400;
const SHED_LOG_INTERVAL_MS = 60_000;

/** What {@link DynamicSecrets} works with; all owned by the gateway. */
export interface DynamicSecretsDeps {
  source: ConfigSource;
  kv: KVNamespace;
  /** The primary: re-reads right after this isolate changed a secret. */
  db: Database;
  /** A handle whose reads may come from a read replica (a new session per call). */
  replica: () => Database;
  now: () => number;
}

/** Dynamic secrets of one isolate: the sealing key and the staleness-bound caches of keys and members. */
export class DynamicSecrets implements DynamicKeySource {
  private importedSealingKey: CryptoKey | undefined;
  /** Sealed in KV, decrypted only here; empty ones cached too, D1 misses rationed (docs/security.md § Dynamic secrets). */
  private readonly organisationKeys: StalenessBoundCache<StoredOrganisation, OrganisationKeys>;
  private readonly memberStates: StalenessBoundCache<MemberState, MemberState>;
  private readonly missBudget: MissBudget;
  /** Which organisation each kid decrypted here belongs to; kids are random and globally unique. */
  private readonly kidOwners = new LruCache<string, string>({ maxEntries: KID_OWNERS_LIMIT });
  private lastShedLog = -Infinity;

  constructor(private readonly deps: DynamicSecretsDeps) {
    const { kv, db, replica, now } = deps;
    this.missBudget = new MissBudget(now);
    this.organisationKeys = new StalenessBoundCache(
      {
        kvKey: (organisation) => `dynsec:${organisation}`,
        isStored: isStoredOrganisation,
        load: async (organisation, fresh) => {
          const found = await dynamicOrganisation(fresh ? db : replica(), organisation, MEMBERS_WITH_KEYS);
          return found.secrets.length === 0 ? [] : found;
        },
        hydrate: (log, organisation, stored) => this.openKeys(log, organisation, stored),
        limit: ORGANISATIONS_LIMIT,
        negativeLimit: UNKNOWN_ORGANISATIONS_LIMIT,
        isEmpty: (stored) => secretsOf(stored).length === 0,
        kvTtlSeconds: (stored) => (secretsOf(stored).length > 0 ? KNOWN_ORGANISATION_KV_TTL_SECONDS : 0),
        // A stale copy with secrets vouches for a real customer: reload it freely (≤ once per 55 s).
        admitLoad: (_organisation, stale) =>
          (stale !== undefined && secretsOf(stale).length > 0) || this.missBudget.take(),
      },
      kv,
      now,
    );
    this.memberStates = new StalenessBoundCache(
      {
        kvKey: (key) => `dynmem:${key}`,
        isStored: (value): value is MemberState =>
          typeof value === "object" &&
          value !== null &&
          typeof (value as MemberState).active === "boolean" &&
          ((value as MemberState).memberId === undefined || Number.isSafeInteger((value as MemberState).memberId)),
        load: async (key) => {
          const [organisation = "", member = ""] = key.split("/");
          const row = await findMembershipState(replica(), organisation, member);
          return row
            ? { memberId: row.memberId, active: row.memberStatus === "active" && row.organisationStatus === "active" }
            : { active: false };
        },
        hydrate: async (_log, _key, state) => state,
        limit: MEMBERS_LIMIT,
      },
      kv,
      now,
    );
  }

  /** The AES-GCM key of `SECRETS_KEY`, kept once imported; ConfigError when it is unset. */
  async sealingKey(): Promise<CryptoKey> {
    const raw = this.deps.source.config.secretsKey;
    if (!raw)
      throw new ConfigError(
        "SECRETS_KEY is not set, so dynamic secrets cannot be created or read (wrangler secret put SECRETS_KEY)",
      );
    return (this.importedSealingKey ??= await importSealingKey(raw));
  }

  /** The live keys of `organisation` for `bearerAuth`, narrowed by `kid`; empty when none match. */
  async keysFor(
    ctx: WaitUntil,
    log: Logger,
    organisation: string,
    kid: string | undefined,
  ): Promise<readonly SigningKey[]> {
    if (!this.deps.source.config.secretsKey)
      throw new GatewayError("invalid_token", "dynamic-secret tokens are not enabled on this gateway");
    if (kid !== undefined) {
      const owner = this.kidOwners.get(kid);
      if (owner !== undefined && owner !== organisation) return [];
    }
    let keys: OrganisationKeys;
    try {
      keys = await this.organisationKeys.get(ctx, log, organisation);
    } catch (error) {
      if (!(error instanceof LoadRefused)) throw error;
      this.logShed(log);
      throw new GatewayError("temporarily_unavailable", "The service is temporarily unavailable; try again shortly.", {
        retryAfter: UNAVAILABLE_RETRY_AFTER_SECONDS,
      });
    }
    if (kid === undefined) return keys.all;
    const match = keys.byKid.get(kid);
    return match ? [match] : [];
  }

  /** Checks a dynamic token's member exists and is active; returns the claims with its stored `memberEntityId`. */
  async activeMember(ctx: WaitUntil, log: Logger, claims: AccessClaims): Promise<AccessClaims> {
    const organisation = claims.organisationEntityIdentifier;
    const member = claims.memberEntityIdentifier;
    const members = await this.organisationKeys.get(ctx, log, organisation).then(
      (keys) => keys.members,
      () => undefined,
    );
    // A member missing from the list may have been added since it was read: it has its own look-up then.
    const state = members?.get(member) ?? (await this.memberStates.get(ctx, log, `${organisation}/${member}`));
    if (state.memberId === undefined) throw refusal("foreignMember");
    if (claims.memberEntityId !== undefined && claims.memberEntityId !== state.memberId)
      throw new GatewayError("invalid_token", "memberEntityId does not match the member");
    if (!state.active) throw refusal("suspended");
    return { ...claims, memberEntityId: state.memberId };
  }

  /** Publishes the keys to KV after this isolate created a secret (others see it within 55 s); failures are logged. */
  async afterCreated(log: Logger, organisation: string): Promise<void> {
    await this.republish(log, organisation);
  }

  /** Like {@link afterCreated}, after a revocation: refused here at once, everywhere within 55 s. */
  async afterRevoked(log: Logger, organisation: string): Promise<void> {
    await this.republish(log, organisation);
  }

  private async republish(log: Logger, organisation: string): Promise<void> {
    try {
      await this.organisationKeys.republish(organisation);
    } catch (error) {
      log.error("dynamic_secret_republish_failed", { organisation, error: String(error) });
    }
  }

  private async openKeys(log: Logger, organisation: string, stored: StoredOrganisation): Promise<OrganisationKeys> {
    const key = await this.sealingKey();
    const all: SigningKey[] = [];
    for (const { kid, ciphertext } of secretsOf(stored)) {
      try {
        all.push({ kid, key: await dynamicHmacKey(await openSecret(key, { organisation, kid }, ciphertext)) });
      } catch {
        log.error("dynamic_secret_unreadable", { organisation, kid });
      }
    }
    for (const entry of all) this.kidOwners.set(entry.kid, organisation);
    const members =
      Array.isArray(stored) || stored.members === null
        ? undefined
        : new Map(
            Object.entries(stored.members).map(([identifier, [memberId, active]]) => [
              identifier,
              { memberId, active },
            ]),
          );
    return { all, byKid: new Map(all.map((entry) => [entry.kid, entry])), members };
  }

  private logShed(log: Logger): void {
    const now = this.deps.now();
    if (now - this.lastShedLog < SHED_LOG_INTERVAL_MS) return;
    this.lastShedLog = now;
    log.warn("dynamic_lookup_shed", { reason: "miss_budget_spent" });
  }
}
