// MQTT 5 properties (§2.2.2): a Variable Byte Integer length, then (identifier,
// value) pairs. One decoder serves every packet: a table says which packet may
// carry which property and of what type; a repeated property where only one is
// allowed, or one in the wrong packet, is a Protocol Error [MQTT-2.2.2-2].

import { pos, end, fail, readU8, readU16, readU32, readVarint, readString, readBinary, readError,
         fieldPtr, fieldLen, DecodeError, decodeVarint, varintSize, setEnd } from "./reader";

export const enum Prop {
  PayloadFormat = 0x01, MessageExpiry = 0x02, ContentType = 0x03, ResponseTopic = 0x08,
  CorrelationData = 0x09, SubscriptionId = 0x0B, SessionExpiry = 0x11, AssignedClientId = 0x12,
  ServerKeepAlive = 0x13, AuthMethod = 0x15, AuthData = 0x16, RequestProblemInfo = 0x17,
  WillDelay = 0x18, RequestResponseInfo = 0x19, ResponseInfo = 0x1A, ServerReference = 0x1C,
  ReasonString = 0x1F, ReceiveMaximum = 0x21, TopicAliasMaximum = 0x22, TopicAlias = 0x23,
  MaximumQos = 0x24, RetainAvailable = 0x25, UserProperty = 0x26, MaximumPacketSize = 0x27,
  WildcardAvailable = 0x28, SubscriptionIdAvailable = 0x29, SharedAvailable = 0x2A,
}

/** The packet a property block belongs to: the packet type, or WILL for the will
 *  properties inside CONNECT (type 0 is otherwise unused). */
export const WILL: i32 = 0;

const enum Kind { None = 0, Byte = 1, U16 = 2, U32 = 4, Varint = 5, Utf8 = 6, Binary = 7, Pair = 8 }

// Per identifier: low byte the kind, high 16 bits the packets allowed (bit = type).
//   W=1<<0 CONNECT=1<<1 CONNACK=1<<2 PUBLISH=1<<3 PUBACK..PUBCOMP=1<<4..7
//   SUBSCRIBE=1<<8 SUBACK=1<<9 UNSUBSCRIBE=1<<10 UNSUBACK=1<<11 DISCONNECT=1<<14 AUTH=1<<15
const W = 1, CN = 2, CA = 4, PB = 8, ACKS = 0xF0, SB = 0x100, SA = 0x200, UA = 0x800,
      DC = 0x4000, AU = 0x8000;
const PROP_TABLE = memory.data<u32>([
  0,                                       // 0x00
  (<u32>(W | PB) << 16) | Kind.Byte,       // 0x01 payload format
  (<u32>(W | PB) << 16) | Kind.U32,        // 0x02 message expiry
  (<u32>(W | PB) << 16) | Kind.Utf8,       // 0x03 content type
  0, 0, 0, 0,                              // 0x04-0x07
  (<u32>(W | PB) << 16) | Kind.Utf8,       // 0x08 response topic
  (<u32>(W | PB) << 16) | Kind.Binary,     // 0x09 correlation data
  0,                                       // 0x0A
  (<u32>(PB | SB) << 16) | Kind.Varint,    // 0x0B subscription identifier
  0, 0, 0, 0, 0,                           // 0x0C-0x10
  (<u32>(CN | CA | DC) << 16) | Kind.U32,  // 0x11 session expiry
  (<u32>CA << 16) | Kind.Utf8,             // 0x12 assigned client id
  (<u32>CA << 16) | Kind.U16,              // 0x13 server keep alive
  0,                                       // 0x14
  (<u32>(CN | CA | AU) << 16) | Kind.Utf8, // 0x15 authentication method
  (<u32>(CN | CA | AU) << 16) | Kind.Binary, // 0x16 authentication data
  (<u32>CN << 16) | Kind.Byte,             // 0x17 request problem information
  (<u32>W << 16) | Kind.U32,               // 0x18 will delay
  (<u32>CN << 16) | Kind.Byte,             // 0x19 request response information
  (<u32>CA << 16) | Kind.Utf8,             // 0x1A response information
  0,                                       // 0x1B
  (<u32>(CA | DC) << 16) | Kind.Utf8,      // 0x1C server reference
  0, 0,                                    // 0x1D-0x1E
  (<u32>(CA | ACKS | SA | UA | DC | AU) << 16) | Kind.Utf8, // 0x1F reason string
  0,                                       // 0x20
  (<u32>(CN | CA) << 16) | Kind.U16,       // 0x21 receive maximum
  (<u32>(CN | CA) << 16) | Kind.U16,       // 0x22 topic alias maximum
  (<u32>PB << 16) | Kind.U16,              // 0x23 topic alias
  (<u32>CA << 16) | Kind.Byte,             // 0x24 maximum QoS
  (<u32>CA << 16) | Kind.Byte,             // 0x25 retain available
  (<u32>0xFFFF << 16) | Kind.Pair,         // 0x26 user property (anywhere, repeatable)
  (<u32>(CN | CA) << 16) | Kind.U32,       // 0x27 maximum packet size
  (<u32>CA << 16) | Kind.Byte,             // 0x28 wildcard subscription available
  (<u32>CA << 16) | Kind.Byte,             // 0x29 subscription identifiers available
  (<u32>CA << 16) | Kind.Byte,             // 0x2A shared subscription available
]);
const PROP_MAX: i32 = 0x2A;

// What the last decodeProperties() found. `has` is a bit set of identifiers seen.
export let has: u64 = 0;
export let propsStart: usize = 0;   // first byte after the length
export let propsEnd: usize = 0;
export let sessionExpiry: u32 = 0;
export let receiveMaximum: i32 = 0;
export let maximumPacketSize: u32 = 0;
export let topicAliasMaximum: i32 = 0;
export let topicAlias: i32 = 0;
export let requestProblemInfo: i32 = 1;
export let willDelay: u32 = 0;
export let messageExpiry: u32 = 0;
export let subscriptionId: i32 = 0;
export let serverKeepAlive: i32 = -1; // CONNACK (a bridge's): -1 when absent
export let maximumQos: i32 = 2;       // CONNACK (a bridge's): 2 when absent
export let retainAvailable: i32 = 1;  // CONNACK (a bridge's): 1 when absent

// @ts-ignore: decorator
@inline export function hasProp(id: i32): bool { return (has & (<u64>1 << <u64>id)) != 0; }

/** Read a property block at the cursor for packet `context`; false on error
 *  (readError says which). The cursor ends after the block. */
export function decodeProperties(context: i32): bool {
  has = 0;
  requestProblemInfo = 1;
  serverKeepAlive = -1;
  maximumQos = 2;
  retainAvailable = 1;
  const len = readVarint();
  if (readError != DecodeError.None) return false;
  if (pos + <usize>len > end) { fail(DecodeError.Malformed); return false; }
  propsStart = pos;
  propsEnd = pos + <usize>len;
  const outerEnd = end;
  // bound every read by the block
  setEnd(propsEnd);
  let ok = true;
  while (pos < propsEnd) {
    const id = readVarint();
    if (readError != DecodeError.None) { ok = false; break; }
    // every identifier fits one byte; compactForwardable relies on it
    if (varintSize != 1) { fail(DecodeError.Malformed); ok = false; break; }
    const info = id >= 1 && id <= PROP_MAX ? load<u32>(PROP_TABLE + (<usize>id << 2)) : 0;
    // unknown identifier, or not allowed in this packet: [MQTT-2.2.2-2]
    if (info == 0 || (info >> 16 & (1 << context)) == 0) { fail(DecodeError.Protocol); ok = false; break; }
    const bit = <u64>1 << <u64>id;
    const repeatable = id == Prop.UserProperty || (id == Prop.SubscriptionId && context == 3);
    if ((has & bit) != 0 && !repeatable) { fail(DecodeError.Protocol); ok = false; break; }
    has |= bit;
    const kind = <i32>(info & 0xFF);
    let value: u32 = 0;
    switch (kind) {
      case Kind.Byte: value = <u32>readU8(); break;
      case Kind.U16: value = <u32>readU16(); break;
      case Kind.U32: value = readU32(); break;
      case Kind.Varint: value = <u32>readVarint(); break;
      case Kind.Utf8: readString(); break;
      case Kind.Binary: readBinary(); break;
      case Kind.Pair: if (readString()) readString(); break;
    }
    if (readError != DecodeError.None) { ok = false; break; }
    switch (id) {
      case Prop.SessionExpiry: sessionExpiry = value; break;
      case Prop.ReceiveMaximum:
        if (value == 0) { fail(DecodeError.Protocol); ok = false; }   // 0 is a Protocol Error (§3.1.2.11.3)
        receiveMaximum = <i32>value; break;
      case Prop.MaximumPacketSize:
        if (value == 0) { fail(DecodeError.Protocol); ok = false; }
        maximumPacketSize = value; break;
      case Prop.TopicAliasMaximum: topicAliasMaximum = <i32>value; break;
      case Prop.TopicAlias: topicAlias = <i32>value; break;
      case Prop.RequestProblemInfo:
        if (value > 1) { fail(DecodeError.Protocol); ok = false; }
        requestProblemInfo = <i32>value; break;
      case Prop.RequestResponseInfo: // Midge sends no Response Information: only checked
        if (value > 1) { fail(DecodeError.Protocol); ok = false; }
        break;
      case Prop.WillDelay: willDelay = value; break;
      case Prop.ServerKeepAlive: serverKeepAlive = <i32>value; break;
      case Prop.MaximumQos: maximumQos = <i32>value; break;
      case Prop.RetainAvailable: retainAvailable = <i32>value; break;
      case Prop.MessageExpiry: messageExpiry = value; break;
      case Prop.PayloadFormat: // forwarded as it came: only checked
        if (value > 1) { fail(DecodeError.Protocol); ok = false; }
        break;
      case Prop.SubscriptionId:
        if (value == 0) { fail(DecodeError.Protocol); ok = false; }  // 1..268,435,455
        subscriptionId = <i32>value; break;
      case Prop.ResponseTopic:
        // [MQTT-3.3.2-14] a Topic Name: no wildcards
        if (!responseTopicValid(fieldPtr, fieldLen)) { fail(DecodeError.Protocol); ok = false; }
        break;
    }
    if (!ok) break;
  }
  setEnd(outerEnd);
  if (!ok) { pos = propsEnd; return false; }
  return true;
}

function responseTopicValid(ptr: usize, len: i32): bool {
  if (len < 1) return false;
  for (let i = 0; i < len; i++) {
    const c = load<u8>(ptr + <usize>i);
    if (c == 0x2B || c == 0x23) return false;
  }
  return true;
}


/** Keep, in place and in order, only the properties that travel with an application
 *  message to its subscribers [MQTT-3.3.2-17..20] [MQTT-3.3.2-4]: payload format,
 *  content type, response topic, correlation data and user properties. The message
 *  expiry, topic alias and subscription identifiers are re-created per delivery.
 *  Returns the new length of the block at propsStart. */
export function compactForwardable(start: usize, stop: usize): i32 {
  let src = start;
  let dst = start;
  while (src < stop) {
    const id = <i32>load<u8>(src); // every identifier a client may send fits one byte
    const info = load<u32>(PROP_TABLE + (<usize>id << 2));
    const kind = <i32>(info & 0xFF);
    let size: i32 = 1;
    switch (kind) {
      case Kind.Byte: size += 1; break;
      case Kind.U16: size += 2; break;
      case Kind.U32: size += 4; break;
      case Kind.Varint: { decodeVarint(src + 1, stop); size += varintSize; break; }
      case Kind.Utf8: case Kind.Binary:
        size += 2 + ((<i32>load<u8>(src + 1) << 8) | load<u8>(src + 2)); break;
      case Kind.Pair: {
        const a = (<i32>load<u8>(src + 1) << 8) | load<u8>(src + 2);
        const b = (<i32>load<u8>(src + 3 + <usize>a) << 8) | load<u8>(src + 4 + <usize>a);
        size += 4 + a + b; break;
      }
    }
    const keep = id == Prop.PayloadFormat || id == Prop.ContentType || id == Prop.ResponseTopic ||
                 id == Prop.CorrelationData || id == Prop.UserProperty;
    if (keep) {
      if (dst != src) memory.copy(dst, src, <usize>size);
      dst += <usize>size;
    }
    src += <usize>size;
  }
  return <i32>(dst - start);
}
