/** D1 schema (drizzle-orm); `npm run db:generate` turns changes into SQL under migrations/. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "number" })
    .notNull()
    .default(sql`(unixepoch())`);

/** Customer organisations; `updated_at` (ms, D1's clock) is set by triggers (migrations/0003) for the plan gate's feed. */
export const organisations = sqliteTable(
  "organisations",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    identifier: text("identifier").notNull().unique(),
    name: text("name").notNull(),
    domain: text("domain").notNull().unique(),
    plan: text("plan").notNull(),
    status: text("status", { enum: ["active", "suspended"] })
      .notNull()
      .default("active"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "number" }).notNull().default(0),
    /** The latest revocation (ms), or null. */
    sessionsRevokedAt: integer("sessions_revoked_at", { mode: "number" }),
  },
  (table) => [index("organisations_updated_at").on(table.updatedAt)],
);

/** Identifiers that stopped naming an organisation, written by triggers (migrations 0003, 0005) for the plan gate's feed. */
export const organisationTombstones = sqliteTable(
  "organisation_tombstones",
  {
    identifier: text("identifier").primaryKey(),
    /** Ms, D1's clock. */
    removedAt: integer("removed_at", { mode: "number" }).notNull(),
  },
  (table) => [index("organisation_tombstones_removed_at").on(table.removedAt)],
);

/** Members; `id` is the `memberEntityId` claim. Email is stored trimmed and ASCII-lower-cased. */
export const members = sqliteTable(
  "members",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    identifier: text("identifier").notNull().unique(),
    organisationId: integer("organisation_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["architect", "builder", "user"] }),
    extraScopes: text("extra_scopes").notNull().default(""),
    status: text("status", { enum: ["active", "suspended"] })
      .notNull()
      .default("active"),
    /** Seconds; for operators only (ending sessions is `sessionsRevokedAt`'s job). */
    passwordChangedAt: integer("password_changed_at", { mode: "number" })
      .notNull()
      .default(sql`(unixepoch())`),
    /** The latest revocation (ms), or null: every token and session issued at or before it is refused. */
    sessionsRevokedAt: integer("sessions_revoked_at", { mode: "number" }),
    createdAt: createdAt(),
    /** The member's identity at the organisation's identity provider, remembered at the first SSO login. */
    ssoIssuer: text("sso_issuer"),
    ssoSubject: text("sso_subject"),
  },
  (table) => [
    uniqueIndex("members_organisation_email").on(table.organisationId, table.email),
    index("members_email").on(table.email),
    uniqueIndex("members_sso_identity").on(table.organisationId, table.ssoIssuer, table.ssoSubject),
  ],
);

/** Per-organisation HS256 secrets for integrations, AES-GCM encrypted under `SECRETS_KEY`. */
export const dynamicSecrets = sqliteTable(
  "dynamic_secrets",
  {
    kid: text("kid").primaryKey(),
    organisationId: integer("organisation_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    ciphertext: text("ciphertext").notNull(),
    label: text("label").notNull().default(""),
    createdBy: integer("created_by").references(() => members.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at", { mode: "number" }),
  },
  (table) => [index("dynamic_secrets_organisation").on(table.organisationId)],
);

/** An organisation's OpenID Connect connection: issuer, this gateway's client (secret sealed), whether passwords are refused. */
export const ssoConnections = sqliteTable("sso_connections", {
  organisationId: integer("organisation_id")
    .primaryKey()
    .references(() => organisations.id, { onDelete: "cascade" }),
  issuer: text("issuer").notNull(),
  clientId: text("client_id").notNull(),
  clientSecret: text("client_secret").notNull(),
  required: integer("required", { mode: "boolean" }).notNull().default(false),
  createdAt: createdAt(),
  updatedAt: integer("updated_at", { mode: "number" })
    .notNull()
    .default(sql`(unixepoch())`),
});

/** The email domains that route to a connection; each domain to one organisation at most. */
export const ssoDomains = sqliteTable(
  "sso_domains",
  {
    domain: text("domain").primaryKey(),
    organisationId: integer("organisation_id")
      .notNull()
      .references(() => ssoConnections.organisationId, { onDelete: "cascade" }),
  },
  (table) => [index("sso_domains_organisation").on(table.organisationId)],
);

/** Single sign-ons in progress, keyed by the SHA-256 of `state`; the callback deletes the row it uses (single use). */
export const ssoStates = sqliteTable(
  "sso_states",
  {
    stateHash: text("state_hash").primaryKey(),
    organisationId: integer("organisation_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    browserHash: text("browser_hash").notNull(),
    nonce: text("nonce").notNull(),
    codeVerifier: text("code_verifier").notNull(),
    redirectUri: text("redirect_uri").notNull(),
    returnTo: text("return_to").notNull(),
    expiresAt: integer("expires_at", { mode: "number" }).notNull(),
  },
  (table) => [index("sso_states_expires_at").on(table.expiresAt)],
);

export type Organisation = typeof organisations.$inferSelect;
export type Member = typeof members.$inferSelect;
/** A member role, or null for a member with granular scopes only. */
export type MemberRole = Member["role"];
