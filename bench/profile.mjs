// Summarise V8 .cpuprofile files (from `node --cpu-prof`): self time per function and
// per kind of code (the core in wasm, the host's JavaScript, Node's net/stream code,
// native and GC), as a Markdown table. `node bench/profile.mjs DIR` prints it.

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

function kindOf(frame) {
  const { url, functionName } = frame;
  if (functionName === "(garbage collector)") return "GC";
  if (functionName === "(idle)") return "idle";
  if (functionName === "(program)") return "native (program)";
  if (url.startsWith("wasm://") || /wasm-function/.test(functionName)) return "core (wasm)";
  if (url.includes("midge.mjs")) return "host (dist/midge.mjs)";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0] === "internal" ? url.slice(5).split("/").slice(1, 3).join("/") : url.slice(5)}`;
  if (url === "") return "native builtins";
  return url;
}

/** `names`: wasm function index -> name (bench/wasm-names.mjs), to replace `wasm-function[N]`. */
export function summarize(dir, top = 25, names = new Map(), topKinds = 10) {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  const byFn = new Map();
  const byKind = new Map();
  let total = 0;
  for (const f of files) {
    const prof = JSON.parse(readFileSync(path.join(dir, f), "utf8"));
    const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
    const self = new Map();
    for (let i = 0; i < prof.samples.length; i++) {
      const dt = prof.timeDeltas[i] ?? 0;
      self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
    }
    for (const [id, us] of self) {
      const n = nodes.get(id);
      if (!n) continue;
      const cf = n.callFrame;
      const kind = kindOf(cf);
      if (kind === "idle") continue;
      total += us;
      const where = cf.url && !cf.url.startsWith("wasm://") ? `${path.basename(cf.url)}:${cf.lineNumber + 1}` : "";
      const wf = /^wasm-function\[(\d+)\]$/.exec(cf.functionName);
      const fname = wf && names.has(Number(wf[1])) ? names.get(Number(wf[1])) : cf.functionName;
      const key = `${fname || "(anonymous)"}\u0000${where}\u0000${kind}`;
      byFn.set(key, (byFn.get(key) ?? 0) + us);
      byKind.set(kind, (byKind.get(kind) ?? 0) + us);
    }
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1)}%`;
  const lines = [];
  lines.push(`Busy time ${(total / 1e6).toFixed(2)} s (idle excluded), ${files.length} profile(s).`);
  lines.push("");
  lines.push("| kind of code | self time |");
  lines.push("|---|---:|");
  for (const [k, us] of [...byKind].sort((a, b) => b[1] - a[1]).slice(0, topKinds)) lines.push(`| ${k} | ${pct(us)} |`);
  lines.push("");
  lines.push("| function | where | kind | self time |");
  lines.push("|---|---|---|---:|");
  for (const [key, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const [fn, where, kind] = key.split("\u0000");
    lines.push(`| \`${fn}\` | ${where} | ${kind} | ${pct(us)} |`);
  }
  lines.push("");
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { wasmNames } = await import("./wasm-names.mjs");
  console.log(summarize(process.argv[2] ?? ".", Number(process.argv[3] ?? 25), wasmNames()));
}
