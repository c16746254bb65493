/** `/authenticate/refresh` and `/authenticate/revoke`: the refresh half of the token lifecycle. */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { audit, requestFacts, type AuditEvent } from "../audit";
import { getConfig, type AppEnv } from "../config";
import { GatewayError, methodNotAllowed } from "../errors";
import { bearerAuth } from "../http/bearer";
import { readBody } from "../http/body";
import { findRefreshRecord, revokeFamily, revokeMemberSessions } from "../tokens/refresh";
import { refreshSession } from "../tokens/refresh-session";
import { isRefreshToken } from "../tokens/refresh-token";
import { tokenResponse } from "./token-response";

/** Body of `POST /authenticate/refresh`; other fields (e.g. `grant_type`) are ignored. */
export const RefreshBody = z.object({ refresh_token: z.string().min(1) });

const FormBoolean = z.union([z.boolean(), z.enum(["true", "false"]).transform((value) => value === "true")]);

/**
 * Body of `POST /authenticate/revoke`: `refresh_token` (or RFC 7009's `token`, with an optional,
 * advisory `token_type_hint`), and/or `all: true` with a Bearer access token.
 */
export const RevokeBody = z.object({
  refresh_token: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  token_type_hint: z.string().max(64).optional(),
  all: FormBoolean.optional(),
});

type AuditFields = Pick<AuditEvent, "event" | "outcome" | "memberId" | "organisationId" | "detail">;

function record(c: Context<AppEnv>, fields: AuditFields): void {
  audit(c.executionCtx, c.env.DB, { ...fields, ...requestFacts(c.req.raw, c.get("requestId")) });
}

/** Routes under `/authenticate` for refresh tokens; mounted before the `/authenticate/*` 404. */
export const tokenRoutes = new Hono<AppEnv>();
const memberBearer = bearerAuth({ fixedOnly: true });

tokenRoutes.post("/refresh", async (c) => {
  const { refresh_token: token } = await readBody(c.req.raw, RefreshBody);
  const outcome = await refreshSession(getConfig(c.env), c.env, token);
  const { memberId, organisationId, familyId } = outcome;
  if (!outcome.ok) {
    const event =
      outcome.reason === "reused" || outcome.reason === "forked" ? "refresh.reuse_detected" : "refresh.failure";
    record(c, {
      event,
      outcome: "failure",
      memberId,
      organisationId,
      detail: { reason: outcome.reason, ...(familyId ? { familyId } : {}) },
    });
    throw outcome.error;
  }
  record(c, {
    event: "refresh.success",
    outcome: "success",
    memberId,
    organisationId,
    detail: { familyId: familyId!, graced: outcome.graced },
  });
  return tokenResponse(c, outcome.access, outcome.refresh);
});

tokenRoutes.post("/revoke", async (c) => {
  const body = await readBody(c.req.raw, RevokeBody);
  if (body.refresh_token !== undefined && body.token !== undefined && body.refresh_token !== body.token) {
    throw new GatewayError("invalid_request", "Send the token as refresh_token or as token, not two different ones.");
  }
  const token = body.refresh_token ?? body.token;
  if (token === undefined && body.all !== true) {
    throw new GatewayError(
      "invalid_request",
      'Send refresh_token, or {"all": true} with an Authorization: Bearer access token.',
    );
  }
  const config = getConfig(c.env);
  if (body.all === true) {
    await memberBearer(c, async () => {});
    const memberId = c.get("claims").memberEntityId;
    if (memberId === undefined) throw new GatewayError("invalid_token", "the access token names no memberEntityId");
    await revokeMemberSessions(config, c.env.TOKENS, memberId);
    record(c, { event: "revoke.all", outcome: "success", memberId });
  }
  const stored =
    token !== undefined && isRefreshToken(token) ? await findRefreshRecord(c.env.TOKENS, token) : undefined;
  if (stored) {
    await revokeFamily(config, c.env.TOKENS, stored, "revoked");
    record(c, {
      event: "revoke",
      outcome: "success",
      memberId: stored.memberId,
      organisationId: stored.organisationId,
      detail: { familyId: stored.familyId },
    });
  }
  c.header("Cache-Control", "no-store");
  return c.body(null, 200);
});

tokenRoutes.all("/refresh", methodNotAllowed("POST"));
tokenRoutes.all("/revoke", methodNotAllowed("POST"));
