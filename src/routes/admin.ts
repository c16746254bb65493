/** `/authenticate/admin/revocations` and `/unlock`: how `npm run admin` reaches the gateway's Durable Objects, signed with `ADMIN_SECRET`. */
import { Hono, type Context } from "hono";
import { ADMIN_SIGNATURE_HEADER, verifyAdminRequest } from "../admin/signature";
import { isIdentifier } from "../tokens/claims";
import type { AppEnv } from "./middleware";
import { GatewayError } from "../gateway-error";
import { auditRequest } from "./audit";
import { readText } from "../http/body";
import { methodNotAllowed } from "../http/problem";
import { normalizeEmail } from "../credentials/email";
import { throttleKey } from "../credentials/throttle";
import { isEligible } from "../policy/eligibility";
import { revokeSessions } from "../revocation/revoke";
import { findOrganisationAccess } from "../storage/db";

const MAX_SUBJECTS = 100;
/** Longest email the unlock accepts (RFC 5321's path limit). */
const MAX_EMAIL_LENGTH = 254;

/** What an admin command asks for: members to sign out everywhere, organisations whose access may have ended. */
interface RevocationBody {
  members: number[];
  organisations: string[];
}

function parseJsonObject(text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_request", "The body must be JSON.");
  }
  return (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
}

function parseBody(text: string): RevocationBody {
  const { members = [], organisations = [] } = parseJsonObject(text);
  const okMembers =
    Array.isArray(members) &&
    members.length <= MAX_SUBJECTS &&
    members.every((id) => Number.isSafeInteger(id) && id > 0);
  const okOrganisations =
    Array.isArray(organisations) &&
    organisations.length <= MAX_SUBJECTS &&
    organisations.every((identifier) => typeof identifier === "string" && isIdentifier(identifier));
  if (!okMembers || !okOrganisations || members.length + organisations.length === 0) {
    throw new GatewayError(
      "invalid_request",
      `Send {"members": [ids], "organisations": [identifiers]}, at most ${MAX_SUBJECTS} each, not both empty.`,
    );
  }
  return { members: members as number[], organisations: organisations as string[] };
}

/** The email whose login back-off an unlock clears, normalised as at login. */
function parseUnlockBody(text: string): string {
  const { email } = parseJsonObject(text);
  const normalised = typeof email === "string" ? normalizeEmail(email) : "";
  if (normalised.length > MAX_EMAIL_LENGTH || !/^[^@\s]+@[^@\s]+$/.test(normalised))
    throw new GatewayError("invalid_request", `Send {"email": "<address>"}, at most ${MAX_EMAIL_LENGTH} characters.`);
  return normalised;
}

/**
 * The body of a request signed with `ADMIN_SECRET`, and the signed time (s); 404 when the secret is
 * not set, 413 over 16 KiB, 401 unless the signature matches within its window.
 */
async function readSigned(c: Context<AppEnv>): Promise<{ text: string; signedAt: number }> {
  const services = c.get("services");
  const secret = services.config.adminSecret;
  if (!secret) throw new GatewayError("not_found", "No such gateway route.");
  const text = await readText(c.req.raw);
  const signedAt = await verifyAdminRequest(
    secret,
    c.req.header(ADMIN_SIGNATURE_HEADER) ?? null,
    c.req.path,
    text,
    Math.floor(services.now() / 1000),
  );
  if (signedAt === undefined)
    throw new GatewayError("invalid_token", `${ADMIN_SIGNATURE_HEADER} is missing, stale or does not match.`);
  return { text, signedAt };
}

/** Operator routes; 404 unless `ADMIN_SECRET` is set. Not part of the public OpenAPI document. */
export const adminRoutes = new Hono<AppEnv>();

/**
 * Members named lose every refresh session and every access token issued until the signed time;
 * organisations named lose their access tokens only when D1 says they can no longer use the API
 * (suspended, or a plan outside `API_PLANS`), so a change between API plans keeps sessions.
 */
adminRoutes.post("/revocations", async (c) => {
  const services = c.get("services");
  const { text, signedAt: signed } = await readSigned(c);
  const body = parseBody(text);
  const ended: string[] = [];
  for (const identifier of body.organisations) {
    const organisation = await findOrganisationAccess(services.db, identifier);
    if (organisation && !isEligible(services.config, organisation)) ended.push(identifier);
  }
  const revoked = { members: body.members, organisations: ended };
  await revokeSessions(services, revoked);
  auditRequest(c, {
    event: "revoke.admin",
    outcome: "success",
    detail: {
      members: revoked.members.join(" "),
      organisations: revoked.organisations.join(" "),
      signedAt: signed,
    },
  });
  c.header("Cache-Control", "no-store");
  return c.json({ revoked });
});

adminRoutes.all("/revocations", methodNotAllowed("POST"));

/**
 * Clears the login back-off of one email (every organisation: the counter is per email), so a locked
 * account can log in again at once. The email is not written to the audit trail (people paste passwords
 * into email fields); whether a lock was cleared is, with the account's back-off key (SHA-256 of the
 * normalised email), so repeated unlocks of one account can be found.
 */
adminRoutes.post("/unlock", async (c) => {
  const services = c.get("services");
  const { text, signedAt } = await readSigned(c);
  const email = parseUnlockBody(text);
  const account = await throttleKey(email);
  const cleared = await services.throttle.unlock(account);
  const unlocked = {
    failures: cleared?.failures ?? 0,
    wasLocked: cleared !== undefined && cleared.lockedUntil > services.now(),
  };
  auditRequest(c, { event: "unlock.admin", outcome: "success", detail: { ...unlocked, account, signedAt } });
  c.header("Cache-Control", "no-store");
  return c.json({ unlocked });
});

adminRoutes.all("/unlock", methodNotAllowed("POST"));
