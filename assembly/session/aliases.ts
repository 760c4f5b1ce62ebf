// MQTT 5 topic aliases, per connection and in both directions (§3.3.2.3.4). Slots
// are fixed: TOPIC_ALIAS_MAX inbound and ALIAS_OUT_MAX outbound per connection, each
// holding a topic of up to ALIAS_TOPIC_MAX bytes. Which slots are valid is kept in
// the connection row, so a new connection resets its aliases without touching them.
//
//   inbound slot  ┌─────┬──────────────┐   outbound slot ┌──────┬─────┬──────────────┐
//                 │ len │ topic bytes  │                 │ hash │ len │ topic bytes  │
//                 └─────┴──────────────┘                 └──────┴─────┴──────────────┘

import { MAX_CONNECTIONS, TOPIC_ALIAS_MAX, ALIAS_OUT_MAX, ALIAS_TOPIC_MAX } from "../config";
import { connection } from "./connections";
import { levelHash } from "../topics/matcher";

// @ts-ignore: decorator
@inline const IN_SLOT: usize = (<usize>ALIAS_TOPIC_MAX + 4 + 7) & ~7;
// @ts-ignore: decorator
@inline const OUT_SLOT: usize = (<usize>ALIAS_TOPIC_MAX + 12 + 7) & ~7;
const IN_BASE = memory.data(MAX_CONNECTIONS * TOPIC_ALIAS_MAX * <i32>IN_SLOT, 8);
const OUT_BASE = memory.data(MAX_CONNECTIONS * ALIAS_OUT_MAX * <i32>OUT_SLOT, 8);

export function aliasTableBytes(): i32 {
  return MAX_CONNECTIONS * (TOPIC_ALIAS_MAX * <i32>IN_SLOT + ALIAS_OUT_MAX * <i32>OUT_SLOT);
}

// @ts-ignore: decorator
@inline function inSlot(conn: i32, alias: i32): usize {
  return IN_BASE + (<usize>conn * <usize>TOPIC_ALIAS_MAX + <usize>(alias - 1)) * IN_SLOT;
}
// @ts-ignore: decorator
@inline function outSlot(conn: i32, alias: i32): usize {
  return OUT_BASE + (<usize>conn * <usize>ALIAS_OUT_MAX + <usize>(alias - 1)) * OUT_SLOT;
}

/** Remember the topic for an inbound alias; false when the topic is too long to hold. */
export function setInboundAlias(conn: i32, alias: i32, topic: usize, len: i32): bool {
  if (len > ALIAS_TOPIC_MAX) return false;
  const slot = inSlot(conn, alias);
  store<i32>(slot, len);
  memory.copy(slot + 4, topic, <usize>len);
  connection(conn).aliasInMask |= <u32>1 << <u32>(alias - 1);
  return true;
}

/** The topic an inbound alias stands for: its address, length in `aliasTopicLen`;
 *  0 when the client has not defined it. */
export let aliasTopicLen: i32 = 0;
export function inboundAlias(conn: i32, alias: i32): usize {
  if ((connection(conn).aliasInMask & (<u32>1 << <u32>(alias - 1))) == 0) return 0;
  const slot = inSlot(conn, alias);
  aliasTopicLen = load<i32>(slot);
  return slot + 4;
}

/** The outbound alias already standing for this topic, or 0. */
export function findOutboundAlias(conn: i32, topic: usize, len: i32, hash: u64): i32 {
  const c = connection(conn);
  for (let a = 1; a <= c.aliasOutCount; a++) {
    const slot = outSlot(conn, a);
    if (load<u64>(slot) == hash && load<i32>(slot + 8) == len &&
        memory.compare(slot + 12, topic, <usize>len) == 0) return a;
  }
  return 0;
}

/** An alias to define for this topic (a free one, else the next one round-robin), or
 *  0 when the client allows none or the topic is too long. Not yet recorded. */
export function chooseOutboundAlias(conn: i32, len: i32): i32 {
  const c = connection(conn);
  if (c.aliasOutMax == 0 || len > ALIAS_TOPIC_MAX) return 0;
  if (c.aliasOutCount < c.aliasOutMax) return c.aliasOutCount + 1;
  return c.aliasOutNext + 1;
}

/** Record that `alias` now stands for this topic (the PUBLISH defining it was sent). */
export function recordOutboundAlias(conn: i32, alias: i32, topic: usize, len: i32, hash: u64): void {
  const c = connection(conn);
  if (alias > c.aliasOutCount) c.aliasOutCount = alias;
  else c.aliasOutNext = alias % c.aliasOutMax;
  const slot = outSlot(conn, alias);
  store<u64>(slot, hash);
  store<i32>(slot + 8, len);
  memory.copy(slot + 12, topic, <usize>len);
}

export function topicHash(topic: usize, len: i32): u64 { return levelHash(topic, len); }
