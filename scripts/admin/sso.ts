/** SQL that seeds an organisation's single sign-on connection (`npm run dev`'s local provider, tests). */
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

/** A connection as `org:sso:set` writes it. */
export interface SsoConnectionInput {
  /** The organisation's identifier. */
  organisation: string;
  issuer: string;
  clientId: string;
  /** The client secret, already sealed under `SECRETS_KEY` ({@link sealClientSecret}). */
  sealedSecret: string;
  required: boolean;
  domains: string[];
}

/** Seals a client secret for `organisation` under the raw `SECRETS_KEY` bytes (AES-256-GCM, as dynamic secrets). */
export async function sealClientSecret(secretsKey: Uint8Array<ArrayBuffer>, organisation: string, secret: string) {
  const key = await crypto.subtle.importKey("raw", secretsKey, { name: "AES-GCM" }, false, ["encrypt"]);
  return sealSecret(key, ssoSecretOwner(organisation), secret);
}

const ORGANISATION_ID = (organisation: string) =>
  `(SELECT id FROM organisations WHERE identifier = ${literal(organisation)})`;

/**
 * Creates or replaces an organisation's connection and its domains, forgets the members' identities at any other
 * issuer (they belonged to the previous provider): one batch.
 */
export function setConnectionSql(input: SsoConnectionInput): string[] {
  const organisationId = ORGANISATION_ID(input.organisation);
  const required = input.required ? 1 : 0;
  return [
    `INSERT INTO sso_connections (organisation_id, issuer, client_id, client_secret, required) ` +
      `SELECT id, ${literal(input.issuer)}, ${literal(input.clientId)}, ${literal(input.sealedSecret)}, ${required} ` +
      `FROM organisations WHERE identifier = ${literal(input.organisation)} ` +
      `ON CONFLICT (organisation_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id, ` +
      `client_secret = excluded.client_secret, required = excluded.required, updated_at = unixepoch();`,
    `UPDATE members SET sso_issuer = NULL, sso_subject = NULL WHERE organisation_id = ${organisationId} ` +
      `AND sso_issuer IS NOT NULL AND sso_issuer <> ${literal(input.issuer)};`,
    `DELETE FROM sso_domains WHERE organisation_id = ${organisationId};`,
    `INSERT INTO sso_domains (domain, organisation_id) SELECT v.column1, o.id FROM (VALUES ${input.domains
      .map((entry) => `(${literal(entry)})`)
      .join(", ")}) AS v JOIN organisations o ON o.identifier = ${literal(input.organisation)};`,
  ];
}
