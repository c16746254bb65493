// `npm run dev` restarts its workers when .dev.vars changes: the watcher that tells it (scripts/lib/dev-stack.mjs).
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchFileContent } from "../lib/dev-stack.mjs";

const DEBOUNCE_MS = 50;
const settle = () => new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 6));

describe("watchFileContent (.dev.vars)", () => {
  let dir;
  let file;
  let seen;
  let stop;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gridgate-dev-vars-"));
    file = join(dir, ".dev.vars");
    writeFileSync(file, "JWT_SECRET=one\n");
    seen = [];
    stop = watchFileContent(file, (text) => seen.push(text), { debounceMs: DEBOUNCE_MS });
  });

  afterEach(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports a write in place with the new text", async () => {
    writeFileSync(file, "JWT_SECRET=two\n");
    await settle();
    expect(seen).toEqual(["JWT_SECRET=two\n"]);
  });

  it("reports a burst of writes once, with the last text", async () => {
    for (const value of ["two", "three", "four"]) writeFileSync(file, `JWT_SECRET=${value}\n`);
    await settle();
    expect(seen).toEqual(["JWT_SECRET=four\n"]);
  });

  it("ignores a write that leaves the text as it was", async () => {
    writeFileSync(file, "JWT_SECRET=one\n");
    await settle();
    expect(seen).toEqual([]);
  });

  it("sees an editor's save by rename, and other files in the directory not at all", async () => {
    writeFileSync(join(dir, "other"), "x");
    writeFileSync(join(dir, ".dev.vars.swp"), "JWT_SECRET=two\n");
    renameSync(join(dir, ".dev.vars.swp"), file);
    await settle();
    expect(seen).toEqual(["JWT_SECRET=two\n"]);
  });

  it("reports a deleted file as null, then its re-creation", async () => {
    rmSync(file);
    await settle();
    writeFileSync(file, "JWT_SECRET=one\n");
    await settle();
    expect(seen).toEqual([null, "JWT_SECRET=one\n"]);
  });

  it("reports nothing once stopped", async () => {
    stop();
    writeFileSync(file, "JWT_SECRET=two\n");
    await settle();
    expect(seen).toEqual([]);
  });
});
