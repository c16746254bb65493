// Vitest reporter that ends every run with one plain line, `tests: N passed, N failed, N skipped`, for CI log readers.
import type { Reporter, SerializedError, TestModule } from "vitest/node";

/** Counts test cases by outcome; a file that failed before any test ran counts as one failure. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    for (const module of testModules) {
      let tests = 0;
      for (const test of module.children.allTests()) {
        tests++;
        const { state } = test.result();
        if (state === "passed" || state === "failed" || state === "skipped") counts[state]++;
      }
      if (tests === 0 && module.state() === "failed") counts.failed++;
    }
    console.log(`tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
}
