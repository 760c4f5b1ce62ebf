// npm run bench:acl [-- --rounds 3]
//
// Issue 12's benchmarks, side by side with Mosquitto in the same run:
// 1. Fan-out 1→100, QoS 0, 64 B, with and without a 1,000-line ACL file. The subscribers
//    take `bench/+` and the file denies `bench/secret` to them, so their filter reaches only
//    some topics and every delivery is checked (Midge skips the check for a filter the
//    rules grant whole; this case does not let it).
// 2. Connect rate with a password file of $7$ (PBKDF2-SHA512) entries made by
//    mosquitto_passwd: each CONNECT is checked.
// Midge (Node host and native host) and Mosquitto get the same ACL and password files.
// A fresh broker process for every run; brokers alternate, rotating who goes first;
// medians. Loss is counted as in run.mjs: a fast run that lost a message is a failed run.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { alternateVariants, median, fmt, stopAll, ensureMosquitto, mosquittoVersion, pinSelf, snapshotMidge, snapshotNative, ROOT } from "./brokers.mjs";
import { throughput } from "./scenarios.mjs";
import { RawClient } from "./mqtt.mjs";

const { values: opt } = parseArgs({ options: { rounds: { type: "string" }, quick: { type: "boolean" } } });
const rounds = Number(opt.rounds ?? (opt.quick ? 1 : 5));
const measureMs = opt.quick ? 1500 : 4000;

ensureMosquitto();
pinSelf();
snapshotMidge();
const native = snapshotNative();

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-bench-acl-"));
chmodSync(dir, 0o755);
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// The ACL: the benchmark's clients have no user name (the first section); 249 users
// with four lines each make up the rest of the 1,000 lines, and two patterns.
const lines = ["# the benchmark's clients", "topic readwrite bench/#", "topic deny bench/secret", "pattern read clients/%c/#", "pattern write clients/%c/status"];
for (let u = 0; lines.length < 1000; u++) lines.push(`user u${u}`, `topic readwrite home/u${u}/#`, `topic read sensors/+/u${u}`, `topic deny home/u${u}/locks`);
const acl = path.join(dir, "acl");
writeFileSync(acl, lines.slice(0, 1000).join("\n") + "\n");
chmodSync(acl, 0o644);

// 50 users, $7$ (mosquitto_passwd's default)
const USERS = 50;
const passwords = path.join(dir, "passwd");
for (let u = 0; u < USERS; u++) {
  const r = spawnSync("mosquitto_passwd", [...(u === 0 ? ["-c"] : []), "-b", passwords, `u${u}`, `pw${u}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`);
}
chmodSync(passwords, 0o644);

const midgeConf = (withAcl, withPasswords) => {
  const p = path.join(dir, `midge-${withAcl ? "acl" : "no"}-${withPasswords ? "pw" : "no"}.conf`);
  writeFileSync(p, `allow_anonymous true\n${withAcl ? `acl_file ${acl}\n` : ""}${withPasswords ? `password_file ${passwords}\n` : ""}`);
  return p;
};
const variants = (withAcl, withPasswords) => {
  const conf = midgeConf(withAcl, withPasswords);
  const mosq = [...(withAcl ? [`acl_file ${acl}`] : []), ...(withPasswords ? [`password_file ${passwords}`] : [])];
  return [
    ["midge", "midge", { midgeArgs: ["-c", conf, "--stats-interval", "0"] }],
    ...(native ? [["midge-native", "midge-native", { midgeArgs: ["-c", conf, "--stats-interval", "0"] }]] : []),
    ["mosquitto", "mosquitto", { mosquittoLines: mosq }],
  ];
};


/** `n` clients connect with a user name and password, `parallel` at a time; connects/s. */
async function connectRate(broker, { n = 400, parallel = 8, login = true }) {
  let next = 0, failed = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const u = i % USERS;
      const c = new RawClient(broker.port, `conn${i}`, login ? { username: `u${u}`, password: `pw${u}` } : {});
      try { await c.connect(); } catch { failed++; }
      c.kill();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const s = (performance.now() - t0) / 1000;
  return { rate: Math.round((n - failed) / s), failed };
}

const fanout = { pubs: 1, subs: 100, size: 64, qos: 0, window: 200, filter: "bench/+", topic: () => "bench/fan", warmupMs: 1000, measureMs };

// The fan-out variants with and without the ACL alternate within each round, so that a
// noisy stretch of the machine falls on both alike.
const report = {};
process.stderr.write("fan-out 1→100 `bench/+`, QoS 0, 64 B, with and without a 1,000-line ACL\n");
const both = [...variants(false, false), ...variants(true, false).map(([l, k, o]) => [`${l}+acl`, k, o])];
const fan = await alternateVariants(both, rounds, (b) => throughput(b, fanout));
report.fanPlain = Object.fromEntries(Object.entries(fan).filter(([k]) => !k.endsWith("+acl")));
report.fanAcl = Object.fromEntries(Object.entries(fan).filter(([k]) => k.endsWith("+acl")).map(([k, v]) => [k.slice(0, -4), v]));
process.stderr.write("connect rate, $7$ password file, and without one\n");
const logins = [...variants(false, true), ...variants(false, false).map(([l, k, o]) => [`${l}+open`, k, o])];
const conn = await alternateVariants(logins, rounds, (b, label) => connectRate(b, { login: !label.endsWith("+open") }));
report.connect = Object.fromEntries(Object.entries(conn).filter(([k]) => !k.endsWith("+open")));
report.connectOpen = Object.fromEntries(Object.entries(conn).filter(([k]) => k.endsWith("+open")).map(([k, v]) => [k.slice(0, -5), v]));
await stopAll();

const kinds = ["midge", ...(native ? ["midge-native"] : []), "mosquitto"];
const M = (res, k, key) => median((res[k] ?? []).map((r) => r[key]));
const lost = (res, k) => (res[k] ?? []).reduce((a, r) => a + r.lost, 0);
const out = [];
out.push(`### ACL and password benchmarks: ${new Date().toISOString()}`, "");
out.push(`- command: \`npm run bench:acl${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\`; ${rounds} rounds, medians; mosquitto ${mosquittoVersion()}`);
out.push(`- ACL: 1,000 lines (the clients' own section of 2 rules, 249 user sections of 3, 2 patterns); subscribers take \`bench/+\`, which the section's \`topic deny bench/secret\` makes a filter checked at every delivery`, "");
out.push(`| case | ${kinds.join(" | ")} | ${kinds.filter((k) => k !== "mosquitto").map((k) => `${k} / mosquitto`).join(" | ")} |`);
out.push(`|---|${kinds.map(() => "---:").join("|")}|${kinds.filter((k) => k !== "mosquitto").map(() => "---:").join("|")}|`);
const row = (name, res, key) => {
  const cells = kinds.map((k) => fmt(M(res, k, key)));
  const ratios = kinds.filter((k) => k !== "mosquitto").map((k) => fmt(M(res, k, key) / M(res, "mosquitto", key), 2) + "×");
  out.push(`| ${name} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
};
row("fan-out 1→100 msg/s, no ACL", report.fanPlain, "rate");
row("fan-out 1→100 msg/s, 1,000-line ACL", report.fanAcl, "rate");
row("connects/s, $7$ passwords (8 at a time)", report.connect, "rate");
row("connects/s, no password file (8 at a time)", report.connectOpen, "rate");
out.push("");
out.push(`With the ACL, as a fraction of the same broker without it: ${kinds.map((k) => `${k} ${fmt(M(report.fanAcl, k, "rate") / M(report.fanPlain, k, "rate"), 2)}`).join(", ")}.`);
out.push(`Lost (QoS 0 sent × subscribers − received, all rounds): no ACL ${kinds.map((k) => `${k} ${fmt(lost(report.fanPlain, k))}`).join(", ")}; ACL ${kinds.map((k) => `${k} ${fmt(lost(report.fanAcl, k))}`).join(", ")}. Failed connects: ${kinds.map((k) => `${k} ${fmt((report.connect[k] ?? []).reduce((a, r) => a + r.failed, 0))}`).join(", ")}.`);
out.push("");
process.stdout.write(out.join("\n") + "\n");
void ROOT;
