// MQTT 5 subscriptions: options No Local, Retain As Published, Retain Handling 0/1/2;
// Subscription Identifiers (overlapping deliveries carry every matching id; a client
// PUBLISH carrying one is a protocol error); shared subscriptions; SUBACK and UNSUBACK
// reason codes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  Prop,
  ack5,
  connect,
  connect5,
  expectDisconnect5,
  nextPublish5,
  parseSuback5,
  publish,
  publish5Packet,
  rawSession5,
  rawSubscribe5,
  settle,
  subOptions,
  subscribe,
  subscribe5Packet,
  uid,
  unsubscribe5Packet,
  useBroker,
  withTimeout,
  type TestClient,
} from "./helpers.js";

const T = { timeout: 20_000 };

async function sub5(c: TestClient, filter: string, opts: { qos?: 0 | 1 | 2; nl?: boolean; rap?: boolean; rh?: 0 | 1 | 2 }, id?: number) {
  const granted = await withTimeout(
    c.client.subscribeAsync({ [filter]: { qos: opts.qos ?? 0, nl: opts.nl, rap: opts.rap, rh: opts.rh } }, id ? { properties: { subscriptionIdentifier: id } } : undefined),
    5000,
    `SUBACK for ${filter}`,
  );
  return granted.map((g) => g.qos);
}

describe("MQTT 5 subscription options", () => {
  const broker = useBroker();

  test("[MQTT-3.8.3-3] No Local: a client does not get its own messages back", T, async () => {
    const topic = uid("nl") + "/t";
    const me = await connect5(broker());
    await sub5(me, topic, { qos: 1, nl: true });
    await publish(me, topic, "mine", { qos: 1 });
    const other = await connect5(broker());
    await publish(other, topic, "theirs", { qos: 1 });
    const [m] = await me.inbox.wait(1);
    assert.equal(m.payload.toString(), "theirs");
    await settle();
    assert.equal(me.inbox.messages.length, 1);
  });

  test("without No Local a client gets its own message", T, async () => {
    const topic = uid("nl0") + "/t";
    const me = await connect5(broker());
    await sub5(me, topic, { qos: 1 });
    await publish(me, topic, "mine", { qos: 1 });
    assert.equal((await me.inbox.wait(1))[0].payload.toString(), "mine");
  });

  test("[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps RETAIN on live deliveries; without it RETAIN is 0", T, async () => {
    const topic = uid("rap") + "/t";
    const keep = await connect5(broker());
    await sub5(keep, topic, { qos: 1, rap: true, rh: 2 });
    const clear = await connect5(broker());
    await sub5(clear, topic, { qos: 1, rap: false, rh: 2 });
    const pub = await connect5(broker());
    await publish(pub, topic, "r", { qos: 1, retain: true });
    await publish(pub, topic, "n", { qos: 1, retain: false });
    const k = await keep.inbox.wait(2);
    const c = await clear.inbox.wait(2);
    assert.deepEqual(k.map((m) => [m.payload.toString(), m.retain]), [["r", true], ["n", false]]);
    assert.deepEqual(c.map((m) => [m.payload.toString(), m.retain]), [["r", false], ["n", false]]);
    await publish(pub, topic, "", { qos: 1, retain: true }); // clear it
  });

  test("[MQTT-3.3.1-9] Retain Handling 0: retained messages at every subscribe, also a repeated one", T, async () => {
    const topic = uid("rh0") + "/t";
    const pub = await connect5(broker());
    await publish(pub, topic, "state", { qos: 1, retain: true });
    const c = await connect5(broker());
    await sub5(c, topic, { qos: 1, rh: 0 });
    await c.inbox.wait(1);
    await sub5(c, topic, { qos: 1, rh: 0 });
    const msgs = await c.inbox.wait(2);
    assert.ok(msgs.every((m) => m.retain && m.payload.toString() === "state"));
  });

  test("[MQTT-3.3.1-10] Retain Handling 1: retained messages only when the subscription is new", T, async () => {
    const topic = uid("rh1") + "/t";
    const pub = await connect5(broker());
    await publish(pub, topic, "state", { qos: 1, retain: true });
    const c = await connect5(broker());
    await sub5(c, topic, { qos: 1, rh: 1 });
    const [m] = await c.inbox.wait(1);
    assert.equal(m.retain, true);
    await sub5(c, topic, { qos: 1, rh: 1 });
    await publish(pub, `${topic}/marker`, "m"); // not subscribed: just a pause with work in it
    await settle(300);
    assert.equal(c.inbox.messages.length, 1, "no retained message for an existing subscription");
  });

  test("[MQTT-3.3.1-11] Retain Handling 2: no retained messages at subscribe; live messages still flow", T, async () => {
    const topic = uid("rh2") + "/t";
    const pub = await connect5(broker());
    await publish(pub, topic, "state", { qos: 1, retain: true });
    const c = await connect5(broker());
    await sub5(c, topic, { qos: 1, rh: 2 });
    await settle(300);
    assert.equal(c.inbox.messages.length, 0);
    await publish(pub, topic, "live", { qos: 1 });
    assert.equal((await c.inbox.wait(1))[0].payload.toString(), "live");
  });

  test("[MQTT-3.8.3-5] Retain Handling 3 is a Protocol Error: DISCONNECT 0x82", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(subscribe5Packet(1, [[uid("rh3"), 0x30]]));
    assert.equal(await expectDisconnect5(raw), 0x82);
  });

  test("[MQTT-3.8.3-5] reserved option bits set are a Protocol Error: DISCONNECT 0x82 (or 0x81)", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(subscribe5Packet(1, [[uid("res"), 0x40]]));
    const code = await expectDisconnect5(raw);
    assert.ok([0x81, 0x82].includes(code), `0x${code.toString(16)}`);
  });
});

describe("MQTT 5 subscription identifiers", () => {
  const broker = useBroker();

  test("[MQTT-3.3.4-3] [MQTT-3.3.4-4] a message matching subscriptions with ids 1 and 2 arrives once carrying both", T, async () => {
    const base = uid("sid");
    const { raw } = await rawSession5(broker());
    assert.deepEqual(await rawSubscribe5(raw, 1, [[`${base}/+`, subOptions({ qos: 1 })]], [[Prop.SubscriptionId, 1]]), [1]);
    assert.deepEqual(await rawSubscribe5(raw, 2, [[`${base}/b`, subOptions({ qos: 0 })]], [[Prop.SubscriptionId, 2]]), [0]);
    const pub = await connect5(broker());
    await publish(pub, `${base}/b`, "both", { qos: 1 });
    await publish(pub, `${base}/c`, "only one", { qos: 1 });
    const m = await nextPublish5(raw);
    raw.write(ack5(PacketType.PUBACK, m.id));
    assert.equal(m.payload.toString(), "both");
    assert.equal(m.qos, 1, "[MQTT-3.3.4-2] the highest QoS of the matching subscriptions");
    assert.deepEqual((m.props.all(Prop.SubscriptionId) as number[]).sort(), [1, 2]);
    const n = await nextPublish5(raw);
    raw.write(ack5(PacketType.PUBACK, n.id));
    assert.equal(n.payload.toString(), "only one", "the first message came once");
    assert.deepEqual(n.props.all(Prop.SubscriptionId), [1]);
  });

  test("[MQTT-3.3.4-3] the mqtt client sees both identifiers; a subscription without an id adds none", T, async () => {
    const base = uid("sidjs");
    const c = await connect5(broker());
    await sub5(c, `${base}/#`, { qos: 1 }, 7);
    await sub5(c, `${base}/x/+`, { qos: 1 }, 268435455); // the largest identifier
    await sub5(c, `+/x/y`, { qos: 1 }); // no identifier
    const pub = await connect5(broker());
    await publish(pub, `${base}/x/y`, "p", { qos: 1 });
    const [m] = await c.inbox.wait(1);
    const ids = m.properties?.subscriptionIdentifier;
    assert.deepEqual((Array.isArray(ids) ? ids : [ids]).sort((a, b) => a! - b!), [7, 268435455]);
    await settle();
    assert.equal(c.inbox.messages.length, 1, "one copy");
  });

  test("a retained message sent at subscribe carries that subscription's identifier", T, async () => {
    const topic = uid("sidret") + "/t";
    const pub = await connect5(broker());
    await publish(pub, topic, "kept", { qos: 1, retain: true });
    const { raw } = await rawSession5(broker());
    await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 1 })]], [[Prop.SubscriptionId, 42]]);
    const m = await nextPublish5(raw);
    raw.write(ack5(PacketType.PUBACK, m.id));
    assert.equal(m.retain, true);
    assert.deepEqual(m.props.all(Prop.SubscriptionId), [42]);
  });

  test("re-subscribing replaces the identifier", T, async () => {
    const topic = uid("sidre") + "/t";
    const { raw } = await rawSession5(broker());
    await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 0 })]], [[Prop.SubscriptionId, 5]]);
    await rawSubscribe5(raw, 2, [[topic, subOptions({ qos: 0 })]], [[Prop.SubscriptionId, 6]]);
    const pub = await connect5(broker());
    await publish(pub, topic, "x");
    const m = await nextPublish5(raw);
    assert.deepEqual(m.props.all(Prop.SubscriptionId), [6]);
  });

  test("[MQTT-3.3.4-6] a client PUBLISH carrying a Subscription Identifier: DISCONNECT 0x82", T, async () => {
    const topic = uid("sidpub") + "/t";
    const watcher = await connect5(broker());
    await subscribe(watcher, topic, 0);
    const { raw } = await rawSession5(broker());
    raw.write(publish5Packet({ topic, payload: "x", qos: 1, id: 1, properties: [[Prop.SubscriptionId, 3]] }));
    assert.equal(await expectDisconnect5(raw), 0x82);
    await settle(200);
    assert.deepEqual(watcher.inbox.messages, []);
  });

  test("§3.8.2.1.2 Subscription Identifier 0 in SUBSCRIBE is a Protocol Error: DISCONNECT 0x82", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(subscribe5Packet(1, [[uid("sid0"), 0]], [[Prop.SubscriptionId, 0]]));
    assert.equal(await expectDisconnect5(raw), 0x82);
  });
});

describe("MQTT 5 shared subscriptions", () => {
  const broker = useBroker();

  test("§4.8.2 $share/g/filter: each message goes to one member; members with MQTT 5 and 3.1.1 all get some", T, async () => {
    const base = uid("share");
    const group = uid("g");
    const a = await connect5(broker());
    const b = await connect5(broker());
    const c = await connect(broker()); // MQTT 3.1.1
    for (const m of [a, b]) await sub5(m, `$share/${group}/${base}/+`, { qos: 1 });
    await subscribe(c, `$share/${group}/${base}/+`, 1);
    const plain = await connect5(broker());
    await subscribe(plain, `${base}/+`, 1);
    const pub = await connect5(broker());
    const N = 30;
    for (let i = 0; i < N; i++) await publish(pub, `${base}/${i % 4}`, String(i), { qos: 1 });
    await plain.inbox.wait(N, 10_000);
    await withTimeout(
      (async () => {
        while (a.inbox.messages.length + b.inbox.messages.length + c.inbox.messages.length < N) await settle(50);
      })(),
      10_000,
      "the group to receive every message",
    );
    await settle();
    const all = [...a.inbox.messages, ...b.inbox.messages, ...c.inbox.messages].map((m) => Number(m.payload));
    assert.equal(all.length, N, "each message once in the group");
    assert.deepEqual([...all].sort((x, y) => x - y), [...Array(N).keys()]);
    for (const [name, m] of [["a (v5)", a], ["b (v5)", b], ["c (3.1.1)", c]] as const) {
      assert.ok(m.inbox.messages.length > 0, `member ${name} got none of ${N}`);
    }
    assert.ok(c.inbox.messages.every((m) => m.topic.startsWith(base)), "3.1.1 member sees the real topic");
  });

  test("two groups on one filter each get every message once", T, async () => {
    const base = uid("share2");
    const g1 = [await connect5(broker()), await connect5(broker())];
    const g2 = [await connect5(broker())];
    for (const m of g1) await sub5(m, `$share/one/${base}`, { qos: 1 });
    for (const m of g2) await sub5(m, `$share/two/${base}`, { qos: 1 });
    const pub = await connect5(broker());
    for (let i = 0; i < 6; i++) await publish(pub, base, String(i), { qos: 1 });
    await g2[0].inbox.wait(6);
    await withTimeout(
      (async () => {
        while (g1[0].inbox.messages.length + g1[1].inbox.messages.length < 6) await settle(50);
      })(),
      5000,
      "group one",
    );
    await settle();
    assert.equal(g1[0].inbox.messages.length + g1[1].inbox.messages.length, 6);
  });

  test("retained messages are not sent for a shared subscription", T, async () => {
    const topic = uid("shret") + "/t";
    const pub = await connect5(broker());
    await publish(pub, topic, "kept", { qos: 1, retain: true });
    const m = await connect5(broker());
    await sub5(m, `$share/${uid("g")}/${topic}`, { qos: 1 });
    await settle(300);
    assert.deepEqual(m.inbox.messages, []);
  });

  test("[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error: DISCONNECT 0x82", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(subscribe5Packet(1, [[`$share/g/${uid("shnl")}`, subOptions({ qos: 1, nl: true })]]));
    assert.equal(await expectDisconnect5(raw), 0x82);
  });

  test("[MQTT-4.8.2-2] a share name with a wildcard, or no filter after it: SUBACK 0x8F", T, async () => {
    const { raw } = await rawSession5(broker());
    raw.write(subscribe5Packet(1, [["$share/g+/x", 0], ["$share/g/", 0], ["$share/ok/fine", 1]]));
    const ack = parseSuback5(await raw.expect(PacketType.SUBACK));
    assert.equal(ack.codes.length, 3);
    assert.ok(ack.codes[0] === 0x8f || ack.codes[0] === 0x80, `wildcard share name: 0x${ack.codes[0].toString(16)}`);
    assert.ok(ack.codes[1] === 0x8f || ack.codes[1] === 0x80, `no filter: 0x${ack.codes[1].toString(16)}`);
    assert.equal(ack.codes[2], 1);
  });
});

describe("MQTT 5 SUBACK and UNSUBACK reason codes", () => {
  const broker = useBroker();

  test("[MQTT-3.9.3-1] one code per filter in order: granted QoS, 0x8F for an invalid filter", T, async () => {
    const base = uid("suback");
    const { raw } = await rawSession5(broker());
    raw.write(
      subscribe5Packet(3, [
        [`${base}/a`, subOptions({ qos: 2 })],
        [`${base}/#/b`, subOptions({ qos: 1 })],
        [`${base}/c`, subOptions({ qos: 0 })],
        [`${base}/d+`, subOptions({ qos: 1 })],
      ]),
    );
    const ack = parseSuback5(await raw.expect(PacketType.SUBACK));
    assert.equal(ack.id, 3);
    assert.deepEqual(ack.codes, [0x02, 0x8f, 0x00, 0x8f]);
    assert.equal(raw.isClosed, false);
  });

  test("[MQTT-3.11.3-1] UNSUBACK: 0x00 for a removed subscription, 0x11 for none, in order", T, async () => {
    const base = uid("unsub");
    const { raw } = await rawSession5(broker());
    await rawSubscribe5(raw, 1, [[`${base}/a`, 1], [`${base}/b`, 0]]);
    raw.write(unsubscribe5Packet(2, [`${base}/a`, `${base}/zzz`, `${base}/b`, `${base}/a`]));
    const ack = parseSuback5(await raw.expect(PacketType.UNSUBACK));
    assert.equal(ack.id, 2);
    assert.deepEqual(ack.codes, [0x00, 0x11, 0x00, 0x11]);
  });

  test("the mqtt client's unsubscribe of a shared subscription succeeds and stops delivery", T, async () => {
    const topic = uid("unshare") + "/t";
    const c = await connect5(broker());
    await sub5(c, `$share/g/${topic}`, { qos: 1 });
    const res = await withTimeout(c.client.unsubscribeAsync(`$share/g/${topic}`), 5000, "UNSUBACK");
    const codes = (res as { reasonCode?: number; reasonCodes?: number[] } | undefined)?.reasonCodes;
    if (codes) assert.deepEqual(codes, [0]);
    const pub = await connect5(broker());
    await publish(pub, topic, "x", { qos: 1 });
    await settle();
    assert.deepEqual(c.inbox.messages, []);
  });
});
