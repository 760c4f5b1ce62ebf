// SUBSCRIBE: every pair is validated before any is acted on (a malformed packet
// changes nothing), then SUBACK, then the retained messages for each filter as its
// Retain Handling asks.

import { CloseReason } from "../host";
import { DecodeError } from "../codec/reader";
import { subscribeBegin, subscribeNext, subscribeError, subscribePacketId, subscribeId, filterPtr,
         filterLen, requestedQos, subscribeOptions, retainHandling } from "../codec/subscribe";
import { subackBegin, subackCode, subackEnd, SUBACK_FAILURE, SUBACK_FILTER_INVALID,
         SUBACK_QUOTA_EXCEEDED } from "../codec/suback";
import { validTopicFilter, topicMatches } from "../topics/validate";
import { sharePrefixLength } from "../topics/shared";
import { connection } from "../session/connections";
import { subscribe, subscribedNew, SUBSCRIBE_FAILED, SubOption } from "../session/subscriptions";
import { closeConnection, closeForDecodeError } from "../session/lifecycle";
import { retainedHighWater, retainedRow, clearRetainedRow } from "../store/retained";
import { message, copyOut } from "../store/messages";
import { deliverRetained } from "../delivery";
import { ROUTE_TOPIC } from "../memory/scratch";
import { PACKET_MAX } from "../config";

function fail(conn: i32, r: i32): void {
  closeForDecodeError(conn, r);
}

/** For a valid filter: where the topic filter proper starts (after "$share/{name}/"),
 *  else -1. */
function filterStart(ptr: usize, len: i32): i32 {
  const offset = sharePrefixLength(ptr, len);
  if (offset < 0) return -1;
  if (!validTopicFilter(ptr + <usize>offset, len - offset)) return -1;
  return offset;
}

// Which filters of the packet get retained messages: bit k for filter k. A pair takes at
// least 3 bytes, so PACKET_MAX / 3 bits cover the largest SUBSCRIBE.
const WANTS_RETAINED = memory.data(PACKET_MAX / 24 + 8, 8);
let anyRetainedWanted = false;

// @ts-ignore: decorator
@inline function markWanted(k: i32): void {
  const p = WANTS_RETAINED + <usize>(k >> 3);
  store<u8>(p, <u8>(<i32>load<u8>(p) | (1 << (k & 7))));
}
// @ts-ignore: decorator
@inline function wanted(k: i32): bool {
  return ((<i32>load<u8>(WANTS_RETAINED + <usize>(k >> 3))) & (1 << (k & 7))) != 0;
}

export function handleSubscribe(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  let r = subscribeBegin(body, limit, v5);
  if (r < 0) { closeForDecodeError(conn, r); return; }
  let count = 0;
  while (subscribeNext()) {
    // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error
    if ((subscribeOptions & SubOption.NoLocal) != 0 && sharePrefixLength(filterPtr, filterLen) > 0) {
      closeForDecodeError(conn, DecodeError.Protocol);
      return;
    }
    count++;
  }
  r = subscribeError();
  if (r < 0) { closeForDecodeError(conn, r); return; }

  const s = c.session;
  const subId = subscribeId;
  anyRetainedWanted = false;
  memory.fill(WANTS_RETAINED, 0, <usize>((count + 7) >> 3));
  subackBegin(conn, subscribePacketId, count, v5);
  subscribeBegin(body, limit, v5);
  let k = 0;
  while (subscribeNext()) {
    const offset = filterStart(filterPtr, filterLen);
    if (offset < 0) {
      subackCode(v5 ? SUBACK_FILTER_INVALID : SUBACK_FAILURE);
    } else {
      const row = subscribe(s, filterPtr, filterLen, offset, requestedQos, subscribeOptions, subId);
      if (row == SUBSCRIBE_FAILED) {
        subackCode(v5 ? SUBACK_QUOTA_EXCEEDED : SUBACK_FAILURE);
      } else {
        // [MQTT-3.9.3-1] one code per filter, in order; we grant the QoS asked for
        subackCode(requestedQos);
        // Retain Handling 0: always, 1: only for a new subscription, 2: never;
        // none for a shared subscription
        if (offset == 0 && (retainHandling == 0 || (retainHandling == 1 && subscribedNew))) {
          markWanted(k);
          anyRetainedWanted = true;
        }
      }
    }
    k++;
  }
  subackEnd();

  // [MQTT-3.3.1-6] [MQTT-3.8.4-3] retained messages matching each new filter
  if (!anyRetainedWanted) return;
  subscribeBegin(body, limit, v5);
  k = 0;
  while (subscribeNext()) {
    if (wanted(k)) {
      sendRetained(s, filterPtr, filterLen, requestedQos, subId);
    }
    k++;
  }
}

function sendRetained(s: i32, filter: usize, len: i32, granted: i32, subId: i32): void {
  for (let i = 0, n = retainedHighWater(); i < n; i++) {
    const r = retainedRow(i);
    if (r.used == 0) continue;
    const m = r.msg;
    const row = message(m);
    copyOut(m, 0, ROUTE_TOPIC, row.topicLen);
    if (!topicMatches(ROUTE_TOPIC, row.topicLen, filter, len)) continue;
    // an expired retained message is removed instead [MQTT-3.3.2-5]
    if (!deliverRetained(s, m, min(row.qos, granted), subId)) clearRetainedRow(i);
  }
}
