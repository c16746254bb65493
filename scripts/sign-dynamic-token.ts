/** Signs a dynamic-secret access token, as an integration would: `npm run token:dynamic -- --secret … --kid …`. */
import { SignJWT } from "jose";

const USAGE = `Usage: npm run token:dynamic -- --secret <value> [--kid <kid>] --org <organisation> --member <member> [--scope organisation] [--exp <seconds>]

  --secret   the secret value POST /authenticate/secrets returned (or set GRIDGATE_DYNAMIC_SECRET)
  --kid      its kid (optional, recommended): put in the JWS header so the gateway picks the key directly
  --org      organisationEntityIdentifier, e.g. m7l9hw
  --member   memberEntityIdentifier of an active member of that organisation, e.g. o6q2is
  --scope    space-delimited scope (default: organisation)
  --exp      lifetime in seconds; omit for a token without exp`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
  throw new Error(message);
}

const FLAGS = new Set(["secret", "kid", "org", "member", "scope", "exp"]);

/** `--name value` and `--name=value` pairs; anything else is a usage error. */
function parseFlags(args: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      console.log(`Signs an HS256 dynamic-secret token for Gridgate.\n\n${USAGE}`);
      process.exit(0);
    }
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(arg);
    if (!match || !FLAGS.has(match[1]!)) fail(`unknown argument ${arg}`);
    const value = match[2] ?? args[++i];
    if (value === undefined) fail(`--${match[1]} needs a value`);
    flags.set(match[1]!, value);
  }
  return flags;
}

/** Reads the command line; every mistake exits with the usage text. */
function options() {
  const flags = parseFlags(process.argv.slice(2));
  const secret = flags.get("secret") ?? process.env.GRIDGATE_DYNAMIC_SECRET;
  const organisation = flags.get("org");
  const member = flags.get("member");
  if (!secret) fail("--secret is required");
  if (!organisation || !member) fail("--org and --member are required");
  const exp = flags.get("exp");
  const lifetime = exp === undefined ? undefined : Number(exp);
  if (lifetime !== undefined && (!Number.isSafeInteger(lifetime) || lifetime <= 0))
    fail("--exp must be a positive number of seconds");
  return { secret, kid: flags.get("kid"), organisation, member, scope: flags.get("scope") ?? "organisation", lifetime };
}

const { secret, kid, organisation, member, scope, lifetime } = options();
const now = Math.floor(Date.now() / 1000);
const jwt = new SignJWT({
  memberEntityIdentifier: member,
  organisationEntityIdentifier: organisation,
  scope,
  secretType: "dynamic",
})
  .setProtectedHeader({ typ: "JWT", alg: "HS256", ...(kid ? { kid } : {}) })
  .setIssuedAt(now)
  .setJti(crypto.randomUUID());
if (lifetime !== undefined) jwt.setExpirationTime(now + lifetime);
console.log(await jwt.sign(new TextEncoder().encode(secret)));
