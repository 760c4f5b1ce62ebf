// MQTT packets as small trees, so the fuzzer can mutate them where a decoder looks:
// a length prefix, a flag bit, a property id, one byte of a UTF-8 string. `encode`
// turns a tree into bytes, including the broken encodings a mutation asks for
// (a remaining length that lies, a non-minimal or five-byte varint, a string
// length prefix that does not match its bytes).
//
// Layouts: MQTT 3.1.1 (level 4), MQTT 3.1 (`MQIsdp`, level 3), MQTT 5.0 (level 5,
// properties after the variable header; see MQTT 5.0 §2.2.2).

export type Field =
  | { k: "u8"; v: number }
  | { k: "u16"; v: number }
  | { k: "u32"; v: number }
  | { k: "varint"; v: number; pad?: number } // pad: extra non-minimal bytes
  | { k: "str"; b: Uint8Array; lenDelta?: number } // u16 length prefix + bytes (UTF-8 text or binary)
  | { k: "raw"; b: Uint8Array } // bytes as they are (a payload)
  | { k: "props"; items: Prop[]; lenDelta?: number }; // MQTT 5 properties: varint length + items

/** One MQTT 5 property: its id (a varint on the wire) and its value field(s). */
export interface Prop {
  id: number;
  value: Field[];
}

export interface Packet {
  type: number;
  flags: number;
  body: Field[];
  /** added to the true remaining length (a length that lies) */
  lenDelta?: number;
  /** extra bytes of the remaining-length varint: 0x80 continuation bytes before a 0x00 */
  lenPad?: number;
}

export const T = {
  CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, PUBREC: 5, PUBREL: 6, PUBCOMP: 7,
  SUBSCRIBE: 8, SUBACK: 9, UNSUBSCRIBE: 10, UNSUBACK: 11, PINGREQ: 12, PINGRESP: 13,
  DISCONNECT: 14, AUTH: 15,
} as const;

/** MQTT 5 property ids and the type of their value (MQTT 5.0 §2.2.2.2). */
export const PROP = {
  PayloadFormat: 0x01, MessageExpiry: 0x02, ContentType: 0x03, ResponseTopic: 0x08,
  CorrelationData: 0x09, SubscriptionId: 0x0b, SessionExpiry: 0x11, AssignedClientId: 0x12,
  ServerKeepAlive: 0x13, AuthMethod: 0x15, AuthData: 0x16, RequestProblemInfo: 0x17,
  WillDelay: 0x18, RequestResponseInfo: 0x19, ResponseInfo: 0x1a, ServerReference: 0x1c,
  ReasonString: 0x1f, ReceiveMaximum: 0x21, TopicAliasMaximum: 0x22, TopicAlias: 0x23,
  MaximumQos: 0x24, RetainAvailable: 0x25, UserProperty: 0x26, MaximumPacketSize: 0x27,
  WildcardAvailable: 0x28, SubIdAvailable: 0x29, SharedAvailable: 0x2a,
} as const;

export type PropKind = "u8" | "u16" | "u32" | "varint" | "str" | "pair";
export const PROP_KIND: Record<number, PropKind> = {
  0x01: "u8", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "str", 0x0b: "varint", 0x11: "u32",
  0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "str", 0x17: "u8", 0x18: "u32", 0x19: "u8",
  0x1a: "str", 0x1c: "str", 0x1f: "str", 0x21: "u16", 0x22: "u16", 0x23: "u16", 0x24: "u8",
  0x25: "u8", 0x26: "pair", 0x27: "u32", 0x28: "u8", 0x29: "u8", 0x2a: "u8",
};

// ---- field constructors ----

const utf8 = new TextEncoder();
export const bytes = (s: string | Uint8Array): Uint8Array => (typeof s === "string" ? utf8.encode(s) : s);
export const u8 = (v: number): Field => ({ k: "u8", v });
export const u16 = (v: number): Field => ({ k: "u16", v });
export const u32 = (v: number): Field => ({ k: "u32", v });
export const varint = (v: number): Field => ({ k: "varint", v });
export const str = (s: string | Uint8Array): Field => ({ k: "str", b: bytes(s) });
export const raw = (s: string | Uint8Array): Field => ({ k: "raw", b: bytes(s) });
export const props = (...items: Prop[]): Field => ({ k: "props", items });

/** A property with a value of the right type for its id. */
export function prop(id: number, ...values: Array<number | string | Uint8Array>): Prop {
  const kind = PROP_KIND[id] ?? "u8";
  const v = values[0] ?? 0;
  switch (kind) {
    case "u8": return { id, value: [u8(Number(v))] };
    case "u16": return { id, value: [u16(Number(v))] };
    case "u32": return { id, value: [u32(Number(v))] };
    case "varint": return { id, value: [varint(Number(v))] };
    case "str": return { id, value: [str(typeof v === "number" ? String(v) : v)] };
    case "pair": return { id, value: [str(String(v)), str(String(values[1] ?? ""))] };
  }
}

// ---- encoding ----

/** Bytes of a varint, with `pad` redundant continuation bytes (a non-minimal form). */
export function varintBytes(v: number, pad = 0): number[] {
  const out: number[] = [];
  v = Math.max(0, Math.floor(v));
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0 || pad > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  for (let i = 0; i < pad; i++) out.push(i === pad - 1 ? 0x00 : 0x80);
  return out;
}

class Out {
  buf: Uint8Array;
  n = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  byte(v: number): void {
    this.room(1);
    this.buf[this.n++] = v & 0xff;
  }
  bytes(b: Uint8Array | number[]): void {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  done(): Uint8Array {
    return this.n === this.buf.length ? this.buf : this.buf.subarray(0, this.n);
  }
}

function fieldsLength(fields: Field[]): number {
  let n = 0;
  for (const f of fields) n += fieldLength(f);
  return n;
}

function fieldLength(f: Field): number {
  switch (f.k) {
    case "u8": return 1;
    case "u16": return 2;
    case "u32": return 4;
    case "varint": return varintBytes(f.v, f.pad).length;
    case "str": return 2 + f.b.length;
    case "raw": return f.b.length;
    case "props": {
      const inner = propsLength(f.items);
      return varintBytes(Math.max(0, inner + (f.lenDelta ?? 0))).length + inner;
    }
  }
}

function propsLength(items: Prop[]): number {
  let n = 0;
  for (const p of items) n += varintBytes(p.id).length + fieldsLength(p.value);
  return n;
}

function writeField(o: Out, f: Field): void {
  switch (f.k) {
    case "u8": o.byte(f.v); return;
    case "u16": o.byte(f.v >> 8); o.byte(f.v); return;
    case "u32": o.byte(f.v >>> 24); o.byte(f.v >>> 16); o.byte(f.v >>> 8); o.byte(f.v); return;
    case "varint": o.bytes(varintBytes(f.v, f.pad)); return;
    case "str": {
      const len = (f.b.length + (f.lenDelta ?? 0)) & 0xffff;
      o.byte(len >> 8);
      o.byte(len);
      o.bytes(f.b);
      return;
    }
    case "raw": o.bytes(f.b); return;
    case "props": {
      o.bytes(varintBytes(Math.max(0, propsLength(f.items) + (f.lenDelta ?? 0))));
      for (const p of f.items) {
        o.bytes(varintBytes(p.id));
        for (const v of p.value) writeField(o, v);
      }
      return;
    }
  }
}

export function encode(p: Packet): Uint8Array {
  const body = fieldsLength(p.body);
  const len = varintBytes(Math.max(0, body + (p.lenDelta ?? 0)), p.lenPad ?? 0);
  const o = new Out(1 + len.length + body); // exactly (room() grows it if a field says otherwise)
  o.byte((p.type << 4) | (p.flags & 0x0f));
  o.bytes(len);
  for (const f of p.body) writeField(o, f);
  return o.done();
}

export function encodeAll(ps: Packet[]): Uint8Array {
  const parts = ps.map(encode);
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

// ---- valid packets of each protocol version ----

export type Version = 3 | 4 | 5;

export interface ConnectSpec {
  version: Version;
  clientId: string | Uint8Array;
  clean?: boolean;
  keepAlive?: number;
  will?: { topic: string | Uint8Array; payload: string | Uint8Array; qos: number; retain: boolean; props?: Prop[] };
  username?: string;
  password?: string | Uint8Array;
  props?: Prop[];
}

export function connect(c: ConnectSpec): Packet {
  let flags = c.clean ?? true ? 0x02 : 0;
  if (c.will) flags |= 0x04 | ((c.will.qos & 3) << 3) | (c.will.retain ? 0x20 : 0);
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined) flags |= 0x40;
  const body: Field[] = [str(c.version === 3 ? "MQIsdp" : "MQTT"), u8(c.version), u8(flags), u16(c.keepAlive ?? 0)];
  if (c.version === 5) body.push(props(...(c.props ?? [])));
  body.push(str(c.clientId));
  if (c.will) {
    if (c.version === 5) body.push(props(...(c.will.props ?? [])));
    body.push(str(c.will.topic), str(c.will.payload));
  }
  if (c.username !== undefined) body.push(str(c.username));
  if (c.password !== undefined) body.push(str(c.password));
  return { type: T.CONNECT, flags: 0, body };
}

export interface PublishSpec {
  topic: string | Uint8Array;
  payload: string | Uint8Array;
  qos: number;
  retain?: boolean;
  dup?: boolean;
  id?: number;
  props?: Prop[];
}

export function publish(v: Version, p: PublishSpec): Packet {
  const flags = (p.dup ? 8 : 0) | ((p.qos & 3) << 1) | (p.retain ? 1 : 0);
  const body: Field[] = [str(p.topic)];
  if (p.qos > 0) body.push(u16(p.id ?? 1));
  if (v === 5) body.push(props(...(p.props ?? [])));
  body.push(raw(p.payload));
  return { type: T.PUBLISH, flags, body };
}

/** PUBACK, PUBREC, PUBREL or PUBCOMP; in MQTT 5 with a reason code and properties when given. */
export function ack(v: Version, type: number, id: number, reason?: number, ps?: Prop[]): Packet {
  const body: Field[] = [u16(id)];
  if (v === 5 && reason !== undefined) {
    body.push(u8(reason));
    if (ps !== undefined) body.push(props(...ps));
  }
  return { type, flags: type === T.PUBREL ? 2 : 0, body };
}

/** `options`: the requested QoS (0..2), plus in MQTT 5 the No Local, Retain As
 *  Published and Retain Handling bits. */
export function subscribe(v: Version, id: number, filters: Array<[string | Uint8Array, number]>, ps?: Prop[]): Packet {
  const body: Field[] = [u16(id)];
  if (v === 5) body.push(props(...(ps ?? [])));
  for (const [f, o] of filters) body.push(str(f), u8(o));
  return { type: T.SUBSCRIBE, flags: 2, body };
}

export function unsubscribe(v: Version, id: number, filters: Array<string | Uint8Array>, ps?: Prop[]): Packet {
  const body: Field[] = [u16(id)];
  if (v === 5) body.push(props(...(ps ?? [])));
  for (const f of filters) body.push(str(f));
  return { type: T.UNSUBSCRIBE, flags: 2, body };
}

export const pingreq = (): Packet => ({ type: T.PINGREQ, flags: 0, body: [] });

export function disconnect(v: Version, reason?: number, ps?: Prop[]): Packet {
  const body: Field[] = [];
  if (v === 5 && reason !== undefined) {
    body.push(u8(reason));
    if (ps !== undefined) body.push(props(...ps));
  }
  return { type: T.DISCONNECT, flags: 0, body };
}

export function auth(reason: number, ps: Prop[]): Packet {
  return { type: T.AUTH, flags: 0, body: [u8(reason), props(...ps)] };
}

// ---- decoding what the core sends (just enough to check and answer it) ----

export interface Parsed {
  type: number;
  flags: number;
  body: Uint8Array;
}

/** Whole packets at the front of `buf`, and how many bytes they took; `bad` when the
 *  bytes cannot be the start of a packet (a malformed varint). */
export function split(buf: Uint8Array): { packets: Parsed[]; used: number; bad: boolean } {
  const packets: Parsed[] = [];
  let off = 0;
  while (buf.length - off >= 2) {
    let len = 0;
    let mul = 1;
    let i = off + 1;
    let done = false;
    for (let k = 0; k < 4 && i < buf.length; k++) {
      const b = buf[i++];
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) {
        done = true;
        break;
      }
      if (k === 3) return { packets, used: off, bad: true };
    }
    if (!done || buf.length - i < len) break;
    packets.push({ type: buf[off] >> 4, flags: buf[off] & 15, body: buf.subarray(i, i + len) });
    off = i + len;
  }
  return { packets, used: off, bad: false };
}

/** Topic, packet id, QoS and payload of a PUBLISH in MQTT 3.1.1 layout. */
export function parsePublish(p: Parsed, v: Version = 4): { topic: Uint8Array; qos: number; id: number; payload: Uint8Array } {
  const qos = (p.flags >> 1) & 3;
  const tl = (p.body[0] << 8) | p.body[1];
  let off = 2 + tl;
  const topic = p.body.subarray(2, off);
  let id = 0;
  if (qos > 0) {
    id = (p.body[off] << 8) | p.body[off + 1];
    off += 2;
  }
  if (v === 5) {
    // skip the properties
    let len = 0;
    let mul = 1;
    for (;;) {
      const b = p.body[off++];
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    off += len;
  }
  return { topic, qos, id, payload: p.body.subarray(off) };
}
