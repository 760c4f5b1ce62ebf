// MQTT 5 topic aliases (assembly/session/aliases.ts), per connection and both ways:
// the client's aliases remembered until redefined, ours chosen free-first and then
// round-robin; none beyond what a slot holds or the client allows.

import { TOPIC_ALIAS_MAX, ALIAS_OUT_MAX, ALIAS_TOPIC_MAX } from "../../assembly/config";
import { connectionsInit, openConnection, freeConnection, connection } from "../../assembly/session/connections";
import { setInboundAlias, inboundAlias, aliasTopicLen, findOutboundAlias, chooseOutboundAlias,
         recordOutboundAlias, topicHash } from "../../assembly/session/aliases";
import { begin, ascii, text, bodyPtr, bodyLength } from "./wire";

connectionsInit();

/** Whether inbound alias `alias` of `conn` stands for `topic`. */
function inboundIs(conn: i32, alias: i32, topic: string): bool {
  const p = inboundAlias(conn, alias);
  if (p == 0) return false;
  const t = text(topic);
  return aliasTopicLen == bodyLength() && memory.compare(p, t, <usize>aliasTopicLen) == 0;
}
function defineIn(conn: i32, alias: i32, topic: string): bool { const t = text(topic); return setInboundAlias(conn, alias, t, bodyLength()); }
function findOut(conn: i32, topic: string): i32 {
  const t = text(topic);
  return findOutboundAlias(conn, t, bodyLength(), topicHash(t, bodyLength()));
}
function recordOut(conn: i32, alias: i32, topic: string): void {
  const t = text(topic);
  recordOutboundAlias(conn, alias, t, bodyLength(), topicHash(t, bodyLength()));
}
/** A topic of `n` bytes. */
function topicOf(n: i32): usize { begin(); for (let i = 0; i < n; i++) ascii("x"); return bodyPtr(); }

describe("topic aliases from the client", () => {
  it("remembers the topic of each alias, per connection, until the client redefines it", () => {
    const a = openConnection(0);
    const b = openConnection(0);
    expect(defineIn(a, 1, "sensors/one")).toBe(true);
    expect(defineIn(a, TOPIC_ALIAS_MAX, "sensors/last")).toBe(true);
    expect(defineIn(b, 1, "other/connection")).toBe(true);
    expect(inboundIs(a, 1, "sensors/one")).toBe(true);
    expect(inboundIs(a, TOPIC_ALIAS_MAX, "sensors/last")).toBe(true);
    expect(inboundIs(b, 1, "other/connection")).toBe(true);
    expect(defineIn(a, 1, "sensors/two")).toBe(true);          // [MQTT-3.3.2-12] a new mapping
    expect(inboundIs(a, 1, "sensors/two")).toBe(true);
    expect(inboundIs(b, 1, "other/connection")).toBe(true);
    // a topic exactly as long as a slot holds
    const t = topicOf(ALIAS_TOPIC_MAX);
    expect(setInboundAlias(a, 2, t, ALIAS_TOPIC_MAX)).toBe(true);
    expect(inboundAlias(a, 2)).not.toBe(0);
    expect(aliasTopicLen).toBe(ALIAS_TOPIC_MAX);
    freeConnection(a); freeConnection(b);
  });

  it("knows no alias the client has not defined, nor one longer than a slot, nor an old connection's", () => {
    const a = openConnection(0);
    expect(inboundAlias(a, 1)).toBe(0);
    const t = topicOf(ALIAS_TOPIC_MAX + 1);
    expect(setInboundAlias(a, 1, t, ALIAS_TOPIC_MAX + 1)).toBe(false);
    expect(inboundAlias(a, 1)).toBe(0);
    expect(defineIn(a, 2, "defined")).toBe(true);
    expect(inboundAlias(a, 3)).toBe(0);
    // the next connection in the same row starts with no aliases [MQTT-3.3.2-7]
    freeConnection(a);
    const again = openConnection(0);
    expect(again).toBe(a);
    expect(inboundAlias(again, 2)).toBe(0);
    freeConnection(again);
  });
});

describe("topic aliases towards the client", () => {
  it("uses free aliases first, then reassigns them round-robin", () => {
    const c = openConnection(0);
    connection(c).aliasOutMax = 2;                  // the client's Topic Alias Maximum
    expect(findOut(c, "t/1")).toBe(0);
    expect(chooseOutboundAlias(c, 3)).toBe(1);
    recordOut(c, 1, "t/1");
    expect(findOut(c, "t/1")).toBe(1);
    expect(chooseOutboundAlias(c, 3)).toBe(2);
    recordOut(c, 2, "t/2");
    expect(findOut(c, "t/2")).toBe(2);
    // all used: the oldest assignment goes first
    expect(chooseOutboundAlias(c, 3)).toBe(1);
    recordOut(c, 1, "t/3");
    expect(findOut(c, "t/3")).toBe(1);
    expect(findOut(c, "t/1")).toBe(0);              // alias 1 no longer stands for it
    expect(findOut(c, "t/2")).toBe(2);
    expect(chooseOutboundAlias(c, 3)).toBe(2);
    recordOut(c, 2, "t/4");
    expect(chooseOutboundAlias(c, 3)).toBe(1);
    freeConnection(c);
  });

  it("uses none when the client allows none or the topic is longer than a slot", () => {
    const c = openConnection(0);
    expect(chooseOutboundAlias(c, 3)).toBe(0);      // Topic Alias Maximum 0 (or absent)
    connection(c).aliasOutMax = ALIAS_OUT_MAX;
    expect(chooseOutboundAlias(c, ALIAS_TOPIC_MAX + 1)).toBe(0);
    expect(chooseOutboundAlias(c, ALIAS_TOPIC_MAX)).toBe(1);
    freeConnection(c);
  });

  it("matches a topic only with its own bytes: same length or same hash is not enough", () => {
    const c = openConnection(0);
    connection(c).aliasOutMax = ALIAS_OUT_MAX;
    recordOut(c, 1, "room/a");
    expect(findOut(c, "room/b")).toBe(0);           // same length
    expect(findOut(c, "room/")).toBe(0);            // a prefix
    // the right bytes under a wrong hash are not looked at
    const t = text("room/a");
    expect(findOutboundAlias(c, t, 6, topicHash(t, 6) ^ 1)).toBe(0);
    expect(findOutboundAlias(c, t, 6, topicHash(t, 6))).toBe(1);
    // another connection has its own aliases
    const d = openConnection(0);
    connection(d).aliasOutMax = ALIAS_OUT_MAX;
    expect(findOut(d, "room/a")).toBe(0);
    freeConnection(c); freeConnection(d);
  });
});
