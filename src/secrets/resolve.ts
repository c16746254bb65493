/** Verification-side lookups for dynamic-secret tokens: an organisation's live keys and its members. */
import type { MiddlewareHandler } from "hono";
import { getConfig, type AppEnv, type Bindings, type WaitUntil } from "../config";
import { GatewayError } from "../errors";
import { database } from "../storage/db";
import {
  findMembershipState,
  liveSealedSecrets,
  organisationsWithLiveSecrets,
  type SealedSecret,
} from "../storage/dynamic-secrets";
import type { AccessClaims } from "../tokens/claims";
import type { SigningKey } from "../tokens/keys";
import type { DynamicKeyResolver } from "../tokens/verify";
import { StalenessBoundCache } from "./cache";
import { dynamicHmacKey, openSecret, secretsKey } from "./crypto";

/** The live keys of one organisation, by kid and all together. */
interface OrganisationKeys {
  all: readonly SigningKey[];
  byKid: ReadonlyMap<string, SigningKey>;
}

const INDEX_KEY = "all";

/**
 * Which organisations hold any live secret: one small entry that answers every token naming an
 * unknown organisation, so a flood of random identifiers costs memory look-ups, not D1 queries.
 */
const organisationIndex = new StalenessBoundCache<string[], ReadonlySet<string>>({
  kvKey: () => "dynsec-index:all",
  load: (env) => organisationsWithLiveSecrets(database(env.DB)),
  hydrate: async (_env, _key, identifiers) => new Set(identifiers),
  limit: 1,
});

/** One organisation's live secrets: sealed in KV (`dynsec:<org>`), decrypted only in isolate memory. */
const organisationKeys = new StalenessBoundCache<SealedSecret[], OrganisationKeys>({
  kvKey: (organisation) => `dynsec:${organisation}`,
  load: (env, organisation) => liveSealedSecrets(database(env.DB), organisation),
  hydrate: async (env, organisation, sealed) => {
    const key = await secretsKey(getConfig(env));
    const all: SigningKey[] = [];
    for (const { kid, ciphertext } of sealed) {
      try {
        all.push({ kid, key: await dynamicHmacKey(await openSecret(key, { organisation, kid }, ciphertext)) });
      } catch {
        console.error(JSON.stringify({ level: "error", event: "dynamic_secret_unreadable", organisation, kid }));
      }
    }
    return { all, byKid: new Map(all.map((entry) => [entry.kid, entry])) };
  },
  limit: 10_000,
});

/** A member's state as verification needs it; `memberId` undefined when there is no such member. */
interface MemberState {
  memberId?: number;
  active: boolean;
}

/** Members named by dynamic tokens, keyed `<org>/<member>`; unknown members are cached too. */
const memberStates = new StalenessBoundCache<MemberState, MemberState>({
  kvKey: (key) => `dynmem:${key}`,
  load: async (env, key) => {
    const [organisation = "", member = ""] = key.split("/");
    const row = await findMembershipState(database(env.DB), organisation, member);
    return row
      ? { memberId: row.memberId, active: row.memberStatus === "active" && row.organisationStatus === "active" }
      : { active: false };
  },
  hydrate: async (_env, _key, state) => state,
  limit: 10_000,
});

/** The {@link DynamicKeyResolver} for `bearerAuth`: index, then the organisation's keys, narrowed by `kid`. */
export function dynamicKeyResolver(env: Bindings, ctx: WaitUntil): DynamicKeyResolver {
  return async (organisation, kid) => {
    if (!getConfig(env).secretsKey)
      throw new GatewayError("invalid_token", "dynamic-secret tokens are not enabled on this gateway");
    const index = await organisationIndex.get(env, ctx, INDEX_KEY);
    if (!index.has(organisation)) return [];
    const keys = await organisationKeys.get(env, ctx, organisation);
    if (kid === undefined) return keys.all;
    const match = keys.byKid.get(kid);
    return match ? [match] : [];
  };
}

/**
 * Checks that a dynamic token's member exists in its organisation and is active, and returns the
 * claims with `memberEntityId` taken from storage; a token naming another member id is refused.
 */
export async function activeDynamicMember(env: Bindings, ctx: WaitUntil, claims: AccessClaims): Promise<AccessClaims> {
  const state = await memberStates.get(
    env,
    ctx,
    `${claims.organisationEntityIdentifier}/${claims.memberEntityIdentifier}`,
  );
  if (state.memberId === undefined)
    throw new GatewayError("invalid_token", "the token's member does not belong to its organisation");
  if (claims.memberEntityId !== undefined && claims.memberEntityId !== state.memberId)
    throw new GatewayError("invalid_token", "memberEntityId does not match the member");
  if (!state.active) throw new GatewayError("account_suspended", "This account is suspended.");
  return { ...claims, memberEntityId: state.memberId };
}

/** After this isolate created a secret: every isolate sees the new organisation and kid within 55 s, this one at once. */
export async function afterSecretCreated(env: Bindings, organisation: string): Promise<void> {
  await Promise.all([organisationIndex.forget(env, INDEX_KEY), organisationKeys.forget(env, organisation)]);
}

/** After this isolate revoked a secret: refused here at once, everywhere within 55 s. */
export async function afterSecretRevoked(env: Bindings, organisation: string): Promise<void> {
  await organisationKeys.forget(env, organisation);
}

/** Middleware after `bearerAuth`: dynamic-secret tokens must name an existing, active member. */
export function requireActiveDynamicMember(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const claims = c.get("claims");
    if (claims.secretType === "dynamic") c.set("claims", await activeDynamicMember(c.env, c.executionCtx, claims));
    await next();
  };
}
