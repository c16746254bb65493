/** Canonical, unpadded base64url (RFC 4648 §5) as JWS compact serialization requires it. */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * True when `segment` is the one canonical encoding of its bytes: no padding (the caller's
 * alphabet check has already refused `=`), no impossible length, and zero unused trailing bits.
 */
export function isCanonicalBase64Url(segment: string): boolean {
  const tail = segment.length % 4;
  if (tail === 0) return true;
  if (tail === 1) return false;
  const lastValue = ALPHABET.indexOf(segment[segment.length - 1]!);
  return (lastValue & (tail === 2 ? 0x0f : 0x03)) === 0;
}

/** Decodes base64url already known to be canonical (see {@link isCanonicalBase64Url}). */
export function decodeBase64Url(segment: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(segment, { alphabet: "base64url" });
}

/** Decodes a canonical base64url segment holding UTF-8 text; throws on invalid UTF-8. */
export function decodeBase64UrlText(segment: string): string {
  return decoder.decode(decodeBase64Url(segment));
}

/** Encodes bytes or a string (as UTF-8) as unpadded base64url. */
export function encodeBase64Url(input: Uint8Array | ArrayBuffer | string): string {
  const bytes = typeof input === "string" ? encoder.encode(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}
