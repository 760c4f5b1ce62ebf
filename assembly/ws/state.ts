// The WebSocket state of each connection: whether it came through a `protocol websockets`
// listener, where its HTTP upgrade stands, and where the frame being read stands, so that
// `feed` can stop at any byte of a frame's payload and resume there (ws/input.ts).
//
//   WebSocket row (MAX_CONNECTIONS rows; none when WEBSOCKETS is 0), 16 bytes
//   ┌───────┬─────────┬────────────┬──────┬──────────┬─────────────────────────────┐
//   │ phase │ maskPos │ fragmented │ (0)  │ mask u32 │ left u64                    │
//   └───────┴─────────┴────────────┴──────┴──────────┴─────────────────────────────┘
//   phase: WsPhase; maskPos: payload bytes of the current frame handled, mod 4;
//   fragmented: 1 while a binary message continues (its last data frame had FIN 0);
//   mask: the current data frame's masking key, as its 4 bytes load (little-endian);
//   left: payload bytes of the current data frame not yet handled (0: a header is next).

import { MAX_CONNECTIONS, WEBSOCKETS } from "../config";

export const enum WsPhase {
  None = 0,     // plain MQTT: no WebSocket
  Upgrade = 1,  // waiting for the HTTP upgrade request
  Open = 2,     // upgraded: bytes are frames
  Closed = 3,   // a close frame or an HTTP error was sent: nothing more goes out
}

// @ts-ignore: decorator
@unmanaged @final export class WsConn {
  phase: u8;
  maskPos: u8;
  fragmented: u8;
  spare: u8;      // 1: a `protocol http` listener's (HTTP only, no upgrade)
  mask: u32;
  left: u64;
}

const WS_BASE = memory.data(WEBSOCKETS ? MAX_CONNECTIONS * offsetof<WsConn>() : 16, 8);

// @ts-ignore: decorator
@inline export function wsConn(conn: i32): WsConn {
  return changetype<WsConn>(WS_BASE + <usize>conn * offsetof<WsConn>());
}

/** A new connection: `websocket` when its listener speaks WebSockets. */
export function wsOpen(conn: i32, websocket: bool, httpOnly: bool): void {
  if (!WEBSOCKETS) return;
  const w = wsConn(conn);
  w.phase = <u8>(websocket ? WsPhase.Upgrade : WsPhase.None);
  w.spare = httpOnly ? 1 : 0;
  w.maskPos = 0; w.fragmented = 0; w.mask = 0; w.left = 0;
}

/** Whether `conn` speaks WebSockets (upgraded or not yet). */
// @ts-ignore: decorator
@inline export function isWebSocket(conn: i32): bool {
  return WEBSOCKETS != 0 && wsConn(conn).phase != WsPhase.None;
}

export function wsTableBytes(): i32 { return WEBSOCKETS ? MAX_CONNECTIONS * offsetof<WsConn>() : 0; }
