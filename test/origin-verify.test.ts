// The origin integration example (examples/origin-verify) accepts exactly what the gateway really forwards.
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { verifyGatewayAssertion } from "../examples/origin-verify/verify-assertion";
import { ORIGIN, fakeOrigin, fixedClaims, gateway, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

it("verifies a real forwarded request, and refuses it replayed elsewhere or with forged headers", async () => {
  const seen = fakeOrigin();
  const token = await signWithJose(fixedClaims());
  const response = await gateway("/grids/12/cells?view=full", {
    headers: { Authorization: `Bearer ${token}`, "X-Member-Entity-Identifier": "forged" },
  });
  expect(response.status).toBe(200);
  expect(seen).toHaveLength(1);
  const forwarded = seen[0]!;
  expect(forwarded.url).toBe(`${ORIGIN}/grids/12/cells?view=full`);
  expect(forwarded.headers["x-member-entity-identifier"]).toBe("o6q2is");
  const request = new Request(forwarded.url, { method: forwarded.method, headers: forwarded.headers });

  const identity = await verifyGatewayAssertion(request, { secret: env.ASSERTION_SECRET! });
  expect(identity).toMatchObject({
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: ["architect"],
    secretType: "fixed",
  });
  expect(identity.requestId).toBe(response.headers.get("X-Request-Id"));

  await expect(
    verifyGatewayAssertion(new Request(forwarded.url.replace("/12/", "/13/"), request), {
      secret: env.ASSERTION_SECRET!,
    }),
  ).rejects.toThrow();
  await expect(
    verifyGatewayAssertion(new Request(request, { method: "DELETE" }), { secret: env.ASSERTION_SECRET! }),
  ).rejects.toThrow();
  const forged = new Headers(forwarded.headers);
  forged.set("X-Organisation-Entity-Identifier", "q1w2e3");
  await expect(
    verifyGatewayAssertion(new Request(forwarded.url, { headers: forged }), { secret: env.ASSERTION_SECRET! }),
  ).rejects.toThrow();
  await expect(
    verifyGatewayAssertion(request, { secret: "another-secret-0123456789abcdef0123456789" }),
  ).rejects.toThrow();
});
