// PINGREQ: answer PINGRESP [MQTT-3.12.4-1]. The keep-alive deadline was already
// moved by the receipt of the packet.

import { CloseReason } from "../host";
import { sendPingresp } from "../codec/ping";
import { closeConnection } from "../session/lifecycle";

export function handlePingreq(conn: i32, body: usize, limit: usize): void {
  if (body != limit) { closeConnection(conn, CloseReason.Malformed); return; }
  sendPingresp(conn);
}
