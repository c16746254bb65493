/** Shape checks of D1 rows: a row of the wrong shape is a storage failure (503), never a refusal or a 500. */
import { unavailable } from "../gateway-error";

type Row = Record<string, unknown>;

const isRow = (value: unknown): value is Row => value !== null && typeof value === "object" && !Array.isArray(value);
const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);
const isString = (value: unknown): value is string => typeof value === "string";
const isInstantOrNull = (value: unknown): boolean => value === null || isInteger(value);

function fieldsAre(row: unknown, checks: Record<string, (value: unknown) => boolean>): boolean {
  return isRow(row) && Object.entries(checks).every(([field, check]) => check(row[field]));
}

/** A membership row as login and refresh read it. */
export function isMembership(row: unknown): boolean {
  if (!isRow(row)) return false;
  return (
    fieldsAre(row.member, {
      id: isInteger,
      identifier: isString,
      organisationId: isInteger,
      passwordHash: isString,
      role: (value) => value === null || isString(value),
      extraScopes: isString,
      status: isString,
      passwordChangedAt: isInteger,
      sessionsRevokedAt: isInstantOrNull,
    }) &&
    isOrganisationAccess(row.organisation, { id: isInteger, identifier: isString, sessionsRevokedAt: isInstantOrNull })
  );
}

/** A membership with its organisation's single sign-on requirement. */
export function isLoginMembership(row: unknown): boolean {
  return isMembership(row) && fieldsAre(row, { ssoRequired: (value) => value === null || typeof value === "boolean" });
}

function isOrganisationAccess(
  row: unknown,
  extra: Record<string, (value: unknown) => boolean> = {},
): row is { plan: string; status: string } {
  return fieldsAre(row, { plan: isString, status: isString, ...extra });
}

/** A member's state as the secrets features read it. */
export function isMembershipState(row: unknown): boolean {
  return fieldsAre(row, {
    organisationId: isInteger,
    organisationStatus: isString,
    memberId: isInteger,
    memberStatus: isString,
  });
}

/** A live sealed secret. */
export function isSealedSecret(row: unknown): boolean {
  return fieldsAre(row, { kid: isString, ciphertext: isString });
}

/** `rows`, once each passed `isValid`; otherwise 503 `temporarily_unavailable` naming D1 (the row is not logged). */
export function checkedRows<T>(rows: T[], isValid: (row: unknown) => boolean, what: string): T[] {
  if (!Array.isArray(rows) || !rows.every(isValid)) throw unavailable("d1", `malformed ${what} row`);
  return rows;
}
