// Spec helpers: build MQTT packets in a static buffer and feed them to the core as
// the host would; read back what the core sent through the `spec.takeSent` import
// (as-pect.config.js). Nothing here allocates, so it can run inside a heap probe.

import { INPUT, brokerFeed, brokerOpen } from "../../assembly/broker";

// @ts-ignore: decorator
@external("spec", "takeSent") declare function specTakeSent(conn: i32, ptr: usize, cap: i32): i32;
// @ts-ignore: decorator
@external("spec", "closedWith") declare function specClosedWith(conn: i32): i32;

const BODY = memory.data(70000, 8);
let bodyLen: i32 = 0;
const SENT = memory.data(70000, 8);
export let sentLen: i32 = 0;
export let now: f64 = 1000;

export function advance(ms: f64): void { now += ms; }

export function begin(): void { bodyLen = 0; }
export function byte(v: i32): void { store<u8>(BODY + <usize>bodyLen, <u8>v); bodyLen++; }
export function word(v: i32): void { byte(v >> 8); byte(v & 255); }
export function ascii(s: string): void { for (let i = 0; i < s.length; i++) byte(s.charCodeAt(i)); }
export function str(s: string): void { word(s.length); ascii(s); }
export function bytes(ptr: usize, len: i32): void { for (let i = 0; i < len; i++) byte(load<u8>(ptr + <usize>i)); }

/** Write the built body behind a fixed header into the input window; returns its size. */
export function frame(first: i32): i32 {
  let p = INPUT;
  store<u8>(p++, <u8>first);
  let l = bodyLen;
  do { let d = l & 127; l >>= 7; if (l > 0) d |= 128; store<u8>(p++, <u8>d); } while (l > 0);
  memory.copy(p, BODY, <usize>bodyLen);
  return <i32>(p - INPUT) + bodyLen;
}

/** Frame and feed the built body; returns bytes consumed. */
export function send(conn: i32, first: i32): u32 {
  const n = frame(first);
  return brokerFeed(conn, <u32>n, now);
}

/** Everything the core sent to `conn` since the last take. */
export function take(conn: i32): i32 { sentLen = specTakeSent(conn, SENT, 70000); return sentLen; }
export function sent(i: i32): i32 { return i < sentLen ? <i32>load<u8>(SENT + <usize>i) : -1; }
/** The CloseReason the core asked for on `conn`, or -1. */
export function closedWith(conn: i32): i32 { return specClosedWith(conn); }

export function connect(id: string, clean: bool = true, keepAlive: i32 = 60): void {
  begin(); str("MQTT"); byte(4); byte(clean ? 2 : 0); word(keepAlive); str(id);
}

/** Open a connection and complete CONNECT; returns the connection id. */
export function connected(id: string, clean: bool = true): i32 {
  const c = brokerOpen(0, now);
  connect(id, clean);
  send(c, 0x10);
  take(c);
  return c;
}

export function publish(conn: i32, topic: string, payload: string, qos: i32, retain: bool = false, packetId: i32 = 1): void {
  begin(); str(topic); if (qos > 0) word(packetId); ascii(payload);
  send(conn, 0x30 | (qos << 1) | (retain ? 1 : 0));
}

export function subscribe1(conn: i32, packetId: i32, filter: string, qos: i32): void {
  begin(); word(packetId); str(filter); byte(qos);
  send(conn, 0x82);
}

export function ack(conn: i32, first: i32, packetId: i32): void {
  begin(); word(packetId); send(conn, first);
}

export function bodyPtr(): usize { return BODY; }
export function bodyEnd(): usize { return BODY + <usize>bodyLen; }
export function bodyLength(): i32 { return bodyLen; }
/** `s` alone in the body: its address (bodyLength() is its length). */
export function text(s: string): usize { begin(); ascii(s); return BODY; }

const PENDING = memory.data(70000, 8);
export let connackFlags: i32 = -1;

/** Acknowledge everything the core sent to `conn`, as a well-behaved client would
 *  (PUBACK for QoS 1, PUBREC for QoS 2, PUBCOMP for PUBREL), until it sends nothing
 *  more. Returns how many PUBLISH packets were received. */
export function ackAll(conn: i32): i32 {
  let publishes = 0;
  for (let round = 0; round < 100; round++) {
    const n = take(conn);
    if (n <= 0) break;
    memory.copy(PENDING, SENT, <usize>n);
    let p = 0;
    while (p < n) {
      const first = <i32>load<u8>(PENDING + <usize>p);
      let len = 0, shift = 0, k = p + 1;
      while (true) { const b = <i32>load<u8>(PENDING + <usize>k); k++; len |= (b & 127) << shift; shift += 7; if ((b & 128) == 0) break; }
      const type = first >> 4;
      if (type == 3) {
        publishes++;
        const qos = (first >> 1) & 3;
        if (qos > 0) {
          const tl = (<i32>load<u8>(PENDING + <usize>k) << 8) | load<u8>(PENDING + <usize>k + 1);
          const pid = (<i32>load<u8>(PENDING + <usize>(k + 2 + tl)) << 8) | load<u8>(PENDING + <usize>(k + 3 + tl));
          ack(conn, qos == 1 ? 0x40 : 0x50, pid);
        }
      } else if (type == 2) {
        connackFlags = <i32>load<u8>(PENDING + <usize>k);
      } else if (type == 6) {
        const pid = (<i32>load<u8>(PENDING + <usize>k) << 8) | load<u8>(PENDING + <usize>k + 1);
        ack(conn, 0x70, pid);
      }
      p = k + len;
    }
  }
  return publishes;
}
