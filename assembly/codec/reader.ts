// Wire primitives for decoding, over one cursor (`pos`, `end`) in linear memory.
// Every read checks bounds; a failed read sets `readError` and returns 0, so a
// decoder can read a whole sequence of fields and check the error once.

export const enum DecodeError {
  None = 0,
  Malformed = -1,   // truncated, overlong varint, bad length
  Protocol = -2,    // well-formed bytes that break a rule of the protocol
  BadUtf8 = -3,     // [MQTT-1.5.3-1] ill-formed UTF-8, surrogates, or [MQTT-1.5.3-2] U+0000
}

export let pos: usize = 0;
export let end: usize = 0;
export let readError: i32 = DecodeError.None;
/** Address and length of the last string or binary field read. */
export let fieldPtr: usize = 0;
export let fieldLen: i32 = 0;

export function readerStart(ptr: usize, limit: usize): void {
  pos = ptr; end = limit; readError = DecodeError.None;
}

/** Narrow or restore the limit (a property block inside a packet). */
export function setEnd(e: usize): void { end = e; }

export function fail(error: i32): void {
  if (readError == DecodeError.None) readError = error;
}

// @ts-ignore: decorator
@inline export function remaining(): i32 { return <i32>(end - pos); }

export function readU8(): i32 {
  if (pos >= end) { fail(DecodeError.Malformed); return 0; }
  return load<u8>(pos++);
}

export function readU16(): i32 {
  if (pos + 2 > end) { fail(DecodeError.Malformed); pos = end; return 0; }
  const v = (<i32>load<u8>(pos) << 8) | load<u8>(pos + 1);
  pos += 2;
  return v;
}

/** A two-byte length followed by that many bytes; sets fieldPtr/fieldLen. */
export function readBinary(): bool {
  const len = readU16();
  if (readError != DecodeError.None) return false;
  if (pos + <usize>len > end) { fail(DecodeError.Malformed); pos = end; return false; }
  fieldPtr = pos; fieldLen = len;
  pos += len;
  return true;
}

/** A UTF-8 string field, validated per [MQTT-1.5.3-1] and [MQTT-1.5.3-2]. */
export function readString(): bool {
  if (!readBinary()) return false;
  if (!utf8Valid(fieldPtr, fieldLen)) { fail(DecodeError.BadUtf8); return false; }
  return true;
}

/** Eight bytes at a time (SWAR) as two 32-bit words: i64 arithmetic is lowered badly
 *  by wasm2js (the Espruino build), and two i32 operations cost the same in wasm. */
const HIGH_BITS: u32 = 0x80808080;
const LOW_BITS: u32 = 0x01010101;
/** Whether any byte of `w` is zero (the classic bit trick: exact, no false positives). */
// @ts-ignore: decorator
@inline function hasZeroByte(w: u32): bool { return ((w - LOW_BITS) & ~w & HIGH_BITS) != 0; }
/** Whether any byte of `w` equals `b`. */
// @ts-ignore: decorator
@inline export function hasByte(w: u32, b: u8): bool { return hasZeroByte(w ^ (LOW_BITS * <u32>b)); }

/** Well-formed UTF-8 with no surrogates, no overlong forms, no code point above
 *  U+10FFFF, and no U+0000. */
export function utf8Valid(ptr: usize, len: i32): bool {
  const stop = ptr + <usize>len;
  let p = ptr;
  while (p < stop) {
    // Topics and client ids are mostly ASCII: eight plain bytes at a time
    if (p + 8 <= stop) {
      const a = load<u32>(p, 0, 1), b = load<u32>(p, 4, 1); // unaligned: say so (wasm2js)
      if (((a | b) & HIGH_BITS) == 0) {
        if (hasZeroByte(a) || hasZeroByte(b)) return false; // [MQTT-1.5.3-2]
        p += 8;
        continue;
      }
    }
    const b0 = <u32>load<u8>(p);
    if (b0 < 0x80) {
      if (b0 == 0) return false; // [MQTT-1.5.3-2]
      p++;
      continue;
    }
    let need: i32, cp: u32, min: u32;
    if ((b0 & 0xE0) == 0xC0) { need = 1; cp = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { need = 2; cp = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { need = 3; cp = b0 & 0x07; min = 0x10000; }
    else return false;
    if (p + 1 + <usize>need > stop) return false;
    for (let i = 1; i <= need; i++) {
      const b = <u32>load<u8>(p + <usize>i);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF) return false;       // overlong or out of range
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;    // [MQTT-1.5.3-1] surrogates
    p += 1 + <usize>need;
  }
  return true;
}

/** Remaining Length varint at `p` (at most 4 bytes). Returns the value, or -1 when more
 *  bytes are needed, or -2 when malformed: a fifth continuation byte, or more bytes than
 *  the value needs [MQTT-1.5.5-1] (e.g. 0x80 0x00 for 0: a decoder that accepted it would
 *  disagree with one that re-walks the same bytes). `varintSize` receives its length. */
export let varintSize: i32 = 0;
export function decodeVarint(p: usize, limit: usize): i32 {
  let value: i32 = 0;
  let shift: i32 = 0;
  for (let i = 0; i < 4; i++) {
    if (p + <usize>i >= limit) return -1;
    const b = <i32>load<u8>(p + <usize>i);
    value |= (b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      if (i > 0 && b == 0) return -2; // not the minimum number of bytes
      varintSize = i + 1;
      return value;
    }
    shift += 7;
  }
  return -2;
}

export function readU32(): u32 {
  if (pos + 4 > end) { fail(DecodeError.Malformed); pos = end; return 0; }
  const v = (<u32>load<u8>(pos) << 24) | (<u32>load<u8>(pos + 1) << 16) |
            (<u32>load<u8>(pos + 2) << 8) | <u32>load<u8>(pos + 3);
  pos += 4;
  return v;
}

/** A Variable Byte Integer field (properties, MQTT 5 §1.5.5). */
export function readVarint(): i32 {
  const v = decodeVarint(pos, end);
  if (v < 0) { fail(DecodeError.Malformed); pos = end; return 0; }
  pos += <usize>varintSize;
  return v;
}
