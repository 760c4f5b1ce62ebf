// AUTH (MQTT 5): only valid during an enhanced authentication exchange, which needs
// an authentication method; Midge refuses every method in CONNACK (0x8C) for now, so
// an AUTH packet is a Protocol Error (§4.12). The connection state
// `Authenticating` is where a host-provided method will plug in.

import { CloseReason } from "../host";
import { decodeAuth } from "../codec/auth";
import { connection, ConnState } from "../session/connections";
import { closeConnection, closeForDecodeError } from "../session/lifecycle";

export function handleAuth(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  if (c.level != 5) { closeConnection(conn, CloseReason.ProtocolError); return; }
  const r = decodeAuth(body, limit);
  if (r < 0) {
    closeForDecodeError(conn, r);
    return;
  }
  if (c.state != ConnState.Authenticating) closeConnection(conn, CloseReason.ProtocolError);
}
