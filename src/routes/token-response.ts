/** The one shape of a successful token response, shared by login and refresh. */
import type { Context } from "hono";
import { allowedOriginOf, type AppEnv } from "./middleware";
import { refreshCookie } from "./refresh-cookie";
import type { IssuedAccessToken } from "../tokens/access";
import type { RefreshTokenGrant } from "../tokens/refresh-store";

/** The 200 with the tokens, never cached; for an allowed browser origin the refresh token is a cookie instead. */
export function tokenResponse(c: Context<AppEnv>, access: IssuedAccessToken, refresh: RefreshTokenGrant): Response {
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
  if (allowedOriginOf(c) !== undefined) {
    c.header("Set-Cookie", refreshCookie(refresh.token, refresh.expiresIn), { append: true });
    return c.json({
      access_token: access.token,
      token_type: "Bearer",
      expires_in: access.expiresIn,
      refresh_token_expires_in: refresh.expiresIn,
      scope: access.claims.scope,
    });
  }
  return c.json({
    access_token: access.token,
    token_type: "Bearer",
    expires_in: access.expiresIn,
    refresh_token: refresh.token,
    refresh_token_expires_in: refresh.expiresIn,
    scope: access.claims.scope,
  });
}
