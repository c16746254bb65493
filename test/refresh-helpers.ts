// Helpers of the refresh-token tests: the two routes, fresh accounts, and views of the TOKENS namespace.
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { sha256Hex } from "../src/digest";
import { gateway, login, problem, randomIp } from "./helpers";

/** `POST /authenticate/refresh` with a JSON body (or a raw string body). */
export function postRefresh(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return gateway("/authenticate/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp(), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** `POST /authenticate/revoke` with a JSON body. */
export function postRevoke(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return gateway("/authenticate/revoke", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp(), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Refreshes `token` and returns the 200 body, failing loudly otherwise. */
export async function refreshOk(token: string): Promise<Record<string, any>> {
  const response = await postRefresh({ refresh_token: token });
  if (response.status !== 200) throw new Error(`refresh gave ${response.status}: ${await response.text()}`);
  return response.json();
}

/** A refused refresh (RFC 6749 §5.2): 400 `invalid_grant`, no HTTP authentication challenge, never cached. */
export async function expectInvalidGrant(response: Response): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get("WWW-Authenticate")).toBeNull();
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  expect((await problem(response)).code).toBe("invalid_grant");
}

/** The stored record of a refresh token, looked up by its hash. */
export async function storedRecord(token: string): Promise<Record<string, any> | null> {
  return env.TOKENS.get(`refresh:${await sha256Hex(token)}`, "json");
}

/** Every key and value in TOKENS, to prove a request changed nothing. */
export async function kvSnapshot(): Promise<Record<string, string | null>> {
  const snapshot: Record<string, string | null> = {};
  let cursor: string | undefined;
  do {
    const page: KVNamespaceListResult<unknown, string> = await env.TOKENS.list(cursor ? { cursor } : {});
    for (const key of page.keys) snapshot[key.name] = await env.TOKENS.get(key.name);
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return snapshot;
}

/** A member of a new organisation of its own, so tests can suspend, delete or downgrade freely. */
export interface Account {
  email: string;
  memberId: number;
  organisationId: number;
  organisation: string;
}

let passwordHash: Promise<string> | undefined;

/** Creates an organisation (default plan professional) with one builder member using the seed password. */
export async function newAccount(plan = "professional"): Promise<Account> {
  passwordHash ??= hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!);
  const suffix = crypto.randomUUID().slice(0, 8);
  const organisation = `r${suffix}`;
  const org = await env.DB.prepare(
    "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, ?, ?, ?) RETURNING id",
  )
    .bind(organisation, "Refresh Test Org", `${suffix}.refresh.example`, plan)
    .first<{ id: number }>();
  const email = `member@${suffix}.refresh.example`;
  const member = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role) VALUES (?, ?, ?, ?, 'builder') RETURNING id",
  )
    .bind(`m${suffix}`, org!.id, email, await passwordHash)
    .first<{ id: number }>();
  return { email, memberId: member!.id, organisationId: org!.id, organisation };
}

/** Logs an account in and returns its token response. */
export function loginAccount(account: Account): Promise<Record<string, any>> {
  return login(account.email);
}
