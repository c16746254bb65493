/**
 * Writes the seed SQL of the local accounts (docs/api.md), hashed with PASSWORD_PEPPER, for `npm run dev`; with
 * SSO_ISSUER (and SECRETS_KEY) also the seeded organisation m7l9hw's connection to the local OpenID Provider.
 */
import "./admin/node-base64";
import { writeFileSync } from "node:fs";
import { hashPassword } from "../src/credentials/password";
import { literal, sealClientSecret } from "./admin/sso";
import { LOCAL_SSO_CLIENT, seedStatements } from "./seed-data";

const [output] = process.argv.slice(2);
const pepper = process.env.PASSWORD_PEPPER;
if (!output || !pepper) {
  console.error(
    "usage: PASSWORD_PEPPER=… [SSO_ISSUER=… SECRETS_KEY=…] tsx scripts/dev-seed.ts <output.sql>  (the folder must exist)",
  );
  process.exit(2);
}
const statements = await seedStatements((password) => hashPassword(password, pepper));
const issuer = process.env.SSO_ISSUER;
const secretsKey = process.env.SECRETS_KEY;
if (issuer && secretsKey) {
  const key = Uint8Array.fromBase64(secretsKey, { alphabet: "base64url" });
  const sealed = await sealClientSecret(key, "m7l9hw", LOCAL_SSO_CLIENT.secret);
  // optional (passwords keep working); the client secret is sealed anew, so a changed SECRETS_KEY is picked up
  statements.push(
    `INSERT INTO sso_connections (organisation_id, issuer, client_id, client_secret, required) VALUES (1, ${literal(issuer)}, ${literal(LOCAL_SSO_CLIENT.id)}, ${literal(sealed)}, 0) ON CONFLICT (organisation_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id, client_secret = excluded.client_secret;`,
    `INSERT OR IGNORE INTO sso_domains (domain, organisation_id) VALUES ('acme.example', 1);`,
  );
}
writeFileSync(output, `${statements.join("\n")}\n`);
