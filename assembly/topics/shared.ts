// Shared subscriptions, "$share/{ShareName}/{filter}" (MQTT 5 §4.8.2; also accepted
// from MQTT 3.1.1 clients, as Mosquitto does). Each message matching the filter goes
// to ONE member of each group: the next member round-robin, preferring members that
// are online, so a group of workers spreads the load.
//
//   ShareGroup row (MAX_SHARE_GROUPS rows)
//   ┌──────┬──────┬─────────┬────────┬───────┬────────┐
//   │ link │ used │ members │ count  │ next  │ epoch  │   members: subscription rows,
//   └──────┴──────┴─────────┴────────┴───────┴────────┘   linked by groupNext/groupPrev

import { MAX_SHARE_GROUPS } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { subscription, subscriptionFilter, groupMemberOnNode } from "../session/subscriptions";
import { session } from "../session/clients";
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

const groups: Pool = poolDescriptor();
const GROUP_BASE = memory.data(MAX_SHARE_GROUPS * offsetof<ShareGroup>(), 8);

export function sharedInit(): void {
  poolInit(groups, GROUP_BASE, offsetof<ShareGroup>(), MAX_SHARE_GROUPS);
}

// @ts-ignore: decorator
@inline export function shareGroup(i: i32): ShareGroup {
  return changetype<ShareGroup>(GROUP_BASE + <usize>i * offsetof<ShareGroup>());
}

export function groupsInUse(): i32 { return groups.used; }
export function groupTableBytes(): i32 { return MAX_SHARE_GROUPS * offsetof<ShareGroup>(); }

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

/** Whether subscription `sub` belongs to the group named in `filter` (same name). */
export function groupNameMatches(sub: i32, filter: usize, offset: i32): bool {
  const row = subscription(sub);
  return row.filterOffset == offset && memory.compare(subscriptionFilter(sub), filter, <usize>offset) == 0;
}

/** Put a new subscription into its group (created if it is the first member). */
export function joinGroup(sub: i32, n: i32, filter: usize, offset: i32): bool {
  const other = groupMemberOnNode(n, filter, offset);
  let g: i32;
  if (other >= 0) {
    g = subscription(other).group;
  } else {
    g = poolAlloc(groups);
    if (g < 0) return false;
    const gr = shareGroup(g);
    gr.used = 1; gr.members = -1; gr.count = 0; gr.next = -1; gr.epoch = 0;
  }
  const gr = shareGroup(g);
  const row = subscription(sub);
  row.group = g;
  row.groupPrev = -1;
  row.groupNext = gr.members;
  if (gr.members >= 0) subscription(gr.members).groupPrev = sub;
  gr.members = sub;
  gr.count++;
  if (gr.next < 0) gr.next = sub;
  return true;
}

export function leaveGroup(sub: i32): void {
  const row = subscription(sub);
  const g = row.group;
  const gr = shareGroup(g);
  if (gr.next == sub) gr.next = row.groupNext >= 0 ? row.groupNext : gr.members == sub ? -1 : gr.members;
  if (row.groupPrev >= 0) subscription(row.groupPrev).groupNext = row.groupNext;
  else gr.members = row.groupNext;
  if (row.groupNext >= 0) subscription(row.groupNext).groupPrev = row.groupPrev;
  row.group = -1;
  if (--gr.count == 0) { gr.used = 0; poolFree(groups, g); }
  else if (gr.next < 0) gr.next = gr.members;
}

function online(sub: i32): bool {
  const c = session(subscription(sub).session).conn;
  return c >= 0 && connection(c).state == ConnState.Connected;
}

/** The member to receive the current message (epoch), or -1 if the group already
 *  has it. Round-robin from `next`, skipping offline members when any is online. */
export function pickMember(g: i32, epoch: u32): i32 {
  const gr = shareGroup(g);
  if (gr.epoch == epoch) return -1;
  gr.epoch = epoch;
  let start = gr.next >= 0 ? gr.next : gr.members;
  let m = start;
  let chosen = -1;
  for (let k = 0; k < gr.count; k++) {
    if (online(m)) { chosen = m; break; }
    m = subscription(m).groupNext;
    if (m < 0) m = gr.members;
  }
  if (chosen < 0) chosen = start; // nobody online: queue for the next in turn
  const after = subscription(chosen).groupNext;
  gr.next = after >= 0 ? after : gr.members;
  return chosen;
}
