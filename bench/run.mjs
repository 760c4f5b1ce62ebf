// npm run bench [-- --quick] [-- --only fanin,fanout,latency,idle,retained,voice,micro]
//               [-- --brokers midge,midge-native,mosquitto,aedes] [-- --rounds N] [-- --no-relay]
//               [-- --profile DIR] [-- --midge PATH]
//
// `--midge PATH` (default dist/midge.mjs): the Midge bundle to measure. It is copied to
// a temporary file before anything runs and every Midge broker (and the micro-benchmarks'
// core, taken from the same bundle) comes from that copy, so a rebuild of dist/ during
// the run cannot change the broker under test.
//
// Midge, Mosquitto 2 and Aedes side by side on loopback, broker pinned to one core and
// this generator to another. Every run gets a fresh broker; each scenario alternates
// the brokers (rotating who goes first) over several rounds; the tables give medians
// and Midge/peer ratios from this run only (the machines are shared and noisy).
// `midge` is the Node host (dist/midge.mjs); `midge-native` the native host
// (build/native/midge-pi: the same pi core through wasm2c, one epoll loop, no Node).
// `--profile DIR` runs only Midge under `node --cpu-prof` on the fan-in and fan-out
// scenarios and prints where it spends its time (see bench/profile.mjs).

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT, cores, ensureMosquitto, mosquittoVersion, pinSelf, relayCBinary, snapshotMidge, snapshotNative, startBroker, stopAll, taskset } from "./brokers.mjs";
import { idle, latency, retained, throughput, voice } from "./scenarios.mjs";
import { summarize } from "./profile.mjs";

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    brokers: { type: "string", default: "midge,midge-native,mosquitto,aedes" },
    rounds: { type: "string" },
    "no-relay": { type: "boolean", default: false },
    profile: { type: "string" },
    midge: { type: "string", default: "dist/midge.mjs" },
  },
});

const quick = opt.quick;
const rounds = Number(opt.rounds ?? (quick ? 1 : 3));
const only = opt.only ? new Set(opt.only.split(",")) : null;
const want = (s) => only === null || only.has(s);
let brokers = opt.brokers.split(",");
const T = quick
  ? { warmupMs: 300, measureMs: 1000, latWarmupMs: 300, latMs: 1500, idle: [1000], voiceMs: 3000, voiceRounds: 1 }
  : // voice: long enough (8 MB to the slow subscriber) to get past the ~4 MB the kernel
  // buffers for it, so each broker's own limit for a slow reader is what is measured
  { warmupMs: 500, measureMs: 2000, latWarmupMs: 500, latMs: 4000, idle: [1000, 10000], voiceMs: 25000, voiceRounds: 1 };

// ---------------------------------------------------------------------------------
// setup

const midgeSource = path.resolve(opt.midge);
if (!existsSync(midgeSource)) {
  console.error(`bench: ${opt.midge} is missing: run \`npm run build\` first (or give --midge PATH)`);
  process.exit(1);
}
if (brokers.includes("mosquitto") && !ensureMosquitto()) {
  console.error("bench: mosquitto is not installed and apt-get could not install it; leaving it out");
  brokers = brokers.filter((b) => b !== "mosquitto");
}
const pinnedSelf = pinSelf();
// 10,000 idle connections need 10,000 descriptors here and as many in the broker (which
// inherits our limit): raise the soft limit to the hard one by re-running under `sh`.
const limitOf = (flag) => spawnSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).stdout.trim();
const fdLimit = Number(limitOf("-n")) || 1024;
if (fdLimit < 10300 && process.env.MIDGE_BENCH_ULIMIT === undefined) {
  const hard = limitOf("-Hn");
  if (hard === "unlimited" || Number(hard) > fdLimit) {
    const r = spawnSync("sh", ["-c", `ulimit -n ${hard === "unlimited" ? 65536 : hard} && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
      stdio: "inherit",
      env: { ...process.env, MIDGE_BENCH_ULIMIT: "1" },
    });
    process.exit(r.status ?? 1);
  }
}

// Everything below uses a private copy of the bundle, taken now (after the re-exec above).
const midge = snapshotMidge(midgeSource);
process.stderr.write(`bench: Midge under test: ${path.relative(ROOT, midge.source) || midge.source} (sha256 ${midge.sha256.slice(0, 12)}, built ${midge.mtime.toISOString()}), copied to ${midge.path}\n`);
const native = brokers.includes("midge-native") ? snapshotNative() : null;
if (brokers.includes("midge-native") && native === null) {
  console.error("bench: build/native/midge-pi is missing (npm run build:native); leaving midge-native out");
  brokers = brokers.filter((b) => b !== "midge-native");
}

const cleanup = async () => {
  await stopAll();
};
process.on("SIGINT", () => cleanup().then(() => process.exit(130)));
process.on("SIGTERM", () => cleanup().then(() => process.exit(143)));

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** Run `fn(broker)` on a fresh broker of each kind, alternating kinds, `n` rounds. */
async function alternate(kinds, n, fn, brokerOptions = {}) {
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < n; r++) {
    const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]);
    for (const kind of order) {
      const broker = await startBroker(kind, brokerOptions);
      let result;
      try {
        result = await fn(broker);
      } finally {
        await new Promise((res) => setTimeout(res, 100));
        await broker.stop();
      }
      // Midge's own count of what it dropped, from its shutdown line
      const dropped = midgeDropped(broker.output());
      if (dropped !== undefined) result.brokerDropped = dropped;
      results[kind].push(result);
      process.stderr.write(`  ${kind.padEnd(9)} round ${r + 1}: ${brief(result)}\n`);
    }
  }
  return results;
}

/**
 * Messages Midge counted as dropped, from the last stats line it logged: either
 * `stats: messages in A, out B, dropped C; ...` (older hosts) or every counter as
 * `stats: name=value ...` (droppedQos0Slow + droppedQueueFull + droppedStoreFull +
 * droppedExpired + droppedTooLarge, the sum the older line printed).
 */
function midgeDropped(text) {
  const lines = text.split("\n").filter((l) => l.includes("stats: "));
  const line = lines[lines.length - 1];
  if (line === undefined) return undefined;
  const old = /stats: messages in (\d+), out (\d+), dropped (\d+)/.exec(line);
  if (old) return Number(old[3]);
  const counters = Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
  const keys = ["droppedQos0Slow", "droppedQueueFull", "droppedStoreFull", "droppedExpired", "droppedTooLarge"];
  return keys.some((k) => k in counters) ? keys.reduce((a, k) => a + (counters[k] ?? 0), 0) : undefined;
}

function brief(r) {
  return Object.entries(r)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}`)
    .join(" ");
}

// ---------------------------------------------------------------------------------
// output

const lines = [];
const out = (s = "") => {
  lines.push(s);
  console.log(s);
};
const fmt = (x, digits = 0) =>
  !Number.isFinite(x) ? "–" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–");
/** Midge's hosts (Node and native) and the peers they are compared with. */
const isMidge = (k) => k === "midge" || k === "midge-native";
const mine = () => brokers.filter(isMidge);
const peers = () => brokers.filter((b) => !isMidge(b));

/** A table: one row per case, one column per broker, then Midge/peer ratios. */
function table(title, unit, rows) {
  out(`### ${title}`);
  out();
  const cols = [...brokers];
  const head = ["case", ...cols.map((c) => (unit ? `${c} (${unit})` : c))];
  for (const m of mine()) head.push(...peers().map((p) => `${m} ÷ ${p}`));
  out(`| ${head.join(" | ")} |`);
  out(`|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
  for (const row of rows) {
    const cells = [row.name, ...cols.map((c) => row.cell?.(c) ?? fmt(row.value(c), row.digits ?? 0))];
    for (const m of mine()) cells.push(...peers().map((p) => ratio(row.value(m), row.value(p))));
    out(`| ${cells.join(" | ")} |`);
  }
  out();
}

// ---------------------------------------------------------------------------------
// profile mode

if (opt.profile) {
  const { wasmNames } = await import("./wasm-names.mjs");
  const names = wasmNames("pi", midge.path);
  const dir = path.resolve(opt.profile);
  mkdirSync(dir, { recursive: true });
  const cases = [
    ["fan-in 4→1 QoS 0 64 B", { pubs: 4, subs: 1, size: 64, qos: 0, window: 2000 }],
    ["fan-in 4→1 QoS 1 64 B", { pubs: 4, subs: 1, size: 64, qos: 1, window: 800 }],
    ["fan-out 1→100 QoS 0 64 B", { pubs: 1, subs: 100, size: 64, qos: 0, window: 200 }],
  ];
  for (const [name, c] of cases) {
    const sub = path.join(dir, name.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
    mkdirSync(sub, { recursive: true });
    const broker = await startBroker("midge", { extraNodeArgs: ["--cpu-prof", "--cpu-prof-dir", sub] });
    const r = await throughput(broker, {
      ...c,
      filter: c.subs === 1 ? "bench/+" : "bench/fan",
      topic: (p) => (c.subs === 1 ? `bench/p${p}` : "bench/fan"),
      warmupMs: 500,
      measureMs: quick ? 2000 : 4000,
    });
    await broker.stop();
    out(`## Profile: ${name} (${fmt(r.rate)} deliveries/s under the profiler)`);
    out();
    out(summarize(sub, 25, names));
  }
  process.exit(0);
}

// ---------------------------------------------------------------------------------
// the scenarios

const started = Date.now();
const withRelay = !opt["no-relay"];
const report = {};

if (want("fanin") || want("fanout")) {
  const cases = [];
  if (want("fanin")) {
    for (const qos of [0, 1]) {
      for (const size of [64, 1024]) {
        cases.push({
          name: `fan-in 4→1 \`bench/+\`, QoS ${qos}, ${size === 1024 ? "1 KiB" : "64 B"}`,
          pubs: 4, subs: 1, size, qos,
          // QoS 1: under Midge's per-subscriber queue (pi: QUEUE_MAX 1000), so a loss is a broker's bug
          window: qos === 1 ? 800 : size === 64 ? 2000 : 400,
          filter: "bench/+",
          topic: (p) => `bench/p${p}`,
        });
      }
    }
  }
  if (want("fanin")) {
    for (const size of [64, 1024]) {
      cases.push({
        name: `fan-in 4→1 \`bench/+\`, QoS 1, ${size === 1024 ? "1 KiB" : "64 B"}, no in-flight limit`,
        pubs: 4, subs: 1, size, qos: 1,
        window: "acks", // publishers limited only by their PUBACKs (and TCP): how real clients drive it
        filter: "bench/+",
        topic: (p) => `bench/p${p}`,
      });
    }
  }
  if (want("fanout")) {
    for (const subs of [10, 100]) {
      cases.push({
        name: `fan-out 1→${subs}, QoS 0, 64 B`,
        pubs: 1, subs, size: 64, qos: 0,
        window: subs === 10 ? 1000 : 200,
        filter: "bench/fan",
        topic: () => "bench/fan",
      });
    }
  }
  const kinds = withRelay ? [...brokers, "relay"] : brokers;
  for (const c of cases) {
    process.stderr.write(`${c.name}\n`);
    const res = await alternate(kinds, rounds, (b) => throughput(b, { ...c, warmupMs: T.warmupMs, measureMs: T.measureMs }));
    report[c.name] = res;
  }
}

if (want("latency")) {
  for (const qos of [0, 1]) {
    const name = `latency at 1000 msg/s, QoS ${qos}, 64 B`;
    process.stderr.write(`${name}\n`);
    // the C relay (bench/relay.c: frames and forwards, no broker) is the floor: what
    // this generator and kernel measure with no broker work at all
    const kinds = withRelay && relayCBinary() !== null ? [...brokers, "relay-c"] : brokers;
    report[name] = await alternate(kinds, rounds, (b) =>
      latency(b, { qos, rate: 1000, size: 64, warmupMs: T.latWarmupMs, measureMs: T.latMs }),
    );
  }
}

if (want("idle")) {
  for (const n0 of T.idle) {
    // each connection needs a descriptor here and one in the broker
    const n = Math.min(n0, fdLimit - 200);
    const name = `idle ${n} connections`;
    process.stderr.write(`${name}${n < n0 ? ` (capped from ${n0} by ulimit -n ${fdLimit})` : ""}\n`);
    // the relay (bare Node sockets, no MQTT state) shows what any Node broker pays per socket
    report[name] = await alternate(withRelay ? [...brokers, "relay"] : brokers, n >= 10000 ? 1 : rounds, (b) => idle(b, { n }));
  }
}

if (want("retained")) {
  const name = "retained 10,000";
  process.stderr.write(`${name}\n`);
  report[name] = await alternate(brokers, rounds, (b) => retained(b, { n: 10000, size: 64 }));
}

if (want("voice")) {
  const name = "voice";
  process.stderr.write(`${name}\n`);
  report[name] = await alternate(brokers, T.voiceRounds, (b) => voice(b, { measureMs: T.voiceMs, warmupMs: 1000 }));
}

let micro = null;
if (want("micro")) {
  process.stderr.write("micro-benchmarks\n");
  const args = [path.join(ROOT, "bench/micro.mjs"), "--midge", midge.path, ...(quick ? ["--quick"] : [])];
  const r = taskset && cores >= 2
    ? spawnSync("taskset", ["-c", "0", process.execPath, ...args], { encoding: "utf8" })
    : spawnSync(process.execPath, args, { encoding: "utf8" });
  micro = r.status === 0 ? r.stdout.trim() : `micro-benchmarks failed:\n\n    ${(r.stderr || r.stdout).trim().split("\n").join("\n    ")}`;
}

await stopAll();

// ---------------------------------------------------------------------------------
// tables

const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
const aedesVersion = JSON.parse(readFileSync(path.join(ROOT, "node_modules/aedes/package.json"), "utf8")).version;
out(`## Midge benchmark: ${new Date().toISOString()}`);
out();
out(`- command: \`npm run bench${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\``);
out(`- Midge under test: \`${path.relative(ROOT, midge.source) || midge.source}\` (${fmt(midge.bytes)} bytes, sha256 ${midge.sha256.slice(0, 16)}, built ${midge.mtime.toISOString()}), copied before the first run`);
if (native) out(`- midge-native under test: \`${path.relative(ROOT, native.source)}\` (${fmt(native.bytes)} bytes, sha256 ${native.sha256.slice(0, 16)}, built ${native.mtime.toISOString()}), copied before the first run`);
out(`- machine: ${cores} × ${cpuModel}, ${Math.round(os.totalmem() / 2 ** 20)} MiB, Linux ${os.release()}`);
out(`- node ${process.version}, mosquitto ${brokers.includes("mosquitto") ? mosquittoVersion() : "–"}, aedes ${aedesVersion}`);
out(`- pinning: ${pinnedSelf ? `broker on CPU 0, generator on CPU ${cores - 1} (taskset)` : `none (taskset ${taskset ? "present" : "missing"}, ${cores} cores)`}`);
out(`- rounds: ${rounds} (medians; idle 10,000 and voice: ${T.voiceRounds} round), ${quick ? "quick" : "full"} mode, ${((Date.now() - started) / 1000).toFixed(0)} s`);
out(`- a fresh broker process for every run; brokers alternate within each scenario, rotating who goes first`);
out();

const M = (res, kind, key) => median((res?.[kind] ?? []).map((r) => r[key]));
const TP = Object.keys(report).filter((k) => k.startsWith("fan-"));
if (TP.length) {
  const rowsFor = (key, digits = 0) =>
    TP.map((name) => ({ name, value: (k) => M(report[name], k, key), digits }));
  table("Throughput (deliveries/s received by the subscribers; higher is better)", "msg/s", rowsFor("rate"));
  out("Generator ceiling and CPU (fraction of one core during the measured window, medians):");
  out();
  out(`| case | ${[...brokers, ...(withRelay ? ["relay"] : [])].map((k) => `${k}: broker / generator CPU`).join(" | ")}${withRelay ? " | relay msg/s" : ""} |`);
  out(`|---|${[...brokers, ...(withRelay ? ["relay", "relay"] : [])].map(() => "---:").join("|")}|`);
  for (const name of TP) {
    const kinds = [...brokers, ...(withRelay ? ["relay"] : [])];
    const cells = kinds.map((k) => `${fmt(M(report[name], k, "brokerCpu"), 2)} / ${fmt(M(report[name], k, "genCpu"), 2)}`);
    if (withRelay) cells.push(fmt(M(report[name], "relay", "rate")));
    out(`| ${name} | ${cells.join(" | ")} |`);
  }
  out();
  out("Loss (sent × subscribers − received, summed over rounds; QoS 1 must be 0), and Midge's own drop counter:");
  out();
  out(`| case | ${brokers.map((k) => `${k} lost`).join(" | ")} | ${mine().map((k) => `${k} counted drops`).join(" | ")} |`);
  out(`|---|${[...brokers, ...mine()].map(() => "---:").join("|")}|`);
  for (const name of TP) {
    const cell = (k) => {
      const rs = report[name][k] ?? [];
      const lost = fmt(sum(rs.map((r) => r.lost)));
      const acked = rs.filter((r) => r.acked !== undefined);
      return acked.length ? `${lost} (PUBACKed ${fmt(sum(acked.map((r) => r.acked)))} of ${fmt(sum(acked.map((r) => r.sent)))})` : lost;
    };
    const counted = mine().map((m) => fmt(sum((report[name][m] ?? []).map((r) => r.brokerDropped))));
    out(`| ${name} | ${brokers.map(cell).join(" | ")} | ${counted.join(" | ")} |`);
  }
  out();
}

const LAT = Object.keys(report).filter((k) => k.startsWith("latency"));
if (LAT.length) {
  const rows = [];
  for (const name of LAT) {
    for (const [key, label] of [["p50", "p50"], ["p99", "p99"], ["p999", "p99.9"]]) {
      rows.push({ name: `${name}: ${label}`, value: (k) => M(report[name], k, key), digits: 3 });
    }
  }
  table("End-to-end latency (ms; lower is better)", "ms", rows);
  if (report[LAT[0]]["relay-c"]) {
    out("The floor: the same runs through `bench/relay.c` (a C loop that frames and forwards PUBLISH bytes, no broker work):");
    out();
    out(`| case | relay-c p50 (ms) | relay-c p99 (ms) | relay-c p99.9 (ms) | 0.5 × best peer's p99 (ms) |`);
    out("|---|---:|---:|---:|---:|");
    for (const name of LAT) {
      const best = Math.min(...peers().map((p) => M(report[name], p, "p99")));
      out(`| ${name} | ${fmt(M(report[name], "relay-c", "p50"), 3)} | ${fmt(M(report[name], "relay-c", "p99"), 3)} | ${fmt(M(report[name], "relay-c", "p999"), 3)} | ${fmt(best / 2, 3)} |`);
    }
    out();
  }
  out(`Samples per run: ${fmt(M(report[LAT[0]], brokers[0], "samples"))}; lost: ${LAT.map((n) => brokers.map((k) => `${k} ${fmt(sum(report[n][k].map((r) => r.lost)))}`).join(", ")).join(" / ")}`);
  out();
}

const IDLE = Object.keys(report).filter((k) => k.startsWith("idle"));
if (IDLE.length) {
  const rows = [];
  for (const name of IDLE) {
    rows.push({ name: `${name}: RSS per connection (bytes)`, value: (k) => M(report[name], k, "perConn") });
    rows.push({ name: `${name}: connect+subscribe rate (/s)`, value: (k) => M(report[name], k, "connectRate") });
    rows.push({ name: `${name}: accepted`, value: (k) => M(report[name], k, "accepted") });
  }
  table("Idle connections, one subscription each (RSS: lower is better; rate: higher)", "", rows);
  for (const name of IDLE) {
    if (report[name].relay) out(`- ${name}, the relay (bare Node sockets, no MQTT state): ${fmt(M(report[name], "relay", "perConn"))} bytes per connection`);
    for (const k of brokers) {
      const r = report[name][k]?.[0];
      if (r && r.refused > 0) out(`- ${name}, ${k}: ${r.refused} refused (first: ${r.firstError})`);
    }
  }
  out();
}

if (report["retained 10,000"]) {
  const res = report["retained 10,000"];
  table("Retained: 10,000 retained messages (64 B), then a new `retain/#` subscriber", "", [
    { name: "store rate (msg/s; higher is better)", value: (k) => M(res, k, "storeRate") },
    { name: "replay: time to the last message (ms; lower is better)", value: (k) => M(res, k, "replayMs"), digits: 1 },
    { name: "replay: messages received", value: (k) => M(res, k, "received") },
    { name: "replay: µs per message (lower is better)", value: (k) => M(res, k, "perMsgUs"), digits: 2 },
  ]);
}

if (report.voice) {
  const res = report.voice;
  table("Voice profile: 10 rooms × 15.6 frames/s × 2,092 B, 2 fast subscribers per room, 1 slow `hermes/#`", "", [
    { name: "frames published", value: (k) => M(res, k, "frames") },
    { name: "fast subscribers: frames lost (must be 0)", value: (k) => sum(res[k].map((r) => r.fastLost)) },
    { name: "fast subscribers: p50 latency (ms)", value: (k) => M(res, k, "p50"), digits: 3 },
    { name: "fast subscribers: p99 latency (ms; target < 5)", value: (k) => M(res, k, "p99"), digits: 3 },
    { name: "slow subscriber: frames dropped", value: (k) => M(res, k, "slowDropped") },
    { name: "Midge's own drop counter", value: (k) => (isMidge(k) ? M(res, k, "brokerDropped") : NaN) },
    { name: "broker RSS at the end (MiB)", value: (k) => M(res, k, "rssEnd") / 2 ** 20, digits: 1 },
  ]);
}

if (micro !== null) {
  out("### Micro-benchmarks (the core through its ABI, no sockets; one core)");
  out();
  out(micro);
  out();
}
