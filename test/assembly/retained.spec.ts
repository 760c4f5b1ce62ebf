// The retained store (assembly/store/retained.ts): one message per topic, replaced by
// the next, cleared by an empty payload, refused when the table is full; its hash index
// keeps finding every topic through any order of clears.

import { MAX_RETAINED } from "../../assembly/config";
import { storeInit, storeMessage, freeMessage, message, messagesInUse, chunksInUse } from "../../assembly/store/messages";
import { retainedInit, setRetained, clearRetained, retainedInUse, retainedHighWater,
         retainedRow } from "../../assembly/store/retained";
import { levelHash } from "../../assembly/topics/matcher";
import { brokerInit, brokerClosed } from "../../assembly/broker";
import { text, bodyLength, connected, subscribe1, publish, take, sent, sentLen, now } from "./wire";

/** Topic "r00".."r99" into the body. */
const NAME = memory.data(3);
function numbered(i: i32): usize {
  store<u8>(NAME, 0x72); store<u8>(NAME + 1, <u8>(0x30 + i / 10)); store<u8>(NAME + 2, <u8>(0x30 + i % 10));
  return NAME;
}

/** Store a message on the topic at `topic` and make it the retained one; returns the
 *  message, or -1 when the table refused it (the message is then freed, as the
 *  PUBLISH handler does). */
function retainAt(topic: usize, len: i32, payload: string): i32 {
  const m = storeMessage(topic, len, 0, 0, changetype<usize>(payload), payload.length * 2, 0, 1, 0);
  if (setRetained(topic, len, m)) return m;
  freeMessage(m);
  return -1;
}
function retain(topic: string, payload: string = "v"): i32 { const t = text(topic); return retainAt(t, bodyLength(), payload); }
function clear(topic: string): void { const t = text(topic); clearRetained(t, bodyLength()); }

/** The retained row holding message `m`, or -1. */
function rowOf(m: i32): i32 {
  for (let i = 0; i < retainedHighWater(); i++) {
    const r = retainedRow(i);
    if (r.used != 0 && r.msg == m) return i;
  }
  return -1;
}

// The index of retained.ts: the next power of two of 2 × MAX_RETAINED slots, a topic's
// home slot its hash & (slots - 1).
function indexSlots(): i32 { let n = 1; while (n < MAX_RETAINED * 2) n <<= 1; return n; }
/** Candidate topic "k000".."k999". */
const CANDIDATE = memory.data(4);
function candidate(i: i32): usize {
  store<u8>(CANDIDATE, 0x6B);
  store<u8>(CANDIDATE + 1, <u8>(0x30 + i / 100));
  store<u8>(CANDIDATE + 2, <u8>(0x30 + (i / 10) % 10));
  store<u8>(CANDIDATE + 3, <u8>(0x30 + i % 10));
  return CANDIDATE;
}
function homeOf(i: i32): i32 { return <i32>levelHash(candidate(i), 4) & (indexSlots() - 1); }
/** Three candidates with one home slot and a fourth whose home is the slot after, into
 *  CHAIN; returns the home slot, or -1 if none was found. */
const CHAIN = memory.data(16);
function findChain(): i32 {
  const mask = indexSlots() - 1;
  for (let h = 0; h <= mask; h++) {
    let n = 0;
    let next = -1;
    for (let i = 0; i < 1000; i++) {
      const home = homeOf(i);
      if (home == h && n < 3) { store<i32>(CHAIN + <usize>n * 4, i); n++; }
      else if (home == ((h + 1) & mask) && next < 0) next = i;
    }
    if (n == 3 && next >= 0) { store<i32>(CHAIN + 12, next); return h; }
  }
  return -1;
}


describe("retained messages: one per topic", () => {
  beforeEach(() => { storeInit(); retainedInit(); });

  it("keeps one message per topic, each held once", () => {
    const a = retain("a/b");
    const b = retain("a/c");
    const c = retain("a/b/");
    const d = retain("A/b");
    expect(retainedInUse()).toBe(4);
    expect(message(a).refs).toBe(1);
    expect(message(d).refs).toBe(1);
    expect(rowOf(a)).toBeGreaterThanOrEqual(0);
    expect(rowOf(b)).toBeGreaterThanOrEqual(0);
    expect(rowOf(c)).toBeGreaterThanOrEqual(0);
    expect(rowOf(d)).toBeGreaterThanOrEqual(0);
    clear("a/b"); clear("a/c"); clear("a/b/"); clear("A/b");
    expect(retainedInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });

  it("[MQTT-3.3.1-5] replaces the message of a topic and releases the old one", () => {
    retain("home/lamp", "on");
    const chunksOfOne = chunksInUse();
    const second = retain("home/lamp", "off");
    expect(retainedInUse()).toBe(1);
    expect(messagesInUse()).toBe(1);                 // the first one is freed
    expect(chunksInUse()).toBe(chunksOfOne);
    expect(rowOf(second)).toBeGreaterThanOrEqual(0);
    expect(message(second).refs).toBe(1);
    clear("home/lamp");
  });

  it("[MQTT-3.3.1-10] clears a topic, releasing its message and chunks", () => {
    retain("home/door", "open");
    retain("home/window", "shut");
    clear("home/door");
    expect(retainedInUse()).toBe(1);
    expect(messagesInUse()).toBe(1);
    clear("home/window");
    expect(retainedInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });

  it("clears nothing for a topic without a retained message", () => {
    const m = retain("a/b");
    clear("a/b/c");
    clear("a");
    clear("a/B");
    clear("nothing/here");
    expect(retainedInUse()).toBe(1);
    expect(message(m).refs).toBe(1);
    clear("a/b");
    expect(retainedInUse()).toBe(0);
  });
});

describe("retained messages: limits", () => {
  beforeEach(() => { storeInit(); retainedInit(); });

  it("refuses a new topic when MAX_RETAINED are kept, yet still replaces and clears", () => {
    for (let i = 0; i < MAX_RETAINED; i++) expect(retainAt(numbered(i), 3, "v")).toBeGreaterThanOrEqual(0);
    expect(retainedInUse()).toBe(MAX_RETAINED);
    expect(retain("one/too/many")).toBe(-1);
    expect(messagesInUse()).toBe(MAX_RETAINED);      // the refused message was not held
    expect(retainAt(numbered(5), 3, "new")).toBeGreaterThanOrEqual(0);   // a replacement needs no row
    expect(retainedInUse()).toBe(MAX_RETAINED);
    clearRetained(numbered(5), 3);
    expect(retain("one/too/many")).toBeGreaterThanOrEqual(0);
    clear("one/too/many");
    for (let i = 0; i < MAX_RETAINED; i++) if (i != 5) clearRetained(numbered(i), 3);
    expect(retainedInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });

  it("finds every topic after clearing one that shares its probe chain (backward-shift delete)", () => {
    // topics whose hashes fall on the same index slot, and one whose home is the next
    // slot, so that clearing any of them must close the gap it leaves in the chain
    const home = findChain();
    expect(home).toBeGreaterThanOrEqual(0);
    let lost = 0;
    for (let k = 0; k < 4; k++) {
      for (let i = 0; i < 4; i++) retainAt(candidate(load<i32>(CHAIN + <usize>i * 4)), 4, "v");
      expect(retainedInUse()).toBe(4);
      clearRetained(candidate(load<i32>(CHAIN + <usize>k * 4)), 4);
      for (let i = 0; i < 4; i++) {
        if (i == k) continue;
        const before = retainedInUse();
        clearRetained(candidate(load<i32>(CHAIN + <usize>i * 4)), 4);
        if (retainedInUse() != before - 1) lost++;     // not found: the chain was cut
      }
      for (let i = 0; i < 4; i++) clearRetained(candidate(load<i32>(CHAIN + <usize>i * 4)), 4);
    }
    expect(lost).toBe(0);
    expect(retainedInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });
});

describe("retained messages through the broker", () => {
  it("[MQTT-3.3.1-6] [MQTT-3.3.1-10] sends the retained message to a new subscriber; an empty one clears it", () => {
    brokerInit(0, 0);
    const pub = connected("retainer");
    publish(pub, "r/t", "on", 0, true);
    const early = connected("early");
    subscribe1(early, 1, "r/#", 0);
    take(early);
    // SUBACK (5 bytes), then the retained PUBLISH with RETAIN set
    expect(sent(5)).toBe(0x31);
    expect(messagesInUse()).toBe(1);
    publish(pub, "r/t", "", 0, true);
    expect(messagesInUse()).toBe(0);
    const late = connected("late");
    subscribe1(late, 1, "r/#", 0);
    take(late);
    expect(sentLen).toBe(5);                         // the SUBACK alone
    expect(sent(0)).toBe(0x90);
    brokerClosed(pub, now); brokerClosed(early, now); brokerClosed(late, now);
  });
});
