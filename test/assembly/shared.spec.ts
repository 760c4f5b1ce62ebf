// Shared subscriptions (assembly/topics/shared.ts): "$share/{name}/{filter}" parsed,
// members grouped by name and filter, one member per message round-robin preferring
// members online; a full group table refuses, and the last member out frees its group.

import { MAX_SHARE_GROUPS } from "../../assembly/config";
import { sharedInit, sharePrefixLength, pickMember, groupsInUse, shareGroup } from "../../assembly/topics/shared";
import { matcherInit, nodesInUse } from "../../assembly/topics/matcher";
import { subscriptionsInit, subscribe, unsubscribe, unsubscribeAll, subscription, subscriptionsInUse,
         SUBSCRIBE_FAILED } from "../../assembly/session/subscriptions";
import { sessionsInit, createSession, session } from "../../assembly/session/sessions";
import { connectionsInit, openConnection, connection, ConnState } from "../../assembly/session/connections";
import { text, bodyLength } from "./wire";

connectionsInit();
sessionsInit();
subscriptionsInit();
matcherInit();
sharedInit();

function prefix(filter: string): i32 { const f = text(filter); return sharePrefixLength(f, bodyLength()); }
/** Subscribe session `s` to `filter` (shared or not) at QoS 1; the row or SUBSCRIBE_FAILED. */
function sub(s: i32, filter: string): i32 {
  const f = text(filter);
  const offset = sharePrefixLength(f, bodyLength());
  return subscribe(s, f, bodyLength(), offset, 1, 0, 0);
}
function unsub(s: i32, filter: string): bool {
  const f = text(filter);
  return unsubscribe(s, f, bodyLength(), sharePrefixLength(f, bodyLength()));
}
function newSession(id: string): i32 { const p = text(id); return createSession(p, bodyLength()); }
/** Bind session `s` to a connected connection (a member that is online). */
function goOnline(s: i32): void {
  const c = openConnection(0);
  connection(c).state = ConnState.Connected;
  connection(c).session = s;
  session(s).conn = c;
}
function goOffline(s: i32): void { connection(session(s).conn).state = ConnState.Closing; session(s).conn = -1; }

// three clients, offline unless a test says otherwise; every test unsubscribes them again
const a = newSession("a"), b = newSession("b"), c = newSession("c");

describe("$share/{name}/{filter}", () => {
  it("finds the filter after the share name; an ordinary filter has none", () => {
    expect(prefix("$share/g/a/b")).toBe(9);
    expect(prefix("$share/workers/#")).toBe(15);
    expect(prefix("a/b")).toBe(0);
    expect(prefix("$share")).toBe(0);
    expect(prefix("$shared/g/a")).toBe(0);           // another $ topic, not a share
    expect(prefix("$SHARE/g/a")).toBe(0);
  });

  it("[MQTT-4.8.2-1] [MQTT-4.8.2-2] refuses an empty or wildcard name, or no filter", () => {
    expect(prefix("$share//a")).toBe(-1);
    expect(prefix("$share/g+/a")).toBe(-1);
    expect(prefix("$share/#/a")).toBe(-1);
    expect(prefix("$share/g")).toBe(-1);
    expect(prefix("$share/g/")).toBe(-1);
    expect(prefix("$share/")).toBe(-1);
  });
});

describe("share groups", () => {
  it("puts members with the same name and filter in one group, and no one else", () => {
    const ra = sub(a, "$share/g/jobs/+");
    const rb = sub(b, "$share/g/jobs/+");
    const rc = sub(c, "$share/g/jobs/+");
    expect(groupsInUse()).toBe(1);
    const g = subscription(ra).group;
    expect(g).toBeGreaterThanOrEqual(0);
    expect(subscription(rb).group).toBe(g);
    expect(subscription(rc).group).toBe(g);
    expect(shareGroup(g).count).toBe(3);
    // a member subscribing again replaces its subscription, it does not join twice
    expect(sub(b, "$share/g/jobs/+")).toBe(rb);
    expect(shareGroup(g).count).toBe(3);
    // another name on the same filter, the same name on another filter, no share
    expect(subscription(sub(a, "$share/h/jobs/+")).group).not.toBe(g);
    expect(subscription(sub(a, "$share/g/jobs/#")).group).not.toBe(g);
    expect(subscription(sub(a, "jobs/+")).group).toBe(-1);
    expect(groupsInUse()).toBe(3);
    unsubscribeAll(a); unsubscribeAll(b); unsubscribeAll(c);
    expect(groupsInUse()).toBe(0);
    expect(subscriptionsInUse()).toBe(0);
  });

  it("frees a group with its last member and only then", () => {
    sub(a, "$share/g/t"); sub(b, "$share/g/t");
    expect(unsub(a, "$share/g/t")).toBe(true);
    expect(groupsInUse()).toBe(1);
    expect(unsub(a, "$share/g/t")).toBe(false);
    expect(unsub(b, "$share/h/t")).toBe(false);     // not its group
    expect(groupsInUse()).toBe(1);
    expect(unsub(b, "$share/g/t")).toBe(true);
    expect(groupsInUse()).toBe(0);
  });

  it("refuses a new group when MAX_SHARE_GROUPS exist, but still lets members join existing ones", () => {
    const s = a, other = b;
    const nodesBefore = nodesInUse();
    const names = "abcdefghijklmnopqrstuvwxyz";
    for (let i = 0; i < MAX_SHARE_GROUPS; i++) {
      expect(sub(s, "$share/" + names.charAt(i) + "/t")).toBeGreaterThanOrEqual(0);
    }
    expect(groupsInUse()).toBe(MAX_SHARE_GROUPS);
    const used = subscriptionsInUse();
    expect(sub(s, "$share/z/t")).toBe(SUBSCRIBE_FAILED);
    expect(sub(s, "$share/z/new/filter")).toBe(SUBSCRIBE_FAILED);
    expect(subscriptionsInUse()).toBe(used);        // no row kept for the refusal
    expect(sub(other, "$share/a/t")).toBeGreaterThanOrEqual(0);
    expect(groupsInUse()).toBe(MAX_SHARE_GROUPS);
    // a group freed makes room
    expect(unsub(s, "$share/b/t")).toBe(true);
    expect(sub(s, "$share/z/t")).toBeGreaterThanOrEqual(0);
    unsubscribeAll(s); unsubscribeAll(other);
    expect(groupsInUse()).toBe(0);
    expect(nodesInUse()).toBe(nodesBefore);         // the refused filter's nodes were pruned
  });
});

describe("one member per message", () => {
  it("[MQTT-4.8.2-3] gives each message to one member, round-robin, and never twice", () => {
    goOnline(a); goOnline(b); goOnline(c);
    const ra = sub(a, "$share/rr/t"), rb = sub(b, "$share/rr/t"), rc = sub(c, "$share/rr/t");
    const g = subscription(ra).group;
    let seenA = 0, seenB = 0, seenC = 0, repeats = 0;
    let last = -1;
    for (let epoch: u32 = 1; epoch <= 9; epoch++) {
      const m = pickMember(g, epoch);
      if (m == ra) seenA++; else if (m == rb) seenB++; else if (m == rc) seenC++;
      if (m == last) repeats++;
      last = m;
      expect(pickMember(g, epoch)).toBe(-1);        // the group already has this message
    }
    expect(seenA).toBe(3);
    expect(seenB).toBe(3);
    expect(seenC).toBe(3);
    expect(repeats).toBe(0);
    unsubscribeAll(a); unsubscribeAll(b); unsubscribeAll(c);
    goOffline(a); goOffline(b); goOffline(c);
  });

  it("prefers members online; with none online, still picks each in turn", () => {
    const ra = sub(a, "$share/on/t"), rb = sub(b, "$share/on/t"), rc = sub(c, "$share/on/t");
    const g = subscription(ra).group;
    goOnline(b);
    let others = 0;
    for (let epoch: u32 = 10; epoch < 16; epoch++) if (pickMember(g, epoch) != rb) others++;
    expect(others).toBe(0);
    goOffline(b);
    let seenA = 0, seenB = 0, seenC = 0;
    for (let epoch: u32 = 20; epoch < 26; epoch++) {
      const m = pickMember(g, epoch);
      if (m == ra) seenA++; else if (m == rb) seenB++; else if (m == rc) seenC++;
    }
    expect(seenA).toBe(2);
    expect(seenB).toBe(2);
    expect(seenC).toBe(2);
    unsubscribeAll(a); unsubscribeAll(b); unsubscribeAll(c);
  });

  it("keeps the turn going when the member whose turn is next leaves", () => {
    goOnline(a); goOnline(b); goOnline(c);
    const ra = sub(a, "$share/lv/t"), rb = sub(b, "$share/lv/t");
    sub(c, "$share/lv/t");
    const g = subscription(ra).group;
    const first = pickMember(g, 30);
    const next = shareGroup(g).next;                // whose turn it is
    expect(next).not.toBe(first);
    const leaver = next == ra ? a : next == rb ? b : c;
    unsubscribeAll(leaver);
    let seen = 0, wrong = 0;
    for (let epoch: u32 = 31; epoch < 35; epoch++) {
      const m = pickMember(g, epoch);
      if (m == next || m < 0) wrong++; else seen++;
    }
    expect(wrong).toBe(0);
    expect(seen).toBe(4);
    expect(shareGroup(g).count).toBe(2);
    unsubscribeAll(a); unsubscribeAll(b); unsubscribeAll(c);
    goOffline(a); goOffline(b); goOffline(c);
    expect(groupsInUse()).toBe(0);
  });
});
