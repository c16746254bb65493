// Applies the D1 migrations and seeds the local accounts (scripts/seed-data.ts) before each test file.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { seedStatements } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
const statements = await seedStatements((password) => hashPassword(password, env.PASSWORD_PEPPER!));
await env.DB.batch(statements.map((statement) => env.DB.prepare(statement)));
