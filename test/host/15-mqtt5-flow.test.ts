// MQTT 5 flow control and packet size limits: the client's Receive Maximum (never
// more unacknowledged QoS 1/2 PUBLISHes in flight to it), ours (DISCONNECT 0x93), the
// client's Maximum Packet Size (a message over it is not delivered) and ours (0x95).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  Prop,
  ack5,
  connect5,
  expectDisconnect5,
  nextPublish5,
  parseAck5,
  pingreq,
  publish,
  publish5Packet,
  rawSession5,
  rawSubscribe5,
  settle,
  subOptions,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 30_000 };

describe("MQTT 5 Receive Maximum", () => {
  const broker = useBroker();

  test("[MQTT-3.3.4-9] a client Receive Maximum of 2: never more than 2 unacknowledged QoS 1 PUBLISHes in flight", T, async () => {
    const topic = uid("rm2") + "/t";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.ReceiveMaximum, 2]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await connect5(broker());
    const N = 10;
    for (let i = 0; i < N; i++) await publish(pub, topic, String(i), { qos: 1 });
    const got: number[] = [];
    let a = await nextPublish5(sub);
    let b = await nextPublish5(sub);
    got.push(Number(a.payload), Number(b.payload));
    await settle(300);
    assert.equal(sub.unread.length, 0, "a third PUBLISH came before any PUBACK");
    // [MQTT-3.3.4-10] other packets are not held back by a full window
    sub.write(pingreq());
    await sub.expect(PacketType.PINGRESP);
    // each PUBACK lets exactly one more through
    while (got.length < N) {
      sub.write(ack5(PacketType.PUBACK, a.id));
      const c = await nextPublish5(sub);
      got.push(Number(c.payload));
      await settle(50);
      assert.equal(sub.unread.filter((p) => p.type === PacketType.PUBLISH).length, 0, "one PUBACK, one more PUBLISH");
      a = b;
      b = c;
    }
    sub.write(ack5(PacketType.PUBACK, a.id));
    sub.write(ack5(PacketType.PUBACK, b.id));
    assert.deepEqual(got, [...Array(N).keys()], "all delivered, in order");
  });

  test("[MQTT-3.3.4-9] QoS 2 holds a slot until PUBCOMP (PUBREC alone frees nothing)", T, async () => {
    const topic = uid("rm2q2") + "/t";
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.ReceiveMaximum, 2]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 2 })]]);
    const pub = await connect5(broker());
    for (let i = 0; i < 4; i++) await publish(pub, topic, String(i), { qos: 2 });
    const a = await nextPublish5(sub);
    const b = await nextPublish5(sub);
    sub.write(ack5(PacketType.PUBREC, a.id));
    sub.write(ack5(PacketType.PUBREC, b.id));
    assert.equal(parseAck5(await sub.expect(PacketType.PUBREL)).id, a.id);
    assert.equal(parseAck5(await sub.expect(PacketType.PUBREL)).id, b.id);
    await settle(300);
    assert.equal(sub.unread.length, 0, "no third PUBLISH while two await PUBCOMP");
    sub.write(ack5(PacketType.PUBCOMP, a.id));
    const c = await nextPublish5(sub);
    assert.equal(c.payload.toString(), "2");
    await settle(200);
    assert.equal(sub.unread.length, 0);
  });

  test("the mqtt client with receiveMaximum 2 gets every QoS 1 message", T, async () => {
    const topic = uid("rmjs") + "/t";
    const sub = await connect5(broker(), { properties: { receiveMaximum: 2 } });
    await sub.client.subscribeAsync(topic, { qos: 1 });
    const pub = await connect5(broker());
    for (let i = 0; i < 20; i++) pub.client.publish(topic, String(i), { qos: 1 });
    const got = await sub.inbox.wait(20);
    assert.deepEqual(got.map((m) => Number(m.payload)), [...Array(20).keys()]);
  });

  test("[MQTT-3.3.4-9] a client exceeding our Receive Maximum with QoS 2: DISCONNECT 0x93", T, async () => {
    const topic = uid("rmover") + "/t";
    const { raw, connack } = await rawSession5(broker());
    const max = connack.props.get(Prop.ReceiveMaximum) as number;
    assert.ok(max >= 1 && max < 1000, `Receive Maximum ${max}`);
    for (let id = 1; id <= max; id++) raw.write(publish5Packet({ topic, payload: "x", qos: 2, id }));
    for (let id = 1; id <= max; id++) assert.equal(parseAck5(await raw.expect(PacketType.PUBREC)).id, id);
    // releasing one makes room for one more
    raw.write(ack5(PacketType.PUBREL, 1));
    assert.equal(parseAck5(await raw.expect(PacketType.PUBCOMP)).id, 1);
    raw.write(publish5Packet({ topic, payload: "x", qos: 2, id: 1 }));
    assert.equal(parseAck5(await raw.expect(PacketType.PUBREC)).id, 1);
    // and one more than the maximum is refused
    raw.write(publish5Packet({ topic, payload: "x", qos: 2, id: max + 1 }));
    assert.equal(await expectDisconnect5(raw), 0x93);
  });
});

describe("MQTT 5 Maximum Packet Size, the client's", () => {
  const broker = useBroker();

  test("[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message over the client's Maximum Packet Size is not delivered; smaller ones are", T, async () => {
    const topic = uid("mps") + "/t";
    const LIMIT = 200;
    const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.MaximumPacketSize, LIMIT]] });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 0 })]]);
    // QoS 0, no properties: 1 + remaining-length (2 bytes here) + 2 + topic + 1 (props length 0) + payload
    const overhead = 1 + 2 + 2 + Buffer.byteLength(topic) + 1;
    const fits = Buffer.alloc(LIMIT - overhead, 0x61);
    const over = Buffer.alloc(LIMIT - overhead + 1, 0x62);
    const pub = await connect5(broker());
    await publish(pub, topic, "small");
    await publish(pub, topic, over);
    await publish(pub, topic, fits);
    await publish(pub, topic, Buffer.alloc(5000, 0x63));
    await publish(pub, topic, "end");
    const got: string[] = [];
    for (;;) {
      const m = await nextPublish5(sub);
      got.push(m.payload.length > 10 ? `${m.payload.length}B` : m.payload.toString());
      if (m.payload.toString() === "end") break;
    }
    assert.deepEqual(got, ["small", `${fits.length}B`, "end"], "exactly the limit is sent, one byte over is not");
  });

  test("[MQTT-3.1.2-25] a QoS 1 message too large is dropped as if delivered: it does not block the queue", T, async () => {
    const topic = uid("mps1") + "/t";
    const { raw: sub } = await rawSession5(broker(), {
      properties: [[Prop.MaximumPacketSize, 128], [Prop.ReceiveMaximum, 1]],
    });
    await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await connect5(broker());
    await publish(pub, topic, Buffer.alloc(1000, 1), { qos: 1 });
    await publish(pub, topic, "after", { qos: 1 });
    const m = await nextPublish5(sub);
    assert.equal(m.payload.toString(), "after");
    sub.write(ack5(PacketType.PUBACK, m.id));
  });

  test("[MQTT-3.1.2-25] dropping oversized QoS 1 messages, twice, for two subscribers: the broker keeps serving", T, async () => {
    for (let round = 0; round < 2; round++) {
      const topic = uid(`mpsq${round}`) + "/t";
      const { raw: sub } = await rawSession5(broker(), { properties: [[Prop.MaximumPacketSize, 128]] });
      await rawSubscribe5(sub, 1, [[topic, subOptions({ qos: 1 })]]);
      const { raw: pub } = await rawSession5(broker());
      pub.write(publish5Packet({ topic, payload: Buffer.alloc(1000, 1), qos: 1, id: 1 }));
      await pub.expect(PacketType.PUBACK);
      pub.write(publish5Packet({ topic, payload: "after", qos: 1, id: 2 }));
      await pub.expect(PacketType.PUBACK, 3000);
      const m = await nextPublish5(sub, 3000);
      assert.equal(m.payload.toString(), "after", `round ${round}`);
      sub.write(ack5(PacketType.PUBACK, m.id));
    }
  });

  test("the mqtt client with maximumPacketSize gets only what fits", T, async () => {
    const topic = uid("mpsjs") + "/t";
    const sub = await connect5(broker(), { properties: { maximumPacketSize: 512 } });
    await sub.client.subscribeAsync(topic, { qos: 1 });
    const pub = await connect5(broker());
    await publish(pub, topic, Buffer.alloc(2000, 7), { qos: 1 });
    await publish(pub, topic, "fits", { qos: 1 });
    const [m] = await sub.inbox.wait(1);
    assert.equal(m.payload.toString(), "fits");
    await settle();
    assert.equal(sub.inbox.messages.length, 1);
  });
});

describe("MQTT 5 Maximum Packet Size, ours (--max-packet-size 1000)", () => {
  const broker = useBroker({ args: ["--max-packet-size", "1000"] });

  test("CONNACK advertises Maximum Packet Size 1000", T, async () => {
    const { connack } = await rawSession5(broker());
    assert.equal(connack.props.get(Prop.MaximumPacketSize), 1000);
  });

  test("§3.2.2.3.6 a packet of exactly 1000 bytes is accepted; 1001 bytes: DISCONNECT 0x95", T, async () => {
    const topic = uid("ours") + "/t";
    const watcher = await connect5(broker());
    await watcher.client.subscribeAsync(topic, { qos: 0 });
    const { raw } = await rawSession5(broker());
    const make = (size: number) => {
      // QoS 0, no properties: 1 + 2 (remaining length) + 2 + topic + 1 + payload
      const payload = Buffer.alloc(size - (1 + 2 + 2 + Buffer.byteLength(topic) + 1), 0x41);
      const p = publish5Packet({ topic, payload });
      assert.equal(p.length, size);
      return p;
    };
    raw.write(make(1000));
    const [m] = await watcher.inbox.wait(1);
    assert.equal(m.payload.length, 1000 - (6 + Buffer.byteLength(topic)));
    raw.write(make(1001));
    assert.equal(await expectDisconnect5(raw), 0x95);
    await settle(200);
    assert.equal(watcher.inbox.messages.length, 1, "the oversized one was not forwarded");
  });
});
