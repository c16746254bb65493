/** Forwards an authorized request to the origin: streamed body, trusted headers, bounded wait. */
import type { Bindings, Config } from "../config";
import { DeadlineExceeded, withinDeadline } from "../deadline";
import { GatewayError } from "../gateway-error";
import { pathAndQuery } from "../http/request-url";
import type { TraceContext } from "../http/trace";
import type { AccessClaims } from "../tokens/claims";
import type { JwsSigner } from "../tokens/sign";
import { signAssertion } from "./assertion";
import { addForwardingHeaders, refuseMethodParameter } from "./header-rules";
import type { ProxiedRequest } from "./request";
import { addIdentityHeaders, sanitizedHeaders } from "./headers";

function upstreamUrl(env: Bindings, config: Config, requestUrl: string): string {
  if (env.ORIGIN) return requestUrl;
  if (!config.originBase) throw new GatewayError("origin_unreachable", "No origin is configured.");
  return config.originBase + pathAndQuery(requestUrl);
}

interface ForwardInput {
  request: Request;
  claims: AccessClaims;
  requestId: string;
  trace: TraceContext;
  assertionSigner: JwsSigner;
  /** Seconds since the epoch. */
  now: number;
}

/** Sends the request on with its method, path, query and streamed body: 502 unreachable, 504 no headers in time. */
async function forwardToOrigin(
  env: Bindings,
  config: Config,
  { request, claims, requestId, trace, assertionSigner, now }: ForwardInput,
): Promise<Response> {
  const url = upstreamUrl(env, config, request.url);
  const clientEncoding = (request as { cf?: { clientAcceptEncoding?: string } }).cf?.clientAcceptEncoding;
  const headers = sanitizedHeaders(request.headers, {
    tracestate: !trace.continued,
    acceptEncoding: clientEncoding !== undefined,
  });
  refuseMethodParameter(request.url);
  addForwardingHeaders(headers, request.headers.get("CF-Connecting-IP"), request.url);
  headers.traceparent = trace.traceparent;
  if (clientEncoding !== undefined) headers["accept-encoding"] = clientEncoding;
  addIdentityHeaders(
    headers,
    claims,
    requestId,
    await signAssertion(
      config,
      assertionSigner,
      claims,
      { method: request.method, path: pathAndQuery(url), requestId },
      now,
    ),
  );

  // fetch(url, init): fetch(new Request(…)) would copy every header twice (bench/README.md § 2).
  const cancel = new AbortController();
  const init: RequestInit = {
    method: request.method,
    headers,
    body: request.body,
    redirect: "manual",
    signal: cancel.signal,
  };
  const origin = env.ORIGIN;
  try {
    // The deadline covers the response headers only, not a body still streaming.
    const response = await withinDeadline(
      () => (origin ? origin.fetch(url, init) : fetch(url, init)),
      config.originTimeoutMs,
    );
    return new Response(response.body, response);
  } catch (error) {
    if (error instanceof DeadlineExceeded) {
      cancel.abort(error); // the origin request (and a request body still uploading) ends with the 504
      throw new GatewayError("origin_timeout", "The origin did not answer in time.", { cause: error });
    }
    throw new GatewayError("origin_unreachable", "The origin could not be reached.", { cause: error });
  }
}

/** The proxy chain's final step: forwards the authenticated, authorized request. */
export async function forward(proxied: ProxiedRequest): Promise<Response> {
  const { services } = proxied;
  return forwardToOrigin(proxied.env, services.config, {
    request: proxied.request,
    claims: proxied.verifiedClaims,
    requestId: proxied.requestId,
    trace: proxied.trace,
    assertionSigner: (services.keys.importedAssertionKeys ?? (await services.keys.assertionKeys())).signer,
    now: Math.floor(services.now() / 1000),
  });
}
