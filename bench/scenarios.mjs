// The scenarios of issue 6. Each takes a started broker ({ kind, pid, port }) and
// returns plain numbers; the driver (run.mjs) starts a fresh broker for every run,
// alternates the brokers, and takes medians.

import { performance } from "node:perf_hooks";
import { RawClient, publishTemplate, stampBatch } from "./mqtt.mjs";
import { spawn } from "node:child_process";
import path from "node:path";
import { GEN_CPU, ROOT, cores, cpuSeconds, rss, taskset } from "./brokers.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let runId = 0;
const cid = (what) => `b${process.pid}-${++runId}-${what}`;

/** Connect `n` clients, at most `parallel` handshakes at a time. */
async function connectMany(port, n, make, parallel = 64) {
  const clients = new Array(n);
  let next = 0;
  const errors = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        clients[i] = await make(i);
      } catch (e) {
        errors.push(e);
        clients[i] = null;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return { clients, errors };
}

function killAll(clients) {
  for (const c of clients) c?.kill();
}

/** Wait until `done()` or until `progress()` has not changed for `stallMs`; bounded by `maxMs`. */
async function settle(done, progress, stallMs, maxMs = 30000) {
  const start = performance.now();
  let last = progress();
  let lastChange = performance.now();
  while (!done() && performance.now() - start < maxMs) {
    await sleep(10);
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > stallMs) break;
  }
}

/** CPU of this process and of the broker over a window, as a fraction of one core. */
function cpuMeter(brokerPid) {
  const t0 = performance.now();
  const g0 = process.cpuUsage();
  const b0 = cpuSeconds(brokerPid);
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const g = process.cpuUsage(g0);
    return { genCpu: (g.user + g.system) / 1e6 / wall, brokerCpu: (cpuSeconds(brokerPid) - b0) / wall };
  };
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

// ---------------------------------------------------------------------------------
// throughput: P publishers -> S subscribers, closed loop with a window

/**
 * Every publisher keeps at most `window / pubs` of its messages not yet seen by every
 * subscriber (a closed loop: no broker is pushed past its queues, so QoS 1 loss means
 * a broker lost an acknowledged message, not that we overran a documented limit).
 * `window: "acks"` drives QoS 1 the way real clients do: no in-flight limit, each
 * publisher writes whenever its socket takes bytes and only its PUBACKs bound it (at
 * most 60,000 unacknowledged, within the packet-id space); every message the broker
 * acknowledged must then arrive.
 * Returns deliveries per second over the measured window, loss, and CPU.
 */
export async function throughput(broker, { pubs, subs, size, qos, window, filter, topic, warmupMs, measureMs, persistentSubs = false }) {
  const P = pubs;
  const S = subs;
  const byAcks = window === "acks";
  const perPub = byAcks ? 60000 : Math.max(1, Math.floor(window / P));
  const high = Array.from({ length: S }, () => new Int32Array(P).fill(-1)); // highest seq seen per (sub, pub)
  const count = Array.from({ length: S }, () => new Float64Array(P));
  let disorder = 0;
  let stopped = false;
  const sent = new Float64Array(P);
  const pids = new Int32Array(P).fill(1);

  let pumpQueued = false;
  const schedulePump = () => {
    if (pumpQueued || stopped) return;
    pumpQueued = true;
    setImmediate(pumpAll);
  };

  const subscribers = [];
  for (let s = 0; s < S; s++) {
    const hs = high[s];
    const cs = count[s];
    const c = new RawClient(broker.port, cid(`sub${s}`), {
      tls: broker.tls,
      clean: !persistentSubs,
      onPublish(buf, at) {
        const p = buf.readUInt32BE(at);
        const seq = buf.readUInt32BE(at + 4);
        if (p >= P) return;
        if (seq !== hs[p] + 1) disorder++;
        if (seq > hs[p]) hs[p] = seq;
        cs[p]++;
      },
    });
    await c.connect();
    await c.subscribe(filter, qos);
    c.socket.on("data", schedulePump);
    subscribers.push(c);
  }
  const templates = [];
  const publishers = [];
  for (let p = 0; p < P; p++) {
    const c = new RawClient(broker.port, cid(`pub${p}`), { tls: broker.tls });
    await c.connect();
    c.socket.on("drain", schedulePump);
    if (byAcks) c.socket.on("data", schedulePump); // a PUBACK makes room
    publishers.push(c);
    templates.push(publishTemplate(topic(p), size, qos));
  }

  const maxBatch = Math.max(8, Math.floor(65536 / templates[0].bytes.length));
  function pumpAll() {
    pumpQueued = false;
    if (stopped) return;
    for (let p = 0; p < P; p++) {
      const c = publishers[p];
      if (c.closed || c.socket.writableLength > 1 << 18) continue;
      let seen = Infinity;
      if (byAcks) seen = c.pubacks - 1;
      else for (let s = 0; s < S; s++) if (high[s][p] < seen) seen = high[s][p];
      let allowed = perPub - (sent[p] - (seen + 1));
      while (allowed > 0) {
        const n = Math.min(allowed, maxBatch);
        c.write(stampBatch(templates[p], n, p, sent[p], pids[p], 0));
        sent[p] += n;
        if (qos > 0) pids[p] = ((pids[p] - 1 + n) % 65535) + 1;
        allowed -= n;
      }
    }
  }

  const received = () => {
    let r = 0;
    for (const c of subscribers) r += c.received;
    return r;
  };
  pumpAll();
  await sleep(warmupMs);
  const r0 = received();
  const t0 = performance.now();
  const meter = cpuMeter(broker.pid);
  await sleep(measureMs);
  const r1 = received();
  const t1 = performance.now();
  const cpu = meter();
  stopped = true;
  const totalSent = () => sent.reduce((a, b) => a + b, 0);
  const pubacks = () => publishers.reduce((a, c) => a + c.pubacks, 0);
  await settle(
    () => received() >= totalSent() * S && (qos === 0 || pubacks() >= totalSent()),
    () => received() + pubacks(),
    qos === 0 ? 1000 : 3000,
  );
  const expected = totalSent() * S;
  const got = received();
  const result = {
    rate: (r1 - r0) / ((t1 - t0) / 1000),
    sent: totalSent(),
    received: got,
    lost: expected - got,
    acked: qos > 0 ? pubacks() : undefined,
    disorder,
    ...cpu,
  };
  killAll(subscribers);
  killAll(publishers);
  return result;
}

// ---------------------------------------------------------------------------------
// latency at a fixed rate

export async function latency(broker, { qos, rate, size, warmupMs, measureMs }) {
  const samples = [];
  let measuring = false;
  let lost = 0;
  let expectSeq = 0;
  const sub = new RawClient(broker.port, cid("latsub"), {
    onPublish(buf, at) {
      const now = performance.now();
      const seq = buf.readUInt32BE(at + 4);
      if (seq > expectSeq) lost += seq - expectSeq;
      expectSeq = seq + 1;
      if (measuring) samples.push(now - buf.readDoubleBE(at + 8));
    },
  });
  await sub.connect();
  await sub.subscribe("bench/lat/+", qos);
  const pub = new RawClient(broker.port, cid("latpub"));
  await pub.connect();
  const tpl = publishTemplate("bench/lat/x", size, qos);
  let sent = 0;
  let pid = 1;
  const start = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const n = Math.floor(((now - start) * rate) / 1000) - sent;
    if (n <= 0) return;
    pub.write(stampBatch(tpl, n, 0, sent, pid, now));
    sent += n;
    if (qos > 0) pid = ((pid - 1 + n) % 65535) + 1;
  }, 1);
  await sleep(warmupMs);
  measuring = true;
  const meter = cpuMeter(broker.pid);
  await sleep(measureMs);
  const cpu = meter();
  clearInterval(timer);
  await settle(() => sub.received >= sent, () => sub.received, 1000);
  measuring = false;
  lost += sent - expectSeq;
  const sorted = Float64Array.from(samples).sort();
  const result = {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted[sorted.length - 1],
    samples: sorted.length,
    lost,
    ...cpu,
  };
  sub.kill();
  pub.kill();
  return result;
}

// ---------------------------------------------------------------------------------
// idle connections

export async function idle(broker, { n, parallel = 64 }) {
  await sleep(300);
  const before = rss(broker.pid);
  const t0 = performance.now();
  const meter = cpuMeter(broker.pid);
  const { clients, errors } = await connectMany(broker.port, n, async (i) => {
    const c = new RawClient(broker.port, cid(`idle${i}`));
    await c.connect();
    await c.subscribe(`idle/${i}/state`, 0);
    return c;
  }, parallel);
  const t1 = performance.now();
  const cpu = meter();
  const accepted = clients.filter((c) => c !== null).length;
  await sleep(1000);
  const after = rss(broker.pid);
  killAll(clients);
  return {
    accepted,
    refused: errors.length,
    firstError: errors[0]?.message,
    connectRate: accepted / ((t1 - t0) / 1000),
    rssBefore: before,
    rssAfter: after,
    perConn: accepted > 0 ? (after - before) / accepted : NaN,
    ...cpu,
  };
}

// ---------------------------------------------------------------------------------
// retained store and replay

export async function retained(broker, { n, size }) {
  const pub = new RawClient(broker.port, cid("retpub"));
  await pub.connect();
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(publishTemplate(`retain/${i}/state`, size, 0, true).bytes);
  const all = Buffer.concat(parts);
  const t0 = performance.now();
  for (let at = 0; at < all.length; at += 1 << 16) pub.write(all.subarray(at, Math.min(all.length, at + (1 << 16))));
  await pub.ping();
  const storeMs = performance.now() - t0;
  let last = 0;
  const sub = new RawClient(broker.port, cid("retsub"), {
    onPublish() {
      last = performance.now();
    },
  });
  await sub.connect();
  const t1 = performance.now();
  await sub.subscribe("retain/#", 0);
  await settle(() => sub.received >= n, () => sub.received, 1000);
  const result = {
    storeRate: n / (storeMs / 1000),
    received: sub.received,
    replayMs: sub.received > 0 ? last - t1 : NaN,
    perMsgUs: sub.received > 0 ? ((last - t1) * 1000) / sub.received : NaN,
  };
  sub.kill();
  pub.kill();
  return result;
}

// ---------------------------------------------------------------------------------
// the voice-assistant profile (Snips Hermes audio)

/**
 * 10 rooms stream 2,092-byte frames at 15.6/s; two fast subscribers per room on the
 * room's topic, and one `hermes/#` debug subscriber reading `slowRate` bytes a second
 * (bench/slow-subscriber.py: a 4 KiB receive buffer, so the broker sees the backlog). Fast subscribers: frame latency and loss. Slow one: frames it never got.
 */
export async function voice(broker, { rooms = 10, fps = 15.6, size = 2092, slowRate = 16384, measureMs, warmupMs }) {
  const topic = (r) => `hermes/audioServer/room${r}/audioFrame`;
  const samples = [];
  let measuring = false;
  const fast = [];
  for (let r = 0; r < rooms; r++) {
    for (const role of ["wake", "asr"]) {
      const c = new RawClient(broker.port, cid(`${role}${r}`), {
        onPublish(buf, at) {
          if (measuring) samples.push(performance.now() - buf.readDoubleBE(at + 8));
        },
      });
      await c.connect();
      await c.subscribe(topic(r), 0);
      fast.push(c);
    }
  }
  const slow = await slowSubscriber(broker.port, "hermes/#", slowRate, cid("debug"));
  const pubs = [];
  const tpls = [];
  for (let r = 0; r < rooms; r++) {
    const c = new RawClient(broker.port, cid(`satellite${r}`));
    await c.connect();
    pubs.push(c);
    tpls.push(publishTemplate(topic(r), size, 0));
  }
  const sent = new Float64Array(rooms);
  const start = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    for (let r = 0; r < rooms; r++) {
      // rooms are staggered across the frame period, as independent satellites would be
      const due = Math.floor(((now - start) / 1000 + r / (rooms * fps)) * fps) - sent[r];
      if (due > 0) {
        pubs[r].write(stampBatch(tpls[r], due, r, sent[r], 0, now));
        sent[r] += due;
      }
    }
  }, 2);
  await sleep(warmupMs);
  measuring = true;
  const meter = cpuMeter(broker.pid);
  await sleep(measureMs);
  const cpu = meter();
  const rssEnd = rss(broker.pid);
  clearInterval(timer);
  const total = sent.reduce((a, b) => a + b, 0);
  const fastReceived = () => fast.reduce((a, c) => a + c.received, 0);
  await settle(() => fastReceived() >= 2 * total, fastReceived, 1000);
  measuring = false;
  // let the slow subscriber catch up at full speed: what it still misses was dropped
  const slowReceived = await slow.drain();
  const sorted = Float64Array.from(samples).sort();
  const result = {
    frames: total,
    fastLost: 2 * total - fastReceived(),
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1],
    slowReceived,
    slowDropped: total - slowReceived,
    rssEnd,
    ...cpu,
  };
  killAll(fast);
  killAll(pubs);
  return result;
}

/** The slow reader as a child process; `drain()` resolves with the PUBLISH packets it got. */
function slowSubscriber(port, filter, rate, id) {
  const script = path.join(ROOT, "bench/slow-subscriber.py");
  const args = [script, String(port), filter, String(rate), id];
  const proc = taskset && cores >= 2
    ? spawn("taskset", ["-c", String(GEN_CPU), "python3", ...args], { stdio: ["pipe", "pipe", "inherit"] })
    : spawn("python3", args, { stdio: ["pipe", "pipe", "inherit"] });
  let text = "";
  const lines = [];
  const waiters = [];
  proc.stdout.on("data", (d) => {
    text += d;
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      lines.push(text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise((r) => proc.once("exit", r));
  const line = (re, ms) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => { proc.kill(); reject(new Error(`slow subscriber: no '${re}' within ${ms} ms`)); }, ms);
      const check = () => {
        const m = lines.map((l) => re.exec(l)).find(Boolean);
        if (m) { clearTimeout(t); resolve(m); } else waiters.push(check);
      };
      exited.then(() => { clearTimeout(t); reject(new Error("slow subscriber exited")); });
      check();
    });
  return line(/^subscribed/, 10000).then(() => ({
    async drain() {
      proc.stdin.end("drain\n");
      const m = await line(/^received (\d+)/, 30000);
      await exited;
      return Number(m[1]);
    },
  }));
}
