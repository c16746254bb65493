// The runtime body validators (src/http/fields.ts via the routes) and the documented request schemas
// (src/openapi/schemas.ts, from which openapi.json is generated) accept and refuse the same bodies.
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { GatewayError } from "../src/gateway-error";
import { CreateSecretRequest, LoginRequest, RefreshRequest, RevokeRequest } from "../src/openapi/schemas";
import { parseLoginBody } from "../src/routes/authenticate";
import { parseCreateSecretBody } from "../src/routes/secrets";
import { parseRefreshBody, parseRevokeBody } from "../src/routes/tokens";

/** The runtime's answer: the parsed body, or the 400's detail. */
function runtime(parse: (raw: unknown) => unknown, body: unknown): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: parse(body) };
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe("invalid_request");
    expect((error as GatewayError).message).toMatch(/^Invalid [a-z_]+|^Invalid body/);
    return { ok: false };
  }
}

/** Both accept with the same fields, or both refuse. */
function expectAgree(schema: z.ZodType, parse: (raw: unknown) => unknown, body: unknown, valid: boolean): void {
  const documented = schema.safeParse(body);
  const actual = runtime(parse, body);
  expect(documented.success, `document on ${JSON.stringify(body)}`).toBe(valid);
  expect(actual.ok, `runtime on ${JSON.stringify(body)}`).toBe(valid);
  if (documented.success && actual.ok) expect(actual.value).toEqual(documented.data);
}

const long = (n: number, c = "x") => c.repeat(n);
const form = (fields: Record<string, string>) => Object.fromEntries(new URLSearchParams(fields));

const CASES: [string, z.ZodType, (raw: unknown) => unknown, [unknown, boolean][]][] = [
  [
    "POST /authenticate",
    LoginRequest,
    parseLoginBody,
    [
      [{ email: "a@b.c", password: "p" }, true],
      [{ email: "a@b.c", password: "p", domain: "acme.example" }, true],
      [{ email: "a@b.c", password: "p", extra: 1 }, true],
      [form({ email: "a@b.c", password: "p", domain: "d" }), true],
      [{ email: long(320), password: "é".repeat(512) }, true],
      [{ email: "a@b.c", password: "😀".repeat(256) }, true],
      [{ email: "a@b.c", password: "x", domain: long(253) }, true],
      [{ email: "a@b.c" }, false],
      [{ password: "p" }, false],
      [{ email: 1, password: "p" }, false],
      [{ email: "a@b.c", password: ["p"] }, false],
      [{ email: "a@b.c", password: "p", domain: null }, false],
      [{ email: "a@b.c", password: "p", domain: "" }, false],
      [{ email: "a@b.c", password: "p", domain: long(254) }, false],
      [{ email: "", password: "p" }, false],
      [{ email: long(321), password: "p" }, false],
      [{ email: "a@b.c", password: "" }, false],
      [{ email: "a@b.c", password: "é".repeat(512) + "x" }, false],
      [{ email: "a@b.c", password: "😀".repeat(256) + "x" }, false],
      [[], false],
      ["x", false],
      [null, false],
      [42, false],
    ],
  ],
  [
    "POST /authenticate/refresh",
    RefreshRequest,
    parseRefreshBody,
    [
      [{ refresh_token: "ggr_x" }, true],
      [{ refresh_token: "ggr_x", grant_type: "refresh_token" }, true],
      [form({ refresh_token: "r", grant_type: "refresh_token" }), true],
      [{ refresh_token: long(10_000) }, true],
      [{}, false],
      [{ refresh_token: "" }, false],
      [{ refresh_token: null }, false],
      [{ refresh_token: 5 }, false],
      [{ token: "ggr_x" }, false],
      [[], false],
      [null, false],
    ],
  ],
  [
    "POST /authenticate/revoke",
    RevokeRequest,
    parseRevokeBody,
    [
      [{}, true],
      [{ refresh_token: "r" }, true],
      [{ token: "r", token_type_hint: "refresh_token" }, true],
      [{ all: true }, true],
      [{ all: false, token: "t" }, true],
      [form({ all: "true" }), true],
      [form({ all: "false", refresh_token: "r" }), true],
      [{ token_type_hint: long(64) }, true],
      [{ other: "ignored" }, true],
      [{ refresh_token: "" }, false],
      [{ token: "" }, false],
      [{ token: 5 }, false],
      [{ token_type_hint: long(65) }, false],
      [{ all: "yes", token: "x" }, false],
      [form({ all: "1" }), false],
      [{ all: 1 }, false],
      [{ all: null }, false],
      [[], false],
      ["x", false],
    ],
  ],
  [
    "POST /authenticate/secrets",
    CreateSecretRequest,
    parseCreateSecretBody,
    [
      [{}, true],
      [{ label: "ci" }, true],
      [{ label: "" }, true],
      [{ label: long(100) }, true],
      [{ label: "tab\u00a0é 😀" }, true],
      [form({ label: "ci" }), true],
      [{ label: long(101) }, false],
      [{ label: "a\nb" }, false],
      [{ label: "a\u007fb" }, false],
      [{ label: "\u0000" }, false],
      [{ label: 3 }, false],
      [{ label: null }, false],
      [{ name: "typo" }, false],
      [{ label: "ci", extra: true }, false],
      [[], false],
      [null, false],
    ],
  ],
];

describe("runtime body validators agree with the documented request schemas", () => {
  for (const [route, schema, parse, cases] of CASES) {
    it.each(cases)(`${route}: %j → valid %s`, (body, valid) => {
      expectAgree(schema, parse, body, valid);
    });
  }
});

describe("the 400 names the first bad field", () => {
  it.each([
    [parseLoginBody, { email: "a@b.c" }, "Invalid password: Invalid input: expected string, received undefined."],
    [parseLoginBody, { email: "", password: "" }, "Invalid email: Too small: expected string to have >=1 characters."],
    [parseLoginBody, { email: "a", password: "é".repeat(513) }, "Invalid password: must be at most 1024 bytes."],
    [parseLoginBody, [], "Invalid body: Invalid input: expected object, received array."],
    [parseRevokeBody, { all: "yes" }, "Invalid all: Invalid input."],
    [parseCreateSecretBody, { label: "a\nb" }, "Invalid label: must not contain control characters."],
    [parseCreateSecretBody, { name: "x" }, 'Invalid body: Unrecognized key: "name".'],
  ] as [(raw: unknown) => unknown, unknown, string][])("%#", (parse, body, detail) => {
    expect(() => parse(body)).toThrow(detail);
  });
});
