// Helpers for the conformance suite: everything in test/host/helpers.ts (the broker
// launcher, the raw-socket client and the 3.1.1 packet builders), plus the checks the
// suite repeats (nothing arrives, the connection closes, a packet has exactly these
// bytes), and MQTT 5.0 packet builders and parsers in this suite's shape (property lists,
// `reason`), which wrap test/host/helpers.ts's codec: one encoder and decoder for both.
//
// Conformance tests talk bytes only: no client library smooths anything over.
// Every wait is bounded; a negative check ("no PUBACK", "no delivery") waits a short,
// fixed time and then asserts that nothing of that kind arrived.
import assert from "node:assert/strict";
import {
  PacketType,
  RawClient,
  connectPacket,
  packet,
  rawConnect,
  str,
  subscribePacket,
  u16,
  uid,
  varint,
  type Broker,
  type ConnectFields,
  type RawPacket,
} from "../host/helpers.js";

export * from "../host/helpers.js";
import {
  props as hostProps,
  decodeProps as hostDecodeProps,
  connect5Packet,
  publish5Packet,
  subscribe5Packet,
  unsubscribe5Packet,
  parsePublish5 as hostParsePublish5,
  parseSuback5,
  parseAck5,
  ack5 as hostAck5,
  disconnect5 as hostDisconnect5,
} from "../host/helpers.js";

/** How long a negative check waits for something that must not happen. */
export const QUIET_MS = 300;

/** Per-test timeout for node:test (every await inside is bounded far below this). */
export const T = { timeout: 15_000 };

// ---------------------------------------------------------------------------------
// checks over raw connections

/** Asserts that no packet (of `type`, if given) arrives within `ms`. */
export async function expectNothing(raw: RawClient, ms = QUIET_MS, type?: number, what = "no packet"): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  const got = raw.unread.filter((p) => type === undefined || p.type === type);
  assert.deepEqual(
    got.map(describePacket),
    [],
    `${what}: expected nothing${type !== undefined ? ` of type ${typeName(type)}` : ""} within ${ms} ms`,
  );
}

/** Asserts the broker closes the connection within `ms` and returns the packets it sent first. */
export async function expectClose(raw: RawClient, ms = 5000, what = "the broker to close the connection"): Promise<RawPacket[]> {
  await raw.waitClose(ms, what);
  const left = [...raw.unread];
  raw.unread.length = 0;
  return left;
}

/** Asserts the connection is still open after `ms` (a PINGREQ still gets its PINGRESP). */
export async function expectOpen(raw: RawClient, ms = QUIET_MS): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(raw.isClosed, false, "the connection must stay open");
  raw.write(packet(PacketType.PINGREQ, 0));
  const p = await nextOfType(raw, PacketType.PINGRESP, 3000);
  assert.equal(p.type, PacketType.PINGRESP);
}

/** Waits for the next packet of `type`, keeping any other packets (in order) for later. */
export async function nextOfType(raw: RawClient, type: number, ms = 5000): Promise<RawPacket> {
  const deadline = Date.now() + ms;
  for (;;) {
    const i = raw.unread.findIndex((p) => p.type === type);
    if (i >= 0) return raw.unread.splice(i, 1)[0];
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${typeName(type)} (have: ${raw.unread.map(describePacket).join(", ") || "nothing"}${raw.isClosed ? "; connection closed" : ""})`);
    if (raw.isClosed) throw new Error(`connection closed while waiting for ${typeName(type)} (have: ${raw.unread.map(describePacket).join(", ") || "nothing"})`);
    await waitAny(raw, left);
  }
}

/** Resolves when another packet arrives or the connection closes (or `ms` pass). */
function waitAny(raw: RawClient, ms: number): Promise<void> {
  const n = raw.unread.length;
  return new Promise<void>((resolve) => {
    const start = Date.now();
    const tick = () => {
      if (raw.unread.length !== n || raw.isClosed || Date.now() - start >= ms) resolve();
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** Collects every packet of `type` that arrives within `ms` (removing them from the queue). */
export async function collect(raw: RawClient, type: number, ms = QUIET_MS): Promise<RawPacket[]> {
  await new Promise((r) => setTimeout(r, ms));
  const out: RawPacket[] = [];
  for (let i = 0; i < raw.unread.length; ) {
    if (raw.unread[i].type === type) out.push(raw.unread.splice(i, 1)[0]);
    else i++;
  }
  return out;
}

export function typeName(type: number): string {
  return Object.entries(PacketType).find(([, v]) => v === type)?.[0] ?? (type === 15 ? "AUTH" : `type ${type}`);
}

export function describePacket(p: RawPacket): string {
  return `${typeName(p.type)}(flags ${p.flags}, ${p.body.toString("hex")})`;
}

/** Every packet type in a byte stream (the whole of what a connection received). */
export function packetTypes(buf: Buffer): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    let len = 0;
    let mul = 1;
    let i = off + 1;
    for (; i < buf.length && i < off + 5; i++) {
      len += (buf[i] & 0x7f) * mul;
      mul *= 128;
      if ((buf[i] & 0x80) === 0) break;
    }
    out.push(buf[off] >> 4);
    off = i + 1 + len;
  }
  return out;
}

// ---------------------------------------------------------------------------------
// 3.1.1 conveniences

/** Connects (3.1.1 unless `f` says otherwise), insists on CONNACK 0, returns the client. */
export async function online(broker: Broker, f: ConnectFields = {}): Promise<RawClient> {
  const r = await rawConnect(broker, f);
  assert.equal(r.returnCode, 0, `CONNACK return code for ${String(f.clientId ?? "")}`);
  return r.raw;
}

/** SUBSCRIBE and return the SUBACK return codes (checks the packet id). */
export async function sub(raw: RawClient, filters: Array<[string | Buffer, number]>, id = 1): Promise<number[]> {
  raw.write(subscribePacket(id, filters));
  const ack = await nextOfType(raw, PacketType.SUBACK);
  assert.equal(ack.body.readUInt16BE(0), id, "[MQTT-2.3.1-7] SUBACK packet id");
  return [...ack.body.subarray(2)];
}

export function unsubscribePacket(id: number, filters: Array<string | Buffer>, flags = 0x02): Buffer {
  return packet(PacketType.UNSUBSCRIBE, flags, Buffer.concat([u16(id), ...filters.map((f) => str(f))]));
}

export async function unsub(raw: RawClient, filters: Array<string | Buffer>, id = 2): Promise<RawPacket> {
  raw.write(unsubscribePacket(id, filters));
  const ack = await nextOfType(raw, PacketType.UNSUBACK);
  assert.equal(ack.body.readUInt16BE(0), id, "[MQTT-2.3.1-7] UNSUBACK packet id");
  return ack;
}

/** A fresh topic prefix for one test. */
export function topicBase(prefix = "conf"): string {
  return uid(prefix).replace(/[^A-Za-z0-9-]/g, "");
}

/** Opens a raw connection and sends bytes as the first thing (no CONNECT sent by us). */
export async function openRaw(broker: Broker, first?: Buffer): Promise<RawClient> {
  const raw = await RawClient.open(broker);
  if (first) raw.write(first);
  return raw;
}

export { connectPacket, subscribePacket, varint };

// ---------------------------------------------------------------------------------
// MQTT 5.0: properties and packets

/** Property identifiers (MQTT 5.0 section 2.2.2.2). */
export const Prop = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  AssignedClientIdentifier: 0x12,
  ServerKeepAlive: 0x13,
  AuthenticationMethod: 0x15,
  AuthenticationData: 0x16,
  RequestProblemInformation: 0x17,
  WillDelayInterval: 0x18,
  RequestResponseInformation: 0x19,
  ResponseInformation: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQoS: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardSubscriptionAvailable: 0x28,
  SubscriptionIdentifierAvailable: 0x29,
  SharedSubscriptionAvailable: 0x2a,
} as const;

export type PropValue = number | string | Buffer | [string, string];
/** A property list in wire order: [identifier, value] pairs (repeats allowed). */
export type Props = Array<[number, PropValue]>;

/** Encodes a property list with its length prefix; `raw` bytes are appended as is (for
 *  malformed tests). The encoding itself is test/host/helpers.ts's. */
export function encodeProps(list: Props = [], raw?: Buffer): Buffer {
  const block = hostProps(list);
  if (!raw) return block;
  const [, n] = readVarint(block, 0);
  const body = Buffer.concat([block.subarray(n), raw]);
  return Buffer.concat([varint(body.length), body]);
}

/** Reads a variable byte integer at `off`; returns [value, bytes used]. */
export function readVarint(buf: Buffer, off: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    if (off + i >= buf.length) throw new Error("truncated variable byte integer");
    const b = buf[off + i];
    v += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) return [v, i + 1];
  }
  throw new Error("variable byte integer longer than 4 bytes");
}

/** Decodes a property list at `off`; returns the properties and the offset after them
 *  (test/host/helpers.ts's decoder, as a plain list). */
export function decodeProps(buf: Buffer, off: number): { props: Props; end: number } {
  const { props: decoded, next } = hostDecodeProps(buf, off);
  return { props: decoded.list, end: next };
}

export function prop(props: Props, id: number): PropValue | undefined {
  return props.find(([k]) => k === id)?.[1];
}

export function props(props: Props, id: number): PropValue[] {
  return props.filter(([k]) => k === id).map(([, v]) => v);
}

export interface Connect5Fields {
  clientId?: string | Buffer;
  clean?: boolean;
  keepalive?: number;
  props?: Props;
  rawProps?: Buffer;
  will?: { topic: string | Buffer; payload: string | Buffer; qos?: number; retain?: boolean; props?: Props };
  username?: string | Buffer;
  password?: string | Buffer;
  extraFlags?: number;
  protocolLevel?: number;
}

/** test/host/helpers.ts's CONNECT builder, with this suite's field names; `rawProps`
 *  are appended to the encoded properties (their length counts them). */
export function connect5(f: Connect5Fields = {}): Buffer {
  const { props, rawProps, will, ...rest } = f;
  return connect5Packet({
    ...rest,
    properties: props,
    rawProperties: rawProps ? encodeProps(props ?? [], rawProps) : undefined,
    will: will && { ...will, properties: will.props },
  });
}

export interface Connack5 {
  sessionPresent: boolean;
  flags: number;
  reason: number;
  props: Props;
}

export function parseConnack5(p: RawPacket): Connack5 {
  assert.equal(p.type, PacketType.CONNACK, `expected CONNACK, got ${describePacket(p)}`);
  const { props } = p.body.length > 2 ? decodeProps(p.body, 2) : { props: [] as Props };
  return { sessionPresent: (p.body[0] & 1) === 1, flags: p.body[0], reason: p.body[1], props };
}

export interface Session5 {
  raw: RawClient;
  connack: Connack5;
}

/** Opens a connection, sends an MQTT 5.0 CONNECT and reads the CONNACK (any reason code). */
export async function connect5Raw(broker: Broker, f: Connect5Fields = {}): Promise<Session5> {
  const raw = await RawClient.open(broker);
  raw.write(connect5({ clientId: uid("v5"), ...f }));
  const p = await raw.next(5000, "CONNACK");
  return { raw, connack: parseConnack5(p) };
}

/** connect5Raw that insists on reason code 0. */
export async function online5(broker: Broker, f: Connect5Fields = {}): Promise<Session5> {
  const s = await connect5Raw(broker, f);
  assert.equal(s.connack.reason, 0, "CONNACK reason code");
  return s;
}

export interface Publish5Fields {
  topic: string | Buffer;
  payload?: string | Buffer;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  id?: number;
  props?: Props;
  rawProps?: Buffer;
}

export function publish5(f: Publish5Fields): Buffer {
  const { props, rawProps, ...rest } = f;
  return publish5Packet({ ...rest, properties: props, rawProperties: rawProps ? encodeProps(props ?? [], rawProps) : undefined });
}

export interface Publish5 {
  topic: string;
  topicBytes: Buffer;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  id: number;
  props: Props;
}

export function parsePublish5(p: RawPacket): Publish5 {
  assert.equal(p.type, PacketType.PUBLISH, `expected PUBLISH, got ${describePacket(p)}`);
  const m = hostParsePublish5(p);
  const topicBytes = Buffer.from(p.body.subarray(2, 2 + p.body.readUInt16BE(0)));
  return { ...m, topicBytes, props: m.props.list };
}

/** Subscription options byte: QoS, No Local, Retain As Published, Retain Handling. */
export function subOpts(qos: number, o: { nl?: boolean; rap?: boolean; rh?: number } = {}): number {
  return (qos & 3) | (o.nl ? 0x04 : 0) | (o.rap ? 0x08 : 0) | (((o.rh ?? 0) & 3) << 4);
}

export function subscribe5(id: number, filters: Array<[string | Buffer, number]>, props: Props = [], flags = 0x02): Buffer {
  return subscribe5Packet(id, filters, props, flags);
}

export function unsubscribe5(id: number, filters: Array<string | Buffer>, props: Props = [], flags = 0x02): Buffer {
  return unsubscribe5Packet(id, filters, props, flags);
}

export interface Ack5 {
  type: number;
  id: number;
  reasons: number[];
  props: Props;
}

/** SUBACK / UNSUBACK: packet id, properties, one reason code per filter. */
export function parseSubAck5(p: RawPacket): Ack5 {
  const { id, props, codes } = parseSuback5(p);
  return { type: p.type, id, reasons: codes, props: props.list };
}

/** PUBACK / PUBREC / PUBREL / PUBCOMP: packet id, reason code (0 when omitted), properties. */
export function parsePubAck5(p: RawPacket): Ack5 {
  const { id, reasonCode, props } = parseAck5(p);
  return { type: p.type, id, reasons: [reasonCode], props: props.list };
}

/** DISCONNECT (or AUTH): reason code (0 when omitted) and properties. */
export function parseDisconnect5(p: RawPacket): { reason: number; props: Props } {
  const reason = p.body.length > 0 ? p.body[0] : 0;
  const props = p.body.length > 1 ? decodeProps(p.body, 1).props : [];
  return { reason, props };
}

export function sub5(raw: RawClient, filters: Array<[string | Buffer, number]>, id = 1, props: Props = []): Promise<Ack5> {
  raw.write(subscribe5(id, filters, props));
  return nextOfType(raw, PacketType.SUBACK).then(parseSubAck5);
}

export function unsub5(raw: RawClient, filters: Array<string | Buffer>, id = 2, props: Props = []): Promise<Ack5> {
  raw.write(unsubscribe5(id, filters, props));
  return nextOfType(raw, PacketType.UNSUBACK).then(parseSubAck5);
}

/** An ack packet: the short form when the reason is 0 and there are no properties. */
export function ack5(type: number, id: number, reason = 0, props: Props = []): Buffer {
  return hostAck5(type, id, reason, reason === 0 && props.length === 0 ? "short" : "full", props);
}

export function disconnect5(reason = 0, props: Props = []): Buffer {
  return reason === 0 && props.length === 0 ? hostDisconnect5() : hostDisconnect5(reason, props);
}

export const AUTH = 15;

export function auth5(reason: number, props: Props = [], flags = 0): Buffer {
  return packet(AUTH, flags, Buffer.concat([Buffer.from([reason]), encodeProps(props)]));
}

/**
 * After a protocol error on an MQTT 5.0 connection the server closes it, and MAY send a
 * DISCONNECT with a reason code >= 0x80 first ([MQTT-4.13.1-1], [MQTT-4.13.2-1]).
 * Returns that reason code, or null when the server closed without one.
 */
export async function expectClose5(raw: RawClient, ms = 5000, what = "the broker to close the connection"): Promise<number | null> {
  const left = await expectClose(raw, ms, what);
  const d = left.filter((p) => p.type === PacketType.DISCONNECT);
  if (d.length === 0) return null;
  const { reason } = parseDisconnect5(d[0]);
  assert.ok(reason >= 0x80, `[MQTT-4.13.2-1] a server DISCONNECT before closing carries a reason >= 0x80, got 0x${reason.toString(16)}`);
  return reason;
}

export { u16, str, packet };
