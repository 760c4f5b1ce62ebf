// Flow control (DESIGN §5): what the broker accepted reaches subscribers that read,
// however fast the publishers and however large the retained replay; a subscriber
// that stops holds the others for at most the stall timeout, and what it lost is
// counted; a client that does not read its answers cannot grow the broker's memory.
// Runs against the Node host (npm run test:host) and the native one (npm run test:native).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  useBroker, connect, subscribe, rawSession, subscribePacket, publishPacket, connectPacket,
  connect5Packet, pingreq, packet, PacketType, splitPackets, uid, sleep, withTimeout, which, ROOT, BROKER_KIND,
  type Broker,
} from "./helpers";

const skip = BROKER_KIND === "mosquitto" ? "Midge's own flags and counters" : false;
const PUB = which("mosquitto_pub");
const SUB = which("mosquitto_sub");
const PYTHON = which("python3");

/** `name=value` of the last stats line the broker logged. */
function lastStat(b: Broker, name: string): number {
  const lines = b.output().split("\n").filter((l) => l.includes("stats: "));
  const m = new RegExp(`\\b${name}=(\\d+)`).exec(lines.at(-1) ?? "");
  return m === null ? NaN : Number(m[1]);
}

/** Ask the broker for its counters (SIGUSR2) and read one. */
async function stat(b: Broker, name: string): Promise<number> {
  const before = b.output().length;
  b.proc.kill("SIGUSR2");
  for (let i = 0; i < 50 && !b.output().slice(before).includes("stats: "); i++) await sleep(20);
  return lastStat(b, name);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? NaN : Number(m[1]);
}

/**
 * A subscriber on a plain socket that counts PUBLISH packets by topic (cheaply: a
 * retained replay is megabytes) and acknowledges QoS 1 at once.
 */
class Counter {
  readonly topics = new Map<string, number>();
  publishes = 0;
  private rest = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      const { packets, rest } = splitPackets(this.rest.length > 0 ? Buffer.concat([this.rest, d]) : d);
      this.rest = Buffer.from(rest);
      for (const p of packets) {
        if (p.type !== PacketType.PUBLISH) continue;
        const qos = (p.flags >> 1) & 3;
        const tlen = p.body.readUInt16BE(0);
        const topic = p.body.toString("utf8", 2, 2 + tlen);
        this.topics.set(topic, (this.topics.get(topic) ?? 0) + 1);
        this.publishes++;
        if (qos === 1) socket.write(packet(PacketType.PUBACK, 0, p.body.subarray(2 + tlen, 4 + tlen)));
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    socket.on("error", () => {});
  }

  /** Connects (level 4 or 5), subscribes to `filter` at `qos`. */
  static async open(b: Broker, filter: string, qos: number, level: 4 | 5): Promise<Counter> {
    const s = net.connect({ host: b.host, port: b.port });
    await new Promise<void>((resolve, reject) => { s.once("connect", resolve); s.once("error", reject); });
    const c = new Counter(s);
    const id = uid("count");
    s.write(level === 5 ? connect5Packet({ clientId: id }) : connectPacket({ clientId: id }));
    const sub = subscribePacket(1, [[filter, qos]]);
    // MQTT 5 SUBSCRIBE: an empty property block after the packet id
    s.write(level === 5 ? packet(PacketType.SUBSCRIBE, 0x02, Buffer.concat([sub.subarray(2, 4), Buffer.from([0]), sub.subarray(4)])) : sub);
    return c;
  }

  /** Waits until `n` PUBLISH packets arrived or `ms` passed; the count. */
  async until(n: number, ms: number): Promise<number> {
    const end = Date.now() + ms;
    while (this.publishes < n && Date.now() < end) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.publishes;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A raw publisher that writes every packet at once, then waits for PINGRESP: the
 *  broker has handled everything before it. */
async function publishAll(b: Broker, packets: Buffer[], ms = 30_000): Promise<void> {
  const { raw } = await rawSession(b);
  for (let i = 0; i < packets.length; i += 1000) raw.write(Buffer.concat(packets.slice(i, i + 1000)));
  raw.write(pingreq());
  for (;;) {
    const p = await raw.next(ms, "PINGRESP after the burst");
    if (p.type === PacketType.PINGRESP) break;
  }
  raw.destroy();
}

function discovery(n: number): string {
  // about 1.3 KB of Home Assistant discovery JSON
  return JSON.stringify({
    name: `Sensor ${n}`, unique_id: `dev${n}_temperature`, state_topic: `zigbee2mqtt/dev${n}`,
    device_class: "temperature", unit_of_measurement: "°C", value_template: "{{ value_json.temperature }}",
    device: { identifiers: [`zigbee2mqtt_0x${n.toString(16).padStart(16, "0")}`], manufacturer: "Xiaomi",
      model: "Aqara temperature and humidity sensor (WSDCGQ11LM)", name: `dev${n}`, sw_version: "3000-0001",
      via_device: "zigbee2mqtt_bridge_0x00124b0022ab1234" },
    availability: [{ topic: "zigbee2mqtt/bridge/state", value_template: "{{ value_json.state }}" }],
    json_attributes_topic: `zigbee2mqtt/dev${n}`, enabled_by_default: true, state_class: "measurement",
    origin: { name: "Zigbee2MQTT", sw: "1.40.0", url: "https://www.zigbee2mqtt.io" },
    object_id: `dev${n}_temperature`, expire_after: 3600, force_update: false, qos: 0,
    padding: "x".repeat(430),
  });
}

describe("flow control: nothing accepted is lost while subscribers read", { skip }, () => {
  const broker = useBroker({ args: ["--stats-interval", "3600"] });

  test("[flow] a retained replay of 10,000 × 64 B reaches a new '#' subscriber whole, each once (3.1.1 and 5.0)", { timeout: 60_000 }, async () => {
    const t = uid("ret64");
    const payload = Buffer.alloc(64, 0x61);
    await publishAll(broker(), Array.from({ length: 10_000 }, (_, i) => publishPacket({ topic: `${t}/s/${i}`, payload, retain: true })));
    for (const level of [4, 5] as const) {
      const c = await Counter.open(broker(), `${t}/#`, 0, level);
      const got = await c.until(10_000, 30_000);
      await sleep(300); // anything extra would be a duplicate
      c.close();
      assert.equal(got, 10_000, `MQTT level ${level}: ${got} of 10,000 retained messages`);
      assert.equal(c.topics.size, 10_000);
      assert.equal(c.publishes, 10_000, "each exactly once");
    }
  });

  test("[flow] 1,500 retained Home Assistant discovery messages (1.3 KB JSON) reach a new subscriber whole (3.1.1 and 5.0)", { timeout: 60_000 }, async () => {
    const t = uid("homeassistant");
    await publishAll(broker(), Array.from({ length: 1500 }, (_, i) =>
      publishPacket({ topic: `${t}/sensor/dev${i}/config`, payload: discovery(i), retain: true, qos: 1, id: (i % 60000) + 1 })));
    for (const level of [4, 5] as const) {
      const c = await Counter.open(broker(), `${t}/#`, 1, level);
      const got = await c.until(1500, 30_000);
      await sleep(300);
      c.close();
      assert.equal(got, 1500, `MQTT level ${level}: ${got} of 1,500 discovery messages`);
      assert.equal(c.topics.size, 1500);
    }
  });

  test("[flow] a subscriber reading at 64 KB/s gets the whole retained replay of 10,000 × 64 B, later", { timeout: 60_000, skip: PYTHON ? false : "python3 missing" }, async () => {
    const t = uid("slowret");
    const payload = Buffer.alloc(64, 0x62);
    await publishAll(broker(), Array.from({ length: 10_000 }, (_, i) => publishPacket({ topic: `${t}/s/${i}`, payload, retain: true })));
    // bench/slow-subscriber.py: a 4 KiB receive buffer and at most RATE bytes a second;
    // on a line on stdin it reads at full speed until the broker is quiet, then prints its count
    const py = spawn(PYTHON!, [path.join(ROOT, "bench", "slow-subscriber.py"), String(broker().port), `${t}/#`, "65536", uid("slow")],
      { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    py.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    await sleep(8000); // about 500 KB read slowly: the broker must pace, not drop
    py.stdin.write("\n");
    await withTimeout(new Promise<void>((r) => py.once("exit", () => r())), 30_000, "slow subscriber's count");
    const got = /received (\d+)/.exec(out);
    assert.equal(Number(got?.[1]), 10_000, `the slow reader said: ${out.trim()}`);
  });

  test("[flow] 100,000 QoS 0 messages from mosquitto_pub -l all reach a reading mosquitto_sub", { timeout: 90_000, skip: PUB && SUB ? false : "mosquitto clients missing" }, async () => {
    const t = uid("burst");
    const addr = ["-h", broker().host, "-p", String(broker().port)];
    const sub = spawn(SUB!, [...addr, "-t", t, "-C", "100000", "-i", uid("msub")], { stdio: ["ignore", "pipe", "pipe"] });
    let lines = 0;
    let partial = "";
    sub.stdout.on("data", (d: Buffer) => {
      const s = partial + d.toString();
      const parts = s.split("\n");
      partial = parts.pop()!;
      lines += parts.length;
    });
    await sleep(500); // subscribed
    const pub = spawn(PUB!, [...addr, "-t", t, "-l", "-i", uid("mpub")], { stdio: ["pipe", "ignore", "pipe"] });
    const body = Array.from({ length: 100_000 }, (_, i) => `message ${i} of a burst`).join("\n") + "\n";
    pub.stdin.end(body);
    const exited = await withTimeout(new Promise<number | null>((r) => sub.once("exit", (code) => r(code))), 60_000,
      "mosquitto_sub to receive 100,000 messages").catch(() => { sub.kill(); return -1; });
    assert.equal(lines, 100_000, `mosquitto_sub received ${lines} of 100,000`);
    assert.equal(exited, 0);
    assert.equal(await stat(broker(), "droppedQos0Slow"), 0);
  });

  for (const qos of [1, 2] as const) {
    test(`[flow] QoS ${qos} fan-in, 8 mqtt publishers with no in-flight limit → 1 subscriber: nothing lost${qos === 2 ? ", no duplicate" : ""}`, { timeout: 90_000 }, async () => {
      const t = uid(`fanin${qos}`);
      const per = 2000;
      const sub = await connect(broker(), { clean: true });
      await subscribe(sub, `${t}/#`, qos);
      const pubs = await Promise.all(Array.from({ length: 8 }, () => connect(broker())));
      const payload = Buffer.alloc(64, 0x63);
      await withTimeout(Promise.all(pubs.flatMap((p, k) =>
        Array.from({ length: per }, (_, i) => p.client.publishAsync(`${t}/${k}/${i}`, payload, { qos })))), 60_000, "every PUBACK/PUBCOMP");
      await sub.inbox.until((m) => m.length >= 8 * per, 30_000).catch(() => {});
      await sleep(300);
      const topics = new Set(sub.inbox.messages.map((m) => m.topic));
      assert.equal(topics.size, 8 * per, `${topics.size} of ${8 * per} acknowledged messages delivered`);
      if (qos === 2) assert.equal(sub.inbox.messages.length, 8 * per, "QoS 2: exactly once");
      assert.equal(await stat(broker(), "droppedQueueFull"), 0);
    });
  }
});

describe("flow control: a stalled subscriber holds the others for at most the stall timeout", { skip }, () => {
  const broker = useBroker({ args: ["--stall-timeout", "1", "--max-queued", "50", "--stats-interval", "3600"] });

  test("[flow] publishers go on after --stall-timeout 1; the reader gets everything; the stalled one's losses are counted", { timeout: 60_000 }, async () => {
    const t = uid("stall");
    const { raw: stalled } = await rawSession(broker());
    stalled.write(subscribePacket(1, [[`${t}/#`, 1]]));
    await stalled.expect(PacketType.SUBACK);
    stalled.pause(); // reads nothing and acknowledges nothing from now on
    const reader = await Counter.open(broker(), `${t}/#`, 1, 4);
    await sleep(200);
    const pub = await connect(broker());
    const n = 500;
    const started = Date.now();
    await withTimeout(Promise.all(Array.from({ length: n }, (_, i) => pub.client.publishAsync(`${t}/${i}`, "x", { qos: 1 }))),
      20_000, "every PUBACK");
    const took = Date.now() - started;
    assert.ok(took < 1000 + 2500, `the publisher was held ${took} ms (stall timeout 1 s)`);
    assert.equal(await reader.until(n, 10_000), n, "the reading subscriber got every message");
    reader.close();
    assert.ok(await stat(broker(), "stalledSubscribers") >= 1, "the stall is counted");
    assert.ok(lastStat(broker(), "droppedQueueFull") > 0, "what the stalled one lost is counted");
    assert.match(broker().output(), /stalled/);
  });
});

describe("flow control: a client that does not read cannot grow the broker", { skip }, () => {
  const broker = useBroker({ args: ["--stats-interval", "3600"] });

  for (const kind of ["PINGREQ", "QoS 1 PUBLISH"] as const) {
    test(`[flow] a client flooding ${kind}s without reading: RSS bounded, others served`, { timeout: 60_000 }, async () => {
      const b = broker();
      const t = uid("flood");
      const one = kind === "PINGREQ" ? pingreq() : publishPacket({ topic: `${t}/nobody`, payload: "x", qos: 1, id: 7 });
      const chunk = Buffer.concat(Array.from({ length: 8192 }, () => one));
      const { raw } = await rawSession(b);
      raw.pause(); // never reads its answers
      const before = rssKiB(b.proc.pid!);
      let written = 0;
      const end = Date.now() + 4000;
      while (Date.now() < end) {
        if (raw.socket.write(chunk)) { written += chunk.length; await new Promise((r) => setImmediate(r)); continue; }
        await Promise.race([new Promise((r) => raw.socket.once("drain", r)), sleep(200)]);
      }
      const after = rssKiB(b.proc.pid!);
      // another client is served meanwhile
      const a = await connect(b);
      const c = await connect(b);
      await subscribe(c, `${t}/ok`, 1);
      await a.client.publishAsync(`${t}/ok`, "served", { qos: 1 });
      await c.inbox.until((m) => m.length >= 1, 5000);
      raw.destroy();
      assert.ok(after - before < 64 * 1024, `RSS grew ${after - before} KiB while ${written} bytes of ${kind}s were sent`);
      assert.ok(await stat(b, "ownReplyPauses") >= 1, "the client was not read while its answers piled up");
    });
  }
});
