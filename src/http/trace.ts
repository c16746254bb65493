/** W3C Trace Context Level 1: the client's `traceparent` validated strictly, or a new trace (docs/operating.md). */

/** The trace a request belongs to and the `traceparent` the origin gets; `continued` when the client's was valid. */
export interface TraceContext {
  readonly traceId: string;
  readonly traceparent: string;
  readonly continued: boolean;
}

const VERSION_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** A higher version: version 00's fields, then the end or a dash (a later version's fields, not interpreted). */
const LATER_VERSION = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
const SAMPLED = 0x01;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

function hex(bytes: Uint8Array, from: number, to: number): string {
  let out = "";
  for (let i = from; i < to; i++) out += HEX[bytes[i]!];
  return out;
}

/** The trace id and flags of a valid `traceparent` (lower-case, not version `ff`, no all-zero id), else undefined. */
export function parseTraceparent(value: string | null): { traceId: string; flags: number } | undefined {
  if (value === null) return undefined;
  let fields = VERSION_00.exec(value)?.slice(1);
  if (fields === undefined) {
    const later = LATER_VERSION.exec(value);
    // Version 00 must match exactly; ff is forbidden.
    if (later === null || later[1] === "00" || later[1] === "ff") return undefined;
    fields = later.slice(2);
  }
  const [traceId, parentId, flags] = fields as [string, string, string];
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  return { traceId, flags: parseInt(flags, 16) };
}

/** A version 4 UUID from 16 random bytes, as `crypto.randomUUID()` writes it. */
export function uuidFrom(random: Uint8Array): string {
  random[6] = (random[6]! & 0x0f) | 0x40;
  random[8] = (random[8]! & 0x3f) | 0x80;
  return `${hex(random, 0, 4)}-${hex(random, 4, 6)}-${hex(random, 6, 8)}-${hex(random, 8, 10)}-${hex(random, 10, 16)}`;
}

/** Continues a valid client trace (only `sampled` kept) or starts one; the parent-id is a new span id from `random`. */
export function traceContext(
  traceparent: string | null,
  random: Uint8Array = crypto.getRandomValues(new Uint8Array(24)),
): TraceContext {
  if (random[16] === 0) random[16] = 1; // a span id must not be all zero
  const spanId = hex(random, 16, 24);
  const parsed = parseTraceparent(traceparent);
  if (parsed) {
    const flags = parsed.flags & SAMPLED ? "01" : "00";
    return { traceId: parsed.traceId, traceparent: `00-${parsed.traceId}-${spanId}-${flags}`, continued: true };
  }
  if (random[0] === 0) random[0] = 1; // nor a trace id
  const traceId = hex(random, 0, 16);
  return { traceId, traceparent: `00-${traceId}-${spanId}-00`, continued: false };
}
