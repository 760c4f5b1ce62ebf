// PUBLISH (3.1.1 §3.3, 5.0 §3.3): topic name, packet id when QoS > 0, MQTT 5
// properties, payload to the end.
//
//  0x3? (DUP|QoS|RETAIN) │ remaining │ topic (u16 + bytes) │ [packet id] │ [v5 properties] │ payload

import { readerStart, readU16, readString, readError, fieldPtr, fieldLen, pos, end,
         DecodeError } from "./reader";
import { writeU8, writeU16, writeU32, writeVarint, varintLength, ensure } from "./writer";
import { decodeProperties, compactForwardable, propsStart, propsEnd, hasProp, Prop,
         topicAlias, messageExpiry } from "./properties";
import { PacketType } from "./packet";

export let publishQos: i32 = 0;
export let publishDup: bool = false;
export let publishRetain: bool = false;
export let publishTopicPtr: usize = 0;
export let publishTopicLen: i32 = 0;
export let publishPacketId: i32 = 0;
export let publishPayloadPtr: usize = 0;
export let publishPayloadLen: i32 = 0;
// MQTT 5
export let publishAlias: i32 = -1;         // -1: none
export let publishHasExpiry: bool = false;
export let publishExpiry: u32 = 0;
export let publishPropsPtr: usize = 0;     // the properties that travel with the message
export let publishPropsLen: i32 = 0;

/** Decode in place; returns 0 or a DecodeError. Topic-name and alias rules are the
 *  handler's. The forwardable properties are compacted in place. */
export function decodePublish(flags: i32, ptr: usize, limit: usize, v5: bool): i32 {
  publishQos = (flags >> 1) & 3;
  publishDup = (flags & 8) != 0;
  publishRetain = (flags & 1) != 0;
  if (publishQos == 3) return DecodeError.Malformed;                 // [MQTT-3.3.1-4]
  if (publishQos == 0 && publishDup) return DecodeError.Protocol;     // [MQTT-3.3.1-2]
  readerStart(ptr, limit);
  if (!readString()) return readError;                                // [MQTT-3.3.2-1]
  publishTopicPtr = fieldPtr; publishTopicLen = fieldLen;
  publishPacketId = 0;
  if (publishQos > 0) {
    publishPacketId = readU16();
    if (readError != DecodeError.None) return readError;
    if (publishPacketId == 0) return DecodeError.Protocol;             // [MQTT-2.3.1-1]
  }
  publishAlias = -1; publishHasExpiry = false; publishExpiry = 0; publishPropsLen = 0;
  if (v5) {
    if (!decodeProperties(PacketType.PUBLISH)) return readError;
    // [MQTT-3.3.4-6] a client must not send a Subscription Identifier
    if (hasProp(Prop.SubscriptionId)) return DecodeError.Protocol;
    if (hasProp(Prop.TopicAlias)) publishAlias = topicAlias;
    publishHasExpiry = hasProp(Prop.MessageExpiry);
    publishExpiry = messageExpiry;
    publishPropsPtr = propsStart;
    publishPropsLen = compactForwardable(propsStart, propsEnd);
  }
  publishPayloadPtr = pos;
  publishPayloadLen = <i32>(end - pos);
  return 0;
}

/** Length of the MQTT 5 property block of an outgoing PUBLISH. */
export function publishPropsLength(expiry: i64, alias: i32, ids: usize, idCount: i32, forwardLen: i32): i32 {
  let n = forwardLen;
  if (expiry >= 0) n += 5;
  if (alias > 0) n += 3;
  for (let k = 0; k < idCount; k++) n += 1 + varintLength(load<i32>(ids + (<usize>k << 2)));
  return n;
}

/** Size of the whole packet. `propsLen` < 0: no property block (MQTT 3). */
export function publishPacketSize(qos: i32, topicLen: i32, propsLen: i32, payloadLen: i32): i32 {
  let remaining = 2 + topicLen + (qos > 0 ? 2 : 0) + payloadLen;
  if (propsLen >= 0) remaining += varintLength(propsLen) + propsLen;
  return 1 + varintLength(remaining) + remaining;
}

/** Fixed header and topic length; the caller then writes the topic bytes and calls
 *  `writePublishMiddle`, then emits the forwardable properties and the payload. */
export function writePublishHeader(qos: i32, dup: bool, retain: bool, topicLen: i32, propsLen: i32, payloadLen: i32): void {
  let remaining = 2 + topicLen + (qos > 0 ? 2 : 0) + payloadLen;
  if (propsLen >= 0) remaining += varintLength(propsLen) + propsLen;
  writeU8(0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0));
  writeVarint(remaining);
  writeU16(topicLen);
}

/** Packet id, then (MQTT 5) the property length and the per-delivery properties:
 *  the remaining Message Expiry, the Topic Alias and the Subscription Identifiers. */
export function writePublishMiddle(qos: i32, packetId: i32, propsLen: i32, expiry: i64, alias: i32,
                                   ids: usize, idCount: i32): void {
  if (qos > 0) writeU16(packetId);
  if (propsLen < 0) return;
  writeVarint(propsLen);
  if (expiry >= 0) { writeU8(Prop.MessageExpiry); writeU32(<u32>expiry); }
  if (alias > 0) { writeU8(Prop.TopicAlias); writeU16(alias); }
  for (let k = 0; k < idCount; k++) {
    ensure(6); // a session may match thousands of subscriptions with identifiers
    writeU8(Prop.SubscriptionId);
    writeVarint(load<i32>(ids + (<usize>k << 2)));
  }
}
