// npm run bench:idle [-- --connections 50000] [-- --rounds 3] [-- --workers 4]
//                    [-- --brokers midge,midge-native,mosquitto] [-- --quick]
//
// Issue 15: many idle MQTT connections on one machine, side by side. Each connection is
// CONNECT (MQTT 3.1.1, clean session, keep-alive 600 s), CONNACK, then nothing at all.
// Brokers: Midge's Node host with `--board server` (65,536 sessions), the native host
// build/native/midge-server, and Mosquitto 2 (`max_connections -1`). Measured per broker:
// the connect rate over the whole ramp, the broker's RSS (VmRSS) before and after, RSS
// per connection, whether every connection got CONNACK 0 and was still open at the end,
// and the RSS left once the clients have gone.
//
// The clients are `--workers` child processes of this script (`node bench/idle.mjs
// worker`), each with a share of the connections on raw `net` sockets and a CONNECT
// written by hand, at most `--parallel` handshakes in flight each. 127.0.0.1 has about
// 28,000 ephemeral ports per (source address, destination), so every worker connects
// from its own source addresses, 127.0.0.2, 127.0.0.3, ... (Linux routes all of 127/8 to
// lo), at most 20,000 connections from each. Brokers and workers start under
// `prlimit --nofile=200000:200000` (the hard limit here is 20,000), the broker pinned to
// CPU 0 and the workers to the last CPU, as in bench/run.mjs. Raising a hard limit needs
// CAP_SYS_RESOURCE, which root in a container may lack: then prlimit can only set the
// soft limit to the hard one, the count is capped at that less 100 descriptors for the
// broker's own, and the output says so in bold.
// `--connections 5000` is the quick mode (also `--quick`: 5,000 and 1 round).

import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KEEP_ALIVE = 600; // seconds: far longer than any run, so the clients never need to send PINGREQ
const PER_ADDRESS = 20000; // connections per source address, under the ~28,000 ephemeral ports
const NOFILE = 200000;

if (process.argv[2] === "worker") await worker();
else await main();

// ---------------------------------------------------------------------------------
// the client worker: opens its share of connections when told, holds them, closes them

/** CONNECT, MQTT 3.1.1, clean session, keep-alive KEEP_ALIVE, client id `id`. */
function connectPacket(id) {
  const cid = Buffer.from(id, "latin1");
  const len = 10 + 2 + cid.length;
  return Buffer.concat([
    Buffer.from([0x10, len, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, KEEP_ALIVE >> 8, KEEP_ALIVE & 0xff, 0, cid.length]),
    cid,
  ]);
}

async function worker() {
  const sockets = [];
  let open = 0; // sockets that got CONNACK 0 and have not closed since
  let closedAfterConnack = 0;
  const refused = {}; // CONNACK return code -> count
  const errors = {}; // socket error code -> count
  let firstError = null;
  const note = (table, key, text) => {
    table[key] = (table[key] ?? 0) + 1;
    firstError ??= text;
  };

  /** Open `n` connections (ids `prefix` + index) from `addresses`, `parallel` at a time. */
  async function ramp({ port, n, first, prefix, addresses, parallel, timeoutMs }) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let next = 0;
    let ok = 0;
    const one = (i) =>
      new Promise((resolve) => {
        const id = `${prefix}${first + i}`;
        const socket = net.connect({ host: "127.0.0.1", port, localAddress: addresses[Math.floor(i / PER_ADDRESS)] });
        let settled = false; // CONNACK, refusal, error or timeout: whichever came first
        const settle = (table, key, text) => {
          if (settled) return false;
          settled = true;
          clearTimeout(timer);
          if (table !== null) note(table, key, `${id}: ${text}`);
          resolve();
          return true;
        };
        const timer = setTimeout(() => {
          settle(errors, "no CONNACK in time", `no CONNACK within ${timeoutMs} ms`);
          socket.destroy();
        }, timeoutMs);
        socket.once("connect", () => socket.write(connectPacket(id)));
        socket.on("data", (d) => {
          if (settled) return; // nothing else should come; ignore it
          if (d[0] === 0x20 && d.length >= 4 && d[3] === 0) {
            settle(null);
            ok++;
            open++;
            sockets.push(socket);
            socket.once("close", () => { open--; closedAfterConnack++; });
          } else {
            settle(refused, `CONNACK ${d[3]}`, d.subarray(0, 4).toString("hex"));
            socket.destroy();
          }
        });
        socket.on("error", (e) => settle(errors, e.code ?? e.message, e.message));
        socket.once("close", () => settle(errors, "closed before CONNACK", "closed before CONNACK"));
      });
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) await one(next++);
    }));
    return { ok, ms: performance.now() - t0, cpu: process.cpuUsage(cpu0) };
  }

  process.on("message", async (m) => {
    if (m.cmd === "ramp") {
      const r = await ramp(m);
      process.send({ cmd: "ramped", ...r, refused, errors, firstError });
    } else if (m.cmd === "status") {
      process.send({ cmd: "status", open, closedAfterConnack });
    } else if (m.cmd === "close") {
      // RST, not FIN: neither side keeps 50,000 sockets in TIME_WAIT for the next run
      for (const s of sockets) if (!s.destroyed) s.resetAndDestroy();
      process.send({ cmd: "closed" });
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on("disconnect", () => process.exit(0)); // the driver died: go too
  process.send({ cmd: "ready" });
}

// ---------------------------------------------------------------------------------
// the driver

async function main() {
  const { values: opt } = parseArgs({
    options: {
      connections: { type: "string" },
      rounds: { type: "string" },
      workers: { type: "string", default: "4" },
      parallel: { type: "string", default: "32" },
      brokers: { type: "string", default: "midge,midge-native,mosquitto" },
      quick: { type: "boolean", default: false },
      midge: { type: "string", default: "dist/midge.mjs" },
    },
  });
  const {
    GEN_CPU, ROOT, cores, cpuSeconds, ensureMosquitto, fmt, median, mosquittoVersion, pinSelf, rss, snapshotMidge, snapshotNative,
    startBroker, stopAll, taskset,
  } = await import("./brokers.mjs");
  const wanted = Number(opt.connections ?? (opt.quick ? 5000 : 50000));
  const rounds = Number(opt.rounds ?? (opt.quick ? 1 : 3));
  const W = Math.max(1, Number(opt.workers));
  const parallel = Math.max(1, Number(opt.parallel));
  const started = Date.now();

  // Raising the hard limit needs CAP_SYS_RESOURCE, which a container's root may not have:
  // then every process keeps the hard limit it has, and a broker (one process) can hold
  // that many descriptors less a few of its own. The run says so rather than failing.
  const hardLimit = Number(spawnSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim()) || 1024;
  const canRaise = spawnSync("prlimit", [`--nofile=${NOFILE}:${NOFILE}`, "true"]).status === 0;
  const nofile = canRaise ? NOFILE : hardLimit;
  const prlimit = spawnSync("prlimit", ["--version"]).status === 0 ? ["prlimit", `--nofile=${nofile}:${nofile}`] : [];
  if (prlimit.length === 0) process.stderr.write("bench:idle: prlimit (util-linux) missing: the brokers and workers keep this shell's descriptor limit\n");
  const BROKER_FDS = 100; // listeners, epoll, stdio, Node's own: descriptors a broker holds besides its clients
  const N = Math.min(wanted, nofile - BROKER_FDS);
  const capped = N < wanted
    ? `capped from ${wanted.toLocaleString("en-US")}: \`prlimit --nofile=${NOFILE}:${NOFILE}\` was refused (no CAP_SYS_RESOURCE), so each broker keeps the hard limit of ${hardLimit.toLocaleString("en-US")} descriptors`
    : null;
  if (capped) process.stderr.write(`bench:idle: ${N} connections, ${capped}\n`);
  let kinds = opt.brokers.split(",");
  if (kinds.includes("mosquitto") && !ensureMosquitto()) kinds = kinds.filter((k) => k !== "mosquitto");
  pinSelf();
  const midge = snapshotMidge(path.resolve(ROOT, opt.midge));
  const native = kinds.includes("midge-native") ? snapshotNative(path.join(ROOT, "build/native/midge-server"), { setDefault: false }) : null;
  if (kinds.includes("midge-native") && native === null) {
    process.stderr.write("bench:idle: build/native/midge-server is missing (npm run build:native); leaving midge-native out\n");
    kinds = kinds.filter((k) => k !== "midge-native");
  }
  const options = {
    midge: { launcher: prlimit, midgeArgs: ["--board", "server", "--stats-interval", "0"] },
    "midge-native": { launcher: prlimit, binary: native?.path, midgeArgs: ["--stats-interval", "0"] },
    mosquitto: { launcher: prlimit }, // brokers.mjs writes max_connections -1
  };

  // The workers: each its own process on the generator CPU, its own source addresses.
  const share = Array.from({ length: W }, (_, w) => Math.floor(N / W) + (w < N % W ? 1 : 0));
  let nextAddress = 2;
  const addressesOf = share.map((n) => Array.from({ length: Math.max(1, Math.ceil(n / PER_ADDRESS)) }, () => `127.0.0.${nextAddress++}`));
  if (nextAddress > 255) throw new Error(`bench:idle: ${N} connections need more than 253 source addresses: use fewer`);

  function startWorker() {
    const self = fileURLToPath(import.meta.url);
    const cmd = [...(taskset && cores >= 2 ? ["taskset", "-c", String(GEN_CPU)] : []), ...prlimit, process.execPath, self, "worker"];
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const inbox = [];
    const waiting = [];
    child.on("message", (m) => (waiting.length ? waiting.shift()(m) : inbox.push(m)));
    const exited = new Promise((r) => child.once("exit", r));
    return {
      child,
      exited,
      /** The next message from the worker, or an error after `ms`. */
      next(ms, what) {
        if (inbox.length) return Promise.resolve(inbox.shift());
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`bench:idle: a worker did not answer ${what} within ${ms} ms`)), ms);
          waiting.push((m) => { clearTimeout(t); resolve(m); });
        });
      },
    };
  }
  let workers = [];
  const killWorkers = () => { for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL"); };
  process.on("exit", killWorkers);
  const onSignal = (code) => () => { killWorkers(); stopAll().then(() => process.exit(code)); };
  process.on("SIGINT", onSignal(130));
  process.on("SIGTERM", onSignal(143));

  /** One run against a fresh broker `kind`. */
  async function run(kind, round) {
    const broker = await startBroker(kind, options[kind]);
    try {
      workers = share.map(() => startWorker());
      for (const w of workers) await w.next(10000, "ready");
      await sleep(500);
      const rssBefore = rss(broker.pid);
      const cpu0 = cpuSeconds(broker.pid);
      const rampLimit = Math.max(60000, N * 4); // ms: 4 ms a connection, never under a minute
      const t0 = performance.now();
      let first = 0;
      workers.forEach((w, i) => {
        w.child.send({ cmd: "ramp", port: broker.port, n: share[i], first, prefix: `idle-r${round}-`, addresses: addressesOf[i], parallel, timeoutMs: 30000 });
        first += share[i];
      });
      const ramped = await Promise.all(workers.map((w) => w.next(rampLimit, "its ramp")));
      const rampMs = performance.now() - t0;
      const brokerCpu = cpuSeconds(broker.pid) - cpu0;
      await sleep(2000); // let the broker settle (Node: a GC) before reading its RSS
      const rssAfter = rss(broker.pid);
      for (const w of workers) w.child.send({ cmd: "status" });
      const status = await Promise.all(workers.map((w) => w.next(10000, "status")));
      const alive = broker.proc.exitCode === null && broker.proc.signalCode === null;
      for (const w of workers) w.child.send({ cmd: "close" });
      await Promise.all(workers.map((w) => w.next(30000, "close")));
      await Promise.all(workers.map((w) => w.exited));
      workers = [];
      await sleep(2000);
      const rssClosed = rss(broker.pid);
      const accepted = ramped.reduce((a, r) => a + r.ok, 0);
      const merge = (key) => {
        const all = {};
        for (const r of ramped) for (const [k, v] of Object.entries(r[key])) all[k] = (all[k] ?? 0) + v;
        return all;
      };
      const refused = merge("refused");
      const errors = merge("errors");
      const result = {
        accepted,
        failed: N - accepted,
        refused,
        errors,
        firstError: ramped.map((r) => r.firstError).find((e) => e) ?? null,
        open: status.reduce((a, s) => a + s.open, 0),
        closedEarly: status.reduce((a, s) => a + s.closedAfterConnack, 0),
        rampMs,
        rate: accepted / (rampMs / 1000),
        brokerCpu,
        workerCpu: ramped.reduce((a, r) => a + (r.cpu.user + r.cpu.system) / 1e6, 0),
        rssBefore,
        rssAfter,
        perConn: accepted > 0 ? (rssAfter - rssBefore) / accepted : NaN,
        rssClosed,
        brokerAlive: alive,
      };
      process.stderr.write(`  ${kind.padEnd(12)} round ${round + 1}: ${accepted}/${N} CONNACK 0 in ${(rampMs / 1000).toFixed(1)} s (${fmt(result.rate)}/s), open at the end ${result.open}, RSS ${fmt(rssBefore / 2 ** 20, 1)} → ${fmt(rssAfter / 2 ** 20, 1)} MiB (${fmt(result.perConn)} B/conn), after close ${fmt(rssClosed / 2 ** 20, 1)} MiB, broker CPU ${brokerCpu.toFixed(1)} s${result.failed ? `, FAILED ${result.failed}: ${JSON.stringify({ ...refused, ...errors })} first: ${result.firstError}` : ""}${alive ? "" : ", BROKER EXITED"}\n`);
      return result;
    } finally {
      killWorkers();
      workers = [];
      if (broker.proc.exitCode !== null || broker.proc.signalCode !== null) {
        process.stderr.write(`  ${kind}: the broker exited (${broker.proc.exitCode ?? broker.proc.signalCode}); its last output:\n${broker.output().slice(-2000)}\n`);
      }
      await broker.stop();
    }
  }

  process.stderr.write(`bench:idle: ${fmt(N)} idle connections, ${W} workers × ${parallel} handshakes at a time, ${rounds} rounds: ${kinds.join(", ")}\n`);
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(i + r) % kinds.length];
      try {
        results[kind].push(await run(kind, r));
      } catch (e) {
        process.stderr.write(`  ${kind} round ${r + 1}: ${e.message}\n`);
        results[kind].push({ accepted: 0, failed: N, error: e.message, rate: NaN, perConn: NaN, rssBefore: NaN, rssAfter: NaN, rssClosed: NaN, open: 0, refused: {}, errors: {} });
      }
    }
  }
  await stopAll();

  // the tables
  const M = (k, key) => median(results[k].map((x) => x[key]).filter(Number.isFinite));
  const mine = kinds.filter((k) => k !== "mosquitto");
  const peer = kinds.includes("mosquitto") ? "mosquitto" : null;
  const label = { midge: "midge (Node, `--board server`)", "midge-native": "midge-native (`midge-server`)", mosquitto: "mosquitto" };
  const cpuModel = /model name\s*:\s*(.*)/.exec((await import("node:fs")).readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const out = [];
  out.push(`### Idle connections (issue 15): ${new Date().toISOString()}`, "");
  out.push(`- command: \`npm run bench:idle${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}\``);
  out.push(`- Midge under test: \`${path.relative(ROOT, midge.source)}\` (${fmt(midge.bytes)} bytes, sha256 ${midge.sha256.slice(0, 16)}, built ${midge.mtime.toISOString()})${native ? `; \`${path.relative(ROOT, native.source)}\` (${fmt(native.bytes)} bytes, sha256 ${native.sha256.slice(0, 16)}, built ${native.mtime.toISOString()})` : ""}; mosquitto ${mosquittoVersion()}`);
  out.push(`- machine: ${cores} × ${cpuModel}, ${Math.round(os.totalmem() / 2 ** 20)} MiB, Linux ${os.release()}, node ${process.version}`);
  if (capped) out.push(`- **${fmt(N)} connections, ${capped}**`);
  out.push(`- ${fmt(N)} connections (CONNECT, keep-alive ${KEEP_ALIVE} s, then nothing) from ${W} worker processes (${parallel} handshakes in flight each, source addresses 127.0.0.2–127.0.0.${nextAddress - 1}); broker on CPU 0, workers on CPU ${GEN_CPU}; brokers and workers under \`prlimit --nofile=${nofile}:${nofile}\``);
  out.push(`- ${rounds} rounds (medians), a fresh broker for every run, brokers alternating; ${((Date.now() - started) / 1000).toFixed(0)} s`, "");
  const head = ["case", ...kinds.map((k) => label[k]), ...(peer ? mine.map((k) => `${k} ÷ ${peer}`) : [])];
  out.push(`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`);
  const row = (name, key, scale = 1, d = 0) => {
    const v = (k) => M(k, key) / scale;
    out.push(`| ${name} | ${kinds.map((k) => fmt(v(k), d)).join(" | ")} | ${peer ? mine.map((k) => `${fmt(v(k) / v(peer), 2)}×`).join(" | ") : ""}`.replace(/ \| $/, "") + " |");
  };
  row("connect rate over the ramp (connections/s; higher is better)", "rate");
  row("RSS per connection (bytes; lower is better)", "perConn");
  row("RSS before (MiB)", "rssBefore", 2 ** 20, 1);
  row(`RSS with ${fmt(N)} connections (MiB)`, "rssAfter", 2 ** 20, 1);
  row("RSS 2 s after the clients closed (MiB)", "rssClosed", 2 ** 20, 1);
  row("broker CPU during the ramp (s)", "brokerCpu", 1, 1);
  row(`the workers' CPU during the ramp (s; the generator, on one core)`, "workerCpu", 1, 1);
  out.push("");
  const sumOf = (k, key) => results[k].reduce((a, x) => a + (x[key] ?? 0), 0);
  out.push(`Every connection, all rounds (${fmt(N * rounds)} per broker): ${kinds.map((k) => `${k} ${fmt(sumOf(k, "accepted"))} CONNACK 0, ${fmt(sumOf(k, "open"))} still open at the end`).join("; ")}.`);
  for (const k of kinds) {
    for (const [r, x] of results[k].entries()) {
      if (x.failed > 0 || x.open !== x.accepted || x.error || x.brokerAlive === false) {
        out.push(`- **${k}, round ${r + 1} failed**: ${fmt(x.accepted)} of ${fmt(N)} got CONNACK 0, ${fmt(x.open)} open at the end${Object.keys({ ...x.refused, ...x.errors }).length ? `; ${Object.entries({ ...x.refused, ...x.errors }).map(([c, n]) => `${c}: ${fmt(n)}`).join(", ")}` : ""}${x.firstError ? ` (first: ${x.firstError})` : ""}${x.error ? ` (${x.error})` : ""}${x.brokerAlive === false ? "; the broker exited" : ""}`);
      }
    }
  }
  out.push("");
  process.stdout.write(out.join("\n") + "\n");
}
