// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7) and UNSUBACK (§3.11) share one wire
// form in MQTT 3.1.1: a fixed header and a two-byte packet id, so they share a
// decoder and an encoder. PUBREL's first byte carries the flags 0010 [MQTT-3.6.1-1].

import { readerStart, readU16, readError, pos, end, DecodeError } from "./reader";
import { writeU8, writeU16, flush } from "./writer";

export let ackPacketId: i32 = 0;

export function decodeAck(ptr: usize, limit: usize): i32 {
  readerStart(ptr, limit);
  ackPacketId = readU16();
  if (readError != DecodeError.None) return readError;
  if (pos != end) return DecodeError.Malformed;
  if (ackPacketId == 0) return DecodeError.Protocol; // [MQTT-2.3.1-1]
  return 0;
}

export const enum AckByte { PUBACK = 0x40, PUBREC = 0x50, PUBREL = 0x62, PUBCOMP = 0x70, UNSUBACK = 0xB0 }

export function sendAck(conn: i32, firstByte: i32, packetId: i32): void {
  writeU8(firstByte);
  writeU8(2);
  writeU16(packetId);
  flush(conn);
}
