// Outgoing QoS 1/2 deliveries of a session, oldest first. The list always holds the
// in-flight deliveries (sent, waiting for PUBACK/PUBREC/PUBCOMP) before the queued
// ones, because deliveries are sent strictly in order; `session.inflight` counts the
// first part. A delivery holds a reference on its stored message until the message
// itself is no longer needed (PUBACK, or PUBREC for QoS 2).
//
//   Delivery row (MAX_DELIVERIES rows)
//   ┌──────┬──────┬─────┬──────────┬─────┬───────┬────────┬───────┬──────────────────────────┐
//   │ link │ next │ msg │ packetId │ qos │ state │ retain │ nIds  │ subscription ids × 4     │
//   └──────┴──────┴─────┴──────────┴─────┴───────┴────────┴───────┴──────────────────────────┘

import { MAX_DELIVERIES, SUB_IDS_PER_DELIVERY, PERSISTENCE } from "../config";
import { restoring, pidForget } from "../persist/pids";
import { journalQueued, journalDone } from "../persist/journal";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { session } from "./sessions";
import { holdMessage, releaseMessage } from "../store/messages";

export const enum DeliveryState {
  Queued = 0,     // not sent yet
  Sent = 1,       // PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
  Released = 2,   // PUBREL sent, waiting for PUBCOMP (message already released)
}

// @ts-ignore: decorator
@unmanaged @final export class Delivery {
  link: i32;
  next: i32;
  msg: i32;       // stored message, -1 once released
  packetId: i32;
  qos: i32;
  state: i32;
  retain: i32;    // the RETAIN flag to deliver with
  idCount: i32;   // MQTT 5 subscription identifiers to send with it
  id0: i32; id1: i32; id2: i32; id3: i32;
  pid: u32;       // its id in the persistence file (0: not written there: persist/pids.ts)
}

const deliveries: Pool = poolDescriptor();
const DELIVERY_BASE = memory.data(MAX_DELIVERIES * offsetof<Delivery>(), 8);

export function queueInit(): void {
  poolInit(deliveries, DELIVERY_BASE, offsetof<Delivery>(), MAX_DELIVERIES);
}

// @ts-ignore: decorator
@inline export function delivery(i: i32): Delivery {
  return changetype<Delivery>(DELIVERY_BASE + <usize>i * offsetof<Delivery>());
}

export function deliveriesInUse(): i32 { return deliveries.used; }
export function deliveryTableBytes(): i32 { return MAX_DELIVERIES * offsetof<Delivery>(); }

/** Address of the subscription identifiers of a delivery (`idCount` i32s). */
// @ts-ignore: decorator
@inline export function deliveryIds(d: i32): usize {
  return DELIVERY_BASE + <usize>d * offsetof<Delivery>() + offsetof<Delivery>("id0");
}

/** Append a delivery; false when the pool is full (the session's own limit is the
 *  caller's decision: flow/holds.ts). Up to SUB_IDS_PER_DELIVERY subscription
 *  identifiers are copied from `ids`. */
export function enqueue(s: i32, msg: i32, qos: i32, retain: bool, ids: usize, idCount: i32): bool {
  const ss = session(s);
  const d = poolAlloc(deliveries);
  if (d < 0) return false;
  const row = delivery(d);
  row.next = -1; row.msg = msg; row.packetId = 0; row.qos = qos; row.pid = 0;
  row.state = DeliveryState.Queued; row.retain = retain ? 1 : 0;
  row.idCount = min(idCount, SUB_IDS_PER_DELIVERY);
  if (row.idCount > 0) memory.copy(deliveryIds(d), ids, <usize>row.idCount << 2);
  if (msg >= 0) holdMessage(msg); // -1: a delivery read back from the persistence file after its PUBREC
  if (ss.queueTail >= 0) delivery(ss.queueTail).next = d; else ss.queueHead = d;
  ss.queueTail = d;
  ss.queued++;
  if (PERSISTENCE) journalQueued(s, d);
  return true;
}

/** The in-flight delivery with this packet id, or -1; `previousDelivery` is set to the
 *  row before it (-1 if it is the head) for `removeDelivery`. */
export let previousDelivery: i32 = -1;
export function findInflight(s: i32, packetId: i32): i32 {
  const ss = session(s);
  let prev = -1;
  let d = ss.queueHead;
  for (let k = 0; k < ss.inflight && d >= 0; k++) {
    const row = delivery(d);
    if (row.packetId == packetId) { previousDelivery = prev; return d; }
    prev = d; d = row.next;
  }
  return -1;
}

/** Unlink `d` (whose predecessor is `prev`) and free it with its message reference. */
export function removeDelivery(s: i32, d: i32, prev: i32): void {
  const ss = session(s);
  const row = delivery(d);
  if (PERSISTENCE) {
    if (restoring) pidForget(row.pid);
    else journalDone(s, d);
  }
  if (prev >= 0) delivery(prev).next = row.next; else ss.queueHead = row.next;
  if (ss.queueTail == d) ss.queueTail = prev;
  if (ss.inflightTail == d) ss.inflightTail = prev;
  if (row.state != DeliveryState.Queued) ss.inflight--;
  ss.queued--;
  if (row.msg >= 0) releaseMessage(row.msg);
  poolFree(deliveries, d);
}

/** Drop every delivery of a session (its session ended). */
export function clearQueue(s: i32): void {
  const ss = session(s);
  while (ss.queueHead >= 0) removeDelivery(s, ss.queueHead, -1);
}
