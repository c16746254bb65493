/** Operator commands for organisations and members: `npm run admin -- <command> [options] [--remote]`. */
import "./admin/node-base64";
import { readFileSync } from "node:fs";
import { hashPassword } from "../src/credentials/password";
import { parseImport } from "./admin/csv";
import { D1Error, execute, passwordPepper, query, type Target } from "./admin/d1";
import { GatewayUnreachable, revokeAccess, unlockLogin, type AccessRevocation } from "./admin/gateway";
import { organisationDomainQuery } from "./admin/sso";
import { removeConnection, setConnection, showConnection } from "./admin/sso-commands";
import * as sql from "./admin/sql";
import * as valid from "./admin/values";

const USAGE = `Usage: npm run admin -- <command> [options] [--remote | --persist-to <dir>] [--config wrangler.toml]

  org:create     --identifier <id> --name <name> --domain <domain> --plan <${valid.KNOWN_PLANS.join("|")}>
  org:plan       --org <id> --plan <plan>
  member:create  --org <id> --email <email> --role <architect|builder|user|none> [--scopes "getGrids grids"]
                 [--password-stdin]   password from stdin (e.g. a pipe), else from $MEMBER_PASSWORD
  member:suspend --org <id> --email <email>
  member:activate --org <id> --email <email>
  member:sign-out --org <id> --email <email>   ends every session and access token of the member
  member:sign-out --member-id <id>             the same for a member already deleted (id from member:delete)
  member:password --org <id> --email <email> [--password-stdin]
                 new password from stdin, else from $MEMBER_PASSWORD; ends every session and access token
  member:delete  --org <id> --email <email>    deletes the member; ends every session and access token
  member:unlock  --email <email>   clears the email's failed-login back-off (all organisations) at once
  member:import  --org <id> --file <members.csv>   columns: email,role,scopes,bcrypt_hash
  org:sso:set    --org <id> [--issuer <https URL>] [--client-id <id>] [--client-secret-stdin]
                 [--domains a.example,b.example] [--required yes|no]
                 OpenID Connect single sign-on (docs/sso.md); a new connection needs issuer, client id and the
                 secret piped in; domains default to the organisation's, required to no
  org:sso:show   --org <id>
  org:sso:remove --org <id>

Local D1 (.wrangler/state) by default; --remote writes to the deployed database. Passwords are hashed
with PASSWORD_PEPPER from the environment, else (local only) from .dev.vars.
member:suspend, member:sign-out, member:password, member:delete and org:plan also revoke access tokens
through the gateway's admin route, signed with ADMIN_SECRET (environment, else local .dev.vars) at
--gateway <url> or GATEWAY_URL (local default http://127.0.0.1:8787, i.e. npm run dev; --remote needs both);
member:unlock only calls that route.`;

const STRING_OPTIONS = new Set([
  "identifier",
  "name",
  "domain",
  "plan",
  "org",
  "email",
  "role",
  "scopes",
  "file",
  "password",
  "persist-to",
  "config",
  "gateway",
  "member-id",
  "issuer",
  "client-id",
  "domains",
  "required",
]);
const BOOLEAN_OPTIONS = new Set(["password-stdin", "client-secret-stdin", "remote", "help"]);

/** Parsed command line: `--name value` options, boolean flags, and the command. */
interface Values {
  command?: string;
  options: Map<string, string>;
  flags: Set<string>;
}

function parseCommandLine(argv: readonly string[]): Values {
  const values: Values = { options: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (name === undefined) {
      if (values.command !== undefined) throw new valid.AdminInputError(`unexpected argument ${JSON.stringify(arg)}`);
      values.command = arg;
    } else if (BOOLEAN_OPTIONS.has(name)) {
      values.flags.add(name);
    } else if (STRING_OPTIONS.has(name)) {
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new valid.AdminInputError(`--${name} needs a value`);
      if (values.options.has(name)) throw new valid.AdminInputError(`--${name} is given twice`);
      values.options.set(name, value);
    } else {
      throw new valid.AdminInputError(`unknown option ${arg}`);
    }
  }
  return values;
}

function readPassword(values: Values): string {
  if (values.options.has("password")) {
    throw new valid.AdminInputError(
      "--password is refused: argv ends up in shell history and process lists; use --password-stdin or MEMBER_PASSWORD",
    );
  }
  if (values.flags.has("password-stdin")) return readFileSync(0, "utf8").replace(/\r?\n$/, "");
  if (process.env.MEMBER_PASSWORD) return process.env.MEMBER_PASSWORD;
  throw new valid.AdminInputError("no password: pipe it in with --password-stdin, or set MEMBER_PASSWORD");
}

function requireOrganisation(target: Target, identifier: string): { id: number; plan: string; status: string } {
  const [organisation] = query<{ id: number; plan: string; status: string }>(target, sql.organisationQuery(identifier));
  if (!organisation) throw new valid.AdminInputError(`no organisation ${identifier}`);
  return organisation;
}

function freshIdentifiers(target: Target, organisation: string, emails: string[]): string[] {
  const identifiers = new Set<string>();
  while (identifiers.size < emails.length) identifiers.add(valid.newMemberIdentifier());
  const conflicts = query<{ email: string; identifier: string }>(
    target,
    sql.memberConflictsQuery(organisation, emails, [...identifiers]),
  );
  const taken = conflicts.filter((row) => emails.includes(row.email));
  if (taken.length > 0)
    throw new valid.AdminInputError(
      `already members of ${organisation}, nothing written: ${taken.map((row) => row.email).join(", ")}`,
    );
  if (conflicts.length > 0) return freshIdentifiers(target, organisation, emails);
  return [...identifiers];
}

function requireMember(
  target: Target,
  organisation: string,
  email: string,
): { id: number; identifier: string; status: string } {
  const [member] = query<{ id: number; identifier: string; status: string }>(
    target,
    sql.memberQuery(organisation, email),
  );
  if (!member) throw new valid.AdminInputError(`no member ${email} in organisation ${organisation}`);
  return member;
}

/**
 * Revokes access tokens through the gateway after the D1 change. Remotely (or when `required`) a
 * gateway that does not confirm is an error (exit 1: D1 is already changed, run the command again);
 * locally without a running `npm run dev` it is a warning, since no local gateway holds tokens then.
 */
async function revoke(
  values: Values,
  target: Target,
  revocation: AccessRevocation,
  options: { required?: boolean; retry?: string } = {},
): Promise<AccessRevocation | undefined> {
  try {
    return await revokeAccess(target, values.options.get("gateway"), revocation);
  } catch (error) {
    if (!(error instanceof GatewayUnreachable)) throw error;
    const message = `any D1 change is written, but access tokens were not revoked: ${error.message}`;
    if (target.remote || options.required) throw new D1Error(`${message}; ${options.retry ?? "run the command again"}`);
    console.error(`warning: ${message} (is npm run dev running?)${options.retry ? `; ${options.retry}` : ""}`);
    return undefined;
  }
}

async function run(values: Values, target: Target): Promise<string> {
  const option = (name: string) => values.options.get(name);
  const command = values.command;
  switch (command) {
    case "org:create": {
      const input = {
        identifier: valid.identifier("--identifier", option("identifier")),
        name: valid.displayName("--name", option("name")),
        domain: valid.domain(option("domain")),
        plan: valid.plan(option("plan")),
      };
      const conflicts = query<{ identifier: string; domain: string }>(
        target,
        sql.organisationConflictsQuery(input.identifier, input.domain),
      );
      if (conflicts.length > 0)
        throw new valid.AdminInputError(
          `identifier or domain already used by organisation ${conflicts.map((row) => `${row.identifier} (${row.domain})`).join(", ")}`,
        );
      execute(target, [sql.createOrganisationSql(input)]);
      return `created organisation ${input.identifier} (${input.domain}, ${input.plan})`;
    }
    case "org:plan": {
      const organisation = valid.identifier("--org", option("org"));
      const plan = valid.plan(option("plan"));
      const before = requireOrganisation(target, organisation);
      execute(target, [sql.changePlanSql(organisation, plan)]);
      const revoked = await revoke(values, target, { organisations: [organisation] });
      const ended = revoked?.organisations?.length ? "; earlier access tokens refused within 60 s" : "";
      return `organisation ${organisation}: plan ${before.plan} → ${plan} (running gateways notice within 60 s${ended})`;
    }
    case "member:create": {
      const organisation = valid.identifier("--org", option("org"));
      const email = valid.email("--email", option("email"));
      const role = valid.role("--role", option("role"));
      const scopes = valid.scopes("--scopes", option("scopes"));
      if (role === null && scopes === "") throw new valid.AdminInputError("a member needs a role or --scopes");
      const pepper = passwordPepper(target);
      if (new TextEncoder().encode(pepper).byteLength < 32)
        throw new valid.AdminInputError("PASSWORD_PEPPER is shorter than 32 bytes; the gateway would refuse it");
      const password = valid.password(readPassword(values));
      requireOrganisation(target, organisation);
      const [identifier] = freshIdentifiers(target, organisation, [email]);
      const member = {
        identifier: identifier!,
        email,
        passwordHash: await hashPassword(password, pepper),
        role,
        scopes,
      };
      execute(target, sql.insertMembersSql(organisation, [member]));
      return `created member ${member.identifier} ${email} in ${organisation} (scope: ${[role, scopes].filter(Boolean).join(" ")})`;
    }
    case "member:suspend":
    case "member:activate": {
      const organisation = valid.identifier("--org", option("org"));
      const email = valid.email("--email", option("email"));
      const status = command === "member:suspend" ? "suspended" : "active";
      const member = requireMember(target, organisation, email);
      execute(target, [sql.setMemberStatusSql(organisation, email, status)]);
      const signedOut =
        status === "suspended" && (await revoke(values, target, { members: [member.id] }))
          ? "; signed out everywhere within 60 s"
          : "";
      return `member ${member.identifier} ${email}: ${member.status} → ${status}${signedOut}`;
    }
    case "member:sign-out": {
      if (values.options.has("member-id")) {
        if (values.options.has("org") || values.options.has("email"))
          throw new valid.AdminInputError("give either --member-id or --org and --email");
        const id = valid.memberId("--member-id", option("member-id"));
        const revoked = await revoke(values, target, { members: [id] }, { required: true });
        if (!revoked) throw new D1Error("the gateway did not confirm the sign-out");
        return `member id ${id}: every session ended, access tokens refused within 60 s`;
      }
      const organisation = valid.identifier("--org", option("org"));
      const email = valid.email("--email", option("email"));
      const member = requireMember(target, organisation, email);
      const revoked = await revoke(values, target, { members: [member.id] }, { required: true });
      if (!revoked) throw new D1Error("the gateway did not confirm the sign-out");
      return `member ${member.identifier} ${email}: every session ended, access tokens refused within 60 s`;
    }
    case "member:password": {
      const organisation = valid.identifier("--org", option("org"));
      const email = valid.email("--email", option("email"));
      const pepper = passwordPepper(target);
      if (new TextEncoder().encode(pepper).byteLength < 32)
        throw new valid.AdminInputError("PASSWORD_PEPPER is shorter than 32 bytes; the gateway would refuse it");
      const password = valid.password(readPassword(values));
      const member = requireMember(target, organisation, email);
      execute(target, [sql.setPasswordSql(organisation, email, await hashPassword(password, pepper))]);
      const signedOut = (await revoke(values, target, { members: [member.id] }))
        ? "; access tokens refused within 60 s"
        : "";
      return `member ${member.identifier} ${email}: password changed, every session ended${signedOut}`;
    }
    case "member:delete": {
      const organisation = valid.identifier("--org", option("org"));
      const email = valid.email("--email", option("email"));
      const member = requireMember(target, organisation, email);
      execute(target, [sql.deleteMemberSql(organisation, email)]);
      if (query(target, sql.memberQuery(organisation, email)).length > 0)
        throw new D1Error(`member ${email} is still in ${organisation}; nothing was revoked`);
      const retry = `revoke them with: npm run admin -- member:sign-out --member-id ${member.id}${target.remote ? " --remote" : ""}`;
      const signedOut = (await revoke(values, target, { members: [member.id] }, { retry }))
        ? "; access tokens refused within 60 s"
        : "";
      return `member ${member.identifier} ${email} (id ${member.id}) deleted, every session ended${signedOut}`;
    }
    case "member:unlock": {
      const email = valid.email("--email", option("email"));
      let unlocked;
      try {
        unlocked = await unlockLogin(target, option("gateway"), email);
      } catch (error) {
        if (error instanceof GatewayUnreachable) throw new D1Error(`nothing was unlocked: ${error.message}`);
        throw error;
      }
      const before = unlocked.wasLocked
        ? `was locked after ${unlocked.failures} failed logins`
        : `had ${unlocked.failures} failed logins, not locked`;
      return `${email}: ${before}; may log in again now`;
    }
    case "member:import": {
      const organisation = valid.identifier("--org", option("org"));
      const file = option("file");
      if (!file) throw new valid.AdminInputError("--file is required");
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        throw new valid.AdminInputError(`cannot read ${file}: ${(error as Error).message}`);
      }
      const rows = parseImport(text);
      requireOrganisation(target, organisation);
      const identifiers = freshIdentifiers(
        target,
        organisation,
        rows.map((row) => row.email),
      );
      execute(target, sql.importMembersSql(organisation, rows, identifiers));
      const [stored] = query<{ count: number }>(target, sql.countMembersQuery(organisation, identifiers));
      if (stored?.count !== rows.length)
        throw new D1Error(`expected ${rows.length} new members, found ${stored?.count ?? 0}; check the organisation`);
      return `imported ${rows.length} member(s) into ${organisation}; bcrypt hashes are upgraded at each member's next login`;
    }
    case "org:sso:set": {
      const organisation = valid.identifier("--org", option("org"));
      const [row] = query<{ domain: string }>(target, organisationDomainQuery(organisation));
      if (!row) throw new valid.AdminInputError(`no organisation ${organisation}`);
      return setConnection(
        target,
        { organisation, option, secretFromStdin: values.flags.has("client-secret-stdin") },
        row.domain,
      );
    }
    case "org:sso:show":
      requireOrganisation(target, valid.identifier("--org", option("org")));
      return showConnection(target, option("org")!.trim());
    case "org:sso:remove":
      requireOrganisation(target, valid.identifier("--org", option("org")));
      return removeConnection(target, option("org")!.trim());
    default:
      throw new valid.AdminInputError(command ? `unknown command ${command}` : "no command");
  }
}

try {
  const values = parseCommandLine(process.argv.slice(2));
  if (values.flags.has("help")) {
    console.log(USAGE);
    process.exit(0);
  }
  const remote = values.flags.has("remote");
  if (remote && values.options.has("persist-to"))
    throw new valid.AdminInputError("--persist-to is for the local database only");
  const target: Target = { remote, persistTo: values.options.get("persist-to"), config: values.options.get("config") };
  console.log(`${await run(values, target)}${remote ? " [remote]" : " [local]"}`);
} catch (error) {
  const badInput = error instanceof valid.AdminInputError;
  console.error(
    `error: ${(error as Error).message}${badInput ? "\n(npm run admin -- --help for usage; nothing was written)" : ""}`,
  );
  process.exit(badInput ? 2 : 1);
}
