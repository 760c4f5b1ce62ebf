// PUBLISH (§3.3): topic name, packet id when QoS > 0, payload to the end.
//
//  0x3? (DUP|QoS|RETAIN) │ remaining │ topic (u16 + bytes) │ [packet id] │ payload

import { readerStart, readU16, readString, readError, fieldPtr, fieldLen, pos, end,
         DecodeError } from "./reader";
import { writeU8, writeU16, writeVarint, varintLength } from "./writer";

export let publishQos: i32 = 0;
export let publishDup: bool = false;
export let publishRetain: bool = false;
export let publishTopicPtr: usize = 0;
export let publishTopicLen: i32 = 0;
export let publishPacketId: i32 = 0;
export let publishPayloadPtr: usize = 0;
export let publishPayloadLen: i32 = 0;

/** Decode in place; returns 0 or a DecodeError. Topic-name rules are the handler's. */
export function decodePublish(flags: i32, ptr: usize, limit: usize): i32 {
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
  publishPayloadPtr = pos;
  publishPayloadLen = <i32>(end - pos);
  return 0;
}

/** Write a PUBLISH fixed header, the topic length and (for QoS > 0) nothing else yet:
 *  the caller writes the topic bytes, then `writePublishPacketId`. */
export function writePublishHeader(qos: i32, dup: bool, retain: bool, topicLen: i32, payloadLen: i32): void {
  const remaining = 2 + topicLen + (qos > 0 ? 2 : 0) + payloadLen;
  writeU8(0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0));
  writeVarint(remaining);
  writeU16(topicLen);
}

/** Size of the whole packet, for limits. */
export function publishPacketSize(qos: i32, topicLen: i32, payloadLen: i32): i32 {
  const remaining = 2 + topicLen + (qos > 0 ? 2 : 0) + payloadLen;
  return 1 + varintLength(remaining) + remaining;
}

export { writeU16 as writePublishPacketId };
