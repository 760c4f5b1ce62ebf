// PUBLISH from a client, as a validation ladder: decode, topic alias, topic name,
// duplicate check, retained store, fan-out, then the acknowledgement for its QoS.

import { TOPIC_ALIAS_MAX, INFLIGHT_IN_MAX, PERSISTENCE, BRIDGE } from "../config";
import { mapTopic, MAPPED_IN, mappedLen } from "../bridge/topics";
import { Direction } from "../bridge/bridges";
import { CloseReason, LogLevel } from "../host";
import { now } from "../clock";
import { decodePublish, publishQos, publishRetain, publishTopicPtr, publishTopicLen,
         publishPacketId, publishPayloadPtr, publishPayloadLen, publishAlias, publishHasExpiry,
         publishExpiry, publishPropsPtr, publishPropsLen } from "../codec/publish";
import { sendAck, AckByte } from "../codec/ack";
import { ackPublish, journalUnitBegin, journalUnitEnd } from "../persist/journal";
import { validTopicName } from "../topics/validate";
import { connection } from "../session/connections";
import { session, sessionId } from "../session/sessions";
import { hasReceived, addReceived } from "../session/received";
import { setInboundAlias, inboundAlias, aliasTopicLen } from "../session/aliases";
import { closeConnection, closeForDecodeError } from "../session/lifecycle";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { setRetained, clearRetained } from "../store/retained";
import { route } from "../delivery/route";
import { statAdd, statGet, Stat } from "../stats";
import { messageSizeLimit, retainAvailable } from "../settings";
import { aclLoaded, aclAllows, Access } from "../auth/acl";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "../log";

/** MQTT 5 PUBACK/PUBREC reason code: accepted, but nobody subscribes to it. */
const NO_MATCHING_SUBSCRIBERS: i32 = 0x10;

function warnClient(s: i32, text: string): void {
  if (!logOn(LogLevel.Warning)) return;
  logStart();
  logText("client ");
  logBytes(sessionId(s), session(s).idLen);
  logText(": ");
  logText(text);
  logEnd(LogLevel.Warning);
}

/** MQTT 5 PUBACK/PUBREC reason code: the ACL file does not let the client publish there. */
const NOT_AUTHORIZED: i32 = 0x87;

/** MQTT 5 PUBACK/PUBREC reason code: the payload is above message_size_limit. */
const PACKET_TOO_LARGE: i32 = 0x95;

/** Count `stat`; log the first time and every 1000th after it (a flood cannot flood the
 *  log): "<before><client id><after><why> (<n> so far)". */
function countForClient(stat: Stat, level: i32, s: i32, before: string, after: string, why: string): void {
  statAdd(stat);
  const n = <i64>statGet(stat);
  if (n % 1000 != 1 || !logOn(level)) return;
  logStart();
  logText(before);
  logBytes(sessionId(s), session(s).idLen);
  logText(after);
  logText(why);
  logText(" (");
  logInt(n);
  logText(" so far)");
  logEnd(level);
}

function sizeLimitDrop(s: i32): void {
  countForClient(Stat.DroppedSizeLimit, LogLevel.Notice, s, "PUBLISH from client ", " dropped: ",
                 "payload above message_size_limit");
}

function retainedRefused(s: i32, why: string): void {
  countForClient(Stat.RetainedRefused, LogLevel.Warning, s, "retained message from client ", " not kept: ", why);
}

export function handlePublish(conn: i32, flags: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  const r = decodePublish(flags, body, limit, v5);
  if (r < 0) {
    closeForDecodeError(conn, r);
    return;
  }
  let topic = publishTopicPtr, topicLen = publishTopicLen;
  const s = c.session;

  // MQTT 5 topic alias [MQTT-3.3.2-7..12]: 1..our Topic Alias Maximum
  if (publishAlias >= 0) {
    if (publishAlias == 0 || publishAlias > TOPIC_ALIAS_MAX) {
      closeConnection(conn, CloseReason.TopicAliasInvalid);
      return;
    }
    if (topicLen > 0) {
      if (!validTopicName(topic, topicLen)) { closeConnection(conn, CloseReason.ProtocolError); return; }
      if (!setInboundAlias(conn, publishAlias, topic, topicLen)) {
        warnClient(s, "topic too long for a topic alias slot");
        closeConnection(conn, CloseReason.TopicAliasInvalid);
        return;
      }
    } else {
      topic = inboundAlias(conn, publishAlias);
      if (topic == 0) { closeConnection(conn, CloseReason.ProtocolError); return; } // alias never defined
      topicLen = aliasTopicLen;
    }
  }
  if (!validTopicName(topic, topicLen)) {           // [MQTT-3.3.2-2] [MQTT-4.7.3-1]
    closeConnection(conn, CloseReason.ProtocolError);
    return;
  }
  // from a bridge's upstream: its topic in the local tree (a topic no `in` line covers
  // is still acknowledged, and goes nowhere)
  let unmapped = false;
  if (BRIDGE && c.bridge >= 0) {
    if (mapTopic(c.bridge, Direction.In, topic, topicLen)) { topic = MAPPED_IN; topicLen = mappedLen; }
    else unmapped = true;
  }
  const qos = publishQos, packetId = publishPacketId;
  statAdd(Stat.MessagesReceived);
  statAdd(Stat.PublishBytesReceived, <f64>publishPayloadLen);

  // message_size_limit: a larger payload is dropped and the sender answered as Mosquitto
  // answers it (MQTT 5: 0x95 Packet too large; a 3.1.1 PUBREL then finds no id: PUBCOMP)
  if (messageSizeLimit > 0 && publishPayloadLen > messageSizeLimit) {
    sizeLimitDrop(s);
    if (qos == 1) ackPublish(conn, AckByte.PUBACK, packetId, v5 ? PACKET_TOO_LARGE : 0);
    else if (qos == 2) ackPublish(conn, AckByte.PUBREC, packetId, v5 ? PACKET_TOO_LARGE : 0);
    return;
  }

  // retain_available false: a retained PUBLISH closes the connection, as in Mosquitto 2
  // (MQTT 5 gets DISCONNECT 0x9A first)
  if (publishRetain && retainAvailable == 0) {
    closeConnection(conn, CloseReason.RetainNotSupported);
    return;
  }

  // The ACL file (Mosquitto 2's answer): MQTT 5 is told 0x87, an older client gets the usual
  // acknowledgement (it has no way to hear "no"), and the message goes nowhere
  if (unmapped) {
    if (qos == 1) ackPublish(conn, AckByte.PUBACK, packetId, 0);
    else if (qos == 2) ackPublish(conn, AckByte.PUBREC, packetId, 0);
    return;
  }
  if (aclLoaded && !aclAllows(s, topic, topicLen, Access.Write)) {
    countForClient(Stat.DeniedPublishes, LogLevel.Notice, s, "PUBLISH from client ", " denied: ",
                   "the ACL file does not let it write to the topic");
    if (qos == 1) ackPublish(conn, AckByte.PUBACK, packetId, v5 ? NOT_AUTHORIZED : 0);
    else if (qos == 2) ackPublish(conn, AckByte.PUBREC, packetId, v5 ? NOT_AUTHORIZED : 0);
    return;
  }

  if (qos == 2) {
    // [MQTT-4.3.3-2] delivered onwards once; a resend before PUBREL only gets PUBREC
    if (hasReceived(s, packetId)) { ackPublish(conn, AckByte.PUBREC, packetId, 0); return; }
    // the id and the deliveries its message makes: both in the persistence file or
    // neither (with the id alone, the resend after a crash would be taken for a duplicate)
    if (PERSISTENCE) journalUnitBegin();
    // MQTT 5: more unreleased QoS 2 messages than our Receive Maximum [MQTT-3.3.4-9];
    // MQTT 3.1.1 has none: only the board's pool of ids bounds it
    if ((v5 && session(s).received >= INFLIGHT_IN_MAX) || !addReceived(s, packetId)) {
      if (PERSISTENCE) journalUnitEnd();
      warnClient(s, "too many QoS 2 messages awaiting PUBREL");
      closeConnection(conn, CloseReason.ReceiveMaximumExceeded);
      return;
    }
  }

  const expiresAt: f64 = publishHasExpiry ? now + <f64>publishExpiry * 1000 : 0;
  let stored = -1;
  if (publishRetain) {
    if (publishPayloadLen == 0) {
      clearRetained(topic, topicLen);                // [MQTT-3.3.1-10] [MQTT-3.3.1-11]
    } else {
      stored = storeMessage(topic, topicLen, publishPropsPtr, publishPropsLen, publishPayloadPtr,
                            publishPayloadLen, qos, 1, expiresAt);
      if (stored < 0) {
        statAdd(Stat.DroppedStoreFull);
        retainedRefused(s, "message store full");
      } else {
        holdMessage(stored); // held across the fan-out below
        if (!setRetained(topic, topicLen, stored)) retainedRefused(s, "retained table full");
      }
    }
  }

  const targets = route(topic, topicLen, publishPropsPtr, publishPropsLen, publishPayloadPtr, publishPayloadLen,
                        qos, publishRetain, expiresAt, stored, s);
  if (stored >= 0) releaseMessage(stored);
  if (PERSISTENCE && qos == 2) journalUnitEnd();

  const reason = v5 && targets == 0 ? NO_MATCHING_SUBSCRIBERS : 0;
  if (qos == 1) ackPublish(conn, AckByte.PUBACK, packetId, reason);        // [MQTT-4.3.2-2]
  else if (qos == 2) ackPublish(conn, AckByte.PUBREC, packetId, reason);   // [MQTT-4.3.3-2]
}
