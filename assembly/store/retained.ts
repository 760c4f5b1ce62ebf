// Retained messages: one row per topic, pointing at a stored message (which keeps
// the QoS it was published with [MQTT-3.3.1-5]).
//
//   Retained row (MAX_RETAINED rows)      topic index (INDEX_SLOTS × i32)
//   ┌──────┬──────┬─────┬───────────┐    ┌─────┬─────┬─────┐
//   │ link │ used │ msg │ topicHash │    │ r+1 │  0  │ ... │  0 = empty; slot = hash & mask,
//   └──────┴──────┴─────┴───────────┘    └─────┴─────┴─────┘  linear probing, backward-shift delete
//
// The index makes storing or clearing one retained message O(1) whatever the table
// holds (Zigbee2MQTT keeps one per device state); replay to a new subscription walks
// the rows.

import { MAX_RETAINED } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { holdMessage, releaseMessage, topicEquals } from "./messages";
import { levelHash } from "../topics/matcher";
import { statAdd, Stat } from "../stats";
import { PERSISTENCE } from "../config";
import { journalRetain, journalUnretain } from "../persist/journal";

// @ts-ignore: decorator
@unmanaged @final export class Retained {
  link: i32;
  used: i32;
  msg: i32;
  topicHash: u32;
}

const retained: Pool = poolDescriptor();
const RETAINED_BASE = memory.data(MAX_RETAINED * offsetof<Retained>(), 8);

// the next power of two of 2 × MAX_RETAINED
// @ts-ignore: decorator
@inline const S0: i32 = MAX_RETAINED * 2 - 1;
// @ts-ignore: decorator
@inline const S1: i32 = S0 | (S0 >> 1);
// @ts-ignore: decorator
@inline const S2: i32 = S1 | (S1 >> 2);
// @ts-ignore: decorator
@inline const S3: i32 = S2 | (S2 >> 4);
// @ts-ignore: decorator
@inline const S4: i32 = S3 | (S3 >> 8);
// @ts-ignore: decorator
@inline const INDEX_SLOTS: i32 = (S4 | (S4 >> 16)) + 1;
// @ts-ignore: decorator
@inline const INDEX_MASK: i32 = INDEX_SLOTS - 1;
const INDEX = memory.data(INDEX_SLOTS * 4, 8);

// @ts-ignore: decorator
@inline function slotAt(s: i32): usize { return INDEX + (<usize>s << 2); }

export function retainedInit(): void {
  poolInit(retained, RETAINED_BASE, offsetof<Retained>(), MAX_RETAINED);
  memory.fill(INDEX, 0, <usize>INDEX_SLOTS * 4);
}

// @ts-ignore: decorator
@inline export function retainedRow(i: i32): Retained {
  return changetype<Retained>(RETAINED_BASE + <usize>i * offsetof<Retained>());
}

/** Rows [0, retainedHighWater()) may be in use; check `used`. */
export function retainedHighWater(): i32 { return retained.high; }
export function retainedInUse(): i32 { return retained.used; }

function find(topic: usize, len: i32, h: u32): i32 {
  let s = <i32>h & INDEX_MASK;
  while (true) {
    const v = load<i32>(slotAt(s));
    if (v == 0) return -1;
    const r = retainedRow(v - 1);
    if (r.topicHash == h && topicEquals(r.msg, topic, len)) return v - 1;
    s = (s + 1) & INDEX_MASK;
  }
  return -1;
}

function indexAdd(i: i32, h: u32): void {
  let s = <i32>h & INDEX_MASK;
  while (load<i32>(slotAt(s)) != 0) s = (s + 1) & INDEX_MASK;
  store<i32>(slotAt(s), i + 1);
}

function indexRemove(i: i32, h: u32): void {
  let s = <i32>h & INDEX_MASK;
  while (load<i32>(slotAt(s)) != i + 1) s = (s + 1) & INDEX_MASK;
  // backward-shift deletion keeps every probe chain unbroken
  let hole = s;
  let j = (s + 1) & INDEX_MASK;
  while (true) {
    const v = load<i32>(slotAt(j));
    if (v == 0) break;
    const home = <i32>retainedRow(v - 1).topicHash & INDEX_MASK;
    const inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!inRange) { store<i32>(slotAt(hole), v); hole = j; }
    j = (j + 1) & INDEX_MASK;
  }
  store<i32>(slotAt(hole), 0);
}

/** Make stored message `msg` the retained message for its topic, replacing any
 *  previous one [MQTT-3.3.1-5]. False when the table is full. */
export function setRetained(topic: usize, len: i32, msg: i32): bool {
  const h = <u32>levelHash(topic, len);
  let i = find(topic, len, h);
  if (i >= 0) {
    const r = retainedRow(i);
    holdMessage(msg);
    releaseMessage(r.msg);
    r.msg = msg;
    if (PERSISTENCE) journalRetain(msg);
    return true;
  }
  i = poolAlloc(retained);
  if (i < 0) return false;
  const r = retainedRow(i);
  r.used = 1; r.msg = msg; r.topicHash = h;
  indexAdd(i, h);
  holdMessage(msg);
  statAdd(Stat.RetainedMessages);
  if (PERSISTENCE) journalRetain(msg);
  return true;
}

/** A zero-length retained PUBLISH removes the retained message [MQTT-3.3.1-10]. */
export function clearRetained(topic: usize, len: i32): void {
  const i = find(topic, len, <u32>levelHash(topic, len));
  if (i >= 0) clearRetainedRow(i);
}

export function retainedTableBytes(): i32 { return MAX_RETAINED * offsetof<Retained>() + INDEX_SLOTS * 4; }

/** Remove one retained entry (cleared, or its message expired). */
export function clearRetainedRow(i: i32): void {
  const r = retainedRow(i);
  if (PERSISTENCE) journalUnretain(r.msg);
  indexRemove(i, r.topicHash);
  r.used = 0;
  releaseMessage(r.msg);
  poolFree(retained, i);
  statAdd(Stat.RetainedMessages, -1);
}
