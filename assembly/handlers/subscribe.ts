// SUBSCRIBE: every pair is validated before any is acted on (a malformed packet
// changes nothing), then SUBACK, then the retained messages for each filter.

import { CloseReason } from "../host";
import { DecodeError } from "../codec/reader";
import { subscribeBegin, subscribeNext, subscribeError, subscribePacketId, filterPtr, filterLen,
         requestedQos } from "../codec/subscribe";
import { subackBegin, subackCode, subackEnd, SUBACK_FAILURE } from "../codec/suback";
import { validTopicFilter, topicMatches } from "../topics/validate";
import { connection } from "../session/connections";
import { subscribe, subscription, SUBSCRIBE_FAILED } from "../session/subscriptions";
import { closeConnection } from "../session/lifecycle";
import { retainedHighWater, retainedRow } from "../store/retained";
import { message, copyOut } from "../store/messages";
import { deliverRetained } from "../delivery";
import { TOPIC_MAX } from "../config";

const TOPIC_SCRATCH = memory.data(TOPIC_MAX + 1, 8);

function fail(conn: i32, r: i32): void {
  closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError);
}

export function handleSubscribe(conn: i32, body: usize, limit: usize): void {
  let r = subscribeBegin(body, limit);
  if (r < 0) { fail(conn, r); return; }
  let count = 0;
  while (subscribeNext()) count++;
  r = subscribeError();
  if (r < 0) { fail(conn, r); return; }

  const s = connection(conn).session;
  const packetId = subscribePacketId;
  subackBegin(packetId, count);
  subscribeBegin(body, limit);
  while (subscribeNext()) {
    // an invalid filter or a full table is answered with 0x80 for that filter
    if (!validTopicFilter(filterPtr, filterLen)) { subackCode(SUBACK_FAILURE); continue; }
    const row = subscribe(s, filterPtr, filterLen, requestedQos);
    // [MQTT-3.9.3-1] one code per filter, in order; we grant the QoS asked for
    subackCode(row == SUBSCRIBE_FAILED ? SUBACK_FAILURE : requestedQos);
  }
  subackEnd(conn);

  // [MQTT-3.3.1-6] [MQTT-3.8.4-3] retained messages matching each new filter
  subscribeBegin(body, limit);
  while (subscribeNext()) {
    if (!validTopicFilter(filterPtr, filterLen)) continue;
    sendRetained(s, filterPtr, filterLen, requestedQos);
  }
}

function sendRetained(s: i32, filter: usize, len: i32, granted: i32): void {
  for (let i = 0, n = retainedHighWater(); i < n; i++) {
    const r = retainedRow(i);
    if (r.used == 0) continue;
    const m = r.msg;
    const row = message(m);
    copyOut(m, 0, TOPIC_SCRATCH, row.topicLen);
    if (!topicMatches(TOPIC_SCRATCH, row.topicLen, filter, len)) continue;
    deliverRetained(s, m, min(row.qos, granted));
  }
}
