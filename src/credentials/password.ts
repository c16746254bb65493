/** Peppered PBKDF2-SHA256 password hashes in a self-describing PHC-style string. */
import { decodeBase64Url, encodeBase64Url } from "../tokens/base64url";

/** Production Workers refuse PBKDF2 above 100,000 iterations (local workerd does not); stored hashes name theirs. */
export const PBKDF2_ITERATIONS = 100_000;
/** Version of `PASSWORD_PEPPER` that new hashes are made with; bump when the pepper rotates. */
export const PEPPER_VERSION = 1;
/** Longest password accepted, in UTF-8 bytes; checked before any hashing. */
export const MAX_PASSWORD_BYTES = 1024;

const SALT_BYTES = 16;
const HASH_BITS = 256;
const PREFIX = "$pbkdf2-sha256$";
const FORMAT = /^\$pbkdf2-sha256\$i=(\d{1,7}),p=(\d{1,3})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})$/;
const encoder = new TextEncoder();

interface PasswordHashParams {
  iterations: number;
  pepperVersion: number;
}

/** A stored-hash string that verifies nothing but costs a full derivation, for unknown accounts. */
export const DUMMY_PASSWORD_HASH = `${PREFIX}i=${PBKDF2_ITERATIONS},p=${PEPPER_VERSION}$${"A".repeat(22)}$${"A".repeat(43)}`;

async function derive(
  password: string,
  pepper: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array> {
  const pepperKey = await crypto.subtle.importKey(
    "raw",
    encoder.encode(pepper),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const peppered = await crypto.subtle.sign("HMAC", pepperKey, encoder.encode(password));
  const material = await crypto.subtle.importKey("raw", peppered, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    material,
    HASH_BITS,
  );
  return new Uint8Array(bits);
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let difference = 0;
  for (let i = 0; i < a.byteLength; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/** Hashes `password` with a fresh 16-byte salt under `pepper`. */
export async function hashPassword(password: string, pepper: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, pepper, salt, PBKDF2_ITERATIONS);
  return `${PREFIX}i=${PBKDF2_ITERATIONS},p=${PEPPER_VERSION}$${encodeBase64Url(salt)}$${encodeBase64Url(hash)}`;
}

function passwordHashParams(stored: string): PasswordHashParams | undefined {
  const match = FORMAT.exec(stored);
  return match ? { iterations: Number(match[1]), pepperVersion: Number(match[2]) } : undefined;
}

/** Checks `password` against a stored PBKDF2 hash in constant time; a malformed one costs a derivation too. */
export async function verifyPassword(password: string, stored: string, pepper: string): Promise<boolean> {
  const match = FORMAT.exec(stored);
  const usable = match !== null && Number(match[1]) >= 1 && Number(match[1]) <= PBKDF2_ITERATIONS;
  const [iterations, salt, expected]: [number, Uint8Array<ArrayBuffer>, Uint8Array] = usable
    ? [Number(match[1]), decodeBase64Url(match[3]!), decodeBase64Url(match[4]!)]
    : [PBKDF2_ITERATIONS, new Uint8Array(SALT_BYTES), new Uint8Array(HASH_BITS / 8)];
  const actual = await derive(password, pepper, salt, iterations);
  return usable && constantTimeEqual(actual, expected);
}

/** True when a stored hash should be replaced after a successful login (old parameters or format). */
export function needsRehash(stored: string): boolean {
  const params = passwordHashParams(stored);
  return !params || params.iterations !== PBKDF2_ITERATIONS || params.pepperVersion !== PEPPER_VERSION;
}
