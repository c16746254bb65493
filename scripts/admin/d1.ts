/** Runs SQL against the gateway's D1 (local by default, `--remote` for production) through `wrangler d1 execute`. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

/** Where the commands write: the local D1 of `npm run dev` or the deployed one. */
export interface Target {
  remote: boolean;
  /** Passed to wrangler as --persist-to for a local database kept elsewhere than .wrangler/state. */
  persistTo?: string;
  /** Path of wrangler.toml. */
  config?: string;
}

/** wrangler itself failed (not logged in, no such table, constraint violated …). */
export class D1Error extends Error {
  override name = "D1Error";
}

const ROOT = new URL("../../", import.meta.url).pathname;
const WRANGLER = `${ROOT}node_modules/.bin/wrangler`;

function wrangler(target: Target, args: string[]): string {
  const location = target.remote
    ? ["--remote"]
    : ["--local", ...(target.persistTo ? ["--persist-to", target.persistTo] : [])];
  const config = target.config ? ["--config", target.config] : [];
  try {
    return execFileSync(WRANGLER, ["d1", "execute", "DB", ...location, ...config, "--json", "--yes", ...args], {
      encoding: "utf8",
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new D1Error(describeFailure(stdout) ?? (stderr?.trim() || String(error)));
  }
}

function describeFailure(stdout: string | undefined): string | undefined {
  try {
    const parsed = JSON.parse(stdout ?? "");
    return parsed?.error?.text ?? undefined;
  } catch {
    return undefined;
  }
}

/** Rows of one SELECT. */
export function query<Row>(target: Target, sql: string): Row[] {
  const output = JSON.parse(wrangler(target, ["--command", sql])) as { results: Row[] }[];
  return output[0]?.results ?? [];
}

/**
 * Runs `statements` as one `--file` execution: locally one D1 batch (a single transaction), remotely
 * one D1 import. wrangler reports no row counts for files, so callers check the outcome with a query.
 */
export function execute(target: Target, statements: readonly string[]): void {
  const directory = mkdtempSync(`${tmpdir()}/gridgate-admin-`);
  const file = `${directory}/statements.sql`;
  try {
    writeFileSync(file, statements.join("\n") + "\n", { mode: 0o600 });
    wrangler(target, ["--file", file]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** `PASSWORD_PEPPER`: from the environment, else (local only) from .dev.vars next to wrangler.toml. */
export function passwordPepper(target: Target): string {
  const fromEnv = process.env.PASSWORD_PEPPER;
  if (fromEnv) return fromEnv;
  if (target.remote)
    throw new D1Error(
      "set PASSWORD_PEPPER in the environment to the production secret (wrangler cannot read secrets back)",
    );
  const devVars = `${ROOT}.dev.vars`;
  let text: string;
  try {
    text = readFileSync(devVars, "utf8");
  } catch {
    throw new D1Error(`no PASSWORD_PEPPER in the environment and no ${devVars}; copy .dev.vars.example to .dev.vars`);
  }
  const match = /^\s*PASSWORD_PEPPER\s*=\s*"?([^"\r\n]*)"?\s*$/m.exec(text);
  if (!match?.[1]) throw new D1Error(`${devVars} has no PASSWORD_PEPPER`);
  return match[1];
}
