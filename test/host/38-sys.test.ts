// What the broker tells about itself (issue 16): the `$SYS/broker/...` topics every
// sys_interval seconds (assembly/sys/tree.ts), Prometheus metrics at /metrics and the same
// numbers at /stats.json (assembly/http/serve.ts, on `protocol http` and `protocol
// websockets` listeners), and the live status page at / (assembly/http/status.html).
//
// $SYS is checked against the Debian mosquitto 2.0.11: the same config (sys_interval 1)
// on both, a `$SYS/#` subscriber on each. Every topic a monitoring user reads (MQTT
// Explorer, Home Assistant) must exist on Midge with Mosquitto's name and value format,
// and follow known traffic as Mosquitto's do. /metrics goes through a small parser of the
// Prometheus text format (0.0.4) written here, and its values are compared with $SYS. The
// page runs in headless Chromium: the numbers come from stats.json, they change with
// traffic, nothing is written to the console, and a screenshot lands in build/test-output/.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import mqtt, { type IClientOptions } from "mqtt";
import { BROKER_KIND, HOST, PacketType, ROOT, closeAll, connect, freePort, parsePublish, publish, publishPacket, rawSession, rawSubscribe,
  settle, startBroker, startMosquittoConf, subscribe, uid, which, withTimeout, type Broker, type TestClient } from "./helpers.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-sys-"));
chmodSync(dir, 0o755); // mosquitto started as root reads the ACL file as the user mosquitto
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `lines` to a file in the test's directory; returns its path. */
function file(name: string, lines: string[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, lines.join("\n") + "\n");
  chmodSync(p, 0o644);
  return p;
}

const VERSION = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;

/** Midge (the host under test) with a config file: a listener on any free port, then `lines`. */
function startMidge(lines: string[]): Promise<Broker> {
  return startBroker({ args: ["-c", file(`midge-${uid()}.conf`, [`listener 0 ${HOST}`, "allow_anonymous true", ...lines])] });
}

/** The real mosquitto with the same `lines`. */
async function startMosq(lines: string[]): Promise<Broker> {
  const port = await freePort();
  return startMosquittoConf(file(`mosq-${port}.conf`, [`listener ${port} ${HOST}`, "allow_anonymous true", "persistence false", ...lines]), port);
}

async function stopAll(...brokers: Array<Broker | undefined>): Promise<void> {
  await closeAll();
  for (const b of brokers) if (b) await b.stop();
}

// ---------------------------------------------------------------------------------
// reading $SYS

const PREFIX = "$SYS/broker/";

/** A client subscribed to `filter` at QoS 1 ($SYS comes at the QoS subscribed: it is published at 2). */
async function watch(b: Broker, filter = "$SYS/#", opts: IClientOptions = {}): Promise<TestClient> {
  const c = await connect(b, { clientId: uid("sys"), ...opts });
  await subscribe(c, filter, 1);
  return c;
}

/** The last value seen of each $SYS topic, by its name under $SYS/broker/. */
function latest(c: TestClient): Map<string, string> {
  const m = new Map<string, string>();
  for (const msg of c.inbox.messages) if (msg.topic.startsWith(PREFIX)) m.set(msg.topic.slice(PREFIX.length), msg.payload.toString());
  return m;
}

/** Waits for `n` more $SYS updates (each interval publishes a new uptime). */
async function intervals(c: TestClient, n: number): Promise<void> {
  const uptimes = () => c.inbox.on(`${PREFIX}uptime`).length;
  const have = uptimes();
  await c.inbox.until(() => uptimes() >= have + n, 2500 * n + 1000, `${n} more $SYS/broker/uptime updates`);
}

/** A number from a $SYS value ("12", "12 seconds", "0.45"); NaN when missing, or `missing`. */
function num(m: Map<string, string>, topic: string, missing = NaN): number {
  const v = m.get(topic);
  return v === undefined ? missing : Number.parseFloat(v);
}

const INTEGER = /^(0|[1-9]\d*)$/;
const SECONDS = /^(0|[1-9]\d*) seconds$/;
const TWO_DECIMALS = /^\d+\.\d\d$/;
const VERSION_TEXT = /^\S+ version \d+\.\d+\.\d+$/;

/** The format class of a value, to compare Midge's with Mosquitto's topic by topic. */
function formatOf(v: string): string {
  for (const [name, re] of [["integer", INTEGER], ["N seconds", SECONDS], ["two decimals", TWO_DECIMALS], ["<name> version x.y.z", VERSION_TEXT]] as const) {
    if (re.test(v)) return name;
  }
  return `other (${JSON.stringify(v)})`;
}

const LOADS = ["messages/received", "messages/sent", "publish/received", "publish/sent", "publish/dropped",
  "bytes/received", "bytes/sent", "connections", "sockets"].flatMap((n) => ["1min", "5min", "15min"].map((w) => `load/${n}/${w}`));

/** What a monitoring user reads, and the format of each value. */
const MONITORED: Array<[string, RegExp]> = [
  ["version", VERSION_TEXT],
  ["uptime", SECONDS],
  ...["connected", "disconnected", "total", "maximum", "expired"].map((n): [string, RegExp] => [`clients/${n}`, INTEGER]),
  ...["received", "sent", "stored"].map((n): [string, RegExp] => [`messages/${n}`, INTEGER]),
  ...["received", "sent", "dropped"].map((n): [string, RegExp] => [`publish/messages/${n}`, INTEGER]),
  ["bytes/received", INTEGER],
  ["bytes/sent", INTEGER],
  ...LOADS.map((t): [string, RegExp] => [t, TWO_DECIMALS]),
  ["subscriptions/count", INTEGER],
  ["retained messages/count", INTEGER],
  ["store/messages/count", INTEGER],
  ["heap/current", INTEGER],
];

const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
const skipDiff = BROKER_KIND === "mosquitto" ? "compares Midge with mosquitto itself" : !mosquitto ? "no mosquitto (apt-get install mosquitto)" : false;
const skipMidge = BROKER_KIND === "mosquitto" ? "Midge's own HTTP listeners" : false;

describe("$SYS against mosquitto", { skip: skipDiff }, () => {
  test("the topics a monitoring user reads: Mosquitto's names and value formats, retained, QoS 2, unchanged values not repeated", async (t) => {
    let theirs: Broker | undefined, ours: Broker | undefined;
    try {
      [theirs, ours] = await Promise.all([startMosq(["sys_interval 1"]), startMidge(["sys_interval 1"])]);
      const [mw, ow] = await Promise.all([watch(theirs), watch(ours)]);
      await Promise.all([intervals(mw, 3), intervals(ow, 3)]);
      const mosq = latest(mw), midge = latest(ow);

      const lacking = [...mosq.keys()].filter((k) => !midge.has(k)).sort();
      t.diagnostic(`Mosquitto topics Midge lacks: ${lacking.length ? lacking.join(", ") : "none"}`);
      t.diagnostic(`Midge's own topics: ${[...midge.keys()].filter((k) => !mosq.has(k)).length} (${[...midge.keys()].filter((k) => !mosq.has(k) && !k.startsWith("midge/")).join(", ") || "all under midge/"})`);
      for (const [topic, format] of MONITORED) assert.match(mosq.get(topic) ?? "(missing)", format, `the test's own premise: mosquitto publishes ${topic}`);
      const missing = MONITORED.map(([topic]) => topic).filter((topic) => lacking.includes(topic));
      assert.deepEqual(missing, [], "monitored topics Midge does not publish");
      for (const [topic, format] of MONITORED) assert.match(midge.get(topic)!, format, `the format of $SYS/broker/${topic}`);
      const formats = [...mosq.keys()].filter((k) => midge.has(k))
        .map((k) => `${k}: ${formatOf(midge.get(k)!)}`);
      assert.deepEqual(formats, [...mosq.keys()].filter((k) => midge.has(k)).map((k) => `${k}: ${formatOf(mosq.get(k)!)}`),
        "every topic both publish has the same value format");
      assert.equal(midge.get("version"), `midge version ${VERSION}`);
      assert.match(midge.get("midge/tables/sessions/size") ?? "", INTEGER, "Midge's own branch: each table's size");
      assert.match(midge.get("midge/tables/sessions/used") ?? "", INTEGER, "Midge's own branch: each table's use");

      // as Mosquitto: the first of each arrives retained, later ones live (MQTT 3.1.1:
      // retain 0), at the QoS subscribed (1); what does not change (the version,
      // no session expired) arrives once in three intervals
      const manner = (w: TestClient) => {
        const up = w.inbox.on(`${PREFIX}uptime`);
        return {
          firstRetained: up[0].retain,
          laterRetained: up.slice(1).some((m) => m.retain),
          qos: [...new Set(w.inbox.messages.map((m) => m.qos))],
          version: w.inbox.on(`${PREFIX}version`).length,
          expired: w.inbox.on(`${PREFIX}clients/expired`).length,
          uptimes: up.length >= 3,
        };
      };
      // both publish $SYS at QoS 2 (Mosquitto's SYS_TREE_QOS), so a QoS 1 subscriber gets QoS 1
      assert.deepEqual(manner(mw), { firstRetained: true, laterRetained: false, qos: [1], version: 1, expired: 1, uptimes: true });
      assert.deepEqual(manner(ow), manner(mw));
      assert.equal(ow.inbox.on(`${PREFIX}midge/tables/sessions/size`).length, 1, "a table's size never changes: published once");

      // a late subscriber reads the retained values at once
      const late = await Promise.all([theirs, ours].map((b) => watch(b, `${PREFIX}version`)));
      const got = await Promise.all(late.map((c) => c.inbox.wait(1, 3000)));
      assert.deepEqual(got.map(([m]) => m.retain), [true, true]);
    } finally {
      await stopAll(theirs, ours);
    }
  });

  test("known traffic: 10 clients, 1,000 QoS 0 publishes; the counters say so, as Mosquitto's", async (t) => {
    let theirs: Broker | undefined, ours: Broker | undefined;
    try {
      [theirs, ours] = await Promise.all([startMosq(["sys_interval 1"]), startMidge(["sys_interval 1"])]);
      const brokers = { mosquitto: theirs, midge: ours };
      const seen: Record<string, { before: Map<string, string>; after: Map<string, string> }> = {};
      for (const [name, b] of Object.entries(brokers)) {
        const w = await watch(b);
        await intervals(w, 2);
        const before = latest(w);
        const clients: TestClient[] = [];
        for (let i = 0; i < 10; i++) clients.push(await connect(b, { clientId: uid(`load${i}`) }));
        const topic = `traffic/${uid()}`;
        await subscribe(clients[0], topic);
        for (let i = 0; i < 1000; i++) void publish(clients[1], topic, `message ${i}`);
        await clients[0].inbox.wait(1000, 15_000);
        await intervals(w, 2);
        seen[name] = { before, after: latest(w) };
        t.diagnostic(`${name}: ${["clients/connected", "clients/total", "clients/maximum", "subscriptions/count", "publish/messages/received",
          "publish/messages/sent", "bytes/received", "messages/received", "load/publish/received/1min"]
          .map((k) => `${k} ${before.get(k)} -> ${seen[name].after.get(k)}`).join(", ")}`);
        await closeAll(); // these clients leave before the other broker's arrive
      }
      const figures = ({ before, after }: { before: Map<string, string>; after: Map<string, string> }) => ({
        connected: num(after, "clients/connected"),
        total: num(after, "clients/total"),
        subscriptions: num(after, "subscriptions/count"),
        publishReceivedGrowth: num(after, "publish/messages/received") - num(before, "publish/messages/received", 0) >= 1000,
        publishSentGrowth: num(after, "publish/messages/sent") - num(before, "publish/messages/sent", 0) >= 1000,
        bytesReceivedGrowth: num(after, "bytes/received") - num(before, "bytes/received", 0) >= 1000 * "message 999".length,
        packetsReceivedGrowth: num(after, "messages/received") - num(before, "messages/received", 0) >= 1000,
        loadPublishReceived: num(after, "load/publish/received/1min") > 0,
      });
      const mosq = figures(seen.mosquitto), midge = figures(seen.midge);
      assert.ok(mosq.connected >= 10 && mosq.subscriptions >= 1, `the test's own premise: ${JSON.stringify(mosq)}`);
      assert.deepEqual(midge, mosq);
    } finally {
      await stopAll(theirs, ours);
    }
  });

  test("[MQTT-4.7.2-1] filters starting with a wildcard (#, +/...) never match $SYS topics", async () => {
    let theirs: Broker | undefined, ours: Broker | undefined;
    try {
      [theirs, ours] = await Promise.all([startMosq(["sys_interval 1"]), startMidge(["sys_interval 1"])]);
      const outcome = async (b: Broker) => {
        const w = await watch(b, `${PREFIX}uptime`);
        const all = await connect(b, { clientId: uid("hash") });
        await subscribe(all, { "#": 0, "+/broker/#": 0, "+/+/uptime": 0 });
        await intervals(w, 2);
        const marker = `marker/${uid()}`;
        await publish(w, marker, "here");
        await all.inbox.waitTopic(marker);
        return { dollar: all.inbox.messages.filter((m) => m.topic.startsWith("$")).map((m) => m.topic), marker: true };
      };
      const [mosq, midge] = await Promise.all([outcome(theirs), outcome(ours)]);
      assert.deepEqual(mosq, { dollar: [], marker: true });
      assert.deepEqual(midge, mosq);
    } finally {
      await stopAll(theirs, ours);
    }
  });

  test("sys_interval 0: no $SYS at all; the default (10): one update at start, none in the next 2.5 s", async () => {
    const brokers: Broker[] = [];
    try {
      brokers.push(...await Promise.all([startMosq(["sys_interval 0"]), startMidge(["sys_interval 0"]), startMosq([]), startMidge([])]));
      const watchers = await Promise.all(brokers.map((b) => watch(b)));
      await settle(2500);
      const summary = (w: TestClient) => ({
        messages: w.inbox.messages.length > 0,
        uptimes: w.inbox.on(`${PREFIX}uptime`).map((m) => m.retain),
      });
      const [mosq0, midge0, mosq10, midge10] = watchers.map(summary);
      assert.deepEqual(mosq0, { messages: false, uptimes: [] });
      assert.deepEqual(midge0, mosq0, "sys_interval 0");
      assert.deepEqual(mosq10, { messages: true, uptimes: [true] });
      assert.deepEqual(midge10, mosq10, "the default sys_interval");
    } finally {
      await stopAll(...brokers);
    }
  });

  test("an ACL file: a user denied $SYS/# reads none of it; a user allowed reads it", async () => {
    const acl = file("sys.acl", [
      "user watcher", "topic read $SYS/#", "",
      "user blind", "topic read $SYS/broker/#", "topic deny $SYS/#", "topic readwrite blind/#",
    ]);
    let theirs: Broker | undefined, ours: Broker | undefined;
    try {
      [theirs, ours] = await Promise.all([startMosq(["sys_interval 1", `acl_file ${acl}`]), startMidge(["sys_interval 1", `acl_file ${acl}`])]);
      const outcome = async (b: Broker) => {
        const watcher = await watch(b, "$SYS/#", { username: "watcher" });
        // raw: mqtt (npm) rejects a SUBACK with 0x80, which Midge may answer here
        const { raw: blind } = await rawSession(b, { clientId: uid("blind"), username: "blind" });
        const granted = await rawSubscribe(blind, 1, [["$SYS/#", 0], ["$SYS/broker/uptime", 0], ["blind/#", 0]]);
        await intervals(watcher, 2);
        blind.write(publishPacket({ topic: "blind/marker", payload: "mine" })); // it still reads what it may
        const topics: string[] = [];
        for (let i = 0; i < 500 && !topics.includes("blind/marker"); i++) topics.push(parsePublish(await blind.expect(PacketType.PUBLISH)).topic);
        return { granted, watcher: watcher.inbox.messages.length > 10, blind: topics };
      };
      const [mosq, midge] = await Promise.all([outcome(theirs), outcome(ours)]);
      assert.deepEqual(mosq.blind, ["blind/marker"], "the test's own premise");
      assert.deepEqual({ watcher: midge.watcher, blind: midge.blind }, { watcher: mosq.watcher, blind: mosq.blind });
      // Mosquitto 2.0 grants a filter that can reach nothing; Midge refuses it (33-acl)
      assert.deepEqual(mosq.granted, [0, 0, 0]);
      assert.deepEqual(midge.granted.slice(2), [0]);
      for (const g of midge.granted.slice(0, 2)) assert.ok(g === 0 || g === 0x80, `SUBACK ${g}`);
    } finally {
      await stopAll(theirs, ours);
    }
  });
});

// ---------------------------------------------------------------------------------
// the Prometheus text format (0.0.4), parsed strictly

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { name: string; type: string; help: string; samples: Sample[] }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Labels `a="x",b="y"` (escapes \\ \" \n); throws on anything else. */
function parseLabels(s: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf("=", i);
    if (eq < 0) throw new Error(`${where}: a label without '='`);
    const name = s.slice(i, eq).trim();
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`${where}: bad label name '${name}'`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: label ${name}'s value is not quoted`);
    let v = "";
    let j = eq + 2;
    for (;; j++) {
      if (j >= s.length) throw new Error(`${where}: label ${name}'s value does not end`);
      const c = s[j];
      if (c === '"') break;
      if (c === "\\") {
        const e = s[++j];
        if (e === "\\" || e === '"') v += e;
        else if (e === "n") v += "\n";
        else throw new Error(`${where}: bad escape \\${e} in label ${name}`);
      } else v += c;
    }
    labels[name] = v;
    i = j + 1;
    if (i < s.length) {
      if (s[i] !== ",") throw new Error(`${where}: ',' expected after label ${name}`);
      i++;
    }
  }
  return labels;
}

function parseValue(s: string, where: string): number {
  if (s === "NaN") return NaN;
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: '${s}' is not a number`);
  return Number(s);
}

/**
 * Every family of a scrape: HELP and TYPE once each and before the family's samples, every
 * sample of a family with a TYPE, a family's samples together, counters named *_total,
 * label syntax, numeric values, no sample twice, and a final newline. `strict` false lets
 * a family's HELP and TYPE repeat (unchanged) and its samples be apart, for the tests of
 * the values, so that they say something while the grouping is wrong.
 */
function parsePrometheus(text: string, strict = true): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the text does not end with a newline");
  if (text.includes("\r")) throw new Error("a carriage return in the text");
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current = "";
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, k) => {
    const where = `line ${k + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // a comment
      const [, what, name, rest = ""] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (!strict && (what === "HELP" ? helps.get(name) === rest : families.get(name)?.type === rest.trim())) return;
      if (closed.has(name) || families.get(name)?.samples.length) throw new Error(`${where}: ${what} after ${name}'s samples`);
      if (what === "HELP") {
        if (helps.has(name)) throw new Error(`${where}: a second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`${where}: a bad escape in HELP`);
        helps.set(name, rest);
      } else {
        if (families.has(name)) throw new Error(`${where}: a second TYPE for ${name}`);
        if (!TYPES.has(rest.trim())) throw new Error(`${where}: unknown type '${rest}'`);
        if (rest.trim() === "counter" && !name.endsWith("_total")) throw new Error(`${where}: counter ${name} does not end in _total`);
        families.set(name, { name, type: rest.trim(), help: helps.get(name) ?? "", samples: [] });
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const [, name, labelText = "", valueText] = m;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const family = families.get(name) ?? (["histogram", "summary"].includes(families.get(base)?.type ?? "") ? families.get(base) : undefined);
    if (!family) throw new Error(`${where}: ${name} has no TYPE line before it`);
    if (!helps.has(family.name)) throw new Error(`${where}: ${family.name} has no HELP line before it`);
    family.help = helps.get(family.name)!;
    if (strict && closed.has(family.name)) throw new Error(`${where}: ${family.name}'s samples are not together`);
    if (current !== family.name) {
      if (current) closed.add(current);
      current = family.name;
    }
    const labels = parseLabels(labelText, where);
    const key = `${name}{${Object.entries(labels).sort().map(([a, b]) => `${a}=${b}`).join(",")}}`;
    if (seen.has(key)) throw new Error(`${where}: ${key} twice`);
    seen.add(key);
    family.samples.push({ name, labels, value: parseValue(valueText, where) });
  });
  for (const f of families.values()) if (f.samples.length === 0) throw new Error(`${f.name}: a TYPE without samples`);
  return families;
}

/** The one unlabelled sample of `name`. */
function value(families: Map<string, Family>, name: string): number {
  const f = families.get(name);
  assert.ok(f, `no metric ${name}`);
  const s = f.samples.filter((x) => Object.keys(x.labels).length === 0);
  assert.equal(s.length, 1, `${name}: one unlabelled sample`);
  return s[0].value;
}

/** `name{table="…"}` by table. */
function byTable(families: Map<string, Family>, name: string): Map<string, number> {
  const f = families.get(name);
  assert.ok(f, `no metric ${name}`);
  return new Map(f.samples.map((s) => [s.labels.table, s.value]));
}

test("the Prometheus parser of this file refuses what the format forbids", () => {
  const ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# HELP b B \\\\ \\n.\n# TYPE b gauge\nb{x=\"1\",y=\"q\\\"\\\\\\n\"} -1.5e3\nb{x=\"2\",} NaN 1700000000\n";
  const fams = parsePrometheus(ok);
  assert.deepEqual(fams.get("b")!.samples.map((s) => s.labels), [{ x: "1", y: "q\"\\\n" }, { x: "2" }]);
  const bad: Array<[string, RegExp]> = [
    ["a 1\n", /no TYPE line/],
    ["# TYPE a gauge\na 1\n", /no HELP line/],
    ["# HELP a A\n# TYPE a counter\na 1\n", /does not end in _total/],
    ["# HELP a A\n# TYPE a gauge\na one\n", /not a number/],
    ["# HELP a A\n# TYPE a gauge\na{x=1} 1\n", /not quoted/],
    ["# HELP a A\n# TYPE a gauge\na{x=\"1\"y=\"2\"} 1\n", /',' expected/],
    ["# HELP a A\n# TYPE a gauge\na{0x=\"1\"} 1\n", /bad label name/],
    ["# HELP a A\n# TYPE a gauge\na 1\na 2\n", /twice/],
    ["# HELP a A\n# TYPE a gauge\na 1\n# HELP b B\n# TYPE b gauge\nb 1\na{x=\"\"} 2\n", /not together/],
    ["# HELP a A\n# TYPE a gauge\na 1\n# TYPE a gauge\n", /after a's samples/],
    ["# HELP a A\n# TYPE a gauge\na 1", /newline/],
    ["# HELP a A\n# TYPE a meter\na 1\n", /unknown type/],
  ];
  for (const [text, error] of bad) assert.throws(() => parsePrometheus(text), error, JSON.stringify(text));
  const apart = "# HELP a A\n# TYPE a gauge\na{t=\"1\"} 1\n# HELP b B\n# TYPE b gauge\nb 1\n# HELP a A\n# TYPE a gauge\na{t=\"2\"} 2\n";
  assert.throws(() => parsePrometheus(apart), /HELP after a's samples/);
  assert.deepEqual(parsePrometheus(apart, false).get("a")!.samples.map((x) => x.value), [1, 2]);
  assert.throws(() => parsePrometheus(apart.replace("# TYPE a gauge\na{t=\"2\"}", "# TYPE a counter\na{t=\"2\"}"), false), /TYPE after a's samples/);
});

// ---------------------------------------------------------------------------------
// HTTP, by hand: the request as written, the answer as sent, and the close

interface HttpAnswer { status: number; statusLine: string; headers: Map<string, string>; body: string; closed: boolean }

/** Writes `request` on a new connection to `port`, reads until the broker closes it (5 s at most). */
async function http(port: number, request: string | Buffer): Promise<HttpAnswer> {
  const sock = net.connect({ host: HOST, port });
  sock.on("error", () => {});
  let data = Buffer.alloc(0);
  sock.on("data", (d: Buffer) => (data = Buffer.concat([data, d])));
  const closed = new Promise<boolean>((resolve) => sock.once("close", () => resolve(true)));
  await withTimeout(new Promise<void>((resolve, reject) => { sock.once("connect", resolve); sock.once("error", reject); }), 5000, "TCP connect");
  sock.write(request);
  const didClose = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  sock.destroy();
  const end = data.indexOf("\r\n\r\n");
  assert.ok(end > 0, `an HTTP answer: ${JSON.stringify(data.toString("latin1").slice(0, 200))}`);
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  const body = data.subarray(end + 4);
  if (headers.has("content-length")) assert.equal(body.length, Number(headers.get("content-length")), "Content-Length is the body's length");
  return { status: Number(statusLine.split(" ")[1]), statusLine, headers, body: body.toString("utf8"), closed: didClose };
}

const get = (port: number, target: string) => http(port, `GET ${target} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUser-Agent: midge-test\r\n\r\n`);

/** GET `target`, insisting on 200 and the close. */
async function fetchOk(port: number, target: string): Promise<HttpAnswer> {
  const a = await get(port, target);
  assert.equal(a.status, 200, `GET ${target} on :${port}: ${a.statusLine}\n${a.body.slice(0, 300)}`);
  assert.ok(a.closed, "the broker closes the connection after the answer");
  return a;
}

/** Midge with an MQTT listener, a `protocol http` one and a `protocol websockets` one. */
async function startHttp(extra: string[] = ["sys_interval 1"]): Promise<{ broker: Broker; httpPort: number; wsPort: number }> {
  const [httpPort, wsPort] = [await freePort(), await freePort()];
  const broker = await startMidge([`listener ${httpPort} ${HOST}`, "protocol http", `listener ${wsPort} ${HOST}`, "protocol websockets", ...extra]);
  // the first listener's line starts the broker's test; the others follow it
  await withTimeout((async () => { while ((broker.output().match(/ listening on /g) ?? []).length < 3) await settle(20); })(), 5000, "three listening lines");
  assert.match(broker.output(), new RegExp(`listening on ${HOST.replace(/\./g, "\\.")}:${httpPort} \\(http\\)`));
  return { broker, httpPort, wsPort };
}

const TABLES = ["connections", "sessions", "subscriptions", "topic_nodes", "messages", "message_store", "retained", "deliveries", "qos2_received", "share_groups"];

describe("/metrics and /stats.json", { skip: skipMidge }, () => {
  test("/metrics on both listeners is the Prometheus text format (0.0.4): each family once, HELP and TYPE first, midge_ names", async (t) => {
    const { broker, httpPort, wsPort } = await startHttp([]);
    try {
      for (const port of [httpPort, wsPort]) {
        const a = await fetchOk(port, "/metrics");
        assert.match(a.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        const names = [...parsePrometheus(a.body, false).keys()];
        if (port === httpPort) t.diagnostic(`${names.length} metric families: ${names.join(" ")}`);
        const m = parsePrometheus(a.body);
        assert.deepEqual(names.filter((n) => !n.startsWith("midge_")), [], "every name starts with midge_");
        assert.equal(m.get("midge_clients_connected")?.type, "gauge");
        assert.equal(m.get("midge_messages_received_total")?.type, "counter");
        assert.deepEqual(m.get("midge_info")?.samples.map((s) => s.labels), [{ version: VERSION }]);
        assert.deepEqual(m.get("midge_table_used")?.samples.map((s) => s.labels.table), TABLES);
      }
    } finally {
      await stopAll(broker);
    }
  });

  test("/metrics values are $SYS's after known traffic (10 clients, 1,000 publishes), on both listeners", async () => {
    const { broker, httpPort, wsPort } = await startHttp();
    try {
      const w = await watch(broker);
      const clients: TestClient[] = [];
      for (let i = 0; i < 10; i++) clients.push(await connect(broker, { clientId: uid(`m${i}`) }));
      const topic = `metrics/${uid()}`;
      await subscribe(clients[0], topic);
      for (let i = 0; i < 1000; i++) void publish(clients[1], topic, `m${i}`);
      await clients[0].inbox.wait(1000, 15_000);
      await intervals(w, 2);
      const sys = latest(w);
      assert.ok(num(sys, "publish/messages/received") >= 1000);

      for (const port of [httpPort, wsPort]) {
        const m = parsePrometheus((await fetchOk(port, "/metrics")).body, false);
        // gauges that stand still while nobody connects: what $SYS says
        const same: Array<[string, string]> = [["midge_clients_connected", "clients/connected"], ["midge_clients_total", "clients/total"],
          ["midge_clients_disconnected", "clients/disconnected"], ["midge_clients_maximum", "clients/maximum"],
          ["midge_subscriptions", "subscriptions/count"], ["midge_share_groups", "shared_subscriptions/count"],
          ["midge_memory_bytes", "heap/current"], ["midge_clients_expired_total", "clients/expired"]];
        assert.deepEqual(same.map(([p]) => `${p} ${value(m, p)}`), same.map(([p, s]) => `${p} ${num(sys, s)}`));
        assert.equal(value(m, "midge_clients_connected"), 11, "the watcher and the 10 clients");
        // counters only grow: at least what $SYS said before the scrape
        const grows: Array<[string, string]> = [["midge_messages_received_total", "publish/messages/received"],
          ["midge_messages_sent_total", "publish/messages/sent"], ["midge_packets_received_total", "messages/received"],
          ["midge_packets_sent_total", "messages/sent"], ["midge_bytes_received_total", "bytes/received"],
          ["midge_bytes_sent_total", "bytes/sent"], ["midge_messages_dropped_total", "publish/messages/dropped"],
          ["midge_publish_bytes_received_total", "publish/bytes/received"], ["midge_uptime_seconds", "uptime"]];
        for (const [p, s] of grows) assert.ok(value(m, p) >= num(sys, s), `${p} ${value(m, p)} >= $SYS/broker/${s} ${num(sys, s)}`);
        // the tables: every one, used <= size, as Midge's $SYS branch says (the connections
        // table holds this scrape's connection too)
        const used = byTable(m, "midge_table_used"), size = byTable(m, "midge_table_size");
        assert.deepEqual([...used.keys()], TABLES);
        assert.deepEqual([...size.keys()], TABLES);
        for (const name of TABLES) {
          assert.ok(used.get(name)! <= size.get(name)! && size.get(name)! > 0, name);
          assert.equal(size.get(name), num(sys, `midge/tables/${name}/size`), `${name} size`);
          if (name !== "connections") assert.equal(used.get(name), num(sys, `midge/tables/${name}/used`), `${name} used`);
        }
        assert.equal(used.get("connections"), num(sys, "midge/tables/connections/used") + 1, "the scrape's own connection");
        assert.equal(used.get("sessions"), 11);
      }
    } finally {
      await stopAll(broker);
    }
  });

  test("/stats.json: the same names and numbers as /metrics, the tables and the listeners", async () => {
    const { broker, httpPort, wsPort } = await startHttp();
    try {
      const c = await connect(broker, { clientId: uid("json") });
      await subscribe(c, "json/#");
      for (const port of [httpPort, wsPort]) {
        const a = await fetchOk(port, "/stats.json");
        assert.match(a.headers.get("content-type") ?? "", /^application\/json/);
        const s = JSON.parse(a.body) as { version: string; now: number; metrics: Record<string, number>; tables: Record<string, [number, number]>; listeners: string[] };
        const m = parsePrometheus((await fetchOk(port, "/metrics")).body, false);
        assert.equal(s.version, VERSION);
        assert.equal(typeof s.now, "number");
        const plain = [...m.values()].filter((f) => f.samples.every((x) => Object.keys(x.labels).length === 0)).map((f) => f.name.replace(/^midge_/, ""));
        assert.deepEqual(Object.keys(s.metrics).sort(), plain.sort());
        for (const [k, v] of Object.entries(s.metrics)) assert.ok(Number.isFinite(v), k);
        for (const k of ["clients_connected", "clients_total", "subscriptions", "clients_maximum", "memory_bytes"]) {
          assert.equal(s.metrics[k], value(m, `midge_${k}`), k);
        }
        assert.equal(s.metrics.clients_connected, 1);
        assert.deepEqual(Object.keys(s.tables), TABLES);
        const size = byTable(m, "midge_table_size");
        for (const name of TABLES) assert.equal(s.tables[name][1], size.get(name), name);
        assert.ok(s.tables.subscriptions[0] >= 1);
        assert.deepEqual(s.listeners.slice(1), [`${httpPort} ${HOST} http`, `${wsPort} ${HOST} websockets`]);
        // the first listener is `--port 0`: the port the system chose, which the host reported (`listening`)
        assert.equal(s.listeners[0].split(" ")[0], String(broker.port), "the bound port, not 0");
      }
    } finally {
      await stopAll(broker);
    }
  });

  test("other paths: 404; a query string is ignored; the answer is the whole HTTP response, then the close", async () => {
    const { broker, httpPort, wsPort } = await startHttp([]);
    try {
      for (const port of [httpPort, wsPort]) {
        for (const target of ["/nope", "/metrics/x", "/favicon.ico", "/stats.json.bak", "/METRICS"]) {
          const a = await get(port, target);
          assert.equal(a.status, 404, `${target} on :${port}: ${a.statusLine}`);
          assert.ok(a.closed);
        }
        assert.equal((await fetchOk(port, "/metrics?name=midge_uptime_seconds")).status, 200);
        const page = await fetchOk(port, "/");
        assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
        assert.equal((await fetchOk(port, "/index.html")).body, page.body);
      }
      broker.assertAlive();
    } finally {
      await stopAll(broker);
    }
  });

  test("the http listener refuses a WebSocket upgrade and MQTT; the websockets listener still carries MQTT", async () => {
    const { broker, httpPort, wsPort } = await startHttp([]);
    try {
      const upgrade = (port: number) => http(port, [`GET /mqtt HTTP/1.1`, `Host: ${HOST}:${port}`, "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mqtt", "", ""].join("\r\n"));
      const refused = await upgrade(httpPort);
      assert.match(refused.statusLine, /^HTTP\/1\.1 4\d\d /);
      assert.ok(refused.closed);
      const mqttBytes = Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]);
      const notHttp = await http(httpPort, mqttBytes);
      assert.match(notHttp.statusLine, /^HTTP\/1\.1 400 /);
      assert.ok(notHttp.closed);
      // over the websockets listener: the upgrade (raw), then mqtt (npm) over ws://
      const sock = net.connect({ host: HOST, port: wsPort });
      const head = await withTimeout(new Promise<string>((resolve, reject) => {
        let s = "";
        sock.on("data", (d) => { s += d.toString("latin1"); if (s.includes("\r\n\r\n")) resolve(s); });
        sock.on("error", reject);
        sock.on("connect", () => sock.write([`GET /mqtt HTTP/1.1`, `Host: ${HOST}:${wsPort}`, "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mqtt", "", ""].join("\r\n")));
      }), 5000, "the upgrade answer");
      sock.destroy();
      assert.match(head, /^HTTP\/1\.1 101 /);
      const c = await mqtt.connectAsync(`ws://${HOST}:${wsPort}/mqtt`, { reconnectPeriod: 0, clientId: uid("ws"), connectTimeout: 5000 });
      try {
        const topic = `ws/${uid()}`;
        await c.subscribeAsync(topic);
        const got = new Promise<string>((r) => c.once("message", (_t, p) => r(p.toString())));
        await c.publishAsync(topic, "over ws");
        assert.equal(await withTimeout(got, 5000, "the message over ws"), "over ws");
        const m = parsePrometheus((await fetchOk(httpPort, "/metrics")).body, false);
        assert.equal(value(m, "midge_clients_connected"), 1, "the WebSocket client is counted");
      } finally {
        await c.endAsync();
      }
      broker.assertAlive();
    } finally {
      await stopAll(broker);
    }
  });
});

// ---------------------------------------------------------------------------------
// the status page in a real browser

const chromium = ["chromium", "chromium-browser", "google-chrome"].map(which).find((p) => p !== null) ?? null;
const OUTPUT = path.join(ROOT, "build", "test-output");

interface Run { stdout: string; console: string[] }

/** Headless Chromium with `args` then `url`; its stdout and the console lines of the page
 *  (`--enable-logging=stderr` writes every console message and uncaught error as one). */
async function browse(url: string, args: string[], ms = 30_000): Promise<Run> {
  const profile = mkdtempSync(path.join(os.tmpdir(), "midge-chromium-"));
  const p = spawn(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    `--user-data-dir=${profile}`, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=6000", ...args, url], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  try {
    await withTimeout(exited, ms, `chromium ${args.join(" ")} ${url}`);
  } finally {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGKILL");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    }
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
  return { stdout, console: stderr.split("\n").filter((l) => /:CONSOLE[:(]/.test(l)) };
}

/** The text of the element with `id` in a dumped DOM. */
function text(dom: string, id: string): string {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom);
  assert.ok(m, `#${id} in the page`);
  return m[1];
}

/** The figures the page filled in from stats.json. */
function figures(dom: string) {
  const bars = [...dom.matchAll(/<div class="bar"><div class="t"><span>([^<]*)<\/span><span>([^<]*)<\/span>/g)].map((m) => [m[1], m[2]]);
  const listeners = [...dom.matchAll(/<tr><td>([^<]*)<\/td><td>(http|websockets|mqtt)<\/td><\/tr>/g)].map((m) => `${m[1]} ${m[2]}`);
  return {
    state: text(dom, "state"), version: text(dom, "version"), uptime: text(dom, "uptime"),
    connected: text(dom, "connected"), sessions: text(dom, "sessions"), subs: text(dom, "subs"),
    inRate: text(dom, "inRate"), bars: Object.fromEntries(bars), listeners,
  };
}

describe("the status page in headless Chromium", { skip: skipMidge || (chromium === null ? "chromium is not installed (apt-get install chromium)" : false) }, () => {
  test("this file's console check sees what a page writes to the console and what it throws", async () => {
    const page = "<p>x</p><script>console.log('said'); setTimeout(() => { throw new Error('thrown') }, 100)</script>";
    const r = await browse(`data:text/html,${encodeURIComponent(page)}`, ["--dump-dom"]);
    assert.equal(r.console.filter((l) => /"said"|Uncaught Error: thrown/.test(l)).length, 2, r.console.join("\n"));
  });

  test("the page is self-contained, fills in its numbers from stats.json without console errors, and they follow traffic; a screenshot", async (t) => {
    const { broker, httpPort, wsPort } = await startHttp([]);
    let traffic = false;
    try {
      const html = (await fetchOk(httpPort, "/")).body;
      assert.doesNotMatch(html, /<script[^>]+src=|<link|@import|url\(|https?:\/\//i, "no external scripts, styles, fonts or images");
      assert.match(html, /<meta name="viewport"/, "a viewport for phones");

      const before = await browse(`http://${HOST}:${httpPort}/`, ["--dump-dom"]);
      assert.deepEqual(before.console, [], "console messages of the page");
      const one = figures(before.stdout);
      t.diagnostic(`before: ${JSON.stringify(one)}`);
      assert.equal(one.state, "live");
      assert.equal(one.version, `version ${VERSION}`);
      assert.match(one.uptime, /^up (\d+d )?(\d+h )?\d+m \d+s$/);
      assert.equal(one.connected, "0");
      assert.match(one.inRate, /^\d/, "a rate: stats.json was read twice at least");
      assert.deepEqual(Object.keys(one.bars), TABLES.map((n) => n.replace(/_/g, " ")));
      assert.match(one.bars.sessions, /^0 \/ \S+$/);
      assert.deepEqual(one.listeners.slice(1), [`${HOST}:${httpPort} http`, `${HOST}:${wsPort} websockets`]);

      // 10 clients, a subscription, and messages flowing while the page polls
      const clients: TestClient[] = [];
      for (let i = 0; i < 10; i++) clients.push(await connect(broker, { clientId: uid(`p${i}`) }));
      const topic = `page/${uid()}`;
      await subscribe(clients[0], topic);
      traffic = true;
      const flowing = (async () => {
        for (let n = 0; traffic && n < 20_000; n++) {
          await Promise.all(Array.from({ length: 20 }, (_, k) => publish(clients[1], topic, `p${n}-${k}`)));
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await clients[0].inbox.wait(100, 5000);
      const during = await browse(`http://${HOST}:${wsPort}/`, ["--dump-dom"]);
      mkdirSync(OUTPUT, { recursive: true });
      const png = path.join(OUTPUT, "status-page.png");
      rmSync(png, { force: true });
      const shot = await browse(`http://${HOST}:${httpPort}/`, [`--screenshot=${png}`, "--window-size=420,1400", "--hide-scrollbars"]);
      traffic = false;
      await flowing;
      assert.deepEqual([...during.console, ...shot.console], [], "console messages of the page");
      const two = figures(during.stdout);
      t.diagnostic(`during traffic: ${JSON.stringify(two)}`);
      assert.equal(two.state, "live");
      assert.equal(two.connected, "10");
      assert.equal(two.sessions, "10");
      assert.equal(two.subs, "1");
      assert.match(two.bars.sessions, /^10 \/ /);
      assert.notEqual(two.inRate, "0", "messages per second while messages flow");

      const bytes = readFileSync(png);
      assert.ok(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "a PNG");
      assert.equal(bytes.readUInt32BE(16), 420, "420 px wide");
      assert.ok(statSync(png).size > 10_000, "not blank");
      t.diagnostic(`screenshot: ${path.relative(ROOT, png)}`);
    } finally {
      traffic = false;
      await stopAll(broker);
    }
  });
});
