// PUBREC: the client received a QoS 2 PUBLISH. The message itself is no longer
// needed; keep only the packet id and send PUBREL [MQTT-4.3.3-1]. An MQTT 5 PUBREC
// with a failure code (0x80 and up) ends the exchange instead [MQTT-4.3.3-4].

import { decodeAck, ackPacketId, ackReason, sendAck, AckByte } from "../codec/ack";
import { PacketType } from "../codec/packet";
import { connection } from "../session/connections";
import { findInflight, previousDelivery, removeDelivery, delivery, DeliveryState } from "../session/queue";
import { closeForDecodeError } from "../session/lifecycle";
import { releaseMessage } from "../store/messages";
import { acknowledged } from "../flow/progress";

/** MQTT 5: PUBREL for a packet id we no longer know. */
import { PERSISTENCE } from "../config";
import { journalReleased } from "../persist/journal";

const PACKET_ID_NOT_FOUND: i32 = 0x92;

export function handlePubrec(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  const r = decodeAck(PacketType.PUBREC, body, limit, v5);
  if (r < 0) { closeForDecodeError(conn, r); return; }
  const s = c.session;
  const d = findInflight(s, ackPacketId);
  if (d < 0) {
    if (v5 && ackReason < 0x80) sendAck(conn, AckByte.PUBREL, ackPacketId, PACKET_ID_NOT_FOUND);
    return;
  }
  const row = delivery(d);
  if (row.qos != 2) return;
  if (ackReason >= 0x80) {
    if (row.state == DeliveryState.Sent) { removeDelivery(s, d, previousDelivery); acknowledged(conn, s); }
    return;
  }
  if (row.state == DeliveryState.Sent) {
    row.state = DeliveryState.Released;
    releaseMessage(row.msg);
    row.msg = -1;
    if (PERSISTENCE) journalReleased(s, d);
  }
  sendAck(conn, AckByte.PUBREL, ackPacketId);
  acknowledged(conn, s); // progress: the publishers waiting for it may be released
}
