/**
 * Writes the problem codes table of docs/api.md from the error catalogue (`PROBLEMS` in src/http/problem.ts),
 * between `<!-- problem-codes:start -->` and `<!-- problem-codes:end -->`.
 *
 *   npm run docs:generate   rewrites the table
 *   npm run docs:check      exits 1 when docs/api.md differs from what the generator would write (CI)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { PROBLEMS } from "../src/http/problem";

const FILE = "docs/api.md";
const START = "<!-- problem-codes:start -->";
const END = "<!-- problem-codes:end -->";

/** The Markdown table, one row per code in catalogue order. */
export function problemCodesTable(): string {
  const rows = Object.entries(PROBLEMS).map(
    ([code, { status, title }]) => `| \`${code}\` | ${status} | ${title.replaceAll("|", "\\|")} |`,
  );
  return [
    "<!-- Generated from PROBLEMS in src/http/problem.ts by `npm run docs:generate`; do not edit by hand. -->",
    "",
    "| code | HTTP status | title |",
    "|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}

/** `text` with everything between the markers replaced by the table; throws when the markers are missing. */
export function withProblemCodes(text: string): string {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`${FILE} must contain ${START} followed by ${END}`);
  }
  return `${text.slice(0, start + START.length)}\n${problemCodesTable()}\n${text.slice(end)}`;
}

function main(mode: string | undefined): void {
  const current = readFileSync(FILE, "utf8");
  const expected = withProblemCodes(current);
  if (mode === "--check") {
    if (current !== expected) {
      console.error(
        `${FILE}: the problem codes table is out of date with src/http/problem.ts; run npm run docs:generate`,
      );
      process.exit(1);
    }
    console.log(`${FILE}: problem codes table up to date (${Object.keys(PROBLEMS).length} codes)`);
    return;
  }
  if (mode !== undefined) {
    console.error("usage: tsx scripts/problem-codes.ts [--check]");
    process.exit(2);
  }
  if (current !== expected) writeFileSync(FILE, expected);
  console.log(`${FILE}: problem codes table written (${Object.keys(PROBLEMS).length} codes)`);
}

main(process.argv[2]);
