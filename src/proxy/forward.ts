/** Forwards an authorized request to the origin: streamed body, trusted headers, bounded wait. */
import type { Handler } from "hono";
import { getConfig, type AppEnv, type Bindings, type Config } from "../config";
import { GatewayError } from "../errors";
import type { AccessClaims } from "../tokens/claims";
import { signAssertion } from "./assertion";
import { sanitizedHeaders, setIdentityHeaders } from "./headers";

/** The origin: the `ORIGIN` service binding when bound, else `ORIGIN_URL` over the network. */
interface Origin {
  url: URL;
  fetcher: { fetch(request: Request): Promise<Response> };
}

function originFor(env: Bindings, config: Config, incoming: URL): Origin {
  if (env.ORIGIN) return { url: incoming, fetcher: env.ORIGIN };
  const base = config.originUrl;
  if (!base) throw new GatewayError("origin_unreachable", "No origin is configured.");
  const url = new URL(base);
  url.pathname = base.pathname.replace(/\/$/, "") + incoming.pathname;
  url.search = incoming.search;
  return { url, fetcher: { fetch: (request) => fetch(request) } };
}

/** Everything {@link forwardToOrigin} needs about the request in flight. */
export interface ForwardInput {
  request: Request;
  claims: AccessClaims;
  requestId: string;
}

/**
 * Sends the request on with the same method, path, query and streamed body. Unreachable origin →
 * 502, no response headers within `ORIGIN_TIMEOUT_MS` → 504; the origin's response passes through.
 */
export async function forwardToOrigin(env: Bindings, config: Config, { request, claims, requestId }: ForwardInput): Promise<Response> {
  const incoming = new URL(request.url);
  const origin = originFor(env, config, incoming);
  const headers = sanitizedHeaders(request.headers);
  const clientEncoding = (request as { cf?: { clientAcceptEncoding?: string } }).cf?.clientAcceptEncoding;
  if (clientEncoding !== undefined) headers.set("Accept-Encoding", clientEncoding);
  const path = origin.url.pathname + origin.url.search;
  setIdentityHeaders(headers, claims, requestId, await signAssertion(config, claims, { method: request.method, path, requestId }));

  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), config.originTimeoutMs);
  const upstream = new Request(origin.url, { method: request.method, headers, body: request.body, redirect: "manual", signal: abort.signal });
  try {
    const response = await origin.fetcher.fetch(upstream);
    return new Response(response.body, response);
  } catch (error) {
    if (abort.signal.aborted) throw new GatewayError("origin_timeout", "The origin did not answer in time.", { cause: error });
    throw new GatewayError("origin_unreachable", "The origin could not be reached.", { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** The final handler of the proxied API: forwards the authenticated, authorized request. */
export function forward(): Handler<AppEnv> {
  return (c) => forwardToOrigin(c.env, getConfig(c.env), { request: c.req.raw, claims: c.get("claims"), requestId: c.get("requestId") });
}
