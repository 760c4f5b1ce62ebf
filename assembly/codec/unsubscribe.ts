// UNSUBSCRIBE (§3.10): packet id, [v5 properties], then topic filters to the end
// (at least one [MQTT-3.10.3-2]).

import { readerStart, readU16, readString, readError, fieldPtr, fieldLen, pos, end,
         DecodeError } from "./reader";
import { decodeProperties } from "./properties";
import { PacketType } from "./packet";

export let unsubscribePacketId: i32 = 0;
export let unsubscribeFilterPtr: usize = 0;
export let unsubscribeFilterLen: i32 = 0;

export function unsubscribeBegin(ptr: usize, limit: usize, v5: bool): i32 {
  readerStart(ptr, limit);
  unsubscribePacketId = readU16();
  if (readError != DecodeError.None) return readError;
  if (unsubscribePacketId == 0) return DecodeError.Protocol; // [MQTT-2.3.1-1]
  if (v5 && !decodeProperties(PacketType.UNSUBSCRIBE)) return readError;
  if (pos == end) return DecodeError.Protocol;                // [MQTT-3.10.3-2]
  return 0;
}

export function unsubscribeNext(): bool {
  if (pos >= end) return false;
  if (!readString()) return false;
  unsubscribeFilterPtr = fieldPtr; unsubscribeFilterLen = fieldLen;
  return true;
}

export function unsubscribeError(): i32 { return readError; }
