// Inputs for the fuzzer: valid packet sequences of MQTT 3.1, 3.1.1 and 5.0, mutated
// where decoders look (lengths, flags, property ids, varints, UTF-8, truncation),
// cut into feeds at arbitrary bytes and interleaved across up to three connections.
// Everything comes from one seeded generator, so (seed, index) names an input.

import {
  type Field, type Packet, type Prop, type Version, PROP, PROP_KIND, T, ack, auth, bytes, connect, disconnect,
  encodeAll, pingreq, prop, publish, subscribe, unsubscribe,
} from "./packets";
import { LISTENER, httpStream, overWebSocket } from "./websocket";

// ---- a small, fast, seedable generator (mulberry32) ----

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** an integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<X>(xs: readonly X[]): X {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** The seed of input `index` of a run with seed `seed`. */
export function inputSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// ---- inputs ----

/** What the harness does, in order. Connections are fuzz slots 0..2, opened on a listener
 *  of the fuzz core (`LISTENER` in websocket.ts; 0, plain MQTT, when not given). */
export type Event =
  | { e: "open"; c: number; listener?: number }
  | { e: "feed"; c: number; b: Uint8Array }
  | { e: "tick"; ms: number } // advance the clock by `ms`, then call tick
  | { e: "backlog"; c: number; n: number } // what the slot's link reports as unsent bytes
  | { e: "close"; c: number }; // the socket is gone: Core.closed

export type Input =
  | { kind: "events"; events: Event[] }
  /** One byte stream fed on a fresh connection (of `listener`) once per cutting; every
   *  cutting must produce the same output and the same close. */
  | { kind: "split"; stream: Uint8Array; cuts: number[][]; listener?: number };

/** Whether an input opens a connection on a WebSocket or http listener. */
export function usesWebSocket(input: Input): boolean {
  if (input.kind === "split") return (input.listener ?? 0) !== LISTENER.mqtt;
  return input.events.some((e) => e.e === "open" && (e.listener ?? 0) !== LISTENER.mqtt);
}

// ---- vocabulary: ids, topics, payloads near the limits ----

export const CLIENT_IDS = ["fz0", "fz1", "fz2", "fz3", ""];
const LEVELS = ["a", "b", "c", "sport", "tennis", "$SYS", "", "ü", "é/x", "level-".repeat(6)];
const FILTER_LEVELS = [...LEVELS, "+", "+", "#"];

function topicName(r: Rng): string {
  const n = r.range(1, 4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(r.pick(LEVELS));
  const t = parts.join("/");
  return t === "" ? "a" : t;
}

function topicFilter(r: Rng): string {
  const n = r.range(1, 4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const l = r.pick(FILTER_LEVELS);
    parts.push(l);
    if (l === "#") break;
  }
  return parts.join("/");
}

function payload(r: Rng): Uint8Array {
  const x = r.next();
  if (x < 0.3) return new Uint8Array(0);
  if (x < 0.9) return r.bytes(r.range(1, 40));
  if (x < 0.995) return r.bytes(r.range(200, 1500));
  return r.bytes(r.pick([65530, 65536, 70000])); // around the small board's packet limit
}

// ---- valid sequences ----

function someProps(r: Rng, ids: number[], max = 3): Prop[] {
  const out: Prop[] = [];
  const n = r.int(max + 1);
  for (let i = 0; i < n; i++) {
    const id = r.pick(ids);
    const kind = PROP_KIND[id];
    if (kind === "str") out.push(prop(id, r.chance(0.5) ? topicName(r) : r.bytes(r.int(8))));
    else if (kind === "pair") out.push(prop(id, "k" + r.int(10), "v" + r.int(10)));
    else if (kind === "u8") out.push(prop(id, r.int(3)));
    else out.push(prop(id, r.pick([0, 1, 10, 65535, 2 ** 31])));
  }
  return out;
}

const CONNECT_PROPS = [PROP.SessionExpiry, PROP.ReceiveMaximum, PROP.MaximumPacketSize, PROP.TopicAliasMaximum,
  PROP.RequestResponseInfo, PROP.RequestProblemInfo, PROP.UserProperty, PROP.AuthMethod, PROP.AuthData];
const WILL_PROPS = [PROP.WillDelay, PROP.PayloadFormat, PROP.MessageExpiry, PROP.ContentType, PROP.ResponseTopic,
  PROP.CorrelationData, PROP.UserProperty];
const PUBLISH_PROPS = [PROP.PayloadFormat, PROP.MessageExpiry, PROP.TopicAlias, PROP.ResponseTopic,
  PROP.CorrelationData, PROP.UserProperty, PROP.ContentType, PROP.SubscriptionId];
const ACK_PROPS = [PROP.ReasonString, PROP.UserProperty];
const SUBSCRIBE_PROPS = [PROP.SubscriptionId, PROP.UserProperty];
const DISCONNECT_PROPS = [PROP.SessionExpiry, PROP.ReasonString, PROP.UserProperty, PROP.ServerReference];
const AUTH_PROPS = [PROP.AuthMethod, PROP.AuthData, PROP.ReasonString, PROP.UserProperty];

export function randomVersion(r: Rng): Version {
  const x = r.next();
  return x < 0.45 ? 4 : x < 0.6 ? 3 : 5;
}

export function connectPacket(r: Rng, v: Version, clientId?: string): Packet {
  const willQos = r.int(3);
  return connect({
    version: v,
    clientId: clientId ?? r.pick(CLIENT_IDS),
    clean: r.chance(0.6),
    keepAlive: r.pick([0, 0, 0, 1, 2, 60, 65535]),
    will: r.chance(0.3)
      ? { topic: topicName(r), payload: payload(r), qos: willQos, retain: r.chance(0.3), props: v === 5 ? someProps(r, WILL_PROPS) : undefined }
      : undefined,
    username: r.chance(0.2) ? "user" : undefined,
    password: r.chance(0.15) ? "secret" : undefined,
    props: v === 5 ? someProps(r, CONNECT_PROPS) : undefined,
  });
}

/** CONNECT, then up to 10 packets a client could send, sometimes a DISCONNECT. */
export function validSequence(r: Rng, v: Version, clientId?: string): Packet[] {
  const ps: Packet[] = [connectPacket(r, v, clientId)];
  const n = r.int(11);
  let nextId = r.range(1, 3);
  for (let i = 0; i < n; i++) {
    const x = r.int(100);
    const id = r.chance(0.1) ? r.pick([1, 2, 0xffff]) : nextId++;
    if (x < 20) {
      const filters: Array<[string, number]> = [];
      for (let k = r.range(1, 3); k > 0; k--) {
        const qos = r.int(3);
        const opts = v === 5 ? qos | (r.chance(0.2) ? 4 : 0) | (r.chance(0.2) ? 8 : 0) | (r.int(3) << 4) : qos;
        filters.push([topicFilter(r), opts]);
      }
      ps.push(subscribe(v, id, filters, v === 5 ? someProps(r, SUBSCRIBE_PROPS, 2) : undefined));
    } else if (x < 28) {
      ps.push(unsubscribe(v, id, [topicFilter(r)], v === 5 ? someProps(r, [PROP.UserProperty], 1) : undefined));
    } else if (x < 60) {
      const qos = r.int(3);
      ps.push(publish(v, {
        topic: topicName(r), payload: payload(r), qos, retain: r.chance(0.25), dup: qos > 0 && r.chance(0.1), id,
        props: v === 5 ? someProps(r, PUBLISH_PROPS, 2) : undefined,
      }));
      if (qos === 2 && r.chance(0.7)) ps.push(ack(v, T.PUBREL, id));
    } else if (x < 80) {
      // acknowledgements for what the broker may have sent us (its ids start at 1)
      const type = r.pick([T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP]);
      const reason = v === 5 && r.chance(0.5) ? r.pick([0, 0x10, 0x80, 0x92]) : undefined;
      ps.push(ack(v, type, r.range(1, 4), reason, reason !== undefined && r.chance(0.5) ? someProps(r, ACK_PROPS, 2) : undefined));
    } else if (x < 92) {
      ps.push(pingreq());
    } else if (v === 5 && x < 95) {
      ps.push(auth(r.pick([0, 0x18, 0x19]), someProps(r, AUTH_PROPS, 2)));
    } else {
      break;
    }
  }
  if (r.chance(0.5)) {
    const reason = v === 5 && r.chance(0.5) ? r.pick([0, 4, 0x80]) : undefined;
    ps.push(disconnect(v, reason, reason !== undefined ? someProps(r, DISCONNECT_PROPS, 2) : undefined));
  }
  return ps;
}

// ---- structure-aware mutations ----

const BAD_UTF8: number[][] = [
  [0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x00], [0xc3],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];
const GOOD_ODD_UTF8: number[][] = [[0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbf, 0xbf], [0xc2, 0x80], [0x7f]];
const SPECIAL = [0x2b, 0x23, 0x2f, 0x24]; // + # / $
const SIZES = [23, 24, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000];

function allFields(ps: Packet[]): Field[] {
  const out: Field[] = [];
  const walk = (fs: Field[]) => {
    for (const f of fs) {
      out.push(f);
      if (f.k === "props") for (const p of f.items) walk(p.value);
    }
  };
  for (const p of ps) walk(p.body);
  return out;
}

function allProps(ps: Packet[]): Array<Extract<Field, { k: "props" }>> {
  return allFields(ps).filter((f): f is Extract<Field, { k: "props" }> => f.k === "props");
}

function splice(b: Uint8Array, at: number, del: number, ins: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(b.length - del + ins.length);
  out.set(b.subarray(0, at));
  out.set(ins, at);
  out.set(b.subarray(at + del), at + ins.length);
  return out;
}

function mutateField(r: Rng, f: Field): void {
  switch (f.k) {
    case "u8":
      f.v = r.chance(0.5) ? r.pick([0, 1, 2, 3, 4, 5, 0x40, 0x7f, 0x80, 0xc0, 0xff]) : f.v ^ (1 << r.int(8));
      return;
    case "u16":
      f.v = r.pick([0, 1, 2, 0x7fff, 0x8000, 0xffff, (f.v + 1) & 0xffff, (f.v - 1) & 0xffff, r.int(65536)]);
      return;
    case "u32":
      f.v = r.pick([0, 1, 0xffffffff, 0x80000000, 65535, r.int(2 ** 32)]);
      return;
    case "varint":
      if (r.chance(0.3)) f.pad = r.range(1, 4);
      else f.v = r.pick([0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455, 268435456]);
      return;
    case "str": {
      const x = r.int(8);
      if (x === 0) f.lenDelta = r.chance(0.7) ? r.pick([-3, -2, -1, 1, 2, 3]) : r.range(-f.b.length, 70000);
      else if (x === 1) f.b = splice(f.b, r.int(f.b.length + 1), 0, r.pick(BAD_UTF8));
      else if (x === 2) f.b = splice(f.b, r.int(f.b.length + 1), 0, r.pick(GOOD_ODD_UTF8));
      else if (x === 3) f.b = splice(f.b, r.int(f.b.length + 1), 0, [r.pick(SPECIAL)]);
      else if (x === 4) f.b = new Uint8Array(0);
      else if (x === 5) {
        const n = r.pick(SIZES);
        const b = new Uint8Array(n).fill(0x61);
        if (r.chance(0.3)) for (let i = 0; i < n; i += r.range(1, 4)) b[i] = 0x2f; // many levels
        f.b = b;
      } else if (x === 6) f.b = r.bytes(r.int(12));
      else if (f.b.length > 0) f.b = splice(f.b, r.int(f.b.length), 1, []);
      return;
    }
    case "raw":
      f.b = r.chance(0.5) ? r.bytes(r.int(64)) : new Uint8Array(0);
      return;
    case "props": {
      const x = r.int(6);
      if (x === 0) f.lenDelta = r.pick([-3, -2, -1, 1, 2, 3, 200]);
      else if (x === 1 && f.items.length > 0) f.items.push(structuredClone(r.pick(f.items))); // duplicate
      else if (x === 2 && f.items.length > 0) f.items.splice(r.int(f.items.length), 1);
      else if (x === 3 && f.items.length > 0) r.pick(f.items).id = r.pick([0, 0x04, 0x2b, 0x7f, 0x80, 0x4000, r.int(0x30)]);
      else if (x === 4) {
        // a valid id with a value of another type
        const id = r.pick(Object.values(PROP));
        f.items.push({ id, value: [r.pick<Field>([{ k: "u8", v: 1 }, { k: "u32", v: 7 }, { k: "str", b: bytes("zz") }])] });
      } else {
        const id = r.range(1, 0x2a);
        f.items.push(prop(id, r.int(3)));
      }
      return;
    }
  }
}

function mutatePacket(r: Rng, p: Packet): void {
  const x = r.int(7);
  if (x === 0) p.flags = r.int(16);
  else if (x === 1) p.type = r.int(16);
  else if (x === 2) p.lenDelta = r.chance(0.8) ? r.pick([-3, -2, -1, 1, 2, 3]) : r.pick([1000, 70000, 2 ** 21, 2 ** 28 - 1]);
  else if (x === 3) p.lenPad = r.range(1, 4); // non-minimal, and from 4 extra bytes a five-byte varint
  else if (x === 4 && p.body.length > 0) p.body.splice(r.int(p.body.length), 1);
  else if (x === 5 && p.body.length > 0) p.body.splice(r.int(p.body.length), 0, structuredClone(r.pick(p.body)));
  else if (p.body.length > 1) {
    const i = r.int(p.body.length), j = r.int(p.body.length);
    [p.body[i], p.body[j]] = [p.body[j], p.body[i]];
  }
}

function mutateSequence(r: Rng, ps: Packet[], v: Version): void {
  const x = r.int(5);
  if (x === 0 && ps.length > 1) ps.splice(r.int(ps.length), 1);
  else if (x === 1 && ps.length > 0) ps.splice(r.int(ps.length + 1), 0, structuredClone(r.pick(ps)));
  else if (x === 2 && ps.length > 1) {
    const i = r.int(ps.length), j = r.int(ps.length);
    [ps[i], ps[j]] = [ps[j], ps[i]];
  } else {
    // a packet of another sequence, maybe of another protocol version
    const other = validSequence(r, r.chance(0.5) ? v : randomVersion(r));
    ps.splice(r.int(ps.length + 1), 0, r.pick(other.slice(x === 3 ? 0 : 1).concat(other.slice(0, 1))));
  }
}

/** 0 to 4 structural mutations, sometimes a few raw bit flips on top. */
export function mutatedStream(r: Rng, v: Version, ps: Packet[], mutations: number): Uint8Array {
  for (let i = 0; i < mutations; i++) {
    const x = r.int(10);
    const fields = allFields(ps);
    if (x < 5 && fields.length > 0) mutateField(r, r.pick(fields));
    else if (x < 6 && v === 5) {
      const pf = allProps(ps);
      if (pf.length > 0) mutateField(r, r.pick(pf));
    } else if (x < 8 && ps.length > 0) mutatePacket(r, r.pick(ps));
    else mutateSequence(r, ps, v);
  }
  let b = encodeAll(ps);
  if (mutations > 0 && r.chance(0.1)) {
    for (let k = r.range(1, 4); k > 0 && b.length > 0; k--) {
      const at = r.int(b.length);
      const y = r.int(3);
      if (y === 0) b[at] ^= 1 << r.int(8);
      else if (y === 1) b = splice(b, at, 0, [r.int(256)]);
      else b = splice(b, at, 1, []);
    }
  }
  return b;
}

/** Chunk sizes for a stream of `n` bytes: whole, every byte (up to `everyByte` bytes), one
 *  cut, or many cuts. */
export function cutting(r: Rng, n: number, everyByte = 4096): number[] {
  const x = r.int(10);
  if (n <= 1 || x < 3) return [n];
  if (x < 5 && n <= everyByte) return new Array<number>(n).fill(1);
  const cuts = new Set<number>();
  const k = x < 8 ? 1 : r.range(2, 8);
  for (let i = 0; i < k; i++) cuts.add(r.range(1, n - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const sizes: number[] = [];
  let last = 0;
  for (const c of sorted) {
    sizes.push(c - last);
    last = c;
  }
  sizes.push(n - last);
  return sizes;
}

function chunks(b: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(b.subarray(at, at + s));
    at += s;
  }
  return out;
}

/** A persistent subscriber goes away, a publisher floods it (queues, store and the
 *  delivery pool fill up), then it comes back and acknowledges some of what it gets
 *  (redelivery with DUP, the in-flight window, PUBREL/PUBCOMP). Lightly mutated. */
function flood(r: Rng): Input {
  const v = r.chance(0.8) ? 4 : randomVersion(r);
  const id = r.pick(["fzq", "fzq2"]);
  const qos = r.range(1, 2);
  const sub: Packet[] = [
    connectPacket(r, v, id),
    subscribe(v, 1, [[r.pick(["#", "a/#", "a/+", "+/+/#"]), qos]]),
  ];
  (sub[0].body[2] as { v: number }).v &= ~0x02; // persistent
  const pub: Packet[] = [connectPacket(r, r.chance(0.8) ? 4 : randomVersion(r), "fzp")];
  const n = r.range(10, 300);
  for (let i = 0; i < n; i++) {
    const big = r.chance(0.1);
    const q = r.int(3);
    pub.push(publish(v, {
      topic: r.pick(["a", "a/b", "a/b/c", "a/" + "x".repeat(r.int(200))]),
      payload: big ? r.bytes(r.range(500, 3000)) : r.bytes(r.int(20)),
      qos: q, id: (i % 65535) + 1, retain: r.chance(0.05),
    }));
    if (q === 2 && r.chance(0.95)) pub.push(ack(v, T.PUBREL, (i % 65535) + 1));
  }
  const back: Packet[] = [connectPacket(r, v, id)];
  (back[0].body[2] as { v: number }).v &= ~0x02;
  const acks = r.int(60);
  for (let i = 0; i < acks; i++) {
    const pid = r.range(1, 40);
    if (qos === 1) back.push(ack(v, T.PUBACK, pid));
    else back.push(ack(v, T.PUBREC, pid), ack(v, T.PUBCOMP, pid));
  }
  if (r.chance(0.3)) back.push(disconnect(v));
  const m = r.chance(0.7) ? 0 : r.range(1, 2);
  const streams = [mutatedStream(r, v, sub, 0), mutatedStream(r, v, pub, m), mutatedStream(r, v, back, m)];
  // sometimes the subscriber (its queue drained into frames) or the publisher over WebSockets
  const listeners: number[] = [LISTENER.mqtt, LISTENER.mqtt, LISTENER.mqtt];
  if (r.chance(0.15)) listeners[0] = listeners[2] = LISTENER.websockets;
  if (r.chance(0.1)) listeners[1] = LISTENER.websockets;
  for (let c = 0; c < 3; c++) if (listeners[c] !== LISTENER.mqtt) streams[c] = overWebSocket(r, streams[c], m > 0);
  const events: Event[] = [];
  const order = r.chance(0.7) ? [0, 1, 2] : [0, 2, 1];
  for (const c of order) {
    events.push(listeners[c] === LISTENER.mqtt ? { e: "open", c } : { e: "open", c, listener: listeners[c] });
    for (const b of chunks(streams[c], cutting(r, streams[c].length))) events.push({ e: "feed", c, b });
    if (c === 0 || r.chance(0.5)) events.push({ e: "close", c });
  }
  return { kind: "events", events };
}

/** Plain GETs, mutated upgrades and garbage on a WebSocket (or http) listener, sometimes
 *  with the clock moving (the CONNECT timeout, also while the upgrade is unfinished). */
function http(r: Rng): Input {
  const listener = r.chance(0.8) ? LISTENER.websockets : LISTENER.http;
  const v = randomVersion(r);
  const b = httpStream(r, () => mutatedStream(r, v, validSequence(r, v), r.chance(0.5) ? 0 : r.range(1, 2)));
  const events: Event[] = [{ e: "open", c: 0, listener }];
  for (const piece of chunks(b, cutting(r, b.length))) {
    events.push({ e: "feed", c: 0, b: piece });
    if (r.chance(0.05)) events.push({ e: "tick", ms: r.pick([10, 10_001, 100_000_000]) });
  }
  if (r.chance(0.2)) events.push({ e: "tick", ms: r.pick([10_001, 100_000_000]) });
  if (r.chance(0.7)) events.push({ e: "close", c: 0 });
  return { kind: "events", events };
}

/** The input named by `seed`. About a sixth of them speak WebSockets or HTTP on one of
 *  their connections (usesWebSocket). */
export function generate(seed: number): Input {
  const r = new Rng(seed);
  if (r.chance(0.04)) return flood(r);
  if (r.chance(0.2)) {
    // split differential: one connection, no clock, different cuttings
    const v = randomVersion(r);
    const ps = validSequence(r, v, r.pick(["fzs", "fzs2"]));
    const mutations = r.chance(0.4) ? 0 : r.range(1, 3);
    let stream = mutatedStream(r, v, ps, mutations);
    const ws = r.chance(0.12);
    if (ws) stream = overWebSocket(r, stream, mutations > 0);
    // (a WebSocket stream fed a byte at a time costs the most: a shorter one only)
    const everyByte = ws ? 1024 : 4096;
    const cuts = [[stream.length], cutting(r, stream.length, everyByte), cutting(r, stream.length, everyByte)];
    if (stream.length <= everyByte / 2 && r.chance(0.5)) cuts.push(new Array<number>(stream.length).fill(1));
    return ws ? { kind: "split", stream, cuts, listener: LISTENER.websockets } : { kind: "split", stream, cuts };
  }
  if (r.chance(0.05)) return http(r);
  const nconn = r.chance(0.6) ? 1 : r.range(2, 3);
  const queues: Uint8Array[][] = [];
  const listeners: number[] = [];
  for (let c = 0; c < nconn; c++) {
    const v = randomVersion(r);
    const ps = validSequence(r, v);
    let b = mutatedStream(r, v, ps, r.chance(0.1) ? 0 : r.range(1, 4));
    listeners.push(r.chance(0.1) ? LISTENER.websockets : LISTENER.mqtt);
    if (listeners[c] !== LISTENER.mqtt) b = overWebSocket(r, b, r.chance(0.7));
    if (r.chance(0.15) && b.length > 1) b = b.subarray(0, r.int(b.length)); // dropped mid-stream
    queues.push(chunks(b, cutting(r, b.length)));
  }
  const events: Event[] = [];
  for (let c = 0; c < nconn; c++) events.push(listeners[c] === LISTENER.mqtt ? { e: "open", c } : { e: "open", c, listener: listeners[c] });
  for (let c = 0; c < nconn; c++) if (r.chance(0.1)) events.push({ e: "backlog", c, n: r.pick([0, 2 ** 20 + 1, 2 ** 31]) });
  const open = new Set(queues.keys());
  while (open.size > 0) {
    const c = r.pick([...open]);
    const q = queues[c];
    if (q.length === 0) {
      open.delete(c);
      if (r.chance(0.7)) events.push({ e: "close", c });
      continue;
    }
    events.push({ e: "feed", c, b: q.shift()! });
    if (r.chance(0.05)) events.push({ e: "tick", ms: r.pick([0, 10, 1600, 3100, 10_001, 100_000_000]) });
    if (r.chance(0.02)) events.push({ e: "close", c }); // an abrupt close, maybe mid-packet
  }
  return { kind: "events", events };
}
