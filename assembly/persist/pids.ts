// Persistence ids: every message, session and delivery written to the persistence file
// gets a number unique in that file (a compaction numbers everything again), and the
// records refer to each other by it. While the file is read back, this table maps a
// number to the row the object was given this time.
//
//   Slots (PID_SLOTS, open addressing, linear probing, deletion shifts back)
//   ┌─────────┬─────────────────────────┐
//   │ u32 pid │ i32 kind << 28 | row    │  pid 0 = empty
//   └─────────┴─────────────────────────┘

import { MAX_MESSAGES, MAX_SESSIONS, MAX_DELIVERIES, PERSISTENCE } from "../config";

export const enum PidKind { Message = 1, Session = 2, Delivery = 3 }

/** True while the file is read back: rows freed meanwhile leave the table. */
export let restoring = false;
export function setRestoring(on: bool): void { restoring = on; }

/** A power of two at least twice the rows that can hold an id. */
// @ts-ignore: decorator
@inline const PID_SLOTS: i32 = PERSISTENCE ? <i32>(1 << (32 - clz<u32>(<u32>(MAX_MESSAGES + MAX_SESSIONS + MAX_DELIVERIES) * 2 - 1))) : 2;
// @ts-ignore: decorator
@inline const MASK: u32 = <u32>PID_SLOTS - 1;
const SLOTS = memory.data(PID_SLOTS * 8, 8);
let held = 0;

export function pidTableBytes(): i32 { return PID_SLOTS * 8; }

// @ts-ignore: decorator
@inline function home(pid: u32): u32 { return (pid * 0x9E3779B1) >> (32 - <u32>ctz<u32>(<u32>PID_SLOTS)) & MASK; }
// @ts-ignore: decorator
@inline function slot(i: u32): usize { return SLOTS + (<usize>i << 3); }

function find(pid: u32): i32 {
  let i = home(pid);
  while (true) {
    const k = load<u32>(slot(i));
    if (k == 0) return -1;
    if (k == pid) return <i32>i;
    i = (i + 1) & MASK;
  }
  return -1;
}

/** Remember that `pid` is row `row` of `kind`; false when the table is full or the id is taken. */
export function pidPut(pid: u32, kind: PidKind, row: i32): bool {
  if (pid == 0 || held >= PID_SLOTS >> 1 || find(pid) >= 0) return false;
  let i = home(pid);
  while (load<u32>(slot(i)) != 0) i = (i + 1) & MASK;
  store<u32>(slot(i), pid);
  store<i32>(slot(i), (<i32>kind << 28) | row, 4);
  held++;
  return true;
}

/** The row of `pid` if it is of `kind`, else -1. */
export function pidRow(pid: u32, kind: PidKind): i32 {
  if (pid == 0) return -1;
  const i = find(pid);
  if (i < 0) return -1;
  const v = load<i32>(slot(<u32>i), 4);
  return v >>> 28 == <i32>kind ? v & 0x0FFFFFFF : -1;
}

/** Slot `i` (0 … pidSlots()-1) as (kind << 28 | row), or -1 when empty: for a scan. */
export function pidSlot(i: i32): i32 {
  return load<u32>(slot(<u32>i)) == 0 ? -1 : load<i32>(slot(<u32>i), 4);
}
export function pidSlots(): i32 { return PID_SLOTS; }

/** The row of `pid` was freed. */
export function pidForget(pid: u32): void {
  if (pid == 0) return;
  let i = find(pid);
  if (i < 0) return;
  // backward-shift deletion: move back the entries after the hole that probed past it
  let j = <u32>i;
  while (true) {
    j = (j + 1) & MASK;
    const k = load<u32>(slot(j));
    if (k == 0) break;
    const h = home(k);
    if (((j - h) & MASK) >= ((j - <u32>i) & MASK)) {
      store<u64>(slot(<u32>i), load<u64>(slot(j)));
      i = <i32>j;
    }
  }
  store<u64>(slot(<u32>i), 0);
  held--;
}

export function pidClear(): void {
  memory.fill(SLOTS, 0, <usize>PID_SLOTS * 8);
  held = 0;
}
