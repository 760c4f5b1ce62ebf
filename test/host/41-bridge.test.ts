// Bridges (Mosquitto's `connection NAME` sections): the broker under test (BROKER_KIND:
// Midge on Node, the native host, or the Debian mosquitto 2.0.11 as the reference) is
// the local end of a bridge to a real Mosquitto, the upstream, which each case starts on
// its own port with its own config file. The local broker reads the same mosquitto.conf
// text whatever its kind (startLocal), so every case runs unchanged against Mosquitto
// bridging to Mosquitto: that is how the cases themselves were checked.
//
// Cases assert on behaviour (messages counted on both sides, the upstream's own log of
// connection attempts), not on the local broker's log, except where a case is about what
// the log says. Every wait is bounded; each case stops its brokers and saves their
// output in build/test-host/logs/41-bridge-<case>-<label>.log.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { type IClientOptions } from "mqtt";
import {
  BROKER_KIND, HOST, ROOT, closeAll, connect, connect5, freePort, publish, settle, sleep, startCommand, startMosquittoConf,
  uid, which, withTimeout, type Broker, type Received, type TestClient,
} from "./helpers.js";

const TMP = mkdtempSync(path.join(os.tmpdir(), "midge-bridge-"));
chmodSync(TMP, 0o755); // mosquitto started as root reads its files as the user mosquitto
const MOSQUITTO_PASSWD = which("mosquitto_passwd") ?? (existsSync("/usr/bin/mosquitto_passwd") ? "/usr/bin/mosquitto_passwd" : null);
const haveMosquitto = which("mosquitto") !== null || existsSync("/usr/sbin/mosquitto");
const skipAll = haveMosquitto ? false : "no mosquitto (apt-get install mosquitto): the upstream is always a real Mosquitto";

// ---------------------------------------------------------------------------------
// brokers: the local one (the kind under test) and the upstream (a real Mosquitto)

/** Every broker this file started, so a case that fails or times out cannot leave one running. */
const allBrokers = new Set<Broker>();
after(async () => {
  await closeAll();
  for (const b of allBrokers) b.proc.kill("SIGKILL");
  rmSync(TMP, { recursive: true, force: true });
});

function writeConf(name: string, lines: string[]): string {
  const p = path.join(TMP, `${name}.conf`);
  writeFileSync(p, lines.join("\n") + "\n");
  chmodSync(p, 0o644);
  return p;
}

const isGone = (b: Broker) => b.proc.exitCode !== null || b.proc.signalCode !== null;

/** SIGTERM (the broker's own stop()), then SIGKILL after 5 s; resolves once the process is gone. */
async function stopBroker(b: Broker): Promise<void> {
  const t = setTimeout(() => b.proc.kill("SIGKILL"), 5000);
  await b.stop();
  clearTimeout(t);
  allBrokers.delete(b);
}

/** Starts a broker of `kind` on the config file `conf` whose first listener is `port`. */
async function startKind(kind: typeof BROKER_KIND, conf: string, port: number): Promise<Broker> {
  let b: Broker;
  if (kind === "mosquitto") b = await startMosquittoConf(conf, port);
  else if (kind === "native") {
    const bin = path.join(ROOT, "build", "native", "midge-pi");
    if (!existsSync(bin)) throw new Error(`native broker not built: ${bin} is missing (node scripts/native.mjs build)`);
    b = await startCommand(bin, ["-c", conf]);
  } else {
    const bin = process.env.MIDGE_BIN ?? path.join(ROOT, "dist", "midge.mjs");
    if (!existsSync(bin)) throw new Error(`broker not built: ${bin} is missing (run npm run build)`);
    b = await startCommand(process.execPath, [bin, "-c", conf]);
  }
  allBrokers.add(b);
  if (b.port !== port) throw new Error(`broker listens on ${b.port}, not ${port}\n${b.output()}`);
  return b;
}

/** The lines every broker here starts with: one loopback listener, anonymous clients, everything logged. */
const head = (port: number) => [`listener ${port} ${HOST}`, "allow_anonymous true", "log_dest stderr", "log_type all"];

/**
 * A case: the brokers it started (labelled, for the logs) and its relays. On failure the
 * error carries the tail of each broker's output; either way the brokers are stopped and
 * their output saved.
 */
class Case {
  readonly brokers: Array<[string, Broker]> = [];
  readonly relays: Relay[] = [];
  constructor(readonly name: string) {}

  /** The local broker: whichever kind is under test, on the same mosquitto.conf text (head lines first). */
  async startLocal(confLines: string[], port?: number, label = "local"): Promise<Broker> {
    return this.start(BROKER_KIND, label, confLines, port);
  }

  /** A real Mosquitto as the upstream (the lines add to or override the head lines). */
  async startUpstream(confLines: string[] = [], port?: number, label = "upstream"): Promise<Broker> {
    return this.start("mosquitto", label, confLines, port);
  }

  async start(kind: typeof BROKER_KIND, label: string, confLines: string[], port?: number): Promise<Broker> {
    const p = port ?? (await freePort());
    const conf = writeConf(`${this.name}-${label}-${this.brokers.length}`, [...head(p), ...confLines]);
    const b = await startKind(kind, conf, p);
    this.brokers.push([label, b]);
    return b;
  }

  tails(): string {
    return this.brokers
      .map(([label, b]) => `\n--- ${label} :${b.port} (${isGone(b) ? "stopped" : "running"}), last 2500 chars ---\n${b.output().slice(-2500)}`)
      .join("");
  }

  async finish(): Promise<void> {
    await closeAll();
    for (const r of this.relays) r.close();
    const dir = path.join(ROOT, "build", "test-host", "logs");
    mkdirSync(dir, { recursive: true });
    for (const [i, [label, b]] of this.brokers.entries()) {
      await stopBroker(b);
      writeFileSync(path.join(dir, `41-bridge-${this.name}-${label}-${i}.log`), b.output());
    }
  }
}

/** A test with its own brokers: 60 s at most; failures carry the brokers' output. */
function bridgeTest(name: string, opts: { skip?: string | false }, fn: (c: Case) => Promise<void>): void {
  const slug = name.replace(/\[.*?\]/g, "").replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").slice(0, 40).toLowerCase();
  test(name, { timeout: 60_000, skip: skipAll || opts.skip || false }, async () => {
    const c = new Case(slug);
    try {
      await fn(c);
    } catch (e) {
      if (e instanceof Error) e.message += c.tails();
      throw e;
    } finally {
      await c.finish();
    }
  });
}

/** The `connection NAME` section: addresses, topic lines, then any other bridge keys. */
function bridge(name: string, addresses: number[], topics: string[], extra: string[] = []): string[] {
  return [
    `connection ${name}`,
    `address ${addresses.map((p) => `${HOST}:${p}`).join(" ")}`,
    ...topics.map((t) => `topic ${t}`),
    `remote_clientid ${name}`,
    ...extra,
  ];
}

// ---------------------------------------------------------------------------------
// clients and messages

const text = (m: Received) => m.payload.toString("utf8");
const count = (msgs: Received[], topic: string, payload: string) => msgs.filter((m) => m.topic === topic && text(m) === payload).length;

/** Subscribes with MQTT 5 options (rap: Retain As Published, nl: No Local). */
async function sub(c: TestClient, filters: Record<string, { qos: 0 | 1 | 2; rap?: boolean; nl?: boolean }>): Promise<void> {
  await withTimeout(c.client.subscribeAsync(filters), 5000, `SUBACK for ${Object.keys(filters)}`);
}

/**
 * Publishes a QoS 0 probe on `topic` through `from` every 300 ms until `to` (already
 * subscribed to it) has one: the bridge is up and its subscriptions are in place.
 */
async function untilFlows(from: TestClient, to: TestClient, topic: string, ms = 20_000, what = "the bridge to carry a probe"): Promise<void> {
  let done = false;
  const probe = uid("probe");
  const loop = (async () => {
    while (!done) {
      await publish(from, topic, probe).catch(() => {});
      await sleep(300);
    }
  })();
  try {
    await to.inbox.until((msgs) => msgs.some((m) => m.topic === topic && text(m) === probe), ms, `${what} (${topic})`);
  } finally {
    done = true;
    await loop;
  }
}

/** Waits for a message on `topic` with this payload; returns it. */
async function waitMessage(c: TestClient, topic: string, payload: string, ms = 10_000): Promise<Received> {
  await c.inbox.until((msgs) => count(msgs, topic, payload) > 0, ms, `'${payload}' on ${topic}`);
  return c.inbox.messages.find((m) => m.topic === topic && text(m) === payload)!;
}

/** How many times the upstream Mosquitto logged a new connection on its port, from `from` chars of its output on. */
function connectionsLogged(up: Broker, from = 0): number {
  return (up.output().slice(from).match(new RegExp(`New connection from [\\d.]+:\\d+ on port ${up.port}\\.`, "g")) ?? []).length;
}

// ---------------------------------------------------------------------------------
// a TCP relay that can cut every connection it carries (the flapping link)

class Relay {
  private readonly sockets = new Set<net.Socket>();
  /** connections accepted so far */
  accepted = 0;
  cuts = 0;
  private constructor(readonly server: net.Server, readonly port: number) {}

  static async start(c: Case, target: number): Promise<Relay> {
    let relay: Relay | undefined;
    const server = net.createServer((down) => {
      relay!.accepted += 1;
      const up = net.connect({ host: HOST, port: target });
      for (const s of [down, up]) {
        relay!.sockets.add(s);
        s.on("error", () => {});
        s.once("close", () => {
          relay!.sockets.delete(s);
          down.destroy();
          up.destroy();
        });
      }
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, HOST, () => resolve());
    });
    relay = new Relay(server, (server.address() as net.AddressInfo).port);
    c.relays.push(relay);
    return relay;
  }

  /** Destroys every connection it carries (both sides see a reset, mid-packet or not). */
  cut(): void {
    this.cuts += 1;
    for (const s of this.sockets) s.destroy();
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

// ---------------------------------------------------------------------------------
// 1. out

bridgeTest("out: QoS 0/1/2 messages published locally arrive upstream with their retain flag, prefixes mapped [MQTT-3.3.1-13]", {}, async (c) => {
  const up = await c.startUpstream();
  const name = uid("out");
  const local = await c.startLocal(bridge(name, [up.port], ["sensors/# out 2", "# out 1 local/ remote/"]));
  // Retain As Published: the upstream keeps the flag the bridge sent on a live subscription
  const watcher = await connect5(up);
  await sub(watcher, { "sensors/#": { qos: 2, rap: true }, "remote/#": { qos: 2, rap: true }, "local/#": { qos: 2 }, "other/#": { qos: 2 } });
  const pub = await connect(local);
  await untilFlows(pub, watcher, "sensors/probe");

  const sent: Array<[string, string, 0 | 1 | 2, boolean]> = [
    ["sensors/t0", "zero", 0, true],
    ["sensors/t1", "one", 1, false],
    ["sensors/t2", "two", 2, true],
    ["sensors/t3", "three", 2, false],
  ];
  for (const [topic, payload, qos, retain] of sent) await publish(pub, topic, payload, { qos, retain });
  await publish(pub, "local/a", "prefixed", { qos: 2, retain: true });
  await publish(pub, "other/x", "not bridged", { qos: 1 });
  for (const [topic, payload, qos, retain] of sent) {
    const m = await waitMessage(watcher, topic, payload);
    assert.equal(m.qos, qos, `${topic}: QoS as published (the topic line allows 2)`);
    assert.equal(m.retain, retain, `${topic}: the retain flag as published`);
  }
  // `# out 1 local/ remote/`: local/a goes up as remote/a, at the topic line's QoS 1 at most
  const m = await waitMessage(watcher, "remote/a", "prefixed");
  assert.equal(m.qos, 1, "remote/a: QoS 2 published, downgraded to the topic line's 1");
  assert.equal(m.retain, true, "remote/a: retained");
  await publish(pub, "sensors/marker", "end", { qos: 1 });
  await waitMessage(watcher, "sensors/marker", "end");
  await settle(500);
  assert.equal(watcher.inbox.messages.filter((x) => x.topic.startsWith("other/")).length, 0, "other/x is not bridged");
  assert.equal(watcher.inbox.messages.filter((x) => x.topic.startsWith("local/")).length, 0, "local/a arrives only as remote/a");
  for (const [topic, payload] of [...sent.map(([t, p]) => [t, p]), ["remote/a", "prefixed"]]) {
    assert.equal(count(watcher.inbox.messages, topic, payload), 1, `${topic} arrives once`);
  }

  // the retained ones are stored upstream [MQTT-3.3.1-5]: a new subscriber gets them with the flag set
  const late = await connect(up);
  await sub(late, { "sensors/#": { qos: 2 }, "remote/#": { qos: 2 } });
  await late.inbox.until(
    (msgs) => count(msgs, "sensors/t0", "zero") + count(msgs, "sensors/t2", "two") + count(msgs, "remote/a", "prefixed") === 3,
    5000, "the three retained messages upstream");
  await settle(300);
  assert.deepEqual(late.inbox.messages.map((x) => `${x.topic}=${text(x)}${x.retain ? " r" : ""}`).sort(),
    ["remote/a=prefixed r", "sensors/t0=zero r", "sensors/t2=two r"]);
});

// ---------------------------------------------------------------------------------
// 2. in

bridgeTest("in: upstream messages on the bridged patterns arrive at local subscribers, prefixes mapped back", {}, async (c) => {
  const up = await c.startUpstream();
  const upPub = await connect(up);
  // retained upstream before the bridge exists: the bridge's subscription gets it, and the local broker keeps it
  await publish(upPub, "sensors/boot", "early", { qos: 1, retain: true });
  const name = uid("in");
  const local = await c.startLocal(bridge(name, [up.port], ["sensors/# in 2", "# in 1 local/ remote/"]));
  const watcher = await connect(local);
  await sub(watcher, { "sensors/#": { qos: 2 }, "local/#": { qos: 2 }, "remote/#": { qos: 2 }, "other/#": { qos: 2 } });
  await untilFlows(upPub, watcher, "sensors/probe");

  const sent: Array<[string, string, 0 | 1 | 2]> = [["sensors/t0", "zero", 0], ["sensors/t1", "one", 1], ["sensors/t2", "two", 2]];
  for (const [topic, payload, qos] of sent) await publish(upPub, topic, payload, { qos });
  await publish(upPub, "remote/a", "prefixed", { qos: 2 });
  await publish(upPub, "other/x", "not bridged", { qos: 1 });
  for (const [topic, payload, qos] of sent) {
    const m = await waitMessage(watcher, topic, payload);
    assert.equal(m.qos, qos, `${topic}: QoS as published (the topic line allows 2)`);
  }
  const m = await waitMessage(watcher, "local/a", "prefixed");
  assert.equal(m.qos, 1, "local/a: the bridge subscribed upstream at the topic line's QoS 1");
  await publish(upPub, "sensors/marker", "end", { qos: 1 });
  await waitMessage(watcher, "sensors/marker", "end");
  await settle(500);
  assert.equal(watcher.inbox.messages.filter((x) => x.topic.startsWith("other/") || x.topic.startsWith("remote/")).length, 0,
    "only the bridged patterns come in, remote/a only as local/a");
  for (const [topic, payload] of [...sent.map(([t, p]) => [t, p]), ["local/a", "prefixed"]]) {
    assert.equal(count(watcher.inbox.messages, topic, payload), 1, `${topic} arrives once`);
  }

  const late = await connect(local);
  await sub(late, { "sensors/boot": { qos: 1 } });
  const boot = await waitMessage(late, "sensors/boot", "early", 5000);
  assert.equal(boot.retain, true, "the upstream's retained message is retained locally too");
});

// ---------------------------------------------------------------------------------
// 3. both, and no loops

for (const version of ["mqttv311", "mqttv50"] as const) {
  const how = version === "mqttv311" ? "try_private: the upstream knows the bridge" : "No Local [MQTT-3.8.3-3]";
  bridgeTest(`both (${version}): each message arrives once on each side, none comes back (${how}) [MQTT-4.3.3-2]`, {}, async (c) => {
    const up = await c.startUpstream();
    const name = uid("both");
    const local = await c.startLocal(bridge(name, [up.port], ["room/# both 2"], [`bridge_protocol_version ${version}`]));
    const localSub = await connect(local);
    const upSub = await connect(up);
    await sub(localSub, { "room/#": { qos: 2 } });
    await sub(upSub, { "room/#": { qos: 2 } });
    const localPub = await connect(local);
    const upPub = await connect(up);
    await exchangeOnce(localPub, upPub, localSub, upSub);
  });
}

/** A `room/# both 2` bridge carries a QoS 0, 1 and 2 message each way exactly once: each
 *  arrives on both sides once, and none comes back (an echo would be back within 1.5 s). */
async function exchangeOnce(localPub: TestClient, upPub: TestClient, localSub: TestClient, upSub: TestClient): Promise<void> {
  await untilFlows(localPub, upSub, "room/probe-out", 20_000, "local to upstream");
  await untilFlows(upPub, localSub, "room/probe-in", 20_000, "upstream to local");
  for (const qos of [0, 1, 2] as const) {
    await publish(localPub, "room/from-local", `L${qos}`, { qos });
    await publish(upPub, "room/from-upstream", `U${qos}`, { qos });
  }
  for (const qos of [0, 1, 2]) {
    await waitMessage(upSub, "room/from-local", `L${qos}`);
    await waitMessage(localSub, "room/from-upstream", `U${qos}`);
  }
  await settle(1500);
  for (const qos of [0, 1, 2]) {
    for (const [side, inbox] of [["upstream", upSub.inbox], ["local", localSub.inbox]] as const) {
      assert.equal(count(inbox.messages, "room/from-local", `L${qos}`), 1, `L${qos} (published locally) on the ${side} side`);
      assert.equal(count(inbox.messages, "room/from-upstream", `U${qos}`), 1, `U${qos} (published upstream) on the ${side} side`);
    }
  }
}

// ---------------------------------------------------------------------------------
// 4. notifications

bridgeTest("notifications: the state topic says 1 on both sides while the bridge is up, 0 when it goes down (the upstream through the will)", {}, async (c) => {
  const up = await c.startUpstream();
  const name = uid("note");
  const state = `$SYS/broker/connection/${name}/state`;
  const lines = bridge(name, [up.port], ["sensors/# out 1"], ["restart_timeout 1"]);
  const local = await c.startLocal(lines);
  const localState = await connect(local);
  const upState = await connect(up);
  await sub(localState, { [state]: { qos: 1 } });
  await sub(upState, { [state]: { qos: 1 } });
  await waitMessage(localState, state, "1");
  await waitMessage(upState, state, "1");
  // retained: a subscriber that comes later gets it with RETAIN 1 (the first two may have
  // been subscribed before the link came up, and got it live, RETAIN 0 [MQTT-3.3.1-9])
  const lateLocal = await connect(local);
  const lateUp = await connect(up);
  await sub(lateLocal, { [state]: { qos: 1 } });
  await sub(lateUp, { [state]: { qos: 1 } });
  assert.equal((await waitMessage(lateLocal, state, "1")).retain, true, "the local state is retained");
  assert.equal((await waitMessage(lateUp, state, "1")).retain, true, "the upstream state is retained");

  // the upstream goes away: the local side says 0; it comes back: 1 again
  const upPort = up.port;
  await stopBroker(up);
  await waitMessage(localState, state, "0", 15_000);
  const up2 = await c.startUpstream([], upPort, "upstream-again");
  const upState2 = await connect(up2);
  await sub(upState2, { [state]: { qos: 1 } });
  await waitMessage(upState2, state, "1", 15_000);
  await localState.inbox.until((msgs) => msgs.filter((m) => m.topic === state).map(text).join("") === "101", 15_000, "local state 1, 0, 1");

  // the local broker stops: the upstream says 0 (the bridge's will, or its last word)
  await stopBroker(local);
  await waitMessage(upState2, state, "0", 15_000);
  const late = await connect(up2);
  await sub(late, { [state]: { qos: 1 } });
  const u0 = await waitMessage(late, state, "0", 5000);
  assert.equal(u0.retain, true, "the upstream keeps 0 retained");
});

bridgeTest("notifications: notification_topic names the state topic; notifications false publishes none", {}, async (c) => {
  const up = await c.startUpstream();
  const named = uid("named");
  const quiet = uid("quiet");
  const local = await c.startLocal([
    ...bridge(named, [up.port], ["a/# out 1"], [`notification_topic bridges/${named}/up`]),
    ...bridge(quiet, [up.port], ["b/# out 1"], ["notifications false"]),
  ]);
  const localSub = await connect(local);
  const upSub = await connect(up);
  for (const s of [localSub, upSub]) await sub(s, { "bridges/#": { qos: 1 }, "$SYS/broker/connection/#": { qos: 1 }, "b/#": { qos: 0 } });
  await waitMessage(localSub, `bridges/${named}/up`, "1");
  await waitMessage(upSub, `bridges/${named}/up`, "1");
  // the quiet bridge is up too (its messages flow) yet says nothing
  const pub = await connect(local);
  await untilFlows(pub, upSub, "b/probe");
  await settle(500);
  for (const [side, s] of [["local", localSub], ["upstream", upSub]] as const) {
    const seen = s.inbox.messages.filter((m) => !m.topic.startsWith("b/")).map((m) => m.topic);
    assert.deepEqual(seen, [`bridges/${named}/up`], `state messages on the ${side} side`);
  }
});

// ---------------------------------------------------------------------------------
// 5. a flapping link, and an upstream restart, with persistent sessions

interface Streams {
  n: number;
  /** every publish acknowledged to the publisher */
  acked: Promise<unknown>;
}

/** A numbered QoS 1 stream on flap/q1 and QoS 2 stream on flap/q2, one message each every `every` ms. */
function streams(pub: TestClient, n: number, every: number): Streams {
  const acks: Array<Promise<unknown>> = [];
  const sending = (async () => {
    for (let i = 0; i < n; i++) {
      acks.push(pub.client.publishAsync("flap/q1", String(i), { qos: 1 }));
      acks.push(pub.client.publishAsync("flap/q2", String(i), { qos: 2 }));
      await sleep(every);
    }
  })();
  return { n, acked: sending.then(() => Promise.all(acks)) };
}

/** Every number 0..n-1 on flap/q1 at least once and on flap/q2 exactly once. */
async function checkStreams(watcher: TestClient, n: number, what: string): Promise<string> {
  const tally = (topic: string) => {
    const t = new Array<number>(n).fill(0);
    for (const m of watcher.inbox.messages) if (m.topic === topic) t[Number(text(m))] += 1;
    return t;
  };
  await watcher.inbox.until(() => tally("flap/q1").every((k) => k > 0) && tally("flap/q2").every((k) => k > 0), 25_000,
    `every message of both streams upstream (${what}); missing q1: ${tally("flap/q1").flatMap((k, i) => (k ? [] : [i])).slice(0, 20)}, q2: ${tally("flap/q2").flatMap((k, i) => (k ? [] : [i])).slice(0, 20)}`);
  await settle(1000);
  const q1 = tally("flap/q1");
  const q2 = tally("flap/q2");
  assert.ok(q1.every((k) => k >= 1), "QoS 1: every message at least once");
  const twice = q2.flatMap((k, i) => (k === 1 ? [] : [`${i}x${k}`]));
  assert.deepEqual(twice, [], "QoS 2: every message exactly once [MQTT-4.3.3-2]");
  const dups = q1.reduce((a, k) => a + k - 1, 0);
  return `${n} + ${n} messages, ${dups} QoS 1 duplicate(s)`;
}

/**
 * The upstream Mosquitto 2.0.11, with its default max_inflight_messages 20, drops QoS 1
 * messages from the bridge when the burst after a reconnect meets its subscriber's
 * in-flight window: it answers PUBACK with reason 151 (0x97, quota exceeded; on an MQTT
 * 3.1.1 link!) and never delivers them. A larger window keeps the upstream out of it.
 * (Mosquitto 2.0.11 as the local end also reconnects only every ~6 s whatever
 * restart_timeout says: its 2.0.15 fixed that.)
 */
const UPSTREAM_QUOTA = ["max_inflight_messages 1000", "max_queued_messages 10000"];

/** The persistent upstream subscriber: clean false, QoS 2, reconnecting on its own. */
const watcherOpts = (clientId: string): IClientOptions => ({ clientId, clean: false, reconnectPeriod: 300 });

bridgeTest("flap: a link cut every 2 s loses nothing, QoS 1 at least once, QoS 2 exactly once (cleansession false) [MQTT-4.4.0-1] [MQTT-4.3.3-2]", {}, async (c) => {
  const up = await c.startUpstream(UPSTREAM_QUOTA);
  const relay = await Relay.start(c, up.port);
  const watcher = await connect(up, watcherOpts(uid("watch")));
  await sub(watcher, { "flap/#": { qos: 2 } });
  const name = uid("flap");
  const local = await c.startLocal(bridge(name, [relay.port], ["flap/# out 2"], ["cleansession false", "restart_timeout 1"]));
  const pub = await connect(local);
  await untilFlows(pub, watcher, "flap/probe");

  const n = 480; // 24 s at one message per stream every 50 ms
  const s = streams(pub, n, 50);
  const cutter = setInterval(() => relay.cut(), 2000);
  try {
    await withTimeout(s.acked, 40_000, "the publisher's PUBACKs and PUBCOMPs");
  } finally {
    clearInterval(cutter);
  }
  const summary = await checkStreams(watcher, n, `${relay.cuts} cuts`);
  assert.ok(relay.cuts >= 8, `the link was cut ${relay.cuts} times`);
  assert.ok(relay.accepted >= 3, `the bridge connected ${relay.accepted} times through the relay`);
  console.log(`flap: ${summary}; ${relay.cuts} cuts, ${relay.accepted} bridge connections`);
});

bridgeTest("flap: the upstream Mosquitto restarts (persistence true) in the middle of the streams; nothing lost, QoS 2 exactly once [MQTT-4.3.3-2]", {}, async (c) => {
  const store = path.join(TMP, uid("store"));
  mkdirSync(store);
  chmodSync(store, 0o777); // mosquitto writes it as the user mosquitto
  const upLines = ["persistence true", `persistence_location ${store}/`, "autosave_interval 1", ...UPSTREAM_QUOTA];
  const up = await c.startUpstream(upLines);
  const watcher = await connect(up, watcherOpts(uid("watch")));
  await sub(watcher, { "flap/#": { qos: 2 } });
  const name = uid("restart");
  const local = await c.startLocal(bridge(name, [up.port], ["flap/# out 2"], ["cleansession false", "restart_timeout 1"]));
  const pub = await connect(local);
  await untilFlows(pub, watcher, "flap/probe");

  const n = 300; // 15 s
  const s = streams(pub, n, 50);
  await sleep(6000);
  await stopBroker(up);
  await sleep(1500);
  const up2 = await c.startUpstream(upLines, up.port, "upstream-restarted");
  assert.equal(up2.port, up.port);
  await withTimeout(s.acked, 40_000, "the publisher's PUBACKs and PUBCOMPs");
  console.log(`restart: ${await checkStreams(watcher, n, "one upstream restart")}`);
});

// ---------------------------------------------------------------------------------
// 6. refused credentials

bridgeTest("refused credentials: a wrong remote_password passes nothing and retries with backoff, not in a busy loop; the right one works", {
  skip: MOSQUITTO_PASSWD ? false : "no mosquitto_passwd",
}, async (c) => {
  const pw = path.join(TMP, `${uid("passwd")}`);
  for (const [i, [user, password]] of [["bridge", "right-password"], ["watcher", "w"]].entries()) {
    const r = spawnSync(MOSQUITTO_PASSWD!, [...(i === 0 ? ["-c"] : []), "-b", pw, user, password], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  chmodSync(pw, 0o644);
  const up = await c.startUpstream(["allow_anonymous false", `password_file ${pw}`]);
  const watcher = await connect(up, { username: "watcher", password: "w" });
  await sub(watcher, { "sensors/#": { qos: 1 } });
  const from = up.output().length;

  const name = uid("refused");
  const wrong = await c.startLocal(bridge(name, [up.port], ["sensors/# out 1"], ["remote_username bridge", "remote_password wrong-password"]), undefined, "local-wrong");
  const pub = await connect(wrong);
  for (let i = 0; i < 20; i++) {
    await publish(pub, "sensors/x", `m${i}`, { qos: 1 });
    await sleep(500);
  }
  const attempts = connectionsLogged(up, from);
  assert.equal(watcher.inbox.messages.length, 0, "nothing passes a refused bridge");
  assert.ok(attempts >= 1, "the bridge tried to connect");
  assert.ok(attempts <= 6, `the bridge connected ${attempts} times in 10 s: a backoff, not a busy loop`);
  const refusal = BROKER_KIND === "mosquitto"
    ? /Connection Refused: not authori[sz]ed/
    : new RegExp(`bridge ${name}: ${HOST.replace(/\./g, "\\.")}:${up.port} refused the connection`);
  assert.match(wrong.output(), refusal, "the local log says the upstream refused the bridge");
  console.log(`refused: ${attempts} connection attempt(s) in 10 s; ${wrong.output().match(refusal)?.[0]}`);
  await stopBroker(wrong);

  const right = await c.startLocal(bridge(name, [up.port], ["sensors/# out 1"], ["remote_username bridge", "remote_password right-password"]), undefined, "local-right");
  await untilFlows(await connect(right), watcher, "sensors/probe");
});

// ---------------------------------------------------------------------------------
// 7. several addresses

bridgeTest("failover: the first address is unreachable, messages flow through the second; after the last, back to the first", {}, async (c) => {
  const dead = await freePort();
  const second = await c.startUpstream([], undefined, "second");
  const name = uid("failover");
  const local = await c.startLocal(bridge(name, [dead, second.port], ["sensors/# out 1"], ["restart_timeout 1"]));
  const pub = await connect(local);
  const onSecond = await connect(second);
  await sub(onSecond, { "sensors/#": { qos: 1 } });
  await untilFlows(pub, onSecond, "sensors/probe", 25_000, "messages through the second address");
  await publish(pub, "sensors/x", "via second", { qos: 1 });
  await waitMessage(onSecond, "sensors/x", "via second");

  // the first address comes alive, the second goes away: the bridge goes round to the first
  const first = await c.startUpstream([], dead, "first");
  const onFirst = await connect(first);
  await sub(onFirst, { "sensors/#": { qos: 1 } });
  await stopBroker(second);
  await untilFlows(pub, onFirst, "sensors/probe2", 25_000, "messages through the first address again");
});

bridgeTest("failover (round_robin false): on a secondary address, the bridge goes back to the main one when it returns", {}, async (c) => {
  const main = await freePort();
  const second = await c.startUpstream([], undefined, "second");
  const name = uid("primary");
  const local = await c.startLocal(bridge(name, [main, second.port], ["sensors/# out 1"], ["restart_timeout 1", "round_robin false"]));
  const pub = await connect(local);
  const onSecond = await connect(second);
  await sub(onSecond, { "sensors/#": { qos: 1 } });
  await untilFlows(pub, onSecond, "sensors/probe", 25_000, "messages through the secondary address");
  const first = await c.startUpstream([], main, "main");
  const onMain = await connect(first);
  await sub(onMain, { "sensors/#": { qos: 1 } });
  await untilFlows(pub, onMain, "sensors/probe2", 40_000, "the bridge back on the main address while the secondary still runs");
});

// ---------------------------------------------------------------------------------
// TLS to the upstream: bridge_cafile, bridge_certfile/bridge_keyfile, bridge_insecure

const haveOpenssl = spawnSync("openssl", ["version"]).status === 0;

/** A CA, a second unrelated one, server certificates for 127.0.0.1 (and for another name), a client certificate for the bridge. */
function certificates(dir: string): (name: string) => string {
  const at = (name: string) => path.join(dir, name);
  const sh = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
  };
  const cert = (name: string, subject: string, ca: string | null, ext: string[] = []) => {
    if (ca === null) {
      sh(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", subject]);
    } else {
      sh(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
      sh(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", ...ext]);
    }
    chmodSync(at(`${name}.key`), 0o644); // mosquitto started as root reads them as the user mosquitto
    chmodSync(at(`${name}.crt`), 0o644);
  };
  writeFileSync(at("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  writeFileSync(at("elsewhere.ext"), "subjectAltName=DNS:elsewhere.example\n");
  cert("ca", "/CN=Bridge Test CA", null);
  cert("ca2", "/CN=Unrelated CA", null);
  cert("server", "/CN=localhost", "ca", ["-extfile", "san.ext"]);
  cert("elsewhere", "/CN=elsewhere.example", "ca", ["-extfile", "elsewhere.ext"]);
  cert("bridge", "/CN=bridge", "ca");
  return at;
}

bridgeTest("TLS: the bridge checks the upstream's certificate against bridge_cafile and its name (unless bridge_insecure), and shows its own", {
  skip: haveOpenssl ? false : "no openssl",
}, async (c) => {
  const dir = path.join(TMP, uid("certs"));
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const at = certificates(dir);
  const [tls, tlsElsewhere] = [await freePort(), await freePort()];
  const listener = (port: number, cert: string) => [
    `listener ${port} ${HOST}`, `certfile ${at(`${cert}.crt`)}`, `keyfile ${at(`${cert}.key`)}`, `cafile ${at("ca.crt")}`, "require_certificate true",
  ];
  const up = await c.startUpstream([...listener(tls, "server"), ...listener(tlsElsewhere, "elsewhere")]);
  const watcher = await connect(up);
  await sub(watcher, { "good/#": { qos: 1 }, "wrongca/#": { qos: 1 }, "insecure/#": { qos: 1 }, "strict/#": { qos: 1 }, "nocert/#": { qos: 1 } });
  const mine = [`bridge_certfile ${at("bridge.crt")}`, `bridge_keyfile ${at("bridge.key")}`];
  const names = { good: uid("good"), wrongca: uid("wrongca"), nocert: uid("nocert"), insecure: uid("insecure"), strict: uid("strict") };
  const local = await c.startLocal([
    ...bridge(names.good, [tls], ["good/# out 1"], [`bridge_cafile ${at("ca.crt")}`, ...mine]),
    ...bridge(names.wrongca, [tls], ["wrongca/# out 1"], [`bridge_cafile ${at("ca2.crt")}`, ...mine]),
    ...bridge(names.insecure, [tlsElsewhere], ["insecure/# out 1"], [`bridge_cafile ${at("ca.crt")}`, "bridge_insecure true", ...mine]),
    ...bridge(names.strict, [tlsElsewhere], ["strict/# out 1"], [`bridge_cafile ${at("ca.crt")}`, "bridge_insecure false", ...mine]),
  ]);
  // a fifth bridge in a broker of its own: the pi board holds 4
  const local2 = await c.startLocal(bridge(names.nocert, [tls], ["nocert/# out 1"], [`bridge_cafile ${at("ca.crt")}`]), undefined, "local-nocert");
  const pub2 = await connect(local2);
  const pub = await connect(local);
  await untilFlows(pub, watcher, "good/probe", 20_000, "the bridge with the right CA and its certificate");
  await untilFlows(pub, watcher, "insecure/probe", 20_000, "the bridge_insecure bridge to a certificate for another name");
  for (let i = 0; i < 6; i++) {
    for (const t of ["wrongca", "strict"]) await publish(pub, `${t}/x`, `m${i}`, { qos: 1 });
    await publish(pub2, "nocert/x", `m${i}`, { qos: 1 });
    await sleep(500);
  }
  await publish(pub, "good/marker", "end", { qos: 1 });
  await waitMessage(watcher, "good/marker", "end");
  const through = watcher.inbox.messages.filter((m) => /^(wrongca|strict|nocert)\//.test(m.topic)).map((m) => m.topic);
  assert.deepEqual([...new Set(through)], [], "no message through a bridge whose handshake must fail");
  // the upstream never saw their CONNECT: the handshake failed (wrong CA; a name not in the certificate; no client certificate)
  for (const name of [names.wrongca, names.strict, names.nocert]) {
    assert.ok(!up.output().includes(` as ${name} `), `the upstream let ${name} connect`);
  }
});

// ---------------------------------------------------------------------------------
// 8. the kind under test at both ends

bridgeTest("Midge to Midge: both directions, exactly once, no echo, notifications upstream", {
  skip: BROKER_KIND === "mosquitto" ? "both ends are the kind under test (Mosquitto to Mosquitto is every case above)" : false,
}, async (c) => {
  const up = await c.start(BROKER_KIND, "upstream-midge", []);
  const name = uid("m2m");
  const state = `$SYS/broker/connection/${name}/state`;
  const local = await c.startLocal(bridge(name, [up.port], ["room/# both 2", "# out 1 local/ remote/"]));
  const localSub = await connect(local);
  const upSub = await connect(up);
  await sub(localSub, { "room/#": { qos: 2 } });
  await sub(upSub, { "room/#": { qos: 2 }, "remote/#": { qos: 2 }, [state]: { qos: 1 } });
  await waitMessage(upSub, state, "1", 15_000);
  const localPub = await connect(local);
  const upPub = await connect(up);
  await exchangeOnce(localPub, upPub, localSub, upSub);
  await publish(localPub, "local/a", "prefixed", { qos: 1 });
  await waitMessage(upSub, "remote/a", "prefixed");
  await stopBroker(local);
  await waitMessage(upSub, state, "0", 15_000);
});
