// The conformance suite: bundles test/conformance/*.test.ts (esbuild, like
// scripts/build-tests.mjs does for test/host), runs them against the real broker
// (dist/midge.mjs, or $MIDGE_BIN), and scores the result against the list of normative
// statements in test/conformance/statements.json:
//
//   statements  server-side statements of that version (applies-to "server" or "both";
//               client-only statements are listed but not counted)
//   covered     statements with at least one test named after their id
//   passing     covered statements whose every test passed
//
// Prints the score per version, writes CONFORMANCE.md (the whole table), and ends with
// one line CI can read:  conformance: N passed, N failed
//
// A test file's version is its name: v311-*.test.ts is MQTT 3.1.1, v5-*.test.ts is MQTT 5.0.
// A test covers every [MQTT-x.y.z-n] id in its name.
//
// Usage: node scripts/conformance.mjs [--version 3.1.1|5.0] [--strict] [--report-only] [--no-report]
//   --version      run (and score) one version only; CONFORMANCE.md is written only for a full run
//   --no-report    do not write CONFORMANCE.md (for npm test)
//   --strict       exit 1 when a test fails (npm test uses this for the versions it includes)
//   --report-only  do not run anything: rescore the last results (build/test-conformance/results.jsonl)
import { bundleTests } from "./build-tests.mjs";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = path.join(root, "test", "conformance");
const outDir = path.join(root, "build", "test-conformance");
const resultsFile = path.join(outDir, "results.jsonl");

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const onlyVersion = opt("--version");
if (onlyVersion && onlyVersion !== "3.1.1" && onlyVersion !== "5.0") {
  console.error(`conformance: --version must be 3.1.1 or 5.0, not ${onlyVersion}`);
  process.exit(2);
}
const VERSIONS = onlyVersion ? [onlyVersion] : ["3.1.1", "5.0"];

const fileVersion = (f) => (f.startsWith("v311-") ? "3.1.1" : f.startsWith("v5-") ? "5.0" : null);

// ---------------------------------------------------------------------------------
// the statements

const statements = JSON.parse(readFileSync(path.join(srcDir, "statements.json"), "utf8")).statements;
{
  const seen = new Set();
  for (const s of statements) {
    const key = `${s.version} ${s.id}`;
    if (seen.has(key)) throw new Error(`statements.json: ${key} listed twice`);
    seen.add(key);
    if (!["server", "client", "both"].includes(s.applies)) throw new Error(`statements.json: ${key}: applies must be server, client or both`);
  }
}

// ---------------------------------------------------------------------------------
// build and run

if (!flag("--report-only")) {
  const entries = readdirSync(srcDir)
    .filter((f) => f.endsWith(".test.ts") && fileVersion(f) && (!onlyVersion || fileVersion(f) === onlyVersion))
    .sort()
    .map((f) => path.join(srcDir, f));
  await bundleTests(entries, outDir);
  console.log(`conformance: ${entries.length} test files -> ${path.relative(root, outDir)}/`);
  const bin = process.env.MIDGE_BIN ?? path.join(root, "dist", "midge.mjs");
  if (!existsSync(bin)) {
    console.error(`conformance: the broker is not built (${path.relative(root, bin)} is missing): run npm run build`);
    process.exit(1);
  }
  const started = Date.now();
  const files = readdirSync(outDir).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join(outDir, f));
  const run = spawnSync(
    process.execPath,
    [
      "--test",
      `--test-concurrency=${process.env.CONFORMANCE_CONCURRENCY ?? "2"}`,
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      `--test-reporter=${path.join(srcDir, "reporter.mjs")}`,
      `--test-reporter-destination=${resultsFile}`,
      ...files,
    ],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"], timeout: 15 * 60_000 },
  );
  console.log(`conformance: tests ran in ${((Date.now() - started) / 1000).toFixed(1)} s (exit ${run.status ?? run.signal})`);
}

// ---------------------------------------------------------------------------------
// score

if (!existsSync(resultsFile)) {
  console.error(`conformance: no results (${path.relative(root, resultsFile)}); run without --report-only first`);
  process.exit(1);
}
const results = readFileSync(resultsFile, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l))
  .filter((r) => fileVersion(r.file) && (!onlyVersion || fileVersion(r.file) === onlyVersion));

const ID = /\[(MQTT-\d+(?:\.\d+)*-\d+)\]/g;
/** version -> id -> tests naming it */
const byId = new Map(VERSIONS.map((v) => [v, new Map()]));
const unknownIds = [];
for (const r of results) {
  const v = fileVersion(r.file);
  for (const m of r.name.matchAll(ID)) {
    const id = m[1];
    const map = byId.get(v);
    if (!map.has(id)) map.set(id, []);
    map.get(id).push(r);
    if (!statements.some((s) => s.version === v && s.id === id) && !unknownIds.includes(`${v} ${id}`)) unknownIds.push(`${v} ${id}`);
  }
}

const score = {};
const rows = [];
for (const v of VERSIONS) {
  const list = statements.filter((s) => s.version === v);
  let counted = 0, covered = 0, passing = 0;
  for (const s of list) {
    const tests = byId.get(v).get(s.id) ?? [];
    const serverSide = s.applies !== "client";
    const pass = tests.length > 0 && tests.every((t) => t.pass);
    if (serverSide) {
      counted++;
      if (tests.length) covered++;
      if (pass) passing++;
    }
    rows.push({ s, tests, serverSide, result: tests.length === 0 ? (serverSide ? "not covered" : "client only") : pass ? "pass" : "FAIL" });
  }
  score[v] = { statements: counted, clientOnly: list.length - counted, covered, passing };
}

const failed = results.filter((r) => !r.pass);
const passedTests = results.length - failed.length;

console.log("");
console.log("conformance score (server-side normative statements):");
for (const v of VERSIONS) {
  const s = score[v];
  console.log(`  MQTT ${v.padEnd(5)}  statements ${String(s.statements).padStart(3)}   covered ${String(s.covered).padStart(3)}   passing ${String(s.passing).padStart(3)}   (+${s.clientOnly} client-only, not counted)`);
}
if (unknownIds.length) {
  console.log(`\nconformance: test names cite ids that are not in statements.json:\n  ${unknownIds.join("\n  ")}`);
}
if (failed.length) {
  console.log(`\nfailing tests:`);
  for (const f of failed) console.log(`  ${f.file}: ${f.name}\n      ${f.error ?? ""}`);
}

if (!onlyVersion && !flag("--no-report")) writeReport();

console.log(`conformance: ${passedTests} passed, ${failed.length} failed`);
if (flag("--strict") && (failed.length > 0 || results.length === 0)) process.exit(1);

// ---------------------------------------------------------------------------------
// CONFORMANCE.md

function writeReport() {
  const esc = (t) => String(t).replace(/\|/g, "\\|").replace(/\n/g, " ");
  const out = [];
  out.push("# Conformance");
  out.push("");
  out.push("Generated by `npm run conformance` (scripts/conformance.mjs) from");
  out.push("`test/conformance/statements.json` and the results of the tests in `test/conformance/`;");
  out.push("do not edit by hand. Every test sends raw bytes to the real broker process on a loopback");
  out.push("port and is named after the statement ids it checks.");
  out.push("");
  out.push("A statement is *server-side* when it binds the server (alone or together with the client);");
  out.push("client-only statements are listed but not counted. *Covered*: at least one test is named");
  out.push("after it. *Passing*: covered, and every such test passed.");
  out.push("");
  out.push("| version | server-side statements | covered | passing | client-only (not counted) |");
  out.push("|---|---|---|---|---|");
  for (const v of VERSIONS) {
    const s = score[v];
    out.push(`| MQTT ${v} | ${s.statements} | ${s.covered} | ${s.passing} | ${s.clientOnly} |`);
  }
  out.push("");
  out.push(`Tests: ${passedTests} passed, ${failed.length} failed.`);
  for (const v of VERSIONS) {
    out.push("");
    out.push(`## MQTT ${v}`);
    out.push("");
    out.push("| id | applies to | statement (paraphrased) | test(s) | result |");
    out.push("|---|---|---|---|---|");
    for (const r of rows.filter((x) => x.s.version === v)) {
      const tests = r.tests.length
        ? r.tests.map((t) => `${t.pass ? "" : "**FAIL** "}${esc(t.name)}`).join("<br>")
        : r.s.note ? `— ${esc(r.s.note)}` : "—";
      out.push(`| ${r.s.id} | ${r.s.applies} | ${esc(r.s.says)} | ${tests} | ${r.result} |`);
    }
  }
  out.push("");
  writeFileSync(path.join(root, "CONFORMANCE.md"), out.join("\n"));
  console.log(`conformance: wrote CONFORMANCE.md`);
}
