/** `/authenticate/secrets`: an architect creates, lists and revokes the organisation's dynamic secrets. */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import type { AuditEventName } from "../audit/trail";
import type { AppEnv } from "./middleware";
import { GatewayError, refusal } from "../gateway-error";
import { auditRequest } from "./audit";
import { bearerAuth } from "./middleware";
import { readBody } from "../http/body";
import { objectBody, onlyFields, optionalString } from "../http/fields";
import { methodNotAllowed } from "../http/problem";
import {
  findMembershipState,
  insertSecretWithinLimit,
  listLiveSecrets,
  revokeLiveSecret,
  type MembershipState,
} from "../storage/dynamic-secrets";
import { isIdentifier } from "../tokens/claims";
import { generateKid, generateSecret, sealSecret } from "../dynamic-secrets/crypto";

/** Live secrets an organisation may hold at once; tokens without `kid` are tried against each. */
export const MAX_LIVE_SECRETS = 10;
const MANAGER_SCOPE = "architect";

/** Body of `POST /authenticate/secrets`; the body itself is optional. */
export interface CreateSecretBody {
  label?: string | undefined;
}

/** Validates the body of `POST /authenticate/secrets` (documented as `CreateSecretRequest`): `label` only. */
export function parseCreateSecretBody(raw: unknown): CreateSecretBody {
  const body = objectBody(raw);
  const label = optionalString(body, "label", {
    max: 100,
    pattern: { regex: /^[^\p{Cc}]*$/u, message: "must not contain control characters" },
  });
  onlyFields(body, ["label"]);
  return label === undefined ? {} : { label };
}

interface Manager {
  organisation: string;
  membership: MembershipState;
}

async function manager(c: Context<AppEnv>): Promise<Manager> {
  const claims = c.get("claims");
  const services = c.get("services");
  await services.plans.requireEligible(c.executionCtx, claims.organisationEntityIdentifier, c.req.url);
  if (!claims.scope.split(" ").includes(MANAGER_SCOPE)) {
    throw new GatewayError("insufficient_scope", "Managing secrets needs the architect scope.", {
      requiredScope: MANAGER_SCOPE,
    });
  }
  const membership = await findMembershipState(
    services.db,
    claims.organisationEntityIdentifier,
    claims.memberEntityIdentifier,
  );
  if (!membership) throw refusal("foreignMember");
  if (membership.memberStatus !== "active" || membership.organisationStatus !== "active") throw refusal("suspended");
  return { organisation: claims.organisationEntityIdentifier, membership };
}

function record(c: Context<AppEnv>, event: AuditEventName, who: Manager, kid: string): void {
  const { memberId, organisationId } = who.membership;
  auditRequest(c, { event, outcome: "success", memberId, organisationId, detail: { actor: "member", kid } });
}

async function createBody(request: Request): Promise<CreateSecretBody> {
  const empty = request.body === null || request.headers.get("Content-Length") === "0";
  if (empty && !request.headers.has("Content-Type")) return {};
  return readBody(request, parseCreateSecretBody);
}

/** Routes under `/authenticate/secrets`. */
export const secretRoutes = new Hono<AppEnv>();
const authenticated = bearerAuth({ fixedOnly: true });

secretRoutes.post("/", authenticated, async (c) => {
  const who = await manager(c);
  const { label = "" } = await createBody(c.req.raw);
  const services = c.get("services");
  const key = await services.dynamicSecrets.sealingKey();
  const kid = generateKid();
  const secret = generateSecret();
  const createdAt = Math.floor(services.now() / 1000);
  const ciphertext = await sealSecret(key, { organisation: who.organisation, kid }, secret);
  const row = {
    kid,
    organisationId: who.membership.organisationId,
    ciphertext,
    label,
    createdBy: who.membership.memberId,
    createdAt,
  };
  if (!(await insertSecretWithinLimit(services.db, row, MAX_LIVE_SECRETS))) {
    throw new GatewayError(
      "secret_limit_reached",
      `An organisation holds at most ${MAX_LIVE_SECRETS} live secrets; revoke one first.`,
    );
  }
  await services.dynamicSecrets.afterCreated(c.get("log"), who.organisation);
  record(c, "secret.create", who, kid);
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
  return c.json(
    { kid, secret, label, algorithm: "HS256", organisationEntityIdentifier: who.organisation, created_at: createdAt },
    201,
  );
});

secretRoutes.get("/", authenticated, async (c) => {
  const who = await manager(c);
  const secrets = await listLiveSecrets(c.get("services").db, who.membership.organisationId);
  c.header("Cache-Control", "no-store");
  return c.json({
    secrets: secrets.map((s) => ({ kid: s.kid, label: s.label, created_at: s.createdAt, created_by: s.createdBy })),
  });
});

secretRoutes.delete("/:kid", authenticated, async (c) => {
  const who = await manager(c);
  const kid = c.req.param("kid");
  const revoked =
    isIdentifier(kid) && (await revokeLiveSecret(c.get("services").db, who.membership.organisationId, kid));
  if (!revoked) throw new GatewayError("not_found", "This organisation has no live secret with that kid.");
  await c.get("services").dynamicSecrets.afterRevoked(c.get("log"), who.organisation);
  record(c, "secret.revoke", who, kid);
  return c.body(null, 204);
});

secretRoutes.all("/", methodNotAllowed("GET, POST"));
secretRoutes.all("/:kid", methodNotAllowed("DELETE"));
