// SUBSCRIBE: every pair is validated before any is acted on (a malformed packet
// changes nothing), then SUBACK, then the retained messages for each filter as its
// Retain Handling asks (a paced replay: flow/replay.ts).

import { DecodeError } from "../codec/reader";
import { subscribeBegin, subscribeNext, subscribeError, subscribePacketId, subscribeId, filterPtr,
         filterLen, requestedQos, subscribeOptions, retainHandling } from "../codec/subscribe";
import { subackBegin, subackCode, subackEnd, SUBACK_FAILURE, SUBACK_FILTER_INVALID,
         SUBACK_QUOTA_EXCEEDED, SUBACK_NOT_AUTHORIZED } from "../codec/suback";
import { validTopicFilter } from "../topics/validate";
import { sharePrefixLength } from "../topics/shared";
import { connection } from "../session/connections";
import { subscribe, subscribedNew, subscription, SUBSCRIBE_FAILED, SubOption } from "../session/subscriptions";
import { closeForDecodeError } from "../session/lifecycle";
import { startReplay, continueReplays } from "../flow/replay";
import { aclReach, Reach } from "../auth/acl";
import { statAdd, Stat } from "../stats";

/** For a valid filter: where the topic filter proper starts (after "$share/{name}/"),
 *  else -1. */
function filterStart(ptr: usize, len: i32): i32 {
  const offset = sharePrefixLength(ptr, len);
  if (offset < 0) return -1;
  if (!validTopicFilter(ptr + <usize>offset, len - offset)) return -1;
  return offset;
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
  let anyRetainedWanted = false;
  subackBegin(conn, subscribePacketId, count, v5);
  subscribeBegin(body, limit, v5);
  while (subscribeNext()) {
    const offset = filterStart(filterPtr, filterLen);
    // the ACL file: a filter that can reach no topic its client may read is refused
    // (Mosquitto 2 grants it and delivers nothing); one that reaches some is checked
    // at each delivery (auth/acl.ts)
    const reach = offset < 0 ? Reach.Nothing : aclReach(s, filterPtr + <usize>offset, filterLen - offset);
    if (offset < 0) {
      subackCode(v5 ? SUBACK_FILTER_INVALID : SUBACK_FAILURE);
    } else if (reach == Reach.Nothing) {
      statAdd(Stat.DeniedSubscriptions);
      subackCode(v5 ? SUBACK_NOT_AUTHORIZED : SUBACK_FAILURE);
    } else {
      // another broker's bridge (try_private): not sent its own messages back, and retained
      // flags as published (what Mosquitto does for it)
      const options = c.fromBridge != 0 && offset == 0 ? subscribeOptions | SubOption.NoLocal | SubOption.RetainAsPublished : subscribeOptions;
      const row = subscribe(s, filterPtr, filterLen, offset, requestedQos, options, subId);
      if (row == SUBSCRIBE_FAILED) {
        subackCode(v5 ? SUBACK_QUOTA_EXCEEDED : SUBACK_FAILURE);
      } else {
        subscription(row).reach = reach;
        // [MQTT-3.9.3-1] one code per filter, in order; we grant the QoS asked for
        subackCode(requestedQos);
        // Retain Handling 0: always, 1: only for a new subscription, 2: never;
        // none for a shared subscription
        if (offset == 0 && (retainHandling == 0 || (retainHandling == 1 && subscribedNew))) {
          startReplay(conn, row); // sent after the SUBACK
          anyRetainedWanted = true;
        }
      }
    }
  }
  subackEnd();

  // [MQTT-3.3.1-6] [MQTT-3.8.4-3] retained messages matching each new filter, paced
  // by the subscriber's socket (flow/replay.ts)
  if (anyRetainedWanted) continueReplays(conn);
}
