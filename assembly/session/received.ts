// QoS 2 exactly-once, receiving side: the packet ids whose PUBLISH was delivered
// onwards and whose PUBREL has not arrived yet [MQTT-4.3.3-2], of every session, in one
// hash set. One pool rather than a fixed row per session, because an MQTT 3.1.1
// client has no Receive Maximum: it may send hundreds of QoS 2 messages before its
// first PUBREL, and refusing them would lose what it was entitled to send. MQTT 5
// clients are held to our Receive Maximum (INFLIGHT_IN_MAX) by the caller.
//
//   Received ids (RECEIVED_SLOTS slots, open addressing, linear probing)
//   ┌───────────────────────────────────────┐
//   │ u32: (session + 1) << 16 | packet id  │  0 = empty; deletion shifts back, no tombstones
//   └───────────────────────────────────────┘

import { MAX_RECEIVED, PERSISTENCE } from "../config";
import { journalReceived } from "../persist/journal";
import { session } from "./sessions";

/** A power of two at least twice MAX_RECEIVED: probes stay short at full load. */
// @ts-ignore: decorator
@inline const RECEIVED_SLOTS: i32 = <i32>(1 << (32 - clz<u32>(<u32>MAX_RECEIVED * 2 - 1)));
// @ts-ignore: decorator
@inline const MASK: u32 = <u32>RECEIVED_SLOTS - 1;
const SLOTS = memory.data(RECEIVED_SLOTS * 4, 8);
let held = 0;

export function receivedTableBytes(): i32 { return RECEIVED_SLOTS * 4; }

// @ts-ignore: decorator
@inline function key(s: i32, packetId: i32): u32 { return (<u32>(s + 1) << 16) | <u32>packetId; }
// @ts-ignore: decorator
@inline function home(k: u32): u32 { return (k * 0x9E3779B1) >> (32 - <u32>ctz<u32>(<u32>RECEIVED_SLOTS)) & MASK; }
// @ts-ignore: decorator
@inline function slot(i: u32): usize { return SLOTS + (<usize>i << 2); }

/** The slot holding `k`, or -1. */
function find(k: u32): i32 {
  let i = home(k);
  while (true) {
    const v = load<u32>(slot(i));
    if (v == 0) return -1;
    if (v == k) return <i32>i;
    i = (i + 1) & MASK;
  }
  return -1;
}

export function hasReceived(s: i32, packetId: i32): bool {
  return find(key(s, packetId)) >= 0;
}

/** Remember a packet id of session `s`; false when the pool is full. */
export function addReceived(s: i32, packetId: i32): bool {
  if (held >= MAX_RECEIVED) return false;
  const k = key(s, packetId);
  let i = home(k);
  while (load<u32>(slot(i)) != 0) i = (i + 1) & MASK;
  store<u32>(slot(i), k);
  held++;
  session(s).received++;
  if (PERSISTENCE) journalReceived(s, packetId, true);
  return true;
}

/** Empty slot `i`, then move back the entries after it that probed past it. */
function vacate(i: u32): void {
  let j = i;
  while (true) {
    j = (j + 1) & MASK;
    const v = load<u32>(slot(j));
    if (v == 0) break;
    const h = home(v);
    // v may move to i if its home is not in the cyclic range (i, j]
    if (((j - h) & MASK) >= ((j - i) & MASK)) {
      store<u32>(slot(i), v);
      i = j;
    }
  }
  store<u32>(slot(i), 0);
  held--;
}

export function removeReceived(s: i32, packetId: i32): void {
  const i = find(key(s, packetId));
  if (i < 0) return;
  vacate(<u32>i);
  session(s).received--;
  if (PERSISTENCE) journalReceived(s, packetId, false);
}

/** The session ends (or, `journal`, a bridge's upstream lost its session: the ids it
 *  held mean nothing now, and the persistence file is told): forget all its ids (a
 *  scan, only for a session that holds some). */
export function forgetReceived(s: i32, journal: bool = false): void {
  const ss = session(s);
  if (ss.received == 0) return;
  const owner = <u32>(s + 1);
  let i: u32 = 0;
  while (i < <u32>RECEIVED_SLOTS && ss.received > 0) {
    const v = load<u32>(slot(i));
    if (v != 0 && (v >> 16) == owner) {
      vacate(i); ss.received--;
      if (PERSISTENCE && journal) journalReceived(s, <i32>(v & 0xFFFF), false);
      continue; // look at slot i again
    }
    i++;
  }
}

/** The table, slot by slot, for the persistence file: (session + 1) << 16 | packet id, 0 empty. */
export function receivedSlots(): i32 { return RECEIVED_SLOTS; }
export function receivedSlot(i: i32): u32 { return load<u32>(slot(<u32>i)); }

/** Ids held, all sessions together. */
export function receivedInUse(): i32 { return held; }
