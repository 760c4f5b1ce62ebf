// DISCONNECT from the client: a clean goodbye. The will is discarded [MQTT-3.14.4-3],
// unless an MQTT 5 client asks for it with reason 0x04, and the connection closed
// [MQTT-3.14.4-1]. An MQTT 5 client may change its Session Expiry Interval here, but
// not from 0 (§3.14.2.2.2).

import { CloseReason, hostClose } from "../host";
import { WEBSOCKETS } from "../config";
import { wsClosing } from "../ws/output";
import { decodeDisconnect, disconnectReason, disconnectHasExpiry, disconnectExpiry,
         DisconnectReason } from "../codec/disconnect";
import { connection, ConnState } from "../session/connections";
import { session } from "../session/sessions";
import { closeConnection, closeForDecodeError, detach } from "../session/lifecycle";

export function handleDisconnect(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  const r = decodeDisconnect(body, limit, v5);
  if (r < 0) {
    closeForDecodeError(conn, r);
    return;
  }
  const s = c.session;
  if (v5 && disconnectHasExpiry) {
    if (session(s).expiry == 0 && disconnectExpiry != 0) {
      closeConnection(conn, CloseReason.ProtocolError);
      return;
    }
    session(s).expiry = disconnectExpiry;
  }
  // the client closes: no DISCONNECT back (over WebSockets a close frame 1000, as every
  // close by the core sends: ws/output.ts); its will only on request (0x04)
  if (WEBSOCKETS) wsClosing(conn, CloseReason.Normal);
  detach(conn, CloseReason.Normal, v5 && disconnectReason == DisconnectReason.WithWill);
  c.state = ConnState.Closing;
  hostClose(conn, CloseReason.Normal);
}
