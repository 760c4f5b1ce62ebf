// Per-recipient encoding: every outgoing PUBLISH is written here, in the recipient's
// protocol version, from one message view: a PUBLISH still in the input window (or a
// will topic in scratch), or a message in the store. Encode once per wire form
// [DESIGN §1]: a QoS 0 PUBLISH that went out whole as one `send` is handed to the next
// recipient with the same wire form by `sendAgain`, without encoding it again. The
// reuse belongs to the view: viewing another message ends it, so no caller resets it.
//
//   MessageView (one, in static memory)
//   ┌─────┬──────────────┬────────────────┬──────────────────┬───────────┬──────────┬────────────┐
//   │ msg │ topic, len   │ props, len     │ payload, len     │ expiresAt │ lastForm │ lastPacket │
//   └─────┴──────────────┴────────────────┴──────────────────┴───────────┴──────────┴────────────┘

import { hostSendAgain } from "../host";
import { isWebSocket } from "../ws/state";
import { now } from "../clock";
import { writerStart, emit, ensure, flush, sendsSinceStart, packetsStarted } from "../codec/writer";
import { writePublishHeader, writePublishMiddle, publishPropsLength, publishPacketSize } from "../codec/publish";
import { connection } from "../session/connections";
import { findOutboundAlias, chooseOutboundAlias, recordOutboundAlias, topicHash } from "../session/aliases";
import { message, copyOut, emitRange } from "../store/messages";
import { SEND_TOPIC } from "../memory/scratch";
import { statAdd, Stat } from "../stats";
import { lastSendLen } from "../ws/output";
import { BRIDGE } from "../config";
import { mapTopic, MAPPED_OUT, mappedLen } from "../bridge/topics";
import { Direction, bridge } from "../bridge/bridges";

// @ts-ignore: decorator
@unmanaged @final class MessageView {
  msg: i32;          // stored message, or -1: the bytes below are in linear memory
  topic: usize;      // 0 for a stored message until a topic alias needs it contiguous
  topicLen: i32;
  props: usize;
  propsLen: i32;
  payload: usize;
  payloadLen: i32;
  expiresAt: f64;
  lastForm: i32;     // wire form of the last QoS 0 PUBLISH of this view sent whole (0: none)
  lastPacket: u32;   // the writer's packetsStarted when it was
}

const VIEW_AT = memory.data(offsetof<MessageView>(), 8);
// @ts-ignore: decorator
@inline function view(): MessageView { return changetype<MessageView>(VIEW_AT); }

/** View a message whose bytes are in linear memory (`stored` -1) or in the store. */
export function viewRaw(topic: usize, topicLen: i32, props: usize, propsLen: i32, payload: usize, payloadLen: i32,
                        expiresAt: f64): void {
  const v = view();
  if (v.msg < 0 && v.topic == topic && v.payload == payload && v.payloadLen == payloadLen) return; // the same
  v.msg = -1; v.topic = topic; v.topicLen = topicLen; v.props = props; v.propsLen = propsLen;
  v.payload = payload; v.payloadLen = payloadLen; v.expiresAt = expiresAt; v.lastForm = 0;
}

export function viewStored(m: i32): void {
  const v = view();
  if (v.msg == m) return; // the same message: the reuse stands
  const row = message(m);
  v.msg = m; v.topicLen = row.topicLen; v.propsLen = row.propsLen; v.payloadLen = row.payloadLen;
  v.expiresAt = row.expiresAt;
  v.topic = 0; // copied out of the store only if a topic alias needs it contiguous
  v.lastForm = 0;
}

/** A new fan-out begins: even a message at the same place is another message. */
export function viewNothing(): void {
  const v = view();
  v.msg = -2; v.topic = 0; v.payload = 0; v.lastForm = 0;
}


/** The viewed topic as contiguous bytes (topic aliases hash and compare it). */
function viewTopic(): usize {
  const v = view();
  if (v.topic == 0) {
    copyOut(v.msg, 0, SEND_TOPIC, v.topicLen);
    v.topic = SEND_TOPIC;
  }
  return v.topic;
}

/** Encode the viewed message as a PUBLISH for `conn`. False when it was not sent
 *  because it exceeds the client's Maximum Packet Size: such a message is dropped as
 *  if it had been sent [MQTT-3.1.2-25]. */
export function sendView(conn: i32, qos: i32, retain: bool, dup: bool, packetId: i32, ids: usize, idCount: i32): bool {
  const v = view();
  const c = connection(conn);
  const v5 = c.level == 5;
  let expiry: i64 = -1;
  let alias = 0;
  let newAlias = false;
  let hash: u64 = 0;
  let topicLen = v.topicLen;
  let propsLen = -1;
  // a bridge's connection: the topic as upstream names it (bridge/topics.ts)
  let bridged: usize = 0;
  if (BRIDGE && c.bridge >= 0) {
    if (bridge(c.bridge).noRetain != 0) retain = false; // [MQTT-3.2.2-14]
    const t = viewTopic();
    if (mapTopic(c.bridge, Direction.Out, t, v.topicLen)) { bridged = MAPPED_OUT; topicLen = mappedLen; }
    else bridged = t;
  }
  if (v5) {
    // [MQTT-3.3.2-6] the expiry sent is what is left of it
    // (less a millisecond: `now + 30000 - now` may come out a hair above 30000 in floating point)
    if (v.expiresAt > 0) expiry = <i64><u32>max(Math.ceil((v.expiresAt - now - 1) / 1000), 0);
    if (c.aliasOutMax > 0) {
      const topic = viewTopic();
      hash = topicHash(topic, v.topicLen);
      alias = findOutboundAlias(conn, topic, v.topicLen, hash);
      if (alias > 0) topicLen = 0; // the alias alone stands for the topic
      else { alias = chooseOutboundAlias(conn, v.topicLen); newAlias = alias > 0; }
    }
    propsLen = publishPropsLength(expiry, alias, ids, idCount, v.propsLen);
  } else {
    idCount = 0;
  }
  if (<u32>publishPacketSize(qos, topicLen, propsLen, v.payloadLen) > c.maxPacketOut) {
    statAdd(Stat.DroppedTooLarge);
    return false;
  }
  if (newAlias) recordOutboundAlias(conn, alias, v.topic, v.topicLen, hash);
  writerStart(conn);
  writePublishHeader(qos, dup, retain, topicLen, propsLen, v.payloadLen);
  if (bridged != 0) emit(bridged, topicLen);
  else if (v.topic != 0) emit(v.topic, topicLen);
  else emitRange(v.msg, 0, topicLen); // straight from the store
  ensure(32);
  writePublishMiddle(qos, packetId, propsLen, expiry, alias, ids, idCount);
  if (v.msg >= 0) {
    const row = message(v.msg);
    if (v5) emitRange(v.msg, row.topicLen, row.propsLen);
    emitRange(v.msg, row.topicLen + row.propsLen, row.payloadLen);
  } else {
    if (v5) emit(v.props, v.propsLen);
    emit(v.payload, v.payloadLen);
  }
  flush();
  statAdd(Stat.MessagesSent);
  statAdd(Stat.PublishBytesSent, <f64>v.payloadLen);
  return true;
}

/** The wire-form key of a QoS 0 delivery to `conn`, or 0 if it must be encoded for it:
 *  the protocol family and the RETAIN flag, for recipients that need nothing of their
 *  own in the packet (no subscription identifiers, no topic alias, no size limit). */
function wireForm(conn: i32, retain: bool, idCount: i32): i32 {
  const c = connection(conn);
  if (c.level == 5 && (idCount > 0 || c.aliasOutMax > 0 || c.maxPacketOut != 0xFFFFFFFF)) return 0;
  if (BRIDGE && c.bridge >= 0) return 0; // its own topic
  return (c.level == 5 ? 2 : 1) | (retain ? 4 : 0) | (isWebSocket(conn) ? 8 : 0); // framed or not
}

/** Send the viewed message at QoS 0 to `conn`: the bytes already sent for another
 *  recipient with the same wire form if they are the writer's last packet, else
 *  encoded for it. */
export function sendViewQos0(conn: i32, retain: bool, ids: usize, idCount: i32): void {
  const v = view();
  const form = wireForm(conn, retain, idCount);
  if (form != 0 && form == v.lastForm && v.lastPacket == packetsStarted) {
    hostSendAgain(conn);
    statAdd(Stat.MessagesSent);
    statAdd(Stat.PacketsSent);
    statAdd(Stat.BytesSent, <f64>lastSendLen);
    statAdd(Stat.PublishBytesSent, <f64>v.payloadLen);
    return;
  }
  const sent = sendView(conn, 0, retain, false, 0, ids, idCount);
  v.lastForm = sent && form != 0 && sendsSinceStart == 1 ? form : 0;
  v.lastPacket = packetsStarted;
}
