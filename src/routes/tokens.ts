/** `/authenticate/refresh` and `/authenticate/revoke`: the refresh half of the token lifecycle. */
import { Hono } from "hono/tiny";
import { allowedOriginOf, type AppEnv } from "./middleware";
import { GatewayError, refusal } from "../gateway-error";
import { auditRequest } from "./audit";
import { bearerAuth } from "./middleware";
import { objectBody, optionalFormBoolean, optionalString, requiredString } from "../http/fields";
import { methodNotAllowed } from "../http/problem";
import { cookieRefreshToken, presentedRefreshToken, readTokenBody, refreshCookieAftercare } from "./refresh-cookie";
import { revokeSessions } from "../revocation/revoke";
import { isRefreshToken } from "../tokens/refresh-token";
import { tokenResponse } from "./token-response";

/** Body of `POST /authenticate/refresh`; other fields (e.g. `grant_type`) are ignored. */
export interface RefreshBody {
  refresh_token: string;
}

/** Validates the body of `POST /authenticate/refresh` (documented as `RefreshRequest`). */
export function parseRefreshBody(raw: unknown): RefreshBody {
  return { refresh_token: requiredString(objectBody(raw), "refresh_token", { min: 1 }) };
}

/** Body of `POST /authenticate/revoke`: `refresh_token` (or RFC 7009's `token`) and/or `all: true` with a Bearer. */
export interface RevokeBody {
  refresh_token?: string | undefined;
  token?: string | undefined;
  token_type_hint?: string | undefined;
  all?: boolean | undefined;
}

/** Validates the body of `POST /authenticate/revoke` (documented as `RevokeRequest`); `all` may be a form's "true"/"false". */
export function parseRevokeBody(raw: unknown): RevokeBody {
  const body = objectBody(raw);
  return {
    refresh_token: optionalString(body, "refresh_token", { min: 1 }),
    token: optionalString(body, "token", { min: 1 }),
    token_type_hint: optionalString(body, "token_type_hint", { max: 64 }),
    all: optionalFormBoolean(body, "all"),
  };
}

/** Routes under `/authenticate` for refresh tokens; mounted before the `/authenticate/*` 404. */
export const tokenRoutes = new Hono<AppEnv>();
const memberBearer = bearerAuth({ fixedOnly: true });

tokenRoutes.post("/refresh", refreshCookieAftercare("refresh"), async (c) => {
  const token = await presentedRefreshToken(c, parseRefreshBody);
  const outcome = await c.get("services").refreshSessions.refresh(c.get("log"), token);
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
  const body: RevokeBody = await readTokenBody(c, parseRevokeBody);
  if (body.refresh_token !== undefined && body.token !== undefined && body.refresh_token !== body.token) {
    throw new GatewayError("invalid_request", "Send the token as refresh_token or as token, not two different ones.");
  }
  const token = body.refresh_token ?? body.token ?? cookieRefreshToken(c);
  if (token === undefined && body.all !== true && allowedOriginOf(c) !== undefined) {
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
  const { refreshStore } = c.get("services");
  if (body.all === true) {
    await memberBearer(c, async () => {});
    const memberId = c.get("claims").memberEntityId;
    if (memberId === undefined) throw new GatewayError("invalid_token", "the access token names no memberEntityId");
    await revokeSessions(c.get("services"), { members: [memberId] });
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
