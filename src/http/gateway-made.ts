/** Headers on every response the gateway makes itself (not the origin's): `X-Content-Type-Options` and `Vary: Origin`. */

/** Adds `Origin` to `Vary` unless it (or `*`) is already named. */
export function varyOnOrigin(headers: Headers): void {
  const vary = headers.get("Vary");
  if (!vary) headers.set("Vary", "Origin");
  else if (!/(?:^|,)\s*(?:origin|\*)\s*(?:,|$)/i.test(vary)) headers.set("Vary", `${vary}, Origin`);
}

/** Marks a gateway-made response: `nosniff`, and `Vary: Origin` whatever the request (docs/browser-apps.md § CORS). */
export function markGatewayMade(headers: Headers): void {
  headers.set("X-Content-Type-Options", "nosniff");
  varyOnOrigin(headers);
}
