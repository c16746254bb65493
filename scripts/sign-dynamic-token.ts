/** Signs a dynamic-secret access token, as an integration would: `npm run token:dynamic -- --secret … --exp 15m …`. */
import { parseTokenArgs, signDynamicToken, UsageError, type DynamicTokenOptions } from "./lib/dynamic-token";

const USAGE = `Usage: npm run token:dynamic -- --secret <value> [--kid <kid>] --org <organisation> --member <member> [--scope organisation] (--exp <lifetime> | --no-exp)

  --secret   the secret value POST /authenticate/secrets returned (43 base64url characters; or set GRIDGATE_DYNAMIC_SECRET)
  --kid      its kid (optional, recommended): put in the JWS header so the gateway picks the key directly
  --org      organisationEntityIdentifier, e.g. m7l9hw
  --member   memberEntityIdentifier of an active member of that organisation, e.g. o6q2is
  --scope    space-delimited scope (default: organisation)
  --exp      lifetime: seconds (900) or a duration (30s, 15m, 1h, 7d); required unless --no-exp
  --no-exp   a token without exp, valid until its secret is revoked`;

let options: DynamicTokenOptions | undefined;
try {
  options = parseTokenArgs(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (options === undefined) {
  console.log(`Signs an HS256 dynamic-secret token for Gridgate.\n\n${USAGE}`);
} else {
  console.log(await signDynamicToken(options));
}
