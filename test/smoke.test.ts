import { afterEach, expect, it, vi } from "vitest";
import { accessTokenFor, fakeOrigin, gateway } from "./helpers";

afterEach(() => vi.restoreAllMocks());

it("serves health and proxies an authorized request", async () => {
  expect((await gateway("/health")).status).toBe(200);
  const token = await accessTokenFor("architect@acme.example");
  const seen = fakeOrigin();
  const res = await gateway("/grids?x=1", { headers: { Authorization: `Bearer ${token}`, "X-Member-Entity-Id": "1" } });
  expect(res.status).toBe(200);
  expect(seen).toHaveLength(1);
  expect(seen[0]!.url).toBe("https://origin.test/api/grids?x=1");
  expect(seen[0]!.headers["x-member-entity-id"]).toBe("2549");
});
