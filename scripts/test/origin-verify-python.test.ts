// The Python origin example (examples/origin-verify/verify_assertion.py, PyJWT's PyJWKClient) accepts the assertions
// the gateway's own code signs and refuses forged ones. Runs python3 with PyJWT; skipped, saying so, without it.
import "../admin/node-base64";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { parseConfig, type Bindings } from "../../src/config";
import { signAssertion } from "../../src/proxy/assertion";
import { importAssertionKeys, type AssertionKeySet } from "../../src/tokens/assertion-keys";
import { importHmacKey } from "../../src/tokens/keys";
import type { AccessClaims } from "../../src/tokens/claims";
import { newAssertionKey, ROOT } from "../lib/deployment";

/** A python3 that has PyJWT 2.6 or later with `cryptography` (Debian: python3-jwt), or undefined. */
function pythonWithPyJwt(): string | undefined {
  const check = "import jwt, cryptography; assert tuple(map(int, jwt.__version__.split('.')[:2])) >= (2, 6)";
  for (const python of [process.env.PYTHON, "python3", "/usr/bin/python3"]) {
    if (python && spawnSync(python, ["-c", check], { encoding: "utf8" }).status === 0) return python;
  }
  return undefined;
}

const PYTHON = pythonWithPyJwt();
if (PYTHON === undefined)
  console.warn(
    "origin-verify-python: skipped, no python3 with PyJWT ≥ 2.6 and cryptography (apt-get install python3-jwt)",
  );

/** Serves the JWKS over HTTP on a free port and runs the example on each case; prints one verdict per case. */
const DRIVER = `
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, sys.argv[1])
from verify_assertion import gateway_jwks, verify_gateway_assertion

given = json.load(sys.stdin)
body = given["jwks"].encode()

class Jwks(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/jwk-set+json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
threading.Thread(target=server.serve_forever, daemon=True).start()
jwks = gateway_jwks(f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json")
verdicts = {}
for case in given["cases"]:
    try:
        claims = verify_gateway_assertion(case["method"], case["path"], case["headers"], jwks=jwks, secrets=case["secrets"])
        verdicts[case["name"]] = "accepted as " + claims["memberEntityIdentifier"]
    except Exception as error:
        verdicts[case["name"]] = "refused: " + type(error).__name__ + ": " + str(error)
server.shutdown()
print(json.dumps(verdicts))
`;

const SECRET = "python-example-assertion-secret-0123456789abcdef";
const CLAIMS: AccessClaims = {
  memberEntityId: 2549,
  memberEntityIdentifier: "o6q2is",
  organisationEntityIdentifier: "m7l9hw",
  scope: "architect",
  secretType: "fixed",
  jti: "token-1",
};
const PATH = "/api/grids/12?view=full";

interface Case {
  name: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  secrets: string[];
}

/** The gateway's keys for `alg` over one Ed25519 and one P-256 key (and `SECRET`), as its own code imports them. */
async function gatewayKeys(alg: string, keys: string): Promise<AssertionKeySet> {
  const config = parseConfig({
    JWT_SECRET: SECRET,
    PASSWORD_PEPPER: SECRET,
    ASSERTION_SECRET: SECRET,
    ASSERTION_KEYS: keys,
    ASSERTION_ALG: alg,
  } as unknown as Bindings);
  return importAssertionKeys(config, (secret) => importHmacKey(secret));
}

/** The headers of a request the gateway forwarded with `assertion`. */
function forwardedHeaders(assertion: string): Record<string, string> {
  return {
    "x-gateway-assertion": assertion,
    "x-member-entity-id": "2549",
    "x-member-entity-identifier": "o6q2is",
    "x-organisation-entity-identifier": "m7l9hw",
  };
}

const b64url = (value: string | Uint8Array) =>
  (typeof value === "string" ? new TextEncoder().encode(value) : value).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });

describe.skipIf(PYTHON === undefined)("examples/origin-verify/verify_assertion.py", () => {
  it("accepts what the gateway signs (EdDSA, ES256; HS256 with the secret) and refuses every forgery", async () => {
    const keys = `${newAssertionKey("EdDSA")},${newAssertionKey("ES256")}`;
    const now = Math.floor(Date.now() / 1000);
    const request = { method: "GET", path: PATH, requestId: "req-1" };
    const signed: Record<string, string> = {};
    let jwks = "";
    for (const alg of ["EdDSA", "ES256", "HS256"]) {
      const set = await gatewayKeys(alg, keys);
      jwks = set.jwks.body;
      signed[alg] = await signAssertion({ issuer: "gridgate" }, set.signer, CLAIMS, request, now);
    }
    const published = JSON.parse(jwks).keys as Record<string, string>[];
    const [header, payload] = signed.EdDSA!.split(".") as [string, string];
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(payload, { alphabet: "base64url" })));
    const protectedHeader = JSON.parse(
      new TextDecoder().decode(Uint8Array.fromBase64(header, { alphabet: "base64url" })),
    );
    const stranger = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign"])) as CryptoKeyPair;
    const sign = (key: CryptoKey | Uint8Array, headerChanges: Record<string, string>, claimChanges = {}) =>
      new SignJWT({ ...claims, ...claimChanges })
        .setProtectedHeader({ ...protectedHeader, ...headerChanges })
        .sign(key);
    const ownKey = await (await gatewayKeys("EdDSA", keys)).signer.key;
    const publicForms: [string, Uint8Array][] = [
      ["the public key's bytes", Uint8Array.fromBase64(published[0]!.x!, { alphabet: "base64url" })],
      ["its x as text", new TextEncoder().encode(published[0]!.x!)],
      ["its JWK as JSON", new TextEncoder().encode(JSON.stringify(published[0]))],
    ];

    const cases: (Case & { expected: "accepted" | "refused" })[] = [];
    const add = (name: string, assertion: string, expected: "accepted" | "refused", extra: Partial<Case> = {}) =>
      cases.push({
        name,
        method: "GET",
        path: PATH,
        headers: forwardedHeaders(assertion),
        secrets: [],
        expected,
        ...extra,
      });
    add("EdDSA as signed", signed.EdDSA!, "accepted");
    add("ES256 as signed", signed.ES256!, "accepted");
    add("HS256 with the secret", signed.HS256!, "accepted", { secrets: [SECRET] });
    add("HS256 with the secret as the previous one", signed.HS256!, "accepted", {
      secrets: ["next-secret-0123456789abcdef0123456789abc", SECRET],
    });
    add("HS256 without the secret", signed.HS256!, "refused");
    add("another method", signed.EdDSA!, "refused", { method: "DELETE" });
    add("another path", signed.EdDSA!, "refused", { path: "/api/grids/13?view=full" });
    add("a forged member header", signed.EdDSA!, "refused", {
      headers: { ...forwardedHeaders(signed.EdDSA!), "x-member-entity-identifier": "admin1" },
    });
    add("no assertion", "", "refused");
    add("a key not in the JWKS, under the published kid", await sign(stranger.privateKey, {}), "refused");
    add("a key not in the JWKS, under its own kid", await sign(stranger.privateKey, { kid: "stranger" }), "refused");
    add("alg: none", `${b64url(JSON.stringify({ ...protectedHeader, alg: "none" }))}.${payload}.`, "refused");
    for (const [form, bytes] of publicForms) {
      add(`HS256 signed with ${form}`, await sign(bytes, { alg: "HS256" }), "refused");
      add(`HS256 signed with ${form}, at an origin holding a secret`, await sign(bytes, { alg: "HS256" }), "refused", {
        secrets: [SECRET],
      });
    }
    add("the gateway's key under another kid", await sign(ownKey, { kid: "another-kid" }), "refused");
    add("the gateway's key under the P-256 key's kid", await sign(ownKey, { kid: published[1]!.kid! }), "refused");
    add("too old", await sign(ownKey, {}, { iat: now - 120, exp: now - 60 }), "refused");
    add("another typ", await sign(ownKey, { typ: "JWT" }), "refused");
    add("another audience", await sign(ownKey, {}, { aud: "gridgate" }), "refused");
    expect(cases.filter((entry) => entry.expected === "accepted").length).toBe(4);

    const run = spawnSync(PYTHON!, ["-c", DRIVER, join(ROOT, "examples/origin-verify")], {
      encoding: "utf8",
      input: JSON.stringify({ jwks, cases }),
      timeout: 20_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const verdicts = JSON.parse(run.stdout) as Record<string, string>;
    for (const { name, expected } of cases) expect(verdicts[name], name).toMatch(new RegExp(`^${expected}`));
  });
});
