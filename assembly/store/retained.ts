// Retained messages: one row per topic, pointing at a stored message (which keeps
// the QoS it was published with [MQTT-3.3.1-5]).
//
//   Retained row (MAX_RETAINED rows)
//   ┌──────┬──────┬─────┬───────────┐
//   │ link │ used │ msg │ topicHash │
//   └──────┴──────┴─────┴───────────┘

import { MAX_RETAINED } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { holdMessage, releaseMessage, topicEquals } from "./messages";
import { levelHash } from "../topics/matcher";
import { statAdd, Stat } from "../stats";

// @ts-ignore: decorator
@unmanaged @final export class Retained {
  link: i32;
  used: i32;
  msg: i32;
  topicHash: u32;
}

const retained: Pool = poolDescriptor();
const RETAINED_BASE = memory.data(MAX_RETAINED * offsetof<Retained>(), 8);

export function retainedInit(): void {
  poolInit(retained, RETAINED_BASE, offsetof<Retained>(), MAX_RETAINED);
}

// @ts-ignore: decorator
@inline export function retainedRow(i: i32): Retained {
  return changetype<Retained>(RETAINED_BASE + <usize>i * offsetof<Retained>());
}

/** Rows [0, retainedHighWater()) may be in use; check `used`. */
export function retainedHighWater(): i32 { return retained.high; }
export function retainedInUse(): i32 { return retained.used; }

function find(topic: usize, len: i32, h: u32): i32 {
  for (let i = 0, n = retained.high; i < n; i++) {
    const r = retainedRow(i);
    if (r.used != 0 && r.topicHash == h && topicEquals(r.msg, topic, len)) return i;
  }
  return -1;
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
    return true;
  }
  i = poolAlloc(retained);
  if (i < 0) return false;
  const r = retainedRow(i);
  r.used = 1; r.msg = msg; r.topicHash = h;
  holdMessage(msg);
  statAdd(Stat.RetainedMessages);
  return true;
}

/** A zero-length retained PUBLISH removes the retained message [MQTT-3.3.1-10]. */
export function clearRetained(topic: usize, len: i32): void {
  const i = find(topic, len, <u32>levelHash(topic, len));
  if (i >= 0) clearRetainedRow(i);
}

export function retainedTableBytes(): i32 { return MAX_RETAINED * offsetof<Retained>(); }

/** Remove one retained entry (cleared, or its message expired). */
export function clearRetainedRow(i: i32): void {
  const r = retainedRow(i);
  r.used = 0;
  releaseMessage(r.msg);
  poolFree(retained, i);
  statAdd(Stat.RetainedMessages, -1);
}
