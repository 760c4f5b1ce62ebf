// node:test reporter for the conformance suite: one JSON line per test (not per suite)
// with its file, name, result and the first line of its error, for
// scripts/conformance.mjs to turn into the score and CONFORMANCE.md.
import path from "node:path";

export default async function* conformanceResults(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { data } = event;
    if (data.details?.type === "suite") {
      // a suite that failed in a hook (the broker did not start, ...) fails its file
      if (event.type === "test:fail" && data.details?.error?.failureType !== "subtestsFailed") {
        yield JSON.stringify({ file: path.basename(data.file ?? ""), name: data.name, pass: false, hook: true, error: firstLine(data.details?.error) }) + "\n";
      }
      continue;
    }
    if (data.skip || data.todo) continue;
    yield JSON.stringify({
      file: path.basename(data.file ?? ""),
      name: data.name,
      pass: event.type === "test:pass",
      ms: Math.round(data.details?.duration_ms ?? 0),
      error: event.type === "test:fail" ? firstLine(data.details?.error) : undefined,
    }) + "\n";
  }
}

function firstLine(err) {
  if (!err) return undefined;
  const e = err.cause ?? err;
  return String(e?.message ?? e).split("\n").slice(0, 3).join(" ").slice(0, 300);
}
