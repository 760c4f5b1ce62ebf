// MQTT 5 application messages: Message Expiry (dropped from queues once expired,
// forwarded with the time waited taken off), the properties that travel with a message
// unchanged and in order, request/response, and PUBLISH acknowledgements with reason
// codes in both directions.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  Prop,
  ack5,
  connect5,
  disconnect5,
  nextPublish5,
  parseAck5,
  publish5Packet,
  rawSession5,
  rawSubscribe5,
  settle,
  sleep,
  subOptions,
  subscribe,
  uid,
  useBroker,
  withTimeout,
  type Prop5,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("MQTT 5 messages", () => {
  const broker = useBroker();

  test("[MQTT-3.3.2-5] a queued message is dropped once its Message Expiry Interval has passed", T, async () => {
    const id = uid("mexp");
    const topic = uid("mexp") + "/t";
    const { raw } = await rawSession5(broker(), { clientId: id, properties: [[Prop.SessionExpiry, 60]] });
    await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 1 })]]);
    raw.write(disconnect5(0));
    await raw.waitClose();
    const pub = await rawSession5(broker());
    pub.raw.write(publish5Packet({ topic, payload: "short-lived", qos: 1, id: 1, properties: [[Prop.MessageExpiry, 1]] }));
    pub.raw.write(publish5Packet({ topic, payload: "long-lived", qos: 1, id: 2, properties: [[Prop.MessageExpiry, 60]] }));
    pub.raw.write(publish5Packet({ topic, payload: "no expiry", qos: 1, id: 3 }));
    for (let i = 0; i < 3; i++) await pub.raw.expect(PacketType.PUBACK);
    await sleep(2500);
    const back = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(back.connack.sessionPresent, true);
    const a = await nextPublish5(back.raw);
    back.raw.write(ack5(PacketType.PUBACK, a.id));
    const b = await nextPublish5(back.raw);
    back.raw.write(ack5(PacketType.PUBACK, b.id));
    assert.deepEqual([a.payload.toString(), b.payload.toString()], ["long-lived", "no expiry"]);
    // [MQTT-3.3.2-6] the forwarded value is the interval minus the time it waited
    const left = a.props.get(Prop.MessageExpiry) as number;
    assert.equal(typeof left, "number", "Message Expiry Interval forwarded");
    assert.ok(left <= 58 && left >= 1, `remaining expiry ${left} s, after waiting 2.5 s of 60`);
    assert.equal(b.props.has(Prop.MessageExpiry), false, "no expiry was set, none is invented");
    await settle();
    assert.equal(back.raw.unread.length, 0, "the expired message never came");
  });

  test("[MQTT-3.3.2-6] a live message carries its Message Expiry Interval (at most what was sent)", T, async () => {
    const topic = uid("mexp-live") + "/t";
    const sub = await connect5(broker());
    await subscribe(sub, topic, 1);
    const pub = await connect5(broker());
    await pub.client.publishAsync(topic, "x", { qos: 1, properties: { messageExpiryInterval: 30 } });
    const [m] = await sub.inbox.wait(1);
    const v = m.properties?.messageExpiryInterval;
    assert.ok(v !== undefined && v <= 30 && v >= 29, `messageExpiryInterval ${v}`);
  });

  test("[MQTT-3.3.2-5] an expired retained message is not sent to a new subscriber", T, async () => {
    const topic = uid("mexp-ret") + "/t";
    const pub = await connect5(broker());
    await pub.client.publishAsync(topic, "gone soon", { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    const early = await connect5(broker());
    await subscribe(early, topic, 1);
    const [r] = await early.inbox.wait(1);
    assert.equal(r.retain, true);
    await sleep(2200);
    const late = await connect5(broker());
    await subscribe(late, topic, 1);
    await settle(400);
    assert.deepEqual(late.inbox.messages, []);
  });

  test("[MQTT-3.3.2-4] [MQTT-3.3.2-20] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] properties are forwarded unchanged, user properties in order", T, async () => {
    const topic = uid("props") + "/t";
    const { raw: sub } = await rawSession5(broker());
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 2 })]]);
    const corr = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    const sent: Prop5[] = [
      [Prop.PayloadFormat, 1],
      [Prop.ContentType, "application/json; charset=utf-8"],
      [Prop.UserProperty, ["b", "2"]],
      [Prop.ResponseTopic, `${topic}/reply`],
      [Prop.UserProperty, ["a", "1"]],
      [Prop.CorrelationData, corr],
      [Prop.UserProperty, ["a", "3"]],
      [Prop.UserProperty, ["ünï", "cødé ✓"]],
    ];
    const { raw: pub } = await rawSession5(broker());
    for (const qos of [0, 1, 2]) {
      pub.write(publish5Packet({ topic, payload: `{"q":${qos}}`, qos, id: 10 + qos, properties: sent }));
      const m = await nextPublish5(sub);
      assert.equal(m.payload.toString(), `{"q":${qos}}`);
      assert.equal(m.props.get(Prop.PayloadFormat), 1, "[MQTT-3.3.2-4] Payload Format Indicator");
      assert.equal(m.props.get(Prop.ContentType), "application/json; charset=utf-8", "[MQTT-3.3.2-20] Content Type");
      assert.equal(m.props.get(Prop.ResponseTopic), `${topic}/reply`, "[MQTT-3.3.2-15] Response Topic");
      assert.deepEqual(m.props.get(Prop.CorrelationData), corr, "[MQTT-3.3.2-16] Correlation Data");
      assert.deepEqual(
        m.props.user,
        [["b", "2"], ["a", "1"], ["a", "3"], ["ünï", "cødé ✓"]],
        "[MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties, all of them, in order",
      );
      if (m.qos > 0) {
        if (m.qos === 1) sub.write(ack5(PacketType.PUBACK, m.id));
        else {
          sub.write(ack5(PacketType.PUBREC, m.id));
          await sub.expect(PacketType.PUBREL);
          sub.write(ack5(PacketType.PUBCOMP, m.id));
        }
      }
      if (qos === 1) await pub.expect(PacketType.PUBACK);
      if (qos === 2) {
        await pub.expect(PacketType.PUBREC);
        pub.write(ack5(PacketType.PUBREL, 12));
        await pub.expect(PacketType.PUBCOMP);
      }
    }
  });

  test("a retained message keeps its properties for later subscribers", T, async () => {
    const topic = uid("props-ret") + "/t";
    const { raw: pub } = await rawSession5(broker());
    pub.write(
      publish5Packet({
        topic,
        payload: "on",
        qos: 1,
        id: 1,
        retain: true,
        properties: [[Prop.ContentType, "text/plain"], [Prop.UserProperty, ["k", "v"]], [Prop.UserProperty, ["k", "w"]]],
      }),
    );
    await pub.expect(PacketType.PUBACK);
    const { raw: sub } = await rawSession5(broker());
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
    const m = await nextPublish5(sub);
    assert.equal(m.retain, true);
    assert.equal(m.props.get(Prop.ContentType), "text/plain");
    assert.deepEqual(m.props.user, [["k", "v"], ["k", "w"]]);
    sub.write(ack5(PacketType.PUBACK, m.id));
  });

  test("request/response with mqtt clients: Response Topic and Correlation Data make the round trip", T, async () => {
    const base = uid("rr");
    const responder = await connect5(broker());
    await subscribe(responder, `${base}/req`, 1);
    responder.client.on("message", (_t, payload, packet) => {
      const p = packet.properties;
      if (!p?.responseTopic) return;
      responder.client.publish(p.responseTopic, Buffer.from(`re: ${payload}`), {
        qos: 1,
        properties: { correlationData: p.correlationData, userProperties: { served: "yes" } },
      });
    });
    const requester = await connect5(broker());
    await subscribe(requester, `${base}/resp/+`, 1);
    const ids = ["one", "two", "three"];
    for (const id of ids) {
      await requester.client.publishAsync(`${base}/req`, id, {
        qos: 1,
        properties: { responseTopic: `${base}/resp/${id}`, correlationData: Buffer.from(`corr-${id}`) },
      });
    }
    const got = await requester.inbox.wait(3);
    for (const id of ids) {
      const m = got.find((x) => x.topic === `${base}/resp/${id}`);
      assert.ok(m, `response to ${id}`);
      assert.equal(m.payload.toString(), `re: ${id}`);
      assert.equal(Buffer.from(m.properties!.correlationData!).toString(), `corr-${id}`);
      assert.deepEqual({ ...m.properties?.userProperties }, { served: "yes" });
    }
  });

  test("PUBACK/PUBREC to a publisher: 0x00, or 0x10 (No matching subscribers) when nobody subscribes", T, async () => {
    const topic = uid("ack") + "/t";
    const { raw: pub } = await rawSession5(broker());
    pub.write(publish5Packet({ topic, payload: "nobody", qos: 1, id: 5 }));
    const a = parseAck5(await pub.expect(PacketType.PUBACK));
    assert.equal(a.id, 5);
    assert.ok([0x00, 0x10].includes(a.reasonCode), `PUBACK reason 0x${a.reasonCode.toString(16)}`);
    pub.write(publish5Packet({ topic, payload: "nobody", qos: 2, id: 6 }));
    const r = parseAck5(await pub.expect(PacketType.PUBREC));
    assert.equal(r.id, 6);
    assert.ok([0x00, 0x10].includes(r.reasonCode), `PUBREC reason 0x${r.reasonCode.toString(16)}`);
    pub.write(ack5(PacketType.PUBREL, 6));
    const c = parseAck5(await pub.expect(PacketType.PUBCOMP));
    assert.equal(c.reasonCode, 0);
    // with a subscriber: success
    const sub = await connect5(broker());
    await subscribe(sub, topic, 1);
    pub.write(publish5Packet({ topic, payload: "someone", qos: 1, id: 7 }));
    const b = parseAck5(await pub.expect(PacketType.PUBACK));
    assert.equal(b.reasonCode, 0x00);
    await sub.inbox.wait(1);
  });

  test("both forms of a reason-0 PUBACK from the client are accepted (each frees the Receive Maximum slot)", T, async () => {
    const topic = uid("ackform") + "/t";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.ReceiveMaximum, 1]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await connect5(broker());
    for (let i = 0; i < 4; i++) pub.client.publish(topic, `m${i}`, { qos: 1 });
    const forms = ["short", "reason", "full", "short"] as const;
    for (let i = 0; i < 4; i++) {
      const m = await nextPublish5(sub);
      assert.equal(m.payload.toString(), `m${i}`, "in order, one at a time");
      sub.write(ack5(PacketType.PUBACK, m.id, 0, forms[i]));
    }
    await settle(100);
    assert.equal(sub.isClosed, false);
  });

  test("both forms of a reason-0 PUBREC and PUBCOMP from the client are accepted", T, async () => {
    const topic = uid("ackform2") + "/t";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.ReceiveMaximum, 1]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 2 })]]);
    const pub = await connect5(broker());
    for (let i = 0; i < 3; i++) pub.client.publish(topic, `m${i}`, { qos: 2 });
    const forms = ["short", "reason", "full"] as const;
    for (let i = 0; i < 3; i++) {
      const m = await nextPublish5(sub);
      assert.equal(m.payload.toString(), `m${i}`);
      sub.write(ack5(PacketType.PUBREC, m.id, 0, forms[i]));
      const rel = parseAck5(await sub.expect(PacketType.PUBREL));
      assert.equal(rel.id, m.id);
      assert.equal(rel.reasonCode, 0);
      sub.write(ack5(PacketType.PUBCOMP, m.id, 0, forms[(i + 1) % 3]));
    }
    await settle(100);
    assert.equal(sub.isClosed, false);
  });

  test("[MQTT-4.3.3-4] a PUBREC with a failure reason (0x80) ends the QoS 2 exchange: no PUBREL, the next message flows", T, async () => {
    const topic = uid("recfail") + "/t";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.ReceiveMaximum, 1]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 2 })]]);
    const pub = await connect5(broker());
    pub.client.publish(topic, "refused", { qos: 2 });
    pub.client.publish(topic, "next", { qos: 2 });
    const m = await nextPublish5(sub);
    assert.equal(m.payload.toString(), "refused");
    sub.write(ack5(PacketType.PUBREC, m.id, 0x80));
    const n = await nextPublish5(sub);
    assert.equal(n.payload.toString(), "next");
    assert.equal(n.dup, false);
  });

  test("the mqtt client's QoS 1 and 2 publishes complete against the broker's MQTT 5 acks", T, async () => {
    const topic = uid("jsacks") + "/t";
    const pub = await connect5(broker());
    await withTimeout(pub.client.publishAsync(topic, "q1", { qos: 1 }), 5000, "QoS 1");
    await withTimeout(pub.client.publishAsync(topic, "q2", { qos: 2 }), 5000, "QoS 2");
  });
});
