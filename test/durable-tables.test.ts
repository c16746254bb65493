// Durable Objects that delete all of their storage when a record expires keep serving afterwards: the same instance recreates its tables.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const SETTINGS = { loginFreeAttempts: 5, loginBackoffBaseSeconds: 1, loginBackoffMaxSeconds: 900 };

describe("an object that forgot everything (its alarm ran deleteAll) and is asked again", () => {
  it("LoginBackoff admits the next attempt instead of failing on a missing table", async () => {
    const stub = env.LOGIN_BACKOFF.get(env.LOGIN_BACKOFF.idFromName(`tables-${crypto.randomUUID()}`));
    await runInDurableObject(stub, async (instance) => {
      await instance.alarm();
      const decision = await instance.enter(SETTINGS, Date.now());
      expect(decision.retryAfter).toBeUndefined();
      expect(await instance.record(Date.now())).toBeUndefined();
    });
  });

  it("RefreshFamily answers that it knows no family instead of failing on a missing table", async () => {
    const stub = env.REFRESH_FAMILIES.get(env.REFRESH_FAMILIES.idFromName(`tables-${crypto.randomUUID()}`));
    await runInDurableObject(stub, async (instance) => {
      await instance.alarm();
      expect(await instance.state()).toBeUndefined();
    });
  });
});
