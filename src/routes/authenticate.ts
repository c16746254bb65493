/** `/authenticate`: password login issuing access tokens; the token-lifecycle routes mount here too. */
import { Hono } from "hono";
import { z } from "zod";
import { getConfig, type AppEnv } from "../config";
import { authenticateMember } from "../credentials/login";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import { GatewayError } from "../errors";
import { readBody } from "../http/body";
import { memberScope } from "../policy/scopes";
import { issueAccessToken } from "../tokens/access";

const encoder = new TextEncoder();

/** Body of `POST /authenticate`. */
export const LoginBody = z.object({
  email: z.string().min(1).max(320),
  password: z
    .string()
    .min(1)
    .refine((password) => encoder.encode(password).byteLength <= MAX_PASSWORD_BYTES, `must be at most ${MAX_PASSWORD_BYTES} bytes`),
  domain: z.string().min(1).max(253).optional(),
});

function clientIp(request: Request): string {
  return request.headers.get("CF-Connecting-IP") ?? "unknown";
}

/** Routes under `/authenticate`. */
export const authenticateRoutes = new Hono<AppEnv>();

authenticateRoutes.post("/", async (c) => {
  const config = getConfig(c.env);
  if (c.env.LOGIN_LIMITER) {
    const { success } = await c.env.LOGIN_LIMITER.limit({ key: `ip:${clientIp(c.req.raw)}` });
    if (!success) throw new GatewayError("rate_limited", "Too many login attempts; try again later.", { retryAfter: 60 });
  }
  const body = await readBody(c.req.raw, LoginBody);
  const { member, organisation } = await authenticateMember(config, c.env.DB, body);
  const access = await issueAccessToken(config, {
    memberEntityId: member.id,
    memberEntityIdentifier: member.identifier,
    organisationEntityIdentifier: organisation.identifier,
    scope: memberScope(member.role, member.extraScopes),
  });
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
  return c.json({ access_token: access.token, token_type: "Bearer", expires_in: access.expiresIn, scope: access.claims.scope });
});
