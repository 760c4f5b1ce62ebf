// Everything the core sends goes through `transportSend`: as it is to a plain MQTT
// connection, wrapped in one unmasked binary frame (RFC 6455 §5.2) to a WebSocket one.
// The writer keeps SERVER_HEADER_MAX bytes free before its buffer, so a packet built
// there gets its frame header written in front of it and goes out in one `send`, with no
// copy; bytes sent in place (a large payload in the input window or the message store)
// get the header as a send of its own. Control frames (pong, close) are sent from here.

import { WEBSOCKETS } from "../config";
import { hostSend, CloseReason } from "../host";
import { statAdd, Stat } from "../stats";
import { wsConn, isWebSocket, WsPhase } from "./state";
import { writerForget } from "../codec/writer";
import { Opcode, CloseCode, writeServerHeader, CONTROL_MAX, SERVER_HEADER_MAX } from "./frames";

/** The length of the last packet sent (what a `sendAgain` repeats, for the counters). */
export let lastSendLen: u32 = 0;

/** A frame header (or a control frame) built here: header room, then up to 125 bytes. */
const FRAME = memory.data(WEBSOCKETS ? SERVER_HEADER_MAX + 2 + CONTROL_MAX + 3 : 8, 8);
// @ts-ignore: decorator
@inline const FRAME_BODY: usize = FRAME + SERVER_HEADER_MAX + 2;

/** Sends `len` bytes at `ptr` to `conn`. `room`: the SERVER_HEADER_MAX bytes before
 *  `ptr` may be overwritten (the writer's buffer). Nothing goes to a WebSocket connection
 *  before its upgrade or after its close frame. */
export function transportSend(conn: i32, ptr: usize, len: u32, room: bool): void {
  lastSendLen = len;
  statAdd(Stat.BytesSent, <f64>len);
  if (!WEBSOCKETS || !isWebSocket(conn)) { hostSend(conn, ptr, len); return; }
  if (wsConn(conn).phase != WsPhase.Open) return;
  if (room) {
    const start = writeServerHeader(ptr, Opcode.Binary, len);
    hostSend(conn, start, len + <u32>(ptr - start));
    return;
  }
  const start = writeServerHeader(FRAME_BODY, Opcode.Binary, len);
  hostSend(conn, start, <u32>(FRAME_BODY - start));
  hostSend(conn, ptr, len);
}

/** A control frame to `conn` with `len` (≤ 125) bytes at `ptr`. */
export function sendControl(conn: i32, opcode: i32, ptr: usize, len: i32): void {
  if (ptr != FRAME_BODY) memory.copy(FRAME_BODY, ptr, <usize>len);
  const start = writeServerHeader(FRAME_BODY, opcode, <u32>len);
  hostSend(conn, start, <u32>(FRAME_BODY + <usize>len - start));
  writerForget();
}

/** Sends a close frame with `code` (no reason text); nothing more is sent after it. */
export function sendClose(conn: i32, code: i32): void {
  const w = wsConn(conn);
  if (w.phase != WsPhase.Open) return;
  store<u16>(FRAME_BODY, bswap<u16>(<u16>code));
  sendControl(conn, Opcode.Close, FRAME_BODY, 2);
  w.phase = <u8>WsPhase.Closed;
}

/** The core closes `conn` (session/lifecycle.ts): a WebSocket gets a close frame first. */
export function wsClosing(conn: i32, reason: i32): void {
  if (!WEBSOCKETS || !isWebSocket(conn)) return;
  let code = CloseCode.Normal;
  switch (reason) {
    case CloseReason.ServerShutdown: code = CloseCode.GoingAway; break;
    case CloseReason.PacketTooLarge: code = CloseCode.TooBig; break;
    case CloseReason.ProtocolError:
    case CloseReason.Malformed:
    case CloseReason.TopicAliasInvalid:
    case CloseReason.ReceiveMaximumExceeded:
    case CloseReason.WebSocketError: code = CloseCode.ProtocolError; break;
  }
  sendClose(conn, code);
}
