/** Writes the seed SQL of the local accounts, hashed with PASSWORD_PEPPER, for `npm run dev`. */
import "./admin/node-base64";
import { writeFileSync } from "node:fs";
import { hashPassword } from "../src/credentials/password";
import { seedStatements } from "./seed-data";

const [output] = process.argv.slice(2);
const pepper = process.env.PASSWORD_PEPPER;
if (!output || !pepper) {
  console.error("usage: PASSWORD_PEPPER=… tsx scripts/dev-seed.ts <output.sql>  (the folder must exist)");
  process.exit(2);
}
const statements = await seedStatements((password) => hashPassword(password, pepper));
writeFileSync(output, `${statements.join("\n")}\n`);
