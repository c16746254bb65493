/** How `npm run admin` reaches the gateway: each command one POST to `/authenticate/admin/<route>`, signed with `ADMIN_SECRET`. */
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { parseEnv } from "node:util";
import { ADMIN_SIGNATURE_HEADER, signAdminRequest } from "../../src/admin/signature";

/** Where `npm run dev` serves the gateway. */
const LOCAL_GATEWAY = "http://127.0.0.1:8787";
/** Longest wait for one admin request (an import batch hashes nothing, but waits on D1). */
const REQUEST_TIMEOUT_MS = 60_000;

/** Which gateway a command talks to, and where its secret comes from. */
export interface Target {
  /** The deployed gateway (`--remote` or `--env`): https only, the secret never from `.dev.vars`. */
  remote: boolean;
  /** The wrangler environment (`--env`, else `CLOUDFLARE_ENV`): `ADMIN_SECRET` may come from `.secrets/<env>.env`. */
  env?: string;
  /** `--gateway <url>`. */
  gateway?: string;
}

/** What the commands read from their surroundings; tests pass their own. */
export interface Surroundings {
  env: Record<string, string | undefined>;
  /** The repository's root, where `.dev.vars` and `.secrets/` live. */
  root: string;
  fetch: typeof fetch;
}

/** The gateway could not be asked: not running, unreachable, or not configured for admin requests. */
export class GatewayUnreachable extends Error {
  override name = "GatewayUnreachable";
}

/** The gateway answered with a problem (`status`, `code`, `detail`); `requestId` finds its log line. */
export class GatewayRefusal extends Error {
  override name = "GatewayRefusal";
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly requestId: string | undefined,
  ) {
    super(detail);
  }

  /** Bad input, an unknown subject or a full quota: the command's fault, and nothing was written. */
  get badInput(): boolean {
    return this.status === 400 || this.status === 404 || this.status === 409 || this.status === 413;
  }
}

function fileValue(path: string, name: string): string | undefined {
  try {
    return parseEnv(readFileSync(path, "utf8"))[name] || undefined;
  } catch {
    return undefined;
  }
}

/** The gateway's base URL and `ADMIN_SECRET` for `target`; throws {@link GatewayUnreachable} naming what is missing. */
function endpoint(target: Target, surroundings: Surroundings): { base: string; secret: string } {
  const { env, root } = surroundings;
  const base = (target.gateway ?? (target.remote ? env.GATEWAY_URL : LOCAL_GATEWAY))?.replace(/\/+$/, "");
  if (!base)
    throw new GatewayUnreachable("--remote needs the deployed gateway's URL: --gateway https://… or GATEWAY_URL");
  if (target.remote && URL.parse(base)?.protocol !== "https:")
    throw new GatewayUnreachable(`the deployed gateway is reached over https only, got ${JSON.stringify(base)}`);
  const secretsFile = target.env ? `${root}/.secrets/${target.env}.env` : undefined;
  const secret =
    env.ADMIN_SECRET ||
    (target.remote
      ? secretsFile && fileValue(secretsFile, "ADMIN_SECRET")
      : fileValue(`${root}/.dev.vars`, "ADMIN_SECRET"));
  if (!secret)
    throw new GatewayUnreachable(
      target.remote
        ? `no ADMIN_SECRET: set it in the environment${secretsFile ? ` or in ${secretsFile}` : ", or name the environment with --env <name> (.secrets/<name>.env)"}`
        : "no ADMIN_SECRET in the environment or .dev.vars (npm run dev creates .dev.vars)",
    );
  return { base, secret };
}

/** Who signs the request, as the audit trail's user agent records it: the tool and the local user. */
function userAgent(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no user name on this system
  }
  return `gridgate-admin (${user})`;
}

/**
 * Sends `body` to the admin route `route` (`org/create`, …) signed with `ADMIN_SECRET`; resolves with the JSON
 * answer, throws {@link GatewayRefusal} for a problem answer and {@link GatewayUnreachable} when nothing answered.
 */
export async function callAdmin(
  target: Target,
  surroundings: Surroundings,
  route: string,
  body: unknown,
): Promise<Record<string, any>> {
  const { base, secret } = endpoint(target, surroundings);
  const path = `/authenticate/admin/${route}`;
  const text = JSON.stringify(body);
  let response: Response;
  try {
    response = await surroundings.fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "User-Agent": userAgent(),
        [ADMIN_SIGNATURE_HEADER]: await signAdminRequest(secret, Math.floor(Date.now() / 1000), path, text),
      },
      body: text,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new GatewayUnreachable(
      target.remote || target.gateway
        ? `no answer from ${base} (${reason})`
        : `no gateway answers at ${base} (${reason}): is npm run dev running?`,
    );
  }
  const requestId = response.headers.get("X-Request-Id") ?? undefined;
  const answer = (await response.json().catch(() => undefined)) as Record<string, any> | undefined;
  if (response.ok && answer) return answer;
  if (response.status === 404 && answer?.detail === "No such gateway route.")
    throw new GatewayUnreachable(`${base} has no admin routes: ADMIN_SECRET is not set there`);
  if (response.status === 401)
    throw new GatewayUnreachable(
      `${base} refused the signature: this ADMIN_SECRET is not the gateway's, or this machine's clock is more than 60 s off`,
    );
  throw new GatewayRefusal(
    response.status,
    typeof answer?.code === "string" ? answer.code : "",
    typeof answer?.detail === "string" ? answer.detail : `HTTP ${response.status}`,
    requestId,
  );
}
