// Single sign-on in the tests: connecting an organisation to the local OpenID Provider (the admin route), and
// a small browser (a cookie jar per host, redirects followed by hand) that signs in on the provider's own login page.
import { exports } from "cloudflare:workers";
import { expect, inject } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { GATEWAY, adminCall, randomIp } from "./helpers";

/** The provider and the never-answering and closed addresses of test/oidc-provider.setup.mjs. */
export const oidc = inject("oidc");
/** A browser app on CORS_ORIGINS (vitest.config.ts): where sign-ins return to. */
export const APP = "https://app.test";

/** Connects an organisation (by identifier) to an identity provider, as `npm run admin -- org:sso:set` does. */
export async function connectSso(
  organisation: string,
  options: { issuer?: string; client?: { id: string; secret: string }; domains: string[]; required?: boolean },
): Promise<void> {
  const client = options.client ?? oidc.clients.sso;
  const response = await adminCall("org/sso/set", {
    org: organisation,
    issuer: options.issuer ?? oidc.issuer,
    client_id: client.id,
    client_secret: client.secret,
    domains: options.domains,
    required: options.required ?? false,
  });
  expect(response.status, await response.text()).toBe(200);
}

/** Tells the provider what to do to the next token response of `client` (claims, signature, or no answer at all). */
export async function nextTokenResponse(change: {
  claims?: Record<string, unknown>;
  sign?: "unknown-key" | "published-kid-other-key" | "none" | "hs256-client-secret";
  hang?: boolean;
  client?: string;
}): Promise<void> {
  const response = await fetch(`${oidc.issuer}/__test/next-token`, {
    method: "POST",
    body: JSON.stringify({ client: oidc.clients.sso.id, ...change }),
  });
  expect(response.status).toBe(204);
}

/** Rotates the provider's signing key (the previous one stays in its JWKS); resolves to the new kid. */
export async function rotateProviderKey(): Promise<string> {
  const response = await fetch(`${oidc.issuer}/__test/rotate`, { method: "POST" });
  return ((await response.json()) as { kid: string }).kid;
}

/** Sends a request to the gateway the way a test chooses (default: the Worker's own fetch handler). */
export type GatewayFetch = (request: Request) => Promise<Response>;

/** A browser: its own cookies per host, its own client IP, redirects in its hands. */
export class Browser {
  private readonly jars = new Map<string, Map<string, string>>();
  readonly ip = randomIp();

  constructor(private readonly gateway: GatewayFetch = (request) => exports.default.fetch(request)) {}

  /** One request, without following redirects; cookies sent and stored as a browser would (paths aside). */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const jar = this.jars.get(target.host);
    if (jar && jar.size > 0) headers.set("Cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
    const toGateway = url.startsWith(GATEWAY);
    if (toGateway) headers.set("CF-Connecting-IP", this.ip);
    const request = new Request(url, { ...init, headers, redirect: "manual" });
    const response = toGateway ? await this.gateway(request) : await fetch(request);
    for (const cookie of response.headers.getSetCookie()) this.store(target.host, cookie);
    return response;
  }

  private store(host: string, setCookie: string): void {
    const [pair, ...attributes] = setCookie.split(";");
    const name = pair!.slice(0, pair!.indexOf("=")).trim();
    const value = pair!.slice(pair!.indexOf("=") + 1).trim();
    const jar = this.jars.get(host) ?? new Map<string, string>();
    this.jars.set(host, jar);
    const gone = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute)) || value === "";
    if (gone) jar.delete(name);
    else jar.set(name, value);
  }

  /** A cookie this browser holds for `host`. */
  cookie(host: string, name: string): string | undefined {
    return this.jars.get(host)?.get(name);
  }

  /** Follows redirects from `url` until one points at `stopAt` (returned unfetched) or a page answers. */
  async follow(url: string, stopAt: (url: string) => boolean): Promise<{ url: string; response?: Response }> {
    let current = url;
    for (let hop = 0; hop < 12; hop++) {
      if (stopAt(current)) return { url: current };
      const response = await this.fetch(current);
      const location = response.headers.get("Location");
      if (response.status < 300 || response.status >= 400 || location === null) return { url: current, response };
      current = new URL(location, current).href;
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

/** The gateway's start URL for `email`, returning to the test app. */
export function startUrl(email: string, returnTo = `${APP}/signed-in`): string {
  return `${GATEWAY}/authenticate/sso/start?${new URLSearchParams({ email, return_to: returnTo })}`;
}

/**
 * Starts a sign-in at the gateway and signs in on the provider's login page as `email`; resolves to the callback URL
 * the provider sent the browser to (not yet fetched).
 */
export async function signInAtProvider(browser: Browser, email: string, password = SEED_PASSWORD): Promise<string> {
  const start = await browser.fetch(startUrl(email));
  expect(start.status, await start.clone().text()).toBe(302);
  const toProvider = start.headers.get("Location")!;
  expect(toProvider.startsWith(oidc.issuer), toProvider).toBe(true);
  const page = await browser.follow(toProvider, () => false);
  const html = await page.response!.text();
  expect(page.response!.status, html).toBe(200);
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  expect(action, html).toBeDefined();
  const submitted = await browser.fetch(new URL(action!, page.url).href, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ login: email, password }),
  });
  const location = submitted.headers.get("Location");
  expect(location, `provider answered ${submitted.status}: ${await submitted.clone().text()}`).not.toBeNull();
  const callback = await browser.follow(new URL(location!, page.url).href, (url) => url.startsWith(GATEWAY));
  expect(callback.url.startsWith(`${GATEWAY}/authenticate/sso/callback?`), callback.url).toBe(true);
  return callback.url;
}

/** A full sign-in: provider login, then the callback; resolves to the gateway's answer to the callback. */
export async function signIn(browser: Browser, email: string): Promise<Response> {
  return browser.fetch(await signInAtProvider(browser, email));
}

/** The `error` and `error_description` a failed sign-in sent the app, from the callback's 302. */
export function appError(response: Response): { error: string | null; description: string | null; url: URL } {
  expect(response.status).toBe(302);
  const url = new URL(response.headers.get("Location")!);
  expect(url.origin).toBe(APP);
  return { error: url.searchParams.get("error"), description: url.searchParams.get("error_description"), url };
}
