// X-Gateway-Assertion: the per-token cached signer writes exactly what the generic signer writes.
import { describe, expect, it } from "vitest";
import { signAssertion, signAssertionReference } from "../src/proxy/assertion";
import type { AccessClaims } from "../src/tokens/claims";

const key = await crypto.subtle.importKey(
  "raw",
  new TextEncoder().encode("assertion-test-secret-0123456789abcdef"),
  { name: "HMAC", hash: "SHA-256" },
  false,
  ["sign"],
);

const claims: AccessClaims[] = [
  Object.freeze({
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: "architect getGrids",
    secretType: "fixed",
    jti: "t-1",
  }),
  Object.freeze({
    memberEntityIdentifier: "x.y_z-1",
    organisationEntityIdentifier: "org",
    scope: "",
    secretType: "dynamic",
  }),
];

const requests = [
  { method: "GET", path: "/grids/1", requestId: crypto.randomUUID() },
  { method: "POST", path: '/grids/%22q%22?a="b"&c=\\é', requestId: crypto.randomUUID() },
  { method: "DELETE", path: "/", requestId: crypto.randomUUID() },
];

describe("signAssertion", () => {
  it("is byte for byte the generic signer's token, for every claims object, request and issuer, cached or not", async () => {
    for (const issuer of ["gridgate", 'iss "quoted"', "gridgate"]) {
      for (const c of claims) {
        for (const request of requests) {
          const now = 1_800_000_000 + request.method.length;
          const fast = await signAssertion({ issuer }, key, c, request, now);
          expect(fast).toBe(await signAssertionReference({ issuer }, key, c, request, now));
          expect(await signAssertion({ issuer }, key, c, request, now), "second call (cached parts)").toBe(fast);
        }
      }
    }
  });
});
