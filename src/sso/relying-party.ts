/** The OpenID Connect relying party, on `oauth4webapi`: discovery, the code flow, the ID token and its signature. */
import * as oauth from "oauth4webapi";
import { LruCache } from "../cache/lru";
import { DeadlineExceeded, withinDeadline } from "../deadline";
import { SsoFailure, type SsoErrorCode } from "./failure";

const IDP_WAIT_MS = 5_000;
const DISCOVERY_TTL_MS = 3_600_000;
const SCOPE = "openid email";
const CONNECTIONS_LIMIT = 1_000;

/** What the gateway knows of an identity provider: its issuer and this gateway's client there. */
export interface RelyingPartyClient {
  issuer: string;
  clientId: string;
}

/** Where a sign-in starts at the identity provider, and what the callback needs to finish it. */
export interface AuthorizationRequest {
  url: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The callback's inputs besides the connection: the query, and what the start remembered. */
export interface CallbackInput {
  query: URLSearchParams;
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  clientSecret: string;
}

/** The verified ID token claims the gateway reads. */
export type IdTokenClaims = oauth.IDToken & { email?: unknown; email_verified?: unknown; xms_edov?: unknown };

/** http is allowed for an issuer on loopback only (the local provider of `npm run dev` and the tests). */
function onLoopback(url: URL): boolean {
  return url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
}

function unavailable(stage: string, cause: unknown): SsoFailure {
  const message = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new SsoFailure(
    "idp_unavailable",
    "temporarily_unavailable",
    "The identity provider did not answer in time; try again shortly.",
    `${stage}: ${message}`,
  );
}

/** A transport failure or a wait that ran out: the provider is down or slow, nothing was decided. */
function isTransportFailure(error: unknown): boolean {
  return (
    error instanceof DeadlineExceeded ||
    (error instanceof Error &&
      (error.name === "AbortError" || error.name === "TimeoutError" || error instanceof TypeError))
  );
}

/** A key set that does not come as a 200 JSON answer is a provider that is down, not a refused ID token. */
async function fetchKeySet(url: string, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (response.status !== 200) throw new TypeError(`key set answered ${response.status}`);
  const body = await response.text();
  try {
    JSON.parse(body);
  } catch {
    throw new TypeError("key set is not JSON");
  }
  return new Response(body, response);
}

/** The relying party of one isolate: its caches outlive requests, its calls do not. */
export class RelyingParty {
  private readonly discovered: LruCache<string, oauth.AuthorizationServer>;

  private readonly waitMs: number;

  constructor({ waitMs = IDP_WAIT_MS, now = () => Date.now() }: { waitMs?: number; now?: () => number } = {}) {
    this.waitMs = waitMs;
    this.discovered = new LruCache({ maxEntries: CONNECTIONS_LIMIT, ttlMs: DISCOVERY_TTL_MS, now });
  }

  private async call<T>(stage: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    try {
      return await withinDeadline(() => work(controller.signal), this.waitMs);
    } catch (error) {
      controller.abort();
      if (isTransportFailure(error)) throw unavailable(stage, error);
      throw error;
    }
  }

  private options(issuer: URL, signal: AbortSignal) {
    return { signal, [oauth.allowInsecureRequests]: issuer.protocol === "http:" && onLoopback(issuer) };
  }

  /** The provider's metadata (`/.well-known/openid-configuration`), fetched once an hour per isolate. */
  async metadata(issuer: string): Promise<oauth.AuthorizationServer> {
    const cached = this.discovered.get(issuer);
    if (cached) return cached;
    const url = new URL(issuer);
    const server = await this.call("discovery", async (signal) => {
      const response = await oauth.discoveryRequest(url, { ...this.options(url, signal), algorithm: "oidc" });
      if (response.status >= 500) throw new TypeError(`discovery answered ${response.status}`);
      return oauth.processDiscoveryResponse(url, response);
    }).catch((error: unknown) => {
      if (error instanceof SsoFailure) throw error;
      // a document that is not the issuer's (wrong issuer, not JSON): as unusable as a provider that is down
      throw unavailable("discovery", error);
    });
    this.discovered.set(issuer, server);
    return server;
  }

  /** A new authorization request: fresh `state`, `nonce` and PKCE verifier, the URL to send the browser to. */
  async authorizationRequest(
    client: RelyingPartyClient,
    redirectUri: string,
    loginHint: string | undefined,
  ): Promise<AuthorizationRequest> {
    const server = await this.metadata(client.issuer);
    // the browser goes there with the state and the email: https, or http on loopback as for the issuer
    const url = URL.parse(server.authorization_endpoint ?? "");
    if (!url || !(url.protocol === "https:" || (url.protocol === "http:" && onLoopback(url))))
      throw unavailable("discovery", "no usable authorization_endpoint");
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const parameters = {
      client_id: client.clientId,
      redirect_uri: redirectUri,
      response_type: "code",
      scope: SCOPE,
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      ...(loginHint === undefined ? {} : { login_hint: loginHint }),
    };
    for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
    return { url: url.href, state, nonce, codeVerifier };
  }

  /** Finishes a sign-in (checks: docs/security.md § Single sign-on): the verified claims; throws {@link SsoFailure}. */
  async redeem(client: RelyingPartyClient, input: CallbackInput): Promise<IdTokenClaims> {
    const server = await this.metadata(client.issuer);
    const oauthClient: oauth.Client = { client_id: client.clientId };
    let parameters: URLSearchParams;
    try {
      parameters = oauth.validateAuthResponse(server, oauthClient, input.query, input.state);
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError)
        throw new SsoFailure(
          "idp_error",
          providerError(error.error),
          "The identity provider did not sign you in.",
          error.error,
        );
      throw new SsoFailure("response_invalid", "access_denied", "The sign-in response was not valid.", String(error));
    }
    const issuer = new URL(client.issuer);
    const { response, claims } = await this.call("token", async (signal) => {
      const response = await oauth.authorizationCodeGrantRequest(
        server,
        oauthClient,
        oauth.ClientSecretBasic(input.clientSecret),
        parameters,
        input.redirectUri,
        input.codeVerifier,
        this.options(issuer, signal),
      );
      if (response.status >= 500) throw new TypeError(`token endpoint answered ${response.status}`);
      try {
        const result = await oauth.processAuthorizationCodeResponse(server, oauthClient, response, {
          expectedNonce: input.nonce,
          requireIdToken: true,
        });
        return { response, claims: oauth.getValidatedIdTokenClaims(result) as IdTokenClaims };
      } catch (error) {
        if (error instanceof oauth.ResponseBodyError)
          throw new SsoFailure(
            "code_rejected",
            "access_denied",
            "The sign-in could not be completed; start again.",
            error.error,
          );
        if (isTransportFailure(error)) throw error;
        throw idTokenInvalid(error);
      }
    });
    await this.call("jwks", async (signal) => {
      try {
        await this.verifySignature(client.issuer, server, response, signal);
      } catch (error) {
        if (isTransportFailure(error)) throw error;
        throw idTokenInvalid(error);
      }
    });
    return claims;
  }

  /**
   * Checks the ID token's signature against the provider's JWKS (asymmetric algorithms only), which oauth4webapi
   * keeps five minutes; an unknown `kid` fetches it again at once, under a fresh copy of the metadata it is cached by.
   */
  private async verifySignature(
    issuer: string,
    server: oauth.AuthorizationServer,
    response: Response,
    signal: AbortSignal,
  ): Promise<void> {
    const options = { ...this.options(new URL(issuer), signal), [oauth.customFetch]: fetchKeySet };
    try {
      await oauth.validateApplicationLevelSignature(server, response, options);
    } catch (error) {
      if (!(error instanceof oauth.OperationProcessingError && error.code === oauth.KEY_SELECTION)) throw error;
      const refreshed = { ...server };
      await oauth.validateApplicationLevelSignature(refreshed, response, options);
      this.discovered.set(issuer, refreshed);
    }
  }
}

/** RFC 6749 §4.1.2.1 codes the provider may answer with and the app may see; anything else reads as access_denied. */
function providerError(error: string): SsoErrorCode {
  return error === "temporarily_unavailable" || error === "server_error" ? error : "access_denied";
}

function idTokenInvalid(error: unknown): SsoFailure {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new SsoFailure(
    "id_token_invalid",
    "access_denied",
    "The identity provider's answer could not be verified.",
    reason,
  );
}
