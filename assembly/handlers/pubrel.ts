// PUBREL: the client releases a QoS 2 packet id; forget it and answer PUBCOMP.
// For an id we do not hold, 3.1.1 still completes (a client retrying after a
// reconnect); MQTT 5 says so with reason 0x92.

import { decodeAck, ackPacketId, AckByte } from "../codec/ack";
import { ackPublish } from "../persist/journal";
import { PacketType } from "../codec/packet";
import { connection } from "../session/connections";
import { hasReceived, removeReceived } from "../session/received";
import { closeForDecodeError } from "../session/lifecycle";

const PACKET_ID_NOT_FOUND: i32 = 0x92;

export function handlePubrel(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  const r = decodeAck(PacketType.PUBREL, body, limit, v5);
  if (r < 0) { closeForDecodeError(conn, r); return; }
  const s = c.session;
  const held = hasReceived(s, ackPacketId);
  if (held) removeReceived(s, ackPacketId);
  // persistence_sync always: after the id's ReceivedDone record is synced (a power cut
  // that kept the id would make the client's next QoS 2 message with it a duplicate)
  ackPublish(conn, AckByte.PUBCOMP, ackPacketId, v5 && !held ? PACKET_ID_NOT_FOUND : 0); // [MQTT-4.3.3-2]
}
