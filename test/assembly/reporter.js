// as-pect custom reporter: as-pect's usual per-file summary, then one closing line
//   aspect: N passed, N failed
// counted over every test of every spec file, so CI can read the result.
//
// as-pect (8.1) imports this module's default export once and reuses it for every
// spec file, and has no "all files done" hook: the closing line is written when the
// process exits. as-pect.config.js imports this module too, so the hook is in place
// before the first compilation; a compile error (as-pect exits 1 before running a
// test) is reported as one failure.
import { SummaryReporter } from "@as-pect/core";
import { writeSync } from "node:fs";

const totals = { passed: 0, failed: 0, files: 0 };

class AspectReporter extends SummaryReporter {
  constructor() {
    super();
    // as-pect's CombinationReporter assigns process.stderr to `stdout` (a bug in its
    // `stderr` setter), which would send the per-file lines to stderr: pin both.
    for (const [name, stream] of [["stdout", process.stdout], ["stderr", process.stderr]]) {
      Object.defineProperty(this, name, { get: () => stream, set: () => {}, configurable: true });
    }
  }

  onFinish(ctx) {
    super.onFinish(ctx);
    totals.files += 1;
    const passed = ctx.testPassCount;
    let failed = ctx.testCount - ctx.testPassCount;
    // a file that failed outside any test (trap at top level, failed hook) counts once
    if (!ctx.pass && failed === 0) failed = 1;
    totals.passed += passed;
    totals.failed += failed;
  }
}

process.on("exit", (code) => {
  let { passed, failed } = totals;
  if (code !== 0 && failed === 0) failed = 1; // compile error or crash before any test ran
  if (totals.files === 0 && code === 0) {
    failed = 1; // no spec ran at all: not a pass
    process.exitCode = 1;
  }
  // as-pect's summary ends with spaces and no newline: start a fresh line
  writeSync(1, `\naspect: ${passed} passed, ${failed} failed\n`);
});

export default new AspectReporter();
