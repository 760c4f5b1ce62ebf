// Persistence (issue 14; docs/ABI.md, "Persistence"): with `persistence true` the broker
// keeps retained messages, persistent sessions with their subscriptions, queued and
// in-flight QoS 1/2 messages, QoS 2 packet ids not yet released and delayed wills in
// `persistence_location`/`persistence_file`, and gets them back at the next start, after
// a SIGTERM or a kill -9. A damaged file is cut back to its valid prefix, a file that is
// not Midge's is kept aside as PATH.old, and a disk that is full or read-only degrades
// persistence without stopping the service.
//
// Every case starts its own broker on its own directory (a config file outside it), so
// cases never share a file. The random parts (kill moments, bit flips) come from one
// seed, printed at the start: MIDGE_TEST_SEED=N repeats a run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { crc32 } from "node:zlib";
import path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import {
  BROKER_KIND, HOST, PacketType, Prop, closeAll, connect, connectPacket, disconnect, disconnect5, freePort, parsePublish,
  parsePublish5, pingreq, puback, pubcomp, publish, publish5Packet, publishPacket, pubrec, pubrel, rawSession, rawSession5,
  rawSubscribe, rawSubscribe5, settle, sleep, splitPackets, startBroker, startMosquittoConf, subOptions, subscribe,
  subscribePacket, which, withTimeout, ack5, type Broker, type Prop5, type RawClient, type RawPacket,
} from "./helpers.js";

const skip = BROKER_KIND === "mosquitto" ? "Midge's own persistence (its keys, its file, its log lines)" : false;

// ---------------------------------------------------------------------------------
// the seed, and a small PRNG (mulberry32) per test case

const SEED = process.env.MIDGE_TEST_SEED ? Number(process.env.MIDGE_TEST_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
console.log(`36-persistence: seed ${SEED} (MIDGE_TEST_SEED=${SEED} repeats this run)`);

interface Rng {
  next(): number;
  /** a whole number from lo to hi, both included */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  bytes(n: number): Buffer;
}

/** A PRNG of its own for each case, so a case repeats whatever ran before it. */
function rng(name: string): Rng {
  let a = SEED;
  for (const ch of name) a = (Math.imul(a ^ ch.charCodeAt(0), 0x9e3779b1) + 0x7f4a7c15) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, chance: (p) => next() < p, bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(0, 255))) };
}

// ---------------------------------------------------------------------------------
// stores (a directory and the config file naming it) and brokers on them

const TMP = mkdtempSync(path.join(os.tmpdir(), "midge-persist-"));

interface Store {
  /** persistence_location (without its trailing slash) */
  dir: string;
  /** the config file, outside `dir` */
  conf: string;
  /** the persistence file: dir/persistence_file */
  db: string;
}

/** A config file with `persistence true` and the lines given; `dir` may be a mount point made by the caller. */
function store(name: string, lines: string[] = [], o: { file?: string; dir?: string } = {}): Store {
  const dir = o.dir ?? path.join(TMP, name);
  mkdirSync(dir, { recursive: true });
  const conf = path.join(TMP, `${name}.conf`);
  const text = ["persistence true", `persistence_location ${dir}/`, ...(o.file ? [`persistence_file ${o.file}`] : []), ...lines];
  writeFileSync(conf, text.join("\n") + "\n");
  return { dir, conf, db: path.join(dir, o.file ?? "midge.db") };
}

const startedAt = new WeakMap<Broker, number>();
const brokers = new Set<Broker>();
async function start(s: Store): Promise<Broker> {
  const b = await startBroker({ args: ["-c", s.conf] });
  startedAt.set(b, Date.now());
  brokers.add(b);
  b.proc.once("exit", () => brokers.delete(b));
  return b;
}
// a case that failed or timed out may leave its broker and sockets: end them, or the file never exits
after(async () => {
  destroyWires(true);
  await closeAll();
  for (const b of [...brokers]) await kill9(b);
  rmSync(TMP, { recursive: true, force: true });
});

/** kill -9, and wait for the process to be gone (its output is kept like stop()'s). */
async function kill9(b: Broker): Promise<void> {
  if (b.exitCode() === null) {
    const gone = new Promise((r) => b.proc.once("exit", r));
    b.proc.kill("SIGKILL");
    await gone;
  }
  await b.stop();
}

/** SIGTERM; the broker must have been alive until then and must exit with status 0. (The
 *  Node host sets its SIGTERM handler just after its listening line: a SIGTERM within that
 *  instant ends it by the signal, status 128 here, so wait 100 ms after a start.) */
async function stopClean(b: Broker): Promise<void> {
  await sleep((startedAt.get(b) ?? 0) + 100 - Date.now());
  b.assertAlive();
  await b.stop();
  assert.equal(b.exitCode(), 0, `the broker's status after SIGTERM\n${b.output().slice(-3000)}`);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

interface Restored { retained: number; sessions: number; subscriptions: number; queued: number; line: string }

/** The start line `persistence: restored N retained messages, N sessions, N subscriptions, N queued messages from PATH ...`. */
function restored(b: Broker, s: Store): Restored | null {
  const re = new RegExp(
    `persistence: restored (\\d+) retained messages?, (\\d+) sessions?, (\\d+) subscriptions?, (\\d+) queued messages? from ${esc(s.db)}\\b.*`,
  );
  const m = b.output().match(re);
  return m ? { retained: +m[1], sessions: +m[2], subscriptions: +m[3], queued: +m[4], line: m[0] } : null;
}

/** `persistence: PATH is damaged at byte O: cut off B bytes ...`: { at: O, cut: B }. */
function damaged(b: Broker, s: Store): { at: number; cut: number; line: string } | null {
  const m = b.output().match(new RegExp(`persistence: ${esc(s.db)} is damaged at byte (\\d+): cut off (\\d+) bytes?.*`));
  return m ? { at: +m[1], cut: +m[2], line: m[0] } : null;
}

/** `persistence: PATH ... kept as PATH.old, starting empty`. */
function keptOld(b: Broker, s: Store): string | null {
  const m = b.output().match(new RegExp(`persistence: ${esc(s.db)} .*kept as ${esc(s.db)}\\.old, starting empty.*`));
  return m ? m[0] : null;
}

/** `persistence: cannot write PATH: ...; persistence degraded ...`. */
const DEGRADED = (s: Store) => new RegExp(`persistence: cannot write ${esc(s.dir)}/\\S*: [^\\n]*persistence degraded`);

async function waitLog(b: Broker, re: RegExp, ms: number, what: string): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const m = b.output().match(re);
    if (m) return m[0];
    b.assertAlive();
    if (Date.now() - t0 > ms) throw new Error(`no log line ${re} within ${ms} ms (${what})\n${b.output().slice(-3000)}`);
    await sleep(25);
  }
}

/** Polls `pred` every 10 ms until it holds, `ms` at most. */
async function until(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------
// Wire: a raw MQTT 3.1.1 connection driven by a packet handler (the kill and volume
// tests run thousands of packets through it; helpers.ts's RawClient keeps every byte).

const wires = new Set<Wire>();

class Wire {
  private rest = Buffer.alloc(0);
  private backlog: RawPacket[] = [];
  private handler: ((p: RawPacket) => void) | null = null;
  private waiter: (() => void) | null = null;
  isClosed = false;
  /** kept open across tests (destroyWires(true) ends it too) */
  keep = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      const { packets, rest } = splitPackets(this.rest.length ? Buffer.concat([this.rest, d]) : d);
      this.rest = Buffer.from(rest);
      for (const p of packets) {
        if (this.handler) this.handler(p);
        else this.backlog.push(p);
      }
      this.wake();
    });
    socket.on("error", () => {}); // a killed broker resets the connection: `closed` says it
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        wires.delete(this);
        this.wake();
        resolve();
      }),
    );
  }

  static open(b: Broker): Promise<Wire> {
    return withTimeout(
      new Promise<Wire>((resolve, reject) => {
        const s = net.connect({ host: b.host, port: b.port });
        s.setNoDelay(true);
        s.once("error", reject);
        s.once("connect", () => {
          s.off("error", reject);
          const w = new Wire(s);
          wires.add(w);
          resolve(w);
        });
      }),
      5000,
      "TCP connect",
    );
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** From now on every packet goes to `fn` (those already received first). */
  handle(fn: (p: RawPacket) => void): void {
    this.handler = fn;
    const q = this.backlog;
    this.backlog = [];
    for (const p of q) fn(p);
  }

  /** The next packet, while no handler is set. */
  async next(ms = 5000, what = "a packet"): Promise<RawPacket> {
    const t0 = Date.now();
    for (;;) {
      const p = this.backlog.shift();
      if (p) return p;
      if (this.isClosed) throw new Error(`connection closed while waiting for ${what}`);
      const left = ms - (Date.now() - t0);
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  write(b: Buffer): void {
    if (!this.isClosed && !this.socket.destroyed) this.socket.write(b);
  }

  /** DISCONNECT, and wait for the broker to close. */
  async bye(): Promise<void> {
    this.write(disconnect());
    this.socket.end();
    await withTimeout(this.closed, 5000, "close after DISCONNECT");
  }

  destroy(): void {
    wires.delete(this);
    this.socket.destroy();
  }
}

function destroyWires(all = false): void {
  for (const w of [...wires]) if (all || !w.keep) w.destroy();
}
afterEach(() => {
  destroyWires();
  return closeAll();
});

/** A 3.1.1 CONNECT on a new Wire; the CONNACK must accept it. */
async function connectWire(b: Broker, clientId: string, clean: boolean): Promise<{ wire: Wire; sessionPresent: boolean }> {
  const wire = await Wire.open(b);
  wire.write(connectPacket({ clientId, clean, keepalive: 60 }));
  const ack = await wire.next(5000, `CONNACK for ${clientId}`);
  assert.equal(ack.type, PacketType.CONNACK, `CONNACK for ${clientId}`);
  assert.equal(ack.body[1], 0, `CONNACK return code for ${clientId}`);
  return { wire, sessionPresent: (ack.body[0] & 1) === 1 };
}

interface Msg {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain?: boolean;
}

/** Publishes every message (up to `window` unacknowledged at once; QoS 2 through PUBCOMP),
 *  then a PINGREQ: resolves once everything was acknowledged and the PINGRESP came back. */
function publishAll(w: Wire, msgs: Msg[], window = 100, ms = 60_000): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      let i = 0;
      let lastId = 0;
      let pinged = false;
      const open = new Set<number>();
      const pump = () => {
        while (open.size < window && i < msgs.length) {
          const m = msgs[i++];
          if (m.qos === 0) {
            w.write(publishPacket({ ...m, qos: 0 }));
            continue;
          }
          do lastId = (lastId % 65535) + 1;
          while (open.has(lastId));
          open.add(lastId);
          w.write(publishPacket({ ...m, id: lastId }));
        }
        if (i === msgs.length && open.size === 0 && !pinged) {
          pinged = true;
          w.write(pingreq());
        }
      };
      w.handle((p) => {
        if (p.type === PacketType.PINGRESP) return resolve();
        const id = p.body.readUInt16BE(0);
        if (p.type === PacketType.PUBREC) w.write(pubrel(id));
        else if (p.type === PacketType.PUBACK || p.type === PacketType.PUBCOMP) open.delete(id);
        else return reject(new Error(`publisher: unexpected packet type ${p.type}`));
        pump();
      });
      w.closed.then(() => reject(new Error("the publisher's connection closed")));
      pump();
    }),
    ms,
    `publishing ${msgs.length} messages`,
  );
}

/** Subscribes over a Wire (before any handler is set); returns the SUBACK codes. */
async function wireSubscribe(w: Wire, filters: Array<[string, number]>): Promise<number[]> {
  w.write(subscribePacket(1, filters));
  const ack = await w.next(5000, "SUBACK");
  assert.equal(ack.type, PacketType.SUBACK);
  return [...ack.body.subarray(2)];
}

/** Receives on `w`: acknowledges every PUBLISH (QoS 2: PUBREC, then PUBCOMP on PUBREL) and
 *  hands each to `got` once per packet id (a QoS 2 PUBLISH repeated before its PUBREL is not handed again). */
function receive(w: Wire, got: (m: ReturnType<typeof parsePublish>) => void): void {
  const unreleased = new Set<number>();
  w.handle((p) => {
    if (p.type === PacketType.PUBLISH) {
      const m = parsePublish(p);
      if (m.qos === 1) w.write(puback(m.id));
      if (m.qos === 2) {
        w.write(pubrec(m.id));
        if (unreleased.has(m.id)) return;
        unreleased.add(m.id);
      }
      got(m);
    } else if (p.type === PacketType.PUBREL) {
      const id = p.body.readUInt16BE(0);
      unreleased.delete(id);
      w.write(pubcomp(id));
    }
  });
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

// ---------------------------------------------------------------------------------
// 1. kill -9 at random moments under load

interface KillCase {
  name: string;
  qos: 1 | 2;
  sync: "always" | "interval";
  kills: number;
  /** autosave_interval, when the file sets it (default 1800 s, as Mosquitto's) */
  autosave?: number;
  /** autosave_on_changes true: autosave_interval counts changes (records), as in Mosquitto */
  onChanges?: boolean;
}

/** Unacknowledged PUBLISHes the publisher keeps in flight. */
const WINDOW = 32;
/** Messages published and not yet received by the subscriber, at most: its queue
 *  (max_queued_messages 1000) must never overflow, or the broker would rightly drop. */
const UNREAD_MAX = 400;

/**
 * One persistent subscriber (clean session false, one subscription made once) and one
 * persistent publisher, both with fixed client ids. Each round: start the broker on the
 * same file, reconnect both (the subscriber only sometimes: else it is offline), the
 * publisher resends what is unacknowledged [MQTT-4.4.0-1] and publishes numbered messages
 * as acks come; then kill -9 at a random moment. A last round without a kill lets the
 * publisher finish and the subscriber drain. Returns what it saw.
 */
async function killRun(c: KillCase, signal: AbortSignal): Promise<void> {
  const r = rng(c.name);
  const s = store(`kill-${c.name}`, [
    `persistence_sync ${c.sync}`, "max_queued_messages 1000", ...(c.autosave ? [`autosave_interval ${c.autosave}`] : []),
    ...(c.onChanges ? ["autosave_on_changes true"] : []),
  ]);
  const topic = `kill/${c.name}`;
  const pubId = `kill-pub-${c.name}`;
  const subId = `kill-sub-${c.name}`;

  // the publisher's side
  let nextNo = 0;
  let lastId = 0;
  /** packet id -> message number; `released`: PUBREC came and PUBREL was sent (QoS 2) */
  const inflight = new Map<number, { no: number; released: boolean }>();
  const acked = new Set<number>();
  const strayAcks: string[] = [];
  let publishing = true;

  // the subscriber's side, kept across its connections (its half of the session)
  const got = new Map<number, number>(); // message number -> times handed to the application
  const unreleased = new Set<number>(); // QoS 2 packet ids received, PUBREL not yet
  let dupFlags = 0;
  let wrongQos = 0;
  // for the report of a failure: the round each message was acknowledged in, and the QoS 2
  // PUBLISHes not handed on because their packet id was still unreleased
  let round = 0;
  const ackedIn = new Map<number, number>();
  const heldBack = new Map<number, string>();
  const handedOn = new Map<number, string[]>(); // how each message came each time it was handed on
  const story = new Map<number, string[]>(); // the publisher's side of each message
  const tell = (no: number, what: string) => story.set(no, [...(story.get(no) ?? []), `${what} r${round}`]);

  const attachPublisher = (w: Wire) => {
    const pump = () => {
      while (publishing && !w.isClosed && inflight.size < WINDOW && nextNo - got.size < UNREAD_MAX) {
        do lastId = (lastId % 65535) + 1;
        while (inflight.has(lastId));
        const no = nextNo++;
        tell(no, `PUBLISH ${lastId}`);
        inflight.set(lastId, { no, released: false });
        w.write(publishPacket({ topic, payload: String(no), qos: c.qos, id: lastId }));
      }
    };
    w.handle((p) => {
      const id = p.body.readUInt16BE(0);
      const m = inflight.get(id);
      if (m) tell(m.no, ["", "", "", "", "PUBACK", "PUBREC", "", "PUBCOMP"][p.type] ?? `type ${p.type}`);
      if (p.type === PacketType.PUBACK && c.qos === 1 && m) {
        acked.add(m.no);
        ackedIn.set(m.no, round);
        inflight.delete(id);
      } else if (p.type === PacketType.PUBREC && c.qos === 2 && m) {
        if (!acked.has(m.no)) ackedIn.set(m.no, round);
        acked.add(m.no);
        m.released = true;
        w.write(pubrel(id));
      } else if (p.type === PacketType.PUBCOMP && c.qos === 2 && m?.released) {
        inflight.delete(id);
      } else {
        strayAcks.push(`type ${p.type} id ${id}`);
      }
      pump();
    });
    // [MQTT-4.4.0-1] the same packet ids: PUBLISH again (DUP) or PUBREL, in order
    for (const [id, m] of inflight) {
      tell(m.no, m.released ? "PUBREL again" : "PUBLISH again");
      w.write(m.released ? pubrel(id) : publishPacket({ topic, payload: String(m.no), qos: c.qos, id, dup: true }));
    }
    pump();
    return pump;
  };

  const attachSubscriber = (w: Wire) => {
    w.handle((p) => {
      if (p.type === PacketType.PUBLISH) {
        const m = parsePublish(p);
        const no = Number(m.payload.toString());
        if (m.dup) dupFlags++;
        if (m.qos !== c.qos) wrongQos++;
        const how = `id ${m.id}${m.dup ? " dup" : ""} in round ${round}`;
        if (m.qos === 1) {
          got.set(no, (got.get(no) ?? 0) + 1);
          w.write(puback(m.id));
        } else if (m.qos === 2) {
          if (!unreleased.has(m.id)) {
            got.set(no, (got.get(no) ?? 0) + 1);
            handedOn.set(no, [...(handedOn.get(no) ?? []), how]);
            unreleased.add(m.id);
          } else {
            heldBack.set(no, `id ${m.id} dup ${m.dup} in round ${round}`);
          }
          w.write(pubrec(m.id));
        }
      } else if (p.type === PacketType.PUBREL) {
        const id = p.body.readUInt16BE(0);
        unreleased.delete(id);
        w.write(pubcomp(id));
      }
    });
  };

  const restartMs: number[] = [];
  // what the brokers said about dropping (a stalled or overfull subscriber), for a failure's report
  const dropLines: string[] = [];
  const noteDrops = (b: Broker, k: number) => {
    for (const l of b.output().split("\n")) if (/dropping messages|stalled|lagging/.test(l)) dropLines.push(`r${k}: ${l}`);
  };
  let killsWhileReading = 0;
  let offlineStreak = 0;
  for (let k = 0; k <= c.kills; k++) {
    round = k;
    if (signal.aborted) throw new Error(`cancelled in round ${k}`);
    const last = k === c.kills;
    const t0 = performance.now();
    const b = await start(s);
    restartMs.push(performance.now() - t0);
    if (k > 0) {
      const rs = restored(b, s);
      assert.ok(rs, `round ${k}: no restore line\n${b.output().slice(-2000)}`);
      assert.equal(rs.sessions, 2, `round ${k}: the publisher's and the subscriber's sessions: ${rs.line}`);
      assert.equal(rs.subscriptions, 1, `round ${k}: ${rs.line}`);
    }
    if (k === 0) {
      // the policy in force, stated at start
      const policy = c.sync === "always" ? "persistence_sync always"
        : c.onChanges ? `synced every ${c.autosave ?? 1800} changes \\(persistence_sync interval, autosave_on_changes true\\)`
        : `synced every ${c.autosave ?? 1800} s \\(persistence_sync interval\\)`;
      assert.match(b.output(), new RegExp(`persistence: ${esc(s.db)}: .*${policy}`));
    }
    const pub = await connectWire(b, pubId, false);
    if (k > 0) assert.equal(pub.sessionPresent, true, `[MQTT-3.2.2-2] round ${k}: the publisher's session after the restart`);
    const online = k === 0 || last || offlineStreak >= 2 || r.chance(0.5);
    if (online) {
      offlineStreak = 0;
      const sub = await connectWire(b, subId, false);
      if (k > 0) assert.equal(sub.sessionPresent, true, `[MQTT-3.2.2-2] round ${k}: the subscriber's session after the restart`);
      if (k === 0) assert.deepEqual(await wireSubscribe(sub.wire, [[topic, c.qos]]), [c.qos]);
      attachSubscriber(sub.wire);
    } else {
      offlineStreak++;
    }
    if (last) publishing = false;
    attachPublisher(pub.wire);
    if (last) {
      await until(() => inflight.size === 0, 20_000, () => `the publisher's last ${inflight.size} messages acknowledged`);
      // drained, or no progress for 3 s (then the assertions below say what is missing)
      let progress = -1;
      let since = Date.now();
      await until(() => {
        const n = got.size + 1e6 * unreleased.size;
        if (n !== progress) [progress, since] = [n, Date.now()];
        return ([...acked].every((no) => got.has(no)) && unreleased.size === 0) || Date.now() - since > 3000;
      }, 30_000, () => "the subscriber to drain");
      await settle(300); // late duplicates
      destroyWires();
      await stopClean(b);
      noteDrops(b, k);
      break;
    }
    await sleep(r.int(0, 150));
    if (online) killsWhileReading++;
    await kill9(b);
    noteDrops(b, k);
    destroyWires();
  }

  const missing = [...acked].filter((no) => !got.has(no)).sort((a, b) => a - b);
  const twice = [...got].filter(([, n]) => n > 1).map(([no]) => no);
  console.log(
    `  ${c.name}: ${c.kills} kills (${killsWhileReading} while the subscriber read), ${nextNo} messages, ${acked.size} acknowledged, ` +
      `${got.size} received, ${twice.length} received more than once, ${dupFlags} with DUP; restart median ${median(restartMs).toFixed(0)} ms`,
  );
  assert.deepEqual(strayAcks, [], "acks for packet ids the publisher did not have in flight");
  assert.equal(wrongQos, 0, `deliveries at a QoS other than ${c.qos}`);
  assert.equal(acked.size, nextNo, "every message published was acknowledged in the end");
  assert.ok([...got.keys()].every((no) => no < nextNo), "only messages that were published");
  // what was lost, and (QoS 2) what came twice, in one answer: each with its story
  const why = (no: number) =>
    `${no} (${story.get(no)?.join(", ")}${heldBack.has(no) ? `; to the subscriber: held back as a repeat, ${heldBack.get(no)}` : ""})`;
  const twiceQos2 = c.qos === 2 ? twice : [];
  assert.deepEqual(
    { lost: missing.slice(0, 8).map(why), twice: twiceQos2.slice(0, 8).map((no) => `${no}: ${handedOn.get(no)?.join(", then ")}`) },
    { lost: [], twice: [] },
    `${missing.length} acknowledged messages never delivered` +
      (c.qos === 2 ? `, ${twice.length} delivered more than once (QoS 2: exactly once)` : "") +
      `; ${unreleased.size} PUBRELs still owed to the subscriber` +
      (dropLines.length ? `; the brokers said:\n${dropLines.slice(0, 10).join("\n")}` : "; no broker logged a drop"),
  );
}

describe("persistence: kill -9 at random moments under load", { skip }, () => {
  // 100 kills in all
  const cases: KillCase[] = [
    { name: "qos1-always", qos: 1, sync: "always", kills: 35 },
    { name: "qos2-always", qos: 2, sync: "always", kills: 35 },
    { name: "qos1-interval", qos: 1, sync: "interval", kills: 10 },
    { name: "qos1-changes", qos: 1, sync: "interval", kills: 5, autosave: 100, onChanges: true },
    { name: "qos2-interval", qos: 2, sync: "interval", kills: 15, autosave: 5 },
  ];
  for (const c of cases) {
    const what = c.sync === "always"
      ? `QoS ${c.qos}, persistence_sync always: every acknowledged message is delivered after ${c.kills} kills` +
        (c.qos === 2 ? ", each exactly once" : "")
      : `QoS ${c.qos}, persistence_sync interval${c.onChanges ? " synced every 100 changes (autosave_on_changes)" : ""}: ` +
        `a kill -9 of the process alone loses nothing acknowledged (${c.kills} kills)`;
    test(`[MQTT-4.4.0-1] ${what}`, { timeout: 120_000 }, (t) => killRun(c, t.signal));
  }
});

// ---------------------------------------------------------------------------------
// 2. volume: 10,000 retained messages and 1,000 sessions across a clean restart

describe("persistence: 10,000 retained messages and 1,000 persistent sessions survive a clean restart", { skip }, () => {
  test("[MQTT-3.2.2-2] every retained message identical, every session present with its queue", { timeout: 180_000 }, async () => {
    const r = rng("volume");
    const s = store("volume");
    const RETAINED = 10_000;
    const SESSIONS = 1_000;
    let b = await start(s);

    const retained = new Map<string, Msg>();
    for (let i = 0; i < RETAINED; i++) {
      const m: Msg = { topic: `vol/r/${i % 100}/${i}`, payload: r.bytes(r.int(1, 200)), qos: (i % 3) as 0 | 1 | 2, retain: true };
      retained.set(m.topic, m);
    }
    const pub = await connectWire(b, "volume-pub", true);
    await publishAll(pub.wire, [...retained.values()]);

    const queued: Buffer[][] = Array.from({ length: SESSIONS }, (_, i) =>
      Array.from({ length: 1 + (i % 3) }, (_, j) => Buffer.from(`queued ${i}.${j} ${r.bytes(8).toString("hex")}`)),
    );
    const sid = (i: number) => `volume-s-${i}`;
    await pool(queued, 25, async (_, i) => {
      const c = await connectWire(b, sid(i), false);
      assert.deepEqual(await wireSubscribe(c.wire, [[`vol/q/${i}`, 1]]), [1]);
      await c.wire.bye();
    });
    await publishAll(pub.wire, queued.flatMap((ms, i) => ms.map((payload) => ({ topic: `vol/q/${i}`, payload, qos: 1 as const }))));
    const queuedCount = queued.reduce((n, ms) => n + ms.length, 0);
    pub.wire.destroy();
    await stopClean(b);
    console.log(`  volume: ${(statSync(s.db).size / 1024).toFixed(0)} KiB on disk for ${RETAINED} retained, ${SESSIONS} sessions, ${queuedCount} queued`);

    const t0 = performance.now();
    b = await start(s);
    const ms = performance.now() - t0;
    const rs = restored(b, s);
    assert.ok(rs, `no restore line\n${b.output().slice(-2000)}`);
    // 6. restore time: stated, not asserted
    console.log(`  volume: restart to listening ${ms.toFixed(0)} ms; ${rs.line}`);

    // every retained message: topic, payload, QoS, retain flag
    const sub = await connectWire(b, "volume-sub", true);
    assert.deepEqual(await wireSubscribe(sub.wire, [["vol/r/#", 2]]), [2]);
    const seen = new Map<string, ReturnType<typeof parsePublish>>();
    let extra = 0;
    receive(sub.wire, (m) => {
      if (seen.has(m.topic)) extra++;
      seen.set(m.topic, { ...m, payload: Buffer.from(m.payload) });
    });
    await until(() => seen.size >= RETAINED, 60_000, () => `${RETAINED} retained messages (have ${seen.size})`);
    await settle(300);
    assert.equal(extra, 0, "a retained message sent twice");
    let wrong = 0;
    const firstWrong: string[] = [];
    for (const [topic, m] of retained) {
      const g = seen.get(topic);
      const ok = g && g.payload.equals(m.payload) && g.qos === m.qos && g.retain;
      if (!ok) {
        wrong++;
        if (firstWrong.length < 5) firstWrong.push(`${topic}: ${g ? `qos ${g.qos} retain ${g.retain} ${g.payload.length} B` : "missing"}`);
      }
    }
    assert.equal(wrong, 0, `retained messages not identical: ${firstWrong.join("; ")}`);
    sub.wire.destroy();

    // every session: present, its queue delivered in order; its subscription live (a sample)
    const live = new Set(Array.from({ length: 50 }, () => r.int(0, SESSIONS - 1)));
    const publishLive = qos1Publisher((await connectWire(b, "volume-pub2", true)).wire);
    const notPresent: number[] = [];
    const badQueue: string[] = [];
    await pool(queued, 25, async (expected, i) => {
      const c = await connectWire(b, sid(i), false);
      if (!c.sessionPresent) notPresent.push(i);
      const msgs: ReturnType<typeof parsePublish>[] = [];
      receive(c.wire, (m) => msgs.push({ ...m, payload: Buffer.from(m.payload) }));
      const want = expected.length + (live.has(i) ? 1 : 0);
      await until(() => msgs.length >= expected.length || c.wire.isClosed, 10_000, () => `session ${i}: ${msgs.length} of ${expected.length} queued`);
      if (live.has(i)) {
        await publishLive(`vol/q/${i}`, Buffer.from(`live ${i}`));
        await until(() => msgs.length >= want, 5000, () => `session ${i}: the live message`);
      }
      await settle(50);
      const got = msgs.map((m) => `${m.topic} ${m.qos} ${m.payload.toString()}`);
      const exp = [...expected, ...(live.has(i) ? [Buffer.from(`live ${i}`)] : [])].map((p) => `vol/q/${i} 1 ${p.toString()}`);
      if (JSON.stringify(got) !== JSON.stringify(exp)) badQueue.push(`session ${i}: got ${JSON.stringify(got)}, expected ${JSON.stringify(exp)}`);
      await c.wire.bye();
    });
    assert.deepEqual(notPresent.slice(0, 20), [], `${notPresent.length} sessions not present after the restart`);
    assert.deepEqual(badQueue.slice(0, 5), [], `${badQueue.length} sessions with another queue than before the restart`);
    // last, so that the checks above say what a wrong count means: the file holds what was
    // published and nothing else ($SYS is not written to it: README, $SYS)
    assert.deepEqual(
      [rs.retained, rs.sessions, rs.subscriptions, rs.queued],
      [RETAINED, SESSIONS, SESSIONS, queuedCount],
      `the counts of the restore line: ${rs.line}`,
    );
    await stopClean(b);
  });
});

/** A QoS 1 publisher on `w` for callers that publish at the same time: each call waits for its own PUBACK. */
function qos1Publisher(w: Wire): (topic: string, payload: Buffer) => Promise<void> {
  let lastId = 0;
  const waiting = new Map<number, () => void>();
  w.handle((p) => {
    if (p.type === PacketType.PUBACK) waiting.get(p.body.readUInt16BE(0))?.();
  });
  return (topic, payload) => {
    do lastId = (lastId % 65535) + 1;
    while (waiting.has(lastId));
    const id = lastId;
    const acked = new Promise<void>((resolve) => waiting.set(id, () => {
      waiting.delete(id);
      resolve();
    }));
    w.write(publishPacket({ topic, payload, qos: 1, id }));
    return withTimeout(acked, 5000, `PUBACK for ${topic}`);
  };
}

// ---------------------------------------------------------------------------------
// what a restart keeps, one thing at a time: a kill -9 and 3.2 s down

describe("persistence: what a kill -9 and 3.2 s down keep", { skip }, () => {
  const DOWN = 3200;
  const s = store("detail");
  let b: Broker;
  let killedAt = 0;
  let restartedAt = 0;
  let dropAt = 0;
  const inflightIds: Record<string, number> = {};
  /** what the will subscriber received, and when */
  const wills: Array<{ topic: string; payload: string; at: number }> = [];
  let willsBeforeKill = 0;

  /** QoS 1 or 2 PUBLISH (MQTT 5) from a raw client, acknowledged through PUBCOMP. */
  async function publish5(raw: RawClient, id: number, topic: string, payload: string | Buffer, qos: 0 | 1 | 2, retain: boolean, properties: Prop5[] = []) {
    raw.write(publish5Packet({ topic, payload, qos, retain, id: qos ? id : undefined, properties }));
    if (qos === 1) await raw.expect(PacketType.PUBACK);
    if (qos === 2) {
      await raw.expect(PacketType.PUBREC);
      raw.write(ack5(PacketType.PUBREL, id));
      await raw.expect(PacketType.PUBCOMP);
    }
  }

  before(async () => {
    b = await start(s);
    const pub5 = (await rawSession5(b, { clientId: "detail-pub5" })).raw;
    // retained messages, with MQTT 5 properties and a Message Expiry
    await publish5(pub5, 1, "r/plain", "zero", 0, true);
    await publish5(pub5, 2, "r/q1", Buffer.from(Array.from({ length: 256 }, (_, i) => i)), 1, true);
    await publish5(pub5, 3, "r/props", "props", 2, true, [
      [Prop.PayloadFormat, 1],
      [Prop.MessageExpiry, 100],
      [Prop.ContentType, "text/plain"],
      [Prop.ResponseTopic, "resp/x"],
      [Prop.CorrelationData, Buffer.from([1, 2, 3, 0, 255])],
      [Prop.UserProperty, ["b", "2"]],
      [Prop.UserProperty, ["a", "1"]],
    ]);
    await publish5(pub5, 4, "r/short", "short", 1, true, [[Prop.MessageExpiry, 2]]);
    await publish5(pub5, 5, "r/gone", "gone", 1, true);
    await publish5(pub5, 6, "r/gone", "", 1, true); // deletes it
    await publish5(pub5, 7, "o/rh", "kept", 1, true);

    // an MQTT 5 session with three subscriptions, each with its options and identifier
    const s5 = (await rawSession5(b, { clientId: "detail-s5", properties: [[Prop.SessionExpiry, 300]] })).raw;
    assert.deepEqual(await rawSubscribe5(s5, 1, [["o/nl", subOptions({ qos: 1, nl: true })]], [[Prop.SubscriptionId, 7]]), [1]);
    assert.deepEqual(await rawSubscribe5(s5, 2, [["o/rap", subOptions({ qos: 1, rap: true })]], [[Prop.SubscriptionId, 8]]), [1]);
    assert.deepEqual(await rawSubscribe5(s5, 3, [["o/rh", subOptions({ qos: 1, rh: 1 })]], [[Prop.SubscriptionId, 9]]), [1]);
    const kept = parsePublish5(await s5.expect(PacketType.PUBLISH)); // Retain Handling 1, a new subscription: sent
    assert.equal(kept.payload.toString(), "kept");
    s5.write(ack5(PacketType.PUBACK, kept.id));
    s5.write(disconnect5());
    await s5.waitClose();
    // a session that expires while the broker is down
    const short = (await rawSession5(b, { clientId: "detail-s5-short", properties: [[Prop.SessionExpiry, 2]] })).raw;
    await rawSubscribe5(short, 1, [["short/#", 1]]);
    short.write(disconnect5());
    await short.waitClose();

    // a 3.1.1 session, offline, with QoS 1 and 2 messages queued
    const q = await rawSession(b, { clientId: "detail-q311", clean: false });
    await rawSubscribe(q.raw, 1, [["q311/#", 2]]);
    q.raw.write(disconnect());
    await q.raw.waitClose();
    const pub = (await rawSession(b, { clientId: "detail-pub" })).raw;
    pub.write(publishPacket({ topic: "q311/a", payload: "first", qos: 1, id: 1 }));
    await pub.expect(PacketType.PUBACK);
    pub.write(publishPacket({ topic: "q311/b", payload: "second", qos: 2, id: 2 }));
    await pub.expect(PacketType.PUBREC);
    pub.write(pubrel(2));
    await pub.expect(PacketType.PUBCOMP);

    // a connected 3.1.1 session with two PUBLISHes unacknowledged and a PUBREL owed
    const inf = (await rawSession(b, { clientId: "detail-inflight", clean: false })).raw;
    await rawSubscribe(inf, 1, [["inf/#", 2]]);
    for (const [i, qos] of [[1, 1], [2, 2], [3, 2]] as const) {
      pub.write(publishPacket({ topic: `inf/${i}`, payload: `message ${i}`, qos, id: 10 + i }));
      if (qos === 1) await pub.expect(PacketType.PUBACK);
      else {
        await pub.expect(PacketType.PUBREC);
        pub.write(pubrel(10 + i));
        await pub.expect(PacketType.PUBCOMP);
      }
      const m = parsePublish(await inf.expect(PacketType.PUBLISH));
      assert.equal(m.topic, `inf/${i}`);
      inflightIds[m.topic] = m.id;
    }
    inf.write(pubrec(inflightIds["inf/3"]));
    assert.equal((await inf.expect(PacketType.PUBREL)).body.readUInt16BE(0), inflightIds["inf/3"]);

    // a QoS 2 message received (PUBREC sent) and not released; its subscriber offline
    const relSub = await rawSession(b, { clientId: "detail-rel-sub", clean: false });
    await rawSubscribe(relSub.raw, 1, [["rel/#", 2]]);
    relSub.raw.write(disconnect());
    await relSub.raw.waitClose();
    const relPub = (await rawSession(b, { clientId: "detail-rel-pub", clean: false })).raw;
    relPub.write(publishPacket({ topic: "rel/x", payload: "once", qos: 2, id: 77 }));
    assert.equal((await relPub.expect(PacketType.PUBREC)).body.readUInt16BE(0), 77);

    // wills: a delayed one (its client gone), and a persistent session's (its client connected at the kill)
    const ws = await connectWire(b, "detail-will-sub", false);
    assert.deepEqual(await wireSubscribe(ws.wire, [["will/#", 1]]), [1]);
    receive(ws.wire, (m) => wills.push({ topic: m.topic, payload: m.payload.toString(), at: Date.now() }));
    const w1 = await rawSession5(b, {
      clientId: "detail-will-delayed",
      properties: [[Prop.SessionExpiry, 300]],
      will: { topic: "will/delayed", payload: "delayed", qos: 1, properties: [[Prop.WillDelay, 3]] },
    });
    w1.raw.destroy();
    dropAt = Date.now();
    await rawSession(b, { clientId: "detail-will-connected", clean: false, will: { topic: "will/connected", payload: "lost", qos: 1 } });
    await settle(300);
    willsBeforeKill = wills.length;

    killedAt = Date.now();
    await kill9(b);
    destroyWires();
    await closeAll();
    await sleep(DOWN - (Date.now() - killedAt));
    b = await start(s);
    restartedAt = Date.now();
    const ws2 = await connectWire(b, "detail-will-sub", false);
    ws2.wire.keep = true; // read by the wills test
    assert.equal(ws2.sessionPresent, true, "the will subscriber's session");
    receive(ws2.wire, (m) => wills.push({ topic: m.topic, payload: m.payload.toString(), at: Date.now() }));
  });

  after(async () => {
    destroyWires(true);
    await closeAll();
    if (b) await stopClean(b);
  });

  // first: the will subscriber reconnected right after the restart, and the delayed will is timed from then
  test("wills: a persistent session's, its client connected at the kill, and a delayed one, its delay counted across the time down", async () => {
    assert.equal(willsBeforeKill, 0, "no will before the kill (the delay had not passed)");
    const t0 = Date.now();
    await until(() => wills.length >= 2, 8000, () => `two wills (have ${JSON.stringify(wills)})`);
    await settle(200);
    const byTopic = Object.fromEntries(wills.map((w) => [w.topic, w]));
    assert.deepEqual(wills.map((w) => `${w.topic} ${w.payload}`).sort(), ["will/connected lost", "will/delayed delayed"]);
    const delayed = byTopic["will/delayed"];
    assert.ok(delayed.at >= dropAt + 3000 - 50, `the delayed will came ${delayed.at - dropAt} ms after its client dropped (delay 3 s)`);
    // it was due 3 s after the drop, about when the broker came back: not 3 s after the restart
    assert.ok(delayed.at - restartedAt < 2500, `the delayed will came ${delayed.at - restartedAt} ms after the restart (${restartedAt - dropAt} ms after the drop; waited ${Date.now() - t0} ms here)`);
  });

  test("the restore line names the file and what it held", () => {
    const rs = restored(b, s);
    assert.ok(rs, b.output().slice(-2000));
    assert.ok(rs.retained >= 4, rs.line); // r/plain, r/q1, r/props, o/rh (and r/short, if counted before it expires)
    assert.ok(rs.sessions >= 8, rs.line);
    assert.ok(existsSync(s.db));
    assert.doesNotMatch(b.output(), /is damaged at byte|kept as .*\.old/, "a file written by Midge itself, killed: nothing damaged");
  });

  test("[MQTT-3.3.2-5] [MQTT-3.3.2-6] retained messages: payload, QoS and properties kept; the time down counted against Message Expiry", async () => {
    const sub = (await rawSession5(b, { clientId: "detail-r-sub" })).raw;
    await rawSubscribe5(sub, 1, [["r/#", subOptions({ qos: 2 })]]);
    const got = [];
    for (let i = 0; i < 3; i++) got.push(parsePublish5(await sub.expect(PacketType.PUBLISH)));
    await settle(300);
    assert.deepEqual(sub.unread.filter((p) => p.type === PacketType.PUBLISH).map((p) => parsePublish5(p).topic), [],
      "r/short has expired while the broker was down, r/gone was deleted");
    got.sort((x, y) => x.topic.localeCompare(y.topic));
    assert.deepEqual(got.map((m) => [m.topic, m.qos, m.retain]), [["r/plain", 0, true], ["r/props", 2, true], ["r/q1", 1, true]]);
    assert.equal(got[0].payload.toString(), "zero");
    assert.deepEqual([...got[2].payload], Array.from({ length: 256 }, (_, i) => i));
    const p = got[1];
    assert.equal(p.payload.toString(), "props");
    assert.equal(p.props.get(Prop.PayloadFormat), 1);
    assert.equal(p.props.get(Prop.ContentType), "text/plain");
    assert.equal(p.props.get(Prop.ResponseTopic), "resp/x");
    assert.deepEqual(p.props.get(Prop.CorrelationData), Buffer.from([1, 2, 3, 0, 255]));
    assert.deepEqual(p.props.user, [["b", "2"], ["a", "1"]], "user properties in their order");
    const left = p.props.get(Prop.MessageExpiry) as number;
    assert.ok(left <= 100 - Math.floor(DOWN / 1000) && left >= 60, `Message Expiry left: ${left} s of 100, after ${DOWN} ms down`);
  });

  test("[MQTT-3.2.2-3] [MQTT-3.8.3-3] [MQTT-3.3.1-13] [MQTT-3.3.1-10] an MQTT 5 session: present, its subscriptions with No Local, Retain As Published, Retain Handling and their identifiers", async () => {
    const { raw: s5, connack } = await rawSession5(b, { clientId: "detail-s5", clean: false, properties: [[Prop.SessionExpiry, 300]] });
    assert.equal(connack.sessionPresent, true);
    const other = (await rawSession5(b, { clientId: "detail-other" })).raw;
    // No Local: its own message does not come back; another client's does, with identifier 7
    s5.write(publish5Packet({ topic: "o/nl", payload: "own", qos: 1, id: 1 }));
    await s5.expect(PacketType.PUBACK);
    other.write(publish5Packet({ topic: "o/nl", payload: "other", qos: 1, id: 1 }));
    let m = parsePublish5(await s5.expect(PacketType.PUBLISH));
    assert.deepEqual([m.topic, m.payload.toString(), m.props.get(Prop.SubscriptionId)], ["o/nl", "other", 7]);
    s5.write(ack5(PacketType.PUBACK, m.id));
    // Retain As Published: the retain flag kept, identifier 8
    other.write(publish5Packet({ topic: "o/rap", payload: "rap", qos: 1, id: 2, retain: true }));
    m = parsePublish5(await s5.expect(PacketType.PUBLISH));
    assert.deepEqual([m.topic, m.retain, m.props.get(Prop.SubscriptionId)], ["o/rap", true, 8]);
    s5.write(ack5(PacketType.PUBACK, m.id));
    // Retain Handling 1: the subscription exists, so subscribing again sends no retained message
    assert.deepEqual(await rawSubscribe5(s5, 4, [["o/rh", subOptions({ qos: 1, rh: 1 })]], [[Prop.SubscriptionId, 9]]), [1]);
    other.write(publish5Packet({ topic: "o/rap", payload: "marker", qos: 1, id: 3 }));
    m = parsePublish5(await s5.expect(PacketType.PUBLISH));
    assert.deepEqual([m.topic, m.payload.toString()], ["o/rap", "marker"], "the retained o/rh was not sent again");
  });

  test("[MQTT-3.2.2-3] a session whose Session Expiry Interval ran out while the broker was down is gone", async () => {
    const { connack } = await rawSession5(b, { clientId: "detail-s5-short", clean: false, properties: [[Prop.SessionExpiry, 2]] });
    assert.equal(connack.sessionPresent, false);
  });

  test("[MQTT-3.2.2-2] a 3.1.1 session (clean session 0): present, its queued QoS 1 and 2 messages delivered in order", async () => {
    const q = await rawSession(b, { clientId: "detail-q311", clean: false });
    assert.equal(q.sessionPresent, true);
    const a = parsePublish(await q.raw.expect(PacketType.PUBLISH));
    const c = parsePublish(await q.raw.expect(PacketType.PUBLISH));
    assert.deepEqual([a.topic, a.payload.toString(), a.qos], ["q311/a", "first", 1]);
    assert.deepEqual([c.topic, c.payload.toString(), c.qos], ["q311/b", "second", 2]);
  });

  test("[MQTT-4.4.0-1] in flight at the kill: the PUBLISHes again with DUP and their packet ids, the PUBREL still owed; then nothing more", async () => {
    const q = await rawSession(b, { clientId: "detail-inflight", clean: false });
    assert.equal(q.sessionPresent, true);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await q.raw.next(5000, "a resent packet");
      if (p.type === PacketType.PUBLISH) {
        const m = parsePublish(p);
        seen.push(`PUBLISH ${m.topic} qos ${m.qos} dup ${m.dup} id ${m.id} ${m.payload}`);
      } else {
        seen.push(`type ${p.type} flags ${p.flags} id ${p.body.readUInt16BE(0)}`);
      }
    }
    const id = inflightIds;
    assert.deepEqual(seen.sort(), [
      `PUBLISH inf/1 qos 1 dup true id ${id["inf/1"]} message 1`,
      `PUBLISH inf/2 qos 2 dup true id ${id["inf/2"]} message 2`,
      `type ${PacketType.PUBREL} flags 2 id ${id["inf/3"]}`,
    ].sort());
    q.raw.write(puback(id["inf/1"]));
    q.raw.write(pubrec(id["inf/2"]));
    assert.equal((await q.raw.expect(PacketType.PUBREL)).body.readUInt16BE(0), id["inf/2"]);
    q.raw.write(pubcomp(id["inf/2"]));
    q.raw.write(pubcomp(id["inf/3"]));
    await settle(300);
    assert.deepEqual(q.raw.unread, [], "nothing else resent");
  });

  test("[MQTT-4.3.3-2] a QoS 2 PUBLISH received before the kill and resent after it is delivered once", async () => {
    const p = await rawSession(b, { clientId: "detail-rel-pub", clean: false });
    assert.equal(p.sessionPresent, true);
    p.raw.write(publishPacket({ topic: "rel/x", payload: "once", qos: 2, id: 77, dup: true }));
    assert.equal((await p.raw.expect(PacketType.PUBREC)).body.readUInt16BE(0), 77);
    p.raw.write(pubrel(77));
    assert.equal((await p.raw.expect(PacketType.PUBCOMP)).body.readUInt16BE(0), 77);
    const sub = await rawSession(b, { clientId: "detail-rel-sub", clean: false });
    assert.equal(sub.sessionPresent, true);
    const m = parsePublish(await sub.raw.expect(PacketType.PUBLISH));
    assert.deepEqual([m.topic, m.payload.toString(), m.qos], ["rel/x", "once", 2]);
    sub.raw.write(pubrec(m.id));
    await sub.raw.expect(PacketType.PUBREL);
    sub.raw.write(pubcomp(m.id));
    await settle(300);
    assert.deepEqual(sub.raw.unread.filter((x) => x.type === PacketType.PUBLISH).map((x) => parsePublish(x).topic), [], "delivered once");
  });

});

// ---------------------------------------------------------------------------------
// 3. a damaged file: cut short, and bits flipped

describe("persistence: a damaged file", { skip }, () => {
  const small = store("small");
  let original: Buffer;
  let full: Restored;
  /** restore counts of the file cut at each offset (a clean prefix: no damage line) */
  const prefixCounts = new Map<number, string>();
  const countsOf = (rs: Restored | null) => (rs ? `${rs.retained} ${rs.sessions} ${rs.subscriptions} ${rs.queued}` : "none");

  before(async () => {
    // a small file: two retained messages, a session with a subscription and a queued message
    const b = await start(small);
    const pub = await connectWire(b, "small-pub", true);
    await publishAll(pub.wire, [
      { topic: "t/a", payload: Buffer.from("alpha"), qos: 1, retain: true },
      { topic: "t/b", payload: Buffer.from("beta"), qos: 0, retain: true },
    ]);
    const c = await connectWire(b, "small-s", false);
    await wireSubscribe(c.wire, [["q/#", 1]]);
    await c.wire.bye();
    await publishAll(pub.wire, [{ topic: "q/c", payload: Buffer.from("queued"), qos: 1 }]);
    pub.wire.destroy();
    await stopClean(b);
    original = readFileSync(small.db);
    const b2 = await start(small);
    const rs = restored(b2, small);
    await kill9(b2);
    assert.ok(rs, b2.output());
    full = rs;
    assert.deepEqual([full.retained, full.sessions, full.subscriptions, full.queued], [2, 1, 1, 1], full.line);
    console.log(`  damaged file: the small file is ${original.length} bytes`);
  });

  /** Starts a broker on `bytes` as the persistence file (a directory of its own); returns what it logged. */
  async function startOn(name: string, bytes: Buffer, check?: (b: Broker, s: Store) => Promise<void>) {
    const s = store(name);
    writeFileSync(s.db, bytes);
    const b = await start(s);
    try {
      const out = { rs: restored(b, s), dmg: damaged(b, s), old: keptOld(b, s), output: b.output(), s };
      if (check) await check(b, s);
      return out;
    } finally {
      await kill9(b);
      rmSync(s.dir, { recursive: true, force: true });
    }
  }

  /** Subscribes to t/# and checks what is retained: only the original messages, as many as the log said. */
  async function checkRetained(b: Broker, expect: number): Promise<void> {
    const sub = await connect(b);
    await subscribe(sub, "t/#", 1);
    await settle(200);
    const got = sub.inbox.messages.map((m) => `${m.topic}=${m.payload}`).sort();
    assert.equal(got.length, expect, `retained after the restore: ${got}`);
    for (const g of got) assert.ok(["t/a=alpha", "t/b=beta"].includes(g), `a retained message that was never published: ${g}`);
    await sub.end();
  }

  // Every offset costs a broker start: ~15 ms native, ~120 ms for Node. 37-persistence-damage
  // cuts the file at every offset through the Node host's binding without a process each
  // time, so here the Node host gets the header, both ends and 40 seeded offsets (all of
  // them with MIDGE_TEST_CUTS=all), the native host every offset.
  const everyOffset = BROKER_KIND === "native" || process.env.MIDGE_TEST_CUTS === "all";
  test(`cut at ${everyOffset ? "every byte offset" : "the header's offsets and 40 more"}: the broker starts, keeps the records before the cut and reports the loss`, { timeout: 300_000 }, async () => {
    const L = original.length;
    const offsets = everyOffset ? Array.from({ length: L + 1 }, (_, i) => i) : sampleOffsets(L, rng("cuts"));
    const problems: string[] = [];
    const cutInside: Array<{ o: number; at: number; counts: string }> = [];
    const t0 = performance.now();
    const cut = async (o: number) => {
      const r = await startOn(`cut-${o}`, original.subarray(0, o), async (b, s) => {
        const rs = restored(b, s);
        if (rs && !damaged(b, s) && o > 16 && rs.retained > 0) await checkRetained(b, rs.retained);
      });
      if (o === 0) return; // an empty file: anything but a refusal to start
      if (o < 16) {
        if (!r.dmg && !r.old) problems.push(`${o}: a header cut short, neither damaged nor kept as .old`);
        return;
      }
      if (!r.rs) {
        problems.push(`${o}: no restore line`);
        return;
      }
      if (r.dmg) {
        if (r.dmg.at + r.dmg.cut !== o || r.dmg.at < 16 || r.dmg.at > o) problems.push(`${o}: ${r.dmg.line}`);
        cutInside.push({ o, at: r.dmg.at, counts: countsOf(r.rs) });
      } else {
        prefixCounts.set(o, countsOf(r.rs));
      }
    };
    await pool(offsets, 2, cut); // two brokers at a time
    // the clean cut at each offset where damage was reported, for the comparison below
    const ats = [...new Set(cutInside.map((c) => c.at))].filter((at) => !offsets.includes(at));
    await pool(ats, 2, cut);
    offsets.push(...ats);
    offsets.sort((a, b) => a - b);
    console.log(`  damaged file: ${offsets.length} cuts in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `record boundaries at ${[...prefixCounts.keys()].sort((a, b) => a - b).join(", ")}`);
    assert.deepEqual(problems, []);
    assert.ok(prefixCounts.has(16) || L <= 16, "the header alone is a clean, empty file");
    // a cut inside a record keeps exactly the records before it: the counts of the clean cut at the damage offset
    const mismatches: string[] = [];
    let prev = -1;
    for (const o of offsets.filter((o) => o >= 16)) {
      const c = prefixCounts.get(o);
      if (c !== undefined) {
        const total = c.split(" ").reduce((n, x) => n + Number(x), 0);
        if (total < prev) mismatches.push(`${o}: fewer things restored than from a shorter prefix`);
        prev = total;
      }
    }
    for (const c of cutInside) {
      const clean = prefixCounts.get(c.at);
      if (clean === undefined) mismatches.push(`${c.o}: damage reported at ${c.at}, not where a clean cut restores without complaint`);
      else if (clean !== c.counts) mismatches.push(`${c.o}: restored ${c.counts}, the clean prefix up to ${c.at} restores ${clean}`);
    }
    assert.deepEqual(mismatches, []);
    assert.equal(prefixCounts.get(L), countsOf(full), "the whole file restores everything");
  });

  test("cut inside the last record: the damage line, the prefix kept, and the tail gone from the disk at once", async () => {
    const s = store("cut-last");
    writeFileSync(s.db, original.subarray(0, original.length - 1));
    let b = await start(s);
    const d = damaged(b, s);
    assert.ok(d, `no damage line\n${b.output().slice(-2000)}`);
    assert.equal(d.at + d.cut, original.length - 1, d.line);
    const first = restored(b, s);
    assert.ok(first);
    await kill9(b);
    b = await start(s);
    assert.equal(damaged(b, s), null, `the broker rewrote the file at start: no damage the second time\n${b.output().slice(-2000)}`);
    assert.equal(countsOf(restored(b, s)), countsOf(first));
    await stopClean(b);
  });

  test("random bit flips: the broker starts every time, reports the damage and keeps the records before it", { timeout: 120_000 }, async () => {
    const r = rng("bitflips");
    const problems: string[] = [];
    const TRIALS = 40;
    for (let t = 0; t < TRIALS; t++) {
      const bytes = Buffer.from(original);
      const flips = Array.from({ length: r.int(1, 3) }, () => r.int(0, bytes.length * 8 - 1));
      for (const bit of flips) bytes[bit >> 3] ^= 1 << (bit & 7);
      if (bytes.equals(original)) continue; // the same bit twice
      const first = Math.min(...flips.filter((bit) => (bytes[bit >> 3] ^ original[bit >> 3]) !== 0).map((bit) => bit >> 3));
      const res = await startOn(`flip-${t}`, bytes);
      const what = `flip ${t}: bits ${flips.join(",")} (first byte changed: ${first})`;
      if (res.old) {
        if (first >= 16) problems.push(`${what}: the whole file set aside for damage past the header: ${res.old}`);
        continue;
      }
      if (!res.dmg) {
        problems.push(`${what}: not reported (${res.rs?.line ?? "no restore line"})`);
        continue;
      }
      if (res.dmg.at > first) problems.push(`${what}: damage reported at ${res.dmg.at}, after the first changed byte`);
      if (res.dmg.at + res.dmg.cut !== bytes.length) problems.push(`${what}: ${res.dmg.line}`);
      const clean = prefixCounts.get(res.dmg.at);
      if (clean !== undefined && clean !== countsOf(res.rs)) {
        problems.push(`${what}: restored ${countsOf(res.rs)}, the clean prefix up to ${res.dmg.at} restores ${clean}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});

/** Every offset of the header and around both ends, and ~40 more spread over the file. */
/** Every offset of the header and one past it, the last few, and 40 seeded ones between. */
function sampleOffsets(L: number, r: Rng): number[] {
  const set = new Set<number>();
  for (let i = 0; i <= 20; i++) set.add(i);
  for (let i = L - 3; i <= L; i++) set.add(i);
  for (let k = 0; k < 40 && set.size < L + 1; ) {
    const o = r.int(0, L);
    if (!set.has(o)) { set.add(o); k++; }
  }
  return [...set].filter((o) => o >= 0 && o <= L).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------
// 4. a full disk and a read-only directory (tmpfs mounts: root only)

describe("persistence: a full disk and a read-only directory", { skip }, () => {
  const mounts: string[] = [];
  after(() => {
    for (const m of mounts) spawnSync("umount", ["-l", m]);
  });

  /** A tmpfs of `size` mounted on a new directory, or the reason it could not be. */
  function tmpfs(name: string, size: string): string | { skip: string } {
    const dir = path.join(TMP, name);
    mkdirSync(dir, { recursive: true });
    if (!which("mount")) return { skip: "no mount command" };
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
    if (r.status !== 0) return { skip: `mount -t tmpfs failed (${(r.stderr || r.error?.message || "").trim()}): needs root` };
    mounts.push(dir);
    return dir;
  }

  for (const sync of ["interval", "always"] as const) {
    test(`a full disk (tmpfs of 64 KiB, persistence_sync ${sync}): the degraded line, and publish and subscribe go on`, { timeout: 60_000 }, async (t) => {
      const dir = tmpfs(`full-${sync}`, "64k");
      if (typeof dir !== "string") {
        console.log(`  skipped: ${dir.skip}`);
        return t.skip(dir.skip);
      }
      const s = store(`full-${sync}`, [`persistence_sync ${sync}`], { dir });
      const b = await start(s);
      const pub = await connectWire(b, `full-pub-${sync}`, true);
      const N = 120; // 1 KiB each: twice the disk
      const msgs = Array.from({ length: N }, (_, i): Msg => ({ topic: `full/${i}`, payload: Buffer.alloc(1024, i), qos: 1, retain: true }));
      await publishAll(pub.wire, msgs, 10); // every one acknowledged, the disk full or not
      const line = await waitLog(b, DEGRADED(s), 5000, "the disk is full");
      console.log(`  ${line}`);
      b.assertAlive();
      // still served: every retained message (kept in memory), and a live message
      const sub = await connect(b);
      await subscribe(sub, "full/#", 1);
      await sub.inbox.wait(N, 10_000);
      await publish(await connect(b), "full/live", "after", { qos: 1 });
      await sub.inbox.waitTopic("full/live");
      assert.equal(sub.inbox.messages.filter((m) => m.topic !== "full/live").length, N);
      await closeAll();
      destroyWires();
      await stopClean(b);
    });
  }

  test("a read-only directory: the broker restores what is there, says it cannot write, and serves", { timeout: 60_000 }, async (t) => {
    const dir = tmpfs("readonly", "1m");
    if (typeof dir !== "string") {
      console.log(`  skipped: ${dir.skip}`);
      return t.skip(dir.skip);
    }
    const s = store("readonly", [], { dir });
    let b = await start(s);
    const c = await connect(b);
    await publish(c, "ro/kept", "before", { qos: 1, retain: true });
    await closeAll();
    await stopClean(b);
    const r = spawnSync("mount", ["-o", "remount,ro", dir], { encoding: "utf8" });
    assert.equal(r.status, 0, `remount read-only: ${r.stderr}`);
    b = await start(s);
    const rs = restored(b, s);
    assert.ok(rs && rs.retained === 1, `restored from a read-only directory\n${b.output().slice(-2000)}`);
    const line = await waitLog(b, DEGRADED(s), 5000, "the directory is read-only");
    console.log(`  ${line}`);
    const sub = await connect(b);
    await subscribe(sub, "ro/#", 1);
    assert.equal((await sub.inbox.waitTopic("ro/kept")).payload.toString(), "before");
    await publish(await connect(b), "ro/live", "after", { qos: 1, retain: true });
    await sub.inbox.waitTopic("ro/live");
    await closeAll();
    await stopClean(b);
  });
});

// ---------------------------------------------------------------------------------
// 5. a file that is not Midge's

describe("persistence: a file that is not a Midge file", { skip }, () => {
  /** Starts on `bytes` as persistence_file `file`: the line, PATH.old holding the bytes, a new Midge file, nothing restored. */
  async function setAside(name: string, file: string, bytes: Buffer, retainedTopic?: string): Promise<string> {
    const s = store(name, [], { file });
    writeFileSync(s.db, bytes);
    let b = await start(s);
    const line = keptOld(b, s);
    assert.ok(line, `no "kept as ${s.db}.old, starting empty" line\n${b.output().slice(-2000)}`);
    console.log(`  ${line}`);
    assert.ok(existsSync(`${s.db}.old`), `${s.db}.old`);
    assert.ok(readFileSync(`${s.db}.old`).equals(bytes), "PATH.old holds the file as it was");
    const sub = await connect(b);
    await subscribe(sub, "#", 1);
    await publish(await connect(b), "aside/live", "served", { qos: 1 });
    await sub.inbox.waitTopic("aside/live");
    assert.deepEqual(sub.inbox.messages.map((m) => m.topic), ["aside/live"], `nothing restored${retainedTopic ? ` (not ${retainedTopic})` : ""}`);
    await closeAll();
    await stopClean(b);
    assert.equal(readFileSync(s.db).subarray(0, 8).toString("latin1"), "MIDGEDB\n", "a Midge file in its place");
    // the next start reads that file as its own
    b = await start(s);
    assert.equal(keptOld(b, s), null);
    assert.ok(restored(b, s), b.output().slice(-2000));
    await stopClean(b);
    return line;
  }

  test("random bytes: kept as PATH.old, the broker starts empty and serves", async () => {
    await setAside("random", "random.db", rng("random-file").bytes(1000));
  });

  test("a Midge file of a version this Midge does not know: kept as PATH.old, the broker starts empty and serves", async () => {
    // the header of docs/ABI.md: "MIDGEDB\n", a u32 version (little-endian), the CRC-32 of those 12 bytes
    const header = Buffer.alloc(16);
    header.write("MIDGEDB\n", 0, "latin1");
    header.writeUInt32LE(2, 8);
    header.writeUInt32LE(crc32(header.subarray(0, 12)), 12);
    const line = await setAside("version", "midge.db", Buffer.concat([header, rng("version-file").bytes(200)]));
    assert.match(line, /version 2\b/, "the line names the version");
  });

  const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
  test("Mosquitto's mosquitto.db: kept as PATH.old, the broker starts empty and serves", { skip: mosquitto ? false : "no mosquitto (apt-get install mosquitto)" }, async () => {
    const dir = path.join(TMP, "mosquitto");
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const conf = path.join(TMP, "mosquitto.conf");
    writeFileSync(conf, [
      `listener ${port} ${HOST}`, "allow_anonymous true", "user root",
      "persistence true", `persistence_location ${dir}/`, "persistence_file mosquitto.db",
    ].join("\n") + "\n");
    const m = await startMosquittoConf(conf, port);
    const c = await connect(m);
    await publish(c, "mosq/retained", "from mosquitto", { qos: 1, retain: true });
    await closeAll();
    await m.stop(); // mosquitto writes its database when it stops
    const db = path.join(dir, "mosquitto.db");
    assert.ok(existsSync(db), "mosquitto wrote its database");
    await setAside("mosq-file", "mosquitto.db", readFileSync(db), "mosq/retained");
  });
});
