#!/usr/bin/env node
// Soak: mixed MQTT traffic against a running midge for a given time, then a report of
// the broker's memory (RSS), message loss and errors.
//
//   node bench/soak.mjs --time 600 --port 1883 --pid <broker pid>
//   node bench/soak.mjs --time 60 --spawn            start dist/midge.mjs itself (port 0)
//   node bench/soak.mjs --time 60 --spawn --native   start build/native/midge-pi instead
//
// Options:
//   --host H, --port N   the broker (default 127.0.0.1:1883)
//   --pid N              the broker's process id, for RSS (/proc/N/status); --spawn knows it
//   --spawn              start `node dist/midge.mjs --port 0` (with --native: build/native/midge-pi)
//                        and stop it at the end, so its
//                        shutdown stats line (messages, drops, refusals) joins the report
//   --time S             how long to run (default 60)
//   --rate N             messages per second per publisher (default 200)
//   --json               print the report as JSON only
//
// Traffic, all at once: 4 publishers (QoS 0/1/2 mixed, 16 B .. 64 KiB payloads, some
// retained) to soak/<run>/..; 6 subscribers on exact and wildcard filters at QoS 0, 1, 2;
// one subscriber that stops reading (its QoS 0 messages may be dropped: that is allowed);
// persistent-session clients that go away and come back (their QoS 1 messages must all
// arrive); churn: connections that come and go, half abruptly with a will.
// Loss of QoS 1/2 messages by a reading subscriber, duplicates without DUP,
// unexpected disconnects and connect failures are errors; QoS 0 loss is counted.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import mqtt from "mqtt";

const { values: opt } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "1883" },
    pid: { type: "string" },
    spawn: { type: "boolean", default: false },
    native: { type: "boolean", default: false },
    time: { type: "string", default: "60" },
    rate: { type: "string", default: "200" },
    json: { type: "boolean", default: false },
  },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const seconds = Number(opt.time);
const rate = Number(opt.rate);
const run = `soak-${process.pid}-${Date.now().toString(36)}`;
const say = (s) => opt.json || console.error(s);

// ---- the broker ----
let host = opt.host;
let port = Number(opt.port);
let pid = opt.pid ? Number(opt.pid) : undefined;
let brokerProc;
let brokerOut = "";
if (opt.spawn) {
  brokerProc = opt.native
    ? spawn(path.join(root, "build", "native", "midge-pi"), ["--port", "0"], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, [path.join(root, "dist", "midge.mjs"), "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  brokerProc.stdout.on("data", (d) => (brokerOut += d));
  brokerProc.stderr.on("data", (d) => {
    brokerOut += d;
    if (brokerOut.length > 1 << 20) brokerOut = brokerOut.slice(-(1 << 19));
  });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("broker did not start")), 10_000);
    const check = () => {
      const m = /listening on ([\d.]+):(\d+)/.exec(brokerOut);
      if (!m) return;
      clearTimeout(t);
      host = m[1];
      port = Number(m[2]);
      resolve();
    };
    brokerProc.stderr.on("data", check);
  });
  pid = brokerProc.pid;
}

function rssMiB() {
  if (pid === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ---- bookkeeping ----
const report = {
  run, broker: `${host}:${port}`, seconds, ratePerPublisher: rate,
  published: { 0: 0, 1: 0, 2: 0 }, publishedBytes: 0,
  received: {}, lostQos0: 0, lostQos12: 0, duplicates: 0,
  connects: 0, churnConnections: 0, connectErrors: 0, unexpectedCloses: 0, errors: [],
  rss: { startMiB: rssMiB(), maxMiB: 0, endMiB: NaN, samples: [] },
  brokerStats: null,
};
const error = (what) => {
  if (report.errors.length < 50) report.errors.push(what);
};
let stopping = false;

function client(id, options = {}, { expectClose = false } = {}) {
  const c = mqtt.connect({ host, port, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clientId: id, keepalive: 30, ...options });
  c.on("error", (e) => {
    if (!stopping && !expectClose) error(`${id}: ${e.message}`);
  });
  c.on("close", () => {
    if (!stopping && !expectClose && !c.disconnecting) {
      report.unexpectedCloses++;
      error(`${id}: connection closed unexpectedly`);
    }
  });
  return new Promise((resolve) => {
    c.once("connect", () => {
      report.connects++;
      resolve(c);
    });
    c.once("close", () => resolve(null));
  }).then((r) => {
    if (r === null && !stopping) {
      report.connectErrors++;
      error(`${id}: could not connect`);
    }
    return r;
  });
}

// ---- subscribers: what each expects, and what it got ----
// A publisher numbers its messages per QoS; a subscriber tracks, per (publisher, QoS),
// which numbers arrived, to count loss and duplicates.
const subscribers = [];
async function subscriber(name, filter, qos) {
  const c = await client(`${run}-${name}`, { clean: true });
  if (!c) return;
  await c.subscribeAsync(filter, { qos });
  const s = { name, filter, qos, seen: new Map(), count: 0, dups: 0 };
  c.on("message", (topic, payload, packet) => {
    s.count++;
    if (payload.length < 12) return;
    const key = `${payload.readUInt32BE(0)}/${payload[8]}`; // publisher / QoS it was published with
    const n = payload.readUInt32BE(4);
    let set = s.seen.get(key);
    if (!set) s.seen.set(key, (set = new Set()));
    if (set.has(n) && !packet.dup) s.dups++;
    set.add(n);
  });
  s.client = c;
  subscribers.push(s);
  return s;
}

// ---- publishers ----
const sentBy = []; // [publisher][qos] = numbers sent, with the topic of each
async function publisher(p) {
  const c = await client(`${run}-pub${p}`);
  if (!c) return;
  const sent = { 0: [], 1: [], 2: [] };
  sentBy[p] = sent;
  const sizes = [16, 16, 100, 100, 1024, 1024, 8192, 65536];
  let n = 0;
  const tick = 1000 / rate;
  let next = performance.now();
  while (!stopping) {
    const qos = n % 3;
    const size = sizes[n % sizes.length];
    const payload = Buffer.alloc(Math.max(size, 12), n & 0xff);
    payload.writeUInt32BE(p, 0);
    payload.writeUInt32BE(sent[qos].length, 4);
    payload[8] = qos;
    const topic = `soak/${run}/p${p}/${["a", "b/c", "d/e/f"][n % 3]}`;
    sent[qos].push(topic);
    report.published[qos]++;
    report.publishedBytes += payload.length;
    const retain = n % 50 === 0;
    c.publish(topic, payload, { qos, retain }, (e) => e && !stopping && error(`publish: ${e.message}`));
    n++;
    next += tick;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (n % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  await c.endAsync().catch(() => {});
}

// ---- a subscriber that stops reading ----
async function stalled() {
  // keep-alive 0: a client that reads nothing never sees a PINGRESP, and mqtt.js would
  // close it itself after 1.5 keep-alives (a "Keepalive timeout" of the soak, not the broker's)
  const c = await client(`${run}-stalled`, { keepalive: 0 });
  if (!c) return;
  await c.subscribeAsync(`soak/${run}/#`, { qos: 0 });
  c.stream.pause();
  return c;
}

// ---- persistent sessions that come and go ----
async function wanderer(k) {
  const id = `${run}-wanderer${k}`;
  const filter = `soak/${run}/p${k % 4}/a`;
  let got = 0;
  while (!stopping) {
    const c = await client(id, { clean: false }, { expectClose: true });
    if (!c) return;
    c.on("message", () => got++);
    await c.subscribeAsync(filter, { qos: 1 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 2000 + k * 300));
    if (stopping) {
      c.end(true);
      break;
    }
    c.stream.destroy(); // away for a while; its QoS 1 messages queue up
    await new Promise((r) => setTimeout(r, 1500));
  }
  report.received[`wanderer${k}`] = got;
}

// ---- churn ----
async function churner(k) {
  let i = 0;
  while (!stopping) {
    i++;
    report.churnConnections++;
    const abrupt = i % 2 === 0;
    const c = await client(`${run}-churn${k}`, abrupt ? { will: { topic: `soak/${run}/will/${k}`, payload: Buffer.from("gone"), qos: 0 } } : {}, { expectClose: true });
    if (!c) continue;
    await new Promise((r) => setTimeout(r, 50 + (i % 7) * 20));
    if (abrupt) c.stream.destroy();
    else await c.endAsync().catch(() => {});
    if (i % 10 === 0) {
      // a connection that sends half a CONNECT and goes
      const s = net.connect({ host, port }, () => s.end(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d])));
      s.on("error", () => {});
    }
  }
}

// ---- run ----
say(`soak: ${seconds} s against ${host}:${port}${pid ? ` (pid ${pid})` : ""}, run ${run}`);
await subscriber("all-q0", `soak/${run}/#`, 0);
await subscriber("all-q1", `soak/${run}/#`, 1);
await subscriber("all-q2", `soak/${run}/#`, 2);
await subscriber("p0-q1", `soak/${run}/p0/#`, 1);
await subscriber("a-q2", `soak/${run}/+/a`, 2);
await subscriber("def-q1", `soak/${run}/+/d/e/f`, 1);
const stalledClient = await stalled();
const tasks = [0, 1, 2, 3].map(publisher);
tasks.push(...[0, 1, 2].map(wanderer), ...[0, 1, 2, 3].map(churner));
const sampler = setInterval(() => {
  const r = rssMiB();
  report.rss.maxMiB = Math.max(report.rss.maxMiB, r || 0);
  report.rss.samples.push(Math.round(r));
  if (!opt.json && report.rss.samples.length % 10 === 0) {
    say(`soak: ${report.rss.samples.length} s, RSS ${r.toFixed(1)} MiB, published ${report.published[0] + report.published[1] + report.published[2]}`);
  }
}, 1000);
await new Promise((r) => setTimeout(r, seconds * 1000));
stopping = true;
await Promise.all(tasks);
await new Promise((r) => setTimeout(r, 2000)); // the last messages in flight
clearInterval(sampler);
report.rss.endMiB = rssMiB();

// ---- loss and duplicates ----
for (const s of subscribers) {
  report.received[s.name] = s.count;
  report.duplicates += s.dups;
  for (let p = 0; p < sentBy.length; p++) {
    for (const qos of [0, 1, 2]) {
      const topics = sentBy[p]?.[qos] ?? [];
      const delivered = Math.min(qos, s.qos);
      const set = s.seen.get(`${p}/${qos}`) ?? new Set();
      for (let n = 0; n < topics.length; n++) {
        if (!mqttMatch(s.filter, topics[n])) continue;
        if (set.has(n)) continue;
        if (delivered === 0) report.lostQos0++;
        else {
          report.lostQos12++;
          if (report.lostQos12 <= 5) error(`${s.name} lost QoS ${delivered} message ${n} of publisher ${p}`);
        }
      }
    }
  }
  s.client.end(true);
}
stalledClient?.end(true);
if (report.duplicates > 0) error(`${report.duplicates} duplicate deliveries without DUP`);

if (brokerProc) {
  brokerProc.kill("SIGTERM");
  await new Promise((r) => brokerProc.once("exit", r));
  const m = /stats: (.*)/.exec(brokerOut);
  report.brokerStats = m ? m[1] : null;
  const drops = brokerOut.match(/dropping messages for client [^\n]*/g) ?? [];
  report.brokerDropLines = drops.slice(-5);
  if (/fatal|core stopped/.test(brokerOut)) error("the broker's core stopped (fatal)");
}
delete report.rss.samples;

if (opt.json) console.log(JSON.stringify(report, null, 1));
else {
  const r = report.rss;
  console.log(`soak ${run}: ${seconds} s against ${report.broker}`);
  console.log(`  published   ${JSON.stringify(report.published)} (${(report.publishedBytes / 2 ** 20).toFixed(1)} MiB)`);
  console.log(`  received    ${JSON.stringify(report.received)}`);
  console.log(`  RSS         start ${r.startMiB.toFixed(1)} MiB, max ${r.maxMiB.toFixed(1)} MiB, end ${r.endMiB.toFixed(1)} MiB`);
  console.log(`  drops       QoS 0 lost by reading subscribers ${report.lostQos0}; QoS 1/2 lost ${report.lostQos12}` +
    (report.brokerStats ? `; broker: ${report.brokerStats}` : ""));
  console.log(`  connections ${report.connects} connects (${report.churnConnections} churn), ${report.connectErrors} failed, ${report.unexpectedCloses} closed unexpectedly`);
  console.log(`  errors      ${report.errors.length}${report.errors.length ? "\n    " + report.errors.join("\n    ") : ""}`);
}
process.exit(report.errors.length > 0 ? 1 : 0);

/** MQTT filter matching (no $-topics here). */
function mqttMatch(filter, topic) {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
