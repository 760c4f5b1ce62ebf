// Subscriptions: one row per (session, filter). A row sits in two doubly linked
// lists: the subscribers of its trie node (for fan-out) and the subscriptions of its
// session (for clean-up). The whole filter is kept inline to confirm matches; for a
// shared subscription ("$share/{group}/{filter}") the trie node is that of {filter}
// and the row is a member of its share group (topics/shared.ts keeps the groups and
// their member lists; the row notes only which group).
//
//   Subscription row (MAX_SUBSCRIPTIONS rows, SUB_STRIDE bytes each)
//   ┌──────┬─────────┬──────┬─────┬─────────┬───────┬───────┬───────────────┬──────────────────┬──────────────┐
//   │ link │ session │ node │ qos │ options │ subId │ group │ node/session  │ filterLen/Offset │ filter bytes │
//   │      │         │      │     │         │       │       │ links         │                  │              │
//   └──────┴─────────┴──────┴─────┴─────────┴───────┴───────┴───────────────┴──────────────────┴──────────────┘

import { MAX_SUBSCRIPTIONS, FILTER_MAX } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { node, nodeForFilter, prune } from "../topics/matcher";
import { session } from "./sessions";
import { joinGroup, leaveGroup } from "../topics/shared";
import { statAdd, Stat } from "../stats";
import { replayDropped } from "../flow/replay";
import { PERSISTENCE } from "../config";
import { journalSubscribe, journalUnsubscribe } from "../persist/journal";

export const enum SubOption { NoLocal = 4, RetainAsPublished = 8 }

// @ts-ignore: decorator
@unmanaged @final export class Subscription {
  link: i32;
  session: i32;
  node: i32;
  qos: i32;          // maximum QoS granted
  options: i32;      // SubOption bits (MQTT 5)
  subId: i32;        // Subscription Identifier, 0 = none (MQTT 5)
  group: i32;        // share group row, -1 for an ordinary subscription
  nodeNext: i32;
  nodePrev: i32;
  sessionNext: i32;
  sessionPrev: i32;
  filterLen: i32;    // the whole filter as subscribed, "$share/g/" included
  filterOffset: i32; // where the topic filter proper starts (after "$share/g/")
  replayPos: i32;    // retained replay in progress: the next retained row to look at (-1: none)
  reach: i32;        // ACL file: which topics it may receive (auth/acl.ts Reach: 2 all, 1 some)
}

// @ts-ignore: decorator
@inline const FILTER_OFFSET: usize = offsetof<Subscription>();
// @ts-ignore: decorator
@inline const SUB_STRIDE: usize = (FILTER_OFFSET + <usize>FILTER_MAX + 7) & ~7;

const subscriptions: Pool = poolDescriptor();
const SUB_BASE = memory.data(MAX_SUBSCRIPTIONS * <i32>SUB_STRIDE, 8);

export function subscriptionsInit(): void {
  poolInit(subscriptions, SUB_BASE, SUB_STRIDE, MAX_SUBSCRIPTIONS);
}

// @ts-ignore: decorator
@inline export function subscription(i: i32): Subscription {
  return changetype<Subscription>(SUB_BASE + <usize>i * SUB_STRIDE);
}

/** The whole filter as subscribed. */
// @ts-ignore: decorator
@inline export function subscriptionFilter(i: i32): usize { return SUB_BASE + <usize>i * SUB_STRIDE + FILTER_OFFSET; }

export function subscriptionsInUse(): i32 { return subscriptions.used; }
export function subscriptionTableBytes(): i32 { return MAX_SUBSCRIPTIONS * <i32>SUB_STRIDE; }

/** The session's subscription on the node with exactly this filter, or -1. */
function findOnNode(n: i32, s: i32, filter: usize, len: i32): i32 {
  let i = node(n).subs;
  while (i >= 0) {
    const row = subscription(i);
    if (row.session == s && row.filterLen == len &&
        memory.compare(subscriptionFilter(i), filter, <usize>len) == 0) return i;
    i = row.nodeNext;
  }
  return -1;
}

/** The share group on node `n` named like `filter` (whose first `offset` bytes are
 *  "$share/{name}/"), or -1: every group's members subscribe on its filter's node. */
function groupOnNode(n: i32, filter: usize, offset: i32): i32 {
  let i = node(n).subs;
  while (i >= 0) {
    const row = subscription(i);
    if (row.group >= 0 && row.filterOffset == offset &&
        memory.compare(subscriptionFilter(i), filter, <usize>offset) == 0) return row.group;
    i = row.nodeNext;
  }
  return -1;
}

export const SUBSCRIBE_FAILED: i32 = -1;
/** Set by `subscribe`: whether the subscription did not exist before (Retain Handling 1). */
export let subscribedNew: bool = false;

/** Add or replace [MQTT-3.8.4-3] a subscription. `offset` is where the topic filter
 *  starts inside `filter` (after "$share/{group}/", else 0). Returns the row, or
 *  SUBSCRIBE_FAILED when a table is full or the filter is longer than FILTER_MAX. */
export function subscribe(s: i32, filter: usize, len: i32, offset: i32, qos: i32, options: i32, subId: i32): i32 {
  subscribedNew = false;
  if (len > FILTER_MAX) return SUBSCRIBE_FAILED;
  const n = nodeForFilter(filter + <usize>offset, len - offset, true);
  if (n < 0) return SUBSCRIBE_FAILED;
  // Every subscription on a node has the same topic filter, so a match is confirmed
  // once per node. Two different filters on one node would mean a 64-bit hash
  // collision along the path: refused rather than ever risking a wrong delivery.
  const first = node(n).subs;
  if (first >= 0) {
    const other = subscription(first);
    if (other.filterLen - other.filterOffset != len - offset ||
        memory.compare(subscriptionFilter(first) + <usize>other.filterOffset, filter + <usize>offset,
                       <usize>(len - offset)) != 0) return SUBSCRIBE_FAILED;
  }
  const existing = findOnNode(n, s, filter, len);
  if (existing >= 0) {
    const row = subscription(existing);
    row.qos = qos; row.options = options; row.subId = subId;
    if (PERSISTENCE) journalSubscribe(s, existing);
    return existing;
  }
  const i = poolAlloc(subscriptions);
  if (i < 0) { prune(n); return SUBSCRIBE_FAILED; }
  const row = subscription(i);
  row.session = s; row.node = n; row.qos = qos; row.options = options; row.subId = subId;
  row.filterLen = len; row.filterOffset = offset; row.group = -1; row.replayPos = -1; row.reach = 2;
  memory.copy(subscriptionFilter(i), filter, <usize>len);
  if (offset > 0) {
    row.group = joinGroup(groupOnNode(n, filter, offset), i, s);
    if (row.group < 0) {
      poolFree(subscriptions, i);
      prune(n);
      return SUBSCRIBE_FAILED;
    }
  }
  // link into the node's list
  const nd = node(n);
  row.nodePrev = -1; row.nodeNext = nd.subs;
  if (nd.subs >= 0) subscription(nd.subs).nodePrev = i;
  nd.subs = i;
  // and into the session's list
  const ss = session(s);
  row.sessionPrev = -1; row.sessionNext = ss.subs;
  if (ss.subs >= 0) subscription(ss.subs).sessionPrev = i;
  ss.subs = i;
  ss.subCount++;
  statAdd(Stat.Subscriptions);
  subscribedNew = true;
  if (PERSISTENCE) journalSubscribe(s, i);
  return i;
}

function unlink(i: i32): void {
  const row = subscription(i);
  if (row.replayPos >= 0) replayDropped(row.session);
  if (row.group >= 0) { leaveGroup(row.group, i); row.group = -1; }
  if (row.nodePrev >= 0) subscription(row.nodePrev).nodeNext = row.nodeNext;
  else node(row.node).subs = row.nodeNext;
  if (row.nodeNext >= 0) subscription(row.nodeNext).nodePrev = row.nodePrev;
  const ss = session(row.session);
  if (row.sessionPrev >= 0) subscription(row.sessionPrev).sessionNext = row.sessionNext;
  else ss.subs = row.sessionNext;
  if (row.sessionNext >= 0) subscription(row.sessionNext).sessionPrev = row.sessionPrev;
  ss.subCount--;
  const n = row.node;
  poolFree(subscriptions, i);
  prune(n);
  statAdd(Stat.Subscriptions, -1);
}

/** Remove the session's subscription with exactly this filter; false if it had none. */
export function unsubscribe(s: i32, filter: usize, len: i32, offset: i32): bool {
  if (len > FILTER_MAX) return false;
  const n = nodeForFilter(filter + <usize>offset, len - offset, false);
  if (n < 0) return false;
  const i = findOnNode(n, s, filter, len);
  if (i < 0) return false;
  if (PERSISTENCE) journalUnsubscribe(s, filter, len, offset);
  unlink(i);
  return true;
}

export function unsubscribeAll(s: i32): void {
  while (session(s).subs >= 0) unlink(session(s).subs);
}
