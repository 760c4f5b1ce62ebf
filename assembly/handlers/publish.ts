// PUBLISH from a client, as a validation ladder: decode, topic, duplicate check,
// retained store, fan-out, then the acknowledgement for its QoS.

import { CloseReason, LogLevel } from "../host";
import { DecodeError } from "../codec/reader";
import { decodePublish, publishQos, publishRetain, publishTopicPtr, publishTopicLen,
         publishPacketId, publishPayloadPtr, publishPayloadLen } from "../codec/publish";
import { sendAck, AckByte } from "../codec/ack";
import { validTopicName } from "../topics/validate";
import { connection } from "../session/connections";
import { hasReceived, addReceived, session, sessionId } from "../session/clients";
import { closeConnection } from "../session/lifecycle";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { setRetained, clearRetained } from "../store/retained";
import { route } from "../delivery";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logBytes, logEnd } from "../log";

function warnClient(s: i32, text: string): void {
  if (!logOn(LogLevel.Warning)) return;
  logStart();
  logText("client ");
  logBytes(sessionId(s), session(s).idLen);
  logText(": ");
  logText(text);
  logEnd(LogLevel.Warning);
}

export function handlePublish(conn: i32, flags: i32, body: usize, limit: usize): void {
  const r = decodePublish(flags, body, limit);
  if (r < 0) {
    closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError);
    return;
  }
  const topic = publishTopicPtr, topicLen = publishTopicLen;
  if (!validTopicName(topic, topicLen)) {           // [MQTT-3.3.2-2] [MQTT-4.7.3-1]
    closeConnection(conn, CloseReason.ProtocolError);
    return;
  }
  const s = connection(conn).session;
  const qos = publishQos, packetId = publishPacketId;
  statAdd(Stat.MessagesReceived);

  if (qos == 2) {
    // [MQTT-4.3.3-2] delivered onwards once; a resend before PUBREL only gets PUBREC
    if (hasReceived(s, packetId)) { sendAck(conn, AckByte.PUBREC, packetId); return; }
    if (!addReceived(s, packetId)) {
      warnClient(s, "too many QoS 2 messages awaiting PUBREL");
      closeConnection(conn, CloseReason.ProtocolError);
      return;
    }
  }

  let stored = -1;
  if (publishRetain) {
    if (publishPayloadLen == 0) {
      clearRetained(topic, topicLen);                // [MQTT-3.3.1-10] [MQTT-3.3.1-11]
    } else {
      stored = storeMessage(topic, topicLen, publishPayloadPtr, publishPayloadLen, qos, 1);
      if (stored < 0) {
        statAdd(Stat.DroppedStoreFull);
        warnClient(s, "retained message not stored: message store full");
      } else {
        holdMessage(stored); // held across the fan-out below
        if (!setRetained(topic, topicLen, stored)) warnClient(s, "retained message not stored: table full");
      }
    }
  }

  route(topic, topicLen, publishPayloadPtr, publishPayloadLen, qos, stored);
  if (stored >= 0) releaseMessage(stored);

  if (qos == 1) sendAck(conn, AckByte.PUBACK, packetId);        // [MQTT-4.3.2-2]
  else if (qos == 2) sendAck(conn, AckByte.PUBREC, packetId);   // [MQTT-4.3.3-2]
}
