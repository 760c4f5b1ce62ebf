// PUBREL: the client releases a QoS 2 packet id; forget it and answer PUBCOMP
// (also for an id we do not hold, so a client retrying after a reconnect completes).

import { CloseReason } from "../host";
import { decodeAck, ackPacketId, sendAck, AckByte } from "../codec/ack";
import { DecodeError } from "../codec/reader";
import { connection } from "../session/connections";
import { removeReceived } from "../session/clients";
import { closeConnection } from "../session/lifecycle";

export function handlePubrel(conn: i32, body: usize, limit: usize): void {
  const r = decodeAck(body, limit);
  if (r < 0) { closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError); return; }
  removeReceived(connection(conn).session, ackPacketId);
  sendAck(conn, AckByte.PUBCOMP, ackPacketId);           // [MQTT-4.3.3-2]
}
