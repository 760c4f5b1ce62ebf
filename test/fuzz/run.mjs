#!/usr/bin/env node
// `npm run fuzz -- [options]` and the fixed-seed run in `npm test`.
//
//   --count N     inputs to run (default 200000; with --time, no count limit)
//   --time S      stop after S seconds
//   --seed N      the run's seed (default 1, or a random one with --time)
//   --board NAME  fuzz core: "small" (config.ts fallbacks: tables fill up quickly,
//                 so limits are exercised) or a board profile from boards/ (default small)
//   --save DIR    where new crash cases go (default test/fuzz/crashes with --time,
//                 else build/fuzz/crashes, so a failing `npm test` does not edit the tree)
//   --rev REV     fuzz the core (assembly/) and its binding (host/core.ts) as committed at
//                 git revision REV (e.g. HEAD) instead of the working tree, which may be mid-edit
//   --src DIR     the same with a copy of the sources in DIR (DIR/assembly, DIR/host)
//   --no-replay   skip replaying test/fuzz/crashes/*.json first
//   --replay-only only replay them
//   --minimize F  shrink crash case F to F.min.json and print its packets
//
// Builds the fuzz cores (the core plus read-only probes, stub runtime; see probe.ts)
// into build/fuzz/ when a source changed, bundles the TypeScript, then runs main.ts.
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as asc from "assemblyscript/asc";
import * as esbuild from "esbuild";
import { execFileSync } from "node:child_process";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
process.chdir(root);
const out = "build/fuzz";
await mkdir(out, { recursive: true });

const argv = process.argv.slice(2);
const boardArg = argv.includes("--board") ? argv[argv.indexOf("--board") + 1] : "small";
const rev = argv.includes("--rev") ? argv[argv.indexOf("--rev") + 1] : undefined;

// the core's sources: the working tree, or a snapshot of one revision
let srcRoot = ".";
const srcArg = argv.includes("--src") ? argv[argv.indexOf("--src") + 1] : undefined;
if (srcArg !== undefined) {
  // a copy of the sources elsewhere (e.g. with a candidate fix applied)
  srcRoot = srcArg;
  await mkdir(`${srcRoot}/test/fuzz`, { recursive: true });
  await writeFile(`${srcRoot}/test/fuzz/probe.ts`, await readFile("test/fuzz/probe.ts"));
} else if (rev !== undefined) {
  const sha = execFileSync("git", ["rev-parse", "--short", rev], { encoding: "utf8" }).trim();
  srcRoot = `${out}/rev-${sha}`;
  await mkdir(`${srcRoot}/test/fuzz`, { recursive: true });
  execFileSync("sh", ["-c", `git archive ${sha} assembly host | tar -x -C ${srcRoot}`]);
  await writeFile(`${srcRoot}/test/fuzz/probe.ts`, await readFile("test/fuzz/probe.ts"));
}

// boards needed: the one fuzzed, and those the crash cases name
const boards = new Set([boardArg]);
for (const f of await readdir("test/fuzz/crashes").catch(() => [])) {
  if (!f.endsWith(".json")) continue;
  try {
    boards.add(JSON.parse(await readFile(path.join("test/fuzz/crashes", f), "utf8")).board ?? "small");
  } catch {
    // main.ts reports a broken case file
  }
}

async function newest(dir) {
  let t = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) t = Math.max(t, (await stat(path.join(e.parentPath ?? e.path, e.name))).mtimeMs);
  }
  return t;
}
const sources = Math.max(await newest(`${srcRoot}/assembly`), (await stat("test/fuzz/probe.ts")).mtimeMs, (await stat("test/fuzz/run.mjs")).mtimeMs);

const cores = {};
for (const board of boards) {
  const file = `${out}/probe-${board}${srcRoot !== "." ? `-${path.basename(srcRoot)}` : ""}.wasm`;
  cores[board] = file;
  const args = [path.join(srcRoot, "test/fuzz/probe.ts"), "--config", "/dev/null", "--runtime", "stub",
    "--use", `abort=${srcRoot === "." ? "" : srcRoot + "/"}assembly/host/coreAbort`, "-O3", "--outFile", file];
  let inputs = sources;
  if (board !== "small") {
    const profile = `boards/${board}.json`;
    const limits = JSON.parse(await readFile(profile, "utf8")).limits;
    for (const [k, v] of Object.entries(limits)) args.push("--use", `BOARD_${k}=${v}`);
    inputs = Math.max(inputs, (await stat(profile)).mtimeMs);
  }
  const built = await stat(file).then((s) => s.mtimeMs, () => 0);
  if (built > inputs) continue;
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main(args, { stdout: asc.createMemoryStream(), stderr });
  if (error) {
    process.stderr.write(stderr.toString());
    console.error(`fuzz: the ${board} fuzz core did not compile`);
    process.exit(1);
  }
}

// the binding imports the core's vocabulary (host/generated/), made from the same sources
// (an older revision's binding may keep its own copy instead)
if ((await readFile(`${srcRoot}/host/core.ts`, "utf8")).includes("./generated/vocab")) {
  execFileSync(process.execPath, ["scripts/vocab.mjs", "--root", srcRoot], { stdio: "inherit" });
}
await esbuild.build({
  entryPoints: { main: "test/fuzz/main.ts", worker: "test/fuzz/worker.ts" },
  outdir: out,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "inline",
  logLevel: "warning",
  plugins: srcRoot === "." ? [] : [{
    name: "core-at-rev",
    setup: (b) => b.onResolve({ filter: /host\/core$/ }, () => ({ path: path.resolve(srcRoot, "host/core.ts") })),
  }],
});

const { main } = await import(path.resolve(out, "main.mjs"));
process.exitCode = await main(argv, cores, path.resolve(out, "worker.mjs"));
