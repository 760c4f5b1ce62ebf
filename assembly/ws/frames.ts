// RFC 6455 framing (§5.2): the header of a client frame read over (ptr, stop), the header
// of a server frame written, and masking. Every check of §5 on a single frame is here;
// the order of frames (continuations, control frames between them) is ws/input.ts's.
//
//    0               1               2               3
//   ┌─┬─┬─┬─┬───────┬─┬─────────────┬───────────────────────────────┐
//   │F│R│R│R│opcode │M│ length 7    │ length 16 (126) or 64 (127)   │
//   │I│S│S│S│  (4)  │A│             │                               │
//   │N│1│2│3│       │S│             ├───────────────────────────────┤
//   ├─┴─┴─┴─┴───────┴K┴─────────────┤ masking key (4, clients only) │
//   │ payload ...                                                   │
//   └───────────────────────────────────────────────────────────────┘

import { utf8Valid } from "../codec/reader";

export const enum Opcode { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 }

/** Close codes (§7.4.1) the server sends. */
export const enum CloseCode {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  Unsupported = 1003,     // a text frame: MQTT travels in binary frames [MQTT-6.0.0-1]
  InvalidPayload = 1007,  // a close reason that is not UTF-8
  TooBig = 1009,
}

/** Longest payload of a control frame (§5.5). */
// @ts-ignore: decorator
@inline export const CONTROL_MAX: i32 = 125;
/** Longest server frame header: 2 bytes and a 64-bit length (no mask). */
// @ts-ignore: decorator
@inline export const SERVER_HEADER_MAX: i32 = 10;

// The header `decodeFrameHeader` read last.
export let frameOpcode: i32 = 0;
export let frameFin: bool = false;
export let frameLength: u64 = 0;
export let frameMask: u32 = 0;

/** The client frame header at `p`: its size (2 to 14 bytes), 0 when incomplete, or
 *  -code (a CloseCode) when the header breaks RFC 6455. */
export function decodeFrameHeader(p: usize, stop: usize): i32 {
  if (p + 2 > stop) return 0;
  const b0 = <i32>load<u8>(p), b1 = <i32>load<u8>(p + 1);
  if ((b0 & 0x70) != 0) return -CloseCode.ProtocolError;     // §5.2 RSV bits without an extension
  const op = b0 & 15;
  if ((op > Opcode.Binary && op < Opcode.Close) || op > Opcode.Pong) return -CloseCode.ProtocolError; // §5.2 reserved opcodes
  if ((b1 & 0x80) == 0) return -CloseCode.ProtocolError;     // §5.1 a client MUST mask every frame
  const fin = (b0 & 0x80) != 0;
  let len: u64 = <u64>(b1 & 0x7F);
  let size = 6;
  if (len == 126) size = 8;
  else if (len == 127) size = 14;
  if ((op & 8) != 0 && (!fin || len > <u64>CONTROL_MAX)) return -CloseCode.ProtocolError; // §5.5
  if (p + <usize>size > stop) return 0;
  if (len == 126) len = <u64>bswap<u16>(load<u16>(p + 2));
  else if (len == 127) {
    len = bswap<u64>(load<u64>(p + 2));
    if ((len >> 63) != 0) return -CloseCode.ProtocolError;   // §5.2 the most significant bit MUST be 0
  }
  frameOpcode = op;
  frameFin = fin;
  frameLength = len;
  frameMask = load<u32>(p + <usize>size - 4);
  return size;
}

/** Writes the header of an unmasked server frame (FIN set) carrying `len` bytes so that
 *  it ends at `end`; returns where it starts. */
export function writeServerHeader(end: usize, opcode: i32, len: u32): usize {
  if (len < 126) {
    store<u8>(end - 2, <u8>(0x80 | opcode)); store<u8>(end - 1, <u8>len);
    return end - 2;
  }
  if (len < 65536) {
    store<u8>(end - 4, <u8>(0x80 | opcode)); store<u8>(end - 3, 126);
    store<u16>(end - 2, bswap<u16>(<u16>len));
    return end - 4;
  }
  store<u8>(end - 10, <u8>(0x80 | opcode)); store<u8>(end - 9, 127);
  store<u64>(end - 8, bswap<u64>(<u64>len));
  return end - 10;
}

/** The size of a server frame header for `len` bytes. */
// @ts-ignore: decorator
@inline export function serverHeaderSize(len: u32): i32 { return len < 126 ? 2 : len < 65536 ? 4 : 10; }

/** Copies `n` payload bytes from `src` to `dst` (which may be the same place), unmasked
 *  with `mask` from payload offset `pos` (mod 4) on. */
export function unmask(dst: usize, src: usize, n: usize, mask: u32, pos: i32): void {
  const m32 = rotr<u32>(mask, <u32>(pos & 3) << 3);    // byte 0 is the key byte for offset `pos`
  const m64 = <u64>m32 | (<u64>m32 << 32);
  let i: usize = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + i, load<u64>(src + i, 0, 1) ^ m64, 0, 1);
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i) ^ <u8>(m32 >> (<u32>(i & 3) << 3)));
}

/** The close code a close frame's payload (already unmasked, `len` bytes) calls for in
 *  the answer: 1000 when it is well-formed, 1002 for a
 *  1-byte payload or a code no endpoint may send (§7.4), 1007 for a reason that is not
 *  UTF-8 (§8.1). */
export function closeAnswer(p: usize, len: i32): i32 {
  if (len == 0) return CloseCode.Normal;
  if (len == 1) return CloseCode.ProtocolError;
  const code = <i32>bswap<u16>(load<u16>(p));
  const known = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  if (!known) return CloseCode.ProtocolError;
  if (!utf8Valid(p + 2, len - 2)) return CloseCode.InvalidPayload;
  return CloseCode.Normal;
}
