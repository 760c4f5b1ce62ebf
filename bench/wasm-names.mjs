// Names for the core's functions in a CPU profile. Release cores carry no name section,
// so V8 shows `wasm-function[N]`. This compiles the same board again with `--debug`
// (same limits and options; binaryen emits identical bodies, plus names) and matches
// functions by their body bytes: index N of build/midge-<board>.wasm -> source name.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, embeddedCore } from "./brokers.mjs";

function parse(bytes) {
  const b = bytes;
  let p = 8;
  const out = { imports: 0, bodies: [], names: new Map() };
  const leb = () => {
    let r = 0, s = 0, x;
    do { x = b[p++]; r |= (x & 0x7f) << s; s += 7; } while (x & 0x80);
    return r >>> 0;
  };
  const limits = () => { const f = b[p++]; leb(); if (f & 1) leb(); };
  while (p < b.length) {
    const id = b[p++];
    const size = leb();
    const end = p + size;
    if (id === 2) {
      const n = leb();
      for (let i = 0; i < n; i++) {
        p += leb(); p += leb();
        const kind = b[p++];
        if (kind === 0) { leb(); out.imports++; }
        else if (kind === 1) { p++; limits(); }
        else if (kind === 2) limits();
        else if (kind === 3) p += 2;
      }
    } else if (id === 10) {
      const n = leb();
      for (let i = 0; i < n; i++) { const s = leb(); out.bodies.push(b.subarray(p, p + s).toString("hex")); p += s; }
    } else if (id === 0) {
      const nl = leb();
      const name = b.subarray(p, p + nl).toString();
      p += nl;
      if (name === "name") {
        while (p < end) {
          const sid = b[p++];
          const se = leb() + p;
          if (sid === 1) {
            const n = leb();
            for (let i = 0; i < n; i++) { const idx = leb(); const l = leb(); out.names.set(idx, b.subarray(p, p + l).toString()); p += l; }
          }
          p = se;
        }
      }
    }
    p = end;
  }
  return out;
}

/** Map from function index (as in `wasm-function[N]`, of `bundle`'s core when given, else build/midge-<board>.wasm) to `assembly/...` name; empty on failure. */
export function wasmNames(board = "pi", bundle = undefined) {
  const names = new Map();
  const dir = mkdtempSync(path.join(os.tmpdir(), "midge-names-"));
  try {
    const b = JSON.parse(readFileSync(path.join(ROOT, `boards/${board}.json`), "utf8"));
    const args = ["assembly/index.ts", "--outFile", path.join(dir, "named.wasm"), "--maximumMemory", String(b.maxPages), "--debug"];
    for (const [k, v] of Object.entries(b.compiler ?? {})) args.push(`--${k}`, String(v));
    for (const [k, v] of Object.entries(b.limits)) args.push("--use", `BOARD_${k}=${v}`);
    const r = spawnSync(path.join(ROOT, "node_modules/.bin/asc"), args, { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) return names;
    // the release core under test: the one embedded in `bundle` (the run's snapshot)
    const rel = parse(bundle ? embeddedCore(bundle, board) : readFileSync(path.join(ROOT, `build/midge-${board}.wasm`)));
    const dbg = parse(readFileSync(path.join(dir, "named.wasm")));
    const byBody = new Map(dbg.bodies.map((h, i) => [h, dbg.names.get(i + dbg.imports)]));
    rel.bodies.forEach((h, i) => {
      const n = byBody.get(h);
      if (n) names.set(i + rel.imports, n);
    });
  } catch {
    // names are a convenience
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return names;
}
