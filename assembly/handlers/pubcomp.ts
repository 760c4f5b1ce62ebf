// PUBCOMP: the QoS 2 exchange of an outgoing PUBLISH is complete.

import { decodeAck, ackPacketId } from "../codec/ack";
import { PacketType } from "../codec/packet";
import { connection } from "../session/connections";
import { findInflight, previousDelivery, removeDelivery, delivery, DeliveryState } from "../session/queue";
import { closeForDecodeError } from "../session/lifecycle";
import { acknowledged } from "../flow/progress";

export function handlePubcomp(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const r = decodeAck(PacketType.PUBCOMP, body, limit, c.level == 5);
  if (r < 0) { closeForDecodeError(conn, r); return; }
  const s = c.session;
  const d = findInflight(s, ackPacketId);
  if (d < 0) return;
  if (delivery(d).state != DeliveryState.Released) return;
  removeDelivery(s, d, previousDelivery);
  acknowledged(conn, s);
}
