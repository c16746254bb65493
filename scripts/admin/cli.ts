/** `npm run admin -- <command> [options]`: the command line, the commands, and what each prints; every command is one signed request to the gateway. */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { MAX_BODY_BYTES } from "../../src/http/body";
import { ImportFileError, parseImport, type ImportRow } from "./csv";
import { jsonLines, pairs, table, utc, utcSeconds } from "./format";
import { callAdmin, GatewayRefusal, GatewayUnreachable, type Surroundings, type Target } from "./gateway";

/** A mistake on the command line; nothing was sent. */
class UsageError extends Error {
  override name = "UsageError";
}

/** What a command works with: its options, the gateway, stdin and files. */
interface Invocation {
  options: Readonly<Record<string, string | undefined>>;
  flags: ReadonlySet<string>;
  /** `[local]` or `[remote]`, appended to one-line results. */
  where: string;
  call(route: string, body: unknown): Promise<Record<string, any>>;
  password(): string;
  /** All of stdin. */
  stdin(): string;
}

interface Command {
  /** Options after the command name, as the usage shows them. */
  usage: string;
  /** What it does, in a few words. */
  summary: string;
  /** String options it takes; those in `required` must be given. */
  options: readonly string[];
  required: readonly string[];
  /** Boolean flags it takes besides `--remote`, `--env`, `--gateway`, `--help`. */
  flags?: readonly string[];
  run(invocation: Invocation): Promise<string>;
}

const ROLES = "architect|builder|user|none";
const PLANS = "free|professional|enterprise";
/** Rows `audit` prints unless `--limit` says otherwise. */
const DEFAULT_AUDIT_LIMIT = 50;
/** Most rows one `audit` prints (`--limit`); export more by copying the R2 objects (docs/operating.md § Audit trail). */
const MAX_AUDIT_LIMIT = 100_000;
/** A `member:import` request's body stays this far under the gateway's body limit. */
const IMPORT_BODY_BYTES = MAX_BODY_BYTES - 1024;

/** Every page of a listing route (`after` cursor), concatenated. */
async function allPages(
  invocation: Invocation,
  route: string,
  body: Record<string, unknown>,
  key: string,
): Promise<Record<string, any>[]> {
  const rows: Record<string, any>[] = [];
  let after = 0;
  for (;;) {
    const answer = await invocation.call(route, { ...body, ...(after ? { after } : {}) });
    rows.push(...(answer[key] as Record<string, any>[]));
    if (answer.next === null || answer.next === undefined) return rows;
    after = answer.next as number;
  }
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `now` (`30m`, `1h`, `7d`) or a UTC date or date-time (`2026-12-01`, `2026-12-01T09:30`). */
export function parseSince(raw: string, now: number): number {
  const relative = /^(\d{1,9})([smhd])$/.exec(raw.trim());
  if (relative) return now - Number(relative[1]) * UNITS[relative[2]!]!;
  const absolute = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(raw.trim());
  const at = absolute ? Date.parse(absolute[0].includes("T") && !absolute[1] ? `${absolute[0]}Z` : absolute[0]) : NaN;
  if (!Number.isFinite(at))
    throw new UsageError(
      `--since must be a duration (30m, 1h, 7d) or a UTC date (2026-12-01, 2026-12-01T09:30), got ${JSON.stringify(raw)}`,
    );
  return at;
}

function positiveInteger(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= max)) throw new UsageError(`--${name} must be a whole number from 1 to ${max}`);
  return value;
}

/** `rows` (validated import rows) in consecutive batches whose request bodies stay under the gateway's limit. */
export function importBatches(org: string, rows: readonly ImportRow[]): ImportRow[][] {
  const size = (batch: ImportRow[]) =>
    new TextEncoder().encode(JSON.stringify(importBody(org, batch, true))).byteLength;
  const batches: ImportRow[][] = [];
  let batch: ImportRow[] = [];
  for (const row of rows) {
    if (batch.length > 0 && size([...batch, row]) > IMPORT_BODY_BYTES) {
      batches.push(batch);
      batch = [];
    }
    batch.push(row);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function importBody(org: string, rows: readonly ImportRow[], check: boolean) {
  return {
    org,
    members: rows.map((row) => ({
      email: row.email,
      role: row.role ?? "none",
      scopes: row.scopes,
      bcrypt_hash: row.passwordHash,
    })),
    ...(check ? { check } : {}),
  };
}

function readImportFile(path: string): ImportRow[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parseImport(text);
}

/** `--required yes|no` as the gateway takes it; undefined when not given. */
function yesOrNo(name: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  if (raw === "yes" || raw === "no") return raw === "yes";
  throw new UsageError(`--${name} must be yes or no, got ${JSON.stringify(raw)}`);
}

/** A single sign-on connection as the gateway answered it, in one line (never its secret). */
function describeConnection(connection: Record<string, any>): string {
  const required = connection.required ? "yes (passwords refused)" : "no (passwords still work)";
  return `issuer ${connection.issuer}, client ${connection.client_id}, domains ${connection.domains.join(",")}, required: ${required}`;
}

const memberOf = (invocation: Invocation) => ({ org: invocation.options.org, email: invocation.options.email });

/** Every command, by name. */
const COMMANDS: Record<string, Command> = {
  "org:create": {
    usage: `--identifier <id> --name <name> --domain <domain> --plan <${PLANS}>`,
    summary: "a new organisation",
    options: ["identifier", "name", "domain", "plan"],
    required: ["identifier", "name", "domain", "plan"],
    async run(invocation) {
      const { identifier, name, domain, plan } = invocation.options;
      const { organisation } = await invocation.call("org/create", { identifier, name, domain, plan });
      return `created organisation ${organisation.identifier} (${organisation.domain}, ${organisation.plan}) ${invocation.where}`;
    },
  },
  "org:list": {
    usage: "[--json]",
    summary: "every organisation, with its plan, status and number of members",
    options: [],
    required: [],
    flags: ["json"],
    async run(invocation) {
      const rows = await allPages(invocation, "org/list", {}, "organisations");
      if (invocation.flags.has("json")) return jsonLines(rows);
      return table(
        rows,
        [
          { heading: "ORGANISATION", value: (row) => row.identifier },
          { heading: "NAME", value: (row) => row.name, max: 40 },
          { heading: "DOMAIN", value: (row) => row.domain },
          { heading: "PLAN", value: (row) => row.plan },
          { heading: "STATUS", value: (row) => row.status },
          { heading: "MEMBERS", value: (row) => row.members },
          { heading: "CREATED", value: (row) => utcSeconds(row.created_at) },
        ],
        "no organisations",
      );
    },
  },
  "org:plan": {
    usage: "--org <id> --plan <plan>",
    summary: "moves an organisation to another plan (leaving the API plans ends its tokens and sessions)",
    options: ["org", "plan"],
    required: ["org", "plan"],
    async run(invocation) {
      const { org, plan } = invocation.options;
      const answer = await invocation.call("org/plan", { org, plan });
      const effect = answer.revoked
        ? "no API access: every token and session ended (access tokens refused within 60 s everywhere)"
        : "sessions kept; running gateways apply the plan within 60 s";
      return `organisation ${answer.organisation}: plan ${answer.from} → ${answer.to}; ${effect} ${invocation.where}`;
    },
  },
  "org:suspend": {
    usage: "--org <id>",
    summary: "suspends an organisation: every member's tokens and sessions end",
    options: ["org"],
    required: ["org"],
    async run(invocation) {
      const answer = await invocation.call("org/suspend", { org: invocation.options.org });
      return `organisation ${answer.organisation}: ${answer.from} → suspended; every token and session ended (access tokens refused within 60 s everywhere) ${invocation.where}`;
    },
  },
  "org:activate": {
    usage: "--org <id>",
    summary: "re-activates a suspended organisation",
    options: ["org"],
    required: ["org"],
    async run(invocation) {
      const answer = await invocation.call("org/activate", { org: invocation.options.org });
      return `organisation ${answer.organisation}: ${answer.from} → active ${invocation.where}`;
    },
  },
  "org:sso:set": {
    usage:
      "--org <id> [--issuer <url>] [--client-id <id>] [--domains a.example,b.example] [--required yes|no] [--client-secret-stdin]",
    summary:
      "connects an organisation to its identity provider, or changes that (docs/sso.md); the client secret from stdin",
    options: ["org", "issuer", "client-id", "domains", "required"],
    required: ["org"],
    flags: ["client-secret-stdin"],
    async run(invocation) {
      const { org, issuer, domains } = invocation.options;
      const answer = await invocation.call("org/sso/set", {
        org,
        issuer,
        client_id: invocation.options["client-id"],
        client_secret: invocation.flags.has("client-secret-stdin")
          ? invocation.stdin().replace(/\r?\n$/, "")
          : undefined,
        domains: domains?.split(",").filter((domain) => domain.trim() !== ""),
        required: yesOrNo("required", invocation.options.required),
      });
      const forgotten = answer.forgotten
        ? `; ${answer.forgotten} member(s)' identities at the previous issuer forgotten`
        : "";
      return [
        `organisation ${answer.organisation}: single sign-on ${answer.created ? "connected" : "changed"}: ${describeConnection(answer.connection)}${forgotten} ${invocation.where}`,
        `Redirect URI to register at the provider: ${answer.redirect_uri} (on the host browsers reach the gateway at)`,
      ].join("\n");
    },
  },
  "org:sso:show": {
    usage: "--org <id>",
    summary: "an organisation's single sign-on connection (never its client secret)",
    options: ["org"],
    required: ["org"],
    async run(invocation) {
      const { organisation, connection } = await invocation.call("org/sso/show", { org: invocation.options.org });
      if (!connection) return `organisation ${organisation}: no single sign-on connection ${invocation.where}`;
      return `organisation ${organisation}: ${describeConnection(connection)}, client secret sealed under SECRETS_KEY, ${connection.pinned} member(s) signed in by SSO so far, set ${utcSeconds(connection.created_at)}, changed ${utcSeconds(connection.updated_at)} ${invocation.where}`;
    },
  },
  "org:sso:remove": {
    usage: "--org <id>",
    summary: "removes an organisation's single sign-on connection; its members sign in with passwords again",
    options: ["org"],
    required: ["org"],
    async run(invocation) {
      const answer = await invocation.call("org/sso/remove", { org: invocation.options.org });
      return `organisation ${answer.organisation}: single sign-on removed (${answer.forgotten} remembered identities forgotten); its members sign in with passwords again (sessions started by SSO keep running until they end) ${invocation.where}`;
    },
  },
  "member:create": {
    usage: `--org <id> --email <email> --role <${ROLES}> [--scopes "getGrids grids"] [--password-stdin]`,
    summary: "a new member; the password from stdin, else $MEMBER_PASSWORD",
    options: ["org", "email", "role", "scopes"],
    required: ["org", "email", "role"],
    flags: ["password-stdin"],
    async run(invocation) {
      const { org, email, role, scopes } = invocation.options;
      const password = invocation.password();
      const { member } = await invocation.call("member/create", { org, email, role, scopes: scopes ?? "", password });
      const scope = [member.role, member.scopes].filter(Boolean).join(" ");
      return `created member ${member.identifier} ${member.email} (id ${member.id}) in ${org} (scope: ${scope}) ${invocation.where}`;
    },
  },
  "member:list": {
    usage: "--org <id> [--json]",
    summary: "the members of an organisation",
    options: ["org"],
    required: ["org"],
    flags: ["json"],
    async run(invocation) {
      const rows = await allPages(invocation, "member/list", { org: invocation.options.org }, "members");
      if (invocation.flags.has("json")) return jsonLines(rows);
      return table(
        rows,
        [
          { heading: "MEMBER", value: (row) => row.identifier },
          { heading: "ID", value: (row) => row.id },
          { heading: "EMAIL", value: (row) => row.email },
          { heading: "ROLE", value: (row) => row.role ?? "none" },
          { heading: "SCOPES", value: (row) => row.scopes, max: 40 },
          { heading: "STATUS", value: (row) => row.status },
          { heading: "CREATED", value: (row) => utcSeconds(row.created_at) },
        ],
        `no members in ${invocation.options.org}`,
      );
    },
  },
  "member:suspend": {
    usage: "--org <id> --email <email>",
    summary: "suspends a member: every session and access token ends",
    options: ["org", "email"],
    required: ["org", "email"],
    async run(invocation) {
      const { member, from } = await invocation.call("member/suspend", memberOf(invocation));
      return `member ${member.identifier} ${member.email}: ${from} → suspended; signed out everywhere (access tokens refused within 60 s) ${invocation.where}`;
    },
  },
  "member:activate": {
    usage: "--org <id> --email <email>",
    summary: "re-activates a suspended member",
    options: ["org", "email"],
    required: ["org", "email"],
    async run(invocation) {
      const { member, from } = await invocation.call("member/activate", memberOf(invocation));
      return `member ${member.identifier} ${member.email}: ${from} → active ${invocation.where}`;
    },
  },
  "member:sign-out": {
    usage: "--org <id> --email <email> | --member-id <id>",
    summary: "ends every session and access token of a member (--member-id: one already deleted)",
    options: ["org", "email", "member-id"],
    required: [],
    async run(invocation) {
      const { org, email } = invocation.options;
      const memberId = invocation.options["member-id"];
      if (memberId !== undefined) {
        if (org !== undefined || email !== undefined)
          throw new UsageError("give either --member-id or --org and --email");
        const answer = await invocation.call("member/sign-out", { member_id: memberId });
        return `member id ${answer.member_id}: every session ended, access tokens refused within 60 s ${invocation.where}`;
      }
      if (org === undefined || email === undefined) throw new UsageError("give --org and --email, or --member-id");
      const { member } = await invocation.call("member/sign-out", { org, email });
      return `member ${member.identifier} ${member.email}: every session ended, access tokens refused within 60 s ${invocation.where}`;
    },
  },
  "member:password": {
    usage: "--org <id> --email <email> [--password-stdin]",
    summary: "a new password (stdin, else $MEMBER_PASSWORD); ends every session and access token",
    options: ["org", "email"],
    required: ["org", "email"],
    flags: ["password-stdin"],
    async run(invocation) {
      const password = invocation.password();
      const { member } = await invocation.call("member/password", { ...memberOf(invocation), password });
      return `member ${member.identifier} ${member.email}: password changed, every session ended, access tokens refused within 60 s ${invocation.where}`;
    },
  },
  "member:delete": {
    usage: "--org <id> --email <email>",
    summary: "deletes a member and ends its sessions and access tokens",
    options: ["org", "email"],
    required: ["org", "email"],
    async run(invocation) {
      const { member } = await invocation.call("member/delete", memberOf(invocation));
      return `member ${member.identifier} ${member.email} (id ${member.id}) deleted; every session ended, access tokens refused within 60 s ${invocation.where}`;
    },
  },
  "member:unlock": {
    usage: "--email <email>",
    summary: "clears the email's failed-login back-off (all organisations) at once",
    options: ["email"],
    required: ["email"],
    async run(invocation) {
      const { unlocked } = await invocation.call("member/unlock", { email: invocation.options.email });
      const before = unlocked.wasLocked
        ? `was locked after ${unlocked.failures} failed logins`
        : `had ${unlocked.failures} failed logins, not locked`;
      return `${invocation.options.email}: ${before}; may log in again now ${invocation.where}`;
    },
  },
  "member:import": {
    usage: "--org <id> --file <members.csv>",
    summary: "members with their bcrypt hashes; columns email,role,scopes,bcrypt_hash",
    options: ["org", "file"],
    required: ["org", "file"],
    async run(invocation) {
      const org = invocation.options.org!;
      const rows = readImportFile(invocation.options.file!);
      const batches = importBatches(org, rows);
      const existing: string[] = [];
      for (const batch of batches)
        existing.push(...((await invocation.call("member/import", importBody(org, batch, true))).existing as string[]));
      if (existing.length > 0)
        throw new GatewayRefusal(
          400,
          "invalid_request",
          `already members of ${org}: ${existing.join(", ")}`,
          undefined,
        );
      let imported = 0;
      for (const batch of batches) {
        try {
          imported += ((await invocation.call("member/import", importBody(org, batch, false))).imported as unknown[])
            .length;
        } catch (error) {
          if (imported === 0) throw error;
          const next = batch[0]!.line;
          throw new GatewayUnreachable(
            `${(error as Error).message}; ${imported} row(s) before line ${next} were imported, the rest were not: import the file's lines from ${next} on`,
          );
        }
      }
      return `imported ${imported} member(s) into ${org} in ${batches.length} request(s); bcrypt hashes are upgraded at each member's next login ${invocation.where}`;
    },
  },
  "secret:create": {
    usage: "--org <id> [--label <label>] [--json]",
    summary: "a dynamic secret for the organisation's integration, shown this once",
    options: ["org", "label"],
    required: ["org"],
    flags: ["json"],
    async run(invocation) {
      const { org, label } = invocation.options;
      const answer = await invocation.call("secret/create", { org, label: label ?? "" });
      if (invocation.flags.has("json")) return JSON.stringify(answer);
      return [
        `created dynamic secret ${answer.kid} for ${answer.organisationEntityIdentifier}${answer.label ? ` (${answer.label})` : ""} ${invocation.where}`,
        `kid:    ${answer.kid}`,
        `secret: ${answer.secret}`,
        "The secret is shown this once: hand it to the integration now (it signs HS256 tokens with it).",
      ].join("\n");
    },
  },
  "secret:list": {
    usage: "--org <id> [--json]",
    summary: "the organisation's live dynamic secrets (never their values)",
    options: ["org"],
    required: ["org"],
    flags: ["json"],
    async run(invocation) {
      const { secrets } = await invocation.call("secret/list", { org: invocation.options.org });
      if (invocation.flags.has("json")) return jsonLines(secrets);
      return table(
        secrets as Record<string, any>[],
        [
          { heading: "KID", value: (row) => row.kid },
          { heading: "LABEL", value: (row) => row.label, max: 40 },
          { heading: "CREATED", value: (row) => utcSeconds(row.created_at) },
          {
            heading: "CREATED BY",
            value: (row) => (row.created_by === null ? "operator" : `member ${row.created_by}`),
          },
        ],
        `no live secrets in ${invocation.options.org}`,
      );
    },
  },
  "secret:revoke": {
    usage: "--org <id> --kid <kid>",
    summary: "revokes a dynamic secret: its tokens are refused within 55 s everywhere",
    options: ["org", "kid"],
    required: ["org", "kid"],
    async run(invocation) {
      const { org, kid } = invocation.options;
      await invocation.call("secret/revoke", { org, kid });
      return `secret ${kid} of ${org} revoked; its tokens are refused here at once, everywhere within 55 s ${invocation.where}`;
    },
  },
  audit: {
    usage: "[--org <id>] [--member <id>] [--event <name|prefix.*>] [--since 1h|2026-12-01] [--limit N] [--json]",
    summary: `the audit trail, newest first (default the last ${DEFAULT_AUDIT_LIMIT} events)`,
    options: ["org", "member", "event", "since", "limit"],
    required: [],
    flags: ["json"],
    async run(invocation) {
      const { org, member, event } = invocation.options;
      const since =
        invocation.options.since === undefined ? undefined : parseSince(invocation.options.since, Date.now());
      const limit = positiveInteger("limit", invocation.options.limit, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT);
      const events: Record<string, any>[] = [];
      let before: { at: number; id: string } | undefined;
      while (events.length < limit) {
        const answer = await invocation.call("audit", {
          org,
          member,
          event,
          since,
          before,
          limit: Math.min(500, limit - events.length),
        });
        events.push(...(answer.events as Record<string, any>[]));
        if (!answer.next) break;
        before = answer.next as { at: number; id: string };
      }
      if (invocation.flags.has("json")) return jsonLines(events);
      return table(
        events,
        [
          { heading: "TIME (UTC)", value: (row) => utc(row.at) },
          { heading: "EVENT", value: (row) => row.event },
          { heading: "OUTCOME", value: (row) => row.outcome },
          { heading: "BY", value: (row) => row.detail?.actor ?? "" },
          {
            heading: "ORGANISATION",
            value: (row) => row.organisation ?? row.detail?.organisation ?? row.organisation_id ?? "",
          },
          { heading: "MEMBER", value: (row) => row.member ?? row.detail?.member ?? row.member_id ?? "" },
          { heading: "IP", value: (row) => row.ip },
          { heading: "DETAIL", value: (row) => pairs(row.detail, ["actor", "organisation", "member"]), max: 60 },
          { heading: "REQUEST", value: (row) => row.request_id },
        ],
        "no audit events match",
      );
    },
  },
};

const COMMON_OPTIONS = ["gateway", "env"];
const COMMON_FLAGS = ["remote", "help"];

/** The usage text: every command with its options. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.usage}\n  ${" ".repeat(width)}  ${command.summary}`,
  );
  return `Usage: npm run admin -- <command> [options] [--remote | --env <name>] [--gateway <url>]

${lines.join("\n")}

Each command is one signed request to the gateway, which validates it, writes D1, revokes and audits.
Locally: the gateway of npm run dev (${"http://127.0.0.1:8787"}), ADMIN_SECRET from the environment, else .dev.vars.
--remote: the deployed gateway at --gateway https://… or GATEWAY_URL, ADMIN_SECRET from the environment;
--env <name> (implies --remote) also reads ADMIN_SECRET from .secrets/<name>.env.
Exit status: 0 done, 2 bad input (nothing written), 1 the gateway could not be asked or failed.`;
}

/** Edit distance, for suggesting the command meant. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The command closest to `name`, when one is close enough to be what was meant. */
export function closestCommand(name: string): string | undefined {
  const [best] = Object.keys(COMMANDS)
    .map((command) => ({ command, cost: distance(name.toLowerCase(), command) }))
    .sort((a, b) => a.cost - b.cost);
  return best && best.cost <= Math.max(2, Math.floor(best.command.length / 3)) ? best.command : undefined;
}

/** A parsed command line. */
interface CommandLine {
  command: string | undefined;
  options: Record<string, string | undefined>;
  flags: Set<string>;
}

/** Reads `argv`; throws {@link UsageError} for an unknown command or option, or one the command does not take. */
function parseCommandLine(argv: readonly string[]): CommandLine {
  const stringOptions = new Set([...COMMON_OPTIONS, "password", "client-secret"]);
  const flagNames = new Set([...COMMON_FLAGS]);
  for (const command of Object.values(COMMANDS)) {
    command.options.forEach((name) => stringOptions.add(name));
    command.flags?.forEach((name) => flagNames.add(name));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries([
        ...[...stringOptions].map((name) => [name, { type: "string" as const }]),
        ...[...flagNames].map((name) => [name, { type: "boolean" as const }]),
      ]),
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const [command, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const options: Record<string, string | undefined> = {};
  const flags = new Set<string>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === "string") options[name] = value;
    else if (value === true) flags.add(name);
  }
  if (options.password !== undefined)
    throw new UsageError(
      "--password is refused: argv ends up in shell history and process lists; use --password-stdin or MEMBER_PASSWORD",
    );
  if (options["client-secret"] !== undefined)
    throw new UsageError(
      "--client-secret is refused: argv ends up in shell history and process lists; pipe it in with --client-secret-stdin",
    );
  if (flags.has("help")) return { command, options, flags };
  if (command === undefined) throw new UsageError("no command");
  const spec = COMMANDS[command];
  if (!spec) {
    const closest = closestCommand(command);
    throw new UsageError(`unknown command ${command}${closest ? `; did you mean ${closest}?` : ""}`);
  }
  const allowed = new Set([...spec.options, ...COMMON_OPTIONS, ...(spec.flags ?? []), ...COMMON_FLAGS]);
  for (const name of [...Object.keys(options), ...flags])
    if (!allowed.has(name)) throw new UsageError(`${command} takes no --${name}`);
  for (const name of spec.required)
    if (options[name] === undefined || options[name]!.trim() === "") throw new UsageError(`${command} needs --${name}`);
  return { command, options, flags };
}

/** Where a command's output and its password come from; tests pass their own. */
export interface AdminIo {
  surroundings: Surroundings;
  out(text: string): void;
  err(text: string): void;
  /** All of stdin. */
  stdin(): string;
}

/** The target of a command line: `--env` names a deployed environment and implies `--remote`. */
function targetOf(line: CommandLine, env: Record<string, string | undefined>): Target {
  const remote = line.flags.has("remote") || line.options.env !== undefined;
  const name = line.options.env ?? (remote ? env.CLOUDFLARE_ENV : undefined);
  if (name !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw new UsageError(`--env must be an environment name such as staging, got ${JSON.stringify(name)}`);
  return { remote, env: name, gateway: line.options.gateway };
}

/** Runs `npm run admin -- <argv>` and returns its exit status: 0 done, 2 bad input, 1 the gateway failed. */
export async function runAdmin(argv: readonly string[], io: AdminIo): Promise<number> {
  try {
    const line = parseCommandLine(argv);
    if (line.flags.has("help")) {
      io.out(usage());
      return 0;
    }
    const target = targetOf(line, io.surroundings.env);
    const invocation: Invocation = {
      options: line.options,
      flags: line.flags,
      where: target.remote ? "[remote]" : "[local]",
      call: (route, body) => callAdmin(target, io.surroundings, route, body),
      stdin: () => io.stdin(),
      password() {
        if (line.flags.has("password-stdin")) return io.stdin().replace(/\r?\n$/, "");
        const fromEnv = io.surroundings.env.MEMBER_PASSWORD;
        if (fromEnv) return fromEnv;
        throw new UsageError("no password: pipe it in with --password-stdin, or set MEMBER_PASSWORD");
      },
    };
    io.out(await COMMANDS[line.command!]!.run(invocation));
    return 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof ImportFileError) {
      io.err(`error: ${error.message}\n(npm run admin -- --help for usage; nothing was sent)`);
      return 2;
    }
    if (error instanceof GatewayRefusal) {
      const id = error.requestId ? `; request ${error.requestId}` : "";
      if (error.badInput) {
        io.err(`error: ${error.message} (${error.status} ${error.code}${id}; nothing was written)`);
        return 2;
      }
      io.err(`error: the gateway answered ${error.status} ${error.code}: ${error.message}${id}; run the command again`);
      return 1;
    }
    if (error instanceof GatewayUnreachable) {
      io.err(`error: ${error.message}`);
      return 1;
    }
    throw error;
  }
}
