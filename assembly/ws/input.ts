// The bytes of a WebSocket connection, cut into MQTT packets. `feed` hands us raw bytes
// and takes back how many were consumed; the host offers the rest again later, as it was
// received (the Node host from its own buffer, the native one copied back into the
// window), so nothing here may depend on the unconsumed bytes having been changed or
// not. Hence the window is never written to:
//
//   raw window  │hdr│ payload ......│hdr│ payload ...│hdr│ pay-│   (frames, masked)
//                       └──unmask──┐       └─┐               └┐
//   SCRATCH     │ MQTT packet being gathered (one at a time)   │
//
// Payload bytes are unmasked into SCRATCH until it holds one whole MQTT packet, which is
// dispatched from there. The checkpoint is the raw position after the last whole packet
// (or control frame, or data frame header, while no packet is begun) with the frame state
// there (the WebSocket row: payload bytes left in the frame, mask offset, fragmented):
// `feed` reports the checkpoint as consumed and puts the row back to it, so the next
// `feed` starts there, maybe in the middle of a frame's payload. A ping inside a packet
// that is not whole yet is answered once that packet is (it will be read again otherwise);
// a close frame or a broken frame ends the connection at once.
//
// The packet size limit applies as soon as the packet's fixed header is gathered, and
// the raw bytes a packet needs (its frames' headers too) must fit in the input window.

import { PACKET_MAX, WEBSOCKETS } from "../config";
import { CloseReason } from "../host";
import { decodeVarint, varintSize } from "../codec/reader";
import { connection, ConnState } from "../session/connections";
import { closeConnection } from "../session/lifecycle";
import { maxPacketSize } from "../settings";
import { wsConn, WsPhase } from "./state";
import { decodeFrameHeader, frameOpcode, frameFin, frameLength, frameMask, unmask, closeAnswer,
         Opcode, CloseCode, CONTROL_MAX } from "./frames";
import { sendControl, sendClose } from "./output";
import { upgrade } from "./upgrade";
import { takePacket, refuseFirst, setNeeded } from "../broker";

/** The MQTT packet being gathered (a whole one fits). */
const SCRATCH = memory.data(WEBSOCKETS ? PACKET_MAX + 8 : 8, 16);
/** A control frame's payload, unmasked; and the ping still to answer. */
const CONTROL = memory.data(WEBSOCKETS ? CONTROL_MAX + 3 : 8, 8);
const PING = memory.data(WEBSOCKETS ? CONTROL_MAX + 3 : 8, 8);
let pingLen: i32 = -1;


/** `len` raw bytes at `input` for WebSocket connection `conn`: how many were consumed. */
export function wsFeed(conn: i32, input: usize, len: u32, capacity: u32): u32 {
  const c = connection(conn), w = wsConn(conn);
  const stop = input + <usize>len;
  let p = input;
  if (w.phase == WsPhase.Upgrade) {
    const n = upgrade(conn, p, stop);
    if (n <= 0) return n == 0 ? 0 : len;
    p += <usize>n;
  }
  if (w.phase != WsPhase.Open) return len;
  let cp = p, cpLeft = w.left, cpPos = w.maskPos, cpFragmented = w.fragmented, cpMask = w.mask;
  let sp = SCRATCH;
  let total = 0, vs = 0;
  pingLen = -1;
  while (c.state != ConnState.Closing) {
    if (w.left == 0) {
      const h = decodeFrameHeader(p, stop);
      if (h == 0) break;
      if (h < 0) return fail(conn, -h, len);
      if (frameOpcode >= Opcode.Close) {
        const n = <i32>frameLength;
        if (p + <usize>(h + n) > stop) break; // a control frame is handled whole
        unmask(CONTROL, p + <usize>h, <usize>n, frameMask, 0);
        p += <usize>(h + n);
        if (frameOpcode == Opcode.Close) {
          const code = closeAnswer(CONTROL, n);
          sendClose(conn, code);
          closeConnection(conn, code == CloseCode.Normal ? CloseReason.WebSocketClosed : CloseReason.WebSocketError);
          return len;
        }
        if (frameOpcode == Opcode.Ping) { memory.copy(PING, CONTROL, <usize>n); pingLen = n; }
        if (sp == SCRATCH) { answerPing(conn); cp = p; }
        continue;
      }
      if (frameOpcode == Opcode.Text) return fail(conn, CloseCode.Unsupported, len); // [MQTT-6.0.0-1]
      // §5.4 a continuation continues a message; a new message waits for the last one's end
      if ((frameOpcode == Opcode.Continuation) != (w.fragmented != 0)) return fail(conn, CloseCode.ProtocolError, len);
      w.fragmented = frameFin ? 0 : 1;
      w.left = frameLength;
      w.mask = frameMask;
      w.maskPos = 0;
      p += <usize>h;
      if (sp == SCRATCH) { cp = p; cpLeft = w.left; cpPos = 0; cpFragmented = w.fragmented; cpMask = w.mask; }
      continue;
    }
    if (p == stop) break;
    // what the packet still wants: its first two bytes, its length a byte at a time, the rest
    const have = <i32>(sp - SCRATCH);
    const want = total > 0 ? total - have : have < 2 ? 2 - have : 1;
    let n = <u64>min<usize>(<usize>want, stop - p);
    if (n > w.left) n = w.left;
    unmask(sp, p, <usize>n, w.mask, w.maskPos);
    sp += <usize>n; p += <usize>n;
    w.left -= n;
    w.maskPos = <u8>((<u32>w.maskPos + <u32>n) & 3);
    if (total == 0) {
      if (have == 0 && refuseFirst(conn, <i32>load<u8>(SCRATCH))) return len;
      if (sp - SCRATCH >= 2) {
        const r = decodeVarint(SCRATCH + 1, sp);
        if (r == -2) { closeConnection(conn, CloseReason.Malformed); return len; }
        if (r >= 0) {
          vs = varintSize;
          total = 1 + vs + r;
          // refused as soon as the fixed header says so, before anything is buffered
          if (total > maxPacketSize) { closeConnection(conn, CloseReason.PacketTooLarge); return len; }
        }
      }
    }
    if (total > 0 && <i32>(sp - SCRATCH) == total) {
      const stopReading = takePacket(conn, SCRATCH, total, vs);
      if (c.state == ConnState.Closing) return len;
      sp = SCRATCH; total = 0;
      cp = p; cpLeft = w.left; cpPos = w.maskPos; cpFragmented = w.fragmented; cpMask = w.mask;
      answerPing(conn);
      if (stopReading) break;
    }
  }
  if (c.state == ConnState.Closing) return len;
  // what follows the checkpoint is offered again: the frame state goes back to it
  w.left = cpLeft; w.maskPos = cpPos; w.fragmented = cpFragmented; w.mask = cpMask;
  if (sp != SCRATCH) {
    const need = <f64>(p - cp) + <f64>(total > 0 ? total - <i32>(sp - SCRATCH) : 1);
    // a packet whose frames do not fit in the window can never be read whole
    if (need > <f64>capacity || (cp == input && len >= capacity)) {
      closeConnection(conn, CloseReason.PacketTooLarge);
      return len;
    }
    if (total > 0) setNeeded(<u32>need);
  }
  return <u32>(cp - input);
}

function answerPing(conn: i32): void {
  if (pingLen < 0) return;
  sendControl(conn, Opcode.Pong, PING, pingLen);
  pingLen = -1;
}

/** A frame broke RFC 6455: close frame with `code`, and the connection closes. */
function fail(conn: i32, code: i32, len: u32): u32 {
  sendClose(conn, code);
  closeConnection(conn, CloseReason.WebSocketError);
  return len;
}
