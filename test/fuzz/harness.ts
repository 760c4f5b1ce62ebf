// Drives one core in-process through host/core.ts (the binding the broker uses) and
// checks the invariants of issue 5 after every input:
//   - no trap;
//   - linear memory never grows, and under the stub runtime the heap top never moves;
//   - a well-behaved subscriber on another connection still gets its messages
//     (QoS 0 while the fuzzed connections are still open, QoS 1 after);
//   - a fresh connection gets a CONNACK, and once the fuzz input's leftovers are
//     cleaned up, an accepted one;
//   - everything the core sends splits into whole server-to-client packets, CONNACK first;
//     on a WebSocket listener, it is a well-formed HTTP answer (a body as long as its
//     Content-Length, valid JSON and Prometheus text), or a 101 and then well-formed
//     server frames whose binary payloads, joined, are such packets, a close frame last;
//     a core that closes an upgraded connection sends a close frame first; at the
//     clean-up after such inputs a fresh WebSocket client gets its CONNACK and the close
//     handshake;
//   - once leftovers are cleaned up (persistent sessions, retained messages), every
//     fixed table is back to its starting size and the counters agree with the tables;
//   - for a "split" input: the output does not depend on where the stream was cut (on a
//     WebSocket listener, unless `strictControlFrames` is set, but for control frames read
//     late: see `readLate`).
// A violation throws `Failure`; the core is unusable after a trap, so the caller
// makes a new Harness.

import { Core, Stat, type Link } from "../../host/core";
import { type Input, usesWebSocket } from "./mutate";
import { T, type Version, ack, connect, disconnect, encode, encodeAll, parsePublish, pingreq, publish, split, subscribe } from "./packets";
import { LISTENER, UPGRADE, clientFrame, closePayload, onlyControlFrames, readServerOutput } from "./websocket";

/** Inputs between two clean-ups (and table checks); a crash case keeps this many. */
export const CLEAN_EVERY = 8;

export class Failure extends Error {
  constructor(
    readonly kind: "trap" | "invariant" | "hang",
    message: string,
    readonly logTail: string[] = [],
  ) {
    super(message);
  }
}

/** The fuzz core's config file: the listeners of LISTENER (websocket.ts), in that order. */
const FUZZ_CONFIG = "listener 1883\nlistener 8080\nprotocol websockets\nlistener 8081\nprotocol http\nallow_anonymous true\n";

/** The reason the host closes a connection with when the core broke the ABI on it (host/core.ts). */
const HOST_ERROR = -1;

let warnedNoWebSockets = false;

/** Row counts of the core's fixed tables, as `probeUsed(table)` in test/fuzz/probe.ts numbers them. */
export const TABLES = ["connections", "sessions", "subscriptions", "deliveries", "messages", "chunks", "retained", "topic nodes"];

interface Exports {
  memory: WebAssembly.Memory;
  probeUsed?: (table: number) => number;
  probeHeapTop?: () => number;
  probeMaxSessions?: () => number;
  probeSessionConn?: (i: number) => number;
  probeSessionIdPtr?: (i: number) => number;
  probeSessionIdLen?: (i: number) => number;
  probeRetainedHigh?: () => number;
  probeRetainedTopic?: (i: number) => number;
  probeTopicPtr?: () => number;
}

const SERVER_TO_CLIENT = new Set([T.CONNACK, T.PUBLISH, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK, T.UNSUBACK,
  T.PINGRESP, T.DISCONNECT, T.AUTH]);

class FakeLink implements Link {
  id = -1;
  listener: number = LISTENER.mqtt;
  out: Uint8Array[] = [];
  outLen = 0;
  closing = false;
  reason = -1;
  backlogBytes = 0;
  gone = false;
  send(b: Uint8Array): void {
    this.out.push(b);
    this.outLen += b.length;
  }
  close(reason: number): void {
    this.closing = true;
    this.reason = reason;
  }
  backlog(): number {
    return this.backlogBytes;
  }
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  watchDrain(): void {} // a fake socket's backlog is whatever the test sets
  flush(): void {}
  /** Everything sent since the last take. */
  take(): Uint8Array {
    const all = this.out.length === 1 ? this.out[0] : concat(this.out, this.outLen);
    this.out = [];
    this.outLen = 0;
    return all;
  }
}

function concat(parts: Uint8Array[], total = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const text = new TextDecoder();
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (b: Uint8Array, max = 64) =>
  Buffer.from(b.subarray(0, max)).toString("hex") + (b.length > max ? `...(${b.length} bytes)` : "");

/** A known difference between a WebSocket stream fed whole and the same stream cut: the core
 *  reads a control frame (or a broken frame) that follows an unfinished MQTT packet only once
 *  the packet's bytes have come (assembly/ws/input.ts asks the host, through `needed`, not
 *  to offer the bytes again before then, so that a packet in many frames is not re-read
 *  from its start at every read); a stream that stops before then leaves that frame unread
 *  when cut, not when whole. True when that explains `cut` against `whole`: the connection
 *  was left open, and what it missed is control frames (pongs, a close) only. */
function readLate(whole: { out: Uint8Array; closedWith: number | null }, cut: { out: Uint8Array; closedWith: number | null }): boolean {
  if (cut.closedWith !== null || cut.out.length >= whole.out.length) return false;
  if (!equal(whole.out.subarray(0, cut.out.length), cut.out)) return false;
  return onlyControlFrames(whole.out.subarray(cut.out.length));
}

export interface HarnessOptions {
  /** Build the core's log lines up to this level (default 3, info) to exercise the log code. */
  logLevel?: number;
  /** Split runs on a WebSocket listener must give the same output even when a control frame
   *  follows an unfinished MQTT packet (a known open bug: the crash case
   *  ws-close-frame-after-unfinished-packet.json sets this; see `readLate`). */
  strictControlFrames?: boolean;
}

export class Harness {
  readonly core: Core;
  private readonly x: Exports;
  private now = 1_000_000;
  private readonly pages: number;
  private readonly heap: number;
  private readonly baseline: number[] = [];
  private readonly logTail: string[] = [];
  private watcher = new FakeLink();
  private publisher = new FakeLink();
  private watcherPending: Uint8Array = new Uint8Array(0);
  private readonly watcherGot = new Set<string>();
  private probes = 0;
  private freshCount = 0;
  private pubId = 0;
  /** An input since the last clean-up spoke WebSockets: a fresh WebSocket client is due. */
  private webSocketUsed = false;
  /** The first line of the binding's saying the core misused a connection id, if any. */
  private abiBroken: string | undefined;
  readonly hasProbes: boolean;
  /** The core took FUZZ_CONFIG: listeners 1 and 2 speak WebSockets and HTTP. */
  readonly webSockets: boolean;
  /** inputs run so far */
  count = 0;

  constructor(module: WebAssembly.Module, private readonly options: HarnessOptions = {}) {
    this.core = new Core(module, {
      logLevel: options.logLevel ?? 3,
      clock: () => this.now,
      log: (level, line) => {
        // the binding's own complaints: the core sent to, or closed, a connection that is gone
        if (level === 0 && /^core (sent \d+ bytes to|closed) unknown connection/.test(line)) this.abiBroken ??= line;
        this.logTail.push(`${level} ${line}`);
        if (this.logTail.length > 12) this.logTail.shift();
      },
      fatal: (error) => {
        throw new Failure("trap", `the core trapped: ${error.message}`, [...this.logTail]);
      },
    });
    // Before any connection: the listeners. A core from before WebSocket listeners (run.mjs
    // --rev) refuses the file; its inputs for those listeners then go to plain MQTT ones.
    const said = this.core.config("fuzz.conf", new TextEncoder().encode(FUZZ_CONFIG), 0);
    this.webSockets = "done" in said;
    if (!this.webSockets && !warnedNoWebSockets) {
      warnedNoWebSockets = true;
      console.warn(`fuzz: this core refused the WebSocket listeners (${"refused" in said ? said.refused : "include_dir"}): their inputs go to plain ones`);
    }
    // The probe exports of the fuzz build, through the binding's read-only accessor.
    this.x = this.core.rawExports as unknown as Exports;
    this.hasProbes = typeof this.x.probeUsed === "function";
    this.pages = this.core.memoryPages;
    this.heap = this.x.probeHeapTop?.() ?? 0;

    // the well-behaved pair: a subscriber to probe/# at QoS 1 and a publisher
    this.open(this.watcher);
    this.feed(this.watcher, encode(connect({ version: 4, clientId: "fuzz-watcher", keepAlive: 0 })));
    this.feed(this.watcher, encode(subscribe(4, 1, [["probe/#", 1]])));
    const w = split(this.watcher.take()).packets;
    if (w.length !== 2 || w[0].type !== T.CONNACK || w[0].body[1] !== 0 || w[1].type !== T.SUBACK || w[1].body[2] !== 1) {
      throw new Error(`watcher setup failed: ${JSON.stringify(w)}`);
    }
    this.open(this.publisher);
    this.feed(this.publisher, encode(connect({ version: 4, clientId: "fuzz-publisher", keepAlive: 0 })));
    this.expect(this.publisher, T.CONNACK, "publisher CONNACK");
    if (this.hasProbes) for (let t = 0; t < TABLES.length; t++) this.baseline.push(this.x.probeUsed!(t));
  }

  // ---- plumbing ----

  private open(link: FakeLink, listener: number = LISTENER.mqtt): void {
    link.listener = listener;
    link.id = this.core.open(link, listener);
    if (link.id < 0) this.fail("open() refused a connection although few are open");
  }

  private feed(link: FakeLink, b: Uint8Array): void {
    if (link.gone || link.closing) return; // the host drops bytes for a closing socket
    this.core.feed(link.id, b);
  }

  private closed(link: FakeLink): void {
    if (link.gone) return;
    link.gone = true;
    this.core.closed(link.id);
  }

  private fail(message: string): never {
    throw new Failure("invariant", message, [...this.logTail]);
  }

  /** The next packet `link` received must be of `type`; returns its body. */
  private expect(link: FakeLink, type: number, what: string): Uint8Array {
    const got = split(link.take());
    if (got.packets.length !== 1 || got.packets[0].type !== type) {
      this.fail(`${what}: expected one packet of type ${type}, got ${JSON.stringify(got.packets.map((p) => [p.type, hex(p.body, 16)]))}` +
        `${link.closing ? ` (closed with reason ${link.reason})` : ""}`);
    }
    return got.packets[0].body;
  }

  /** Answer and record what the watcher received. */
  private drainWatcher(): void {
    if (this.watcher.closing) this.fail(`the watcher's connection was closed (reason ${this.watcher.reason})`);
    if (this.watcher.outLen === 0) return;
    const buf = concat([this.watcherPending, this.watcher.take()]);
    const { packets, used, bad } = split(buf);
    if (bad) this.fail(`the watcher received a malformed stream: ${hex(buf)}`);
    this.watcherPending = buf.slice(used);
    for (const p of packets) {
      if (p.type !== T.PUBLISH) continue;
      const m = parsePublish(p);
      if (this.watcherGot.size >= 64) this.watcherGot.clear(); // only the latest probe matters
      this.watcherGot.add(text.decode(m.payload));
      if (m.qos === 1) this.feed(this.watcher, encode(ack(4, T.PUBACK, m.id)));
      if (m.qos === 2) this.fail("the watcher got QoS 2 although it was granted QoS 1");
    }
  }

  /** The publisher sends a probe message; the watcher must receive it. */
  private probe(qos: 0 | 1, when: string): void {
    this.drainWatcher();
    const payload = `probe ${++this.probes}`;
    this.pubId = (this.pubId % 65535) + 1;
    this.feed(this.publisher, encode(publish(4, { topic: "probe/x", payload, qos, id: this.pubId })));
    if (this.publisher.closing) this.fail(`the publisher's connection was closed (reason ${this.publisher.reason})`);
    if (qos === 1) {
      const body = this.expect(this.publisher, T.PUBACK, "PUBACK for the publisher");
      if (((body[0] << 8) | body[1]) !== this.pubId) this.fail("PUBACK with the wrong packet id");
    } else {
      this.publisher.take();
    }
    this.drainWatcher();
    if (!this.watcherGot.has(payload)) this.fail(`the watcher did not receive a QoS ${qos} message ${when}`);
  }

  /** A new client connects: it gets a CONNACK (accepted when `mustAccept`), a PINGRESP, and goes. */
  private fresh(mustAccept: boolean, version: Version): void {
    const link = new FakeLink();
    this.open(link);
    this.feed(link, encode(connect({ version, clientId: `fresh-${++this.freshCount}`, keepAlive: 0 })));
    const body = this.expect(link, T.CONNACK, "CONNACK for a fresh connection");
    const code = body[1];
    if (code !== 0 && (mustAccept || code !== 3)) this.fail(`a fresh connection was refused with CONNACK ${code}`);
    if (code === 0) {
      this.feed(link, encode(pingreq()));
      this.expect(link, T.PINGRESP, "PINGRESP for a fresh connection");
      this.feed(link, encode(disconnect(4)));
    }
    this.closed(link);
  }

  /** A new client over WebSockets, at a clean-up after inputs that spoke WebSockets: the
   *  upgrade, CONNECT and PINGREQ in one frame; a 101, a CONNACK (accepted, or 3 when the
   *  tables are full) and a PINGRESP; then the close handshake. */
  private freshWs(): void {
    if (!this.webSockets || !this.webSocketUsed) return;
    this.webSocketUsed = false;
    const link = new FakeLink();
    this.open(link, LISTENER.websockets);
    const mqtt = encodeAll([connect({ version: 4, clientId: `fresh-${++this.freshCount}`, keepAlive: 0 }), pingreq()]);
    this.feed(link, concat([UPGRADE, clientFrame(2, mqtt)]));
    const out = link.take();
    const got = readServerOutput(out, false);
    if (typeof got === "string" || got.status !== 101) {
      this.fail(`a fresh WebSocket client was not upgraded: ${typeof got === "string" ? got : `HTTP ${got.status}`}: ${hex(out)}`);
    }
    const packets = split(got.mqtt).packets;
    const code = packets[0]?.type === T.CONNACK ? packets[0].body[1] : -1;
    if (code !== 0 && code !== 3) this.fail(`a fresh WebSocket client got ${hex(got.mqtt)} instead of a CONNACK`);
    if (code === 3) {
      if (got.closeCode !== 1000 || !link.closing) this.fail("a fresh WebSocket client refused with CONNACK 3 without a close frame 1000");
      return this.closed(link);
    }
    if (packets.length !== 2 || packets[1].type !== T.PINGRESP) {
      this.fail(`a fresh WebSocket client got ${hex(got.mqtt)} instead of CONNACK, PINGRESP`);
    }
    this.feed(link, clientFrame(8, closePayload(1000)));
    const bye = link.take();
    if (!equal(bye, Uint8Array.of(0x88, 2, 0x03, 0xe8)) || !link.closing) {
      this.fail(`a fresh WebSocket client's close frame was answered with ${hex(bye)}${link.closing ? "" : ", the connection left open"}`);
    }
    this.closed(link);
  }

  // ---- one input ----

  run(input: Input): void {
    this.count++;
    if (usesWebSocket(input)) this.webSocketUsed = true;
    if (input.kind === "split") this.runSplit(input.stream, input.cuts, input.listener ?? LISTENER.mqtt);
    else this.runEvents(input);
    this.checkMemory();
    if (this.abiBroken !== undefined) this.fail(`the binding said: ${this.abiBroken}`);
  }

  private runEvents(input: Extract<Input, { kind: "events" }>): void {
    const slots: FakeLink[] = [];
    for (const ev of input.events) {
      switch (ev.e) {
        case "open":
          slots[ev.c] = new FakeLink();
          this.open(slots[ev.c], ev.listener);
          break;
        case "feed":
          if (slots[ev.c]) this.feed(slots[ev.c], ev.b);
          break;
        case "tick":
          this.now += ev.ms;
          this.core.tick();
          break;
        case "backlog":
          if (slots[ev.c]) slots[ev.c].backlogBytes = ev.n;
          break;
        case "close":
          if (slots[ev.c]) this.closed(slots[ev.c]);
          break;
      }
      this.drainWatcher();
    }
    // while the fuzzed connections may still be open
    this.probe(0, "while fuzzed connections were open");
    this.fresh(false, 4);
    for (const link of slots) if (link) this.closed(link);
    for (let c = 0; c < slots.length; c++) if (slots[c]) this.checkOutput(slots[c], `fuzz connection ${c}`);
    // Leftovers (persistent sessions, retained messages, queued deliveries) carry over
    // to the next few inputs, so sessions resume and tables fill; every CLEAN_EVERY
    // inputs they are cleaned up and every table must be back to its starting size.
    if (this.count % CLEAN_EVERY === 0) {
      this.cleanUp();
      this.probe(1, "after the fuzzed connections closed");
      this.fresh(true, this.count % 2 === 0 ? 4 : 3);
      this.freshWs();
      this.checkTables();
    } else {
      this.checkCounters();
    }
  }

  private runSplit(stream: Uint8Array, cuts: number[][], listener: number): void {
    this.cleanUp();
    const runOnce = (sizes: number[]) => {
      const link = new FakeLink();
      this.open(link, listener);
      let at = 0;
      for (const s of sizes) {
        this.feed(link, stream.subarray(at, at + s));
        at += s;
        this.drainWatcher();
      }
      const out = link.take();
      const closedWith = link.closing ? link.reason : null;
      this.closed(link);
      this.cleanUp();
      this.checkTables();
      return { out, closedWith };
    };
    const first = runOnce(cuts[0]);
    this.checkSent(first.out, listener, first.closedWith, "split run");
    for (let i = 1; i < cuts.length; i++) {
      const other = runOnce(cuts[i]);
      if (other.closedWith === first.closedWith && equal(other.out, first.out)) continue;
      if (listener !== LISTENER.mqtt && !this.options.strictControlFrames && readLate(first, other)) continue;
      const again = runOnce(cuts[0]);
      if (again.closedWith !== first.closedWith || !equal(again.out, first.out)) continue; // not deterministic: skip
      this.fail(`the output depends on how the stream was cut: whole -> ${hex(first.out)} (close ${first.closedWith}); ` +
        `cut as [${cuts[i].slice(0, 20).join(",")}${cuts[i].length > 20 ? ",..." : ""}] -> ${hex(other.out)} (close ${other.closedWith})`);
    }
    this.probe(1, "after a split run");
  }

  /** Clean up now and check every table (what happens every CLEAN_EVERY inputs). */
  settle(): void {
    this.cleanUp();
    this.probe(1, "after clean-up");
    this.fresh(true, 4);
    this.freshWs();
    this.checkTables();
    this.checkMemory();
  }

  // ---- invariants ----

  private checkMemory(): void {
    if (this.core.memoryPages !== this.pages) this.fail(`linear memory grew from ${this.pages} to ${this.core.memoryPages} pages`);
    if (this.x.probeHeapTop && this.x.probeHeapTop() !== this.heap) {
      this.fail(`the heap top moved from ${this.heap} to ${this.x.probeHeapTop()}: the core allocated`);
    }
  }

  private checkOutput(link: FakeLink, what: string): void {
    this.checkSent(link.take(), link.listener, link.closing ? link.reason : null, what);
  }

  /** What the core sent on a connection of `listener`, which it closed with `closedWith`
   *  (null: it did not). */
  private checkSent(out: Uint8Array, listener: number, closedWith: number | null, what: string): void {
    if (closedWith === HOST_ERROR) this.fail(`${what}: the host closed it because the core broke the ABI (see the log)`);
    if (listener === LISTENER.mqtt || !this.webSockets) return this.checkStream(out, what);
    const got = readServerOutput(out, listener === LISTENER.http);
    if (typeof got === "string") this.fail(`${what} (listener ${listener}): ${got}; it sent ${hex(out, 96)}`);
    if (got.status === 0) return; // nothing: closed before its request was whole (a timeout, the peer)
    if (got.status !== 101) {
      if (closedWith === null) this.fail(`${what}: HTTP ${got.status} answered, but the connection was not closed`);
      return;
    }
    this.checkStream(got.mqtt, `${what}, over WebSocket`);
    if (closedWith !== null && got.closeCode < 0) this.fail(`${what}: the core closed an upgraded connection (reason ${closedWith}) without a close frame`);
    if (closedWith === null && got.closeCode >= 0) this.fail(`${what}: a close frame ${got.closeCode}, but the connection was not closed`);
  }

  private checkStream(out: Uint8Array, what: string): void {
    const { packets, used, bad } = split(out);
    if (bad || used !== out.length) this.fail(`${what}: the core sent bytes that are not whole packets: ${hex(out.subarray(used))}`);
    packets.forEach((p, i) => {
      if (!SERVER_TO_CLIENT.has(p.type as never)) this.fail(`${what}: the core sent packet type ${p.type}`);
      if ((i === 0) !== (p.type === T.CONNACK)) this.fail(`${what}: CONNACK is not the first and only CONNACK (packet ${i} is type ${p.type})`);
    });
  }

  /** End the persistent sessions and clear the retained messages the input left behind. */
  private cleanUp(): void {
    this.drainWatcher();
    if (!this.hasProbes) {
      // release build: only the ids the generator uses can be cleaned up
      if (this.core.stat(Stat.SessionsStored) > 2) for (const id of ["fz0", "fz1", "fz2", "fz3", "fzs", "fzs2"]) this.endSession(new TextEncoder().encode(id));
      return;
    }
    const x = this.x;
    if (x.probeUsed!(1) > this.baseline[1]) {
      for (let i = 0, n = x.probeMaxSessions!(); i < n; i++) {
        if (x.probeSessionConn!(i) !== -1) continue; // unused, or online (watcher, publisher)
        const ptr = x.probeSessionIdPtr!(i);
        this.endSession(new Uint8Array(x.memory.buffer, ptr, x.probeSessionIdLen!(i)).slice());
      }
    }
    if (x.probeUsed!(6) > 0) {
      for (let i = 0, n = x.probeRetainedHigh!(); i < n; i++) {
        const len = x.probeRetainedTopic!(i);
        if (len < 0) continue;
        const topic = new Uint8Array(x.memory.buffer, x.probeTopicPtr!(), len).slice();
        this.feed(this.publisher, encode(publish(4, { topic, payload: "", qos: 0, retain: true })));
        this.publisher.take();
      }
    }
    this.drainWatcher();
  }

  private endSession(id: Uint8Array): void {
    const link = new FakeLink();
    this.open(link);
    this.feed(link, encode(connect({ version: 4, clientId: id, clean: true, keepAlive: 0 })));
    this.feed(link, encode(disconnect(4)));
    this.closed(link);
  }

  /** Only the watcher and the publisher are connected; the counters match the tables. */
  private checkCounters(): void {
    const stat = (s: number) => this.core.stat(s);
    if (stat(Stat.ConnectionsOpen) !== 2) this.fail(`${stat(Stat.ConnectionsOpen)} connections counted open, expected 2`);
    if (stat(Stat.ClientsConnected) !== 2) this.fail(`${stat(Stat.ClientsConnected)} clients counted connected, expected 2`);
    if (!this.hasProbes) return;
    const pairs: Array<[number, number, string]> = [
      [Stat.ConnectionsOpen, 0, "connections"], [Stat.SessionsStored, 1, "sessions"],
      [Stat.Subscriptions, 2, "subscriptions"], [Stat.RetainedMessages, 6, "retained"],
    ];
    for (const [s, t, name] of pairs) {
      const rows = this.x.probeUsed!(t);
      if (stat(s) !== rows) this.fail(`counter ${name} is ${stat(s)} but ${rows} rows are in use`);
    }
  }

  private checkTables(): void {
    this.checkCounters();
    if (!this.hasProbes) return;
    const used = TABLES.map((_, t) => this.x.probeUsed!(t));
    const off = TABLES.filter((_, t) => used[t] !== this.baseline[t]);
    if (off.length > 0) {
      this.fail(`tables not back to their starting size after clean-up: ` +
        off.map((name) => `${name} ${used[TABLES.indexOf(name)]} (was ${this.baseline[TABLES.indexOf(name)]})`).join(", "));
    }
  }
}
