/** `/authenticate`: password login issuing access tokens; the token-lifecycle routes mount here too. */
import { Hono } from "hono/tiny";
import { requestFacts } from "../audit/trail";
import { refusal } from "../gateway-error";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import type { AppEnv } from "./middleware";
import { readBody } from "../http/body";
import { objectBody, optionalString, requiredString } from "../http/fields";
import { memberScope } from "../policy/scopes";
import { issueInstant } from "../revocation/order";
import { issueAccessToken } from "../tokens/access";
import { tokenResponse } from "./token-response";

/** Body of `POST /authenticate` (documented as `LoginRequest` in src/openapi/schemas.ts). */
export interface LoginBody {
  email: string;
  password: string;
  domain?: string | undefined;
}

/** Validates the body of `POST /authenticate`; fields in the document's order, the first bad one named. */
export function parseLoginBody(raw: unknown): LoginBody {
  const body = objectBody(raw);
  return {
    email: requiredString(body, "email", { min: 1, max: 320 }),
    password: requiredString(body, "password", { min: 1, maxBytes: MAX_PASSWORD_BYTES }),
    domain: optionalString(body, "domain", { min: 1, max: 253 }),
  };
}

/** Routes under `/authenticate`. */
export const authenticateRoutes = new Hono<AppEnv>();

authenticateRoutes.post("/", async (c) => {
  const services = c.get("services");
  const config = services.config;
  const attempt = requestFacts(c.req.raw, c.get("requestId"), c.get("trace").traceId);
  await services.logins.limitClientIp(c.executionCtx, c.get("log"), attempt);
  const body = await readBody(c.req.raw, parseLoginBody);
  if (await services.sso.passwordsRefused(c.get("log"), body.email, body.domain)) throw refusal("ssoRequired");
  // taken before the member is read: a revocation that this read misses is ordered after what the login issues
  const arrivedAt = services.now();
  const { access, refresh } = await services.logins.login(
    c.executionCtx,
    c.get("log"),
    attempt,
    body,
    async ({ member, organisation, ssoRequired }) => {
      if (ssoRequired) throw refusal("ssoRequired");
      const instant = issueInstant(arrivedAt, member.sessionsRevokedAt, organisation.sessionsRevokedAt);
      const access = await issueAccessToken(
        config,
        await services.keys.fixedRing(),
        {
          memberEntityId: member.id,
          memberEntityIdentifier: member.identifier,
          organisationEntityIdentifier: organisation.identifier,
          scope: memberScope(member.role, member.extraScopes),
        },
        instant,
      );
      const refresh = await services.refreshStore.issue(
        { memberId: member.id, organisationId: organisation.id },
        instant,
      );
      return { access, refresh };
    },
  );
  return tokenResponse(c, access, refresh);
});
