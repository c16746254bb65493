/** What happens to each client header, by its name alone, and the forwarding headers (docs/forwarding.md § Headers). */
import { GatewayError } from "../gateway-error";

/** Outbound request headers by lower-case name: a null-prototype record, cheapest for `fetch` (bench/README.md § 2). */
export type OutboundHeaders = Record<string, string>;

/** An empty {@link OutboundHeaders}: no prototype, so a client header named `__proto__` is just a name. */
export function outboundHeaders(): OutboundHeaders {
  return Object.create(null) as OutboundHeaders;
}

/** `drop`: never forwarded. `refuse`: the whole request is refused with 400. */
export type HeaderRule = "drop" | "refuse";

const METHOD_OVERRIDE_HEADERS = ["x-http-method-override", "x-http-method", "x-method-override"] as const;

const RULES: ReadonlyMap<string, HeaderRule> = new Map<string, HeaderRule>([
  ["authorization", "drop"],
  ["proxy-authorization", "drop"],
  ["connection", "drop"],
  ["keep-alive", "drop"],
  ["proxy-connection", "drop"],
  ["te", "drop"],
  ["trailer", "drop"],
  ["upgrade", "drop"],
  ["host", "drop"],
  ["x-original-url", "drop"],
  ["x-rewrite-url", "drop"],
  ["x-original-uri", "drop"],
  ["x-original-host", "drop"],
  ["x-host", "drop"],
  ["forwarded", "drop"],
  ["x-real-ip", "drop"],
  ["x-client-ip", "drop"],
  ["x-cluster-client-ip", "drop"],
  ["true-client-ip", "drop"],
  ...METHOD_OVERRIDE_HEADERS.map((name) => [name, "refuse"] as const),
]);

const DROPPED_PREFIXES = ["x-member-", "x-organisation-", "x-auth-", "x-gateway-", "x-forwarded-"] as const;

/** The rule for a header name as `Headers` iterates it (lower case); undefined: forwarded as sent. */
export function headerRule(name: string): HeaderRule | undefined {
  const key = name.includes("_") ? name.replaceAll("_", "-") : name;
  const rule = RULES.get(key);
  if (rule !== undefined || !key.startsWith("x-")) return rule;
  for (const prefix of DROPPED_PREFIXES) if (key.startsWith(prefix)) return "drop";
  return undefined;
}

/** The 400 for a request that asks for a method override (header `name`, or the `_method` query parameter). */
export function methodOverrideRefused(name: string): GatewayError {
  return new GatewayError(
    "invalid_request",
    `Method overrides (${name}) are not accepted: the gateway authorises the request's own method, so send that method.`,
  );
}

/** Whether a query parameter is `_method`: any case, PHP's `.`, space or `[` for `_`, with or without `[…]`. */
function isMethodParameter(name: string): boolean {
  return /^[_ .[]method(?:\[|$)/i.test(name);
}

/** Throws the 400 when the query string of `url` carries a `_method` parameter, however spelled (a path segment may hold `&_method=`). */
export function refuseMethodParameter(url: string): void {
  const start = url.indexOf("?");
  if (start === -1) return;
  const query = url.slice(start + 1);
  if (!query.includes("%") && !/method/i.test(query)) return;
  for (const name of new URLSearchParams(query).keys())
    if (isMethodParameter(name)) throw methodOverrideRefused("_method");
}

/** An IPv4 or IPv6 address as Cloudflare writes `CF-Connecting-IP`; anything else is not repeated. */
const IP_ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]{2,45})$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function forwardedValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value}"`;
}

/** Adds `X-Forwarded-For` (a valid `CF-Connecting-IP` only), `-Proto`, `-Host` and the same as RFC 7239 `Forwarded`. */
export function addForwardingHeaders(headers: OutboundHeaders, clientIp: string | null, requestUrl: string): void {
  const colon = requestUrl.indexOf(":");
  const proto = requestUrl.slice(0, colon);
  const hostStart = colon + 3;
  const hostEnd = requestUrl.indexOf("/", hostStart);
  const host = requestUrl.slice(hostStart, hostEnd === -1 ? undefined : hostEnd);
  let forwarded = `host=${forwardedValue(host)};proto=${proto}`;
  if (clientIp !== null && IP_ADDRESS.test(clientIp)) {
    headers["x-forwarded-for"] = clientIp;
    forwarded = `for=${clientIp.includes(":") ? `"[${clientIp}]"` : clientIp};${forwarded}`;
  }
  headers["x-forwarded-proto"] = proto;
  headers["x-forwarded-host"] = host;
  headers.forwarded = forwarded;
}
