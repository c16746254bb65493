/** SQL and values of the `org:sso:*` admin commands; pure (the tests run the same statements in workerd). */
import { normalizeDomain } from "../../src/credentials/email";
import { sealSecret } from "../../src/dynamic-secrets/crypto";
import { ssoSecretOwner } from "../../src/sso/logins";
import { literal } from "./sql";
import { AdminInputError, domain as validDomain } from "./values";

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

/** An issuer URL: https, or http on loopback (a local provider); no query, fragment or credentials. */
export function issuer(raw: string | undefined): string {
  const value = (raw ?? "").trim();
  const url = URL.parse(value);
  const loopback = url !== null && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (
    !url ||
    !(url.protocol === "https:" || (url.protocol === "http:" && loopback)) ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  )
    throw new AdminInputError(
      `--issuer must be the identity provider's https issuer URL (e.g. https://login.example.com/tenant/v2.0), got ${JSON.stringify(value)}`,
    );
  // the issuer is compared exactly with the provider's discovery document and ID tokens: keep it as given
  return value;
}

/** An OAuth client id: 1–255 printable ASCII characters. */
export function clientId(raw: string | undefined): string {
  const value = (raw ?? "").trim();
  if (!/^[\x21-\x7e]{1,255}$/.test(value))
    throw new AdminInputError("--client-id must be 1–255 printable ASCII characters");
  return value;
}

/** A client secret as read from stdin: 1–1024 printable ASCII characters (one trailing newline dropped). */
export function clientSecret(raw: string): string {
  const value = raw.replace(/\r?\n$/, "");
  if (!/^[\x20-\x7e]{1,1024}$/.test(value))
    throw new AdminInputError("the client secret (stdin) must be 1–1024 printable ASCII characters");
  return value;
}

/** `--domains a.example,b.example`: distinct DNS names, normalised as logins compare them. */
export function domains(raw: string | undefined): string[] {
  const list = [
    ...new Set(
      (raw ?? "")
        .split(",")
        .map((entry) => normalizeDomain(entry))
        .filter(Boolean),
    ),
  ];
  if (list.length === 0 || list.length > 50) throw new AdminInputError("--domains needs 1–50 comma-separated domains");
  return list.map((entry) => validDomain(entry));
}

/** `--required yes|no`. */
export function required(raw: string | undefined): boolean {
  if (raw === "yes" || raw === "true") return true;
  if (raw === "no" || raw === "false") return false;
  throw new AdminInputError(`--required must be yes or no, got ${JSON.stringify(raw ?? "")}`);
}

/** Seals a client secret for `organisation` under the raw `SECRETS_KEY` bytes (AES-256-GCM, as dynamic secrets). */
export async function sealClientSecret(secretsKey: Uint8Array<ArrayBuffer>, organisation: string, secret: string) {
  const key = await crypto.subtle.importKey("raw", secretsKey, { name: "AES-GCM" }, false, ["encrypt"]);
  return sealSecret(key, ssoSecretOwner(organisation), secret);
}

/** An organisation's own domain (the default of `--domains`). */
export function organisationDomainQuery(organisation: string): string {
  return `SELECT domain FROM organisations WHERE identifier = ${literal(organisation)};`;
}

const ORGANISATION_ID = (organisation: string) =>
  `(SELECT id FROM organisations WHERE identifier = ${literal(organisation)})`;

/** The connection of an organisation (its secret sealed), its domains comma-separated, and how many members have a remembered identity. */
export function connectionQuery(organisation: string): string {
  return (
    `SELECT c.issuer, c.client_id, c.client_secret, c.required, c.created_at, c.updated_at, ` +
    `(SELECT group_concat(domain, ',') FROM sso_domains d WHERE d.organisation_id = c.organisation_id) AS domains, ` +
    `(SELECT count(*) FROM members m WHERE m.organisation_id = c.organisation_id AND m.sso_subject IS NOT NULL) AS pinned ` +
    `FROM sso_connections c WHERE c.organisation_id = ${ORGANISATION_ID(organisation)};`
  );
}

/** Domains of `domains` already routed to another organisation's connection. */
export function domainConflictsQuery(organisation: string, domains: readonly string[]): string {
  return (
    `SELECT d.domain, o.identifier FROM sso_domains d JOIN organisations o ON o.id = d.organisation_id ` +
    `WHERE d.domain IN (${domains.map(literal).join(", ")}) AND o.identifier <> ${literal(organisation)};`
  );
}

/** One `audit_events` row of an admin action on an organisation's connection, at D1's clock (ms). */
function auditSql(organisation: string, event: string, detail: Record<string, unknown>): string {
  const at = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";
  return (
    `INSERT INTO audit_events (at, event, outcome, organisation_id, request_id, detail) ` +
    `SELECT ${at}, ${literal(event)}, 'success', id, ${literal(`admin-${crypto.randomUUID()}`)}, ${literal(JSON.stringify({ ...detail, by: "admin" }))} ` +
    `FROM organisations WHERE identifier = ${literal(organisation)};`
  );
}

/**
 * Creates or replaces an organisation's connection and its domains, forgets the members' identities at any other
 * issuer (they belonged to the previous provider), and audits it (`sso.connection.set`): one batch.
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
    auditSql(input.organisation, "sso.connection.set", {
      issuer: input.issuer,
      clientId: input.clientId,
      domains: input.domains.join(","),
      required: input.required,
    }),
  ];
}

/** Removes an organisation's connection (its domains go with it) and the members' remembered identities; audited. */
export function removeConnectionSql(organisation: string): string[] {
  const organisationId = ORGANISATION_ID(organisation);
  return [
    `DELETE FROM sso_connections WHERE organisation_id = ${organisationId};`,
    `UPDATE members SET sso_issuer = NULL, sso_subject = NULL WHERE organisation_id = ${organisationId};`,
    auditSql(organisation, "sso.connection.removed", {}),
  ];
}
