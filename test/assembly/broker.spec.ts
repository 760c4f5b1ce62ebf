// The broker through its ABI functions with tables driven to their limits (the
// default board of assembly/config.ts: 20 connections, 16 sessions, 64 subscriptions).

import { configure, Setting } from "../../assembly/settings";
import { brokerInit, brokerOpen, brokerClosed, brokerTick } from "../../assembly/broker";
import { MAX_CONNECTIONS, MAX_SESSIONS, MAX_SUBSCRIPTIONS, QUEUE_MAX } from "../../assembly/config";
import { CloseReason } from "../../assembly/host";
import { statGet, Stat } from "../../assembly/stats";
import { sessionsInUse } from "../../assembly/session/sessions";
import { subscriptionsInUse } from "../../assembly/session/subscriptions";
import { connectionsInUse } from "../../assembly/session/connections";
import { nodesInUse } from "../../assembly/topics/matcher";
import { messagesInUse } from "../../assembly/store/messages";
import { deliveriesInUse } from "../../assembly/session/queue";
import { begin, byte, word, str, ascii, send, take, sent, sentLen, closedWith, connect, connected,
         publish, subscribe1, ackAll, connackFlags, now, advance } from "./wire";

brokerInit(0, 1);
configure(Setting.SysInterval, 0); // the counts below are of the tests' own messages

// Client ids "c00".."c99" without building strings
const ID = memory.data(3);
function idOf(i: i32): void {
  store<u8>(ID, 0x63); store<u8>(ID + 1, <u8>(0x30 + i / 10)); store<u8>(ID + 2, <u8>(0x30 + i % 10));
}
function connectNumbered(conn: i32, i: i32): void {
  idOf(i);
  begin(); str("MQTT"); byte(4); byte(2); word(60); word(3);
  byte(load<u8>(ID)); byte(load<u8>(ID + 1)); byte(load<u8>(ID + 2));
  send(conn, 0x10);
}

describe("connections and sessions", () => {
  it("accepts a CONNECT and answers CONNACK 0", () => {
    const c = brokerOpen(0, now);
    connect("alpha");
    send(c, 0x10);
    expect(take(c)).toBe(4);
    expect(sent(0)).toBe(0x20);
    expect(sent(3)).toBe(0);
    brokerClosed(c, now);
    expect(sessionsInUse()).toBe(0);
  });

  it("[MQTT-3.1.0-1] closes a connection whose first packet is not CONNECT", () => {
    const c = brokerOpen(0, now);
    begin(); send(c, 0xC0);
    expect(closedWith(c)).toBe(CloseReason.ProtocolError);
    brokerClosed(c, now);
  });

  it("[MQTT-3.1.0-2] closes on a second CONNECT", () => {
    const c = connected("twice");
    connect("twice");
    send(c, 0x10);
    expect(closedWith(c)).toBe(CloseReason.ProtocolError);
    brokerClosed(c, now);
    expect(sessionsInUse()).toBe(0);
  });

  it("refuses with CONNACK 3 when the session table is full, then recovers", () => {
    const conns = memory.data(4 * 32);
    for (let i = 0; i < MAX_SESSIONS; i++) {
      const c = brokerOpen(0, now);
      store<i32>(conns + <usize>i * 4, c);
      connectNumbered(c, i);
      take(c);
      expect(sent(3)).toBe(0);
    }
    const extra = brokerOpen(0, now);
    connect("one-too-many");
    send(extra, 0x10);
    take(extra);
    expect(sent(3)).toBe(3); // server unavailable
    expect(closedWith(extra)).toBe(CloseReason.Refused);
    brokerClosed(extra, now);
    for (let i = 0; i < MAX_SESSIONS; i++) brokerClosed(load<i32>(conns + <usize>i * 4), now);
    expect(sessionsInUse()).toBe(0);
    expect(connectionsInUse()).toBe(0);
  });

  it("returns -1 from open when every connection slot is taken", () => {
    const conns = memory.data(4 * 32);
    for (let i = 0; i < MAX_CONNECTIONS; i++) store<i32>(conns + <usize>i * 4, brokerOpen(0, now));
    expect(brokerOpen(0, now)).toBe(-1);
    for (let i = 0; i < MAX_CONNECTIONS; i++) brokerClosed(load<i32>(conns + <usize>i * 4), now);
    expect(connectionsInUse()).toBe(0);
  });

  it("[MQTT-3.1.2-24] closes after 1.5 keep-alive periods of silence", () => {
    const c = brokerOpen(0, now);
    connect("sleepy", true, 2);
    send(c, 0x10);
    advance(2900);
    brokerTick(now);
    expect(closedWith(c)).toBe(-1);
    advance(200);
    brokerTick(now);
    expect(closedWith(c)).toBe(CloseReason.KeepAliveTimeout);
    brokerClosed(c, now);
  });

  it("closes a connection that never sends CONNECT", () => {
    const c = brokerOpen(0, now);
    advance(10001);
    brokerTick(now);
    expect(closedWith(c)).toBe(CloseReason.ConnectTimeout);
    brokerClosed(c, now);
  });
});

describe("subscriptions and delivery", () => {
  it("answers SUBACK 0x80 once the subscription table is full", () => {
    const c = connected("many");
    let failed = 0;
    for (let i = 0; i < MAX_SUBSCRIPTIONS + 3; i++) {
      idOf(i % 100);
      begin(); word(i + 1); word(5); ascii("t/"); byte(load<u8>(ID)); byte(load<u8>(ID + 1)); byte(load<u8>(ID + 2)); byte(i >= 100 ? 1 : 0);
      send(c, 0x82);
      take(c);
      if (sent(4) == 0x80) failed++;
    }
    expect(subscriptionsInUse()).toBe(MAX_SUBSCRIPTIONS);
    expect(failed).toBe(3);
    brokerClosed(c, now);
    expect(subscriptionsInUse()).toBe(0);
    expect(nodesInUse()).toBe(1); // the root
  });

  it("[MQTT-3.3.5-1] overlapping subscriptions deliver one copy at the highest QoS", () => {
    const sub = connected("sub");
    subscribe1(sub, 1, "x/#", 1); take(sub);
    subscribe1(sub, 2, "x/+", 2); take(sub);
    const pub = connected("pub");
    publish(pub, "x/y", "m", 2, false, 5);
    take(sub);
    expect(sent(0)).toBe(0x34); // one PUBLISH, QoS 2
    expect(sentLen).toBe(2 + 2 + 3 + 2 + 1);
    publish(pub, "x/y", "m", 1, false, 6);
    take(sub);
    expect(sent(0)).toBe(0x32); // min(published 1, granted 2)
    brokerClosed(sub, now); brokerClosed(pub, now);
    expect(messagesInUse()).toBe(0);
    expect(deliveriesInUse()).toBe(0);
  });

  it("queues QoS 1 for an offline persistent session up to its limit, then drops and counts", () => {
    let sub = connected("away", false);
    subscribe1(sub, 1, "q", 1); take(sub);
    brokerClosed(sub, now);
    const pub = connected("pub2");
    const droppedBefore = statGet(Stat.DroppedQueueFull);
    for (let i = 0; i < QUEUE_MAX + 5; i++) publish(pub, "q", "x", 1, false, 1 + (i % 60000));
    expect(statGet(Stat.DroppedQueueFull) - droppedBefore).toBe(5);
    expect(deliveriesInUse()).toBe(QUEUE_MAX);
    // reconnect: session present, in-flight window sent at once
    sub = brokerOpen(0, now);
    connect("away", false);
    send(sub, 0x10);
    // acknowledge everything as it arrives: the rest of the queue follows the window
    expect(ackAll(sub)).toBe(QUEUE_MAX);
    expect(connackFlags).toBe(1); // session present [MQTT-3.2.2-2]
    expect(deliveriesInUse()).toBe(0);
    brokerClosed(sub, now);
    brokerClosed(pub, now);
    // a persistent session stays
    expect(sessionsInUse()).toBe(1);
    const c = connected("away", true); // a clean connect removes it
    brokerClosed(c, now);
    expect(sessionsInUse()).toBe(0);
    expect(messagesInUse()).toBe(0);
  });
});

describe("MQTT 5 maximum packet size of the client [MQTT-3.1.2-25]", () => {
  it("drops a QoS 1 message too large for two subscribers without losing the message store", () => {
    const small1 = brokerOpen(0, now);
    begin(); str("MQTT"); byte(5); byte(2); word(60); byte(5); byte(0x27); word(0); word(20); str("small1");
    send(small1, 0x10); take(small1);
    const small2 = brokerOpen(0, now);
    begin(); str("MQTT"); byte(5); byte(2); word(60); byte(5); byte(0x27); word(0); word(20); str("small2");
    send(small2, 0x10); take(small2);
    begin(); word(1); byte(0); str("big/#"); byte(1); send(small1, 0x82); take(small1);
    begin(); word(1); byte(0); str("big/#"); byte(1); send(small2, 0x82); take(small2);
    const big = connected("big-reader");
    subscribe1(big, 1, "big/#", 1); take(big);
    const pub = connected("big-pub");
    publish(pub, "big/x", "a payload longer than twenty bytes", 1, false, 9);
    expect(take(small1)).toBe(0);
    expect(take(small2)).toBe(0);
    expect(ackAll(big)).toBe(1);
    expect(messagesInUse()).toBe(0);
    expect(deliveriesInUse()).toBe(0);
    publish(pub, "big/y", "short", 1, false, 10);
    expect(ackAll(small1)).toBe(1);
    expect(ackAll(big)).toBe(1);
    brokerClosed(small1, now); brokerClosed(small2, now); brokerClosed(big, now); brokerClosed(pub, now);
    expect(messagesInUse()).toBe(0);
  });
});

describe("fan-out encodes once per wire form", () => {
  it("gives three 3.1.1 subscribers the same bytes and an MQTT 5 subscriber with an id its own", () => {
    const a = connected("fan-a"); subscribe1(a, 1, "fan/#", 0); take(a);
    const b = connected("fan-b"); subscribe1(b, 1, "fan/+", 0); take(b);
    const c = connected("fan-c"); subscribe1(c, 1, "fan/x", 0); take(c);
    const v5 = brokerOpen(0, now);
    begin(); str("MQTT"); byte(5); byte(2); word(60); byte(0); str("fan-v5");
    send(v5, 0x10); take(v5);
    begin(); word(1); byte(2); byte(0x0B); byte(7); str("fan/#"); byte(0); send(v5, 0x82); take(v5);
    const pub = connected("fan-pub");
    publish(pub, "fan/x", "hello", 0);
    // 0x30, length, topic "fan/x", payload "hello"
    expect(take(a)).toBe(2 + 2 + 5 + 5);
    expect(sent(0)).toBe(0x30);
    expect(take(b)).toBe(14);
    expect(sent(13)).toBe(0x6F); // 'o'
    expect(take(c)).toBe(14);
    // MQTT 5: properties carry subscription identifier 7
    expect(take(v5)).toBe(2 + 2 + 5 + 3 + 5);
    expect(sent(9)).toBe(2);     // property length
    expect(sent(10)).toBe(0x0B);
    expect(sent(11)).toBe(7);
    brokerClosed(a, now); brokerClosed(b, now); brokerClosed(c, now); brokerClosed(v5, now); brokerClosed(pub, now);
  });
});
