/** The one eligibility check of a membership: active member, active organisation, API plan. */
import type { Config } from "../config";
import type { Refusal } from "../gateway-error";
import type { Member, Organisation } from "../storage/schema";

/** Whether an organisation row may use the API under `config`. */
export function isEligible(config: Config, organisation: { plan?: string; status?: string }): boolean {
  return organisation.status === "active" && organisation.plan !== undefined && config.apiPlans.has(organisation.plan);
}

/** Why a member may not hold tokens (checked after its password or refresh token); undefined when it may. */
export function ineligibility(
  config: Config,
  member: Pick<Member, "status">,
  organisation: Pick<Organisation, "status" | "plan">,
): Extract<Refusal, "suspended" | "planNotEligible"> | undefined {
  if (member.status !== "active" || organisation.status !== "active") return "suspended";
  if (!isEligible(config, organisation)) return "planNotEligible";
  return undefined;
}
