/** `npm run secrets:generate|secrets:upload -- --env <name>`: an environment's secrets in `.secrets/<name>.env`, and their upload. */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { generateSecrets, readEnvironment, ROOT, secretsFile, secretsProblems } from "./lib/deployment";

const USAGE = `Usage: npm run secrets:generate -- --env <name>   new random values for every required secret, to .secrets/<name>.env
       npm run secrets:upload -- --env <name>     uploads .secrets/<name>.env with wrangler secret bulk`;

function main(): number {
  let command: string | undefined;
  let env: string | undefined;
  try {
    const parsed = parseArgs({ options: { env: { type: "string" } }, allowPositionals: true });
    [command] = parsed.positionals;
    env = parsed.values.env;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!env || (command !== "generate" && command !== "upload")) {
    console.error(USAGE);
    return 2;
  }
  process.chdir(ROOT);
  const file = secretsFile(env);
  try {
    const config = readEnvironment("wrangler.toml", env);
    if (command === "generate") {
      const names = generateSecrets(config, file);
      console.log(`wrote ${file} (mode 0600): ${names.join(", ")}`);
      console.log("Keep a copy in your secret store: wrangler cannot read secrets back (docs/operating.md § Deploy).");
      return 0;
    }
    const problems = secretsProblems(config, file);
    if (problems.length > 0) {
      for (const problem of problems) console.error(`secrets:upload: ${problem}`);
      return 1;
    }
  } catch (error) {
    console.error(`secrets:${command}: ${(error as Error).message}`);
    return 1;
  }
  const upload = spawnSync("node_modules/.bin/wrangler", ["secret", "bulk", file, `--env=${env}`], {
    stdio: "inherit",
  });
  return upload.status ?? 1;
}

process.exitCode = main();
