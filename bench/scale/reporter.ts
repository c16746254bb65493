// Reporter of `npm run scale-sim`: prints the simulation's report lines, then its one closing `scale-sim:` line.
import type { UserConsoleLog } from "vitest";
import type { Reporter, SerializedError, TestModule } from "vitest/node";

const PREFIX = "scale-sim";

/** Collects the report the simulation logs and prints it last, so the run ends with exactly one `scale-sim:` line. */
export default class ScaleSimReporter implements Reporter {
  private readonly report: string[] = [];
  private readonly errors: string[] = [];
  private summary: string | undefined;

  onUserConsoleLog(log: UserConsoleLog): void {
    for (const line of log.content.split("\n")) {
      if (line.startsWith(`${PREFIX}:`)) this.summary = line;
      else if (line.startsWith(`${PREFIX} `)) this.report.push(line.slice(PREFIX.length + 1));
      else if (log.type === "stderr" && line.trim()) this.errors.push(line);
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const failures: string[] = unhandledErrors.map((error) => error.message);
    for (const module of testModules) {
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failures.push(module.moduleId);
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state === "failed") failures.push(...(result.errors ?? []).map((error) => error.message));
      }
    }
    for (const line of this.report) console.log(line);
    if (failures.length > 0 || this.summary === undefined) {
      for (const line of this.errors) console.error(line);
      for (const failure of failures) console.error(`scale-sim failed: ${failure}`);
      console.log(`${PREFIX}: failed (${failures.length} error(s); no result)`);
      process.exitCode = 1;
      return;
    }
    console.log(this.summary);
  }
}
