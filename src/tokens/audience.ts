/** The `aud` claim (RFC 7519 §4.1.3): a token meant for another recipient is refused here. */
import { GatewayError } from "../gateway-error";

/**
 * Accepts an absent `aud`, a string equal to `audience`, or an array of strings one of which equals
 * it. Anything else (another audience, an empty array, numbers, objects, arrays with non-strings) is
 * refused: RFC 7519 says a recipient that does not identify itself with a value in `aud` MUST reject
 * the token, and RFC 8725 §3.9 explains the cross-service replay this prevents.
 */
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
