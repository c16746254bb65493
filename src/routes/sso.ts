/** `/authenticate/sso/start` and `/authenticate/sso/callback`: single sign-on with an organisation's OpenID Provider. */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { requestFacts } from "../audit/trail";
import type { AppEnv } from "./middleware";
import { GatewayError } from "../gateway-error";
import { auditRequest } from "./audit";
import { invalidField, optionalString, requiredString } from "../http/fields";
import { methodNotAllowed } from "../http/problem";
import { refreshCookie } from "./refresh-cookie";
import { issueInstant } from "../revocation/order";
import { allowedReturnTo, clearedSsoCookie, errorRedirect, ssoCookie, ssoCookieOf } from "../sso/browser";
import { SsoFailure, storageFailure } from "../sso/failure";

/** The callback's path, as registered at every identity provider (docs/sso.md). */
export const SSO_CALLBACK_PATH = "/authenticate/sso/callback";

interface SsoStartQuery {
  email?: string | undefined;
  domain?: string | undefined;
  return_to: string;
}

/** The query's parameters as fields; a parameter given twice is refused, not guessed at. */
function queryFields(url: URL): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of url.searchParams) {
    if (Object.hasOwn(fields, name)) invalidField(name, "given more than once");
    fields[name] = value;
  }
  return fields;
}

/** Validates the query of `GET /authenticate/sso/start`: `return_to`, and exactly one of `email` and `domain`. */
function parseStartQuery(fields: Record<string, string>): SsoStartQuery {
  const query = {
    email: optionalString(fields, "email", { min: 3, max: 320 }),
    domain: optionalString(fields, "domain", { min: 1, max: 253 }),
    return_to: requiredString(fields, "return_to", { min: 1, max: 2048 }),
  };
  if ((query.email === undefined) === (query.domain === undefined)) invalidField("", "send either email or domain");
  if (query.email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(query.email.trim())) invalidField("email", "not an email");
  return query;
}

/** A 302 that carries no referrer onwards and is never cached. */
function redirect(location: string, cookies: string[]): Response {
  const headers = new Headers({ Location: location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" });
  for (const cookie of cookies) headers.append("Set-Cookie", cookie);
  return new Response(null, { status: 302, headers });
}

/** A storage failure or a provider failure, as the app sees it: `temporarily_unavailable` or `server_error`. */
function errorOf(error: unknown): SsoFailure | undefined {
  return error instanceof SsoFailure ? error : storageFailure(error);
}

function auditFailure(
  c: Context<AppEnv>,
  stage: "start" | "callback",
  failure: SsoFailure,
  ids: { organisationId?: number | undefined; memberId?: number | undefined } = {},
): void {
  auditRequest(c, {
    event: "sso.login.failure",
    outcome: "failure",
    ...ids,
    detail: { reason: failure.reason, stage, ...(failure.why === undefined ? {} : { why: failure.why }) },
  });
  if (
    failure.reason === "idp_unavailable" ||
    failure.reason === "server_error" ||
    failure.reason === "storage_unavailable"
  )
    c.get("log").warn("sso_failed", { reason: failure.reason, why: failure.why });
}

/** Routes under `/authenticate/sso`; mounted before the `/authenticate/*` 404. */
export const ssoRoutes = new Hono<AppEnv>();

ssoRoutes.get("/start", async (c) => {
  const services = c.get("services");
  const attempt = requestFacts(c.req.raw, c.get("requestId"), c.get("trace").traceId);
  await services.logins.limitClientIp(c.executionCtx, c.get("log"), attempt);
  const url = new URL(c.req.url);
  const query = parseStartQuery(queryFields(url));
  const returnTo = allowedReturnTo(c.get("services").cors, query.return_to);
  if (!returnTo) {
    throw new GatewayError(
      "invalid_request",
      "Invalid return_to: it must be an absolute URL on an allowed browser app's origin (CORS_ORIGINS), without credentials or fragment.",
    );
  }
  try {
    const started = await services.sso.start({
      email: query.email,
      domain: query.domain,
      returnTo: returnTo.href,
      redirectUri: new URL(SSO_CALLBACK_PATH, url).href,
    });
    return redirect(started.location, [ssoCookie(started.binding)]);
  } catch (error) {
    const failure = errorOf(error);
    if (!failure) throw error;
    auditFailure(c, "start", failure);
    return redirect(errorRedirect(returnTo.href, failure.error, failure.message), []);
  }
});

ssoRoutes.get("/callback", async (c) => {
  const services = c.get("services");
  // before the state is looked up: each lookup is a D1 write (the state is deleted as it is read)
  const attempt = requestFacts(c.req.raw, c.get("requestId"), c.get("trace").traceId);
  await services.logins.limitClientIp(c.executionCtx, c.get("log"), attempt, "sso_callback");
  const url = new URL(c.req.url);
  // taken before the member is read, as a password login does
  const arrivedAt = services.now();
  const finished = await services.sso.finish(
    url.searchParams,
    ssoCookieOf(c.req.raw.headers),
    (returnTo) => allowedReturnTo(c.get("services").cors, returnTo) !== undefined,
  );
  if (!finished.ok) {
    const { failure, returnTo, organisationId, memberId } = finished;
    auditFailure(c, "callback", failure, { organisationId, memberId });
    if (returnTo === undefined) throw new GatewayError("invalid_request", failure.message);
    return redirect(errorRedirect(returnTo, failure.error, failure.message), [clearedSsoCookie()]);
  }
  const { member, organisation } = finished.membership;
  const ids = { memberId: member.id, organisationId: organisation.id };
  try {
    const instant = issueInstant(arrivedAt, member.sessionsRevokedAt, organisation.sessionsRevokedAt);
    const refresh = await services.refreshStore.issue(ids, instant);
    auditRequest(c, {
      event: "sso.login.success",
      outcome: "success",
      ...ids,
      detail: { familyId: refresh.record.familyId, firstLogin: finished.firstLogin },
    });
    return redirect(finished.returnTo, [refreshCookie(refresh.token, refresh.expiresIn), clearedSsoCookie()]);
  } catch (error) {
    const failure = errorOf(error);
    if (!failure) throw error;
    auditFailure(c, "callback", failure, ids);
    return redirect(errorRedirect(finished.returnTo, failure.error, failure.message), [clearedSsoCookie()]);
  }
});

ssoRoutes.all("/start", methodNotAllowed("GET, HEAD"));
ssoRoutes.all("/callback", methodNotAllowed("GET, HEAD"));
