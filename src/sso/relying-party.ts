/** The OpenID Connect relying party: `oauth4webapi` for the protocol, `jose` for the ID token's signature. */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import * as oauth from "oauth4webapi";
import { LruCache } from "../cache/lru";
import { DeadlineExceeded, withinDeadline } from "../deadline";
import { SsoFailure, type SsoErrorCode } from "./failure";

const IDP_WAIT_MS = 5_000;
const DISCOVERY_TTL_MS = 3_600_000;
const JWKS_MAX_AGE_MS = 600_000;
/** Signature algorithms an ID token may use: asymmetric only (an HS256 token keyed with the client secret is refused). */
const ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
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
export type IdTokenClaims = JWTPayload & { email?: unknown; email_verified?: unknown; xms_edov?: unknown };

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

/** A transport failure, a timeout, or a key set not answered as 200 JSON (jose's generic error): nothing was decided. */
function isTransportFailure(error: unknown): boolean {
  return (
    error instanceof DeadlineExceeded ||
    error instanceof joseErrors.JWKSTimeout ||
    (error instanceof joseErrors.JOSEError && error.code === "ERR_JOSE_GENERIC") ||
    (error instanceof Error &&
      (error.name === "AbortError" || error.name === "TimeoutError" || error instanceof TypeError))
  );
}

/** The relying party of one isolate: its caches outlive requests, its calls do not. */
export class RelyingParty {
  private readonly discovered: LruCache<string, oauth.AuthorizationServer>;
  private readonly keySets: LruCache<string, ReturnType<typeof createRemoteJWKSet>>;

  private readonly waitMs: number;

  constructor({ waitMs = IDP_WAIT_MS, now = () => Date.now() }: { waitMs?: number; now?: () => number } = {}) {
    this.waitMs = waitMs;
    this.discovered = new LruCache({ maxEntries: CONNECTIONS_LIMIT, ttlMs: DISCOVERY_TTL_MS, now });
    this.keySets = new LruCache({ maxEntries: CONNECTIONS_LIMIT });
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
    const idToken = await this.call("token", async (signal) => {
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
      let result: oauth.TokenEndpointResponse;
      try {
        result = await oauth.processAuthorizationCodeResponse(server, oauthClient, response, {
          expectedNonce: input.nonce,
          requireIdToken: true,
        });
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
      return result.id_token!;
    });
    return this.call("jwks", async () => {
      try {
        const { payload } = await jwtVerify(idToken, this.keySet(server), {
          algorithms: ID_TOKEN_ALGORITHMS,
          issuer: client.issuer,
          audience: client.clientId,
        });
        return payload as IdTokenClaims;
      } catch (error) {
        if (isTransportFailure(error)) throw error;
        throw idTokenInvalid(error);
      }
    });
  }

  /** The provider's JWKS, fetched again at once for an unknown `kid` (docs/security.md § Single sign-on). */
  private keySet(server: oauth.AuthorizationServer): ReturnType<typeof createRemoteJWKSet> {
    const uri = server.jwks_uri;
    if (!uri) throw idTokenInvalid(new Error("the provider publishes no jwks_uri"));
    let keys = this.keySets.get(uri);
    if (!keys) {
      keys = createRemoteJWKSet(new URL(uri), {
        cacheMaxAge: JWKS_MAX_AGE_MS,
        cooldownDuration: 0,
        timeoutDuration: this.waitMs,
      });
      this.keySets.set(uri, keys);
    }
    return keys;
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
