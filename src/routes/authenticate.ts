/** `/authenticate`: password login issuing access tokens; the token-lifecycle routes mount here too. */
import { Hono } from "hono";
import { z } from "zod";
import { getConfig, type AppEnv } from "../config";
import { requestFacts } from "../audit";
import { guardedLogin, limitClientIp } from "../credentials/login-guard";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import { readBody } from "../http/body";
import { memberScope } from "../policy/scopes";
import { issueAccessToken } from "../tokens/access";
import { issueRefreshToken } from "../tokens/refresh";
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
  const config = getConfig(c.env);
  const attempt = requestFacts(c.req.raw, c.get("requestId"));
  await limitClientIp(c.env, c.executionCtx, attempt);
  const body = await readBody(c.req.raw, LoginBody);
  const { member, organisation } = await guardedLogin(c.env, c.executionCtx, config, attempt, body);
  const access = await issueAccessToken(config, {
    memberEntityId: member.id,
    memberEntityIdentifier: member.identifier,
    organisationEntityIdentifier: organisation.identifier,
    scope: memberScope(member.role, member.extraScopes),
  });
  const refresh = await issueRefreshToken(config, c.env.TOKENS, {
    memberId: member.id,
    organisationId: organisation.id,
  });
  return tokenResponse(c, access, refresh);
});
