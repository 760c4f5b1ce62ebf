// MQTT 3.1.1 conformance: PUBLISH and its acknowledgements, QoS 0/1/2 flows in both
// directions, DUP, retained messages, ordering (sections 2.3, 3.3-3.7, 4.3, 4.6).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import {
  BROKER_KIND,
  closeAll,
  expectOpen,
  startBroker,
  PacketType,
  QUIET_MS,
  T,
  collect,
  expectClose,
  expectNothing,
  nextOfType,
  online,
  packet,
  parsePublish,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  sub,
  topicBase,
  u16,
  useBroker,
} from "./helpers.js";

describe("MQTT 3.1.1 PUBLISH and QoS flows", () => {
  const broker = useBroker();

  test("[MQTT-3.3.4-1] [MQTT-2.3.1-6] [MQTT-4.3.2-2] QoS 0 gets no answer, QoS 1 a PUBACK and QoS 2 a PUBREC with the PUBLISH's identifier", T, async () => {
    const base = topicBase("ack");
    const c = await online(broker());
    c.write(publishPacket({ topic: `${base}/0`, payload: "q0" }));
    await expectNothing(c, QUIET_MS, undefined, "no answer to QoS 0");
    c.write(publishPacket({ topic: `${base}/1`, payload: "q1", qos: 1, id: 0x1234 }));
    const a = await nextOfType(c, PacketType.PUBACK);
    assert.equal(a.flags, 0, "[MQTT-2.2.2-1] PUBACK flags");
    assert.deepEqual([...a.body], [0x12, 0x34]);
    c.write(publishPacket({ topic: `${base}/2`, payload: "q2", qos: 2, id: 0xfedc }));
    const r = await nextOfType(c, PacketType.PUBREC);
    assert.equal(r.flags, 0, "[MQTT-2.2.2-1] PUBREC flags");
    assert.deepEqual([...r.body], [0xfe, 0xdc]);
    c.write(pubrel(0xfedc));
    const p = await nextOfType(c, PacketType.PUBCOMP);
    assert.equal(p.flags, 0, "[MQTT-2.2.2-1] PUBCOMP flags");
    assert.deepEqual([...p.body], [0xfe, 0xdc]);
  });

  test("[MQTT-2.3.1-5] [MQTT-3.3.1-2] [MQTT-4.3.1-1] a QoS 0 delivery has no packet identifier and DUP 0", T, async () => {
    const base = topicBase("q0");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const p = await online(broker());
    // published at QoS 1 with DUP 1: the QoS 0 copy still has DUP 0
    p.write(publishPacket({ topic: `${base}/t`, payload: "zero", qos: 1, id: 9, dup: true }));
    const got = await nextOfType(s, PacketType.PUBLISH);
    assert.equal(got.flags, 0, "flags: DUP 0, QoS 0, RETAIN 0");
    assert.deepEqual(got.body, Buffer.concat([u16(Buffer.byteLength(`${base}/t`)), Buffer.from(`${base}/t`), Buffer.from("zero")]), "topic then payload, no identifier");
  });

  test("[MQTT-2.3.1-1] [MQTT-2.3.1-4] [MQTT-4.3.2-1] the server's QoS 1 deliveries carry distinct non-zero identifiers, DUP 0, until acknowledged", T, async () => {
    const base = topicBase("ids");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 1]]);
    const p = await online(broker());
    for (let i = 0; i < 5; i++) p.write(publishPacket({ topic: `${base}/t`, payload: `m${i}`, qos: 1, id: 100 + i }));
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
      assert.equal(m.qos, 1);
      assert.equal(m.dup, false, "first delivery: DUP 0");
      assert.notEqual(m.id, 0);
      ids.push(m.id);
    }
    assert.equal(new Set(ids).size, 5, `identifiers in use are distinct: ${ids}`);
    // unacknowledged: no retransmission while connected ([MQTT-4.4.0-1] only on reconnect)
    await expectNothing(s, 1000, PacketType.PUBLISH, "no resend while the connection is up");
    for (const id of ids) s.write(puback(id));
  });

  test("[MQTT-4.3.2-2] after a PUBACK, a PUBLISH reusing the identifier (even with DUP 1) is a new message", T, async () => {
    const base = topicBase("reuse1");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 1]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "one", qos: 1, id: 7 }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "two", qos: 1, id: 7, dup: true }));
    await nextOfType(p, PacketType.PUBACK);
    const a = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    s.write(puback(a.id));
    const b = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    s.write(puback(b.id));
    assert.deepEqual([a.payload.toString(), b.payload.toString()], ["one", "two"]);
  });

  test("[MQTT-4.3.3-2] QoS 2 in: a repeated PUBLISH before PUBREL gets PUBREC again and is not delivered twice", T, async () => {
    const base = topicBase("q2dup");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "once", qos: 2, id: 42 }));
    await nextOfType(p, PacketType.PUBREC);
    p.write(publishPacket({ topic: `${base}/t`, payload: "once", qos: 2, id: 42, dup: true }));
    const again = await nextOfType(p, PacketType.PUBREC);
    assert.deepEqual([...again.body], [0, 42]);
    p.write(pubrel(42));
    await nextOfType(p, PacketType.PUBCOMP);
    // the subscriber sees one message
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    s.write(pubrec(m.id));
    await nextOfType(s, PacketType.PUBREL);
    s.write(pubcomp(m.id));
    const extra = await collect(s, PacketType.PUBLISH, QUIET_MS);
    assert.deepEqual(extra.map((x) => parsePublish(x).payload.toString()), [], "exactly one delivery");
  });

  test("[MQTT-4.3.3-2] QoS 2 in: after PUBCOMP the same identifier starts a new message", T, async () => {
    const base = topicBase("q2new");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const p = await online(broker());
    for (const payload of ["first", "second"]) {
      p.write(publishPacket({ topic: `${base}/t`, payload, qos: 2, id: 5 }));
      await nextOfType(p, PacketType.PUBREC);
      p.write(pubrel(5));
      await nextOfType(p, PacketType.PUBCOMP);
    }
    const got = [parsePublish(await nextOfType(s, PacketType.PUBLISH)), parsePublish(await nextOfType(s, PacketType.PUBLISH))];
    assert.deepEqual(got.map((m) => m.payload.toString()), ["first", "second"]);
  });

  test("[MQTT-4.3.3-2] a PUBREL for an unknown identifier is still answered with PUBCOMP", T, async () => {
    const c = await online(broker());
    c.write(pubrel(0x4321));
    const p = await nextOfType(c, PacketType.PUBCOMP);
    assert.deepEqual([...p.body], [0x43, 0x21]);
  });

  test("[MQTT-4.3.3-1] [MQTT-2.3.1-6] QoS 2 out: PUBLISH QoS 2 DUP 0, PUBREL with the same identifier after PUBREC, PUBLISH never re-sent", T, async () => {
    const base = topicBase("q2out");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 2, id: 1 }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.qos, 2);
    assert.equal(m.dup, false);
    s.write(pubrec(m.id));
    const rel = await nextOfType(s, PacketType.PUBREL);
    assert.equal(rel.flags, 0x02, "[MQTT-3.6.1-1] PUBREL flags 0010");
    assert.equal(rel.body.readUInt16BE(0), m.id);
    await expectNothing(s, 800, PacketType.PUBLISH, "no PUBLISH after the PUBREL");
    s.write(pubcomp(m.id));
  });

  test("[MQTT-3.3.1-3] an incoming DUP 1 does not make the first delivery DUP 1", T, async () => {
    const base = topicBase("dup");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 1]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 1, id: 3, dup: true }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.dup, false);
    s.write(puback(m.id));
  });

  test("[MQTT-3.3.1-4] [MQTT-4.8.0-1] a PUBLISH with QoS 3 closes the connection and is not delivered", T, async () => {
    const base = topicBase("q3");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "bad", qos: 3, id: 1 }));
    const left = await expectClose(p);
    assert.deepEqual(left.map((x) => x.type), [], "no PUBACK / PUBREC");
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "not delivered");
  });

  test("[MQTT-3.3.2-2] [MQTT-4.7.1-1] a PUBLISH to a topic name with a wildcard closes the connection, nothing delivered, no PUBACK", T, async () => {
    const base = topicBase("wild");
    const s = await online(broker());
    await sub(s, [[`${base}/#`, 1]]);
    for (const topic of [`${base}/+`, `${base}/#`, `${base}/a+b`]) {
      const p = await online(broker());
      p.write(publishPacket({ topic, payload: "x", qos: 1, id: 1 }));
      const left = await expectClose(p);
      assert.deepEqual(left.map((x) => x.type), [], `no PUBACK for ${topic}`);
    }
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "nothing delivered");
  });

  test("[MQTT-3.3.2-1] [MQTT-3.3.2-3] the delivered topic name is exactly the published one, and matches the filter", T, async () => {
    const base = topicBase("match");
    const s = await online(broker());
    await sub(s, [[`${base}/+/c`, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/b/d`, payload: "no" }));
    p.write(publishPacket({ topic: `${base}/b/c`, payload: "yes" }));
    p.write(publishPacket({ topic: `${base}/ü b/c`, payload: "yes2" }));
    const a = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    const b = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.deepEqual([a.topic, b.topic], [`${base}/b/c`, `${base}/ü b/c`]);
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "the non-matching topic is not delivered");
  });

  test("[MQTT-3.6.1-1] [MQTT-2.2.2-2] a PUBREL with flags 0000 closes the connection and does not release the QoS 2 message", T, async () => {
    const base = topicBase("relflags");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "held", qos: 2, id: 11 }));
    await nextOfType(p, PacketType.PUBREC);
    p.write(packet(PacketType.PUBREL, 0x00, u16(11)));
    const left = await expectClose(p);
    assert.deepEqual(left.map((x) => x.type), [], "no PUBCOMP");
    // a message may already be delivered on PUBLISH (method B) or held until PUBREL (method A);
    // either way at most one copy
    const got = await collect(s, PacketType.PUBLISH, QUIET_MS);
    assert.ok(got.length <= 1);
  });

  test("[MQTT-4.6.0-5] [MQTT-4.6.0-6] messages on one topic reach a subscriber in publishing order, at each QoS", T, async () => {
    const base = topicBase("order");
    const s = await online(broker());
    await sub(s, [[`${base}/q0`, 0], [`${base}/q1`, 1], [`${base}/q2`, 2]]);
    const p = await online(broker());
    const N = 30;
    for (let i = 0; i < N; i++) {
      p.write(publishPacket({ topic: `${base}/q0`, payload: String(i) }));
      p.write(publishPacket({ topic: `${base}/q1`, payload: String(i), qos: 1, id: 1 + i }));
      p.write(publishPacket({ topic: `${base}/q2`, payload: String(i), qos: 2, id: 1000 + i }));
    }
    for (let i = 0; i < N; i++) {
      await nextOfType(p, PacketType.PUBREC);
    }
    for (let i = 0; i < N; i++) p.write(pubrel(1000 + i));
    const seen: Record<string, string[]> = { q0: [], q1: [], q2: [] };
    const deadline = Date.now() + 8000;
    while ((seen.q0.length < N || seen.q1.length < N || seen.q2.length < N) && Date.now() < deadline) {
      const m = parsePublish(await nextOfType(s, PacketType.PUBLISH, Math.max(1, deadline - Date.now())));
      if (m.qos === 1) s.write(puback(m.id));
      if (m.qos === 2) s.write(pubrec(m.id));
      seen[m.topic.slice(base.length + 1)].push(m.payload.toString());
    }
    const want = Array.from({ length: N }, (_, i) => String(i));
    assert.deepEqual(seen.q0, want, "QoS 0 order");
    assert.deepEqual(seen.q1, want, "QoS 1 order");
    assert.deepEqual(seen.q2, want, "QoS 2 order");
  });
});

describe("MQTT 3.1.1 retained messages", () => {
  const broker = useBroker();

  test("[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] a new subscriber gets the last retained message, with RETAIN 1 and its stored QoS", T, async () => {
    const base = topicBase("ret");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "old", qos: 1, id: 1, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "new", qos: 1, id: 2, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 2]]);
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "new");
    assert.equal(m.retain, true);
    assert.equal(m.qos, 1, "the retained message keeps its QoS (1) under a QoS 2 subscription");
    s.write(puback(m.id));
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "only the last retained message");
  });

  test("[MQTT-3.3.1-7] a retained QoS 0 message replaces the retained QoS 1 message", T, async () => {
    const base = topicBase("ret0");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "q1", qos: 1, id: 1, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "q0", retain: true }));
    await new Promise((r) => setTimeout(r, 100));
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 1]]);
    const got = await collect(s, PacketType.PUBLISH, QUIET_MS * 2);
    // the server should keep the QoS 0 message (it MAY drop it); it must not keep the old one
    assert.ok(got.length <= 1, `${got.length} retained messages`);
    if (got.length === 1) {
      const m = parsePublish(got[0]);
      assert.equal(m.payload.toString(), "q0");
      assert.equal(m.qos, 0);
    }
  });

  test("[MQTT-3.3.1-9] a live message to an existing subscription has RETAIN 0 even if published retained", T, async () => {
    const base = topicBase("live");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "live", retain: true }));
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.retain, false);
  });

  test("[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained PUBLISH is delivered as usual and clears the retained message", T, async () => {
    const base = topicBase("clear");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "keep", qos: 1, id: 1, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 1]]);
    const r = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    s.write(puback(r.id));
    p.write(publishPacket({ topic: `${base}/t`, payload: "", qos: 1, id: 2, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.payload.length, 0, "the empty message is delivered to the existing subscriber");
    assert.equal(m.retain, false, "as a normal (RETAIN 0) message");
    s.write(puback(m.id));
    const late = await online(broker());
    await sub(late, [[`${base}/t`, 1]]);
    await expectNothing(late, QUIET_MS, PacketType.PUBLISH, "no retained message after clearing, and the empty one is not stored");
  });

  test("[MQTT-3.3.1-12] RETAIN 0 neither stores the message nor replaces or removes the retained one", T, async () => {
    const base = topicBase("r0");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "retained", qos: 1, id: 1, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "plain", qos: 1, id: 2 }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "", qos: 1, id: 3 }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/other`, payload: "plain", qos: 1, id: 4 }));
    await nextOfType(p, PacketType.PUBACK);
    const s = await online(broker());
    await sub(s, [[`${base}/#`, 1]]);
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.topic, `${base}/t`);
    assert.equal(m.payload.toString(), "retained");
    s.write(puback(m.id));
    await expectNothing(s, QUIET_MS, PacketType.PUBLISH, "nothing else retained");
  });

  test("[MQTT-3.1.2-7] retained messages outlive the session that published them", T, async () => {
    const base = topicBase("outlive");
    const p = await online(broker(), { clean: true });
    p.write(publishPacket({ topic: `${base}/t`, payload: "stays", qos: 1, id: 1, retain: true }));
    await nextOfType(p, PacketType.PUBACK);
    p.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "stays");
  });

  test("[MQTT-3.8.4-3] [MQTT-3.3.1-8] re-subscribing to the same filter sends the retained messages again with RETAIN 1", T, async () => {
    const base = topicBase("resub");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "r", retain: true, qos: 1, id: 1 }));
    await nextOfType(p, PacketType.PUBACK);
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    assert.equal(parsePublish(await nextOfType(s, PacketType.PUBLISH)).retain, true);
    await sub(s, [[`${base}/t`, 0]], 2);
    const again = parsePublish(await nextOfType(s, PacketType.PUBLISH));
    assert.equal(again.payload.toString(), "r");
    assert.equal(again.retain, true);
  });
});

describe("MQTT 3.1.1 PUBLISH the client may not make (an ACL file)", { skip: BROKER_KIND === "mosquitto" ? "midge's own config files" : false }, () => {
  test("[MQTT-3.3.5-2] a PUBLISH the client is not authorized to make is acknowledged as usual and goes nowhere", T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "midge-conf-acl-"));
    writeFileSync(path.join(dir, "acl"), "topic read #\ntopic write allowed/#\n");
    writeFileSync(path.join(dir, "midge.conf"), `allow_anonymous true\nacl_file ${path.join(dir, "acl")}\n`);
    const b = await startBroker({ args: ["-c", path.join(dir, "midge.conf")] });
    try {
      const s = await online(b, { clientId: "acl-reader" });
      assert.deepEqual(await sub(s, [["#", 1]]), [1]);
      const c = await online(b, { clientId: "acl-writer" });
      c.write(publishPacket({ topic: "denied/x", payload: "no", qos: 1, id: 7 }));
      assert.deepEqual([...(await nextOfType(c, PacketType.PUBACK)).body], [0, 7], "PUBACK as usual");
      c.write(publishPacket({ topic: "allowed/x", payload: "yes", qos: 1, id: 8 }));
      await nextOfType(c, PacketType.PUBACK);
      const m = parsePublish(await nextOfType(s, PacketType.PUBLISH));
      assert.equal(m.topic, "allowed/x", "the denied message went nowhere");
      await expectOpen(c);
    } finally {
      await closeAll();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
