/** The seeded local accounts (docs/api.md § Seeded local accounts), as SQL statements shared by `npm run dev` and the tests. */

/** Password of every seeded member. */
export const SEED_PASSWORD = "gridgate-dev-password";

/** The local OpenID Provider's client for the seeded organisation `m7l9hw` (`npm run dev`, `npm run test:browser`). */
export const LOCAL_SSO_CLIENT = { id: "gridgate-local", secret: "gridgate-local-sso-client-secret-0123456789" };

/** Seeded organisations: id, identifier, name, domain, plan. */
export const SEED_ORGANISATIONS = [
  { id: 1, identifier: "m7l9hw", name: "Acme", domain: "acme.example", plan: "professional" },
  { id: 2, identifier: "q1w2e3", name: "Enterprise Example", domain: "enterprise.example", plan: "enterprise" },
  { id: 3, identifier: "f4r5t6", name: "Free Example", domain: "free.example", plan: "free" },
] as const;

/** Seeded members: id is the memberEntityId. */
export const SEED_MEMBERS = [
  {
    id: 2549,
    identifier: "o6q2is",
    organisationId: 1,
    email: "architect@acme.example",
    role: "architect",
    extraScopes: "",
  },
  {
    id: 2550,
    identifier: "b8k3zt",
    organisationId: 1,
    email: "builder@acme.example",
    role: "builder",
    extraScopes: "",
  },
  { id: 2551, identifier: "v4n7pq", organisationId: 1, email: "viewer@acme.example", role: "user", extraScopes: "" },
  {
    id: 2552,
    identifier: "r2d5mx",
    organisationId: 1,
    email: "reader@acme.example",
    role: null,
    extraScopes: "getGrids",
  },
  {
    id: 2553,
    identifier: "e9w1ck",
    organisationId: 2,
    email: "owner@enterprise.example",
    role: "architect",
    extraScopes: "",
  },
  { id: 2554, identifier: "f3g6hj", organisationId: 3, email: "free@free.example", role: "architect", extraScopes: "" },
  {
    id: 2555,
    identifier: "c5x8lb",
    organisationId: 1,
    email: "consultant@example.com",
    role: "builder",
    extraScopes: "",
  },
  {
    id: 2556,
    identifier: "c7y2nd",
    organisationId: 2,
    email: "consultant@example.com",
    role: "builder",
    extraScopes: "",
  },
] as const;

function quote(value: string | number | null): string {
  if (value === null) return "NULL";
  return typeof value === "number" ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

/** Idempotent INSERT OR IGNORE statements; `hash` gives each member's stored password hash. */
export async function seedStatements(hash: (password: string) => Promise<string>): Promise<string[]> {
  const statements = SEED_ORGANISATIONS.map(
    (o) =>
      `INSERT OR IGNORE INTO organisations (id, identifier, name, domain, plan) VALUES (${[o.id, o.identifier, o.name, o.domain, o.plan].map(quote).join(", ")});`,
  );
  for (const m of SEED_MEMBERS) {
    const values = [m.id, m.identifier, m.organisationId, m.email, await hash(SEED_PASSWORD), m.role, m.extraScopes]
      .map(quote)
      .join(", ");
    statements.push(
      `INSERT OR IGNORE INTO members (id, identifier, organisation_id, email, password_hash, role, extra_scopes) VALUES (${values});`,
    );
  }
  return statements;
}
