// Shared subscriptions, "$share/{ShareName}/{filter}" (MQTT 5 §4.8.2; also accepted
// from MQTT 3.1.1 clients, as Mosquitto does). Each message matching the filter goes
// to ONE member of each group: the next member round-robin, preferring members that
// are online, so a group of workers spreads the load.
//
// This file owns the share groups and their member lists; the subscription table
// (session/subscriptions.ts) only notes in each row which group it joined, and finds
// a group by name among the subscriptions of a trie node. Members are subscription
// rows, and each has its member slot at the same index.
//
//   ShareGroup row (MAX_SHARE_GROUPS rows)               Member slot (MAX_SUBSCRIPTIONS)
//   ┌──────┬──────┬─────────┬───────┬──────┬───────┐     ┌─────────┬──────┬──────┐
//   │ link │ used │ members │ count │ next │ epoch │     │ session │ next │ prev │
//   └──────┴──────┴─────────┴───────┴──────┴───────┘     └─────────┴──────┴──────┘
//     members, next: subscription rows                     next, prev: the group's list

import { MAX_SHARE_GROUPS, MAX_SUBSCRIPTIONS } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { session } from "../session/sessions";
import { connection, ConnState } from "../session/connections";

// @ts-ignore: decorator
@unmanaged @final export class ShareGroup {
  link: i32;
  used: i32;
  members: i32;   // first member subscription
  count: i32;
  next: i32;      // member to try first for the next message
  epoch: u32;     // the last message routed to this group (one member per message)
}

// @ts-ignore: decorator
@unmanaged @final class Member {
  session: i32;   // the member's session (whether it is online decides who gets a message)
  next: i32;      // next member of the group, -1 at the end
  prev: i32;
}

const groups: Pool = poolDescriptor();
const GROUP_BASE = memory.data(MAX_SHARE_GROUPS * offsetof<ShareGroup>(), 8);
const MEMBER_BASE = memory.data(MAX_SUBSCRIPTIONS * offsetof<Member>(), 8);

export function sharedInit(): void {
  poolInit(groups, GROUP_BASE, offsetof<ShareGroup>(), MAX_SHARE_GROUPS);
}

// @ts-ignore: decorator
@inline export function shareGroup(i: i32): ShareGroup {
  return changetype<ShareGroup>(GROUP_BASE + <usize>i * offsetof<ShareGroup>());
}

// @ts-ignore: decorator
@inline function member(sub: i32): Member {
  return changetype<Member>(MEMBER_BASE + <usize>sub * offsetof<Member>());
}

export function groupsInUse(): i32 { return groups.used; }
export function groupTableBytes(): i32 {
  return MAX_SHARE_GROUPS * offsetof<ShareGroup>() + MAX_SUBSCRIPTIONS * offsetof<Member>();
}

/** "$share/" */
const SHARE_PREFIX = memory.data<u8>([0x24, 0x73, 0x68, 0x61, 0x72, 0x65, 0x2F]);

/** For "$share/{name}/{filter}": the offset of {filter}; 0 for an ordinary filter;
 *  -1 for a malformed shared filter (empty or wildcard name [MQTT-4.8.2-2], or no filter). */
export function sharePrefixLength(filter: usize, len: i32): i32 {
  if (len < 7 || memory.compare(filter, SHARE_PREFIX, 7) != 0) return 0;
  let i = 7;
  while (i < len && load<u8>(filter + <usize>i) != 0x2F) {
    const c = load<u8>(filter + <usize>i);
    if (c == 0x2B || c == 0x23) return -1;
    i++;
  }
  if (i == 7 || i >= len - 1) return -1; // empty name, or nothing after "{name}/"
  return i + 1;
}

/** Add subscription `sub` of session `s` to group `g`, or to a new group when `g` is
 *  -1. Returns the group, or -1 when a new one is needed and the table is full. */
export function joinGroup(g: i32, sub: i32, s: i32): i32 {
  if (g < 0) {
    g = poolAlloc(groups);
    if (g < 0) return -1;
    const gr = shareGroup(g);
    gr.used = 1; gr.members = -1; gr.count = 0; gr.next = -1; gr.epoch = 0;
  }
  const gr = shareGroup(g);
  const m = member(sub);
  m.session = s;
  m.prev = -1;
  m.next = gr.members;
  if (gr.members >= 0) member(gr.members).prev = sub;
  gr.members = sub;
  gr.count++;
  if (gr.next < 0) gr.next = sub;
  return g;
}

/** Remove subscription `sub` from group `g`; the last member out frees the group. */
export function leaveGroup(g: i32, sub: i32): void {
  const gr = shareGroup(g);
  const m = member(sub);
  if (gr.next == sub) gr.next = m.next >= 0 ? m.next : gr.members == sub ? -1 : gr.members;
  if (m.prev >= 0) member(m.prev).next = m.next;
  else gr.members = m.next;
  if (m.next >= 0) member(m.next).prev = m.prev;
  if (--gr.count == 0) { gr.used = 0; poolFree(groups, g); }
  else if (gr.next < 0) gr.next = gr.members;
}

function online(sub: i32): bool {
  const c = session(member(sub).session).conn;
  return c >= 0 && connection(c).state == ConnState.Connected;
}

/** The member to receive the current message (epoch), or -1 if the group already
 *  has it. Round-robin from `next`, skipping offline members when any is online. */
export function pickMember(g: i32, epoch: u32): i32 {
  const gr = shareGroup(g);
  if (gr.epoch == epoch) return -1;
  gr.epoch = epoch;
  const start = gr.next >= 0 ? gr.next : gr.members;
  let m = start;
  let chosen = -1;
  for (let k = 0; k < gr.count; k++) {
    if (online(m)) { chosen = m; break; }
    m = member(m).next;
    if (m < 0) m = gr.members;
  }
  if (chosen < 0) chosen = start; // nobody online: queue for the next in turn
  const after = member(chosen).next;
  gr.next = after >= 0 ? after : gr.members;
  return chosen;
}
