// Wire primitives for encoding, mirroring reader.ts. Packets are built in one
// static output buffer and handed to the host with `flush(conn)`; the host copies
// them out, so the buffer is free again as soon as `send` returns.

import { PACKET_MAX, TOPIC_MAX } from "../config";
import { hostSend } from "../host";

/** Big enough for any header plus a full topic, and for the SUBACK of the largest
 *  SUBSCRIBE (at most one return code per 3 bytes of the packet). */
// @ts-ignore: decorator
@inline export const OUT_SIZE: i32 = TOPIC_MAX + 64 > PACKET_MAX / 3 + 16 ? TOPIC_MAX + 64 : PACKET_MAX / 3 + 16;
export const OUT = memory.data(OUT_SIZE, 16);

export let wpos: usize = OUT;

// @ts-ignore: decorator
@inline export function writerStart(): void { wpos = OUT; }

// @ts-ignore: decorator
@inline export function writeU8(v: i32): void { store<u8>(wpos, <u8>v); wpos++; }

// @ts-ignore: decorator
@inline export function writeU16(v: i32): void {
  store<u8>(wpos, <u8>(v >> 8)); store<u8>(wpos + 1, <u8>v); wpos += 2;
}

export function writeVarint(v: i32): void {
  do {
    let b = v & 0x7F;
    v >>>= 7;
    if (v > 0) b |= 0x80;
    store<u8>(wpos++, <u8>b);
  } while (v > 0);
}

export function writeBytes(ptr: usize, len: i32): void {
  memory.copy(wpos, ptr, <usize>len);
  wpos += <usize>len;
}

/** Account for `n` bytes written at `wpos` by someone else (e.g. copied from the store). */
export function skipWritten(n: i32): void { wpos += <usize>n; }

/** A two-byte length and the bytes. */
export function writeBinary(ptr: usize, len: i32): void {
  writeU16(len);
  writeBytes(ptr, len);
}

// @ts-ignore: decorator
@inline export function varintLength(v: i32): i32 {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/** Send what was written since writerStart() to `conn`. */
export function flush(conn: i32): void {
  hostSend(conn, OUT, <u32>(wpos - OUT));
  wpos = OUT;
}
