// SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8): packet id, [v5 properties], then (topic filter,
// options) pairs to the end. Decoded as an iterator so the handler can validate
// every pair before acting on any.

import { readerStart, readU8, readU16, readString, readError, fieldPtr, fieldLen, pos, end,
         DecodeError, fail } from "./reader";
import { decodeProperties, hasProp, Prop, subscriptionId } from "./properties";
import { PacketType } from "./packet";

export let subscribePacketId: i32 = 0;
export let subscribeId: i32 = 0;        // MQTT 5 Subscription Identifier, 0 = none
export let filterPtr: usize = 0;
export let filterLen: i32 = 0;
export let requestedQos: i32 = 0;
export let subscribeOptions: i32 = 0;   // the options byte (MQTT 5: No Local, RAP, Retain Handling)
export let retainHandling: i32 = 0;
let v5: bool = false;

export function subscribeBegin(ptr: usize, limit: usize, isV5: bool): i32 {
  v5 = isV5;
  readerStart(ptr, limit);
  subscribePacketId = readU16();
  if (readError != DecodeError.None) return readError;
  if (subscribePacketId == 0) return DecodeError.Protocol; // [MQTT-2.3.1-1]
  subscribeId = 0;
  if (v5) {
    if (!decodeProperties(PacketType.SUBSCRIBE)) return readError;
    if (hasProp(Prop.SubscriptionId)) subscribeId = subscriptionId;
  }
  if (pos == end) return DecodeError.Protocol;              // [MQTT-3.8.3-3] at least one pair
  return 0;
}

/** The next pair; false at the end or on error (check `subscribeError()`). */
export function subscribeNext(): bool {
  if (pos >= end) return false;
  if (!readString()) return false;
  filterPtr = fieldPtr; filterLen = fieldLen;
  const options = readU8();
  if (readError != DecodeError.None) return false;
  if (v5) {
    // [MQTT-3.8.3-5] reserved bits 7-6 zero; QoS 3 and Retain Handling 3 are errors
    if ((options & 0xC0) != 0 || (options & 3) == 3 || (options >> 4 & 3) == 3) {
      fail(DecodeError.Protocol); return false;
    }
  } else if ((options & 0xFC) != 0 || (options & 3) == 3) {
    fail(DecodeError.Protocol); return false;                // [MQTT-3.8.3-4]
  }
  requestedQos = options & 3;
  subscribeOptions = v5 ? options & 0x0C : 0;
  retainHandling = v5 ? (options >> 4) & 3 : 0;
  return true;
}

export function subscribeError(): i32 { return readError; }
