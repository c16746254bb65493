/** How `npm run admin` prints what the gateway answered: aligned tables for people, JSON lines for programs. */

/** A column of a table: its heading and how a row shows in it. */
export interface Column<Row> {
  heading: string;
  value: (row: Row) => unknown;
  /** Longest cell, in characters; longer ones end in `…`. */
  max?: number;
}

function cell(value: unknown, max: number | undefined): string {
  const text = value === null || value === undefined ? "" : String(value);
  const flat = text.replace(/\s+/g, " ");
  return max !== undefined && flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** `rows` as a table with a heading line, columns padded to their widest cell; `empty` when there are none. */
export function table<Row>(rows: readonly Row[], columns: readonly Column<Row>[], empty: string): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((row) => columns.map((column) => cell(column.value(row), column.max)));
  const widths = columns.map((column, i) => Math.max(column.heading.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((column) => column.heading)), ...cells.map(line)].join("\n");
}

/** One JSON document per line. */
export function jsonLines(rows: readonly unknown[]): string {
  return rows.map((row) => JSON.stringify(row)).join("\n");
}

/** `detail` as `key=value` pairs, for a table cell. */
export function pairs(detail: Record<string, unknown> | null | undefined, skip: readonly string[] = []): string {
  if (!detail) return "";
  return Object.entries(detail)
    .filter(([key]) => !skip.includes(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
}

/** An instant in ms as UTC, to the second: `2026-12-01 10:04:05Z`. */
export function utc(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "Z");
}

/** A time in seconds since the epoch as a UTC date and time. */
export function utcSeconds(seconds: number | null | undefined): string {
  return typeof seconds === "number" ? utc(seconds * 1000) : "";
}
