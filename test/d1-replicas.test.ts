// D1 read replicas (src/storage/db.ts, src/revocation/reads.ts): which reads a replica may answer, and logins and
// refreshes that still see a revocation or an admin change while the replica serving them has not caught up.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { database, findMemberships } from "../src/storage/db";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { adminCall, adminRequest, fakeOrigin, newArchitectOrganisation, problem, randomId } from "./helpers";
import { faultSwitch, faultyObjects } from "./fault-fakes";
import { hookedD1, location, staleKv, type Clock } from "./locations";
import { expectInvalidGrant, newAccount, type Account } from "./refresh-helpers";

beforeAll(() => applyD1Migrations(env.LAGGING_REPLICA, env.TEST_MIGRATIONS));
afterEach(() => vi.restoreAllMocks());

/** A bookmark older than every write: what a replica that has not caught up with anything reports. */
const STALE_BOOKMARK = "00000000-00000000-00000000-00000000000000000000000000000000";

/** Where one statement ran: the binding (the primary), or a session and how it was opened. */
interface Routed {
  sql: string;
  via: "primary" | "first-primary" | "first-unconstrained" | "bookmark";
}

/**
 * `DB` as production routes it: the binding and `first-primary` sessions run on the primary; a `first-unconstrained`
 * session on a replica that has not caught up (`LAGGING_REPLICA`, holding what {@link copyToReplica} copied, its
 * bookmark `caughtUpTo`); a session from a bookmark on one at least that fresh (the primary here).
 */
function replicatedD1() {
  const routed: Routed[] = [];
  const replica = { caughtUpTo: STALE_BOOKMARK };
  const over = (target: Pick<D1Database, "prepare" | "batch">, via: Routed["via"], bookmark: () => string | null) => ({
    prepare: (sql: string) => {
      routed.push({ sql, via });
      return target.prepare(sql);
    },
    batch: (statements: D1PreparedStatement[]) => target.batch(statements),
    getBookmark: bookmark,
  });
  const binding = {
    ...over(env.DB, "primary", () => null),
    exec: (sql: string) => env.DB.exec(sql),
    withSession: (constraint: string) => {
      if (constraint === "first-unconstrained") return over(env.LAGGING_REPLICA, constraint, () => replica.caughtUpTo);
      const session = env.DB.withSession(constraint);
      return over(session, constraint === "first-primary" ? constraint : "bookmark", () => session.getBookmark());
    },
  } as unknown as D1Database;
  /** Where the statements that match `pattern` ran, in order. */
  const where = (pattern: RegExp) => routed.filter(({ sql }) => pattern.test(sql)).map(({ via }) => via);
  return { binding, replica, where };
}

/**
 * Copies an organisation's rows, its members' and its secrets' to the lagging replica as they are now; resolves to
 * the primary's bookmark at the copy (what the replica has then caught up to).
 */
async function copyToReplica(organisationId: number): Promise<string> {
  const primary = env.DB.withSession("first-primary");
  const tables = [
    ["organisations", "id"],
    ["members", "organisation_id"],
    ["dynamic_secrets", "organisation_id"],
  ] as const;
  for (const [table, column] of [...tables].reverse())
    await env.LAGGING_REPLICA.prepare(`DELETE FROM ${table} WHERE ${column} = ?`).bind(organisationId).run();
  for (const [table, column] of tables) {
    const { results } = await primary.prepare(`SELECT * FROM ${table} WHERE ${column} = ?`).bind(organisationId).all();
    for (const row of results) {
      const columns = Object.keys(row);
      await env.LAGGING_REPLICA.prepare(
        `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      )
        .bind(...columns.map((name) => row[name]))
        .run();
    }
  }
  return primary.getBookmark()!;
}

/** A location of its own over `DB` as {@link replicatedD1} routes it. */
function replicatedLocation(clock: Clock = { now: Date.now() }, bindings: Partial<typeof env> = {}) {
  const d1 = replicatedD1();
  return { ...d1, gateway: location(clock, { ...env, ...bindings, DB: d1.binding }) };
}

const MEMBER_READ = /from "members" inner join "organisations"/;

async function replicatedAccount(): Promise<Account> {
  const account = await newAccount();
  await copyToReplica(account.organisationId);
  return account;
}

/** The admin route `route`, which must succeed. */
async function admin(route: string, body: Record<string, unknown>): Promise<void> {
  const response = await adminCall(route, body);
  expect(response.status, await response.clone().text()).toBe(200);
}

const who = (account: Account) => ({ org: account.organisation, email: account.email });

describe("D1 read replicas", () => {
  it("a login reads its member from a replica, which answers alone while nothing written to it is in force", async () => {
    const { gateway, where } = replicatedLocation();
    const account = await replicatedAccount();
    const response = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(response.status).toBe(200);
    expect(where(MEMBER_READ)).toEqual(["first-unconstrained"]);
  });

  it("a login with the old password right after member/password is refused, though the replica still holds the old hash", async () => {
    const { gateway, where } = replicatedLocation();
    const account = await replicatedAccount();
    const newPassword = "a-new-password-for-the-replica-test";
    await admin("member/password", { ...who(account), password: newPassword });
    const [stale] = await findMemberships(database(env.LAGGING_REPLICA), account.email);
    expect(stale?.member.sessionsRevokedAt, "the replica has not caught up").toBeNull();

    const old = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(old.status).toBe(401);
    expect((await problem(old)).code).toBe("invalid_credentials");
    expect(where(MEMBER_READ), "read again from a replica at least as fresh as the change").toEqual([
      "first-unconstrained",
      "bookmark",
    ]);
    expect((await gateway.post("/authenticate", { email: account.email, password: newPassword })).status).toBe(200);
  });

  it("a refresh right after logout-everywhere is refused, though the replica and this location's KV copy do not have it yet", async () => {
    const clock = { now: Date.now() };
    const { gateway: near, where } = replicatedLocation(clock);
    const account = await replicatedAccount();
    const login = await near.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    const { access_token, refresh_token } = await login.json<Record<string, string>>();
    const revoke = await near.post("/authenticate/revoke", { all: true }, { Authorization: `Bearer ${access_token}` });
    expect(revoke.status).toBe(200);

    // A far location: KV's edge copy has no member marker yet, the replica no revocation.
    const { gateway: far, where: farWhere } = replicatedLocation(clock, {
      TOKENS: staleKv(new Map([[`refresh-member:${account.memberId}`, null]])),
    });
    await expectInvalidGrant(await far.post("/authenticate/refresh", { refresh_token }));
    expect(where(/update "members" set "sessions_revoked_at"/), "the revocation's writes").toEqual([
      "first-primary",
      "first-primary",
    ]);
    expect(farWhere(MEMBER_READ), "the refresh read it again from a fresh enough replica").toEqual([
      "first-unconstrained",
      "bookmark",
    ]);
  });

  it("a refresh on a lagging replica while a sign-out is between its writes, after it took its instant: refused", async () => {
    fakeOrigin();
    const account = await replicatedAccount();
    const clock = { now: Date.now() };
    const login = await location(clock).post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    const { refresh_token } = await login.json<Record<string, string>>();
    const { gateway: far } = replicatedLocation(clock);
    let raced: Response | undefined;
    const race = async () => {
      clock.now += 5;
      raced = await far.post("/authenticate/refresh", { refresh_token });
    };
    // before the sign-out's second D1 write: its instant is taken, its access-token record not yet written
    const revoker = location(clock, {
      ...env,
      DB: hookedD1(/^update "members" set "sessions_revoked_at"/, "before", race, 2),
    });
    const path = "/authenticate/admin/member/sign-out";
    expect((await revoker.request(path, await adminRequest(path, { member_id: account.memberId }))).status).toBe(200);
    expect(raced, "the hook ran").toBeDefined();
    // the shard held the first write's bookmark before the instant was taken: the refresh read past its replica
    await expectInvalidGrant(raced!);
  });

  it("admin writes that revoke nothing keep their bookmark too: member/activate, then a login on a replica that saw the suspension", async () => {
    const { gateway, replica, where } = replicatedLocation();
    const account = await newAccount();
    await admin("member/suspend", who(account));
    replica.caughtUpTo = await copyToReplica(account.organisationId);
    await admin("member/activate", who(account));
    const response = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(where(MEMBER_READ)).toEqual(["first-unconstrained", "bookmark"]);
  });

  it("member/create, then the new member's login on a replica from before it: found", async () => {
    const { gateway, replica } = replicatedLocation();
    const account = await newAccount();
    replica.caughtUpTo = await copyToReplica(account.organisationId);
    const email = `${randomId("n")}@${account.organisation}.example`;
    await admin("member/create", { org: account.organisation, email, role: "builder", password: SEED_PASSWORD });
    const response = await gateway.post("/authenticate", { email, password: SEED_PASSWORD });
    expect(response.status, await response.clone().text()).toBe(200);
  });

  it("org/suspend: a login and a refresh on a replica from before it are refused", async () => {
    const { gateway } = replicatedLocation();
    const account = await replicatedAccount();
    const login = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    const { refresh_token } = await login.json<Record<string, string>>();
    await admin("org/suspend", { org: account.organisation });
    const refused = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(refused.status).toBe(403);
    await expectInvalidGrant(await gateway.post("/authenticate/refresh", { refresh_token }));
  });

  it("org/sso/set: a password login on a replica from before the connection is refused 403 sso_required, by email domain and by organisation", async () => {
    const { gateway } = replicatedLocation();
    const byDomain = await replicatedAccount();
    const byOrganisation = await replicatedAccount();
    const connection = { issuer: "https://idp.example", client_id: "gridgate", client_secret: "s", required: true };
    await admin("org/sso/set", { ...connection, org: byDomain.organisation, domains: [byDomain.email.split("@")[1]] });
    await admin("org/sso/set", {
      ...connection,
      org: byOrganisation.organisation,
      domains: [`${randomId("d")}.example`],
    });
    for (const account of [byDomain, byOrganisation]) {
      const response = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
      expect(response.status).toBe(403);
      expect((await problem(response)).code).toBe("sso_required");
    }
  });

  it("when the Revocations object cannot be asked, the member is read from the primary: the login still answers", async () => {
    const faults = faultSwitch("throws", (method) => method === "bookmark");
    const { gateway, where } = replicatedLocation(undefined, { REVOCATIONS: faultyObjects(faults, env.REVOCATIONS) });
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const account = await replicatedAccount();
    const response = await gateway.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(response.status).toBe(200);
    expect(faults.failed).toBeGreaterThan(0);
    expect(where(MEMBER_READ)).toEqual(["first-unconstrained", "primary"]);
    expect(warnings.mock.calls.flat().join(" ")).toMatch(/revocation_bookmark_failed/);
  });

  it("what must see the latest write reads the primary: the plan gate, an admin route's look-up, a secret's re-read after its change", async () => {
    fakeOrigin();
    const { gateway, where } = replicatedLocation();
    const org = await newArchitectOrganisation("professional", "r");
    const created = await gateway.request("/authenticate/secrets", {
      method: "POST",
      headers: { Authorization: `Bearer ${org.token}` },
    });
    expect(created.status).toBe(201);
    expect(where(/json_array\("plan", "status"\)/), "the plan gate").toEqual(["primary"]);
    expect(where(/from "dynamic_secrets" join/), "the re-read after the change").toEqual(["primary"]);

    const path = "/authenticate/admin/org/plan";
    const changed = await gateway.request(path, await adminRequest(path, { org: org.identifier, plan: "enterprise" }));
    expect(changed.status).toBe(200);
    expect(where(/^select "id", "identifier", "name"/), "the route's look-up").toEqual(["primary"]);
    expect(where(/^update "organisations"/), "its write").toEqual(["first-primary"]);
  });

  it("a dynamic-secret token's look-up (past every cache) is answered by a replica", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("professional", "r");
    const created = await location({ now: Date.now() }).request("/authenticate/secrets", {
      method: "POST",
      headers: { Authorization: `Bearer ${org.token}` },
    });
    const { kid, secret } = await created.json<Record<string, string>>();
    await copyToReplica(org.id);
    // A location whose KV has no copy of the organisation's keys or member yet.
    const tokens = staleKv(
      new Map([
        [`dynsec:${org.identifier}`, null],
        [`dynmem:${org.identifier}/${org.member}`, null],
      ]),
    );
    const { gateway, where } = replicatedLocation(undefined, { TOKENS: tokens });
    const token = await new SignJWT({
      memberEntityIdentifier: org.member,
      organisationEntityIdentifier: org.identifier,
      scope: "organisation",
      secretType: "dynamic",
    })
      .setProtectedHeader({ alg: "HS256", kid })
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(secret));
    const response = await gateway.request("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(where(/from "dynamic_secrets" join/), "its keys and members, in one look-up").toEqual([
      "first-unconstrained",
    ]);
  });
});
