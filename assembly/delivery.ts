// Outgoing messages: fan-out of one PUBLISH to every matching session, and the
// per-session flow of QoS 1/2 deliveries (send in order, within the client's
// Receive Maximum, redeliver on reconnect). Every outgoing PUBLISH is encoded here,
// once per recipient, in that recipient's protocol version.

import { MAX_SESSIONS, MAX_SUBSCRIPTIONS } from "./config";
import { maxInflight, maxBacklog } from "./settings";
import { hostBacklog, hostSendAgain, LogLevel } from "./host";
import { now } from "./clock";
import { writerStart, emit, ensure, flush, sendsSinceStart, packetsStarted } from "./codec/writer";
import { writePublishHeader, writePublishMiddle, publishPropsLength, publishPacketSize } from "./codec/publish";
import { sendAck, AckByte } from "./codec/ack";
import { matchTopic, matchedCount, matchedNode, node } from "./topics/matcher";
import { topicMatches } from "./topics/validate";
import { shareGroup, pickMember } from "./topics/shared";
import { subscription, subscriptionFilter, SubOption } from "./session/subscriptions";
import { session, sessionId } from "./session/sessions";
import { connection, ConnState } from "./session/connections";
import { enqueue, delivery, deliveryIds, removeDelivery, DeliveryState } from "./session/queue";
import { findOutboundAlias, chooseOutboundAlias, recordOutboundAlias, topicHash } from "./session/aliases";
import { message, storeMessage, holdMessage, releaseMessage, copyOut, emitRange } from "./store/messages";
import { SEND_TOPIC } from "./memory/scratch";
import { statAdd, Stat } from "./stats";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "./log";

const TARGETS = memory.data(MAX_SESSIONS * 4, 8);
// subscription identifiers of the current fan-out, chained per target session
const MATCH_ID = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
const MATCH_NEXT = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
// the identifiers for one recipient, contiguous
const IDS = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
let epoch: u32 = 0;

export function deliveryScratchBytes(): i32 { return MAX_SESSIONS * 4 + MAX_SUBSCRIPTIONS * 12; }

/** The connection a session can be sent to now, or -1. */
export function onlineConnection(s: i32): i32 {
  const c = session(s).conn;
  if (c < 0 || connection(c).state != ConnState.Connected) return -1;
  return c;
}

// ---- the message being encoded: in linear memory (a PUBLISH in the input window,
// a will topic in scratch) or in the message store ----
let vMsg: i32 = -1;
let vTopic: usize = 0;
let vTopicLen: i32 = 0;
let vProps: usize = 0;
let vPropsLen: i32 = 0;
let vPayload: usize = 0;
let vPayloadLen: i32 = 0;
let vExpiresAt: f64 = 0;

function viewRaw(topic: usize, topicLen: i32, props: usize, propsLen: i32, payload: usize, payloadLen: i32,
                 expiresAt: f64): void {
  vMsg = -1; vTopic = topic; vTopicLen = topicLen; vProps = props; vPropsLen = propsLen;
  vPayload = payload; vPayloadLen = payloadLen; vExpiresAt = expiresAt;
}

function viewStored(m: i32): void {
  const row = message(m);
  vMsg = m; vTopicLen = row.topicLen; vPropsLen = row.propsLen; vPayloadLen = row.payloadLen;
  vExpiresAt = row.expiresAt;
  vTopic = 0; // copied out of the store only if a topic alias needs it contiguous
}

/** The viewed topic as contiguous bytes (topic aliases hash and compare it). */
function viewTopic(): usize {
  if (vTopic == 0) {
    copyOut(vMsg, 0, SEND_TOPIC, vTopicLen);
    vTopic = SEND_TOPIC;
  }
  return vTopic;
}

// @ts-ignore: decorator
@inline function expired(expiresAt: f64): bool { return expiresAt > 0 && expiresAt <= now; }

/** Encode the viewed message as a PUBLISH for `conn`. False when it was not sent
 *  because it exceeds the client's Maximum Packet Size: such a message is dropped as
 *  if it had been sent [MQTT-3.1.2-25]. */
function sendView(conn: i32, qos: i32, retain: bool, dup: bool, packetId: i32, ids: usize, idCount: i32): bool {
  const c = connection(conn);
  const v5 = c.level == 5;
  let expiry: i64 = -1;
  let alias = 0;
  let newAlias = false;
  let hash: u64 = 0;
  let topicLen = vTopicLen;
  let propsLen = -1;
  if (v5) {
    // [MQTT-3.3.2-6] the expiry sent is what is left of it
    // (less a millisecond: `now + 30000 - now` may come out a hair above 30000 in floating point)
    if (vExpiresAt > 0) expiry = <i64><u32>max(Math.ceil((vExpiresAt - now - 1) / 1000), 0);
    if (c.aliasOutMax > 0) {
      const topic = viewTopic();
      hash = topicHash(topic, vTopicLen);
      alias = findOutboundAlias(conn, topic, vTopicLen, hash);
      if (alias > 0) topicLen = 0; // the alias alone stands for the topic
      else { alias = chooseOutboundAlias(conn, vTopicLen); newAlias = alias > 0; }
    }
    propsLen = publishPropsLength(expiry, alias, ids, idCount, vPropsLen);
  } else {
    idCount = 0;
  }
  if (<u32>publishPacketSize(qos, topicLen, propsLen, vPayloadLen) > c.maxPacketOut) {
    statAdd(Stat.DroppedTooLarge);
    return false;
  }
  if (newAlias) recordOutboundAlias(conn, alias, vTopic, vTopicLen, hash);
  writerStart(conn);
  writePublishHeader(qos, dup, retain, topicLen, propsLen, vPayloadLen);
  if (vTopic != 0) emit(vTopic, topicLen);
  else emitRange(vMsg, 0, topicLen); // straight from the store
  ensure(32);
  writePublishMiddle(qos, packetId, propsLen, expiry, alias, ids, idCount);
  if (vMsg >= 0) {
    const row = message(vMsg);
    if (v5) emitRange(vMsg, row.topicLen, row.propsLen);
    emitRange(vMsg, row.topicLen + row.propsLen, row.payloadLen);
  } else {
    if (v5) emit(vProps, vPropsLen);
    emit(vPayload, vPayloadLen);
  }
  flush();
  statAdd(Stat.MessagesSent);
  return true;
}

/** A packet id for the next outgoing QoS 1/2 PUBLISH, not used by any in-flight one. */
function nextPacketId(s: i32): i32 {
  const ss = session(s);
  while (true) {
    let id = ss.nextPacketId + 1;
    if (id > 0xFFFF) { id = 1; ss.wrapped = 1; }
    ss.nextPacketId = id;
    // ids are handed out in order, so before the first wrap none can be in use
    if (ss.wrapped == 0) return id;
    // an id is taken only by the first `inflight` deliveries; scan them
    let d = ss.queueHead;
    let taken = false;
    for (let k = 0; k < ss.inflight && d >= 0; k++) {
      if (delivery(d).packetId == id) { taken = true; break; }
      d = delivery(d).next;
    }
    if (!taken) return id;
  }
  return 1;
}

/** Send queued deliveries while the client's Receive Maximum allows [MQTT-4.9.0-2]. */
export function pump(s: i32): void {
  const conn = onlineConnection(s);
  if (conn < 0) return;
  const ss = session(s);
  const window = min(maxInflight, connection(conn).receiveMax);
  // the queued deliveries start after the in-flight ones
  let prev = ss.inflightTail;
  let d = prev >= 0 ? delivery(prev).next : ss.queueHead;
  while (d >= 0 && ss.inflight < window) {
    const row = delivery(d);
    const next = row.next;
    if (expired(message(row.msg).expiresAt)) {   // [MQTT-3.3.2-5]
      removeDelivery(s, d, prev);
      statAdd(Stat.DroppedExpired);
      d = next;
      continue;
    }
    row.packetId = nextPacketId(s);
    row.state = DeliveryState.Sent;
    ss.inflight++;
    ss.inflightTail = d;
    viewStored(row.msg);
    if (!sendView(conn, row.qos, row.retain != 0, false, row.packetId, deliveryIds(d), row.idCount)) {
      removeDelivery(s, d, prev); // too large for this client: done, as if delivered
      d = next;
      continue;
    }
    prev = d;
    d = next;
  }
}

/** After a session resumes: resend every unacknowledged PUBLISH with DUP=1 and its
 *  original packet id, and every pending PUBREL [MQTT-4.4.0-1], then send the queue. */
export function redeliver(s: i32): void {
  const conn = onlineConnection(s);
  if (conn < 0) return;
  const ss = session(s);
  let prev = -1;
  let d = ss.queueHead;
  let left = ss.inflight;
  while (left > 0 && d >= 0) {
    left--;
    const row = delivery(d);
    const next = row.next;
    if (row.state == DeliveryState.Sent) {
      viewStored(row.msg);
      if (!sendView(conn, row.qos, row.retain != 0, true, row.packetId, deliveryIds(d), row.idCount)) {
        // too large for the client's (new) Maximum Packet Size: done, as if delivered
        // [MQTT-3.1.2-25]; left in flight it would hold the queue for good
        removeDelivery(s, d, prev);
        d = next;
        continue;
      }
    } else {
      sendAck(conn, AckByte.PUBREL, row.packetId);
    }
    prev = d;
    d = next;
  }
  pump(s);
}

function dropped(s: i32, why: string): void {
  const ss = session(s);
  ss.dropped++;
  // one line for the first drop and then every 1000th, so a flood cannot flood the log
  if (logOn(LogLevel.Warning) && (ss.dropped == 1 || ss.dropped % 1000 == 0)) {
    logStart();
    logText("dropping messages for client ");
    logBytes(sessionId(s), ss.idLen);
    logText(": ");
    logText(why);
    logText(" (");
    logInt(ss.dropped);
    logText(" so far)");
    logEnd(LogLevel.Warning);
  }
}

/** Queue a QoS 1/2 delivery of stored message `m` to session `s` and send it if possible. */
export function deliverStored(s: i32, m: i32, qos: i32, retain: bool, ids: usize, idCount: i32): void {
  if (!enqueue(s, m, qos, retain, ids, idCount)) {
    statAdd(Stat.DroppedQueueFull);
    dropped(s, "queue full");
    return;
  }
  pump(s);
}

// Encode once per wire form [DESIGN §1]: during one fan-out, a QoS 0 PUBLISH that went
// out whole as one `send` is handed to the next recipient with the same wire form by
// `sendAgain`, without encoding or copying it again. The form is the protocol family
// and the RETAIN flag, for recipients that need nothing of their own in the packet
// (no subscription identifiers, no topic alias, no packet size limit below it).
let lastForm: i32 = 0;     // 0: nothing reusable
let lastPacket: u32 = 0;   // writer's packetsStarted when it was encoded

/** The wire-form key of a QoS 0 delivery to `conn`, or 0 if it must be encoded for it. */
function wireForm(conn: i32, retain: bool, idCount: i32): i32 {
  const c = connection(conn);
  if (c.level == 5 && (idCount > 0 || c.aliasOutMax > 0 || c.maxPacketOut != 0xFFFFFFFF)) return 0;
  return (c.level == 5 ? 2 : 1) | (retain ? 4 : 0);
}

/** Send the viewed message at QoS 0 to `s` now, unless it is offline or not reading. */
function deliverQos0(s: i32, retain: bool, ids: usize, idCount: i32): void {
  const conn = onlineConnection(s);
  if (conn < 0) return; // QoS 0 is not queued for offline sessions
  if (hostBacklog(conn) > <u32>maxBacklog) {
    statAdd(Stat.DroppedQos0Slow);
    dropped(s, "subscriber is not reading (QoS 0)");
    return;
  }
  const form = wireForm(conn, retain, idCount);
  if (form != 0 && form == lastForm && lastPacket == packetsStarted) {
    hostSendAgain(conn);
    statAdd(Stat.MessagesSent);
    return;
  }
  const sent = sendView(conn, 0, retain, false, 0, ids, idCount);
  lastForm = sent && form != 0 && sendsSinceStart == 1 ? form : 0;
  lastPacket = packetsStarted;
}

/** Deliver a retained message to one session that just subscribed: RETAIN=1
 *  [MQTT-3.3.1-8], with the new subscription's identifier. False if it has expired. */
export function deliverRetained(s: i32, m: i32, qos: i32, subId: i32): bool {
  if (expired(message(m).expiresAt)) return false;
  lastForm = 0; // another message than the one last encoded
  store<i32>(IDS, subId);
  const n = subId > 0 ? 1 : 0;
  if (qos == 0) { viewStored(m); deliverQos0(s, true, IDS, n); }
  else deliverStored(s, m, qos, true, IDS, n);
  return true;
}

function addTarget(sub: i32, targets: i32, idsUsed: i32): i32 {
  const row = subscription(sub);
  const ss = session(row.session);
  let added = 0;
  if (ss.matchEpoch != epoch) {
    ss.matchEpoch = epoch;
    ss.matchQos = row.qos;
    ss.matchRetain = (row.options & SubOption.RetainAsPublished) != 0 ? 1 : 0;
    ss.matchIds = -1;
    store<i32>(TARGETS + (<usize>targets << 2), row.session);
    added = 1;
  } else {
    if (row.qos > ss.matchQos) ss.matchQos = row.qos;
    if ((row.options & SubOption.RetainAsPublished) != 0) ss.matchRetain = 1;
  }
  if (row.subId > 0) {
    store<i32>(MATCH_ID + (<usize>idsUsed << 2), row.subId);
    store<i32>(MATCH_NEXT + (<usize>idsUsed << 2), ss.matchIds);
    ss.matchIds = idsUsed;
    added |= 2;
  }
  return added;
}

/** Fan one message out to every session with a matching subscription: one copy per
 *  session at the highest QoS of its matching subscriptions [MQTT-3.3.5-1], delivered
 *  at min(published QoS, granted QoS), carrying every matching subscription identifier
 *  [MQTT-3.3.4-3]; one member per shared subscription group. `stored` is the message
 *  if it is already in the store (retained, will), else -1 and topic, properties and
 *  payload are in linear memory. `publisher` is the publishing session (No Local).
 *  Returns the number of sessions it went to. */
export function route(topic: usize, topicLen: i32, props: usize, propsLen: i32, payload: usize, payloadLen: i32,
                      qos: i32, retain: bool, expiresAt: f64, stored: i32, publisher: i32): i32 {
  lastForm = 0; // a new message
  matchTopic(topic, topicLen);
  if (matchedCount == 0) return 0;
  epoch++;
  if (epoch == 0) epoch = 1;
  let targets = 0;
  let idsUsed = 0;
  for (let k = 0; k < matchedCount; k++) {
    let sub = node(matchedNode(k)).subs;
    // all subscriptions on a node share one filter: confirm the match once
    const first = subscription(sub);
    if (!topicMatches(topic, topicLen, subscriptionFilter(sub) + <usize>first.filterOffset,
                      first.filterLen - first.filterOffset)) continue;
    while (sub >= 0) {
      const row = subscription(sub);
      const nextSub = row.nodeNext;
      {
        let chosen = sub;
        if (row.group >= 0) {
          chosen = pickMember(row.group, epoch); // -1: the group already has this message
        } else if ((row.options & SubOption.NoLocal) != 0 && row.session == publisher) {
          chosen = -1;                           // [MQTT-3.8.3-3] No Local
        }
        if (chosen >= 0) {
          const added = addTarget(chosen, targets, idsUsed);
          targets += added & 1;
          idsUsed += added >> 1;
        }
      }
      sub = nextSub;
    }
  }
  let m = stored;
  let storeFailed = false;
  for (let k = 0; k < targets; k++) {
    const s = load<i32>(TARGETS + (<usize>k << 2));
    const ss = session(s);
    const q = min(qos, ss.matchQos);
    // [MQTT-3.3.1-12] [MQTT-3.3.1-13] live deliveries carry RETAIN only with Retain As Published
    const retainFlag = retain && ss.matchRetain != 0;
    let idCount = 0;
    for (let i = ss.matchIds; i >= 0; i = load<i32>(MATCH_NEXT + (<usize>i << 2))) {
      store<i32>(IDS + (<usize>idCount << 2), load<i32>(MATCH_ID + (<usize>i << 2)));
      idCount++;
    }
    if (q == 0) {
      // (re)set the view each time: a QoS 1/2 delivery above may have encoded another message
      if (stored >= 0) viewStored(stored);
      else viewRaw(topic, topicLen, props, propsLen, payload, payloadLen, expiresAt);
      deliverQos0(s, retainFlag, IDS, idCount);
      continue;
    }
    if (m < 0) {
      if (!storeFailed) {
        m = storeMessage(topic, topicLen, props, propsLen, payload, payloadLen, qos, retain ? 1 : 0, expiresAt);
        storeFailed = m < 0;
        // held for the rest of the fan-out: a delivery may complete (and release it) at once
        if (m >= 0) holdMessage(m);
      }
      if (m < 0) { statAdd(Stat.DroppedStoreFull); dropped(s, "message store full"); continue; }
    }
    deliverStored(s, m, q, retainFlag, IDS, idCount);
  }
  if (m >= 0 && stored < 0) releaseMessage(m);
  return targets;
}
