// Fan-out: one PUBLISH to every session with a matching subscription, at the highest
// QoS among its matching subscriptions, with every matching subscription identifier;
// one member per shared subscription group. Live QoS 0 goes out at once, QoS 1/2
// through the session's queue (outbound.ts); a target that is behind makes the
// publisher wait (flow/holds.ts).

import { MAX_SESSIONS, MAX_SUBSCRIPTIONS } from "../config";
import { hostBacklog } from "../host";
import { now } from "../clock";
import { matchTopic, matchedCount, matchedNode, node } from "../topics/matcher";
import { topicMatches } from "../topics/validate";
import { pickMember } from "../topics/shared";
import { subscription, subscriptionFilter, SubOption } from "../session/subscriptions";
import { session } from "../session/sessions";
import { message, storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { noteTarget, dropsQos0 } from "../flow/holds";
import { viewRaw, viewStored, viewNothing, sendViewQos0 } from "./encode";
import { onlineConnection, deliverStored, dropped } from "./outbound";
import { statAdd, Stat } from "../stats";
import { aclAllowsRead, Reach } from "../auth/acl";

const TARGETS = memory.data(MAX_SESSIONS * 4, 8);
// subscription identifiers of the current fan-out, chained per target session
const MATCH_ID = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
const MATCH_NEXT = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
// the identifiers for one recipient, contiguous
const IDS = memory.data(MAX_SUBSCRIPTIONS * 4, 8);
let epoch: u32 = 0;

export function deliveryScratchBytes(): i32 { return MAX_SESSIONS * 4 + MAX_SUBSCRIPTIONS * 12; }

// @ts-ignore: decorator
@inline function expired(expiresAt: f64): bool { return expiresAt > 0 && expiresAt <= now; }

/** Send the viewed message at QoS 0 to `s` now, unless it is offline or lagging.
 *  Returns its connection's backlog before the send (0 when offline). */
function deliverQos0(s: i32, retain: bool, ids: usize, idCount: i32): u32 {
  const conn = onlineConnection(s);
  if (conn < 0) return 0; // QoS 0 is not queued for offline sessions
  const backlog = hostBacklog(conn);
  if (dropsQos0(conn, backlog)) {
    statAdd(Stat.DroppedQos0Slow);
    dropped(s, "subscriber is lagging behind (QoS 0)");
    return backlog;
  }
  sendViewQos0(conn, retain, ids, idCount);
  return backlog;
}

/** Deliver a retained message to one session that just subscribed: RETAIN=1
 *  [MQTT-3.3.1-8], with the new subscription's identifier. False if it has expired. */
export function deliverRetained(s: i32, m: i32, qos: i32, subId: i32): bool {
  if (expired(message(m).expiresAt)) return false;
  store<i32>(IDS, subId);
  const n = subId > 0 ? 1 : 0;
  if (qos == 0) { viewStored(m); deliverQos0(s, true, IDS, n); }
  else deliverStored(s, m, qos, true, IDS, n);
  return true;
}

/** After a live delivery to `s`: is it behind, so that its publisher should wait?
 *  `backlog`: its connection's, if already known (QoS 0), else -1. */
function noteDelivered(s: i32, publisherConn: i32, backlog: i64): void {
  const conn = onlineConnection(s);
  if (conn < 0) return;
  noteTarget(conn, publisherConn, backlog >= 0 ? <u32>backlog : hostBacklog(conn), session(s).queued);
}

/** The ACL file: may the session of subscription `sub` (which reaches only some topics)
 *  read this one? (A section's rules are worked out once per message: auth/acl.ts.) */
function mayRead(sub: i32, topic: usize, topicLen: i32): bool {
  const row = subscription(sub);
  return row.reach != Reach.Nothing && aclAllowsRead(row.session, topic, topicLen, epoch);
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
  viewNothing(); // a new message
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
        if (chosen >= 0 && subscription(chosen).reach != Reach.All && !mayRead(chosen, topic, topicLen)) chosen = -1;
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
  const publisherConn = publisher >= 0 ? onlineConnection(publisher) : -1;
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
      // (the backlog before this message: one import call per target, not two)
      noteDelivered(s, publisherConn, deliverQos0(s, retainFlag, IDS, idCount));
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
    noteDelivered(s, publisherConn, -1);
  }
  if (m >= 0 && stored < 0) releaseMessage(m);
  return targets;
}
