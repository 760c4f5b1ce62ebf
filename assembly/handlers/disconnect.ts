// DISCONNECT: a clean goodbye. The will is discarded [MQTT-3.14.4-3] and the
// connection closed [MQTT-3.14.4-1].

import { CloseReason } from "../host";
import { closeConnection } from "../session/lifecycle";

export function handleDisconnect(conn: i32, body: usize, limit: usize): void {
  if (body != limit) { closeConnection(conn, CloseReason.Malformed); return; }
  closeConnection(conn, CloseReason.Normal);
}
