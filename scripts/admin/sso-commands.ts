/** `org:sso:set`, `org:sso:show`, `org:sso:remove`: an organisation's OpenID Connect connection, in D1 through wrangler. */
import { readFileSync } from "node:fs";
import { D1Error, execute, query, type Target } from "./d1";
import * as sso from "./sso";
import { AdminInputError } from "./values";

/** The command line's values as the commands read them. */
export interface SsoCommandInput {
  organisation: string;
  option: (name: string) => string | undefined;
  secretFromStdin: boolean;
}

interface StoredConnection {
  issuer: string;
  client_id: string;
  client_secret: string;
  required: number;
  created_at: number;
  updated_at: number;
  domains: string | null;
  pinned: number;
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** `SECRETS_KEY` (raw bytes): from the environment, else (local only) from .dev.vars. */
function secretsKey(target: Target): Uint8Array<ArrayBuffer> {
  let raw = process.env.SECRETS_KEY;
  if (!raw && target.remote)
    throw new D1Error(
      "set SECRETS_KEY in the environment to the deployed gateway's secret (it seals the client secret)",
    );
  if (!raw) {
    try {
      raw = /^\s*SECRETS_KEY\s*=\s*"?([^"\r\n]*)"?\s*$/m.exec(readFileSync(`${ROOT}.dev.vars`, "utf8"))?.[1];
    } catch {
      raw = undefined;
    }
  }
  const bytes = raw ? Uint8Array.fromBase64(raw.trim(), { alphabet: "base64url" }) : undefined;
  if (bytes?.byteLength !== 32)
    throw new D1Error("no usable SECRETS_KEY (32 bytes of base64url) in the environment or .dev.vars");
  return bytes;
}

function stored(target: Target, organisation: string): StoredConnection | undefined {
  return query<StoredConnection>(target, sso.connectionQuery(organisation))[0];
}

function describe(connection: StoredConnection): string {
  return [
    `issuer ${connection.issuer}`,
    `client ${connection.client_id}`,
    `domains ${connection.domains ?? "(none)"}`,
    `required: ${connection.required ? "yes (passwords refused)" : "no (passwords still work)"}`,
  ].join(", ");
}

/** Creates or changes the connection; a new one needs --issuer, --client-id and the secret on stdin. */
export async function setConnection(
  target: Target,
  input: SsoCommandInput,
  organisationDomain: string,
): Promise<string> {
  const { organisation, option } = input;
  const before = stored(target, organisation);
  const issuerRaw = option("issuer");
  const clientIdRaw = option("client-id");
  if (!before && (issuerRaw === undefined || clientIdRaw === undefined || !input.secretFromStdin))
    throw new AdminInputError(
      "a new connection needs --issuer, --client-id and --client-secret-stdin (the secret piped in, never on the command line)",
    );
  const issuer = issuerRaw === undefined ? before!.issuer : sso.issuer(issuerRaw);
  const clientId = clientIdRaw === undefined ? before!.client_id : sso.clientId(clientIdRaw);
  const domains =
    option("domains") === undefined
      ? (before?.domains?.split(",") ?? [organisationDomain])
      : sso.domains(option("domains"));
  const required = option("required") === undefined ? Boolean(before?.required) : sso.required(option("required"));
  const sealedSecret = input.secretFromStdin
    ? await sso.sealClientSecret(secretsKey(target), organisation, sso.clientSecret(readFileSync(0, "utf8")))
    : before!.client_secret;
  const conflicts = query<{ domain: string; identifier: string }>(
    target,
    sso.domainConflictsQuery(organisation, domains),
  );
  if (conflicts.length > 0)
    throw new AdminInputError(
      `already routed to another organisation: ${conflicts.map((row) => `${row.domain} (${row.identifier})`).join(", ")}`,
    );
  execute(target, sso.setConnectionSql({ organisation, issuer, clientId, sealedSecret, required, domains }));
  const after = stored(target, organisation);
  if (!after || after.issuer !== issuer) throw new D1Error("the connection was not written; run the command again");
  const forgotten = before && before.issuer !== issuer ? "; members' identities at the previous issuer forgotten" : "";
  return `organisation ${organisation}: single sign-on ${before ? "changed" : "connected"}: ${describe(after)}${forgotten}. Redirect URI to register at the provider: https://<gateway host>/authenticate/sso/callback`;
}

/** Prints the connection, never its secret. */
export function showConnection(target: Target, organisation: string): string {
  const connection = stored(target, organisation);
  if (!connection) return `organisation ${organisation}: no single sign-on connection`;
  const at = (seconds: number) => new Date(seconds * 1000).toISOString();
  return `organisation ${organisation}: ${describe(connection)}, client secret sealed under SECRETS_KEY, ${connection.pinned} member(s) signed in by SSO so far, set ${at(connection.created_at)}, changed ${at(connection.updated_at)}`;
}

/** Removes the connection and the members' remembered identities. */
export function removeConnection(target: Target, organisation: string): string {
  if (!stored(target, organisation))
    throw new AdminInputError(`organisation ${organisation} has no single sign-on connection`);
  execute(target, sso.removeConnectionSql(organisation));
  if (stored(target, organisation)) throw new D1Error("the connection is still there; run the command again");
  return `organisation ${organisation}: single sign-on removed; its members sign in with passwords again (sessions started by SSO keep running until they end)`;
}
