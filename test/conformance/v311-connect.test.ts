// MQTT 3.1.1 conformance: CONNECT and CONNACK, client identifiers, keep-alive,
// client-id takeover and will messages (sections 3.1, 3.2, 3.14 and the will rules).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  QUIET_MS,
  T,
  collect,
  connectPacket,
  disconnect,
  expectClose,
  expectNothing,
  expectOpen,
  nextOfType,
  online,
  openRaw,
  packet,
  packetTypes,
  parsePublish,
  pingreq,
  publishPacket,
  rawConnect,
  str,
  sub,
  subscribePacket,
  topicBase,
  u16,
  uid,
  useBroker,
} from "./helpers.js";

describe("MQTT 3.1.1 CONNECT / CONNACK", () => {
  const broker = useBroker();

  test("[MQTT-3.1.4-4] [MQTT-3.2.0-1] [MQTT-3.2.2-1] a valid CONNECT is answered first by CONNACK 0 with Session Present 0", T, async () => {
    const raw = await openRaw(broker());
    // CONNECT, SUBSCRIBE and PINGREQ in one write: CONNACK must still come first
    raw.write(Buffer.concat([connectPacket({ clientId: uid("first") }), subscribePacket(1, [[`${topicBase()}/x`, 0]]), pingreq()]));
    const first = await raw.next(5000, "CONNACK");
    assert.equal(first.type, PacketType.CONNACK, "[MQTT-3.2.0-1] the first packet from the server is CONNACK");
    assert.equal(first.flags, 0, "[MQTT-2.2.2-1] CONNACK flags");
    assert.deepEqual([...first.body], [0, 0], "CONNACK: flags 0 (Session Present 0), return code 0");
    await nextOfType(raw, PacketType.SUBACK);
    await nextOfType(raw, PacketType.PINGRESP);
  });

  test("[MQTT-3.1.0-2] [MQTT-4.8.0-1] a second CONNECT on the same connection closes it, with no second CONNACK", T, async () => {
    const raw = await online(broker(), { clientId: uid("twice") });
    raw.write(connectPacket({ clientId: uid("twice2") }));
    const left = await expectClose(raw);
    assert.deepEqual(left.map((p) => p.type), [], "no packet (no second CONNACK) before the close");
  });

  test("[MQTT-3.1.2-1] a CONNECT with protocol name 'MQTX' is not accepted as MQTT 3.1.1", T, async () => {
    const raw = await openRaw(broker(), connectPacket({ clientId: uid("name"), protocolName: "MQTX" }));
    await expectClose(raw);
    const types = packetTypes(raw.received);
    // the server may refuse with CONNACK 0x01 before closing, but must never accept
    const ok = raw.received.length === 0 || (types.length === 1 && types[0] === PacketType.CONNACK && raw.received[3] !== 0);
    assert.ok(ok, `no accepting CONNACK: got ${raw.received.toString("hex")}`);
  });

  for (const level of [0, 2, 6]) {
    test(`[MQTT-3.1.2-2] [MQTT-3.2.2-4] [MQTT-3.2.2-5] protocol level ${level} is refused with CONNACK 0x01 and Session Present 0, then closed`, T, async () => {
      const id = uid("lvl");
      // a stored session for the same id must not make Session Present 1 on a refusal
      const keep = await online(broker(), { clientId: id, clean: false });
      keep.write(disconnect());
      await expectClose(keep);
      const raw = await openRaw(broker(), connectPacket({ clientId: id, clean: false, protocolLevel: level }));
      const ack = await nextOfType(raw, PacketType.CONNACK);
      assert.deepEqual([...ack.body], [0, 1], "CONNACK: Session Present 0, return code 0x01");
      await expectClose(raw);
    });
  }

  test("[MQTT-3.1.2-3] [MQTT-3.1.4-1] the reserved connect flag set: closed without CONNACK", T, async () => {
    const raw = await openRaw(broker(), connectPacket({ clientId: uid("rsv"), extraFlags: 0x01 }));
    await expectClose(raw);
    assert.deepEqual(packetTypes(raw.received), [], "no CONNACK");
  });

  const malformed: Array<[string, () => Buffer]> = [
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-22] password flag without user name flag", () => connectPacket({ clientId: uid("pw"), password: "secret" })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-13] will QoS 1 without the will flag", () => connectPacket({ clientId: uid("wq"), extraFlags: 0x08 })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-15] will retain without the will flag", () => connectPacket({ clientId: uid("wr"), extraFlags: 0x20 })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-14] will QoS 3", () => connectPacket({ clientId: uid("w3"), will: { topic: "w", payload: "x", qos: 3 } })],
    [
      "[MQTT-3.1.4-1] [MQTT-3.1.2-9] will flag set but no will topic or message in the payload",
      () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 0x06]), u16(60), str(uid("wm"))])),
    ],
    [
      "[MQTT-3.1.4-1] [MQTT-3.1.2-19] user name flag set but no user name in the payload",
      () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 0x82]), u16(60), str(uid("un"))])),
    ],
    [
      "[MQTT-3.1.4-1] [MQTT-3.1.2-21] password flag set but no password in the payload",
      () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 0xc2]), u16(60), str(uid("pw")), str("user")])),
    ],
    [
      "[MQTT-3.1.4-1] [MQTT-3.1.3-3] no client identifier field at all",
      () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 0x02]), u16(60)])),
    ],
    [
      "[MQTT-3.1.4-1] CONNECT truncated inside the client identifier",
      () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 2]), u16(60), u16(10), Buffer.from("ab")])),
    ],
    ["[MQTT-1.5.3-1] [MQTT-3.1.3-4] client identifier with invalid UTF-8 (0xFF)", () => connectPacket({ clientId: Buffer.from([0x61, 0xff, 0x62]) })],
    ["[MQTT-1.5.3-1] [MQTT-3.1.3-4] client identifier with a UTF-16 surrogate (ED A0 80)", () => connectPacket({ clientId: Buffer.from([0x61, 0xed, 0xa0, 0x80]) })],
    ["[MQTT-1.5.3-2] client identifier containing U+0000", () => connectPacket({ clientId: Buffer.from([0x61, 0x00, 0x62]) })],
    ["[MQTT-1.5.3-1] [MQTT-3.1.3-10] will topic with invalid UTF-8", () => connectPacket({ clientId: uid("wt"), will: { topic: Buffer.from([0x77, 0xc0, 0xaf]), payload: "x" } })],
    ["[MQTT-3.3.2-2] [MQTT-4.7.1-1] will topic containing a wildcard", () => connectPacket({ clientId: uid("wt"), will: { topic: "w/+", payload: "x" } })],
    ["[MQTT-2.2.2-2] CONNECT with fixed-header flags 0001", () => {
      const p = connectPacket({ clientId: uid("cf") });
      p[0] |= 0x01;
      return p;
    }],
  ];
  for (const [name, bytes] of malformed) {
    test(`${name}: closed without CONNACK`, T, async () => {
      const raw = await openRaw(broker(), bytes());
      await expectClose(raw);
      assert.deepEqual(packetTypes(raw.received), [], "no CONNACK");
    });
  }

  test("[MQTT-3.1.4-1] [MQTT-1.5.3-1] a user name encoded as a lone surrogate (ED B0 80) is refused", T, async () => {
    const p = packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 0x82]), u16(60), str(uid("un")), str(Buffer.from([0xed, 0xb0, 0x80]))]));
    const raw = await openRaw(broker(), p);
    await expectClose(raw);
    assert.deepEqual(packetTypes(raw.received), [], "no CONNACK");
  });

  test("[MQTT-3.1.3-5] client identifiers of 1 and 23 characters from [0-9a-zA-Z] are accepted", T, async () => {
    const short = await rawConnect(broker(), { clientId: "Z" });
    assert.equal(short.returnCode, 0);
    const id23 = ("a0B1" + Math.random().toString(36).replace(/[^a-z0-9]/g, "") + "ZyXwVuTsRqPoNmLkJiHg").slice(0, 23);
    assert.equal(id23.length, 23);
    const long = await rawConnect(broker(), { clientId: id23 });
    assert.equal(long.returnCode, 0);
    await expectOpen(short.raw);
    await expectOpen(long.raw);
  });

  test("[MQTT-3.1.3-6] [MQTT-3.1.3-2] an empty client identifier with clean session gets a unique identity of its own", T, async () => {
    const base = topicBase("anon");
    const a = await rawConnect(broker(), { clientId: "", clean: true });
    assert.equal(a.returnCode, 0, "the server allows a zero-length client id with CleanSession 1");
    const b = await rawConnect(broker(), { clientId: "", clean: true });
    assert.equal(b.returnCode, 0);
    // two anonymous clients are two sessions: neither takes the other over ...
    await expectOpen(a.raw);
    await expectOpen(b.raw);
    // ... and their subscriptions are their own
    assert.deepEqual(await sub(a.raw, [[`${base}/a`, 0]]), [0]);
    const pub = await online(broker());
    pub.write(publishPacket({ topic: `${base}/a`, payload: "for a" }));
    const got = parsePublish(await nextOfType(a.raw, PacketType.PUBLISH));
    assert.equal(got.payload.toString(), "for a");
    await expectNothing(b.raw, QUIET_MS, PacketType.PUBLISH, "b did not subscribe");
  });

  test("[MQTT-3.1.3-8] [MQTT-3.2.2-4] [MQTT-3.2.2-5] an empty client identifier with CleanSession 0: CONNACK 0x02, Session Present 0, closed", T, async () => {
    const raw = await openRaw(broker(), connectPacket({ clientId: "", clean: false }));
    const ack = await nextOfType(raw, PacketType.CONNACK);
    assert.deepEqual([...ack.body], [0, 2]);
    await expectClose(raw);
  });

  test("[MQTT-3.1.3-9] [MQTT-3.2.2-5] a client identifier the server rejects (longer than it allows): CONNACK 0x02, closed", T, async () => {
    const raw = await openRaw(broker(), connectPacket({ clientId: "x".repeat(5000) }));
    const ack = await nextOfType(raw, PacketType.CONNACK);
    assert.deepEqual([...ack.body], [0, 2]);
    await expectClose(raw);
  });

  test("[MQTT-3.1.4-5] after a refused CONNECT nothing the client sent is processed", T, async () => {
    const base = topicBase("refused");
    const watcher = await online(broker());
    await sub(watcher, [[`${base}/#`, 0]]);
    const raw = await openRaw(
      broker(),
      Buffer.concat([
        connectPacket({ clientId: "", clean: false }), // refused: 0x02
        publishPacket({ topic: `${base}/sneaky`, payload: "x" }),
        subscribePacket(3, [["#", 0]]),
        pingreq(),
      ]),
    );
    await expectClose(raw);
    assert.deepEqual(packetTypes(raw.received), [PacketType.CONNACK], "only the refusing CONNACK: no SUBACK, no PINGRESP");
    await expectNothing(watcher, QUIET_MS, PacketType.PUBLISH, "the PUBLISH after a refused CONNECT must not be delivered");
  });

  test("[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP", T, async () => {
    const raw = await online(broker());
    raw.write(pingreq());
    const p = await nextOfType(raw, PacketType.PINGRESP);
    assert.equal(p.flags, 0, "[MQTT-2.2.2-1] PINGRESP flags");
    assert.equal(p.body.length, 0);
  });

  test("[MQTT-3.1.4-2] a CONNECT with the client id of a connected client closes the older connection", T, async () => {
    const id = uid("take");
    const base = topicBase("take");
    const old = await online(broker(), { clientId: id });
    await sub(old, [[`${base}/t`, 0]]);
    const neu = await online(broker(), { clientId: id });
    await expectClose(old, 5000, "the older connection to be closed");
    // the new connection is the one that is served
    await expectOpen(neu);
    const pub = await online(broker());
    pub.write(publishPacket({ topic: `${base}/t`, payload: "x" }));
    await expectNothing(neu, QUIET_MS, PacketType.PUBLISH, "the new clean session did not subscribe");
  });
});

describe("MQTT 3.1.1 keep-alive", () => {
  const broker = useBroker();

  test("[MQTT-3.1.2-24] a silent client with keep-alive 1 s is closed after 1.5 s (not before 1 s, not after 3 s)", T, async () => {
    const start = Date.now();
    const raw = await online(broker(), { keepalive: 1 });
    const closedAt = await raw.waitClose(5000, "the keep-alive close");
    const after = closedAt - start;
    assert.ok(after >= 1000, `closed too early: after ${after} ms`);
    assert.ok(after <= 3000, `closed too late: after ${after} ms (1.5 x keep-alive is 1500 ms)`);
  });

  test("[MQTT-3.1.2-24] a client that sends PINGREQ within the keep-alive stays connected", T, async () => {
    const raw = await online(broker(), { keepalive: 1 });
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 800));
      raw.write(pingreq());
      await nextOfType(raw, PacketType.PINGRESP, 2000);
    }
    assert.equal(raw.isClosed, false, "still connected after 3.2 s of PINGREQ every 0.8 s");
  });

  test("[MQTT-3.1.2-24] [MQTT-3.1.2-8] the keep-alive close publishes the will", T, async () => {
    const base = topicBase("kawill");
    const watcher = await online(broker());
    await sub(watcher, [[`${base}/will`, 0]]);
    await online(broker(), { keepalive: 1, will: { topic: `${base}/will`, payload: "gone" } });
    const w = parsePublish(await nextOfType(watcher, PacketType.PUBLISH, 4000));
    assert.equal(w.payload.toString(), "gone");
  });
});

describe("MQTT 3.1.1 will messages", () => {
  const broker = useBroker();

  async function watch(topic: string, qos = 2) {
    const w = await online(broker());
    await sub(w, [[topic, qos]]);
    return w;
  }

  test("[MQTT-3.1.2-8] [MQTT-3.1.2-16] the will is published (not retained) when the network connection drops", T, async () => {
    const base = topicBase("will");
    const w = await watch(`${base}/w`);
    const c = await online(broker(), { will: { topic: `${base}/w`, payload: "bye", qos: 1 } });
    c.destroy();
    const p = parsePublish(await nextOfType(w, PacketType.PUBLISH));
    assert.equal(p.topic, `${base}/w`);
    assert.equal(p.payload.toString(), "bye");
    assert.equal(p.qos, 1);
    assert.equal(p.retain, false);
    // not retained: a later subscriber gets nothing
    const late = await online(broker());
    await sub(late, [[`${base}/w`, 1]]);
    await expectNothing(late, QUIET_MS, PacketType.PUBLISH, "[MQTT-3.1.2-16] a non-retained will is not stored");
  });

  test("[MQTT-3.1.2-8] [MQTT-4.8.0-1] the will is published when the server closes the connection for a protocol violation", T, async () => {
    const base = topicBase("willerr");
    const w = await watch(`${base}/w`);
    const c = await online(broker(), { will: { topic: `${base}/w`, payload: "violated" } });
    c.write(publishPacket({ topic: "a/+", payload: "x" }));
    await expectClose(c);
    const p = parsePublish(await nextOfType(w, PacketType.PUBLISH));
    assert.equal(p.payload.toString(), "violated");
  });

  test("[MQTT-3.1.2-17] a will with Will Retain 1 is published as a retained message", T, async () => {
    const base = topicBase("willret");
    const c = await online(broker(), { will: { topic: `${base}/w`, payload: "kept", retain: true } });
    c.destroy();
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const late = await online(broker());
    await sub(late, [[`${base}/w`, 0]]);
    const p = parsePublish(await nextOfType(late, PacketType.PUBLISH));
    assert.equal(p.payload.toString(), "kept");
    assert.equal(p.retain, true, "[MQTT-3.3.1-8] sent because of a new subscription: RETAIN 1");
  });

  test("[MQTT-3.1.2-10] [MQTT-3.14.4-3] after DISCONNECT the will is discarded, never published", T, async () => {
    const base = topicBase("willdisc");
    const w = await watch(`${base}/w`);
    const c = await online(broker(), { will: { topic: `${base}/w`, payload: "must not" } });
    c.write(disconnect());
    await expectClose(c);
    await expectNothing(w, QUIET_MS * 2, PacketType.PUBLISH, "no will after DISCONNECT");
  });

  test("[MQTT-3.1.2-10] the will is published once: a takeover publishes it and the new connection's close does not repeat it", T, async () => {
    const base = topicBase("willonce");
    const id = uid("once");
    const w = await watch(`${base}/w`);
    await online(broker(), { clientId: id, will: { topic: `${base}/w`, payload: "first" } });
    const second = await online(broker(), { clientId: id }); // takes over: the first will may fire here
    second.write(disconnect());
    await expectClose(second);
    const got = await collect(w, PacketType.PUBLISH, QUIET_MS * 2);
    assert.ok(got.length <= 1, `the will was published ${got.length} times`);
  });

  test("[MQTT-3.1.2-12] without the will flag nothing is published when the connection drops", T, async () => {
    const base = topicBase("nowill");
    const w = await watch(`${base}/#`);
    const c = await online(broker(), {});
    c.destroy();
    await expectNothing(w, QUIET_MS * 2, PacketType.PUBLISH, "no will");
  });

  test("[MQTT-3.14.1-1] a DISCONNECT with reserved flags set is a violation: closed, and the will is published", T, async () => {
    const base = topicBase("baddisc");
    const w = await watch(`${base}/w`);
    const c = await online(broker(), { will: { topic: `${base}/w`, payload: "not a clean disconnect" } });
    c.write(packet(PacketType.DISCONNECT, 0x01));
    await expectClose(c);
    const p = parsePublish(await nextOfType(w, PacketType.PUBLISH));
    assert.equal(p.payload.toString(), "not a clean disconnect");
  });
});
