/**
 * Demo origin: an in-memory grids API that serves only requests with a valid `X-Gateway-Assertion`, verified as
 * docs/origin-integration.md recommends (examples/origin-verify): by the gateway's JWKS.
 */
import type { JWTVerifyGetKey } from "jose";
import { gatewayJwks, verifyGatewayAssertion } from "../../origin-verify/verify-assertion";

/** The demo origin's bindings. */
export interface DemoOriginEnv {
  /** The gateway's `/.well-known/jwks.json`: how EdDSA and ES256 assertions verify. */
  GATEWAY_JWKS_URL?: string;
  /** Only while the gateway signs with HS256: its ASSERTION_SECRET, and during a switch the previous one. */
  ASSERTION_SECRET?: string;
  ASSERTION_SECRET_PREVIOUS?: string;
  /** The gateway's ISSUER; default "gridgate". */
  ISSUER?: string;
}

/** A grid as the demo API stores it. */
export interface Grid {
  id: string;
  name: string;
  rows: number;
  columns: number;
  createdBy: string | null;
}

/** Identity headers the gateway adds (every header received is echoed back in `received.headers`). */
export const IDENTITY_HEADERS = [
  "X-Member-Entity-Id",
  "X-Member-Entity-Identifier",
  "X-Organisation-Entity-Identifier",
  "X-Auth-Scope",
  "X-Auth-Token-Id",
  "X-Auth-Secret-Type",
  "X-Request-Id",
] as const;

const grids = new Map<string, Grid>([
  ["1", { id: "1", name: "Ground floor", rows: 12, columns: 8, createdBy: null }],
  ["2", { id: "2", name: "Roof", rows: 4, columns: 4, createdBy: null }],
]);
let nextId = 3;

/** What reached the origin: method, path, every header it received and the assertion verdict. */
interface Received {
  method: string;
  path: string;
  /** Every request header, its name capitalised per word (`x-forwarded-for` → `X-Forwarded-For`). */
  headers: Record<string, string>;
  assertion: { verified: boolean; error?: string };
}

/** One cached JWKS per URL, for the isolate's life. */
const jwksByUrl = new Map<string, JWTVerifyGetKey>();

async function verifyAssertion(request: Request, env: DemoOriginEnv): Promise<Received["assertion"]> {
  if (!request.headers.has("X-Gateway-Assertion")) return { verified: false, error: "no X-Gateway-Assertion header" };
  let jwks: JWTVerifyGetKey | undefined;
  if (env.GATEWAY_JWKS_URL) {
    jwks = jwksByUrl.get(env.GATEWAY_JWKS_URL);
    if (jwks === undefined) jwksByUrl.set(env.GATEWAY_JWKS_URL, (jwks = gatewayJwks(env.GATEWAY_JWKS_URL)));
  }
  try {
    await verifyGatewayAssertion(request, {
      jwks,
      secrets: [env.ASSERTION_SECRET, env.ASSERTION_SECRET_PREVIOUS].filter((secret) => secret !== undefined),
      issuer: env.ISSUER,
    });
    return { verified: true };
  } catch (error) {
    return { verified: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** `x-member-entity-id` → `X-Member-Entity-Id`: how the README and the gateway write header names. */
function displayName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Every header of `request`, so a user sees exactly what an origin behind the gateway gets. */
function receivedHeaders(request: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) headers[displayName(name)] = value;
  return headers;
}

function reply(status: number, body: Record<string, unknown>, received: Received): Response {
  return Response.json({ ...body, received }, { status });
}

async function createGrid(request: Request, createdBy: string | null): Promise<Grid | string> {
  let input: unknown;
  try {
    input = await request.json();
  } catch {
    return "body must be JSON";
  }
  const { name, rows = 10, columns = 10 } = (input ?? {}) as Record<string, unknown>;
  if (typeof name !== "string" || name.trim() === "" || name.length > 100)
    return "name must be a string of 1–100 characters";
  if (![rows, columns].every((n) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1000))
    return "rows and columns must be integers 1–1000";
  const grid: Grid = {
    id: String(nextId++),
    name: name.trim(),
    rows: rows as number,
    columns: columns as number,
    createdBy,
  };
  grids.set(grid.id, grid);
  return grid;
}

/** Routes GET /grids, GET /grids/:id and POST /grids after the assertion verified; 401 otherwise. */
export async function handle(request: Request, env: DemoOriginEnv): Promise<Response> {
  const url = new URL(request.url);
  const received: Received = {
    method: request.method,
    path: url.pathname + url.search,
    headers: receivedHeaders(request),
    assertion: await verifyAssertion(request, env),
  };
  if (!received.assertion.verified)
    return reply(401, { error: "unauthorized", detail: "requests must come through the gateway" }, received);

  const [resource, id, ...rest] = url.pathname.split("/").filter(Boolean);
  if (resource !== "grids" || rest.length > 0) return reply(404, { error: "not_found" }, received);
  if (id === undefined && request.method === "GET") return reply(200, { grids: [...grids.values()] }, received);
  if (id === undefined && request.method === "POST") {
    const created = await createGrid(request, received.headers["X-Member-Entity-Identifier"] ?? null);
    return typeof created === "string"
      ? reply(400, { error: "invalid_request", detail: created }, received)
      : reply(201, { grid: created }, received);
  }
  if (id !== undefined && request.method === "GET") {
    const grid = grids.get(id);
    return grid
      ? reply(200, { grid }, received)
      : reply(404, { error: "not_found", detail: `no grid ${id}` }, received);
  }
  return reply(405, { error: "method_not_allowed" }, received);
}

export default { fetch: handle } satisfies ExportedHandler<DemoOriginEnv>;
