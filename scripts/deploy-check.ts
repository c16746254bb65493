/** `npm run deploy:check [-- --env <name>]`: refuses an environment that would deploy a broken gateway, then bundles as `wrangler deploy` would. */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { deployProblems, readEnvironment, ROOT, secretsFile } from "./lib/deployment";

const USAGE = `Usage: npm run deploy:check [-- --env <name>]

  --env   an environment of wrangler.toml ([env.<name>]): checks its configuration and .secrets/<name>.env,
          then bundles it. Without --env, bundles the top-level (local) configuration only.`;

function main(): number {
  let env: string | undefined;
  try {
    ({ env } = parseArgs({ options: { env: { type: "string" } } }).values);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  process.chdir(ROOT);
  if (env !== undefined) {
    let problems: string[];
    try {
      problems = deployProblems(readEnvironment("wrangler.toml", env), secretsFile(env));
    } catch (error) {
      console.error(`deploy:check: ${(error as Error).message}`);
      return 1;
    }
    if (problems.length > 0) {
      console.error(`deploy:check --env ${env}: refused, nothing bundled:`);
      for (const problem of problems) console.error(`- ${problem}`);
      return 1;
    }
    console.log(`deploy:check --env ${env}: configuration and secrets complete; bundling`);
  }
  const bundle = spawnSync(
    "node_modules/.bin/wrangler",
    ["deploy", "--dry-run", "--outdir", "dist", `--env=${env ?? ""}`],
    {
      stdio: "inherit",
    },
  );
  return bundle.status ?? 1;
}

process.exitCode = main();
