/** The signature of an admin request (`X-Gridgate-Admin`): HMAC-SHA256 over the route path, a timestamp and the exact body, shared by the gateway and `npm run admin`. */

/** Header carrying `t=<unix seconds>,sig=<base64url HMAC>`. */
export const ADMIN_SIGNATURE_HEADER = "X-Gridgate-Admin";
const ADMIN_SIGNATURE_WINDOW_SECONDS = 60;
const SIGNED = /^t=(\d{1,12}),sig=([A-Za-z0-9_-]{43})$/;
const encoder = new TextEncoder();

/** What is signed: the route's path (a body signed for one route is refused by another), the time and the body. */
function message(timestamp: number, path: string, body: string): Uint8Array {
  return encoder.encode(`gridgate admin v2\n${path}\n${timestamp}\n${body}`);
}

function key(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** The header value signing `body` for the route `path` (e.g. `/authenticate/admin/member/unlock`) at `timestamp` (seconds) under `secret`. */
export async function signAdminRequest(secret: string, timestamp: number, path: string, body: string): Promise<string> {
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", await key(secret, "sign"), message(timestamp, path, body)),
  );
  return `t=${timestamp},sig=${mac.toBase64({ alphabet: "base64url", omitPadding: true })}`;
}

/** The signed timestamp when `header` signs `body` for `path` under `secret` within the window around `now` (s), else undefined. */
export async function verifyAdminRequest(
  secret: string,
  header: string | null,
  path: string,
  body: string,
  now: number,
): Promise<number | undefined> {
  const match = header === null ? null : SIGNED.exec(header);
  if (!match) return undefined;
  const timestamp = Number(match[1]);
  if (Math.abs(now - timestamp) > ADMIN_SIGNATURE_WINDOW_SECONDS) return undefined;
  let mac: Uint8Array;
  try {
    mac = Uint8Array.fromBase64(match[2]!, { alphabet: "base64url" });
  } catch {
    return undefined;
  }
  const valid = await crypto.subtle.verify("HMAC", await key(secret, "verify"), mac, message(timestamp, path, body));
  return valid ? timestamp : undefined;
}
