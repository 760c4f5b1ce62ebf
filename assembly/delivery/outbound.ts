// The per-session flow of QoS 1/2 deliveries: queued in order, sent within the
// client's Receive Maximum [MQTT-4.9.0-2], redelivered on reconnect with DUP and their
// packet ids [MQTT-4.4.0-1]. A full queue drops only for a session that is offline or
// stalled; an online one that reads makes its publishers wait (flow/holds.ts).

import { LogLevel } from "../host";
import { now } from "../clock";
import { maxInflight } from "../settings";
import { sendAck, AckByte } from "../codec/ack";
import { session, sessionId, logSessionName } from "../session/sessions";
import { connection, ConnState } from "../session/connections";
import { enqueue, delivery, deliveryIds, removeDelivery, DeliveryState } from "../session/queue";
import { message } from "../store/messages";
import { dropsQueued } from "../flow/holds";
import { viewStored, sendView } from "./encode";
import { statAdd, Stat } from "../stats";
import { PERSISTENCE } from "../config";
import { journalSent } from "../persist/journal";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "../log";

/** The connection a session can be sent to now, or -1. */
export function onlineConnection(s: i32): i32 {
  const c = session(s).conn;
  if (c < 0 || connection(c).state != ConnState.Connected) return -1;
  return c;
}

// @ts-ignore: decorator
@inline function expired(expiresAt: f64): bool { return expiresAt > 0 && expiresAt <= now; }

/** A packet id for the next outgoing QoS 1/2 PUBLISH, not used by any in-flight one. */
export function nextPacketId(s: i32): i32 {
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
    if (PERSISTENCE) journalSent(s, d);
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

/** Count and (rate-limited) log a message not delivered to session `s`. */
export function dropped(s: i32, why: string): void {
  const ss = session(s);
  ss.dropped++;
  // one line for the first drop and then every 1000th, so a flood cannot flood the log
  if (logOn(LogLevel.Warning) && (ss.dropped == 1 || ss.dropped % 1000 == 0)) {
    logStart();
    logText("dropping messages for ");
    logSessionName(s);
    logText(": ");
    logText(why);
    logText(" (");
    logInt(ss.dropped);
    logText(" so far)");
    logEnd(LogLevel.Warning);
  }
}

/** Queue a QoS 1/2 delivery of stored message `m` to session `s` and send it if
 *  possible. A full queue drops it only for a session that is offline or stalled: an
 *  online one that reads makes the publisher wait instead (flow/holds.ts). */
export function deliverStored(s: i32, m: i32, qos: i32, retain: bool, ids: usize, idCount: i32): void {
  if (dropsQueued(s)) {
    statAdd(Stat.DroppedQueueFull);
    dropped(s, session(s).conn < 0 ? "queue full (offline)" : "queue full (subscriber stalled)");
    return;
  }
  if (!enqueue(s, m, qos, retain, ids, idCount)) {
    statAdd(Stat.DroppedQueueFull);
    dropped(s, "delivery table full");
    return;
  }
  pump(s);
}
