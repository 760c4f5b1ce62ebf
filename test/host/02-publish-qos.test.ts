// PUBLISH at QoS 0, 1 and 2: delivery, the QoS a subscriber gets, overlapping
// subscriptions, QoS 2 duplicate suppression, large binary payloads.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  connect,
  publish,
  publishPacket,
  pubrel,
  randomBytes,
  rawSession,
  settle,
  subscribe,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 20_000 };
const QOS = [0, 1, 2] as const;

describe("publish and QoS", () => {
  const broker = useBroker();

  for (const q of QOS) {
    test(`[MQTT-3.3.4-1] a QoS ${q} PUBLISH reaches a subscriber and is acknowledged`, T, async () => {
      const sub = await connect(broker());
      const pub = await connect(broker());
      const topic = uid("q") + "/a";
      assert.deepEqual(await subscribe(sub, topic, q), [q]);
      await publish(pub, topic, `hello ${q}`, { qos: q }); // QoS 1 resolves on PUBACK, QoS 2 on PUBCOMP
      const [m] = await sub.inbox.wait(1);
      assert.equal(m.topic, topic);
      assert.equal(m.payload.toString(), `hello ${q}`);
      assert.equal(m.qos, q);
      assert.equal(m.retain, false);
      assert.equal(m.dup, false);
    });
  }

  test("[MQTT-3.8.4-6] the delivered QoS is the minimum of the published QoS and the granted QoS", T, async () => {
    const topic = uid("min") + "/t";
    const subs = [];
    for (const g of QOS) {
      const s = await connect(broker());
      assert.deepEqual(await subscribe(s, topic, g), [g]);
      subs.push(s);
    }
    const pub = await connect(broker());
    for (const p of QOS) await publish(pub, topic, `p${p}`, { qos: p });
    for (const g of QOS) {
      const got = await subs[g].inbox.wait(3);
      for (const p of QOS) {
        const m = got.find((x) => x.payload.toString() === `p${p}`);
        assert.ok(m, `subscriber granted ${g} got the QoS ${p} message`);
        assert.equal(m.qos, Math.min(p, g), `published ${p}, granted ${g}`);
      }
    }
  });

  test("[MQTT-3.3.5-1] overlapping subscriptions (a/# QoS 1, a/+ QoS 2) deliver ONE copy at the maximum QoS", T, async () => {
    const a = uid("ovl");
    const sub = await connect(broker());
    assert.deepEqual(await subscribe(sub, { [`${a}/#`]: 1, [`${a}/+`]: 2 }), [1, 2]);
    const pub = await connect(broker());
    await publish(pub, `${a}/b`, "two", { qos: 2 });
    await publish(pub, `${a}/b`, "one", { qos: 1 });
    await publish(pub, `${a}/b`, "zero", { qos: 0 });
    // a/b/c matches only a/# (QoS 1)
    await publish(pub, `${a}/b/c`, "deep", { qos: 2 });
    await settle();
    await publish(pub, `${a}/marker`, "end", { qos: 2 });
    await sub.inbox.waitTopic(`${a}/marker`);
    const byPayload = (s: string) => sub.inbox.messages.filter((m) => m.payload.toString() === s);
    assert.equal(byPayload("two").length, 1, "one copy of the QoS 2 message");
    assert.equal(byPayload("two")[0].qos, 2);
    assert.equal(byPayload("one").length, 1, "one copy of the QoS 1 message");
    assert.equal(byPayload("one")[0].qos, 1);
    assert.equal(byPayload("zero").length, 1, "one copy of the QoS 0 message");
    assert.equal(byPayload("zero")[0].qos, 0);
    assert.equal(byPayload("deep").length, 1);
    assert.equal(byPayload("deep")[0].qos, 1, "a/b/c matches only a/# at QoS 1");
  });

  test("[MQTT-3.8.4-3] subscribing again to the same filter replaces its QoS", T, async () => {
    const topic = uid("resub") + "/x";
    const sub = await connect(broker());
    await subscribe(sub, topic, 0);
    await subscribe(sub, topic, 2);
    const pub = await connect(broker());
    await publish(pub, topic, "m", { qos: 2 });
    const [m] = await sub.inbox.wait(1);
    assert.equal(m.qos, 2);
    await settle();
    assert.equal(sub.inbox.messages.length, 1, "one subscription, one copy");
  });

  test("[MQTT-3.10.4-1] after UNSUBSCRIBE nothing more is delivered", T, async () => {
    const a = uid("unsub");
    const sub = await connect(broker());
    await subscribe(sub, { [`${a}/x`]: 1, [`${a}/marker`]: 1 });
    await sub.client.unsubscribeAsync(`${a}/x`);
    const pub = await connect(broker());
    await publish(pub, `${a}/x`, "gone", { qos: 1 });
    await publish(pub, `${a}/marker`, "end", { qos: 1 });
    await sub.inbox.waitTopic(`${a}/marker`);
    assert.equal(sub.inbox.on(`${a}/x`).length, 0);
  });

  test("a publisher's messages on one topic at one QoS arrive in order [MQTT-4.6.0-6]", T, async () => {
    const topic = uid("order") + "/t";
    const sub = await connect(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect(broker());
    const n = 200;
    await Promise.all(Array.from({ length: n }, (_, i) => publish(pub, topic, String(i), { qos: 1 })));
    const got = await sub.inbox.wait(n, 10_000);
    assert.deepEqual(
      got.map((m) => Number(m.payload.toString())),
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test("[MQTT-4.3.3-2] a QoS 2 PUBLISH repeated (same packet id) before PUBREL is delivered once", T, async () => {
    const topic = uid("q2dup") + "/t";
    const sub = await connect(broker());
    await subscribe(sub, topic, 2);
    const { raw } = await rawSession(broker());
    const id = 4242;
    raw.write(publishPacket({ topic, payload: "once", qos: 2, id }));
    const rec1 = await raw.expect(PacketType.PUBREC);
    assert.equal(rec1.body.readUInt16BE(0), id);
    raw.write(publishPacket({ topic, payload: "once", qos: 2, id, dup: true }));
    const rec2 = await raw.expect(PacketType.PUBREC);
    assert.equal(rec2.body.readUInt16BE(0), id, "the repeat is acknowledged with PUBREC too");
    raw.write(pubrel(id));
    const comp = await raw.expect(PacketType.PUBCOMP);
    assert.equal(comp.body.readUInt16BE(0), id);
    // and once more after the flow completed: a new message with a reused id
    raw.write(publishPacket({ topic, payload: "again", qos: 2, id }));
    await raw.expect(PacketType.PUBREC);
    raw.write(pubrel(id));
    await raw.expect(PacketType.PUBCOMP);
    await sub.inbox.until((ms) => ms.some((m) => m.payload.toString() === "again"), 5000, "the second message");
    await settle();
    const once = sub.inbox.messages.filter((m) => m.payload.toString() === "once");
    assert.equal(once.length, 1, "exactly one copy of the repeated QoS 2 message");
    assert.equal(sub.inbox.messages.length, 2);
  });

  test("[MQTT-3.6.4-1] a PUBREL for an unknown packet id is still answered with PUBCOMP", T, async () => {
    const { raw } = await rawSession(broker());
    raw.write(pubrel(777));
    const comp = await raw.expect(PacketType.PUBCOMP);
    assert.equal(comp.body.readUInt16BE(0), 777);
  });

  test("a 1 MB random binary payload at QoS 1 arrives byte-identical", { timeout: 60_000 }, async () => {
    const topic = uid("big") + "/bin";
    const sub = await connect(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect(broker());
    const payload = randomBytes(1024 * 1024);
    await publish(pub, topic, payload, { qos: 1 });
    const [m] = await sub.inbox.wait(1, 30_000);
    assert.equal(m.payload.length, payload.length);
    assert.ok(m.payload.equals(payload), "payload bytes differ");
    assert.equal(m.qos, 1);
  });

  test("an empty payload is delivered as an empty payload", T, async () => {
    const topic = uid("empty") + "/t";
    const sub = await connect(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect(broker());
    await publish(pub, topic, Buffer.alloc(0), { qos: 1 });
    const [m] = await sub.inbox.wait(1);
    assert.equal(m.payload.length, 0);
  });
});
