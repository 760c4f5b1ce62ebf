// Retained replays, paced (DESIGN §5): the retained messages a new subscription asks
// for are a burst the broker makes itself, so they are never cut by the slow-subscriber
// rule. Each subscription with a replay going keeps a cursor (the next row of the
// retained table); the replay goes on while the subscriber has fewer unsent bytes
// than the hold line and room in its QoS 1/2 queue, and stops until its socket drains
// or it acknowledges something. A subscriber that reads slowly gets all of them, later.

import { hostBacklog } from "../host";
import { maxQueued } from "../settings";
import { connection } from "../session/connections";
import { session } from "../session/sessions";
import { subscription, subscriptionFilter } from "../session/subscriptions";
import { retainedHighWater, retainedRow, clearRetainedRow } from "../store/retained";
import { message, copyOut } from "../store/messages";
import { topicMatches } from "../topics/validate";
import { ROUTE_TOPIC } from "../memory/scratch";
import { deliverRetained } from "../delivery/route";
import { holdLine } from "./holds";
import { aclAllows, Access, Reach } from "../auth/acl";

/** Start (or restart, for a repeated SUBSCRIBE) the replay of subscription `sub`. */
export function startReplay(conn: i32, sub: i32): void {
  const row = subscription(sub);
  if (row.replayPos < 0) connection(conn).replays++;
  row.replayPos = 0;
}

/** A subscription with a replay going was removed. */
export function replayDropped(s: i32): void {
  const conn = session(s).conn;
  if (conn >= 0) connection(conn).replays--;
}

/** The connection left its session: replays end with it (a resumed session gets the
 *  retained messages again only by subscribing again). */
export function endReplays(conn: i32, s: i32): void {
  const c = connection(conn);
  if (c.replays == 0) return;
  for (let sub = session(s).subs; sub >= 0; sub = subscription(sub).sessionNext) subscription(sub).replayPos = -1;
  c.replays = 0;
}

// @ts-ignore: decorator
@inline function hasRoom(conn: i32, s: i32): bool {
  return session(s).queued < maxQueued && hostBacklog(conn) <= holdLine();
}

/** Send what the subscriber has room for. Called after SUBACK, when its socket
 *  drains, when it acknowledges, and from the tick. */
export function continueReplays(conn: i32): void {
  const c = connection(conn);
  if (c.replays == 0) return;
  const s = c.session;
  if (s < 0) return;
  const end = retainedHighWater();
  for (let sub = session(s).subs; sub >= 0 && c.replays > 0; sub = subscription(sub).sessionNext) {
    const row = subscription(sub);
    if (row.replayPos < 0) continue;
    const filter = subscriptionFilter(sub);
    while (row.replayPos < end) {
      if (!hasRoom(conn, s)) return;
      const i = row.replayPos++;
      const r = retainedRow(i);
      if (r.used == 0) continue;
      const m = r.msg;
      const msg = message(m);
      copyOut(m, 0, ROUTE_TOPIC, msg.topicLen);
      if (!topicMatches(ROUTE_TOPIC, msg.topicLen, filter, row.filterLen)) continue;
      if (row.reach != Reach.All && !aclAllows(s, ROUTE_TOPIC, msg.topicLen, Access.Read)) continue;
      // [MQTT-3.3.1-6] [MQTT-3.8.4-3]; an expired retained message is removed instead [MQTT-3.3.2-5]
      if (!deliverRetained(s, m, min(msg.qos, row.qos), row.subId)) clearRetainedRow(i);
    }
    row.replayPos = -1;
    c.replays--;
  }
}
