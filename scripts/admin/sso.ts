/** What `npm run dev`'s seed (scripts/dev-seed.ts) needs to connect m7l9hw to the local OpenID Provider in SQL. */
import { sealSecret } from "../../src/dynamic-secrets/crypto";
import { ssoSecretOwner } from "../../src/sso/logins";

/** A SQL literal: an integer, NULL, or a quoted string. */
export function literal(value: string | number | null): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  if (value.includes("\0")) throw new Error("NUL in a SQL string");
  return `'${value.replaceAll("'", "''")}'`;
}

/** Seals a client secret for `organisation` under the raw `SECRETS_KEY` bytes, as `org/sso/set` does in the gateway. */
export async function sealClientSecret(secretsKey: Uint8Array<ArrayBuffer>, organisation: string, secret: string) {
  const key = await crypto.subtle.importKey("raw", secretsKey, { name: "AES-GCM" }, false, ["encrypt"]);
  return sealSecret(key, ssoSecretOwner(organisation), secret);
}
