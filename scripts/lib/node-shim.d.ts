// The Node APIs the deploy, secrets and token scripts and their tests use beyond scripts/admin/node-shim.d.ts
// (the project has no @types/node: workers-types types the Worker). Ambient modules merge with that file's.

declare module "node:child_process" {
  export function spawnSync(
    command: string,
    args: readonly string[],
    options: { cwd?: string; encoding?: "utf8"; stdio?: "inherit" | "pipe"; input?: string; timeout?: number },
  ): { status: number | null; stdout: string; stderr: string };
}

declare module "node:crypto" {
  export function randomBytes(size: number): { toString(encoding: "base64url"): string };
  export function generateKeyPairSync(
    type: "ed25519" | "ec",
    options?: { namedCurve: "P-256" },
  ): { privateKey: { export(options: { type: "pkcs8"; format: "der" }): { toString(encoding: "base64url"): string } } };
}

declare module "node:fs" {
  export function existsSync(path: string): boolean;
  export function mkdirSync(path: string, options?: { recursive?: boolean; mode?: number }): void;
  export function writeFileSync(path: string, data: string, options: { mode?: number; flag?: "wx" }): void;
  export function statSync(path: string): { mode: number };
}

declare module "node:path" {
  export function join(...parts: string[]): string;
  export function dirname(path: string): string;
}

declare module "node:url" {
  export function fileURLToPath(url: URL | string): string;
}

declare module "node:util" {
  type Option = { type: "string" | "boolean"; short?: string };
  export function parseArgs<Options extends Record<string, Option>>(config: {
    args?: string[];
    options: Options;
    allowPositionals?: boolean;
  }): {
    values: { [Name in keyof Options]?: Options[Name]["type"] extends "boolean" ? boolean : string };
    positionals: string[];
  };
  /** The KEY=value lines of a dotenv file (comments and blank lines skipped). */
  export function parseEnv(content: string): Record<string, string | undefined>;
}
