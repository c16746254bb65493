/** Verification-side lookups for dynamic-secret tokens: an organisation's live keys and its members. */
import { ConfigError, type ConfigSource, type WaitUntil } from "../config";
import { GatewayError, refusal } from "../gateway-error";
import type { Logger } from "../log";
import type { Database } from "../storage/db";
import {
  findMembershipState,
  liveSealedSecrets,
  organisationsWithLiveSecrets,
  type SealedSecret,
} from "../storage/dynamic-secrets";
import type { AccessClaims } from "../tokens/claims";
import type { SigningKey } from "../tokens/keys";
import type { DynamicKeySource } from "../tokens/verify";
import { StalenessBoundCache } from "./cache";
import { dynamicHmacKey, importSealingKey, openSecret } from "./crypto";

/** The live keys of one organisation, by kid and all together. */
interface OrganisationKeys {
  all: readonly SigningKey[];
  byKid: ReadonlyMap<string, SigningKey>;
}

/** A member's state as verification needs it; `memberId` undefined when there is no such member. */
interface MemberState {
  memberId?: number;
  active: boolean;
}

const INDEX_KEY = "all";
const ORGANISATIONS_LIMIT = 10_000;
const MEMBERS_LIMIT = 10_000;

/** What {@link DynamicSecrets} works with; all owned by the gateway. */
export interface DynamicSecretsDeps {
  source: ConfigSource;
  kv: KVNamespace;
  db: Database;
  now: () => number;
}

/** Dynamic secrets of one isolate: the sealing key and the staleness-bound caches of keys and members. */
export class DynamicSecrets implements DynamicKeySource {
  private sealingKeyImport: Promise<CryptoKey> | undefined;
  /**
   * Which organisations hold any live secret: one small entry that answers every token naming an
   * unknown organisation, so a flood of random identifiers costs memory look-ups, not D1 queries.
   */
  private readonly organisationIndex: StalenessBoundCache<string[], ReadonlySet<string>>;
  /** One organisation's live secrets: sealed in KV (`dynsec:<org>`), decrypted only in isolate memory. */
  private readonly organisationKeys: StalenessBoundCache<SealedSecret[], OrganisationKeys>;
  /** Members named by dynamic tokens, keyed `<org>/<member>`; unknown members are cached too. */
  private readonly memberStates: StalenessBoundCache<MemberState, MemberState>;

  constructor(private readonly deps: DynamicSecretsDeps) {
    const { kv, db, now } = deps;
    this.organisationIndex = new StalenessBoundCache(
      {
        kvKey: () => "dynsec-index:all",
        load: () => organisationsWithLiveSecrets(db),
        hydrate: async (_log, _key, identifiers) => new Set(identifiers),
        limit: 1,
      },
      kv,
      now,
    );
    this.organisationKeys = new StalenessBoundCache(
      {
        kvKey: (organisation) => `dynsec:${organisation}`,
        load: (organisation) => liveSealedSecrets(db, organisation),
        hydrate: (log, organisation, sealed) => this.openKeys(log, organisation, sealed),
        limit: ORGANISATIONS_LIMIT,
      },
      kv,
      now,
    );
    this.memberStates = new StalenessBoundCache(
      {
        kvKey: (key) => `dynmem:${key}`,
        load: async (key) => {
          const [organisation = "", member = ""] = key.split("/");
          const row = await findMembershipState(db, organisation, member);
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

  /** The AES-GCM key of `SECRETS_KEY`, imported once; ConfigError when it is unset. */
  sealingKey(): Promise<CryptoKey> {
    const raw = this.deps.source.config.secretsKey;
    if (!raw)
      throw new ConfigError(
        "SECRETS_KEY is not set, so dynamic secrets cannot be created or read (wrangler secret put SECRETS_KEY)",
      );
    this.sealingKeyImport ??= importSealingKey(raw);
    return this.sealingKeyImport;
  }

  /** The live keys of `organisation` for `bearerAuth`: index, then the organisation's keys, narrowed by `kid`. */
  async keysFor(
    ctx: WaitUntil,
    log: Logger,
    organisation: string,
    kid: string | undefined,
  ): Promise<readonly SigningKey[]> {
    if (!this.deps.source.config.secretsKey)
      throw new GatewayError("invalid_token", "dynamic-secret tokens are not enabled on this gateway");
    const index = await this.organisationIndex.get(ctx, log, INDEX_KEY);
    if (!index.has(organisation)) return [];
    const keys = await this.organisationKeys.get(ctx, log, organisation);
    if (kid === undefined) return keys.all;
    const match = keys.byKid.get(kid);
    return match ? [match] : [];
  }

  /**
   * Checks that a dynamic token's member exists in its organisation and is active, and returns the
   * claims with `memberEntityId` taken from storage; a token naming another member id is refused.
   */
  async activeMember(ctx: WaitUntil, log: Logger, claims: AccessClaims): Promise<AccessClaims> {
    const state = await this.memberStates.get(
      ctx,
      log,
      `${claims.organisationEntityIdentifier}/${claims.memberEntityIdentifier}`,
    );
    if (state.memberId === undefined) throw refusal("foreignMember");
    if (claims.memberEntityId !== undefined && claims.memberEntityId !== state.memberId)
      throw new GatewayError("invalid_token", "memberEntityId does not match the member");
    if (!state.active) throw refusal("suspended");
    return { ...claims, memberEntityId: state.memberId };
  }

  /** After this isolate created a secret: every isolate sees the new organisation and kid within 55 s, this one at once. */
  async afterCreated(organisation: string): Promise<void> {
    await Promise.all([this.organisationIndex.forget(INDEX_KEY), this.organisationKeys.forget(organisation)]);
  }

  /** After this isolate revoked a secret: refused here at once, everywhere within 55 s. */
  async afterRevoked(organisation: string): Promise<void> {
    await this.organisationKeys.forget(organisation);
  }

  private async openKeys(log: Logger, organisation: string, sealed: SealedSecret[]): Promise<OrganisationKeys> {
    const key = await this.sealingKey();
    const all: SigningKey[] = [];
    for (const { kid, ciphertext } of sealed) {
      try {
        all.push({ kid, key: await dynamicHmacKey(await openSecret(key, { organisation, kid }, ciphertext)) });
      } catch {
        log.error("dynamic_secret_unreadable", { organisation, kid });
      }
    }
    return { all, byKid: new Map(all.map((entry) => [entry.kid, entry])) };
  }
}
