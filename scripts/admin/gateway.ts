/** Reaches the running gateway's admin routes (`/authenticate/admin/revocations`, `/unlock`), signed with `ADMIN_SECRET`, so a command takes effect on access tokens within 60 s. */
import { readFileSync } from "node:fs";
import { ADMIN_SIGNATURE_HEADER, signAdminRequest } from "../../src/admin/signature";
import type { Target } from "./d1";

/** The gateway did not confirm a revocation (unreachable, refused, misconfigured). */
export class GatewayUnreachable extends Error {
  override name = "GatewayUnreachable";
}

const ROOT = new URL("../../", import.meta.url).pathname;
/** Where `npm run dev` serves the gateway. */
const LOCAL_GATEWAY = "http://127.0.0.1:8787";

/** What to revoke: members (ids) and organisations (identifiers; the gateway revokes them only if they left the API). */
export interface AccessRevocation {
  members?: number[];
  organisations?: string[];
}

function devVar(name: string): string | undefined {
  try {
    const match = new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\r\\n]*)"?\\s*$`, "m").exec(
      readFileSync(`${ROOT}.dev.vars`, "utf8"),
    );
    return match?.[1] || undefined;
  } catch {
    return undefined;
  }
}

/** `ADMIN_SECRET` and the gateway's URL: from the environment (`GATEWAY_URL`), else (local only) `.dev.vars` and `npm run dev`'s address. */
function endpoint(
  target: Target,
  gatewayUrl: string | undefined,
  route: string,
): { url: string; path: string; secret: string } {
  const secret = process.env.ADMIN_SECRET ?? (target.remote ? undefined : devVar("ADMIN_SECRET"));
  const base = gatewayUrl ?? process.env.GATEWAY_URL ?? (target.remote ? undefined : LOCAL_GATEWAY);
  if (!secret)
    throw new GatewayUnreachable(
      target.remote
        ? "set ADMIN_SECRET in the environment to the deployed gateway's secret"
        : "no ADMIN_SECRET in the environment or .dev.vars",
    );
  if (!base) throw new GatewayUnreachable("set --gateway https://… or GATEWAY_URL to the deployed gateway");
  const path = `/authenticate/admin/${route}`;
  return { url: `${base.replace(/\/$/, "")}${path}`, path, secret };
}

/** POSTs `body` signed to the admin route `route`; resolves with the JSON answer, throws {@link GatewayUnreachable} otherwise. */
async function callAdmin(
  target: Target,
  gatewayUrl: string | undefined,
  route: string,
  body: string,
): Promise<unknown> {
  const { url, path, secret } = endpoint(target, gatewayUrl, route);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        [ADMIN_SIGNATURE_HEADER]: await signAdminRequest(secret, Math.floor(Date.now() / 1000), path, body),
      },
      body,
    });
  } catch (error) {
    throw new GatewayUnreachable(`${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new GatewayUnreachable(`${url} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Asks the gateway to revoke; resolves with what it revoked, throws {@link GatewayUnreachable} otherwise. */
export async function revokeAccess(
  target: Target,
  gatewayUrl: string | undefined,
  revocation: AccessRevocation,
): Promise<AccessRevocation> {
  const answer = await callAdmin(target, gatewayUrl, "revocations", JSON.stringify(revocation));
  return (answer as { revoked: AccessRevocation }).revoked;
}

/** What an unlock cleared: the failures counted, and whether the email was locked at that moment. */
export interface Unlocked {
  failures: number;
  wasLocked: boolean;
}

/** Clears the login back-off of `email` (normalised) through the gateway; throws {@link GatewayUnreachable} unless confirmed. */
export async function unlockLogin(target: Target, gatewayUrl: string | undefined, email: string): Promise<Unlocked> {
  const answer = await callAdmin(target, gatewayUrl, "unlock", JSON.stringify({ email }));
  return (answer as { unlocked: Unlocked }).unlocked;
}
