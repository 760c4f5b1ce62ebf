// PUBACK: the client acknowledged a QoS 1 PUBLISH (whatever its MQTT 5 reason code,
// the exchange is over); free it and send what is queued.

import { decodeAck, ackPacketId } from "../codec/ack";
import { PacketType } from "../codec/packet";
import { connection } from "../session/connections";
import { findInflight, previousDelivery, removeDelivery, delivery, DeliveryState } from "../session/queue";
import { closeForDecodeError } from "../session/lifecycle";
import { acknowledged } from "../flow/progress";

export function handlePuback(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const r = decodeAck(PacketType.PUBACK, body, limit, c.level == 5);
  if (r < 0) { closeForDecodeError(conn, r); return; }
  const s = c.session;
  const d = findInflight(s, ackPacketId);
  if (d < 0) return; // unknown id: nothing to do
  const row = delivery(d);
  if (row.qos != 1 || row.state != DeliveryState.Sent) return;
  removeDelivery(s, d, previousDelivery);
  acknowledged(conn, s);
}
