/** `/authenticate/admin/revocations`: how `npm run admin` reaches the `Revocations` Durable Object, signed with `ADMIN_SECRET`. */
import { Hono } from "hono";
import { ADMIN_SIGNATURE_HEADER, verifyAdminRequest } from "../admin-signature";
import { isIdentifier } from "../tokens/claims";
import type { AppEnv } from "../gateway";
import { GatewayError } from "../gateway-error";
import { auditRequest } from "../http/audit";
import { methodNotAllowed } from "../http/problem";
import { isEligible } from "../policy/eligibility";
import { findOrganisationAccess } from "../storage/db";

const MAX_BODY_BYTES = 16 * 1024;
const MAX_SUBJECTS = 100;

/** What an admin command asks for: members to sign out everywhere, organisations whose access may have ended. */
interface RevocationBody {
  members: number[];
  organisations: string[];
}

function parseBody(text: string): RevocationBody {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_request", "The body must be JSON.");
  }
  const { members = [], organisations = [] } = (typeof raw === "object" && raw !== null ? raw : {}) as Record<
    string,
    unknown
  >;
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

/** Operator routes; 404 unless `ADMIN_SECRET` is set. Not part of the public OpenAPI document. */
export const adminRoutes = new Hono<AppEnv>();

/**
 * Members named lose every refresh session and every access token issued until the signed time;
 * organisations named lose their access tokens only when D1 says they can no longer use the API
 * (suspended, or a plan outside `API_PLANS`), so a change between API plans keeps sessions.
 */
adminRoutes.post("/revocations", async (c) => {
  const gateway = c.get("gateway");
  const secret = gateway.config.adminSecret;
  if (!secret) throw new GatewayError("not_found", "No such gateway route.");
  const text = await c.req.text();
  if (new TextEncoder().encode(text).byteLength > MAX_BODY_BYTES)
    throw new GatewayError("payload_too_large", "The body is over 16 KiB.");
  const signed = await verifyAdminRequest(
    secret,
    c.req.header(ADMIN_SIGNATURE_HEADER) ?? null,
    text,
    Math.floor(gateway.now() / 1000),
  );
  if (signed === undefined)
    throw new GatewayError("invalid_token", `${ADMIN_SIGNATURE_HEADER} is missing, stale or does not match.`);
  const body = parseBody(text);
  const ended: string[] = [];
  for (const identifier of body.organisations) {
    const organisation = await findOrganisationAccess(gateway.db, identifier);
    if (organisation && !isEligible(gateway.config, organisation)) ended.push(identifier);
  }
  const revoked = { members: body.members, organisations: ended };
  await Promise.all([
    ...body.members.map((memberId) => gateway.refreshStore.revokeMemberSessions(memberId)),
    gateway.revocations.revoke(gateway.config, revoked),
  ]);
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
