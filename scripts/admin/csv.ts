/** `member:import` input: an RFC 4180 CSV of email, role, scopes, bcrypt_hash, validated row by row (the gateway's rules) before anything is sent. */
import { bcryptHash, email, role, scopes } from "../../src/admin/inputs";
import type { MemberRole } from "../../src/storage/schema";
import { GatewayError } from "../../src/gateway-error";

/** A CSV that cannot be imported as it is; nothing was sent. */
export class ImportFileError extends Error {
  override name = "ImportFileError";
}

/** The header `member:import` requires, in this order. */
const IMPORT_COLUMNS = ["email", "role", "scopes", "bcrypt_hash"] as const;
/** Most rows one import takes; larger files are split by the operator. */
const MAX_IMPORT_ROWS = 5000;

/** A validated member to import. */
export interface ImportRow {
  line: number;
  email: string;
  role: MemberRole;
  scopes: string;
  passwordHash: string;
}

/** Splits CSV text into records of fields: `"` quoting with `""` escapes, CRLF or LF line ends. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  const endRecord = () => {
    record.push(field);
    if (record.length > 1 || record[0]!.trim() !== "") records.push(record);
    record = [];
    field = "";
  };
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted && char === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (quoted && char === '"') {
      quoted = false;
    } else if (quoted) {
      field += char;
    } else if (char === '"' && field === "") {
      quoted = true;
    } else if (char === ",") {
      record.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i++;
      endRecord();
    } else {
      field += char;
    }
  }
  if (quoted) throw new ImportFileError("the CSV ends inside a quoted field");
  if (field !== "" || record.length > 0) endRecord();
  return records;
}

/**
 * Validates every row of an import file and returns them all, or throws one error listing every bad
 * row (up to 20), so the operator fixes the file in one pass. Duplicate emails in the file are errors.
 */
export function parseImport(text: string): ImportRow[] {
  const [header, ...records] = parseCsv(text);
  if (!header || header.map((name) => name.trim().toLowerCase()).join(",") !== IMPORT_COLUMNS.join(",")) {
    throw new ImportFileError(`the first line must be the header ${IMPORT_COLUMNS.join(",")}`);
  }
  if (records.length === 0) throw new ImportFileError("the CSV has no member rows");
  if (records.length > MAX_IMPORT_ROWS)
    throw new ImportFileError(`at most ${MAX_IMPORT_ROWS} rows per import; split the file`);

  const rows: ImportRow[] = [];
  const errors: string[] = [];
  const seen = new Map<string, number>();
  records.forEach((fields, index) => {
    const line = index + 2;
    try {
      if (fields.length !== IMPORT_COLUMNS.length)
        throw new ImportFileError(`expected ${IMPORT_COLUMNS.length} columns, got ${fields.length}`);
      const [rawEmail, rawRole, rawScopes, rawHash] = fields;
      const row: ImportRow = {
        line,
        email: email("email", rawEmail),
        role: role("role", rawRole, true),
        scopes: scopes("scopes", rawScopes),
        passwordHash: bcryptHash("bcrypt_hash", rawHash),
      };
      if (row.role === null && row.scopes === "")
        throw new ImportFileError("a member needs a role or at least one scope");
      const previous = seen.get(row.email);
      if (previous !== undefined) throw new ImportFileError(`${row.email} is already on line ${previous}`);
      seen.set(row.email, line);
      rows.push(row);
    } catch (error) {
      if (!(error instanceof ImportFileError || error instanceof GatewayError)) throw error;
      errors.push(`line ${line}: ${error.message}`);
    }
  });
  if (errors.length > 0) {
    const shown = errors.slice(0, 20).join("\n  ");
    throw new ImportFileError(
      `${errors.length} invalid row(s), nothing imported:\n  ${shown}${errors.length > 20 ? "\n  …" : ""}`,
    );
  }
  return rows;
}
