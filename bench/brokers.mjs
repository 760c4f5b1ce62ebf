// Starting and stopping the brokers under test, each on its own loopback port, pinned
// to the broker core; and reading their RSS and CPU time from /proc.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p)) ?? "mosquitto";

/** Whether `taskset` exists, and the cores: broker on the first, generator on the last. */
export const taskset = spawnSync("taskset", ["--version"]).status === 0;
export const cores = os.cpus().length;
export const BROKER_CPU = 0;
export const GEN_CPU = Math.max(0, cores - 1);

/** Pin this process (all its threads) to the generator core. */
export function pinSelf() {
  if (!taskset || cores < 2) return false;
  return spawnSync("taskset", ["-a", "-p", "-c", String(GEN_CPU), String(process.pid)]).status === 0;
}

/** Install mosquitto with apt-get when it is missing (needs root or sudo). */
export function ensureMosquitto() {
  if (existsSync(MOSQUITTO)) return true;
  process.stderr.write("bench: mosquitto missing; installing it with apt-get\n");
  const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
  const run = (args) => spawnSync(sudo.length ? "sudo" : args[0], sudo.length ? args : args.slice(1), { stdio: "inherit" });
  run(["apt-get", "update"]);
  run(["apt-get", "install", "-y", "--no-install-recommends", "mosquitto"]);
  return existsSync("/usr/sbin/mosquitto");
}

export function mosquittoVersion() {
  const r = spawnSync(MOSQUITTO, ["-h"], { encoding: "utf8" });
  return /mosquitto version ([\d.]+)/.exec(r.stdout + r.stderr)?.[1] ?? "?";
}

/** RSS of `pid` in bytes (VmRSS), or NaN. */
export function rss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

const TICK = 100; // USER_HZ; Linux reports /proc/<pid>/stat times in clock ticks of 1/100 s
/** CPU seconds (user + system) used so far by `pid`. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return NaN;
  }
}

/**
 * `cmd args` on the broker core, after `launcher` (a command that execs the rest, such
 * as `prlimit --nofile=N:N`: the broker keeps its pid, as it does under taskset).
 */
function pinned(cmd, args, launcher = []) {
  const full = [...launcher, cmd, ...args];
  return taskset && cores >= 2 ? ["taskset", ["-c", String(BROKER_CPU), ...full]] : [full[0], full.slice(1)];
}

/** Wait for a line of `stream` matching `re`; resolve with the match. */
function waitFor(proc, re, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => done(new Error(`${what}: not ready within ${timeoutMs} ms:\n${text.slice(-2000)}`)), timeoutMs);
    const onData = (d) => {
      text += d.toString();
      const m = re.exec(text);
      if (m) done(null, m);
    };
    const onExit = (code) => done(new Error(`${what} exited (${code}) before it was ready:\n${text.slice(-2000)}`));
    const done = (err, m) => {
      clearTimeout(timer);
      proc.stdout?.off("data", onData);
      proc.stderr?.off("data", onData);
      proc.off("exit", onExit);
      if (err) reject(err);
      else resolve(m);
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", onExit);
  });
}

/** A free loopback port (bound and released; good enough for a broker started right after). */
async function freePort() {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const started = new Set();

/**
 * The Midge under test: a private copy of the bundle (see `snapshotMidge`), so that a
 * rebuild of dist/ while the suite runs cannot change the broker between runs.
 */
let midgeScript = path.join(ROOT, "dist/midge.mjs");
let snapshotDir = null;

/**
 * Copy `source` (default dist/midge.mjs) to a fresh temporary directory and use that
 * copy for every Midge started from now on. Returns { source, path, sha256, bytes, mtime }.
 * The copy keeps the name midge.mjs (the profiler summary recognises the host by it)
 * and is removed when this process exits.
 */
export function snapshotMidge(source = path.join(ROOT, "dist/midge.mjs")) {
  const from = path.resolve(source);
  const st = statSync(from);
  snapshotDir = mkdtempSync(path.join(os.tmpdir(), "midge-under-test-"));
  const to = path.join(snapshotDir, "midge.mjs");
  copyFileSync(from, to);
  const bytes = readFileSync(to);
  midgeScript = to;
  return { source: from, path: to, sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length, mtime: st.mtime };
}

/**
 * The core of `board` embedded in a Midge bundle (esbuild's binary loader keeps each
 * build/midge-<board>.wasm as `midge_<board>_default = __toBinaryNode("<base64>")`), so
 * that the micro-benchmarks and the profiler's names use exactly the core under test.
 * Falls back to build/midge-<board>.wasm when the bundle has no such core.
 */
export function embeddedCore(bundle = midgeScript, board = "pi") {
  const text = readFileSync(bundle, "utf8");
  const name = `midge_${board.replace(/[^a-z0-9]/gi, "_")}_default`;
  const m = new RegExp(`\\b${name} = __toBinary\\w*\\("([A-Za-z0-9+/=]+)"\\)`).exec(text);
  if (m) return Buffer.from(m[1], "base64");
  return readFileSync(path.join(ROOT, `build/midge-${board}.wasm`));
}

/**
 * The native host (host/native, the pi core through wasm2c): copied like the bundle, so
 * that a rebuild during the run changes nothing. Returns the same fields, or null when
 * it was not built. Another board's binary (build/native/midge-server) is copied the same
 * way with `setDefault: false` and started with `startBroker("midge-native", { binary })`.
 */
let nativeBinary = path.join(ROOT, "build/native/midge-pi");
export function snapshotNative(source = path.join(ROOT, "build/native/midge-pi"), { setDefault = true } = {}) {
  const from = path.resolve(source);
  if (!existsSync(from)) return null;
  const st = statSync(from);
  snapshotDir ??= mkdtempSync(path.join(os.tmpdir(), "midge-under-test-"));
  const to = path.join(snapshotDir, path.basename(from)); // midge-pi, midge-server, ...
  copyFileSync(from, to);
  chmodSync(to, 0o755);
  const bytes = readFileSync(to);
  if (setDefault) nativeBinary = to;
  return { source: from, path: to, sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length, mtime: st.mtime };
}

/** bench/relay.c compiled once per run (the latency floor), or null without a C compiler. */
let relayC;
export function relayCBinary() {
  if (relayC !== undefined) return relayC;
  snapshotDir ??= mkdtempSync(path.join(os.tmpdir(), "midge-under-test-"));
  const out = path.join(snapshotDir, "relay-c");
  const r = spawnSync(process.env.CC ?? "cc", ["-O2", "-o", out, path.join(ROOT, "bench/relay.c")], { encoding: "utf8" });
  relayC = r.status === 0 ? out : null;
  if (relayC === null) process.stderr.write(`bench: cannot build bench/relay.c (${(r.stderr ?? String(r.error)).trim()}); no C relay\n`);
  return relayC;
}

/** The bundle Midge brokers are started from (the snapshot once taken). */
export function midgePath() {
  return midgeScript;
}

/**
 * Start broker `kind` (midge | midge-native | mosquitto | aedes | relay); resolve with
 * { kind, pid, port, stop(), output() }. `extraNodeArgs` go to node (e.g. --cpu-prof);
 * `launcher` runs before the broker's command (e.g. ["prlimit", "--nofile=200000:200000"]);
 * `binary` is the native host to start instead of the default snapshot.
 */
export async function startBroker(kind, { extraNodeArgs = [], midgeArgs = [], mosquittoLines = [], launcher = [], binary = undefined } = {}) {
  let cmd;
  let args;
  let ready;
  let tmp = null;
  if (kind === "midge") {
    [cmd, args] = pinned(process.execPath, [...extraNodeArgs, midgeScript, "--port", "0", ...midgeArgs], launcher);
    ready = /listening on [^\s]*:(\d+)/;
  } else if (kind === "midge-native") {
    [cmd, args] = pinned(binary ?? nativeBinary, ["--port", "0", ...midgeArgs], launcher);
    ready = /listening on [^\s]*:(\d+)/;
  } else if (kind === "relay-c") {
    [cmd, args] = pinned(relayCBinary(), []);
    ready = /listening on [^\s]*:(\d+)/;
  } else if (kind === "aedes" || kind === "relay") {
    [cmd, args] = pinned(process.execPath, [...extraNodeArgs, path.join(ROOT, `bench/${kind}-server.mjs`)]);
    ready = /listening on [^\s]*:(\d+)/;
  } else if (kind === "mosquitto") {
    const port = await freePort();
    tmp = mkdtempSync(path.join(os.tmpdir(), "midge-bench-"));
    const conf = path.join(tmp, "mosquitto.conf");
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous true",
        "persistence false",
        // The packaged default (1000) silently drops QoS 1 messages under load.
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        // The same unacknowledged window per subscriber as Midge's pi board (INFLIGHT_MAX 128).
        "max_inflight_messages 128",
        "max_connections -1",
        ...(process.env.BENCH_MOSQ_NODELAY === "1" ? ["set_tcp_nodelay true"] : []),
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        ...mosquittoLines,
        "",
      ].join("\n"),
    );
    [cmd, args] = pinned(MOSQUITTO, ["-c", conf], launcher);
    ready = new RegExp(`Opening ipv4 listen socket on port (${port})`);
  } else {
    throw new Error(`unknown broker ${kind}`);
  }
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (d) => { output = (output + d).slice(-20000); });
  proc.stderr.on("data", (d) => { output = (output + d).slice(-20000); });
  const exited = new Promise((r) => proc.once("exit", r));
  let m;
  try {
    m = await waitFor(proc, ready, kind);
  } catch (e) {
    proc.kill("SIGKILL");
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const broker = {
    proc,
    kind,
    pid: proc.pid, // taskset execs the broker: same pid
    port: Number(m[1]),
    output: () => output,
    async stop() {
      started.delete(broker);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
  started.add(broker);
  // mosquitto prints its ready line just before it can accept: give it a moment
  if (kind === "mosquitto") await new Promise((r) => setTimeout(r, 50));
  return broker;
}

/** Stop every broker still running (on exit or error). */
export async function stopAll() {
  await Promise.all([...started].map((b) => b.stop()));
}

// Whatever happens to the driver (an exception, Ctrl-C), no broker outlives it.
process.on("exit", () => {
  for (const b of started) {
    if (b.proc.exitCode === null && b.proc.signalCode === null) b.proc.kill("SIGKILL");
  }
  if (snapshotDir !== null) rmSync(snapshotDir, { recursive: true, force: true });
});

/**
 * The scenario `fn(broker, label)` over `rounds` rounds for each variant of `list`
 * ([label, kind, startBroker options]): a fresh broker for every run, the variants in
 * turn, rotating who goes first each round. Returns { label: [result, ...] }.
 * (bench/acl.mjs and bench/tls.mjs; run.mjs alternates whole kinds the same way.)
 */
export async function alternateVariants(list, rounds, fn) {
  const results = Object.fromEntries(list.map(([label]) => [label, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < list.length; i++) {
      const [label, kind, options] = list[(i + r) % list.length];
      const broker = await startBroker(kind, options);
      try {
        results[label].push(await fn(broker, label));
      } finally {
        await broker.stop();
      }
      process.stderr.write(`  ${label.padEnd(12)} round ${r + 1}: ${JSON.stringify(results[label].at(-1))}\n`);
    }
  }
  return results;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

export const fmt = (x, d = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "–";
