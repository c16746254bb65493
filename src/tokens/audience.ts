/** The `aud` claim (RFC 7519 §4.1.3): a token meant for another recipient is refused here. */
import { GatewayError } from "../gateway-error";

/** Accepts an absent `aud`, `audience` or a string array holding it; refuses anything else (RFC 8725 §3.9). */
export function checkAudience(aud: unknown, audience: string): void {
  if (aud === undefined || aud === audience) return;
  if (typeof aud === "string") refuse();
  if (!Array.isArray(aud) || !aud.every((value) => typeof value === "string"))
    refuse("aud must be a string or an array of strings");
  if (!aud.includes(audience)) refuse();
}

function refuse(detail = "the token is meant for another audience"): never {
  throw new GatewayError("invalid_token", detail);
}
