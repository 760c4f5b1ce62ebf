// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7) share one wire form: a packet id and,
// in MQTT 5, a reason code and properties, both omitted when the code is 0 and there
// are no properties (so both forms are accepted). PUBREL's first byte carries the
// flags 0010 [MQTT-3.6.1-1]. UNSUBACK of 3.1.1 has the same two-byte form.

import { readerStart, readU8, readU16, readError, pos, end, DecodeError } from "./reader";
import { writerStart, writeU8, writeU16, flush } from "./writer";
import { decodeProperties } from "./properties";

export let ackPacketId: i32 = 0;
export let ackReason: i32 = 0;

export function decodeAck(type: i32, ptr: usize, limit: usize, v5: bool): i32 {
  readerStart(ptr, limit);
  ackPacketId = readU16();
  ackReason = 0;
  if (readError != DecodeError.None) return readError;
  if (ackPacketId == 0) return DecodeError.Protocol; // [MQTT-2.3.1-1]
  if (v5) {
    if (pos < end) ackReason = readU8();
    if (pos < end && !decodeProperties(type)) return readError;
  }
  if (pos != end) return DecodeError.Malformed;
  return 0;
}

export const enum AckByte { PUBACK = 0x40, PUBREC = 0x50, PUBREL = 0x62, PUBCOMP = 0x70, UNSUBACK = 0xB0 }

/** An acknowledgement; `reason` is sent only when non-zero (MQTT 5 connections only). */
export function sendAck(conn: i32, firstByte: i32, packetId: i32, reason: i32 = 0): void {
  writerStart(conn);
  writeU8(firstByte);
  if (reason == 0) {
    writeU8(2);
    writeU16(packetId);
  } else {
    writeU8(3);
    writeU16(packetId);
    writeU8(reason);
  }
  flush();
}
