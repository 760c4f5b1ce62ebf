// Micro-benchmarks of the core alone, through its ABI (docs/ABI.md), against the pieces
// Aedes is built from: `mqtt-packet` (the codec of mqtt.js and Aedes) and `qlobber` (the
// matcher of Aedes' persistence and emitter), both as Aedes installs them.
//
//   node bench/micro.mjs [--quick]
//
// The core is a whole broker, so each figure is a path through `feed`, stated next to
// the row: parse = decode, validate and look up subscribers of a PUBLISH nobody is
// subscribed to; match = the same with N subscriptions of offline sessions (QoS 0 to an
// offline session is not queued, so nothing is encoded); relay = parse, match and
// encode a PUBLISH to one subscriber (the `send` import only counts bytes).

import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import mqttPacket from "mqtt-packet";
import qlobber from "qlobber";
const { Qlobber } = qlobber;
import { ROOT } from "./brokers.mjs";
import { connectPacket, publishTemplate, subscribePacket } from "./mqtt.mjs";

const quick = process.argv.includes("--quick");
const REPEAT = quick ? 3 : 7;

function loadCore(board = "pi") {
  const module = new WebAssembly.Module(readFileSync(path.join(ROOT, `build/midge-${board}.wasm`)));
  let sentBytes = 0;
  let lastLen = 0;
  let x;
  const env = {
    send: (conn, ptr, len) => { sentBytes += len; lastLen = len; },
    sendAgain: () => { sentBytes += lastLen; },
    close: () => {},
    backlog: () => 0,
    log: () => {},
    persist: () => {},
  };
  x = new WebAssembly.Instance(module, { env }).exports;
  x.init(0, 1);
  const input = new Uint8Array(x.memory.buffer, x.inputBuffer(), x.inputCapacity());
  let now = 1000;
  return {
    x,
    capacity: x.inputCapacity(),
    sent: () => sentBytes,
    open: () => x.open(now),
    closed: (c) => x.closed(c, now),
    /** Feed all of `bytes` (whole packets) to `conn`. */
    feed(conn, bytes) {
      let at = 0;
      while (at < bytes.length) {
        const n = Math.min(bytes.length - at, input.length);
        input.set(bytes.subarray(at, at + n));
        const used = x.feed(conn, n, now);
        if (used === 0) throw new Error("core consumed nothing");
        at += used;
      }
    },
  };
}

/** Median of `REPEAT` timings of `fn()`, as ns per item (`fn` handles `items` items). */
function time(items, fn) {
  fn(); // warm up
  const t = [];
  for (let i = 0; i < REPEAT; i++) {
    const t0 = performance.now();
    fn();
    t.push(((performance.now() - t0) * 1e6) / items);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

const results = [];
const row = (what, midge, peer, peerName, note) => {
  results.push({ what, midge, peer, peerName, note });
};

// ---- PUBLISH parse ------------------------------------------------------------------
{
  const N = quick ? 20000 : 100000;
  const tpl = publishTemplate("home/kitchen/sensor/temperature", 64, 0).bytes;
  const batch = Buffer.concat(Array.from({ length: N }, () => tpl));
  const core = loadCore();
  const conn = core.open();
  core.feed(conn, connectPacket("micro-parse"));
  const midge = time(N, () => core.feed(conn, batch));
  let count = 0;
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", () => count++);
  const peer = time(N, () => parser.parse(batch));
  if (count === 0) throw new Error("mqtt-packet parsed nothing");
  row("PUBLISH parse, 64 B, 3.1.1", midge, peer, "mqtt-packet parse",
    "core: decode + validate + route to nobody; mqtt-packet: decode to an object");

  // encode: core relays to one subscriber (decode + match + encode); mqtt-packet generates
  const sub = core.open();
  core.feed(sub, connectPacket("micro-sub"));
  core.feed(sub, subscribePacket(1, "home/kitchen/sensor/temperature", 0));
  const before = core.sent();
  const relay = time(N, () => core.feed(conn, batch));
  if (core.sent() - before < N * tpl.length) throw new Error("core did not deliver");
  const packet = { cmd: "publish", topic: "home/kitchen/sensor/temperature", payload: Buffer.alloc(64, 0x61), qos: 0, retain: false, dup: false };
  const gen = time(N, () => { for (let i = 0; i < N; i++) mqttPacket.generate(packet); });
  row("PUBLISH encode, 64 B", relay, gen, "mqtt-packet generate",
    "core: a whole relay (decode + match + encode for 1 subscriber); mqtt-packet: encode only");
  const both = peer + gen;
  row("PUBLISH in and out (decode + encode), 64 B", relay, both, "mqtt-packet parse + generate",
    "core: relay to 1 subscriber; mqtt-packet: parse + generate, with no matching at all");
}

// ---- matcher ------------------------------------------------------------------------
// Home-automation shape: home/<room>/<device>/<attribute>, 50 rooms, 200 devices,
// 8 attributes. Of every 100 filters: 79 exact, 10 `home/<room>/+/<attribute>`,
// 10 `home/+/<device>/<attribute>`, 1 `home/<room>/#`. A topic matches a handful.
function shape(nSubs) {
  const rooms = 50;
  const devices = 200;
  const attrs = ["state", "temperature", "humidity", "battery", "linkquality", "power", "set", "availability"];
  const filters = [];
  let i = 0;
  while (filters.length < nSubs) {
    const r = i % rooms;
    const d = (i * 7) % devices;
    const a = attrs[(i >> 1) % attrs.length];
    const k = i % 100;
    if (k < 79) filters.push(`home/room${r}/dev${d}/${a}`);
    else if (k < 89) filters.push(`home/room${r}/+/${a}`);
    else if (k < 99) filters.push(`home/+/dev${d}/${a}`);
    else filters.push(`home/room${r}/#`);
    i++;
  }
  const topics = [];
  for (let t = 0; t < 1000; t++) topics.push(`home/room${(t * 13) % rooms}/dev${(t * 7 * 13) % devices}/${attrs[(t * 5) % attrs.length]}`);
  return { filters, topics };
}

for (const nSubs of [10000, 100000]) {
  const { filters, topics } = shape(nSubs);
  const q = new Qlobber({ separator: "/", wildcard_one: "+", wildcard_some: "#" });
  filters.forEach((f, i) => q.add(f, i));
  const reps = quick ? 20 : 100;
  let matched = 0;
  const peer = time(topics.length * reps, () => {
    for (let r = 0; r < reps; r++) for (const t of topics) matched += q.match(t).length;
  });
  let midge = NaN;
  let note = "";
  const core = loadCore();
  const maxSubs = 16384;
  const maxSessions = 4096;
  if (nSubs <= maxSubs && nSubs / 10 <= maxSessions) {
    // sessions of 10 subscriptions each, kept (clean session 0) after their connection closes
    for (let s = 0; s < nSubs / 10; s++) {
      const c = core.open();
      core.feed(c, connectPacket(`m${s}`, 0, false));
      for (let k = 0; k < 10; k++) core.feed(c, subscribePacket(k + 1, filters[s * 10 + k], 0));
      core.closed(c);
    }
    const pub = core.open();
    core.feed(pub, connectPacket("micro-pub"));
    const batch = Buffer.concat(topics.map((t) => publishTemplate(t, 16, 0).bytes));
    const withSubs = time(topics.length * reps, () => { for (let r = 0; r < reps; r++) core.feed(pub, batch); });
    midge = withSubs;
    note = `core: decode + match + target collection per PUBLISH (${(matched / (topics.length * (reps * (REPEAT + 1)))).toFixed(1)} matches each); qlobber: match only`;
  } else {
    note = `the pi board holds ${maxSubs.toLocaleString("en-US")} subscriptions in ${maxSessions} sessions: Midge cannot hold ${nSubs.toLocaleString("en-US")}`;
  }
  row(`match, ${nSubs.toLocaleString("en-US")} subscriptions`, midge, peer, "qlobber match", note);
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : "–");
console.log("| micro-benchmark | Midge core (ns/op) | peer | peer (ns/op) | peer ÷ Midge (speed-up) | what is measured |");
console.log("|---|---:|---|---:|---:|---|");
for (const r of results) {
  console.log(`| ${r.what} | ${f(r.midge)} | ${r.peerName} | ${f(r.peer)} | ${Number.isFinite(r.midge) ? (r.peer / r.midge).toFixed(2) + "×" : "–"} | ${r.note} |`);
}
