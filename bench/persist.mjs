// npm run bench:persist [-- --rounds 3] [-- --quick]
//
// Issue 14's benchmarks, side by side with Mosquitto (`persistence true`) in the same run:
// 1. QoS 1 fan-in 4→1, 64 B, publishers sending as fast as their PUBACKs return (no
//    in-flight limit), to one subscriber with a persistent session (clean session 0: its
//    messages are the ones a broker must keep). Midge with `persistence_sync interval`
//    (written at once, synced every autosave_interval) and `always` (each PUBACK only
//    after its record is synced); Mosquitto with its default (the whole database saved
//    every autosave_interval, 1800 s, and at exit). Loss is counted: a run that lost an
//    acknowledged message is a failed run.
// 2. Restart with 100,000 retained messages (64 B): the time from starting the process
//    to serving a client, and to having replayed every retained message to a new
//    subscriber (each one checked, so a restart that lost some says so).
// 3. What Midge writes: bytes per QoS 1 message and per retained update, and the
//    snapshots (compactions) that took, from the broker's own counters at exit.
// A fresh broker (and an empty persistence directory) for every run of 1 and 3; brokers
// alternate, rotating who goes first; medians.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { median, fmt, stopAll, ensureMosquitto, mosquittoVersion, pinSelf, snapshotMidge, snapshotNative, startBroker } from "./brokers.mjs";
import { throughput } from "./scenarios.mjs";
import { RawClient, publishTemplate } from "./mqtt.mjs";

const { values: opt } = parseArgs({ options: { rounds: { type: "string" }, quick: { type: "boolean" }, retained: { type: "string" }, "no-native": { type: "boolean" } } });
const rounds = Number(opt.rounds ?? (opt.quick ? 1 : 5));
const measureMs = opt.quick ? 1500 : 4000;
const RETAINED = Number(opt.retained ?? (opt.quick ? 20000 : 100000));

ensureMosquitto();
pinSelf();
snapshotMidge();
const native = opt["no-native"] ? null : snapshotNative();

const root = mkdtempSync(path.join(os.tmpdir(), "midge-bench-persist-"));
chmodSync(root, 0o755);
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const d = path.join(root, `d${++dirs}`);
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o777); // Mosquitto started as root runs as the user mosquitto
  return d;
};

/** [label, kind, options] for a fresh persistence directory `dir`. */
function variant(label, dir) {
  const [kind, sync] = label.split(" ");
  if (kind === "mosquitto") return [label, "mosquitto", { mosquittoLines: ["persistence true", `persistence_location ${dir}/`] }];
  const conf = path.join(dir, "midge.conf");
  writeFileSync(conf, `allow_anonymous true\npersistence true\npersistence_location ${dir}/\npersistence_sync ${sync}\n`);
  return [label, kind, { midgeArgs: ["-c", conf, "--stats-interval", "0"] }];
}
const kinds = ["midge", ...(native ? ["midge-native"] : [])];
const labels = [...kinds.flatMap((k) => [`${k} interval`, `${k} always`]), "mosquitto"];

/** The counters a Midge broker logs at exit (`stats: name=value ...`). */
function exitStats(output) {
  const line = output.split("\n").filter((l) => l.includes("stats: ")).at(-1) ?? "";
  return Object.fromEntries([...line.matchAll(/(\w+)=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
}

async function alternate(fn) {
  const results = Object.fromEntries(labels.map((l) => [l, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < labels.length; i++) {
      const dir = freshDir();
      const [label, kind, options] = variant(labels[(i + r) % labels.length], dir);
      const broker = await startBroker(kind, options);
      let result;
      try {
        result = await fn(broker, label);
      } finally {
        await broker.stop();
      }
      if (kind !== "mosquitto") Object.assign(result, { stats: exitStats(broker.output()) });
      results[label].push(result);
      process.stderr.write(`  ${label.padEnd(22)} round ${r + 1}: ${JSON.stringify({ ...result, stats: undefined })}\n`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}

// 1. QoS 1 fan-in to a persistent session, no in-flight limit
process.stderr.write("QoS 1 fan-in 4→1, 64 B, persistent subscriber, no in-flight limit\n");
const fanIn = { pubs: 4, subs: 1, size: 64, qos: 1, window: "acks", filter: "bench/+", topic: (p) => `bench/${p}`,
  warmupMs: 1000, measureMs, persistentSubs: true };
const fan = await alternate((b) => throughput(b, fanIn));

// 3. bytes written per retained update: 20,000 updates of 1,000 topics (64 B each)
process.stderr.write("retained updates: 20,000 over 1,000 topics, 64 B\n");
const UPDATES = 20000;
const updates = await alternate(async (broker) => {
  const pub = new RawClient(broker.port, `rupd-${process.pid}`);
  await pub.connect();
  const parts = [];
  for (let i = 0; i < UPDATES; i++) parts.push(publishTemplate(`home/device${i % 1000}/state`, 64, 0, true).bytes);
  const all = Buffer.concat(parts);
  const t0 = performance.now();
  for (let at = 0; at < all.length; at += 1 << 16) pub.write(all.subarray(at, Math.min(all.length, at + (1 << 16))));
  await pub.ping();
  const ms = performance.now() - t0;
  pub.kill();
  return { rate: Math.round(UPDATES / (ms / 1000)) };
});

// 2. restart with RETAINED retained messages
process.stderr.write(`restart with ${RETAINED.toLocaleString("en-US")} retained messages, 64 B\n`);
const restart = Object.fromEntries(labels.map((l) => [l, []]));
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < labels.length; i++) {
    const dir = freshDir();
    const [label, kind, options] = variant(labels[(i + r) % labels.length], dir);
    let broker = await startBroker(kind, options);
    const pub = new RawClient(broker.port, `rfill-${process.pid}`);
    await pub.connect();
    const parts = [];
    for (let k = 0; k < RETAINED; k++) parts.push(publishTemplate(`retain/${k}/state`, 64, 0, true).bytes);
    const all = Buffer.concat(parts);
    for (let at = 0; at < all.length; at += 1 << 16) pub.write(all.subarray(at, Math.min(all.length, at + (1 << 16))));
    await pub.ping();
    pub.kill();
    await broker.stop(); // SIGTERM: Mosquitto saves its database now
    const files = ["midge.db", "mosquitto.db"].map((f) => path.join(dir, f)).filter((f) => existsSync(f));
    const fileBytes = files.length ? statSync(files[0]).size : 0;
    const t0 = performance.now();
    broker = await startBroker(kind, options);
    const up = performance.now() - t0;
    let got = 0;
    const sub = new RawClient(broker.port, `rsub-${process.pid}`, { onPublish() { got++; } });
    await sub.connect();
    await sub.subscribe("retain/#", 0);
    const deadline = performance.now() + 60000;
    let last = -1, lastAt = performance.now();
    while (got < RETAINED && performance.now() < deadline && performance.now() - lastAt < 3000) {
      await new Promise((res) => setTimeout(res, 20));
      if (got !== last) { last = got; lastAt = performance.now(); }
    }
    const all_ = performance.now() - t0;
    sub.kill();
    await broker.stop();
    restart[label].push({ upMs: Math.round(up), replayedMs: Math.round(all_), received: got, lost: RETAINED - got, fileBytes });
    process.stderr.write(`  ${label.padEnd(22)} round ${r + 1}: ${JSON.stringify(restart[label].at(-1))}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}
await stopAll();

const M = (res, k, key) => median((res[k] ?? []).map((r) => r[key]));
const S = (res, k, key) => median((res[k] ?? []).map((r) => r.stats?.[key] ?? NaN));
const out = [];
out.push(`### Persistence benchmarks: ${new Date().toISOString()}`, "");
out.push(`- command: \`npm run bench:persist${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\`; ${rounds} rounds, medians; mosquitto ${mosquittoVersion()} with \`persistence true\` (its default autosave: every 1800 s and at exit); Midge \`persistence_sync interval\` (default autosave_interval 1800 s) and \`always\``, "");
out.push(`| case | ${labels.join(" | ")} |`);
out.push(`|---|${labels.map(() => "---:").join("|")}|`);
const row = (name, res, key, d = 0) => out.push(`| ${name} | ${labels.map((l) => fmt(M(res, l, key), d)).join(" | ")} |`);
row("QoS 1 fan-in 4→1 to a persistent session, msg/s", fan, "rate");
out.push(`| — lost (acknowledged, not delivered), all rounds | ${labels.map((l) => fmt((fan[l] ?? []).reduce((a, x) => a + x.lost, 0))).join(" | ")} |`);
out.push(`| — ratio to mosquitto | ${labels.map((l) => fmt(M(fan, l, "rate") / M(fan, "mosquitto", "rate"), 2) + "×").join(" | ")} |`);
row("retained updates/s (20,000 over 1,000 topics)", updates, "rate");
row(`restart with ${RETAINED.toLocaleString("en-US")} retained: ms to serving`, restart, "upMs");
row(`restart: ms until all retained replayed to a new subscriber`, restart, "replayedMs");
out.push(`| — retained lost across the restart, all rounds | ${labels.map((l) => fmt((restart[l] ?? []).reduce((a, x) => a + x.lost, 0))).join(" | ")} |`);
row("— file size after the restart's fill, bytes", restart, "fileBytes");
out.push("");
out.push("What Midge wrote (its counters at exit, medians):", "");
out.push(`| case | ${labels.filter((l) => !l.startsWith("mosquitto")).join(" | ")} |`);
out.push(`|---|${labels.filter((l) => !l.startsWith("mosquitto")).map(() => "---:").join("|")}|`);
const midgeLabels = labels.filter((l) => !l.startsWith("mosquitto"));
out.push(`| bytes written per QoS 1 message (fan-in) | ${midgeLabels.map((l) => fmt(median((fan[l] ?? []).map((x) => (x.stats?.persistenceBytes ?? NaN) / x.sent)), 1)).join(" | ")} |`);
out.push(`| snapshots during the fan-in run | ${midgeLabels.map((l) => fmt(S(fan, l, "persistenceSnapshots"))).join(" | ")} |`);
out.push(`| bytes written per retained update | ${midgeLabels.map((l) => fmt(median((updates[l] ?? []).map((x) => (x.stats?.persistenceBytes ?? NaN) / UPDATES)), 1)).join(" | ")} |`);
out.push(`| snapshots during the retained updates | ${midgeLabels.map((l) => fmt(S(updates, l, "persistenceSnapshots"))).join(" | ")} |`);
out.push("");
process.stdout.write(out.join("\n") + "\n");
