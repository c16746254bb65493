/** Single sign-on for organisations: starting a sign-in, finishing it, and the rule that refuses passwords. */
import type { ConfigSource } from "../config";
import { normalizeDomain, normalizeEmail } from "../credentials/email";
import { sha256Hex } from "../digest";
import { ineligibility } from "../policy/eligibility";
import { openSecret, type SecretOwner } from "../dynamic-secrets/crypto";
import type { Logger } from "../log";
import type { MemberReads } from "../revocation/reads";
import type { Database, Membership } from "../storage/db";
import {
  connectionForEmailDomain,
  connectionForOrganisationDomain,
  connectionOf,
  findSsoMembership,
  insertState,
  passwordsRefusedFor,
  pinSsoIdentity,
  takeState,
  type SsoConnection,
} from "../storage/sso";
import { encodeBase64Url } from "../tokens/base64url";
import { SSO_STATE_TTL_MS } from "./browser";
import { SsoFailure, storageFailure } from "./failure";
import type { IdTokenClaims, RelyingParty } from "./relying-party";

/** Where a connection's client secret belongs; bound into its ciphertext like a dynamic secret's kid. */
export function ssoSecretOwner(organisationIdentifier: string): SecretOwner {
  return { organisation: organisationIdentifier, kid: "sso-client-secret" };
}

/** What {@link SsoLogins} works with; all owned by the gateway. */
export interface SsoLoginsDeps {
  source: ConfigSource;
  db: Database;
  /** Replica reads for the password rule, fresh enough for every connection change in force. */
  reads: MemberReads;
  now: () => number;
  /** The AES-GCM key of `SECRETS_KEY` that seals client secrets. */
  sealingKey: () => Promise<CryptoKey>;
  relyingParty: RelyingParty;
}

/** A sign-in to start: the member's email or the organisation's domain, and where the browser goes back to. */
export interface StartInput {
  email?: string | undefined;
  domain?: string | undefined;
  returnTo: string;
  /** The gateway's callback as the browser reaches it; registered at the identity provider. */
  redirectUri: string;
}

/** A started sign-in: where to send the browser, and the value of its binding cookie. */
export interface Started {
  location: string;
  binding: string;
  organisationId: number;
}

/** A finished sign-in: the member to issue tokens to, or why not and whom it concerned. */
export type Finished =
  | { ok: true; membership: Membership; returnTo: string; firstLogin: boolean }
  | { ok: false; failure: SsoFailure; returnTo?: string; organisationId?: number; memberId?: number };

function domainOf(email: string): string {
  return email.slice(email.lastIndexOf("@") + 1);
}

/** Per-isolate single sign-on: D1 for connections and states, the relying party for the identity providers. */
export class SsoLogins {
  constructor(private readonly deps: SsoLoginsDeps) {}

  /** Finds the connection, asks the provider where to sign in, stores the state; throws {@link SsoFailure}. */
  async start(input: StartInput): Promise<Started> {
    const { db, now, relyingParty } = this.deps;
    const email = input.email === undefined ? undefined : normalizeEmail(input.email);
    const domain = email === undefined ? normalizeDomain(input.domain ?? "") : domainOf(email);
    const connection =
      email === undefined
        ? ((await connectionForOrganisationDomain(db, domain)) ?? (await connectionForEmailDomain(db, domain)))
        : await connectionForEmailDomain(db, domain);
    if (!connection)
      throw new SsoFailure("no_connection", "invalid_request", `No single sign-on is set up for ${domain}.`);
    const request = await relyingParty.authorizationRequest(connection, input.redirectUri, email);
    const binding = encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    const at = now();
    await insertState(
      db,
      {
        stateHash: await sha256Hex(request.state),
        organisationId: connection.organisationId,
        browserHash: await sha256Hex(binding),
        nonce: request.nonce,
        codeVerifier: request.codeVerifier,
        redirectUri: input.redirectUri,
        returnTo: input.returnTo,
        expiresAt: at + SSO_STATE_TTL_MS,
      },
      at,
    );
    return { location: request.url, binding, organisationId: connection.organisationId };
  }

  /** Finishes a sign-in from the callback and binding cookie; `returnToAllowed` re-checks the stored `return_to`. */
  async finish(
    query: URLSearchParams,
    binding: string | undefined,
    returnToAllowed: (url: string) => boolean,
  ): Promise<Finished> {
    const { db, now } = this.deps;
    const stateParameter = query.get("state") ?? "";
    const state = stateParameter === "" ? undefined : await takeState(db, await sha256Hex(stateParameter));
    if (!state) {
      return {
        ok: false,
        failure: new SsoFailure("state_invalid", "invalid_request", "Unknown, used or expired sign-in; start again."),
      };
    }
    if (!returnToAllowed(state.returnTo)) {
      const failure = new SsoFailure("state_invalid", "invalid_request", "The app to return to is no longer allowed.");
      return { ok: false, failure, organisationId: state.organisationId };
    }
    const returnTo = state.returnTo;
    const failed = (failure: SsoFailure, memberId?: number): Finished => ({
      ok: false,
      failure,
      returnTo,
      organisationId: state.organisationId,
      memberId,
    });
    if (state.expiresAt <= now())
      return failed(new SsoFailure("state_expired", "access_denied", "The sign-in took too long; start again."));
    if (binding === undefined || (await sha256Hex(binding)) !== state.browserHash)
      return failed(
        new SsoFailure(
          "browser_mismatch",
          "access_denied",
          "This sign-in was not started in this browser; start again.",
        ),
      );
    try {
      const connection = await connectionOf(db, state.organisationId);
      if (!connection)
        return failed(
          new SsoFailure("connection_removed", "access_denied", "Single sign-on is no longer set up here."),
        );
      const claims = await this.deps.relyingParty.redeem(connection, {
        query,
        state: stateParameter,
        nonce: state.nonce,
        codeVerifier: state.codeVerifier,
        redirectUri: state.redirectUri,
        clientSecret: await this.clientSecret(connection),
      });
      const { membership, firstLogin } = await this.memberOf(connection, claims);
      return { ok: true, membership, returnTo, firstLogin };
    } catch (error) {
      if (error instanceof MemberRefused) return failed(error.failure, error.memberId);
      // the state is spent: a storage failure from here on goes back to the app, which can start again
      const failure = error instanceof SsoFailure ? error : storageFailure(error);
      if (failure) return failed(failure);
      throw error;
    }
  }

  private async clientSecret(connection: SsoConnection): Promise<string> {
    try {
      return await openSecret(
        await this.deps.sealingKey(),
        ssoSecretOwner(connection.organisationIdentifier),
        connection.clientSecret,
      );
    } catch (error) {
      throw new SsoFailure("server_error", "server_error", "Single sign-on is misconfigured here.", String(error));
    }
  }

  /** The member the verified claims name, its IdP identity checked (and pinned at the first SSO login). */
  private async memberOf(
    connection: SsoConnection,
    claims: IdTokenClaims,
  ): Promise<{ membership: Membership; firstLogin: boolean }> {
    const { db, source } = this.deps;
    if (typeof claims.email !== "string" || typeof claims.sub !== "string")
      throw new SsoFailure("email_unverified", "access_denied", "The identity provider sent no email address.");
    // Entra ID states a verified email domain as `xms_edov` instead of `email_verified`; where both are sent, the latter decides.
    const verified = claims.email_verified === undefined ? claims.xms_edov === true : claims.email_verified === true;
    if (!verified)
      throw new SsoFailure("email_unverified", "access_denied", "The identity provider has not verified this email.");
    const email = normalizeEmail(claims.email);
    if (!connection.domains.includes(domainOf(email)))
      throw new SsoFailure("email_domain", "access_denied", "This email's domain does not sign in here.");
    const membership = await findSsoMembership(db, connection.organisationId, email);
    if (!membership)
      throw new SsoFailure("not_member", "access_denied", "No member of this organisation has this email.");
    const { member, organisation } = membership;
    const identity = { issuer: connection.issuer, subject: claims.sub };
    const refuse = (failure: SsoFailure) => new MemberRefused(failure, member.id);
    if (member.ssoSubject !== null && (member.ssoIssuer !== identity.issuer || member.ssoSubject !== identity.subject))
      throw refuse(
        new SsoFailure(
          "subject_mismatch",
          "access_denied",
          "This email now belongs to another identity; ask your administrator.",
        ),
      );
    const ineligible = ineligibility(source.config, member, organisation);
    if (ineligible === "suspended")
      throw refuse(new SsoFailure("suspended", "access_denied", "This account is suspended."));
    if (ineligible === "planNotEligible")
      throw refuse(
        new SsoFailure("plan_not_eligible", "access_denied", "This organisation's plan does not include API access."),
      );
    const firstLogin = member.ssoSubject === null;
    if (firstLogin && !(await pinSsoIdentity(db, member, identity)))
      throw refuse(
        new SsoFailure("subject_mismatch", "access_denied", "This identity is already linked to another member."),
      );
    return { membership, firstLogin };
  }

  /** Whether a password login with this email (and domain) gets 403 `sso_required`: decided by the domains alone. */
  passwordsRefused(log: Logger, email: string, domain: string | undefined): Promise<boolean> {
    const emailDomain = domainOf(normalizeEmail(email));
    const organisationDomain = domain === undefined ? undefined : normalizeDomain(domain);
    const domains = organisationDomain === undefined ? [emailDomain] : [emailDomain, organisationDomain];
    return this.deps.reads.read(
      log,
      (db) => passwordsRefusedFor(db, emailDomain, organisationDomain),
      () => ({ domains }),
    );
  }
}

/** A refusal about a member that was found: the audit row names it. */
class MemberRefused extends Error {
  constructor(
    readonly failure: SsoFailure,
    readonly memberId: number,
  ) {
    super(failure.message);
  }
}
