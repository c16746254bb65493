/** Operator commands: `npm run admin -- <command> [options] [--remote | --env <name>]` (scripts/admin/cli.ts). */
import "./admin/node-base64";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runAdmin } from "./admin/cli";

process.exitCode = await runAdmin(process.argv.slice(2), {
  surroundings: { env: process.env, root: fileURLToPath(new URL("..", import.meta.url)), fetch },
  out: (text) => console.log(text),
  err: (text) => console.error(text),
  stdin: () => readFileSync(0, "utf8"),
});
