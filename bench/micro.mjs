// Micro-benchmarks of the core alone, through its ABI (docs/ABI.md), against the pieces
// Aedes is built from: `mqtt-packet` (the codec of mqtt.js and Aedes) and `qlobber` (the
// matcher of Aedes' persistence and emitter), both as Aedes installs them.
//
//   node bench/micro.mjs [--quick] [--midge PATH] [--match-only]
//
// The codec rows use the pi core embedded in the Midge bundle `--midge` (default
// dist/midge.mjs; bench/run.mjs passes its snapshot), else build/midge-pi.wasm. The
// matcher rows need more subscriptions than any board holds, so they use a core
// compiled here from assembly/ (the working tree) with larger limits and three probes
// (bench/match-entry.ts), into a temporary directory.
//
// The core is a whole broker, so each figure is a path through `feed`, stated next to
// the row: parse = decode, validate and look up subscribers of a PUBLISH nobody is
// subscribed to; match = the same with N subscriptions of offline sessions (QoS 0 to an
// offline session is not queued, so nothing is encoded); relay = parse, match and
// encode a PUBLISH to one subscriber (the `send` import only counts bytes).

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import mqttPacket from "mqtt-packet";
import qlobber from "qlobber";
const { Qlobber } = qlobber;
import { ROOT, embeddedCore } from "./brokers.mjs";
import { connectPacket, publishTemplate, subscribePacket } from "./mqtt.mjs";

const quick = process.argv.includes("--quick");
const matchOnlyMode = process.argv.includes("--match-only");
const midgeArg = process.argv.indexOf("--midge");
const bundle = midgeArg > 0 ? process.argv[midgeArg + 1] : path.join(ROOT, "dist/midge.mjs");
const REPEAT = quick ? 3 : 7;
const WARMUP = quick ? 2 : 3;

/**
 * A core instance. `wasm`: the module's bytes (default: the pi core of the bundle).
 * `hostCopy`: `send` copies the bytes into a 64 KiB slab as host/core.ts does (else it
 * only counts them); `sendAgain` never copies (the host hands on the same buffer).
 */
function loadCore(wasm = embeddedCore(bundle, "pi"), { hostCopy = false } = {}) {
  const module = new WebAssembly.Module(wasm);
  let sentBytes = 0;
  let lastLen = 0;
  let sends = 0;
  let x;
  let mem = null;
  let slab = Buffer.allocUnsafe(65536);
  let slabUsed = 0;
  const env = {
    send: (conn, ptr, len) => {
      sentBytes += len; lastLen = len; sends++;
      if (hostCopy) {
        if (slabUsed + len > slab.length) { slab = Buffer.allocUnsafe(65536); slabUsed = 0; }
        slab.set(mem.subarray(ptr, ptr + len), slabUsed);
        slabUsed += len;
      }
    },
    sendAgain: () => { sentBytes += lastLen; sends++; },
    close: () => {},
    backlog: () => 0,
    pause: () => {},
    resume: () => {},
    wake: () => {},
    log: () => {},
    sha512: () => {}, // the crypto service: no password file in a benchmark
    pbkdf2Sha512: () => {},
    sha1: () => {}, // (WebSocket upgrades: none here)
    // the store service: persistence is off in a benchmark of the core alone
    persistWrite: () => {},
    persistFlush: () => {},
    persistReplace: () => 0,
  };
  x = new WebAssembly.Instance(module, { env }).exports;
  x.init(0, 1);
  mem = new Uint8Array(x.memory.buffer);
  const input = new Uint8Array(x.memory.buffer, x.inputBuffer(), x.inputCapacity());
  let now = 1000;
  return {
    x,
    capacity: x.inputCapacity(),
    sent: () => sentBytes,
    sends: () => sends,
    input,
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
  // warm up: V8 tiers a wasm function up to its optimising compiler only after it has
  // run a while; one pass left some runs measuring the baseline tier (76 vs 118 ns)
  for (let i = 0; i < WARMUP; i++) fn();
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
if (!matchOnlyMode) {
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
// A home gateway's subscriptions (what Zigbee2MQTT, Home Assistant, Node-RED, a voice
// assistant and dashboards subscribe to), `nSubs` of them in sessions of 10, no filter
// twice in one session. Devices, rooms and sites scale with `nSubs`, so a topic matches
// about the same handful of subscriptions at 10,000 as at 100,000:
//   50 %  zigbee2mqtt/<device>/<attribute>        (one Zigbee device per 25 subscriptions)
//   12 %  zigbee2mqtt/<device>
//    6 %  zigbee2mqtt/<device>/+ , zigbee2mqtt/<device>/set/#
//   10 %  stat/<plug>/POWER, tele/<plug>/SENSOR, tele/<plug>/LWT, cmnd/<plug>/+   (Tasmota)
//    8 %  home/<room>/+/<attribute>, home/+/<device>/<attribute>
//    6 %  shellies/<relay>/relay/0, shellies/<relay>/online                         (Shelly)
//    4 %  homeassistant/<component>/<device>/<attribute>/config
//    4 %  hermes/intent/<intent>@<site>, hermes/audioServer/<site>/audioFrame,
//         hermes/hotword/<site>/detected                                           (voice)
// plus 62 broad filters whatever `nSubs` (a few of each, in their own sessions): hermes/#,
// zigbee2mqtt/#, zigbee2mqtt/bridge/#, homeassistant/+/+/config, homeassistant/+/+/+/config,
// homeassistant/status, shellies/+/announce, hermes/hotword/+/detected,
// hermes/dialogueManager/+, hermes/intent/#, hermes/asr/textCaptured.
// 1,000 topics are published, in a similar mix (5 % that nobody subscribes to).
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}
function homeShape(nSubs) {
  const R = rng(nSubs * 7919);
  const pick = (a) => a[Math.floor(R() * a.length)];
  const zigbee = Math.max(100, Math.floor(nSubs / 25));
  const plugs = Math.max(20, Math.floor(nSubs / 200));
  const relays = Math.max(20, Math.floor(nSubs / 300));
  const roomNames = ["kitchen", "living_room", "bedroom", "bathroom", "hallway", "office", "garage", "garden", "attic",
    "basement", "kids_room", "guest_room", "laundry", "dining_room", "porch", "cellar"];
  const rooms = Array.from({ length: Math.max(16, Math.floor(nSubs / 500)) }, (_, i) => `${roomNames[i % 16]}${i < 16 ? "" : `_${i >> 4}`}`);
  const sites = rooms.slice(0, Math.max(10, Math.floor(nSubs / 1000)));
  const attrs = ["state", "brightness", "temperature", "humidity", "battery", "linkquality", "occupancy", "contact", "power",
    "energy", "action", "color_temp", "voltage", "illuminance", "pressure", "availability"];
  const kinds = ["lamp", "sensor", "switch", "plug", "motion", "door", "thermostat", "remote"];
  const dev = (i) => `${rooms[i % rooms.length]}_${kinds[(i >> 4) % kinds.length]}_${i}`;
  const intents = ["SetTimer", "GetWeather", "LightsOn", "LightsOff", "PlayMusic", "GetTime", "SetTemperature", "StopTimer"];
  const components = ["sensor", "binary_sensor", "light", "switch", "climate", "cover"];
  const broad = [["hermes/#", 3], ["zigbee2mqtt/#", 2], ["zigbee2mqtt/bridge/#", 3], ["homeassistant/+/+/config", 2],
    ["homeassistant/+/+/+/config", 2], ["homeassistant/status", 5], ["shellies/+/announce", 5],
    ["hermes/hotword/+/detected", 10], ["hermes/dialogueManager/+", 10], ["hermes/intent/#", 10],
    ["hermes/asr/textCaptured", 10]].flatMap(([f, n]) => Array(n).fill(f));
  const one = () => {
    const u = R() * 100;
    const d = dev(Math.floor(R() * zigbee));
    if (u < 50) return `zigbee2mqtt/${d}/${pick(attrs)}`;
    if (u < 62) return `zigbee2mqtt/${d}`;
    if (u < 68) return R() < 0.5 ? `zigbee2mqtt/${d}/+` : `zigbee2mqtt/${d}/set/#`;
    if (u < 78) {
      const p = `plug${Math.floor(R() * plugs)}`;
      return pick([`stat/${p}/POWER`, `tele/${p}/SENSOR`, `tele/${p}/LWT`, `cmnd/${p}/+`]);
    }
    if (u < 86) return R() < 0.5 ? `home/${pick(rooms)}/+/${pick(attrs)}` : `home/+/${d}/${pick(attrs)}`;
    if (u < 92) return `shellies/shelly1-${Math.floor(R() * relays)}/${R() < 0.5 ? "relay/0" : "online"}`;
    if (u < 96) return `homeassistant/${pick(components)}/${d}/${pick(attrs)}/config`;
    const site = pick(sites);
    return pick([`hermes/intent/${pick(intents)}@${site}`, `hermes/audioServer/${site}/audioFrame`, `hermes/hotword/${site}/detected`]);
  };
  const filters = [];
  const sessions = nSubs / 10;
  const every = Math.floor(sessions / broad.length);
  let b = 0;
  for (let s = 0; s < sessions; s++) {
    const group = new Set();
    if (s % every === 0 && b < broad.length) group.add(broad[b++]);
    while (group.size < 10) group.add(one());
    filters.push(...group);
  }
  const topics = [];
  for (let t = 0; t < 1000; t++) {
    const u = R() * 100;
    const d = dev(Math.floor(R() * zigbee));
    if (u < 35) topics.push(`zigbee2mqtt/${d}/${pick(attrs)}`);
    else if (u < 55) topics.push(`zigbee2mqtt/${d}`);
    else if (u < 65) topics.push(R() < 0.5 ? `tele/plug${Math.floor(R() * plugs)}/SENSOR` : `stat/plug${Math.floor(R() * plugs)}/POWER`);
    else if (u < 75) topics.push(`home/${pick(rooms)}/${d}/${pick(attrs)}`);
    else if (u < 83) topics.push(`shellies/shelly1-${Math.floor(R() * relays)}/relay/0`);
    else if (u < 90) {
      const site = pick(sites);
      topics.push(pick([`hermes/audioServer/${site}/audioFrame`, `hermes/intent/${pick(intents)}@${site}`,
        `hermes/hotword/${site}/detected`, "hermes/asr/textCaptured"]));
    } else if (u < 95) topics.push(`homeassistant/${pick(components)}/${d}/${pick(attrs)}/config`);
    else topics.push(pick(["frigate/events", "octoprint/temperature/bed", "valetudo/robot/state", "esphome/node1/status"]));
  }
  return { filters, topics };
}

/** Limits of the matcher core: the pi board's, with room for 100,000 subscriptions. */
const MATCH_LIMITS = {
  MAX_CONNECTIONS: 16448, MAX_SESSIONS: 16384, CLIENT_ID_MAX: 128, MAX_SUBSCRIPTIONS: 131072, FILTER_MAX: 256,
  MAX_TOPIC_NODES: 262144, MAX_MESSAGES: 131072, CHUNK_SIZE: 256, STORE_BYTES: 67108864, MAX_RETAINED: 65536,
  MAX_DELIVERIES: 65536, QUEUE_MAX: 1000, INFLIGHT_MAX: 32, INFLIGHT_IN_MAX: 64, PACKET_MAX: 2097152,
  BACKLOG_MAX: 1048576, TOPIC_ALIAS_MAX: 10, ALIAS_OUT_MAX: 10, ALIAS_TOPIC_MAX: 128, MAX_SHARE_GROUPS: 1024,
};

/** Compile bench/match-entry.ts with MATCH_LIMITS (the pi board's compiler options); its bytes or an error. */
function matchCore() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "midge-match-"));
  try {
    const out = path.join(dir, "match.wasm");
    const args = ["bench/match-entry.ts", "--outFile", out, "--stackSize", "4096"];
    for (const [k, v] of Object.entries(MATCH_LIMITS)) args.push("--use", `BOARD_${k}=${v}`);
    // asc picks up ./asconfig.json (O3, the no-allocation runtime, the abort handler)
    const r = spawnSync(path.join(ROOT, "node_modules/.bin/asc"), args, { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) return { error: (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ") };
    return { wasm: readFileSync(out) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const big = matchCore();
if (big.error) process.stderr.write(`micro: the matcher core did not compile: ${big.error}\n`);
const matchRows = [];

for (const nSubs of [10000, 100000]) {
  const { filters, topics } = homeShape(nSubs);
  const q = new Qlobber({ separator: "/", wildcard_one: "+", wildcard_some: "#" });
  filters.forEach((f, i) => q.add(f, i));
  const reps = quick ? 20 : 100;
  const ops = topics.length * reps;
  let values = 0;
  q.match(topics[0]);
  const peer = time(ops, () => {
    for (let r = 0; r < reps; r++) for (const t of topics) values += q.match(t).length;
  });
  const perTopic = values / (ops * (REPEAT + 1));
  if (big.error) {
    row(`match, ${nSubs.toLocaleString("en-US")} subscriptions`, NaN, peer, "qlobber match", `the matcher core did not compile (${big.error})`);
    continue;
  }
  // sessions of 10 subscriptions each, kept (clean session 0) after their connection closes
  const build = (online, hostCopy) => {
    const core = loadCore(big.wasm, { hostCopy });
    for (let s = 0; s < nSubs / 10; s++) {
      const c = core.open();
      core.feed(c, connectPacket(`m${s}`, 0, false));
      const subs = [];
      for (let k = 0; k < 10; k++) subs.push(subscribePacket(k + 1, filters[s * 10 + k], 0));
      core.feed(c, Buffer.concat(subs));
      if (!online) core.closed(c);
    }
    if (core.x.stat(9) !== nSubs) throw new Error(`core holds ${core.x.stat(9)} subscriptions, not ${nSubs}`);
    return core;
  };
  const offline = build(false, false);
  const enc = topics.map((t) => Buffer.from(t));
  const probe = (fn) => {
    let n = 0;
    const ns = time(ops, () => {
      for (let r = 0; r < reps; r++) {
        for (const t of enc) {
          offline.input.set(t);
          n += fn(t.length);
        }
      }
    });
    return { ns, per: n / (ops * (REPEAT + 1)) };
  };
  // the loop's own cost (copying the topic into the input window, the call): subtracted from nothing, shown
  const empty = probe(() => 0);
  const walk = probe((len) => offline.x.matchOnly(len));
  const subs = probe((len) => offline.x.matchSubs(len));
  const route = probe((len) => offline.x.routeOnly(len));
  const pub = offline.open();
  offline.feed(pub, connectPacket("micro-pub"));
  const batch = Buffer.concat(topics.map((t) => publishTemplate(t, 16, 0).bytes));
  const feedOffline = time(ops, () => { for (let r = 0; r < reps; r++) offline.feed(pub, batch); });
  // every session online: the PUBLISH is encoded (once per wire form) and handed to `send`
  const online = build(true, true);
  const pub2 = online.open();
  online.feed(pub2, connectPacket("micro-pub"));
  const s0 = online.sends();
  const feedOnline = time(ops, () => { for (let r = 0; r < reps; r++) online.feed(pub2, batch); });
  const deliveries = (online.sends() - s0) / (ops * (REPEAT + 1));
  const n = nSubs.toLocaleString("en-US");
  row(`match, ${n} subscriptions`, subs.ns, peer, "qlobber match",
    `core: trie walk + confirm + list the ${subs.per.toFixed(1)} matching subscriptions (qlobber: ${perTopic.toFixed(1)} values); large-limit core`);
  matchRows.push({ n, peer, perTopic, empty, walk, subs, route, feedOffline, feedOnline, deliveries });
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : "–");
console.log("| micro-benchmark | Midge core (ns/op) | peer | peer (ns/op) | peer ÷ Midge (speed-up) | what is measured |");
console.log("|---|---:|---|---:|---:|---|");
for (const r of results) {
  console.log(`| ${r.what} | ${f(r.midge)} | ${r.peerName} | ${f(r.peer)} | ${Number.isFinite(r.midge) ? (r.peer / r.midge).toFixed(2) + "×" : "–"} | ${r.note} |`);
}

if (matchRows.length) {
  console.log();
  console.log("Matcher, step by step (ns per PUBLISH, median; the large-limit core and home-gateway subscriptions as above; each Midge step includes the ones above it, and the first row, the probe loop's own cost, is in the next three):");
  console.log();
  console.log(`| step | ${matchRows.map((r) => `${r.n} subscriptions`).join(" | ")} |`);
  console.log(`|---|${matchRows.map(() => "---:").join("|")}|`);
  const line = (name, fn) => console.log(`| ${name} | ${matchRows.map(fn).join(" | ")} |`);
  line("probe loop alone (topic copied into the input window, one call into the core)", (r) => f(r.empty.ns));
  line("trie walk (`matchTopic`)", (r) => `${f(r.walk.ns)} (${r.walk.per.toFixed(1)} nodes)`);
  line("+ one filter check per node + every subscription listed (what qlobber returns)", (r) => `${f(r.subs.ns)} (${r.subs.per.toFixed(1)} subscriptions)`);
  line("+ per-session targets (`route`; sessions offline, so nothing encoded)", (r) => `${f(r.route.ns)} (${r.route.per.toFixed(1)} sessions)`);
  line("whole PUBLISH through `feed`, subscribers offline (decode + validate + route)", (r) => f(r.feedOffline));
  line("whole PUBLISH through `feed`, subscribers online (+ encode, `send` copies into a slab)", (r) => `${f(r.feedOnline)} (${r.deliveries.toFixed(1)} deliveries)`);
  line("qlobber `match` (values returned)", (r) => `${f(r.peer)} (${r.perTopic.toFixed(1)})`);
}
