// npm run bench:tls [-- --rounds 3] [-- --quick]
//
// Issue 13's TLS benchmarks, side by side with Mosquitto's TLS listener in the same run:
// the TLS handshake + CONNECT rate, fan-out 1→100 (QoS 0, 64 B) and fan-in 4→1 (QoS 1,
// 64 B, closed loop) over TLS. Midge (Node host: node:tls; native host: OpenSSL) and
// Mosquitto get the same certificate and key (made here with `openssl`, a CA and a server
// certificate for localhost). A fresh broker for every run, brokers alternating, medians;
// loss counted as in run.mjs. (WebSocket is not compared: the Debian mosquitto 2.0.11
// here cannot open a WebSocket listener, see test/host/34-websocket.)

import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { alternateVariants, median, fmt, stopAll, ensureMosquitto, mosquittoVersion, pinSelf, snapshotMidge, snapshotNative } from "./brokers.mjs";
import { throughput } from "./scenarios.mjs";
import { RawClient } from "./mqtt.mjs";

const { values: opt } = parseArgs({ options: { rounds: { type: "string" }, quick: { type: "boolean" } } });
const rounds = Number(opt.rounds ?? (opt.quick ? 1 : 3));
const measureMs = opt.quick ? 1500 : 3000;

ensureMosquitto();
pinSelf();
snapshotMidge();
const native = snapshotNative();

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-bench-tls-"));
chmodSync(dir, 0o755);
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const sh = (cmd) => {
  const r = spawnSync("sh", ["-c", cmd], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
};
sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.crt");
sh("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr");
writeFileSync(path.join(dir, "san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
sh("openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt");
for (const f of ["ca.crt", "server.crt", "server.key"]) chmodSync(path.join(dir, f), 0o644);
const ca = readFileSync(path.join(dir, "ca.crt"));
const tlsLines = [`certfile ${dir}/server.crt`, `keyfile ${dir}/server.key`];
const conf = path.join(dir, "midge.conf");
writeFileSync(conf, `listener 0 127.0.0.1\nallow_anonymous true\n${tlsLines.join("\n")}\n`);

const kinds = [
  ["midge", "midge", { midgeArgs: ["-c", conf, "--stats-interval", "0"] }],
  ...(native ? [["midge-native", "midge-native", { midgeArgs: ["-c", conf, "--stats-interval", "0"] }]] : []),
  ["mosquitto", "mosquitto", { mosquittoLines: tlsLines }],
];
/** `fn` over TLS: every client gets the CA. */
const alternate = (fn) => alternateVariants(kinds, rounds, (b) => { b.tls = { ca }; return fn(b); });

/** `n` clients each do a TLS handshake and CONNECT, `parallel` at a time: per second. */
async function handshakes(broker, { n = 300, parallel = 8 } = {}) {
  let next = 0, failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      const c = new RawClient(broker.port, `tls${next++}`, { tls: broker.tls });
      try { await c.connect(); } catch { failed++; }
      c.kill();
    }
  }));
  return { rate: Math.round((n - failed) / ((performance.now() - t0) / 1000)), failed };
}

const report = {};
process.stderr.write("TLS handshake + CONNECT rate\n");
report.handshakes = await alternate((b) => handshakes(b));
process.stderr.write("fan-out 1→100 over TLS, QoS 0, 64 B\n");
report.fanout = await alternate((b) => throughput(b, { pubs: 1, subs: 100, size: 64, qos: 0, window: 200, filter: "bench/fan", topic: () => "bench/fan", warmupMs: 1000, measureMs }));
process.stderr.write("fan-in 4→1 over TLS, QoS 1, 64 B, closed loop\n");
report.fanin = await alternate((b) => throughput(b, { pubs: 4, subs: 1, size: 64, qos: 1, window: 800, filter: "bench/+", topic: (p) => `bench/p${p}`, warmupMs: 1000, measureMs }));
await stopAll();

const names = kinds.map(([k]) => k);
const M = (res, k) => median((res[k] ?? []).map((r) => r.rate));
const lost = (res, k) => (res[k] ?? []).reduce((a, r) => a + (r.lost ?? 0), 0);
const out = [`### TLS listeners: ${new Date().toISOString()}`, ""];
out.push(`- command: \`npm run bench:tls${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\`; ${rounds} rounds, medians; mosquitto ${mosquittoVersion()}; RSA 2048 certificates made with openssl`, "");
const mine = names.filter((k) => k !== "mosquitto");
out.push(`| case | ${names.join(" | ")} | ${mine.map((k) => `${k} ÷ mosquitto`).join(" | ")} |`);
out.push(`|---|${names.map(() => "---:").join("|")}|${mine.map(() => "---:").join("|")}|`);
for (const [label, res] of [["TLS handshakes + CONNECT per second (8 at a time)", report.handshakes], ["fan-out 1→100 over TLS, QoS 0, 64 B (msg/s)", report.fanout], ["fan-in 4→1 over TLS, QoS 1, 64 B, closed loop (msg/s)", report.fanin]]) {
  out.push(`| ${label} | ${names.map((k) => fmt(M(res, k))).join(" | ")} | ${mine.map((k) => `${fmt(M(res, k) / M(res, "mosquitto"), 2)}×`).join(" | ")} |`);
}
out.push("", `Lost (all rounds): fan-out ${names.map((k) => `${k} ${fmt(lost(report.fanout, k))}`).join(", ")}; fan-in ${names.map((k) => `${k} ${fmt(lost(report.fanin, k))}`).join(", ")}. Failed handshakes: ${names.map((k) => `${k} ${fmt((report.handshakes[k] ?? []).reduce((a, r) => a + r.failed, 0))}`).join(", ")}.`, "");
process.stdout.write(out.join("\n") + "\n");
