/** `/authenticate`: password login issuing access tokens; the token-lifecycle routes mount here too. */
import { Hono } from "hono";
import { z } from "zod";
import { requestFacts } from "../audit";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import type { AppEnv } from "../gateway";
import { readBody } from "../http/body";
import { memberScope } from "../policy/scopes";
import { issueAccessToken } from "../tokens/access";
import { tokenResponse } from "./token-response";

const encoder = new TextEncoder();

/** Body of `POST /authenticate`. */
export const LoginBody = z.object({
  email: z.string().min(1).max(320),
  password: z
    .string()
    .min(1)
    .refine(
      (password) => encoder.encode(password).byteLength <= MAX_PASSWORD_BYTES,
      `must be at most ${MAX_PASSWORD_BYTES} bytes`,
    ),
  domain: z.string().min(1).max(253).optional(),
});

/** Routes under `/authenticate`. */
export const authenticateRoutes = new Hono<AppEnv>();

authenticateRoutes.post("/", async (c) => {
  const gateway = c.get("gateway");
  const config = gateway.config;
  const attempt = requestFacts(c.req.raw, c.get("requestId"), c.get("trace").traceId);
  await gateway.logins.limitClientIp(c.executionCtx, attempt);
  const body = await readBody(c.req.raw, LoginBody);
  const { member, organisation } = await gateway.logins.login(c.executionCtx, c.get("log"), attempt, body);
  const now = gateway.now();
  const access = await issueAccessToken(
    config,
    await gateway.keys.fixedRing(),
    {
      memberEntityId: member.id,
      memberEntityIdentifier: member.identifier,
      organisationEntityIdentifier: organisation.identifier,
      scope: memberScope(member.role, member.extraScopes),
    },
    Math.floor(now / 1000),
  );
  const refresh = await gateway.refreshStore.issue({ memberId: member.id, organisationId: organisation.id }, now);
  return tokenResponse(c, access, refresh);
});
