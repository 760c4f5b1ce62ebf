// SUBSCRIBE (§3.8): packet id, then (topic filter, requested QoS) pairs to the end.
// Decoded as an iterator so the handler can validate every pair before acting on any.

import { readerStart, readU8, readU16, readString, readError, fieldPtr, fieldLen, pos, end,
         DecodeError, fail } from "./reader";

export let subscribePacketId: i32 = 0;
export let filterPtr: usize = 0;
export let filterLen: i32 = 0;
export let requestedQos: i32 = 0;

export function subscribeBegin(ptr: usize, limit: usize): i32 {
  readerStart(ptr, limit);
  subscribePacketId = readU16();
  if (readError != DecodeError.None) return readError;
  if (subscribePacketId == 0) return DecodeError.Protocol; // [MQTT-2.3.1-1]
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
  // [MQTT-3.8.3-4] reserved bits 7-2 zero and QoS at most 2
  if ((options & 0xFC) != 0 || (options & 3) == 3) { fail(DecodeError.Protocol); return false; }
  requestedQos = options & 3;
  return true;
}

export function subscribeError(): i32 { return readError; }
