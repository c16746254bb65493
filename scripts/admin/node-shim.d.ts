// The few Node APIs the admin CLI and the scripts' tests use. The project has no @types/node (workers-types types the Worker), so they are declared here.

declare module "node:fs" {
  export function readFileSync(path: string | number, encoding: "utf8"): string;
  export function writeFileSync(path: string, data: string, options?: { mode?: number }): void;
  export function mkdtempSync(prefix: string): string;
  export function rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void;
}

declare module "node:os" {
  export function tmpdir(): string;
  export function userInfo(): { username: string };
}

interface ImportMeta {
  readonly url: string;
}
