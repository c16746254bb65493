/** D1 schema (drizzle-orm); `npm run db:generate` turns changes into SQL under migrations/. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "number" })
    .notNull()
    .default(sql`(unixepoch())`);

/**
 * Customer organisations; `plan` decides API access, `status` can switch it off. `updated_at` (ms, D1's clock) is
 * set by triggers on every insert and every change of identifier, plan or status, direct SQL included
 * (migrations/0003_organisation_feed_triggers.sql): the plan gate's change feed reads it.
 */
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
    /** The organisation's latest revocation (ms): every token and session issued at or before it is refused; null when never. */
    sessionsRevokedAt: integer("sessions_revoked_at", { mode: "number" }),
  },
  (table) => [index("organisations_updated_at").on(table.updatedAt)],
);

/**
 * Identifiers that stopped naming an organisation (deleted, renamed, or replaced by `INSERT OR REPLACE`), written by
 * triggers (migrations 0003 and 0005), so the plan gate's change feed sees them; rows older than a day are pruned by
 * the delete trigger.
 */
export const organisationTombstones = sqliteTable(
  "organisation_tombstones",
  {
    identifier: text("identifier").primaryKey(),
    /** Ms since the epoch, D1's clock. */
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
    /** When the password last changed (seconds; for operators: ending sessions is `sessionsRevokedAt`'s job). */
    passwordChangedAt: integer("password_changed_at", { mode: "number" })
      .notNull()
      .default(sql`(unixepoch())`),
    /**
     * The member's latest revocation (ms): logout-everywhere, sign-out, suspension or password change. Every token
     * and session issued at or before it is refused; null when never.
     */
    sessionsRevokedAt: integer("sessions_revoked_at", { mode: "number" }),
    createdAt: createdAt(),
  },
  (table) => [
    uniqueIndex("members_organisation_email").on(table.organisationId, table.email),
    index("members_email").on(table.email),
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

/** Security-relevant events; never a password or a token. */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at", { mode: "number" }).notNull(),
    event: text("event").notNull(),
    outcome: text("outcome", { enum: ["success", "failure"] }).notNull(),
    memberId: integer("member_id"),
    organisationId: integer("organisation_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id").notNull(),
    /** The request's W3C trace id; null on rows written before it was recorded. */
    traceId: text("trace_id"),
    detail: text("detail"),
  },
  (table) => [index("audit_events_at").on(table.at), index("audit_events_member").on(table.memberId)],
);

export type Organisation = typeof organisations.$inferSelect;
export type Member = typeof members.$inferSelect;
