/**
 * Writes the OpenAPI 3.1 document of the gateway (src/openapi/document.ts, from the zod
 * schemas in src/openapi/schemas.ts) to src/openapi/openapi.json, which the Worker serves as it is:
 * zod and the generator stay out of the runtime bundle.
 *
 *   npm run openapi:generate   rewrites src/openapi/openapi.json
 *   npm run openapi:check      exits 1 when the file differs from what the generator would write (CI)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { openApiDocument } from "../src/openapi/document";

const FILE = "src/openapi/openapi.json";

/** The file's exact text: two-space JSON and a final newline. */
export function openApiFileText(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}

function main(mode: string | undefined): void {
  let current: string | undefined;
  try {
    current = readFileSync(FILE, "utf8");
  } catch {
    current = undefined;
  }
  const expected = openApiFileText();
  if (mode === "--check") {
    if (current !== expected) {
      console.error(`${FILE} is out of date with src/openapi/document.ts and schemas.ts; run npm run openapi:generate`);
      process.exit(1);
    }
    console.log(`${FILE}: up to date`);
    return;
  }
  if (mode !== undefined) {
    console.error("usage: tsx scripts/openapi.ts [--check]");
    process.exit(2);
  }
  if (current !== expected) writeFileSync(FILE, expected);
  console.log(`${FILE}: written`);
}

main(process.argv[2]);
