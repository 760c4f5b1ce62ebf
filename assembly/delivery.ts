// Outgoing messages: fan-out of one PUBLISH to every matching session, and the
// per-session flow of QoS 1/2 deliveries (send in order, at most INFLIGHT_MAX
// unacknowledged, redeliver on reconnect).

import { MAX_SESSIONS, INFLIGHT_MAX, BACKLOG_MAX } from "./config";
import { hostSend, hostBacklog } from "./host";
import { writerStart, writeBytes, writeU16, flush, wpos, skipWritten } from "./codec/writer";
import { writePublishHeader } from "./codec/publish";
import { sendAck, AckByte } from "./codec/ack";
import { matchTopic, matchedCount, matchedNode, node } from "./topics/matcher";
import { topicMatches } from "./topics/validate";
import { subscription, subscriptionFilter } from "./session/subscriptions";
import { session } from "./session/clients";
import { connection, ConnState } from "./session/connections";
import { enqueue, delivery, DeliveryState } from "./session/queue";
import { message, storeMessage, freeMessage, copyOut, sendPayload } from "./store/messages";
import { statAdd, Stat } from "./stats";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "./log";
import { LogLevel } from "./host";
import { sessionId } from "./session/clients";

const TARGETS = memory.data(MAX_SESSIONS * 4, 8);
let epoch: u32 = 0;

/** The connection a session can be sent to now, or -1. */
export function onlineConnection(s: i32): i32 {
  const c = session(s).conn;
  if (c < 0 || connection(c).state != ConnState.Connected) return -1;
  return c;
}

/** Send a PUBLISH whose topic and payload are in linear memory (the input buffer). */
export function sendPublishFrom(conn: i32, topic: usize, topicLen: i32, payload: usize, payloadLen: i32,
                                qos: i32, retain: bool, dup: bool, packetId: i32): void {
  writerStart();
  writePublishHeader(qos, dup, retain, topicLen, payloadLen);
  writeBytes(topic, topicLen);
  if (qos > 0) writeU16(packetId);
  if (payloadLen <= 256) { writeBytes(payload, payloadLen); flush(conn); }
  else { flush(conn); hostSend(conn, payload, <u32>payloadLen); }
  statAdd(Stat.MessagesSent);
}

/** Send a PUBLISH of a stored message. */
export function sendPublishStored(conn: i32, m: i32, qos: i32, retain: bool, dup: bool, packetId: i32): void {
  const row = message(m);
  writerStart();
  writePublishHeader(qos, dup, retain, row.topicLen, row.payloadLen);
  copyOut(m, 0, wpos, row.topicLen);
  skipWritten(row.topicLen);
  if (qos > 0) writeU16(packetId);
  flush(conn);
  sendPayload(conn, m);
  statAdd(Stat.MessagesSent);
}


/** A packet id for the next outgoing QoS 1/2 PUBLISH, not used by any in-flight one. */
function nextPacketId(s: i32): i32 {
  const ss = session(s);
  while (true) {
    let id = ss.nextPacketId + 1;
    if (id > 0xFFFF) id = 1;
    ss.nextPacketId = id;
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

/** Send queued deliveries while the in-flight window has room. */
export function pump(s: i32): void {
  const conn = onlineConnection(s);
  if (conn < 0) return;
  const ss = session(s);
  // skip the in-flight prefix
  let d = ss.queueHead;
  for (let k = 0; k < ss.inflight && d >= 0; k++) d = delivery(d).next;
  while (d >= 0 && ss.inflight < INFLIGHT_MAX) {
    const row = delivery(d);
    row.packetId = nextPacketId(s);
    row.state = DeliveryState.Sent;
    ss.inflight++;
    sendPublishStored(conn, row.msg, row.qos, row.retain != 0, false, row.packetId);
    d = row.next;
  }
}

/** After a session resumes: resend every unacknowledged PUBLISH with DUP=1 and its
 *  original packet id, and every pending PUBREL [MQTT-4.4.0-1], then send the queue. */
export function redeliver(s: i32): void {
  const conn = onlineConnection(s);
  if (conn < 0) return;
  const ss = session(s);
  let d = ss.queueHead;
  for (let k = 0; k < ss.inflight && d >= 0; k++) {
    const row = delivery(d);
    if (row.state == DeliveryState.Sent) {
      sendPublishStored(conn, row.msg, row.qos, row.retain != 0, true, row.packetId);
    } else {
      sendAck(conn, AckByte.PUBREL, row.packetId);
    }
    d = row.next;
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
export function deliverStored(s: i32, m: i32, qos: i32, retain: bool): void {
  if (!enqueue(s, m, qos, retain)) {
    statAdd(Stat.DroppedQueueFull);
    dropped(s, "queue full");
    return;
  }
  pump(s);
}

/** Send a QoS 0 message to `s` now, unless it is offline or not reading. */
function deliverQos0(s: i32, topic: usize, topicLen: i32, payload: usize, payloadLen: i32,
                     stored: i32, retain: bool): void {
  const conn = onlineConnection(s);
  if (conn < 0) return; // QoS 0 is not queued for offline sessions
  if (hostBacklog(conn) > <u32>BACKLOG_MAX) {
    statAdd(Stat.DroppedQos0Slow);
    dropped(s, "subscriber is not reading (QoS 0)");
    return;
  }
  if (stored >= 0) sendPublishStored(conn, stored, 0, retain, false, 0);
  else sendPublishFrom(conn, topic, topicLen, payload, payloadLen, 0, retain, false, 0);
}

/** Deliver a retained message to one session that just subscribed (RETAIN=1). */
export function deliverRetained(s: i32, m: i32, qos: i32): void {
  if (qos == 0) deliverQos0(s, 0, 0, 0, 0, m, true);
  else deliverStored(s, m, qos, true);
}

/** Fan one message out to every session with a matching subscription: one copy per
 *  session at the highest QoS of its matching subscriptions [MQTT-3.3.5-1], delivered
 *  at min(published QoS, granted QoS). `stored` is the message if it is already in the
 *  store (retained, will), else -1 and the topic/payload are in the input buffer. */
export function route(topic: usize, topicLen: i32, payload: usize, payloadLen: i32,
                      qos: i32, stored: i32): void {
  matchTopic(topic, topicLen);
  if (matchedCount == 0) return;
  epoch++;
  if (epoch == 0) epoch = 1;
  let targets = 0;
  for (let k = 0; k < matchedCount; k++) {
    let sub = node(matchedNode(k)).subs;
    while (sub >= 0) {
      const row = subscription(sub);
      if (topicMatches(topic, topicLen, subscriptionFilter(sub), row.filterLen)) {
        const ss = session(row.session);
        if (ss.matchEpoch != epoch) {
          ss.matchEpoch = epoch;
          ss.matchQos = row.qos;
          store<i32>(TARGETS + (<usize>targets << 2), row.session);
          targets++;
        } else if (row.qos > ss.matchQos) {
          ss.matchQos = row.qos;
        }
      }
      sub = row.nodeNext;
    }
  }
  let m = stored;
  let storeFailed = false;
  for (let k = 0; k < targets; k++) {
    const s = load<i32>(TARGETS + (<usize>k << 2));
    const q = min(qos, session(s).matchQos);
    if (q == 0) {
      deliverQos0(s, topic, topicLen, payload, payloadLen, stored, false);
      continue;
    }
    if (m < 0) {
      if (storeFailed) { statAdd(Stat.DroppedStoreFull); dropped(s, "message store full"); continue; }
      m = storeMessage(topic, topicLen, payload, payloadLen, qos, 0);
      if (m < 0) { storeFailed = true; statAdd(Stat.DroppedStoreFull); dropped(s, "message store full"); continue; }
    }
    deliverStored(s, m, q, false);
  }
  if (m >= 0 && stored < 0 && message(m).refs == 0) freeMessage(m);
}
