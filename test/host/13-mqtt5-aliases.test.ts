// MQTT 5 topic aliases in both directions (§3.3.2.3.4): the client's aliases up to
// our Topic Alias Maximum (0 or above it: DISCONNECT 0x94), and ours towards a client
// that allows them (a repeated topic costs two bytes), checked at the byte level.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  Prop,
  ack5,
  connect5,
  expectDisconnect5,
  nextPublish5,
  publish5Packet,
  rawSession5,
  rawSubscribe5,
  settle,
  subOptions,
  subscribe,
  uid,
  useBroker,
  type RawPublish5,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("MQTT 5 topic aliases, client to broker", () => {
  const broker = useBroker();

  test("[MQTT-3.3.2-12] an alias set with a topic is then used alone (empty topic); subscribers see the full topic", T, async () => {
    const topic = uid("ain") + "/audio/frame";
    const sub = await connect5(broker());
    await subscribe(sub, topic, 1);
    const { raw, connack } = await rawSession5(broker());
    const max = connack.props.get(Prop.TopicAliasMaximum) as number;
    assert.ok(max >= 1);
    raw.write(publish5Packet({ topic, payload: "f0", qos: 1, id: 1, properties: [[Prop.TopicAlias, 1]] }));
    raw.write(publish5Packet({ topic: "", payload: "f1", qos: 1, id: 2, properties: [[Prop.TopicAlias, 1]] }));
    raw.write(publish5Packet({ topic: "", payload: "f2", qos: 0, properties: [[Prop.TopicAlias, 1]] }));
    raw.write(publish5Packet({ topic: "", payload: "f3", qos: 1, id: 3, properties: [[Prop.TopicAlias, 1]] }));
    const msgs = await sub.inbox.wait(4);
    assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString()]), [[topic, "f0"], [topic, "f1"], [topic, "f2"], [topic, "f3"]]);
    assert.equal(raw.isClosed, false);
  });

  test("[MQTT-3.3.2-12] an alias can be remapped to another topic; the highest alias (our maximum) works", T, async () => {
    const base = uid("remap");
    const sub = await connect5(broker());
    await subscribe(sub, `${base}/#`, 0);
    const { raw, connack } = await rawSession5(broker());
    const max = connack.props.get(Prop.TopicAliasMaximum) as number;
    raw.write(publish5Packet({ topic: `${base}/a`, payload: "1", properties: [[Prop.TopicAlias, max]] }));
    raw.write(publish5Packet({ topic: "", payload: "2", properties: [[Prop.TopicAlias, max]] }));
    raw.write(publish5Packet({ topic: `${base}/b`, payload: "3", properties: [[Prop.TopicAlias, max]] }));
    raw.write(publish5Packet({ topic: "", payload: "4", properties: [[Prop.TopicAlias, max]] }));
    const msgs = await sub.inbox.wait(4);
    assert.deepEqual(msgs.map((m) => `${m.topic.slice(base.length)}=${m.payload}`), ["/a=1", "/a=2", "/b=3", "/b=4"]);
  });

  test("the mqtt client's own topic aliases reach subscribers", T, async () => {
    const topic = uid("ajs") + "/t";
    const sub = await connect5(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect5(broker(), { autoUseTopicAlias: true, autoAssignTopicAlias: true });
    for (let i = 0; i < 3; i++) await pub.client.publishAsync(topic, `m${i}`, { qos: 1 });
    const msgs = await sub.inbox.wait(3);
    assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString()]), [[topic, "m0"], [topic, "m1"], [topic, "m2"]]);
  });

  test("[MQTT-3.3.2-8] Topic Alias 0 is a Protocol Error: DISCONNECT 0x94 (Topic Alias invalid)", T, async () => {
    const topic = uid("a0") + "/t";
    const sub = await connect5(broker());
    await subscribe(sub, topic, 0);
    const { raw } = await rawSession5(broker());
    raw.write(publish5Packet({ topic, payload: "x", properties: [[Prop.TopicAlias, 0]] }));
    assert.equal(await expectDisconnect5(raw), 0x94);
    await settle(200);
    assert.deepEqual(sub.inbox.messages, [], "nothing forwarded");
  });

  test("[MQTT-3.2.2-17] a Topic Alias above our Topic Alias Maximum: DISCONNECT 0x94", T, async () => {
    const { raw, connack } = await rawSession5(broker());
    const max = connack.props.get(Prop.TopicAliasMaximum) as number;
    raw.write(publish5Packet({ topic: uid("aover"), payload: "x", properties: [[Prop.TopicAlias, max + 1]] }));
    assert.equal(await expectDisconnect5(raw), 0x94);
  });

  test("an empty topic with an alias never set is a Protocol Error: DISCONNECT 0x82", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(publish5Packet({ topic: "", payload: "x", properties: [[Prop.TopicAlias, 1]] }));
    assert.equal(await expectDisconnect5(raw), 0x82);
  });

  test("[MQTT-3.3.2-7] alias mappings do not survive the connection (even when the session does)", T, async () => {
    const id = uid("acarry");
    const topic = uid("acarry") + "/t";
    const first = await rawSession5(broker(), { clientId: id, properties: [[Prop.SessionExpiry, 60]] });
    first.raw.write(publish5Packet({ topic, payload: "x", properties: [[Prop.TopicAlias, 1]] }));
    first.raw.destroy();
    await first.raw.closed;
    const second = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 0]] });
    assert.equal(second.connack.sessionPresent, true);
    second.raw.write(publish5Packet({ topic: "", payload: "y", properties: [[Prop.TopicAlias, 1]] }));
    assert.equal(await expectDisconnect5(second.raw), 0x82);
  });
});

describe("MQTT 5 topic aliases, broker to client", () => {
  const broker = useBroker();

  /** Resolves aliases as a client must, checking every PUBLISH is understandable. */
  function resolver(max: number) {
    const map = new Map<number, string>();
    return (m: RawPublish5): string => {
      const alias = m.props.get(Prop.TopicAlias) as number | undefined;
      if (alias !== undefined) {
        assert.ok(alias >= 1 && alias <= max, `[MQTT-3.1.2-26] alias ${alias} within the client's maximum ${max}`);
        if (m.topic.length > 0) map.set(alias, m.topic);
        const t = map.get(alias);
        assert.ok(t !== undefined, `alias ${alias} used before it was set`);
        return t;
      }
      assert.ok(m.topic.length > 0, "an empty topic without an alias");
      return m.topic;
    };
  }

  test("[MQTT-3.3.2-12] the second message on a topic arrives as an empty topic + the alias the first one set", T, async () => {
    const topic = uid("aout") + "/audio/frames/long/enough/to/matter";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.TopicAliasMaximum, 5]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await connect5(broker());
    for (let i = 0; i < 3; i++) pub.client.publish(topic, `frame${i}`, { qos: i === 1 ? 0 : 1 });
    const a = await nextPublish5(sub);
    const b = await nextPublish5(sub);
    const c = await nextPublish5(sub);
    for (const m of [a, b, c]) if (m.qos > 0) sub.write(ack5(PacketType.PUBACK, m.id));
    assert.equal(a.topic, topic, "the first carries the topic");
    const alias = a.props.get(Prop.TopicAlias) as number;
    assert.ok(alias >= 1 && alias <= 5, `the first sets an alias within 1..5 (got ${alias})`);
    for (const m of [b, c]) {
      assert.equal(m.topic, "", "a repeated topic is sent as the alias alone");
      assert.equal(m.props.get(Prop.TopicAlias), alias);
    }
    assert.deepEqual([a, b, c].map((m) => m.payload.toString()), ["frame0", "frame1", "frame2"]);
  });

  test("[MQTT-3.1.2-27] no Topic Alias Maximum from the client: the broker sends no aliases", T, async () => {
    const topic = uid("anone") + "/t";
    const { raw: sub } = await rawSession5(broker());
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 0 })]]);
    const pub = await connect5(broker());
    for (let i = 0; i < 3; i++) pub.client.publish(topic, `m${i}`);
    for (let i = 0; i < 3; i++) {
      const m = await nextPublish5(sub);
      assert.equal(m.topic, topic);
      assert.equal(m.props.has(Prop.TopicAlias), false);
    }
  });

  test("[MQTT-3.1.2-26] with a maximum of 1 and three topics in turn, every alias is within 1 and every message resolves", T, async () => {
    const base = uid("aone");
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.TopicAliasMaximum, 1]] });
    await rawSubscribe5(sub, 1, [[`${base}/#`, subOptions({ qos: 0 })]]);
    const pub = await connect5(broker());
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) {
      const t = `${base}/${["x", "y", "z"][i % 3]}${i % 2 ? "" : ""}`;
      sent.push(t);
      pub.client.publish(t, String(i));
    }
    const resolve = resolver(1);
    for (let i = 0; i < 12; i++) {
      const m = await nextPublish5(sub);
      assert.equal(resolve(m), sent[i], `message ${i}`);
      assert.equal(m.payload.toString(), String(i));
    }
  });

  test("the mqtt client allowing aliases receives the right topics", T, async () => {
    const base = uid("ajsin");
    const sub = await connect5(broker(), { properties: { topicAliasMaximum: 2 } });
    await subscribe(sub, `${base}/#`, 1);
    const pub = await connect5(broker());
    const topics = [`${base}/a`, `${base}/b`, `${base}/a`, `${base}/c`, `${base}/a`, `${base}/b`];
    for (const [i, t] of topics.entries()) await pub.client.publishAsync(t, String(i), { qos: (i % 2) as 0 | 1 });
    const got = await sub.inbox.wait(topics.length);
    assert.deepEqual(got.map((m) => m.topic), topics);
  });

  test("[MQTT-3.3.2-7] a QoS 1 message resent on a new connection carries its topic (aliases start afresh)", T, async () => {
    const id = uid("aresend");
    const topic = uid("aresend") + "/t";
    const first = await rawSession5(broker(), {
      clientId: id,
      properties: [[Prop.SessionExpiry, 60], [Prop.TopicAliasMaximum, 4]],
    });
    await rawSubscribe5(first.raw, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await connect5(broker());
    pub.client.publish(topic, "one", { qos: 1 });
    pub.client.publish(topic, "two", { qos: 1 });
    const m1 = await nextPublish5(first.raw);
    const m2 = await nextPublish5(first.raw);
    assert.equal(m2.topic, "", "the second used the alias");
    first.raw.destroy(); // neither acknowledged
    await first.raw.closed;
    const second = await rawSession5(broker(), {
      clientId: id,
      clean: false,
      properties: [[Prop.SessionExpiry, 0], [Prop.TopicAliasMaximum, 4]],
    });
    const resolve = resolver(4);
    const r1 = await nextPublish5(second.raw);
    const r2 = await nextPublish5(second.raw);
    assert.equal(resolve(r1), topic, "first resend understandable on the new connection");
    assert.equal(resolve(r2), topic, "second resend understandable on the new connection");
    assert.deepEqual([r1.payload.toString(), r2.payload.toString()], ["one", "two"]);
    assert.deepEqual([r1.id, r2.id], [m1.id, m2.id]);
  });
});
