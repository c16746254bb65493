// Revocations order events, not whole seconds: within one second, what was issued before a revocation is refused and what was issued after it works.
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { issuedAtOf, issueInstant, revokedBy, tokenIdAt } from "../src/revocation/order";
import { adminCall, adminRequest, bearer, fakeOrigin, fixedClaims, gateway, postLogin, signWithJose } from "./helpers";
import { expectRevoked, hookedD1, hookedObjects, location, type Clock } from "./locations";
import { expectInvalidGrant, loginAccount, newAccount, postRefresh, postRevoke, type Account } from "./refresh-helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Fixes the clock of the test and of the Worker (one isolate) at `instant` (ms). */
function clockAt(instant: number): void {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(instant);
}

/** Half a second into a second a few seconds ago: D1's own clock (real time) is later than every instant used. */
function secondInThePast(): number {
  return (Math.floor(Date.now() / 1000) - 5) * 1000 + 500;
}

/** The admin route `route` (the command's request), which must succeed. */
async function admin(route: string, body: Record<string, unknown>): Promise<void> {
  const response = await adminCall(route, body);
  expect(response.status, await response.clone().text()).toBe(200);
}

const who = (account: Account) => ({ org: account.organisation, email: account.email });

interface Session {
  access: string;
  refresh: string;
}

async function session(account: Account, password?: string): Promise<Session> {
  const response = password
    ? await postLogin({ email: account.email, password })
    : new Response(JSON.stringify(await loginAccount(account)));
  expect(response.status, await response.clone().text()).toBe(200);
  const body = (await response.json()) as { access_token: string; refresh_token: string };
  return { access: body.access_token, refresh: body.refresh_token };
}

async function expectWorks(session: Session, what: string): Promise<void> {
  expect((await gateway("/grids", bearer(session.access))).status, `${what}: access token`).toBe(200);
  expect((await postRefresh({ refresh_token: session.refresh })).status, `${what}: refresh token`).toBe(200);
}

async function expectRefused(session: Session, what: string, access = true): Promise<void> {
  if (access) await expectRevoked(await gateway("/grids", bearer(session.access)));
  const refreshed = await postRefresh({ refresh_token: session.refresh });
  expect(refreshed.status, `${what}: refresh token`).toBe(400);
  expect(((await refreshed.json()) as { code: string }).code).toBe("invalid_grant");
}

const NEW_PASSWORD = "a-new-password-for-the-order-test";

/** A revocation kind: how it is made (at the fixed clock), and what lets a member log in again afterwards. */
interface RevocationKind {
  name: string;
  revoke(account: Account, earlier: Session): Promise<void>;
  restore?(account: Account): Promise<void>;
  /** The password a login after the revocation uses (default: the seed password). */
  password?: string;
  /** False when no member is left to log in afterwards. */
  loginsAfter?: boolean;
  /** False when the kind ends refresh sessions only. */
  refusesAccess?: boolean;
}

const KINDS: RevocationKind[] = [
  {
    name: "logout-everywhere",
    revoke: async (_account, earlier) => {
      const response = await postRevoke({ all: true }, { Authorization: `Bearer ${earlier.access}` });
      expect(response.status).toBe(200);
    },
  },
  { name: "member:sign-out", revoke: (account) => admin("member/sign-out", { member_id: account.memberId }) },
  {
    name: "member:suspend",
    revoke: (account) => admin("member/suspend", who(account)),
    restore: (account) => admin("member/activate", who(account)),
  },
  {
    name: "member:password",
    revoke: (account) => admin("member/password", { ...who(account), password: NEW_PASSWORD }),
    password: NEW_PASSWORD,
  },
  { name: "member:delete", revoke: (account) => admin("member/delete", who(account)), loginsAfter: false },
  {
    name: "org:plan (to a plan without the API)",
    revoke: (account) => admin("org/plan", { org: account.organisation, plan: "free" }),
    restore: (account) => admin("org/plan", { org: account.organisation, plan: "professional" }),
  },
  {
    name: "org:suspend",
    revoke: (account) => admin("org/suspend", { org: account.organisation }),
    restore: (account) => admin("org/activate", { org: account.organisation }),
  },
  {
    name: "end of a refresh family (revoke one refresh token)",
    revoke: async (_account, earlier) => {
      expect((await postRevoke({ refresh_token: earlier.refresh })).status).toBe(200);
    },
    refusesAccess: false,
  },
];

describe("revocations order events within one second", () => {
  for (const kind of KINDS) {
    it(`${kind.name}: issued 1 ms before or in its millisecond before it → refused; after it, even in the same millisecond → works`, async () => {
      fakeOrigin();
      const account = await newAccount();
      const revokedAt = secondInThePast();
      clockAt(revokedAt - 1);
      const before = await session(account);
      clockAt(revokedAt);
      const sameMillisecondBefore = await session(account);
      await kind.revoke(account, kind.name.startsWith("end of") ? sameMillisecondBefore : before);
      await kind.restore?.(account);
      if (kind.loginsAfter !== false) {
        const sameMillisecondAfter = await session(account, kind.password);
        clockAt(revokedAt + 1);
        const after = await session(account, kind.password);
        await expectWorks(sameMillisecondAfter, "issued in the revocation's millisecond, after it");
        await expectWorks(after, "issued 1 ms after");
      }
      if (kind.name.startsWith("end of")) {
        await expectRefused(sameMillisecondBefore, "the ended family", false);
        await expectWorks(before, "another family of the member");
        return;
      }
      await expectRefused(before, "issued 1 ms before", kind.refusesAccess !== false);
      await expectRefused(sameMillisecondBefore, "issued in its millisecond, before it", kind.refusesAccess !== false);
    });
  }

  it("a refresh family started in the same second before member:password is refused; one started after refreshes", async () => {
    fakeOrigin();
    const account = await newAccount();
    const second = secondInThePast();
    clockAt(second);
    const before = await session(account);
    await admin("member/password", { ...who(account), password: NEW_PASSWORD });
    const after = await session(account, NEW_PASSWORD);
    await expectRefused(before, "started before the password change", false);
    expect((await postRefresh({ refresh_token: after.refresh })).status).toBe(200);
  });

  it("tokens from before the ordering (no instant in their jti) keep their verdicts: refused by a revocation in or after their second", async () => {
    fakeOrigin();
    const account = await newAccount();
    const second = secondInThePast();
    clockAt(second - 1000);
    const earlier = await session(account);
    clockAt(second + 400);
    await admin("member/sign-out", { member_id: account.memberId });
    const legacy = (iat: number) =>
      signWithJose(
        fixedClaims({
          memberEntityId: String(account.memberId),
          memberEntityIdentifier: `m${account.organisation.slice(1)}`,
          organisationEntityIdentifier: account.organisation,
          iat,
          jti: crypto.randomUUID(),
        }),
      );
    const s = Math.floor(second / 1000);
    await expectRevoked(await gateway("/grids", bearer(await legacy(s - 1))));
    await expectRevoked(await gateway("/grids", bearer(await legacy(s))));
    expect((await gateway("/grids", bearer(await legacy(s + 1)))).status).toBe(200);
    await expectRevoked(await gateway("/grids", bearer(earlier.access)));
  });
});

/** Events of one second, in the order they happen: an issue or a revocation at a millisecond offset. */
const interleavings = fc
  .array(
    fc.record({
      revoke: fc.boolean(),
      // Often the same few milliseconds, so events share one.
      offset: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 999 })),
    }),
    {
      minLength: 2,
      maxLength: 6,
    },
  )
  .map((events) =>
    events.map((event, order) => ({ ...event, order })).sort((a, b) => a.offset - b.offset || a.order - b.order),
  );

describe("every interleaving of issues and revocations within one second", () => {
  it("the rule, as the gateway applies it: a token is refused exactly when a revocation came after its issue (pure, 2,000 interleavings)", () => {
    const second = 1_764_860_000_000;
    fc.assert(
      fc.property(interleavings, (events) => {
        let recorded: number | undefined;
        const issued: { jti: string; iat: number; index: number }[] = [];
        events.forEach((event, index) => {
          const now = second + event.offset;
          if (event.revoke) recorded = issueInstant(now, recorded);
          else {
            const instant = issueInstant(now, recorded);
            issued.push({ jti: tokenIdAt(instant), iat: Math.floor(instant / 1000), index });
          }
        });
        // The published record carries seconds with the millisecond as a fraction.
        const published = recorded === undefined ? undefined : Math.round((recorded / 1000) * 1000);
        for (const token of issued) {
          const revokedLater = events.slice(token.index + 1).some((event) => event.revoke);
          expect(revokedBy(issuedAtOf(token), published)).toBe(revokedLater);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("through the Worker: logins and admin sign-outs interleaved within one second", async () => {
    fakeOrigin();
    await fc.assert(
      fc.asyncProperty(interleavings, async (events) => {
        const account = await newAccount();
        const second = Math.floor(secondInThePast() / 1000) * 1000;
        const sessions: { session: Session; index: number }[] = [];
        for (const [index, event] of events.entries()) {
          clockAt(second + event.offset);
          if (event.revoke) await admin("member/sign-out", { member_id: account.memberId });
          else sessions.push({ session: await session(account), index });
        }
        for (const { session: issued, index } of sessions) {
          const revokedLater = events.slice(index + 1).some((event) => event.revoke);
          const what = `${JSON.stringify(events)}: issue #${index}`;
          if (revokedLater) await expectRefused(issued, what);
          else await expectWorks(issued, what);
        }
        vi.useRealTimers();
      }),
      { numRuns: 10 },
    );
  }, 60_000);
});

describe("a revocation racing a refresh or a login that read D1 before it", () => {
  /** The Worker's (faked) clock as a location's clock. */
  const faked: Clock = {
    get now() {
      return Date.now();
    },
  };

  it("a refresh reading D1 before a sign-out's write, after the sign-out took its clock: refused all the same", async () => {
    fakeOrigin();
    const account = await newAccount();
    const start = secondInThePast();
    clockAt(start);
    const earlier = await session(account);
    let raced: Response | undefined;
    const revoker = location(faked, {
      ...env,
      DB: hookedD1(/^update "members" set "sessions_revoked_at"/, "before", async () => {
        clockAt(start + 5);
        raced = await postRefresh({ refresh_token: earlier.refresh });
      }),
    });
    clockAt(start + 2);
    const path = "/authenticate/admin/member/sign-out";
    const revoked = await revoker.request(path, await adminRequest(path, { member_id: account.memberId }));
    expect(revoked.status, await revoked.clone().text()).toBe(200);
    expect(raced?.status, "the refresh read D1 before the write and rotated").toBe(200);
    const rotated = (await raced!.json()) as { access_token: string; refresh_token: string };
    await expectRevoked(await revoker.request("/grids", bearer(rotated.access_token)));
    await expectInvalidGrant(await postRefresh({ refresh_token: rotated.refresh_token }));
  });

  it("a login reading the member before a suspension and its revocation: its access token is refused", async () => {
    fakeOrigin();
    const account = await newAccount();
    const start = secondInThePast();
    clockAt(start);
    // after the login read the member and asked for the bookmarks of its writes (the SSO domain check asks first)
    const login = location(faked, {
      ...env,
      REVOCATIONS: hookedObjects(
        env.REVOCATIONS,
        "bookmark",
        async () => {
          clockAt(start + 5);
          await admin("member/suspend", who(account));
          clockAt(start + 10);
        },
        2,
      ),
    });
    const response = await login.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(response.status, "the login read an active member").toBe(200);
    const issued = (await response.json()) as { access_token: string };
    await expectRevoked(await gateway("/grids", bearer(issued.access_token)));
  });
});
