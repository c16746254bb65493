/** Request-body validators (400 naming the field); test/fields.test.ts holds them to src/openapi/schemas.ts. */
import { GatewayError } from "../gateway-error";

/** A parsed JSON or form body whose fields are read one by one. */
export type Fields = Readonly<Record<string, unknown>>;

const encoder = new TextEncoder();

/** Throws 400 `invalid_request` naming `field` (the body when empty). */
export function invalidField(field: string, message: string): never {
  throw new GatewayError("invalid_request", `Invalid ${field || "body"}: ${message}.`);
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  return typeof value;
}

/** The body as an object with fields; anything else (an array, a string, null) is a 400. */
export function objectBody(raw: unknown): Fields {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    invalidField("", `Invalid input: expected object, received ${kindOf(raw)}`);
  }
  return raw as Fields;
}

/** A strict body: a field not in `known` is a 400. */
export function onlyFields(body: Fields, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    const names = unknown.map((key) => JSON.stringify(key)).join(", ");
    invalidField("", `Unrecognized key${unknown.length > 1 ? "s" : ""}: ${names}`);
  }
}

/** Rules of a string field: `min`/`max` in UTF-16 code units (as zod), `maxBytes` in UTF-8 bytes. */
export interface StringRules {
  min?: number;
  max?: number;
  maxBytes?: number;
  pattern?: { regex: RegExp; message: string };
}

function own(body: Fields, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined;
}

function checkString(value: unknown, name: string, rules: StringRules): string {
  if (typeof value !== "string") invalidField(name, `Invalid input: expected string, received ${kindOf(value)}`);
  if (rules.min !== undefined && value.length < rules.min) {
    invalidField(name, `Too small: expected string to have >=${rules.min} characters`);
  }
  if (rules.max !== undefined && value.length > rules.max) {
    invalidField(name, `Too big: expected string to have <=${rules.max} characters`);
  }
  if (rules.maxBytes !== undefined && value.length > rules.maxBytes / 3) {
    if (encoder.encode(value).byteLength > rules.maxBytes)
      invalidField(name, `must be at most ${rules.maxBytes} bytes`);
  }
  if (rules.pattern && !rules.pattern.regex.test(value)) invalidField(name, rules.pattern.message);
  return value;
}

/** A required string field. */
export function requiredString(body: Fields, name: string, rules: StringRules = {}): string {
  return checkString(own(body, name), name, rules);
}

/** An optional string field: absent (undefined) is fine, anything else must pass `rules`. */
export function optionalString(body: Fields, name: string, rules: StringRules = {}): string | undefined {
  const value = own(body, name);
  return value === undefined ? undefined : checkString(value, name, rules);
}

/** An optional boolean that a form may send as `"true"` / `"false"`. */
export function optionalFormBoolean(body: Fields, name: string): boolean | undefined {
  const value = own(body, name);
  if (value === undefined || typeof value === "boolean") return value;
  if (value === "true" || value === "false") return value === "true";
  return invalidField(name, "Invalid input");
}
