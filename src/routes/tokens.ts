/** `/authenticate/refresh` and `/authenticate/revoke`: the refresh half of the token lifecycle. */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../gateway";
import { GatewayError, refusal } from "../gateway-error";
import { auditRequest } from "../http/audit";
import { bearerAuth } from "../http/bearer";
import { allowedOrigin } from "../http/cors";
import { methodNotAllowed } from "../http/problem";
import {
  cookieRefreshToken,
  presentedRefreshToken,
  readTokenBody,
  refreshCookieAftercare,
} from "../http/refresh-cookie";
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

/** Routes under `/authenticate` for refresh tokens; mounted before the `/authenticate/*` 404. */
export const tokenRoutes = new Hono<AppEnv>();
const memberBearer = bearerAuth({ fixedOnly: true });

tokenRoutes.post("/refresh", refreshCookieAftercare("refresh"), async (c) => {
  const token = await presentedRefreshToken(c, RefreshBody);
  const outcome = await c.get("gateway").refreshSessions.refresh(c.get("log"), token);
  const { memberId, organisationId, familyId } = outcome;
  if (!outcome.ok) {
    const event =
      outcome.reason === "reused" || outcome.reason === "forked" ? "refresh.reuse_detected" : "refresh.failure";
    auditRequest(c, {
      event,
      outcome: "failure",
      memberId,
      organisationId,
      detail: { reason: outcome.reason, ...(familyId ? { familyId } : {}) },
    });
    throw refusal(outcome.refusal);
  }
  auditRequest(c, {
    event: "refresh.success",
    outcome: "success",
    memberId,
    organisationId,
    detail: { familyId: familyId!, graced: outcome.graced },
  });
  return tokenResponse(c, outcome.access, outcome.refresh);
});

tokenRoutes.post("/revoke", refreshCookieAftercare("revoke"), async (c) => {
  const body = await readTokenBody(c, RevokeBody);
  if (body.refresh_token !== undefined && body.token !== undefined && body.refresh_token !== body.token) {
    throw new GatewayError("invalid_request", "Send the token as refresh_token or as token, not two different ones.");
  }
  const token = body.refresh_token ?? body.token ?? cookieRefreshToken(c);
  if (token === undefined && body.all !== true && allowedOrigin(c) !== undefined) {
    // a browser cannot see its HttpOnly cookie, so its logout succeeds whether or not one was there
    c.header("Cache-Control", "no-store");
    return c.body(null, 200);
  }
  if (token === undefined && body.all !== true) {
    throw new GatewayError(
      "invalid_request",
      'Send refresh_token, or {"all": true} with an Authorization: Bearer access token.',
    );
  }
  const { refreshStore } = c.get("gateway");
  if (body.all === true) {
    await memberBearer(c, async () => {});
    const memberId = c.get("claims").memberEntityId;
    if (memberId === undefined) throw new GatewayError("invalid_token", "the access token names no memberEntityId");
    await refreshStore.revokeMemberSessions(memberId);
    auditRequest(c, { event: "revoke.all", outcome: "success", memberId });
  }
  const stored =
    token !== undefined && isRefreshToken(token) ? await refreshStore.find(c.get("log"), token) : undefined;
  if (stored) {
    await refreshStore.revokeFamily(c.get("log"), stored, "revoked");
    auditRequest(c, {
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
