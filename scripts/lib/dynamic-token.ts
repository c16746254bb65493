/** The command line of `npm run token:dynamic` and the dynamic-secret token it signs (scripts/sign-dynamic-token.ts). */
import { parseArgs } from "node:util";
import { SignJWT } from "jose";

/** A mistake on the command line: the CLI prints it with the usage text and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What to sign; `lifetime` undefined only when `--no-exp` asked for a token without `exp`. */
export interface DynamicTokenOptions {
  secret: string;
  kid: string | undefined;
  organisation: string;
  member: string;
  scope: string;
  lifetime: number | undefined;
}

const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** `--exp`: whole seconds (`900`) or a whole number of s, m, h or d (`15m`, `1h`); at least one second. */
export function parseLifetime(raw: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(raw.trim());
  const seconds = match ? Number(match[1]) * UNIT_SECONDS[match[2]!]! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw new UsageError(`--exp must be seconds or a duration such as 15m, 1h or 7d, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}

/** A dynamic secret exactly as `POST /authenticate/secrets` returns it: 32 bytes, unpadded base64url (43 characters). */
function isDynamicSecret(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value) && Buffer.from(value, "base64url").toString("base64url") === value;
}

/** Reads `args` (and `GRIDGATE_DYNAMIC_SECRET` from `env`); `undefined` for `--help`; a mistake throws {@link UsageError}. */
export function parseTokenArgs(
  args: readonly string[],
  env: Record<string, string | undefined>,
): DynamicTokenOptions | undefined {
  // a base64url secret may start with "-": read the word after --secret as its value, whatever it looks like
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++)
    joined.push(args[i] === "--secret" && i + 1 < args.length ? `--secret=${args[++i]}` : args[i]!);
  let values;
  try {
    ({ values } = parseArgs({
      args: joined,
      options: {
        secret: { type: "string" },
        kid: { type: "string" },
        org: { type: "string" },
        member: { type: "string" },
        scope: { type: "string" },
        exp: { type: "string" },
        "no-exp": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;
  const secret = values.secret ?? env.GRIDGATE_DYNAMIC_SECRET;
  if (!secret) throw new UsageError("--secret is required");
  if (!isDynamicSecret(secret)) {
    throw new UsageError(
      "--secret must be a dynamic secret: the 43-character base64url `secret` POST /authenticate/secrets returned (not its kid, not JWT_SECRET)",
    );
  }
  if (!values.org || !values.member) throw new UsageError("--org and --member are required");
  if (values.exp !== undefined && values["no-exp"]) throw new UsageError("--exp and --no-exp exclude each other");
  if (values.exp === undefined && !values["no-exp"]) {
    throw new UsageError(
      "--exp is required (e.g. --exp 15m); --no-exp signs a token valid until its secret is revoked",
    );
  }
  return {
    secret,
    kid: values.kid,
    organisation: values.org,
    member: values.member,
    scope: values.scope ?? "organisation",
    lifetime: values.exp === undefined ? undefined : parseLifetime(values.exp),
  };
}

/** Signs the token with the UTF-8 bytes of the secret, as an integration would; `now` in Unix seconds. */
export function signDynamicToken(options: DynamicTokenOptions, now = Math.floor(Date.now() / 1000)): Promise<string> {
  const jwt = new SignJWT({
    memberEntityIdentifier: options.member,
    organisationEntityIdentifier: options.organisation,
    scope: options.scope,
    secretType: "dynamic",
  })
    .setProtectedHeader({ typ: "JWT", alg: "HS256", ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuedAt(now)
    .setJti(crypto.randomUUID());
  if (options.lifetime !== undefined) jwt.setExpirationTime(now + options.lifetime);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
