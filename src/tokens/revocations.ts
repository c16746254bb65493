/** The isolate's copy of the recent access-token revocations: checked in memory on every request, re-read from KV in the background. */
import type { Config, WaitUntil } from "../config";
import {
  REVOCATIONS_KEY,
  revocationBucket,
  type RevocationRequest,
  type RevocationSnapshot,
  type Revocations,
} from "../durable/revocations";
import { unavailable } from "../gateway-error";
import type { Logger } from "../log";
import type { AccessClaims } from "./claims";

/** From this age on, a request starts a background re-read (ms). */
export const REVOCATIONS_REFRESH_MS = 19_000;
/**
 * Never used older than this (ms): a request that finds the copy older waits for a re-read, and fails
 * closed (503 `temporarily_unavailable`) when that fails. With the publisher's ≤ 1 s coalescing and KV's own edge cache
 * (`cacheTtl: 30`), a revocation reaches every isolate within 1 s + 30 s + 29 s.
 */
export const REVOCATIONS_MAX_AGE_MS = 29_000;
const READ_CACHE_TTL_SECONDS = 30;

/** Who may be named in a revocation. */
export interface RevocationSubjects {
  members?: number[];
  organisations?: string[];
}

function parse(raw: unknown): RevocationSnapshot | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const value = raw as Partial<RevocationSnapshot>;
  const isTable = (table: unknown): table is Record<string, number> =>
    typeof table === "object" &&
    table !== null &&
    Object.values(table as Record<string, unknown>).every((v) => typeof v === "number");
  if (value.v !== 1 || typeof value.version !== "number" || typeof value.publishedAt !== "number") return undefined;
  if (!isTable(value.members) || !isTable(value.organisations)) return undefined;
  if (value.buckets !== undefined && !isTable(value.buckets)) return undefined;
  return value as RevocationSnapshot;
}

/**
 * One per gateway (isolate). Holds member → revoked-before and organisation → revoked-before (seconds)
 * in maps; {@link isRevoked} is a few map lookups. The copy is re-read from KV in the background once
 * it is 19 s old; a copy older than 29 s is never used without a re-read (so an idle isolate's first
 * request waits for one KV read). A record that cannot be read fails requests closed.
 */
export class RevocationList {
  private members = new Map<number, number>();
  private organisations = new Map<string, number>();
  private buckets = new Map<number, number>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private version = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly kv: KVNamespace,
    private readonly objects: DurableObjectNamespace<Revocations>,
    private readonly now: () => number,
  ) {}

  /**
   * Makes sure the copy is fresh enough for this request: nothing to wait for (the usual case; a
   * background re-read may start), or a promise that must be awaited first.
   */
  ensureFresh(ctx: WaitUntil, log: Logger): Promise<void> | undefined {
    const age = this.now() - this.loadedAt;
    if (age < REVOCATIONS_REFRESH_MS) return undefined;
    const loading = (this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    }));
    if (age <= REVOCATIONS_MAX_AGE_MS) {
      ctx.waitUntil(loading.catch((error: unknown) => log.error("revocations_read_failed", { error: String(error) })));
      return undefined;
    }
    return loading;
  }

  /**
   * True when a gateway-issued (fixed-secret) token's member or organisation was revoked at or after the
   * token was issued. Dynamic-secret tokens are minted by the organisation's own integration, which can
   * sign a fresh one at any time, so an issue time proves nothing about them: they are held by their live
   * checks instead (member active, plan, the secret not revoked; each ≤ 60 s).
   */
  isRevoked(claims: AccessClaims): boolean {
    if (claims.secretType !== "fixed") return false;
    if (this.members.size === 0 && this.organisations.size === 0 && this.buckets.size === 0) return false;
    const issuedAt = claims.iat ?? Number.NEGATIVE_INFINITY;
    const member = claims.memberEntityId;
    const organisation = claims.organisationEntityIdentifier;
    const revokedBefore = (before: number | undefined) => before !== undefined && issuedAt <= before;
    if (member !== undefined && revokedBefore(this.members.get(member))) return true;
    if (revokedBefore(this.organisations.get(organisation))) return true;
    if (this.buckets.size === 0) return false;
    return (
      (member !== undefined && revokedBefore(this.buckets.get(revocationBucket(`m:${member}`)))) ||
      revokedBefore(this.buckets.get(revocationBucket(`o:${organisation}`)))
    );
  }

  /**
   * Revokes every access token of `subjects` issued until now (this second included), through the one
   * `Revocations` object, which publishes to KV; this isolate applies it at once.
   */
  async revoke(config: Pick<Config, "accessTokenTtl" | "clockSkew">, subjects: RevocationSubjects): Promise<void> {
    const now = this.now();
    const request: RevocationRequest = {
      ...subjects,
      before: Math.floor(now / 1000),
      keepSeconds: config.accessTokenTtl + config.clockSkew,
      now,
    };
    const snapshot = await this.objects.get(this.objects.idFromName("global")).revoke(request);
    this.install(snapshot, this.now());
  }

  private async load(): Promise<void> {
    const raw = await this.kv.get(REVOCATIONS_KEY, { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS });
    const readAt = this.now();
    if (raw === null) {
      this.install({ v: 1, version: 0, publishedAt: readAt, members: {}, organisations: {} }, readAt);
      return;
    }
    const snapshot = parse(raw);
    if (!snapshot) throw unavailable("kv", "unreadable access-revocations record");
    this.install(snapshot, readAt);
  }

  /** Replaces the maps, unless a newer record is already installed (a re-read may return an older edge copy). */
  private install(snapshot: RevocationSnapshot, readAt: number): void {
    this.loadedAt = readAt;
    if (snapshot.version < this.version) return;
    this.version = snapshot.version;
    this.members = new Map(Object.entries(snapshot.members).map(([id, before]) => [Number(id), before]));
    this.organisations = new Map(Object.entries(snapshot.organisations));
    this.buckets = new Map(Object.entries(snapshot.buckets ?? {}).map(([bucket, before]) => [Number(bucket), before]));
  }
}
