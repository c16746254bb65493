/** Reads small JSON or form bodies with a hard size limit, and validates them with a route's parser (`fields.ts`). */
import { GatewayError } from "../gateway-error";

export const MAX_BODY_BYTES = 16 * 1024;

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError("payload_too_large", `The body must not exceed ${limit} bytes.`);
}

function decodeText(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new GatewayError("invalid_request", "The body is not valid UTF-8.");
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_request", "The body is not valid JSON.");
  }
}

function parseForm(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(fields, name))
      throw new GatewayError("invalid_request", `The field ${name} is given more than once.`);
    fields[name] = value;
  }
  return fields;
}

/** Reads a JSON or form body (415 otherwise, 413 past {@link MAX_BODY_BYTES}) and validates it with `parse`. */
export async function readBody<T>(request: Request, parse: (raw: unknown) => T): Promise<T> {
  const mediaType = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType !== "application/json" && mediaType !== "application/x-www-form-urlencoded") {
    throw new GatewayError("unsupported_media_type", "Send application/json or application/x-www-form-urlencoded.");
  }
  const text = decodeText(await readLimited(request, MAX_BODY_BYTES));
  return parse(mediaType === "application/json" ? parseJson(text) : parseForm(text));
}

/** Reads a body as UTF-8 text whatever its type: 413 past {@link MAX_BODY_BYTES}, 400 unless UTF-8. */
export async function readText(request: Request): Promise<string> {
  return decodeText(await readLimited(request, MAX_BODY_BYTES));
}
