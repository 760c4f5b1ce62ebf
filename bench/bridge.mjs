// npm run bench:bridge [-- --messages 200000] [-- --rounds 3] [-- --publishers 4]
//                      [-- --brokers midge,midge-native,mosquitto] [-- --quick]
//
// Issue 15: throughput through a bridge, side by side. An upstream Mosquitto with one
// subscriber on `bench/#` (QoS 1, raw socket, PUBACKs at once); a local broker bridged to
// it with Mosquitto's own lines, which Midge reads unchanged:
//
//     connection up
//     address 127.0.0.1:<upstream port>
//     topic bench/# out 1
//
// The local broker is Midge's Node host, Midge's native host (both board `pi`) and
// Mosquitto 2 (the reference). `--publishers` clients on the local broker send
// `--messages` messages in all (64 B, `bench/p<i>`), as fast as the socket takes them:
// QoS 1 bounded only by their own PUBACKs (at most 60,000 unacknowledged each, inside
// the packet-id space), QoS 0 only by TCP. The upstream subscriber marks every (publisher,
// sequence) it gets: messages/s end to end (first publish to last arrival), lost
// (sent − distinct received) and duplicated. QoS 1: duplicates are allowed but counted,
// a loss is a failed run. QoS 0: losses are counted, not a failure.
//
// Every run starts a fresh upstream and a fresh local broker, waits until a QoS 0 probe
// crosses the bridge, then sends. The local broker runs on CPU 0; the upstream Mosquitto
// and this generator share the last CPU (`--upstream-cpu any`: the upstream may run on
// either), so the upstream (a single-threaded Mosquitto delivering QoS 1) can be the
// ceiling: its CPU is in the table.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import {
  GEN_CPU, ROOT, cores, cpuSeconds, ensureMosquitto, fmt, median, mosquittoVersion, pinSelf, snapshotMidge, snapshotNative, startBroker,
  stopAll, taskset,
} from "./brokers.mjs";
import { RawClient, publishTemplate, stampBatch } from "./mqtt.mjs";

const { values: opt } = parseArgs({
  options: {
    messages: { type: "string" },
    rounds: { type: "string" },
    publishers: { type: "string", default: "4" },
    brokers: { type: "string", default: "midge,midge-native,mosquitto" },
    qos: { type: "string", default: "1,0" },
    quick: { type: "boolean", default: false },
    midge: { type: "string", default: "dist/midge.mjs" },
    "upstream-cpu": { type: "string", default: "last" },
    "midge-args": { type: "string", default: "" }, // more options for both Midge hosts (e.g. --midge-args="--max-inflight 1000")
  },
});
const N0 = Number(opt.messages ?? (opt.quick ? 20000 : 200000));
const P = Math.max(1, Number(opt.publishers));
const PER_PUB = Math.ceil(N0 / P);
const N = PER_PUB * P;
const rounds = Number(opt.rounds ?? (opt.quick ? 1 : 3));
const qosList = opt.qos.split(",").map(Number);
const SIZE = 64;
const MAX_UNACKED = 60000; // per publisher: inside the 65,535 packet ids
const STALL_MS = 5000; // no new arrival for this long after the last publish: what is missing is lost
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();

ensureMosquitto();
pinSelf();
const midge = snapshotMidge(path.resolve(ROOT, opt.midge));
let kinds = opt.brokers.split(",");
const native = kinds.includes("midge-native") ? snapshotNative() : null;
if (kinds.includes("midge-native") && native === null) {
  process.stderr.write("bench:bridge: build/native/midge-pi is missing (npm run build:native); leaving midge-native out\n");
  kinds = kinds.filter((k) => k !== "midge-native");
}
const dir = mkdtempSync(path.join(os.tmpdir(), "midge-bench-bridge-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const onSignal = (code) => () => stopAll().then(() => process.exit(code));
process.on("SIGINT", onSignal(130));
process.on("SIGTERM", onSignal(143));

/** The bridge section, Mosquitto's syntax, the same text for every local broker. */
const bridgeLines = (upPort) => ["connection up", `address 127.0.0.1:${upPort}`, "topic bench/# out 1"];

/** startBroker options for local broker `kind` bridged to `upPort`. */
function localOptions(kind, upPort) {
  if (kind === "mosquitto") return { mosquittoLines: bridgeLines(upPort) };
  const conf = path.join(dir, `${kind}-${upPort}.conf`);
  writeFileSync(conf, ["allow_anonymous true", ...bridgeLines(upPort), ""].join("\n"));
  return { midgeArgs: ["-c", conf, "--stats-interval", "0", ...opt["midge-args"].split(" ").filter(Boolean)] };
}

/** The counters a Midge broker logs at exit (`stats: name=value ...`). */
function exitStats(output) {
  const line = output.split("\n").filter((l) => l.includes("stats: ")).at(-1) ?? "";
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
}

/** One run: fresh upstream, fresh local `kind`, N messages at `qos`. */
async function run(kind, qos) {
  // the upstream on the generator's CPU, or on any (taskset inside taskset: the last one wins)
  const upCpus = opt["upstream-cpu"] === "any" ? `0-${cores - 1}` : opt["upstream-cpu"] === "last" ? String(GEN_CPU) : opt["upstream-cpu"];
  const upstream = await startBroker("mosquitto", { launcher: taskset && cores >= 2 ? ["taskset", "-c", upCpus] : [] });
  let local = null;
  const clients = [];
  try {
    const seen = Array.from({ length: P }, () => new Uint8Array(PER_PUB));
    let distinct = 0;
    let duplicates = 0;
    let lastArrival = 0;
    let probes = 0;
    const sub = new RawClient(upstream.port, `bridge-sub-${process.pid}`, {
      onPublish(buf, at) {
        const p = buf.readUInt32BE(at);
        if (p >= P) { probes++; return; }
        const seq = buf.readUInt32BE(at + 4);
        if (seen[p][seq]) duplicates++;
        else { seen[p][seq] = 1; distinct++; lastArrival = performance.now(); }
      },
    });
    clients.push(sub);
    await sub.connect();
    await sub.subscribe("bench/#", 1);

    local = await startBroker(kind, localOptions(kind, upstream.port));
    // the bridge is up once a QoS 0 probe published here arrives upstream
    const probe = new RawClient(local.port, `bridge-probe-${process.pid}`);
    clients.push(probe);
    await probe.connect();
    const probeTpl = publishTemplate("bench/probe", 16, 0);
    const upBy = performance.now() + 20000;
    while (probes === 0) {
      if (performance.now() > upBy) throw new Error(`${kind}: the bridge did not come up within 20 s:\n${local.output().slice(-1500)}`);
      probe.write(stampBatch(probeTpl, 1, 0xffffffff, 0, 1, 0));
      await sleep(100);
    }
    probe.kill();

    const publishers = [];
    for (let p = 0; p < P; p++) {
      const c = new RawClient(local.port, `bridge-pub${p}-${process.pid}`);
      clients.push(c);
      await c.connect();
      publishers.push(c);
    }
    const templates = publishers.map((_, p) => publishTemplate(`bench/p${p}`, SIZE, qos));
    const sent = new Array(P).fill(0);
    const pids = new Array(P).fill(1);
    const maxBatch = Math.max(8, Math.floor(65536 / templates[0].bytes.length));
    let lastSend = 0;
    let queued = false;
    const pump = () => {
      queued = false;
      for (let p = 0; p < P; p++) {
        const c = publishers[p];
        if (c.closed || c.socket.writableLength > 1 << 18) continue;
        let allowed = PER_PUB - sent[p];
        if (qos > 0) allowed = Math.min(allowed, MAX_UNACKED - (sent[p] - c.pubacks));
        while (allowed > 0) {
          const n = Math.min(allowed, maxBatch);
          c.write(stampBatch(templates[p], n, p, sent[p], pids[p], 0));
          sent[p] += n;
          if (qos > 0) pids[p] = ((pids[p] - 1 + n) % 65535) + 1;
          allowed -= n;
          if (sent[p] === PER_PUB) lastSend = performance.now();
        }
      }
    };
    const schedule = () => { if (!queued) { queued = true; setImmediate(pump); } };
    let lastAck = 0; // QoS 1: when the last publisher had its last PUBACK
    for (const c of publishers) {
      c.socket.on("drain", schedule);
      if (qos > 0) {
        c.socket.on("data", () => {
          if (c.pubacks >= PER_PUB && lastAck < lastSend) lastAck = performance.now();
          schedule(); // a PUBACK makes room
        });
      }
    }
    const cpu0 = { local: cpuSeconds(local.pid), upstream: cpuSeconds(upstream.pid), gen: process.cpuUsage() };
    const t0 = performance.now();
    pump();
    const total = () => sent.reduce((a, b) => a + b, 0);
    const acked = () => publishers.reduce((a, c) => a + c.pubacks, 0);
    // until everything arrived (and, QoS 1, was acknowledged), or nothing moved for STALL_MS
    const deadline = t0 + Math.max(120000, N / 2); // never longer than 2 minutes a run (more for huge N)
    let mark = -1;
    let markAt = performance.now();
    while (performance.now() < deadline) {
      await sleep(20);
      if (distinct === N && (qos === 0 || acked() === N)) break;
      const progress = distinct + duplicates + acked() + total();
      if (progress !== mark) { mark = progress; markAt = performance.now(); }
      else if (performance.now() - markAt > STALL_MS) break;
    }
    const wall = (performance.now() - t0) / 1000;
    const gen = process.cpuUsage(cpu0.gen);
    const result = {
      rate: distinct / ((lastArrival - t0) / 1000),
      // what the local broker took: QoS 1 until its last PUBACK, QoS 0 until the last write
      publishRate: total() / (((qos > 0 ? lastAck : lastSend) - t0) / 1000),
      sent: total(),
      acked: qos > 0 ? acked() : undefined,
      received: distinct,
      lost: N - distinct,
      duplicates,
      localCpu: (cpuSeconds(local.pid) - cpu0.local) / wall,
      upstreamCpu: (cpuSeconds(upstream.pid) - cpu0.upstream) / wall,
      genCpu: (gen.user + gen.system) / 1e6 / wall,
      seconds: (lastArrival - t0) / 1000,
    };
    for (const c of clients) c.kill();
    await sleep(100);
    const alive = local.proc.exitCode === null && local.proc.signalCode === null;
    await local.stop();
    result.localAlive = alive;
    const out = local.output();
    result.linkLost = (out.match(/connection to .* lost|Socket error on client|Connection .* lost/gi) ?? []).length;
    if (kind !== "mosquitto") {
      const s = exitStats(out);
      result.dropped = ["droppedQos0Slow", "droppedQueueFull", "droppedStoreFull", "droppedExpired", "droppedTooLarge"].reduce((a, k) => a + (s[k] ?? 0), 0);
      result.droppedBy = Object.entries(s).filter(([k, v]) => k.startsWith("dropped") && v > 0).map(([k, v]) => `${k}=${v}`).join(" ");
      // what the broker said about it (the first few lines that mention drops or the bridge)
      result.log = out.split("\n").filter((l) => /dropp|lagg|slow|stall|bridge up:/i.test(l) && !l.includes("stats: ")).slice(0, 6).join(" | ");
    }
    if (!alive) result.localOutput = out.slice(-1500);
    return result;
  } finally {
    for (const c of clients) c.kill();
    if (local) await local.stop();
    await upstream.stop();
  }
}

const results = {};
for (const qos of qosList) {
  process.stderr.write(`bridge, QoS ${qos}: ${fmt(N)} messages of ${SIZE} B from ${P} publishers on the local broker to one upstream subscriber\n`);
  results[qos] = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(i + r) % kinds.length];
      let res;
      try {
        res = await run(kind, qos);
      } catch (e) {
        res = { error: e.message, rate: NaN, lost: N, duplicates: 0, received: 0, sent: 0 };
      }
      results[qos][kind].push(res);
      const { localOutput, ...brief } = res;
      process.stderr.write(`  ${kind.padEnd(12)} round ${r + 1}: ${JSON.stringify(brief, (k, v) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(2)) : v))}\n`);
      if (localOutput) process.stderr.write(`    the local broker exited; its last output:\n${localOutput}\n`);
    }
  }
}
await stopAll();

// the tables
const mine = kinds.filter((k) => k !== "mosquitto");
const peer = kinds.includes("mosquitto") ? "mosquitto" : null;
const M = (qos, k, key) => median((results[qos][k] ?? []).map((x) => x[key]).filter(Number.isFinite));
const sumOf = (qos, k, key) => (results[qos][k] ?? []).reduce((a, x) => a + (x[key] ?? 0), 0);
const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
const out = [];
out.push(`### Bridge throughput (issue 15): ${new Date().toISOString()}`, "");
out.push(`- command: \`npm run bench:bridge${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\``);
out.push(`- Midge under test: \`${path.relative(ROOT, midge.source)}\` (${fmt(midge.bytes)} bytes, sha256 ${midge.sha256.slice(0, 16)}, built ${midge.mtime.toISOString()})${native ? `; \`${path.relative(ROOT, native.source)}\` (${fmt(native.bytes)} bytes, sha256 ${native.sha256.slice(0, 16)}, built ${native.mtime.toISOString()})` : ""}; mosquitto ${mosquittoVersion()} (upstream, and the reference local broker)`);
out.push(`- machine: ${cores} × ${cpuModel}, ${Math.round(os.totalmem() / 2 ** 20)} MiB, Linux ${os.release()}, node ${process.version}`);
out.push(`- ${fmt(N)} messages of ${SIZE} B a run from ${P} publishers (\`bench/p<i>\`) on the local broker, bridged with \`connection up\` / \`address 127.0.0.1:<port>\` / \`topic bench/# out 1\`, to one QoS 1 subscriber on \`bench/#\` upstream; QoS 1 publishers bounded only by their PUBACKs; local broker on CPU 0, generator on CPU ${GEN_CPU}, upstream Mosquitto on ${opt["upstream-cpu"] === "last" ? `CPU ${GEN_CPU}` : opt["upstream-cpu"] === "any" ? "any CPU" : `CPU ${opt["upstream-cpu"]}`}`);
out.push(`- ${rounds} rounds (medians), fresh brokers for every run, local brokers alternating; ${((Date.now() - started) / 1000).toFixed(0)} s`, "");
const head = ["case", ...kinds, ...(peer ? mine.map((k) => `${k} ÷ ${peer}`) : [])];
out.push(`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`);
const row = (name, qos, key, d = 0, ratios = true) => {
  const v = (k) => M(qos, k, key);
  const r = peer ? mine.map((k) => (ratios ? `${fmt(v(k) / v(peer), 2)}×` : "–")) : [];
  out.push(`| ${name} | ${[...kinds.map((k) => fmt(v(k), d)), ...r].join(" | ")} |`);
};
for (const qos of qosList) {
  row(`QoS ${qos}: end to end, first publish to last arrival upstream (msg/s)`, qos, "rate");
  row(`QoS ${qos}: publishers' rate (${qos > 0 ? "to the last PUBACK" : "to the last write"}, msg/s)`, qos, "publishRate");
  row(`QoS ${qos}: local broker CPU (fraction of a core)`, qos, "localCpu", 2, false);
  row(`QoS ${qos}: upstream Mosquitto CPU`, qos, "upstreamCpu", 2, false);
  const cell = (k) => {
    const acked = qos > 0 ? ` (PUBACKed ${fmt(sumOf(qos, k, "acked"))} of ${fmt(sumOf(qos, k, "sent"))})` : "";
    return `${fmt(sumOf(qos, k, "lost"))}${acked}`;
  };
  out.push(`| QoS ${qos}: lost, all rounds${qos > 0 ? " (must be 0)" : ""} | ${[...kinds.map(cell), ...(peer ? mine.map(() => "–") : [])].join(" | ")} |`);
  out.push(`| QoS ${qos}: duplicates upstream, all rounds | ${[...kinds.map((k) => fmt(sumOf(qos, k, "duplicates"))), ...(peer ? mine.map(() => "–") : [])].join(" | ")} |`);
  const counted = (k) => {
    if (k === "mosquitto") return "–";
    const by = [...new Set(results[qos][k].flatMap((x) => (x.droppedBy ? x.droppedBy.split(" ").map((c) => c.split("=")[0]) : [])))];
    return `${fmt(sumOf(qos, k, "dropped"))}${by.length ? ` (${by.join(", ")})` : ""}`;
  };
  out.push(`| QoS ${qos}: Midge's own drop counter, all rounds | ${[...kinds.map(counted), ...(peer ? mine.map(() => "–") : [])].join(" | ")} |`);
}
out.push("");
for (const qos of qosList) {
  for (const k of kinds) {
    for (const [r, x] of results[qos][k].entries()) {
      const failed = x.error || x.localAlive === false || (qos > 0 && x.lost > 0);
      if (failed) out.push(`- **QoS ${qos}, ${k}, round ${r + 1}: FAILED RUN**: ${x.error ?? ""}${x.lost > 0 ? `lost ${fmt(x.lost)} of ${fmt(N)}${qos > 0 ? ` (PUBACKed ${fmt(x.acked)})` : ""}` : ""}${x.localAlive === false ? "; the local broker exited" : ""}`);
      if (x.linkLost > 0) out.push(`- QoS ${qos}, ${k}, round ${r + 1}: the local broker logged ${x.linkLost} lost connection(s) during the run`);
    }
  }
}
out.push("");
process.stdout.write(out.join("\n") + "\n");
