// node:test reporter that prints one closing line, so CI can read the result:
//   host: N passed, N failed
// Counts tests, not suites; skipped and todo tests are neither (they get a line of
// their own). Use it beside a human-readable reporter:
//   node --test --test-reporter=spec --test-reporter-destination=stdout \
//        --test-reporter=./test/host/reporter.mjs --test-reporter-destination=stdout ...
export default async function* hostSummary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { data } = event;
    const isSuite = data.details?.type === "suite";
    if (event.type === "test:fail") {
      // a failing suite with no failing test inside (a hook failed, or a file crashed) counts once
      if (!isSuite || data.details?.error?.failureType !== "subtestsFailed") failed += 1;
      continue;
    }
    if (data.skip || data.todo) skipped += 1; // a skipped suite counts once
    else if (!isSuite) passed += 1;
  }
  if (skipped > 0) yield `host: ${skipped} skipped\n`;
  yield `host: ${passed} passed, ${failed} failed\n`;
}
