// Wire primitives for encoding, mirroring reader.ts. Packets are built in one
// static output buffer for the connection chosen by `writerStart(conn)` and handed
// to the host with `flush()`; the host copies them out, so the buffer is free again
// as soon as `send` returns. Large pieces (payloads) bypass the buffer: `emit` sends
// them straight from where they are (the input window or the message store).

import { statAdd, Stat } from "../stats";
import { PACKET_MAX, WEBSOCKETS } from "../config";
import { transportSend } from "../ws/output";

/** Headers, topics up to a few KiB, acknowledgements; anything bigger is emitted
 *  directly, and a long SUBACK is flushed in pieces. */
// @ts-ignore: decorator
@inline export const OUT_SIZE: i32 = PACKET_MAX + 64 < 16384 ? PACKET_MAX + 64 : 16384;
// @ts-ignore: decorator
@inline const OUT_ROOM: i32 = WEBSOCKETS ? 16 : 0;
/** The buffer, with room before it for a WebSocket frame header (ws/output.ts). */
const OUT_AREA = memory.data(OUT_SIZE + OUT_ROOM, 16);
export const OUT = OUT_AREA + <usize>OUT_ROOM;
/** Pieces up to this size are copied into the buffer rather than sent on their own. */
// @ts-ignore: decorator
@inline const COPY_LIMIT: i32 = 1024;

export let wpos: usize = OUT;
let wconn: i32 = -1;
/** Host sends since writerStart(): 1 means the packet went out whole, as one `send`. */
export let sendsSinceStart: i32 = 0;
/** Packets started so far: while it has not moved, the buffer still holds the last one. */
export let packetsStarted: u32 = 0;

export function writerStart(conn: i32): void { wpos = OUT; wconn = conn; sendsSinceStart = 0; packetsStarted++; statAdd(Stat.PacketsSent); }

// @ts-ignore: decorator
@inline export function writeU8(v: i32): void { store<u8>(wpos, <u8>v); wpos++; }

// @ts-ignore: decorator
@inline export function writeU16(v: i32): void {
  store<u8>(wpos, <u8>(v >> 8)); store<u8>(wpos + 1, <u8>v); wpos += 2;
}

export function writeU32(v: u32): void {
  store<u8>(wpos, <u8>(v >> 24)); store<u8>(wpos + 1, <u8>(v >> 16));
  store<u8>(wpos + 2, <u8>(v >> 8)); store<u8>(wpos + 3, <u8>v);
  wpos += 4;
}

export function writeVarint(v: i32): void {
  do {
    let b = v & 0x7F;
    v >>>= 7;
    if (v > 0) b |= 0x80;
    store<u8>(wpos++, <u8>b);
  } while (v > 0);
}

function writeBytes(ptr: usize, len: i32): void {
  memory.copy(wpos, ptr, <usize>len);
  wpos += <usize>len;
}

/** A two-byte length and the bytes. */
export function writeBinary(ptr: usize, len: i32): void {
  writeU16(len);
  writeBytes(ptr, len);
}

// @ts-ignore: decorator
@inline export function varintLength(v: i32): i32 {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/** Room for `n` more bytes in the buffer, flushing what is there if needed. */
export function ensure(n: i32): void {
  if (wpos + <usize>n > OUT + <usize>OUT_SIZE) flush();
}

/** Append bytes that live elsewhere in memory: small ones are copied, big ones are
 *  sent in place after flushing what precedes them. */
export function emit(ptr: usize, len: i32): void {
  if (len <= 0) return;
  if (len <= COPY_LIMIT) {
    ensure(len);
    writeBytes(ptr, len);
    return;
  }
  flush();
  transportSend(wconn, ptr, <u32>len, false);
  sendsSinceStart++;
}

/** Send what was written since writerStart() or the last flush. */
export function flush(): void {
  if (wpos > OUT) { transportSend(wconn, OUT, <u32>(wpos - OUT), true); sendsSinceStart++; }
  wpos = OUT;
}

/** Move the write position (for packets built back to front). */
export function setWpos(p: usize): void { wpos = p; }

/** Send `len` bytes at `ptr` (inside the buffer) to `conn` and reset the buffer. */
export function sendRaw(conn: i32, ptr: usize, len: i32): void {
  transportSend(conn, ptr, <u32>len, true);
  wpos = OUT;
}

/** Bytes were sent around the writer (a WebSocket control frame): the last packet is no
 *  longer the host's last `send`, so `sendAgain` must not repeat it. */
export function writerForget(): void { packetsStarted++; }
