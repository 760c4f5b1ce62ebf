// Retained messages: stored with their QoS, sent with RETAIN=1 only to new
// subscriptions, replaced, cleared by a zero-length payload.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { connect, publish, subscribe, uid, useBroker, type TestClient } from "./helpers.js";

const T = { timeout: 20_000 };

describe("retained messages", () => {
  const broker = useBroker();

  /** Subscribes `c` to `filter` and a marker topic, publishes the marker, and returns
   * what arrived on `filter`-matching topics before the marker: the retained messages. */
  async function retainedFor(c: TestClient, filter: string, qos: 0 | 1 | 2 = 2) {
    const marker = uid("marker");
    await subscribe(c, filter, qos);
    await subscribe(c, marker, 0);
    const p = await connect(broker());
    await publish(p, marker, "end");
    await c.inbox.waitTopic(marker);
    await p.end();
    return c.inbox.messages.filter((m) => m.topic !== marker);
  }

  async function clearRetained(topic: string) {
    const p = await connect(broker());
    await publish(p, topic, Buffer.alloc(0), { qos: 1, retain: true });
    await p.end();
  }

  test("[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] a retained message is stored with its QoS and sent with RETAIN=1 to a new subscriber", T, async () => {
    const topic = uid("ret") + "/a";
    const pub = await connect(broker());
    await publish(pub, topic, "stored", { qos: 1, retain: true });
    for (const g of [0, 1, 2] as const) {
      const sub = await connect(broker());
      const got = await retainedFor(sub, topic, g);
      assert.equal(got.length, 1, `granted ${g}: one retained message`);
      assert.equal(got[0].payload.toString(), "stored");
      assert.equal(got[0].retain, true);
      assert.equal(got[0].qos, Math.min(1, g), "min(stored QoS 1, granted)");
    }
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-5] a retained QoS 2 message is delivered at QoS 2", T, async () => {
    const topic = uid("ret2") + "/a";
    const pub = await connect(broker());
    await publish(pub, topic, "q2", { qos: 2, retain: true });
    const sub = await connect(broker());
    const got = await retainedFor(sub, topic, 2);
    assert.equal(got.length, 1);
    assert.equal(got[0].qos, 2);
    assert.equal(got[0].retain, true);
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-7] a retained QoS 0 message is stored and delivered", T, async () => {
    const topic = uid("ret0") + "/a";
    const pub = await connect(broker());
    await publish(pub, topic, "q0", { qos: 0, retain: true });
    await pub.end(); // flushes the QoS 0 PUBLISH before DISCONNECT
    const sub = await connect(broker());
    const got = await retainedFor(sub, topic, 2);
    assert.equal(got.length, 1);
    assert.equal(got[0].payload.toString(), "q0");
    assert.equal(got[0].qos, 0);
    assert.equal(got[0].retain, true);
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-9] live delivery of a retained PUBLISH to an existing subscriber has RETAIN=0", T, async () => {
    const topic = uid("live") + "/a";
    const sub = await connect(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect(broker());
    await publish(pub, topic, "live", { qos: 1, retain: true });
    const [m] = await sub.inbox.wait(1);
    assert.equal(m.payload.toString(), "live");
    assert.equal(m.retain, false);
    // a subscriber arriving later gets it with RETAIN=1
    const late = await connect(broker());
    const got = await retainedFor(late, topic, 1);
    assert.equal(got.length, 1);
    assert.equal(got[0].retain, true);
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-10] [MQTT-3.3.1-11] a zero-length retained PUBLISH clears the retained message (and is delivered live)", T, async () => {
    const topic = uid("clear") + "/a";
    const live = await connect(broker());
    await subscribe(live, topic, 1);
    const pub = await connect(broker());
    await publish(pub, topic, "soon gone", { qos: 1, retain: true });
    await publish(pub, topic, Buffer.alloc(0), { qos: 1, retain: true });
    const got = await live.inbox.wait(2);
    assert.equal(got[1].payload.length, 0, "the existing subscriber gets the empty message as normal");
    assert.equal(got[1].retain, false);
    const sub = await connect(broker());
    assert.deepEqual(await retainedFor(sub, topic), [], "nothing retained any more");
  });

  test("[MQTT-3.3.1-5] a new retained message replaces the old one", T, async () => {
    const topic = uid("repl") + "/a";
    const pub = await connect(broker());
    await publish(pub, topic, "one", { qos: 1, retain: true });
    await publish(pub, topic, "two", { qos: 0, retain: true });
    await publish(pub, topic, "three", { qos: 1, retain: true });
    const sub = await connect(broker());
    const got = await retainedFor(sub, topic);
    assert.equal(got.length, 1);
    assert.equal(got[0].payload.toString(), "three");
    assert.equal(got[0].qos, 1);
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-12] a non-retained PUBLISH neither stores nor replaces the retained message", T, async () => {
    const topic = uid("keep") + "/a";
    const other = uid("keep") + "/b";
    const pub = await connect(broker());
    await publish(pub, topic, "keep", { qos: 1, retain: true });
    await publish(pub, topic, "not retained", { qos: 1 });
    await publish(pub, other, "not retained either", { qos: 1 });
    const sub = await connect(broker());
    const got = await retainedFor(sub, topic);
    assert.deepEqual(
      got.map((m) => m.payload.toString()),
      ["keep"],
    );
    const sub2 = await connect(broker());
    assert.deepEqual(await retainedFor(sub2, other), []);
    await clearRetained(topic);
  });

  test("[MQTT-3.3.1-6] a wildcard subscription receives every matching retained message", T, async () => {
    const base = uid("wild");
    const topics = [`${base}/a`, `${base}/b/c`, `${base}/d`];
    const pub = await connect(broker());
    for (const t of topics) await publish(pub, t, t, { qos: 1, retain: true });
    await publish(pub, `${base}/d`, Buffer.alloc(0), { qos: 1, retain: true }); // cleared again
    const sub = await connect(broker());
    const got = await retainedFor(sub, `${base}/#`, 1);
    assert.deepEqual(
      got.map((m) => m.topic).sort(),
      [`${base}/a`, `${base}/b/c`],
    );
    for (const m of got) {
      assert.equal(m.payload.toString(), m.topic);
      assert.equal(m.retain, true);
    }
    const plus = await connect(broker());
    const got2 = await retainedFor(plus, `${base}/+`, 1);
    assert.deepEqual(
      got2.map((m) => m.topic),
      [`${base}/a`],
    );
    for (const t of topics) await clearRetained(t);
  });

  test("[MQTT-3.8.4-3] re-subscribing to a filter sends its retained messages again", T, async () => {
    const topic = uid("again") + "/a";
    const pub = await connect(broker());
    await publish(pub, topic, "r", { qos: 1, retain: true });
    const sub = await connect(broker());
    await subscribe(sub, topic, 1);
    await sub.inbox.wait(1);
    await subscribe(sub, topic, 1);
    const got = await sub.inbox.wait(2);
    assert.equal(got[1].retain, true);
    assert.equal(got[1].payload.toString(), "r");
    await clearRetained(topic);
  });
});
