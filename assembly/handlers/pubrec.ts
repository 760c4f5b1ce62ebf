// PUBREC: the client received a QoS 2 PUBLISH. The message itself is no longer
// needed; keep only the packet id and send PUBREL [MQTT-4.3.3-1].

import { CloseReason } from "../host";
import { decodeAck, ackPacketId, sendAck, AckByte } from "../codec/ack";
import { DecodeError } from "../codec/reader";
import { connection } from "../session/connections";
import { findInflight, delivery, DeliveryState } from "../session/queue";
import { closeConnection } from "../session/lifecycle";
import { releaseMessage } from "../store/messages";

export function handlePubrec(conn: i32, body: usize, limit: usize): void {
  const r = decodeAck(body, limit);
  if (r < 0) { closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError); return; }
  const s = connection(conn).session;
  const d = findInflight(s, ackPacketId);
  if (d < 0) return;
  const row = delivery(d);
  if (row.qos != 2) return;
  if (row.state == DeliveryState.Sent) {
    row.state = DeliveryState.Released;
    releaseMessage(row.msg);
    row.msg = -1;
  }
  sendAck(conn, AckByte.PUBREL, ackPacketId);
}
