// The few Node APIs the admin CLI uses. The project has no @types/node (workers-types types the Worker), so they are declared here.

declare module "node:child_process" {
  export function execFileSync(
    file: string,
    args: readonly string[],
    options: {
      encoding: "utf8";
      env?: Record<string, string | undefined>;
      stdio?: readonly ("ignore" | "pipe" | "inherit")[];
      maxBuffer?: number;
    },
  ): string;
}

declare module "node:fs" {
  export function readFileSync(path: string | number, encoding: "utf8"): string;
  export function writeFileSync(path: string, data: string, options?: { mode?: number }): void;
  export function mkdtempSync(prefix: string): string;
  export function rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void;
}

declare module "node:os" {
  export function tmpdir(): string;
}

interface ImportMeta {
  readonly url: string;
}
