// Zero allocation, proven: under the stub runtime, a long mixed workload leaves the
// heap top and memory.size() exactly where they were. (Release builds go further:
// their runtime makes any allocation a compile error, see assembly/rt/none.ts.)

import { sysTopicCount } from "../../assembly/sys/tree";
import { retainedRow, retainedHighWater } from "../../assembly/store/retained";
import { copyOut } from "../../assembly/store/messages";

/** Retained messages under $SYS (as many as the test board's retained table took). */
function sysRetained(): i32 {
  const first = memory.data(8);
  let n = 0;
  for (let i = 0; i < retainedHighWater(); i++) {
    const r = retainedRow(i);
    if (r.used == 0) continue;
    copyOut(r.msg, 0, first, 1);
    if (load<u8>(first) == 0x24) n++;
  }
  return n;
}
import { brokerInit, brokerOpen, brokerClosed, brokerTick } from "../../assembly/broker";
import { sessionsInUse } from "../../assembly/session/sessions";
import { messagesInUse } from "../../assembly/store/messages";
import { deliveriesInUse } from "../../assembly/session/queue";
import { begin, byte, word, str, send, take, connect, publish, subscribe1, ack, ackAll,
         now, advance } from "./wire";

function heapTop(): usize {
  const p = __alloc(1);
  __free(p);
  return p;
}

function workload(rounds: i32): void {
  for (let r = 0; r < rounds; r++) {
    const sub = brokerOpen(0, now);
    connect("sub", false); send(sub, 0x10); take(sub);
    subscribe1(sub, 1, "home/+/temp", 2); ackAll(sub);
    subscribe1(sub, 2, "home/#", 1); ackAll(sub);
    const pub = brokerOpen(0, now);
    begin(); str("MQTT"); byte(4); byte(2 | 4 | 8 | 32); word(30); str("pub"); str("home/pub/status"); str("offline");
    send(pub, 0x10); take(pub);
    publish(pub, "home/kitchen/temp", "21.5", 0, false);
    publish(pub, "home/kitchen/temp", "21.6", 1, true, 10);
    publish(pub, "home/hall/temp", "19.0", 2, false, 11);
    ack(pub, 0x62, 11);                                  // PUBREL
    take(pub);
    ackAll(sub);
    begin(); send(pub, 0xC0);                            // PINGREQ
    begin(); word(3); str("home/#"); send(sub, 0xA2);     // UNSUBSCRIBE
    if ((r & 1) == 0) { begin(); send(sub, 0xE0); }      // DISCONNECT half the time
    brokerClosed(sub, now);                              // the publisher's will fires below
    brokerClosed(pub, now);
    advance(100);
    brokerTick(now);
  }
}

describe("zero allocation", () => {
  it("runs under the stub runtime, so the heap probes below mean something", () => {
    // ASC_RUNTIME: 0 = stub, 1 = minimal, 2 = incremental (test/assembly/asconfig.json)
    expect(ASC_RUNTIME).toBe(0);
  });

  it("does not move the heap or grow memory over 20,000 rounds of mixed traffic", () => {
    brokerInit(0, 0);
    workload(10); // warm-up: static state settles
    const heapBefore = heapTop();
    const pagesBefore = memory.size();
    workload(20000);
    const heapAfter = heapTop();
    const pagesAfter = memory.size();
    expect(heapAfter).toBe(heapBefore);
    expect(pagesAfter).toBe(pagesBefore);
    expect(sessionsInUse()).toBe(1);   // the persistent "sub" session remains
    // and two retained messages (one a will), besides the $SYS topics the ticks published
    // (which the 20,000 rounds above published again and again without allocating)
    expect(sysTopicCount()).toBeGreaterThan(50);
    expect(messagesInUse() - sysRetained()).toBe(2);
    expect(deliveriesInUse()).toBe(0); // everything was acknowledged
  });
});
