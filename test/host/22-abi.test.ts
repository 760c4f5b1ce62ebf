/// <reference path="../../host/wasm.d.ts" />
// The ABI seam of every board's core: its import section holds only the imports that
// docs/ABI.md documents (module `env`, functions), it exports everything documented, and
// the mcu board keeps its promises (one 64 KiB page, a .wasm of at most 48 KiB). Also
// checks the shadow stack each board reserves (compiler.stackSize) against the deepest
// chain of frames in its code, since a shadow-stack overflow would trap the core.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { ROOT, which } from "./helpers.js";

const abi = readFileSync(path.join(ROOT, "docs", "ABI.md"), "utf8");

/** The `name`s in the first column of the table under the heading that starts with `heading`. */
function documented(heading: string): string[] {
  const start = abi.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `docs/ABI.md has no "## ${heading}" section`);
  const end = abi.indexOf("\n## ", start + 1);
  const section = abi.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([A-Za-z_]\w*)` \|/gm)].map((m) => m[1]);
}

const imports = documented("Imports");
const exports = documented("Exports");
const builds = readdirSync(path.join(ROOT, "build")).filter((f) => /^midge-[\w-]+\.wasm$/.test(f)).sort();
const budget: Array<{ name: string; maxPages: number; budget: { stack: number } | null }> = JSON.parse(
  readFileSync(path.join(ROOT, "build", "budget.json"), "utf8"),
);

test("docs/ABI.md documents the imports and exports", () => {
  for (const name of ["send", "close", "log"]) assert.ok(imports.includes(name), name);
  for (const name of ["memory", "init", "inputBuffer", "feed", "closed", "tick"]) assert.ok(exports.includes(name), name);
});

test("every board profile was built", () => {
  const boards = readdirSync(path.join(ROOT, "boards")).filter((f) => f.endsWith(".json")).map((f) => `midge-${f.slice(0, -5)}.wasm`);
  assert.deepEqual(builds, boards.sort());
});

for (const file of builds) {
  const board = file.slice("midge-".length, -".wasm".length);
  describe(`build/${file}`, () => {
    const bytes = readFileSync(path.join(ROOT, "build", file));
    const module = new WebAssembly.Module(bytes);

    test("imports only what docs/ABI.md documents", () => {
      for (const i of WebAssembly.Module.imports(module)) {
        assert.equal(i.module, "env", `import ${i.module}.${i.name}: the only import module is env`);
        assert.equal(i.kind, "function", `import env.${i.name} is a ${i.kind}`);
        assert.ok(imports.includes(i.name), `import env.${i.name} is not in docs/ABI.md`);
      }
    });

    test("exports everything docs/ABI.md documents", () => {
      const names = WebAssembly.Module.exports(module).map((e) => e.name);
      for (const name of exports) assert.ok(names.includes(name), `no export ${name}`);
    });

    if (board === "mcu") {
      test("one 64 KiB page of linear memory, a .wasm of at most 48 KiB", () => {
        const memory = new WebAssembly.Instance(module, { env: { send() {}, sendAgain() {}, close() {}, backlog: () => 0, pause() {}, resume() {}, wake() {}, log() {} } })
          .exports.memory as WebAssembly.Memory;
        assert.equal(memory.buffer.byteLength, 65536);
        assert.ok(bytes.length <= 48 * 1024, `${bytes.length} bytes`);
      });
    }

    test("the shadow stack holds the deepest chain of frames", { skip: which("wasm2wat") ? false : "wasm2wat (wabt) not installed" }, () => {
      const reserved = budget.find((b) => b.name === board)?.budget?.stack;
      assert.ok(reserved !== undefined, `build/budget.json has no stack for ${board}`);
      const wat = spawnSync("wasm2wat", [path.join(ROOT, "build", file)], { encoding: "utf8", maxBuffer: 64 << 20 }).stdout;
      const worst = deepestShadowStack(wat);
      assert.ok(worst * 4 <= reserved, `worst case ${worst} bytes; ${reserved} reserved (want 4x headroom)`);
    });
  });
}

/**
 * Bytes of shadow stack on the deepest call chain. AssemblyScript's shadow-stack pass
 * gives each function that keeps references across calls a prologue
 * `global.get SP; i32.const N; i32.sub; global.set SP`; the answer is the largest sum of
 * those N along any call path (a back edge, i.e. recursion such as the overflow
 * handler's abort, counts once).
 */
function deepestShadowStack(wat: string): number {
  const frame = new Map<number, number>();
  const calls = new Map<number, number[]>();
  const prologue = /global\.get (\d+)\n\s+i32\.const (\d+)\n\s+i32\.sub\n\s+global\.set \1\b/g;
  for (const body of wat.split(/\n {2}\(func /).slice(1)) {
    const id = Number(/^\(;(\d+);\)/.exec(body)?.[1]);
    let bytes = 0;
    for (const m of body.matchAll(prologue)) bytes += Number(m[2]);
    frame.set(id, bytes);
    calls.set(id, [...body.matchAll(/\bcall (\d+)\b/g)].map((m) => Number(m[1])));
  }
  const memo = new Map<number, number>();
  const onPath = new Set<number>();
  const depth = (id: number): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    if (onPath.has(id)) return 0;
    onPath.add(id);
    let deepest = 0;
    for (const callee of calls.get(id) ?? []) deepest = Math.max(deepest, depth(callee));
    onPath.delete(id);
    const d = (frame.get(id) ?? 0) + deepest;
    memo.set(id, d);
    return d;
  };
  let worst = 0;
  for (const id of frame.keys()) worst = Math.max(worst, depth(id));
  return worst;
}
