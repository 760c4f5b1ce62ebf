// MQTT 5 sessions: the Session Expiry Interval (0 = ends with the connection, N
// seconds, 0xFFFFFFFF = never; changed in DISCONNECT), Clean Start and Session Present.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  Prop,
  ack5,
  connect5,
  disconnect5,
  expectDisconnect5,
  nextPublish5,
  publish,
  publish5Packet,
  rawSession5,
  rawSubscribe5,
  settle,
  sleep,
  subOptions,
  subscribe,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("MQTT 5 session expiry", () => {
  const broker = useBroker();

  /** A session with a QoS 1 subscription on `topic`, then a clean DISCONNECT (with `disc`). */
  async function leave(id: string, topic: string, expiry: number | undefined, disc: Buffer = disconnect5(0)) {
    const { raw } = await rawSession5(broker(), {
      clientId: id,
      clean: true,
      properties: expiry === undefined ? [] : [[Prop.SessionExpiry, expiry]],
    });
    assert.deepEqual(await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 1 })]]), [1]);
    raw.write(disc);
    await raw.waitClose(5000, "the close after DISCONNECT");
  }

  async function publishQos1(topic: string, payload: string) {
    const pub = await connect5(broker());
    await publish(pub, topic, payload, { qos: 1 });
    await pub.end();
  }

  test("[MQTT-3.1.2-23] no Session Expiry Interval (0): the session ends with the connection", T, async () => {
    const id = uid("exp0");
    const topic = uid("exp0") + "/t";
    await leave(id, topic, undefined);
    await publishQos1(topic, "lost");
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, false);
    await settle();
    assert.equal(raw.unread.length, 0, "nothing was kept for the ended session");
  });

  test("[MQTT-3.1.2-23] [MQTT-3.2.2-3] expiry 60: the session and its QoS 1 messages survive the disconnect", T, async () => {
    const id = uid("exp60");
    const topic = uid("exp60") + "/t";
    await leave(id, topic, 60);
    await publishQos1(topic, "kept");
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, true);
    const m = await nextPublish5(raw);
    assert.equal(m.topic, topic);
    assert.equal(m.payload.toString(), "kept");
    assert.equal(m.qos, 1);
    raw.write(ack5(PacketType.PUBACK, m.id, 0, "short"));
  });

  test("[MQTT-3.1.2-4] [MQTT-3.2.2-2] Clean Start 1 discards the stored session", T, async () => {
    const id = uid("clean");
    const topic = uid("clean") + "/t";
    await leave(id, topic, 60);
    await publishQos1(topic, "discarded");
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: true, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, false);
    await settle();
    assert.equal(raw.unread.length, 0, "the old session's messages went with it");
  });

  test("[MQTT-3.1.2-23] expiry 1 s: the session is gone after the interval", T, async () => {
    const id = uid("exp1");
    const topic = uid("exp1") + "/t";
    await leave(id, topic, 1);
    await publishQos1(topic, "expires with the session");
    await sleep(2500);
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, false);
    await settle();
    assert.equal(raw.unread.length, 0);
  });

  test("[MQTT-3.1.2-23] expiry 4 s: a client back within the interval finds its session", T, async () => {
    const id = uid("exp4");
    const topic = uid("exp4") + "/t";
    await leave(id, topic, 4);
    await sleep(1000);
    const { connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 4]] });
    assert.equal(connack.sessionPresent, true);
  });

  test("the interval runs after a dropped connection too (no DISCONNECT)", T, async () => {
    const id = uid("drop");
    const topic = uid("drop") + "/t";
    const { raw } = await rawSession5(broker(), { clientId: id, properties: [[Prop.SessionExpiry, 60]] });
    await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 1 })]]);
    raw.destroy();
    await raw.closed;
    await settle(100);
    await publishQos1(topic, "after the drop");
    const back = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(back.connack.sessionPresent, true);
    const m = await nextPublish5(back.raw);
    assert.equal(m.payload.toString(), "after the drop");
  });

  test("§3.14.2.2.2 DISCONNECT with Session Expiry 0 ends a session that had 60", T, async () => {
    const id = uid("disc0");
    const topic = uid("disc0") + "/t";
    await leave(id, topic, 60, disconnect5(0, [[Prop.SessionExpiry, 0]]));
    const { connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, false);
  });

  test("§3.14.2.2.2 DISCONNECT can lengthen the interval: 1 s at CONNECT, 60 s at DISCONNECT", T, async () => {
    const id = uid("disc60");
    const topic = uid("disc60") + "/t";
    await leave(id, topic, 1, disconnect5(0, [[Prop.SessionExpiry, 60]]));
    await sleep(2000);
    await publishQos1(topic, "still subscribed");
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, true);
    assert.equal((await nextPublish5(raw)).payload.toString(), "still subscribed");
  });

  test("§3.14.2.2.2 DISCONNECT can shorten the interval: 60 s at CONNECT, 1 s at DISCONNECT", T, async () => {
    const id = uid("disc1");
    const topic = uid("disc1") + "/t";
    await leave(id, topic, 60, disconnect5(0, [[Prop.SessionExpiry, 1]]));
    await sleep(2500);
    const { connack } = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(connack.sessionPresent, false);
  });

  test("§3.14.2.2.2 a non-zero Session Expiry in DISCONNECT after 0 at CONNECT is a Protocol Error: DISCONNECT 0x82", T, async () => {
    const id = uid("disc-bad");
    const { raw } = await rawSession5(broker(), { clientId: id });
    raw.write(disconnect5(0, [[Prop.SessionExpiry, 30]]));
    assert.equal(await expectDisconnect5(raw), 0x82);
    // and the session did not become persistent
    const { connack } = await rawSession5(broker(), { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, false);
  });

  test("0xFFFFFFFF: the session never expires (still there after a pause)", T, async () => {
    const id = uid("never");
    const topic = uid("never") + "/t";
    await leave(id, topic, 0xffffffff);
    await sleep(1200);
    const { raw, connack } = await rawSession5(broker(), { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, true);
    // clean up: end it
    raw.write(disconnect5(0, [[Prop.SessionExpiry, 0]]));
    await raw.waitClose();
  });

  test("the mqtt client: sessionExpiryInterval keeps subscriptions and queued QoS 1 messages across reconnects", T, async () => {
    const id = uid("js");
    const topic = uid("js") + "/t";
    const opts = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await connect5(broker(), { ...opts, clean: true });
    await subscribe(first, topic, 1);
    await first.end();
    await publishQos1(topic, "while away");
    const second = await connect5(broker(), opts);
    assert.equal(second.connack.sessionPresent, true);
    const [m] = await second.inbox.wait(1);
    assert.equal(m.payload.toString(), "while away");
    assert.equal(m.qos, 1);
  });

  test("a QoS 1 message left unacknowledged is resent with DUP and its packet id on resume", T, async () => {
    const id = uid("dup");
    const topic = uid("dup") + "/t";
    const { raw } = await rawSession5(broker(), { clientId: id, properties: [[Prop.SessionExpiry, 60]] });
    await rawSubscribe5(raw, 1, [[topic, subOptions({ qos: 1 })]]);
    const pub = await rawSession5(broker());
    pub.raw.write(publish5Packet({ topic, payload: "unacked", qos: 1, id: 9 }));
    await pub.raw.expect(PacketType.PUBACK);
    const first = await nextPublish5(raw);
    raw.destroy();
    await raw.closed;
    const back = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(back.connack.sessionPresent, true);
    const again = await nextPublish5(back.raw);
    assert.equal(again.dup, true);
    assert.equal(again.id, first.id);
    assert.equal(again.payload.toString(), "unacked");
    back.raw.write(ack5(PacketType.PUBACK, again.id, 0, "short"));
  });
});
