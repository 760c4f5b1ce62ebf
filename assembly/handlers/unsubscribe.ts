// UNSUBSCRIBE: validate every filter, remove those the session has, and always
// answer UNSUBACK [MQTT-3.10.4-4] [MQTT-3.10.4-5].

import { CloseReason } from "../host";
import { DecodeError } from "../codec/reader";
import { unsubscribeBegin, unsubscribeNext, unsubscribeError, unsubscribePacketId,
         unsubscribeFilterPtr, unsubscribeFilterLen } from "../codec/unsubscribe";
import { sendAck, AckByte } from "../codec/ack";
import { connection } from "../session/connections";
import { unsubscribe } from "../session/subscriptions";
import { closeConnection } from "../session/lifecycle";

export function handleUnsubscribe(conn: i32, body: usize, limit: usize): void {
  let r = unsubscribeBegin(body, limit);
  if (r >= 0) {
    while (unsubscribeNext()) { /* validate all first */ }
    r = unsubscribeError();
  }
  if (r < 0) {
    closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError);
    return;
  }
  const s = connection(conn).session;
  unsubscribeBegin(body, limit);
  while (unsubscribeNext()) unsubscribe(s, unsubscribeFilterPtr, unsubscribeFilterLen);
  sendAck(conn, AckByte.UNSUBACK, unsubscribePacketId);
}
