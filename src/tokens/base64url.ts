/** Canonical, unpadded base64url (RFC 4648 §5) as JWS compact serialization requires it. */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** True when `segment` (alphabet already checked) is the one canonical encoding of its bytes. */
export function isCanonicalBase64Url(segment: string): boolean {
  const tail = segment.length % 4;
  if (tail === 0) return true;
  if (tail === 1) return false;
  const lastValue = ALPHABET.indexOf(segment[segment.length - 1]!);
  return (lastValue & (tail === 2 ? 0x0f : 0x03)) === 0;
}

const DECODE_TABLE = new Uint8Array(128).fill(0xff);
for (let i = 0; i < ALPHABET.length; i++) DECODE_TABLE[ALPHABET.charCodeAt(i)] = i;

/** Decodes a short segment (an HS256 signature) faster than the native decoder; throws outside the alphabet. */
export function decodeShortBase64Url(segment: string): Uint8Array<ArrayBuffer> {
  const length = segment.length;
  if (length % 4 === 1) throw new SyntaxError("base64url segment has an impossible length");
  const bytes = new Uint8Array((length * 3) >> 2);
  let accumulator = 0;
  let bits = 0;
  let out = 0;
  for (let i = 0; i < length; i++) {
    const code = segment.charCodeAt(i);
    const value = code < 128 ? DECODE_TABLE[code]! : 0xff;
    if (value === 0xff) throw new SyntaxError("base64url segment has a character outside the alphabet");
    accumulator = ((accumulator << 6) | value) & 0x3fff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = accumulator >> bits;
    }
  }
  return bytes;
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
  const bytes =
    typeof input === "string" ? encoder.encode(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}
