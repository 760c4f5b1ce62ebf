// Topic validation, the matching rules of §4.7, and the trie keeping itself tidy.

import { validTopicName, validTopicFilter, topicMatches } from "../../assembly/topics/validate";
import { matcherInit, matchTopic, matchedCount, nodesInUse } from "../../assembly/topics/matcher";
import { subscriptionsInit, subscribe, unsubscribe, unsubscribeAll } from "../../assembly/session/subscriptions";
import { sessionsInit, createSession } from "../../assembly/session/sessions";
import { begin, ascii, bodyPtr, bodyEnd } from "./wire";

function len(): i32 { return <i32>(bodyEnd() - bodyPtr()); }
function name(t: string): bool { begin(); ascii(t); return validTopicName(bodyPtr(), len()); }
function filter(f: string): bool { begin(); ascii(f); return validTopicFilter(bodyPtr(), len()); }

// topic and filter side by side in the scratch body
function matches(topic: string, f: string): bool {
  begin(); ascii(topic); const tl = len(); ascii(f);
  return topicMatches(bodyPtr(), tl, bodyPtr() + <usize>tl, len() - tl);
}

describe("topic names and filters", () => {
  it("[MQTT-4.7.3-1] [MQTT-3.3.2-2] names are non-empty and have no wildcards", () => {
    expect(name("a/b")).toBe(true);
    expect(name("/")).toBe(true);
    expect(name("")).toBe(false);
    expect(name("a/+")).toBe(false);
    expect(name("a/#")).toBe(false);
    expect(name("a+b")).toBe(false);
  });
  it("[MQTT-3.3.2-2] finds a wildcard at every position of a long name (eight bytes at a time)", () => {
    const base = "home/kitchen/sensor/temp";
    expect(name(base)).toBe(true);
    for (let at = 0; at < base.length; at++) {
      expect(name(base.slice(0, at) + "+" + base.slice(at + 1))).toBe(false);
      expect(name(base.slice(0, at) + "#" + base.slice(at + 1))).toBe(false);
    }
  });
  it("[MQTT-4.7.1-2] [MQTT-4.7.1-3] wildcards occupy whole levels, # only last", () => {
    expect(filter("#")).toBe(true);
    expect(filter("a/#")).toBe(true);
    expect(filter("+")).toBe(true);
    expect(filter("+/+/c")).toBe(true);
    expect(filter("/+")).toBe(true);
    expect(filter("a/#/b")).toBe(false);
    expect(filter("a#")).toBe(false);
    expect(filter("a/b#")).toBe(false);
    expect(filter("a+/b")).toBe(false);
    expect(filter("")).toBe(false);
  });
});

describe("matching", () => {
  it("matches literal levels exactly", () => {
    expect(matches("a/b", "a/b")).toBe(true);
    expect(matches("a/b", "a/c")).toBe(false);
    expect(matches("a/b", "a")).toBe(false);
    expect(matches("a", "a/b")).toBe(false);
    expect(matches("a/", "a")).toBe(false);
    expect(matches("A", "a")).toBe(false);
  });
  it("+ matches exactly one level, including an empty one", () => {
    expect(matches("a/b", "a/+")).toBe(true);
    expect(matches("a/", "a/+")).toBe(true);
    expect(matches("a/b/c", "a/+")).toBe(false);
    expect(matches("/finance", "+/+")).toBe(true);
    expect(matches("/finance", "/+")).toBe(true);
    expect(matches("/finance", "+")).toBe(false);
  });
  it("# matches the parent and every level below", () => {
    expect(matches("sport/tennis/player1", "sport/#")).toBe(true);
    expect(matches("sport", "sport/#")).toBe(true);
    expect(matches("sports", "sport/#")).toBe(false);
    expect(matches("a/b/c", "#")).toBe(true);
    expect(matches("a/b/c", "+/#")).toBe(true);
  });
  it("[MQTT-4.7.2-1] wildcards at the first level do not match $ topics", () => {
    expect(matches("$SYS/x", "#")).toBe(false);
    expect(matches("$SYS/x", "+/x")).toBe(false);
    expect(matches("$SYS/x", "$SYS/#")).toBe(true);
    expect(matches("$SYS/x", "$SYS/+")).toBe(true);
    expect(matches("a/$x", "a/+")).toBe(true);
  });
});

describe("trie", () => {
  it("finds every matching node and prunes back to the root on unsubscribe", () => {
    sessionsInit(); subscriptionsInit(); matcherInit();
    begin(); ascii("s1");
    const s = createSession(bodyPtr(), 2);
    const base = nodesInUse();
    const filters: string[] = ["a/b", "a/+", "a/#", "#", "+/b", "a/b/c", "$SYS/#"];
    for (let i = 0; i < filters.length; i++) {
      begin(); ascii(filters[i]);
      expect(subscribe(s, bodyPtr(), len(), 0, 1, 0, 0)).toBeGreaterThanOrEqual(0);
    }
    begin(); ascii("a/b");
    matchTopic(bodyPtr(), len());
    expect(matchedCount).toBe(5); // a/b, a/+, a/#, #, +/b
    begin(); ascii("a");
    matchTopic(bodyPtr(), len());
    expect(matchedCount).toBe(2); // a/#, #
    begin(); ascii("$SYS/uptime");
    matchTopic(bodyPtr(), len());
    expect(matchedCount).toBe(1); // $SYS/# only
    begin(); ascii("a/+");
    expect(unsubscribe(s, bodyPtr(), len(), 0)).toBe(true);
    expect(unsubscribe(s, bodyPtr(), len(), 0)).toBe(false);
    unsubscribeAll(s);
    expect(nodesInUse()).toBe(base);
  });
});
