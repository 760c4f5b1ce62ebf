// A session's QoS 1/2 deliveries (assembly/session/queue.ts): appended in order, each
// holding its message; the in-flight ones first, found by packet id and removed from
// anywhere in the list; refused beyond the session's limit or the pool's.

import { MAX_DELIVERIES, QUEUE_MAX, SUB_IDS_PER_DELIVERY } from "../../assembly/config";
import { storeInit, storeMessage, message, messagesInUse, holdMessage, releaseMessage,
         copyOut } from "../../assembly/store/messages";
import { sessionsInit, createSession, session } from "../../assembly/session/sessions";
import { queueInit, enqueue, delivery, deliveryIds, deliveriesInUse, findInflight, previousDelivery,
         removeDelivery, clearQueue, DeliveryState } from "../../assembly/session/queue";
import { text, bodyLength } from "./wire";
import { connectionsInit, openConnection, freeConnection, connection, ConnState } from "../../assembly/session/connections";
import { dropsQueued } from "../../assembly/flow/holds";

const IDS = memory.data<i32>([11, 12, 13, 14, 15, 16]);
const MSGS = memory.data(4 * 8);

function newSession(id: string): i32 { const p = text(id); return createSession(p, bodyLength()); }
/** A message on "q/t" whose one-byte payload is `digit`. */
function newMessage(digit: i32 = 0): i32 {
  const p = text("q/t");
  store<u8>(p + 3, <u8>digit);
  return storeMessage(p, 3, 0, 0, p + 3, 1, 1, 0, 0);
}

/** Message k (0..7) of the current test, made by newMessages: its payload is k + 1. */
function msg(k: i32): i32 { return load<i32>(MSGS + <usize>k * 4); }
function newMessages(n: i32): void { for (let k = 0; k < n; k++) store<i32>(MSGS + <usize>k * 4, newMessage(k + 1)); }

/** Send the first queued delivery with this packet id, as the delivery pump does:
 *  it becomes the last of the in-flight part of the list. Returns the delivery. */
function sendNext(s: i32, packetId: i32): i32 {
  const ss = session(s);
  const d = ss.inflightTail >= 0 ? delivery(ss.inflightTail).next : ss.queueHead;
  const row = delivery(d);
  row.packetId = packetId;
  row.state = DeliveryState.Sent;
  ss.inflight++;
  ss.inflightTail = d;
  return d;
}

/** The payloads of the session's list, in order, as the digits of one number. */
const DIGIT = memory.data(1);
function order(s: i32): i32 {
  let v = 0;
  for (let d = session(s).queueHead; d >= 0; d = delivery(d).next) {
    copyOut(delivery(d).msg, 3, DIGIT, 1);
    v = v * 10 + <i32>load<u8>(DIGIT);
  }
  return v;
}


describe("delivery queue: order", () => {
  beforeEach(() => { storeInit(); sessionsInit(); queueInit(); });

  it("appends deliveries in order, each holding its message once", () => {
    const s = newSession("order");
    newMessages(3);
    expect(enqueue(s, msg(0), 1, false, 0, 0)).toBe(true);
    expect(enqueue(s, msg(1), 2, true, 0, 0)).toBe(true);
    expect(enqueue(s, msg(2), 1, false, 0, 0)).toBe(true);
    expect(order(s)).toBe(123);
    expect(session(s).queued).toBe(3);
    expect(session(s).inflight).toBe(0);
    expect(message(msg(1)).refs).toBe(1);
    const second = delivery(delivery(session(s).queueHead).next);
    expect(second.qos).toBe(2);
    expect(second.retain).toBe(1);
    expect(second.state).toBe(DeliveryState.Queued);
    expect(delivery(session(s).queueTail).msg).toBe(msg(2));
    clearQueue(s);
    expect(deliveriesInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });

  it("keeps up to SUB_IDS_PER_DELIVERY subscription identifiers per delivery", () => {
    const s = newSession("ids");
    newMessages(2);
    enqueue(s, msg(0), 1, false, IDS, 2);
    enqueue(s, msg(1), 1, false, IDS, 6);
    const a = session(s).queueHead;
    const b = delivery(a).next;
    expect(delivery(a).idCount).toBe(2);
    expect(load<i32>(deliveryIds(a) + 4)).toBe(12);
    expect(delivery(b).idCount).toBe(SUB_IDS_PER_DELIVERY);
    expect(memory.compare(deliveryIds(b), IDS, <usize>SUB_IDS_PER_DELIVERY * 4)).toBe(0);
    clearQueue(s);
    expect(messagesInUse()).toBe(0);
  });
});

describe("delivery queue: limits", () => {
  beforeEach(() => { storeInit(); sessionsInit(); queueInit(); });

  it("takes a session past its limit (the limit is flow control's: flow/holds.ts), holding one reference each", () => {
    const s = newSession("full");
    const m = newMessage();
    let accepted = 0;
    for (let i = 0; i < QUEUE_MAX + 3; i++) if (enqueue(s, m, 1, false, 0, 0)) accepted++;
    expect(accepted).toBe(QUEUE_MAX + 3);
    expect(session(s).queued).toBe(QUEUE_MAX + 3);
    expect(message(m).refs).toBe(QUEUE_MAX + 3);
    clearQueue(s);
    expect(deliveriesInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });

  it("drops at the limit for an offline or stalled session, and at twice it for one that reads", () => {
    connectionsInit();
    const s = newSession("limits");
    const m = newMessage();
    holdMessage(m);
    for (let i = 0; i < QUEUE_MAX - 1; i++) enqueue(s, m, 1, false, 0, 0);
    expect(dropsQueued(s)).toBe(false);           // offline, one below the limit
    enqueue(s, m, 1, false, 0, 0);
    expect(dropsQueued(s)).toBe(true);            // offline, at the limit
    const c = openConnection(0);
    connection(c).state = ConnState.Connected;
    session(s).conn = c;
    expect(dropsQueued(s)).toBe(false);           // online and reading: its publishers wait instead
    connection(c).stalled = 1;
    expect(dropsQueued(s)).toBe(true);            // stalled: dropped, as for an offline session
    connection(c).stalled = 0;
    for (let i = 0; i < QUEUE_MAX; i++) enqueue(s, m, 1, false, 0, 0);
    expect(dropsQueued(s)).toBe(true);            // twice over: the headroom is used up
    clearQueue(s);
    session(s).conn = -1;
    freeConnection(c);
    releaseMessage(m);
    expect(deliveriesInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });

  it("refuses a delivery once the pool of MAX_DELIVERIES is used up, whichever session asks", () => {
    const m = newMessage();
    holdMessage(m);
    let accepted = 0;
    let k = 0;
    while (accepted < MAX_DELIVERIES) {
      const s = newSession(k == 0 ? "p0" : k == 1 ? "p1" : k == 2 ? "p2" : "p3");
      for (let i = 0; i < QUEUE_MAX && accepted < MAX_DELIVERIES; i++) if (enqueue(s, m, 1, false, 0, 0)) accepted++;
      store<i32>(MSGS + <usize>k * 4, s);
      k++;
    }
    expect(deliveriesInUse()).toBe(MAX_DELIVERIES);
    const late = newSession("late");
    expect(enqueue(late, m, 1, false, 0, 0)).toBe(false);
    expect(session(late).queued).toBe(0);
    expect(message(m).refs).toBe(MAX_DELIVERIES + 1);
    for (let i = 0; i < k; i++) clearQueue(load<i32>(MSGS + <usize>i * 4));
    releaseMessage(m);
    expect(deliveriesInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });
});

describe("delivery queue: in flight", () => {
  beforeEach(() => { storeInit(); sessionsInit(); queueInit(); });

  it("finds an in-flight delivery by packet id, with the one before it", () => {
    const s = newSession("inflight");
    newMessages(4);
    for (let k = 0; k < 4; k++) enqueue(s, msg(k), 1, false, 0, 0);
    const d1 = sendNext(s, 101);
    const d2 = sendNext(s, 102);
    const d3 = sendNext(s, 103);
    expect(findInflight(s, 101)).toBe(d1);
    expect(previousDelivery).toBe(-1);
    expect(findInflight(s, 103)).toBe(d3);
    expect(previousDelivery).toBe(d2);
    clearQueue(s);
  });

  it("finds no delivery for an unknown packet id, nor among the queued ones", () => {
    const s = newSession("unknown");
    newMessages(3);
    for (let k = 0; k < 3; k++) enqueue(s, msg(k), 1, false, 0, 0);
    sendNext(s, 7);
    expect(findInflight(s, 8)).toBe(-1);
    expect(findInflight(s, 0)).toBe(-1);                // the queued ones have no id yet
    delivery(delivery(session(s).queueHead).next).packetId = 9; // a stale id on a queued row
    expect(findInflight(s, 9)).toBe(-1);
    clearQueue(s);
    expect(messagesInUse()).toBe(0);
  });

  it("removes a delivery from the head, the middle or the tail, releasing its message", () => {
    const s = newSession("remove");
    newMessages(5);
    for (let k = 0; k < 5; k++) enqueue(s, msg(k), 1, false, 0, 0);
    for (let k = 0; k < 4; k++) sendNext(s, 201 + k);
    // the middle of the in-flight part (PUBACK out of order)
    let d = findInflight(s, 202);
    removeDelivery(s, d, previousDelivery);
    expect(order(s)).toBe(1345);
    expect(messagesInUse()).toBe(4);
    // the last in flight: the queued one after it now follows the new last
    d = findInflight(s, 204);
    removeDelivery(s, d, previousDelivery);
    expect(order(s)).toBe(135);
    expect(session(s).inflight).toBe(2);
    expect(delivery(session(s).inflightTail).msg).toBe(msg(2));
    // the head
    d = findInflight(s, 201);
    removeDelivery(s, d, previousDelivery);
    expect(order(s)).toBe(35);
    expect(session(s).queued).toBe(2);
    // the tail (queued, not in flight): the list's tail moves back
    removeDelivery(s, session(s).queueTail, session(s).queueHead);
    expect(order(s)).toBe(3);
    expect(session(s).queueTail).toBe(session(s).queueHead);
    // and appending still links after the right row
    enqueue(s, newMessage(6), 1, false, 0, 0);
    expect(order(s)).toBe(36);
    expect(session(s).inflight).toBe(1);
    clearQueue(s);
    expect(session(s).queueHead).toBe(-1);
    expect(session(s).queueTail).toBe(-1);
    expect(session(s).inflightTail).toBe(-1);
    expect(session(s).queued).toBe(0);
    expect(session(s).inflight).toBe(0);
    expect(messagesInUse()).toBe(0);
  });

  it("removes a QoS 2 delivery whose message was already released at PUBREC", () => {
    const s = newSession("qos2");
    newMessages(1);
    enqueue(s, msg(0), 2, false, 0, 0);
    const d = sendNext(s, 301);
    // PUBREC: the message is done with, the delivery waits for PUBCOMP
    delivery(d).state = DeliveryState.Released;
    releaseMessage(delivery(d).msg);
    delivery(d).msg = -1;
    expect(messagesInUse()).toBe(0);
    expect(findInflight(s, 301)).toBe(d);
    removeDelivery(s, d, previousDelivery);
    expect(deliveriesInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
    expect(session(s).inflight).toBe(0);
  });
});
