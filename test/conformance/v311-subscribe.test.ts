// MQTT 3.1.1 conformance: SUBSCRIBE / UNSUBSCRIBE, topic names and filters, wildcards,
// '$' topics, UTF-8 rules and reserved flags (sections 1.5, 2.2, 3.8-3.11, 4.7, 4.8).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  QUIET_MS,
  T,
  collect,
  disconnect,
  expectClose,
  expectNothing,
  expectOpen,
  nextOfType,
  online,
  packet,
  parsePublish,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  str,
  sub,
  subscribePacket,
  topicBase,
  u16,
  uid,
  unsub,
  unsubscribePacket,
  useBroker,
  type RawClient,
} from "./helpers.js";

/** Publishes `topics` (QoS 0) and then a marker; returns the topics `s` received before the marker. */
async function deliveredOf(s: RawClient, p: RawClient, topics: string[], marker: string): Promise<string[]> {
  for (const t of topics) p.write(publishPacket({ topic: t, payload: "x" }));
  p.write(publishPacket({ topic: marker, payload: "marker" }));
  const got: string[] = [];
  for (;;) {
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    if (m.topic === marker) return got;
    got.push(m.topic);
  }
}

describe("MQTT 3.1.1 SUBSCRIBE and UNSUBSCRIBE", () => {
  const broker = useBroker();

  test("[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-2.3.1-7] [MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1] [MQTT-3.9.3-2] one SUBACK with the packet id and one code per filter, in order", T, async () => {
    const base = topicBase("suback");
    const s = await online(broker());
    s.write(subscribePacket(0xabcd, [[`${base}/a`, 2], [`${base}/b`, 0], [`${base}/c`, 1]]));
    const ack = await nextOfType(s, PacketType.SUBACK);
    assert.equal(ack.flags, 0, "[MQTT-2.2.2-1] SUBACK flags");
    assert.deepEqual([...ack.body], [0xab, 0xcd, 2, 0, 1]);
    await expectNothing(s, QUIET_MS, PacketType.SUBACK, "a single SUBACK");
    // all three subscriptions exist
    const p = await online(broker());
    for (const t of ["a", "b", "c"]) p.write(publishPacket({ topic: `${base}/${t}`, payload: t }));
    const got = (await collect(s, PacketType.PUBLISH, 500)).map((m) => parsePublish(m).topic);
    assert.deepEqual(got, [`${base}/a`, `${base}/b`, `${base}/c`]);
  });

  test("[MQTT-3.8.4-5] [MQTT-3.9.3-2] a filter the server cannot take (longer than it allows) gets 0x80 while the others in the packet succeed", T, async () => {
    const base = topicBase("fail");
    const s = await online(broker());
    const codes = await sub(s, [[`${base}/ok`, 1], [`${base}/${"x".repeat(4000)}`, 1], [`${base}/ok2`, 2]]);
    assert.equal(codes.length, 3);
    assert.deepEqual([codes[0], codes[2]], [1, 2]);
    assert.ok(codes[1] === 0x80 || codes[1] <= 1, `code ${codes[1]}`);
    for (const c of codes) assert.ok([0, 1, 2, 0x80].includes(c), `code ${c} is reserved`);
  });

  test("[MQTT-3.8.4-6] messages go out at the lower of published and granted QoS", T, async () => {
    const base = topicBase("down");
    const s = await online(broker());
    await sub(s, [[`${base}/g0`, 0], [`${base}/g1`, 1], [`${base}/g2`, 2]]);
    const p = await online(broker());
    const cases: Array<[string, number, number]> = [
      ["g0", 2, 0], ["g1", 2, 1], ["g2", 2, 2], ["g0", 1, 0], ["g1", 0, 0], ["g2", 1, 1],
    ];
    let id = 1;
    for (const [t, q, want] of cases) {
      p.write(publishPacket({ topic: `${base}/${t}`, payload: `${q}`, qos: q, id: id++ }));
      const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
      assert.equal(m.qos, want, `published QoS ${q} to a QoS ${t.slice(1)} subscription`);
      if (m.qos === 1) s.write(puback(m.id));
      if (m.qos === 2) {
        s.write(pubrec(m.id));
        await nextOfType(s, PacketType.PUBREL);
        s.write(pubcomp(m.id));
      }
    }
  });

  test("[MQTT-3.3.5-1] overlapping subscriptions: delivered at the highest matching QoS", T, async () => {
    const base = topicBase("overlap");
    const s = await online(broker());
    await sub(s, [[`${base}/#`, 2], [`${base}/a`, 0], [`${base}/+`, 1]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/a`, payload: "x", qos: 2, id: 1 }));
    const got = (await collect(s, PacketType.PUBLISH, 600)).map(parsePublish);
    assert.ok(got.length >= 1, "delivered");
    assert.equal(Math.max(...got.map((m) => m.qos)), 2, `QoS of copies: ${got.map((m) => m.qos)}`);
  });

  test("[MQTT-3.8.4-3] subscribing again to the same filter replaces the subscription (one copy, the new QoS)", T, async () => {
    const base = topicBase("replace");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    assert.deepEqual(await sub(s, [[`${base}/t`, 0]], 2), [0]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 2, id: 1 }));
    const got = (await collect(s, PacketType.PUBLISH, 500)).map(parsePublish);
    assert.deepEqual(got.map((m) => m.qos), [0], "one copy at the replacing QoS 0");
  });

  test("[MQTT-3.8.3-2] wildcard filters are supported: granted and matched", T, async () => {
    const base = topicBase("wc");
    const s = await online(broker());
    assert.deepEqual(await sub(s, [[`${base}/+/x`, 0], [`${base}/deep/#`, 0]]), [0, 0]);
    const p = await online(broker());
    const got = await deliveredOf(s, p, [`${base}/a/x`, `${base}/a/y`, `${base}/deep`, `${base}/deep/1/2`], `${base}/m/x`);
    assert.deepEqual(got, [`${base}/a/x`, `${base}/deep`, `${base}/deep/1/2`]);
  });

  test("[MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-2.3.1-7] UNSUBACK carries the packet id, even when nothing was subscribed", T, async () => {
    const s = await online(broker());
    s.write(unsubscribePacket(0x0102, [`${topicBase("none")}/never`]));
    const ack = await nextOfType(s, PacketType.UNSUBACK);
    assert.equal(ack.flags, 0, "[MQTT-2.2.2-1] UNSUBACK flags");
    assert.deepEqual([...ack.body], [0x01, 0x02]);
  });

  test("[MQTT-3.10.4-1] [MQTT-3.10.4-2] unsubscribing compares filters character by character; only an exact match is removed", T, async () => {
    const base = topicBase("unsub");
    const s = await online(broker());
    await sub(s, [[`${base}/+`, 0]]);
    const p = await online(broker());
    await unsub(s, [`${base}/a`]); // not the same filter: nothing removed
    assert.deepEqual(await deliveredOf(s, p, [`${base}/a`], `${base}/m1`), [`${base}/a`]);
    await unsub(s, [`${base}/+`], 3);
    p.write(publishPacket({ topic: `${base}/a`, payload: "after" }));
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "nothing after the exact unsubscribe");
  });

  test("[MQTT-3.10.4-6] an UNSUBSCRIBE with several filters removes them all and is answered by one UNSUBACK", T, async () => {
    const base = topicBase("multi");
    const s = await online(broker());
    await sub(s, [[`${base}/a`, 0], [`${base}/b`, 0], [`${base}/c`, 0]]);
    await unsub(s, [`${base}/a`, `${base}/c`, `${base}/zzz`], 9);
    await expectNothing(s, 100, PacketType.UNSUBACK, "one UNSUBACK");
    const p = await online(broker());
    assert.deepEqual(await deliveredOf(s, p, [`${base}/a`, `${base}/c`], `${base}/b`), []);
  });

  test("[MQTT-3.10.4-3] a QoS 2 delivery started before UNSUBSCRIBE is completed", T, async () => {
    const base = topicBase("inflight");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 2, id: 1 }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    await unsub(s, [`${base}/t`]);
    s.write(pubrec(m.id));
    const rel = await nextOfType(s, PacketType.PUBREL);
    assert.equal(rel.body.readUInt16BE(0), m.id);
    s.write(pubcomp(m.id));
    await expectOpen(s);
  });

  const violations: Array<[string, () => Buffer]> = [
    ["[MQTT-3.8.1-1] [MQTT-2.2.2-2] SUBSCRIBE with fixed-header flags 0000", () => subscribePacket(1, [["a/b", 0]], 0x00)],
    ["[MQTT-3.8.1-1] [MQTT-2.2.2-2] SUBSCRIBE with fixed-header flags 0011", () => subscribePacket(1, [["a/b", 0]], 0x03)],
    ["[MQTT-3.8.3-3] SUBSCRIBE without any filter", () => packet(PacketType.SUBSCRIBE, 0x02, u16(5))],
    ["[MQTT-3.8.3-4] SUBSCRIBE requesting QoS 3", () => subscribePacket(1, [["a/b", 3]])],
    ["[MQTT-3.8.3-4] SUBSCRIBE with reserved bits set in the QoS byte", () => subscribePacket(1, [["a/b", 0x04 | 1]])],
    ["[MQTT-3.8.3-4] SUBSCRIBE with the top reserved bit set in the QoS byte", () => subscribePacket(1, [["a/b", 0x80]])],
    ["[MQTT-2.3.1-1] SUBSCRIBE with packet id 0", () => subscribePacket(0, [["a/b", 0]])],
    ["[MQTT-1.5.3-1] [MQTT-3.8.3-1] SUBSCRIBE filter with invalid UTF-8", () => subscribePacket(1, [[Buffer.from([0x61, 0x2f, 0xfe]), 0]])],
    ["[MQTT-1.5.3-1] SUBSCRIBE filter with a surrogate (ED BF BF)", () => subscribePacket(1, [[Buffer.from([0x61, 0xed, 0xbf, 0xbf]), 0]])],
    ["[MQTT-1.5.3-2] [MQTT-4.7.3-2] SUBSCRIBE filter containing U+0000", () => subscribePacket(1, [[Buffer.from([0x61, 0x00]), 0]])],
    ["[MQTT-3.10.1-1] [MQTT-2.2.2-2] UNSUBSCRIBE with fixed-header flags 0000", () => unsubscribePacket(1, ["a/b"], 0x00)],
    ["[MQTT-3.10.1-1] [MQTT-2.2.2-2] UNSUBSCRIBE with fixed-header flags 1010", () => unsubscribePacket(1, ["a/b"], 0x0a)],
    ["[MQTT-3.10.3-2] UNSUBSCRIBE without any filter", () => packet(PacketType.UNSUBSCRIBE, 0x02, u16(5))],
    ["[MQTT-2.3.1-1] UNSUBSCRIBE with packet id 0", () => unsubscribePacket(0, ["a/b"])],
    ["[MQTT-1.5.3-1] [MQTT-3.10.3-1] UNSUBSCRIBE filter with invalid UTF-8", () => unsubscribePacket(1, [Buffer.from([0x61, 0xc3])])],
  ];
  for (const [name, bytes] of violations) {
    test(`${name}: closed, no SUBACK/UNSUBACK`, T, async () => {
      const c = await online(broker());
      c.write(bytes());
      const left = await expectClose(c);
      assert.deepEqual(left.map((p) => p.type), [], "nothing answered");
    });
  }

  test("[MQTT-3.8.1-1] a SUBSCRIBE with bad flags creates no subscription", T, async () => {
    const base = topicBase("badsub");
    const id = uid("badsub");
    const c = await online(broker(), { clientId: id, clean: false });
    c.write(subscribePacket(1, [[`${base}/t`, 1]], 0x00));
    await expectClose(c);
    const again = await online(broker(), { clientId: id, clean: false });
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 1, id: 1 }));
    await expectNothing(again, QUIET_MS, PacketType.PUBLISH, "no subscription was made");
    again.write(disconnect());
  });

  test("[MQTT-3.10.1-1] an UNSUBSCRIBE with bad flags removes nothing", T, async () => {
    const base = topicBase("badunsub");
    const id = uid("badunsub");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 1]]);
    c.write(unsubscribePacket(2, [`${base}/t`], 0x00));
    await expectClose(c);
    const again = await online(broker(), { clientId: id, clean: false });
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(again, PacketType.PUBLISH));
    assert.equal(m.topic, `${base}/t`, "the subscription is still there");
    again.write(puback(m.id));
  });
});

describe("MQTT 3.1.1 topic names and filters", () => {
  const broker = useBroker();

  async function check(filter: string, topics: string[], expected: string[]) {
    const s = await online(broker());
    const codes = await sub(s, [[filter, 0]]);
    assert.deepEqual(codes, [0], `filter ${filter} granted`);
    const p = await online(broker());
    const marker = uid("marker");
    await sub(s, [[marker, 0]], 7);
    const got = await deliveredOf(s, p, topics, marker);
    assert.deepEqual(got, expected, `filter ${filter}`);
  }

  test("[MQTT-4.7.1-2] '#' matches the parent level and every level below", T, async () => {
    const b = topicBase("hash");
    await check(`${b}/sport/#`, [`${b}/sport`, `${b}/sport/`, `${b}/sport/tennis/p1`, `${b}/sports`], [`${b}/sport`, `${b}/sport/`, `${b}/sport/tennis/p1`]);
  });

  test("[MQTT-4.7.1-3] '+' matches exactly one level, including an empty one", T, async () => {
    const b = topicBase("plus");
    await check(`${b}/+/p1`, [`${b}/tennis/p1`, `${b}//p1`, `${b}/p1`, `${b}/a/b/p1`], [`${b}/tennis/p1`, `${b}//p1`]);
    await check(`${b}/x/+`, [`${b}/x`, `${b}/x/`, `${b}/x/y`, `${b}/x/y/z`], [`${b}/x/`, `${b}/x/y`]);
  });

  for (const f of ["a/#/b", "a#", "a/b#", "#/a", "a/+b", "a+/b", "+a", "a/++"]) {
    test(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.8.0-1] the invalid filter '${f}' is refused (SUBACK 0x80 or the connection closed), never granted`, T, async () => {
      const s = await online(broker());
      s.write(subscribePacket(1, [[f, 0]]));
      const first = await Promise.race([
        nextOfType(s, PacketType.SUBACK).then((p) => p),
        s.waitClose(5000).then(() => null),
      ]);
      if (first) assert.deepEqual([...first.body.subarray(2)], [0x80], `SUBACK for '${f}'`);
    });
  }

  test("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", T, async () => {
    const b = topicBase("dollar");
    const s = await online(broker());
    await sub(s, [["#", 0], ["+/x", 0], [`$${b}/+`, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `$${b}/x`, payload: "dollar" }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.topic, `$${b}/x`, "the explicit $ filter matches");
    const more = (await collect(s, PacketType.PUBLISH, QUIET_MS)).map(parsePublish).filter((x) => x.topic.startsWith("$"));
    assert.deepEqual(more.map((x) => x.topic), [], "'#' and '+/x' must not deliver a second copy");
  });

  test("[MQTT-4.7.3-4] [MQTT-1.5.3-3] no normalisation: case, trailing '/', Unicode forms and U+FEFF all stay distinct", T, async () => {
    const b = topicBase("norm");
    const nfc = `${b}/caf\u00e9`;
    const nfd = `${b}/cafe\u0301`;
    const bom = `${b}/\ufeffx`;
    await check(`${b}/Accounts`, [`${b}/accounts`, `${b}/ACCOUNTS`, `${b}/Accounts`], [`${b}/Accounts`]);
    await check(`${b}/x`, [`${b}/x/`, `/${b}/x`, bom, `${b}/x`], [`${b}/x`]);
    await check(nfc, [nfd, nfc], [nfc]);
    // the bytes EF BB BF are kept in the delivered topic
    const s = await online(broker());
    await sub(s, [[bom, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: bom, payload: "bom" }));
    const got = await nextOfType(s, PacketType.PUBLISH);
    const tlen = got.body.readUInt16BE(0);
    assert.deepEqual(got.body.subarray(2, 2 + tlen), Buffer.from(bom, "utf8"));
  });

  test("[MQTT-4.7.3-1] a PUBLISH with an empty topic name closes the connection", T, async () => {
    const c = await online(broker());
    c.write(publishPacket({ topic: "", payload: "x", qos: 1, id: 1 }));
    const left = await expectClose(c);
    assert.deepEqual(left.map((p) => p.type), [], "no PUBACK");
  });

  test("[MQTT-4.7.3-1] a SUBSCRIBE with an empty filter is refused (0x80 or closed)", T, async () => {
    const c = await online(broker());
    c.write(subscribePacket(1, [["", 0]]));
    const first = await Promise.race([nextOfType(c, PacketType.SUBACK), c.waitClose(5000).then(() => null)]);
    if (first) assert.deepEqual([...first.body.subarray(2)], [0x80]);
  });

  const badNames: Array<[string, Buffer]> = [
    ["[MQTT-1.5.3-1] [MQTT-3.3.2-1] invalid UTF-8 (0xFF)", Buffer.from([0x61, 0x2f, 0xff])],
    ["[MQTT-1.5.3-1] a surrogate (ED A0 80)", Buffer.from([0x61, 0x2f, 0xed, 0xa0, 0x80])],
    ["[MQTT-1.5.3-1] an overlong encoding of '/' (C0 AF)", Buffer.from([0x61, 0xc0, 0xaf])],
    ["[MQTT-1.5.3-1] a truncated sequence (E2 82)", Buffer.from([0x61, 0xe2, 0x82])],
    ["[MQTT-1.5.3-1] a code point above U+10FFFF (F4 90 80 80)", Buffer.from([0x61, 0xf4, 0x90, 0x80, 0x80])],
    ["[MQTT-1.5.3-2] [MQTT-4.7.3-2] U+0000", Buffer.from([0x61, 0x00, 0x62])],
  ];
  for (const [name, topic] of badNames) {
    test(`${name} in a PUBLISH topic closes the connection; nothing delivered, no PUBACK`, T, async () => {
      const b = topicBase("utf");
      const s = await online(broker());
      await sub(s, [["#", 1]]);
      const c = await online(broker());
      c.write(publishPacket({ topic, payload: b, qos: 1, id: 1 }));
      const left = await expectClose(c);
      assert.deepEqual(left.map((p) => p.type), [], "no PUBACK");
      const got = (await collect(s, PacketType.PUBLISH, QUIET_MS)).map(parsePublish).filter((m) => m.payload.toString() === b);
      assert.deepEqual(got, [], "not delivered");
    });
  }

  test("[MQTT-1.5.3-1] valid 4-byte UTF-8 (U+1F600) in topic names is accepted and delivered intact", T, async () => {
    const t = `${topicBase("emoji")}/\u{1F600}/\u00e9`;
    const s = await online(broker());
    await sub(s, [[t, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: t, payload: "ok" }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.topic, t);
  });

  test("[MQTT-7.1.1-1] the server speaks MQTT over TCP (an ordered, lossless byte stream), even one byte at a time", T, async () => {
    const t = `${topicBase("drip")}/t`;
    const s = await online(broker());
    await sub(s, [[t, 0]]);
    const p = await online(broker());
    const bytes = Buffer.concat([publishPacket({ topic: t, payload: "a" }), str("").subarray(0, 0), publishPacket({ topic: t, payload: "b" })]);
    for (const b of bytes) {
      p.write([b]);
      await new Promise((r) => setImmediate(r));
    }
    const got = [parsePublish(await nextOfType(s, PacketType.PUBLISH)), parsePublish(await nextOfType(s, PacketType.PUBLISH))];
    assert.deepEqual(got.map((m) => m.payload.toString()), ["a", "b"]);
  });

  const reserved: Array<[string, Buffer]> = [
    ["[MQTT-2.2.2-1] [MQTT-2.2.2-2] PINGREQ with flags 0001", packet(PacketType.PINGREQ, 0x01)],
    ["[MQTT-2.2.2-2] PUBACK with flags 0010", packet(PacketType.PUBACK, 0x02, u16(1))],
    ["[MQTT-2.2.2-2] PUBREC with flags 1000", packet(PacketType.PUBREC, 0x08, u16(1))],
    ["[MQTT-2.2.2-2] PUBCOMP with flags 0001", packet(PacketType.PUBCOMP, 0x01, u16(1))],
    ["[MQTT-4.8.0-1] reserved packet type 0", packet(0, 0)],
    ["[MQTT-4.8.0-1] reserved packet type 15", packet(15, 0)],
    ["[MQTT-4.8.0-1] a CONNACK sent by a client", packet(PacketType.CONNACK, 0, Buffer.from([0, 0]))],
    ["[MQTT-4.8.0-1] a SUBACK sent by a client", packet(PacketType.SUBACK, 0, Buffer.from([0, 1, 0]))],
    ["[MQTT-4.8.0-1] a remaining length of five bytes", Buffer.from([0xc0, 0x80, 0x80, 0x80, 0x80, 0x00])],
    ["[MQTT-4.8.0-1] a PINGREQ with a remaining length of 1", Buffer.from([0xc0, 0x01, 0x00])],
  ];
  for (const [name, bytes] of reserved) {
    test(`${name} closes the connection`, T, async () => {
      const c = await online(broker());
      c.write(bytes);
      const left = await expectClose(c);
      assert.ok(!left.some((p) => p.type === PacketType.PINGRESP), "no PINGRESP");
    });
  }

  test("[MQTT-4.8.0-1] [MQTT-3.1.0-1] a packet other than CONNECT first closes the connection without any answer", T, async () => {
    const { RawClient } = await import("./helpers.js");
    for (const bytes of [packet(PacketType.PINGREQ, 0), subscribePacket(1, [["#", 0]]), publishPacket({ topic: "a", payload: "b" })]) {
      const raw = await RawClient.open(broker());
      raw.write(bytes);
      await raw.waitClose(5000);
      assert.equal(raw.received.length, 0, "nothing sent back");
    }
  });
});
