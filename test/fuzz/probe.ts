// The fuzz build of the core: the exported ABI of assembly/index.ts, unchanged, plus
// read-only probes the fuzzer uses to check invariants after every input. Compiled by
// test/fuzz/build.mjs with the `stub` runtime (so `heapTop` means something) into
// build/fuzz/; never part of a release build.

export * from "../../assembly/index";

import { connectionsInUse } from "../../assembly/session/connections";
import { sessionsInUse, session, sessionId } from "../../assembly/session/sessions";
import { subscriptionsInUse } from "../../assembly/session/subscriptions";
import { deliveriesInUse } from "../../assembly/session/queue";
import { messagesInUse, chunksInUse, message, copyOut } from "../../assembly/store/messages";
import { retainedInUse, retainedHighWater, retainedRow } from "../../assembly/store/retained";
import { nodesInUse } from "../../assembly/topics/matcher";
import { MAX_SESSIONS, TOPIC_MAX } from "../../assembly/config";

/** Rows in use in each fixed table, by index: see `Table` in test/fuzz/core.ts. */
export function probeUsed(table: i32): i32 {
  switch (table) {
    case 0: return connectionsInUse();
    case 1: return sessionsInUse();
    case 2: return subscriptionsInUse();
    case 3: return deliveriesInUse();
    case 4: return messagesInUse();
    case 5: return chunksInUse();
    case 6: return retainedInUse();
    case 7: return nodesInUse();
  }
  return -1;
}

/** The bump allocator's top (stub runtime): it must never move. */
export function probeHeapTop(): usize {
  const p = __alloc(1);
  __free(p);
  return p;
}

export function probeMaxSessions(): i32 { return MAX_SESSIONS; }
/** Session row `i`: -2 if unused, else its connection (-1 while offline). */
export function probeSessionConn(i: i32): i32 { return session(i).used == 0 ? -2 : session(i).conn; }
export function probeSessionIdPtr(i: i32): usize { return sessionId(i); }
export function probeSessionIdLen(i: i32): i32 { return session(i).idLen; }

export function probeRetainedHigh(): i32 { return retainedHighWater(); }
const TOPIC = memory.data(TOPIC_MAX + 1, 8);
/** Copies the topic of retained row `i` to `probeTopicPtr()`; its length, or -1 if unused. */
export function probeRetainedTopic(i: i32): i32 {
  const r = retainedRow(i);
  if (r.used == 0) return -1;
  const m = message(r.msg);
  copyOut(r.msg, 0, TOPIC, m.topicLen);
  return m.topicLen;
}
export function probeTopicPtr(): usize { return TOPIC; }
