#!/usr/bin/env node
// `npm run build`: the core's vocabulary for the hosts (scripts/vocab.mjs), one core per
// board profile (boards/<name>.json -> build/midge-<name>.wasm), its memory budget, then
// the host bundled with every core embedded (dist/midge.mjs, self-contained). Exits 1 if
// a board is over budget.
//
// Shared compiler options live in ./asconfig.json (asc loads it on its own); the
// per-board limits are passed here as `--use BOARD_<KEY>=<value>`, because a
// command-line --use cannot override a value an asconfig target sets. A board may
// also set a few compiler options ("compiler": stackSize, memoryBase, ...).
//
// The memory budget is read from the compiler itself (scripts/budget.mjs: an asc
// transform that records every static region of linear memory under the name of the
// constant holding its address), printed as one table and written to build/budget.json.

import { execFileSync } from "node:child_process";
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { COMPILER_OPTIONS, budgetRecord, compile, compilerArgs, printBudget } from "./budget.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root); // asc resolves asconfig.json, the entry and the runtime from here

const entry = "assembly/index.ts";
const started = performance.now();

const boards = await readBoards();
await mkdir("build", { recursive: true });

// The core's vocabulary for the hosts (host/generated/), before anything that imports it.
execFileSync(process.execPath, ["scripts/vocab.mjs"], { stdio: "inherit" });

// The host's ABI check and loader (host/core.ts), so a core that would not link or
// whose start function traps fails here rather than when someone runs it.
const { Core, checkAbi } = await importTs("host/core.ts");

let failed = false;
for (const board of boards) {
  const outFile = `build/midge-${board.name}.wasm`;
  const t0 = performance.now();
  const args = [entry, "--outFile", outFile, "--maximumMemory", String(board.maxPages), ...compilerArgs(board)];
  for (const [key, value] of Object.entries(board.limits)) args.push("--use", `BOARD_${key}=${value}`);
  const { error, output, memory } = await compile(args);
  if (error) {
    // asc refuses a module whose static memory exceeds --maximumMemory (AS106).
    const over = /requires at least '(\d+)' pages/.exec(output);
    if (!over) {
      process.stderr.write(output);
      fail(`${board.name}: the core did not compile`);
    }
    board.pages = Number(over[1]);
    failed = true;
    console.log(`${board.name.padEnd(8)} OVER BUDGET: needs ${board.pages} pages, maxPages is ${board.maxPages}`);
    // Compile again without the limit (to a scratch file), only to see what takes the space.
    const unbounded = args.map((a, i) => (args[i - 1] === "--maximumMemory" ? "0" : args[i - 1] === "--outFile" ? `build/over-${board.name}.wasm` : a));
    board.memory = (await compile(unbounded)).memory;
    continue;
  }
  board.memory = memory;
  printOnce(output); // warnings: the same ones for every board, so show them once
  const wasm = await readFile(outFile);
  board.wasmBytes = wasm.length;
  const module = new WebAssembly.Module(wasm);
  const problems = checkAbi(module);
  if (problems.length > 0) fail(`${outFile} does not fit docs/ABI.md:\n  ${problems.join("\n  ")}`);
  try {
    const core = new Core(module, { log() {}, fatal: (e) => { throw e; } });
    board.pages = core.memoryPages; // the initial (and only) size: the core never grows it
    board.maxPacket = core.maxPacketSize;
  } catch (e) {
    fail(`${outFile} does not start: ${e.message}`);
  }
  const over = board.pages > board.maxPages;
  failed ||= over;
  console.log(
    `${board.name.padEnd(8)} ${outFile}  ${kib(wasm.length)}  ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (over ? `  OVER BUDGET: ${board.pages} pages > ${board.maxPages}` : ""),
  );
}

printBudget(boards);
await writeFile("build/budget.json", JSON.stringify(boards.map(budgetRecord), null, 2) + "\n");
if (failed) fail("a board needs more memory than its maxPages");

// Boards marked "wasm2js": the core turned into plain JavaScript over one ArrayBuffer
// (binaryen's wasm2js, shipped with assemblyscript), bundled with the small Espruino-style
// host (boards/espruino/) into one ES5-friendly script for runtimes without WebAssembly.
for (const board of boards.filter((b) => b.wasm2js)) {
  const t0 = performance.now();
  const coreJs = `build/midge-${board.name}.wasm2js.mjs`;
  const wasm2js = path.join("node_modules", ".bin", "wasm2js");
  // Not --enable-nontrapping-float-to-int: this binaryen's wasm2js emits invalid code for
  // i32.trunc_sat (its validator says so), hence "disable": "nontrapping-f2i" in the board.
  const features = ["--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals"];
  execFileSync(wasm2js, [`build/midge-${board.name}.wasm`, ...features, "-O3", "-o", coreJs], { stdio: ["ignore", "ignore", "inherit"] });
  // .cjs: a plain script (Espruino's `require("net")`), not an ES module, whatever package.json says
  const script = `dist/midge-${board.name}-espruino.cjs`;
  const modules = { "midge:core": path.resolve(coreJs), env: path.resolve("boards/espruino/env.js") };
  await esbuild.build({
    entryPoints: ["boards/espruino/main.js"],
    outfile: script,
    bundle: true,
    format: "iife",
    target: "es5",
    minify: true,
    platform: "neutral",
    external: ["net"],
    plugins: [{ name: "midge-espruino", setup: (b) => b.onResolve({ filter: /^(midge:core|env)$/ }, (a) => ({ path: modules[a.path] })) }],
    legalComments: "none",
    logLevel: "warning",
  });
  board.espruinoBytes = (await stat(script)).size;
  console.log(`${board.name.padEnd(8)} ${script}  ${kib(board.espruinoBytes)}  (wasm2js, no WebAssembly)  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// The generated module that embeds every core (esbuild's binary loader turns each
// import into a Uint8Array); host/cli.ts imports it as "midge:boards".
const gen = "build/boards.gen.ts";
await writeFile(
  gen,
  "// Generated by scripts/build.mjs: every board's core, embedded. Do not edit.\n" +
    boards.map((b, i) => `import core${i} from "./midge-${b.name}.wasm";\n`).join("") +
    "export const boards: Record<string, Uint8Array<ArrayBuffer>> = {\n" +
    boards.map((b, i) => `  ${JSON.stringify(b.name)}: core${i},\n`).join("") +
    "};\n",
);

const outfile = "dist/midge.mjs";
await esbuild.build({
  entryPoints: ["host/cli.ts"],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  banner: { js: "#!/usr/bin/env node" },
  loader: { ".wasm": "binary" },
  plugins: [{ name: "midge-boards", setup: (b) => b.onResolve({ filter: /^midge:boards$/ }, () => ({ path: path.resolve(gen) })) }],
  legalComments: "none",
  logLevel: "warning",
});
await chmod(outfile, 0o755);
console.log(`host     ${outfile}  ${kib((await stat(outfile)).size)}  (${((performance.now() - started) / 1000).toFixed(1)} s in all)`);

// ---- helpers ----

async function readBoards() {
  const files = (await readdir("boards")).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) fail("no board profiles in boards/");
  return Promise.all(
    files.map(async (file) => {
      const where = `boards/${file}`;
      let board;
      try {
        board = JSON.parse(await readFile(where, "utf8"));
      } catch (e) {
        fail(`${where}: ${e.message}`);
      }
      const name = file.slice(0, -".json".length);
      if (board.name !== name) fail(`${where}: "name" must be "${name}", the file's name`);
      if (!Number.isInteger(board.maxPages) || board.maxPages < 1 || board.maxPages > 65536) {
        fail(`${where}: "maxPages" must be a whole number of 64 KiB pages, 1 to 65536`);
      }
      for (const [key, value] of Object.entries(board.limits ?? {})) {
        if (!/^[A-Z][A-Z0-9_]*$/.test(key)) fail(`${where}: limit "${key}" must be UPPER_SNAKE_CASE`);
        if (!Number.isSafeInteger(value) || value < 0) fail(`${where}: limit ${key} must be a whole number`);
      }
      for (const key of Object.keys(board.compiler ?? {})) {
        if (!COMPILER_OPTIONS.includes(key)) fail(`${where}: compiler option "${key}" is not one of ${COMPILER_OPTIONS.join(", ")}`);
      }
      return { ...board, limits: board.limits ?? {} };
    }),
  );
}

/** Bundle a TypeScript module in memory and import it (the build has no TS loader). */
async function importTs(file) {
  const { outputFiles } = await esbuild.build({ entryPoints: [file], bundle: true, write: false, format: "esm", platform: "node" });
  return import(`data:text/javascript;base64,${Buffer.from(outputFiles[0].contents).toString("base64")}`);
}

function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

const shown = new Set();
function printOnce(text) {
  if (text.trim() === "" || shown.has(text)) return;
  shown.add(text);
  process.stderr.write(text);
}

function fail(message) {
  console.error(`build failed: ${message}`);
  process.exit(1);
}
