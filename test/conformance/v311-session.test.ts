// MQTT 3.1.1 conformance: sessions (CleanSession 0 and 1), Session Present, messages
// stored while the client is away, redelivery on reconnect with DUP and the original
// packet identifiers, session takeover (sections 3.1.2.4, 3.2.2, 4.1, 4.4, 4.5).
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
  nextOfType,
  online,
  parsePublish,
  puback,
  pubcomp,
  publishPacket,
  pubrec,
  pubrel,
  rawConnect,
  sub,
  topicBase,
  uid,
  useBroker,
  type RawClient,
} from "./helpers.js";

describe("MQTT 3.1.1 sessions", () => {
  const broker = useBroker();

  async function leave(c: RawClient) {
    c.write(disconnect());
    await expectClose(c);
  }

  test("[MQTT-3.2.2-3] CleanSession 0 without a stored session: CONNACK 0 with Session Present 0", T, async () => {
    const r = await rawConnect(broker(), { clientId: uid("fresh"), clean: false });
    assert.equal(r.returnCode, 0);
    assert.equal(r.sessionPresent, false);
  });

  test("[MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-3] CleanSession 0 resumes the stored session: Session Present 1 and the subscriptions still work", T, async () => {
    const id = uid("resume");
    const base = topicBase("resume");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 1]]);
    await leave(c);
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    assert.equal(r.returnCode, 0);
    assert.equal(r.sessionPresent, true, "[MQTT-3.2.2-2] Session Present 1");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "still subscribed", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "still subscribed");
    r.raw.write(puback(m.id));
  });

  test("[MQTT-3.1.2-6] [MQTT-3.2.2-1] [MQTT-3.1.4-3] CleanSession 1 discards the stored session: Session Present 0, no subscriptions, and the old state is not reused later", T, async () => {
    const id = uid("clean");
    const base = topicBase("clean");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 1]]);
    await leave(c);
    const r = await rawConnect(broker(), { clientId: id, clean: true });
    assert.equal(r.sessionPresent, false, "[MQTT-3.2.2-1] Session Present 0 with CleanSession 1");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "x", qos: 1, id: 1 }));
    await nextOfType(p, PacketType.PUBACK);
    await expectNothing(r.raw, QUIET_MS, PacketType.PUBLISH, "the old subscription is gone");
    await leave(r.raw);
    // the clean session ended with its connection: nothing of either session comes back
    const again = await rawConnect(broker(), { clientId: id, clean: false });
    assert.equal(again.sessionPresent, false, "no session survives a CleanSession 1 connection");
    p.write(publishPacket({ topic: `${base}/t`, payload: "y", qos: 1, id: 2 }));
    await nextOfType(p, PacketType.PUBACK);
    await expectNothing(again.raw, QUIET_MS, PacketType.PUBLISH, "no subscription");
  });

  test("[MQTT-3.1.2-5] [MQTT-4.5.0-1] [MQTT-4.1.0-1] QoS 1 and 2 messages published while a CleanSession 0 client is away are delivered when it returns", T, async () => {
    const id = uid("away");
    const base = topicBase("away");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 2]]);
    await leave(c);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "q1", qos: 1, id: 1 }));
    await nextOfType(p, PacketType.PUBACK);
    p.write(publishPacket({ topic: `${base}/t`, payload: "q2", qos: 2, id: 2 }));
    await nextOfType(p, PacketType.PUBREC);
    p.write(pubrel(2));
    await nextOfType(p, PacketType.PUBCOMP);
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    assert.equal(r.sessionPresent, true);
    const a = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    r.raw.write(puback(a.id));
    const b = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.deepEqual([a.payload.toString(), a.qos, b.payload.toString(), b.qos], ["q1", 1, "q2", 2]);
    r.raw.write(pubrec(b.id));
    await nextOfType(r.raw, PacketType.PUBREL);
    r.raw.write(pubcomp(b.id));
  });

  test("[MQTT-3.2.0-1] on a resumed session CONNACK comes before the stored messages", T, async () => {
    const id = uid("order");
    const base = topicBase("order");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 1]]);
    await leave(c);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "queued", qos: 1, id: 1 }));
    await nextOfType(p, PacketType.PUBACK);
    const { RawClient, connectPacket } = await import("./helpers.js");
    const raw = await RawClient.open(broker());
    raw.write(connectPacket({ clientId: id, clean: false }));
    const first = await raw.next(5000, "CONNACK");
    assert.equal(first.type, PacketType.CONNACK);
    const m = parsePublish(await nextOfType(raw, PacketType.PUBLISH));
    raw.write(puback(m.id));
  });

  test("[MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.3.2-1] an unacknowledged QoS 1 delivery is re-sent on reconnect with DUP 1 and its original identifier", T, async () => {
    const id = uid("redeliver");
    const base = topicBase("redeliver");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 1]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "unacked", qos: 1, id: 1 }));
    const first = parsePublish(await nextOfType(c, PacketType.PUBLISH));
    assert.equal(first.dup, false);
    c.destroy(); // no PUBACK
    await new Promise((r) => setTimeout(r, 100));
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    const again = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.equal(again.payload.toString(), "unacked");
    assert.equal(again.id, first.id, "the original packet identifier");
    assert.equal(again.dup, true, "DUP 1 on the re-delivery");
    r.raw.write(puback(again.id));
    // acknowledged: not sent a third time
    await leave(r.raw);
    const r2 = await rawConnect(broker(), { clientId: id, clean: false });
    await expectNothing(r2.raw, QUIET_MS, PacketType.PUBLISH, "an acknowledged message is not re-sent");
  });

  test("[MQTT-4.4.0-1] [MQTT-4.3.3-1] a QoS 2 delivery interrupted after PUBREC resumes with PUBREL (same identifier), never the PUBLISH", T, async () => {
    const id = uid("rel");
    const base = topicBase("rel");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "q2", qos: 2, id: 1 }));
    const m = parsePublish(await nextOfType(c, PacketType.PUBLISH));
    c.write(pubrec(m.id));
    await nextOfType(c, PacketType.PUBREL);
    c.destroy(); // no PUBCOMP
    await new Promise((r) => setTimeout(r, 100));
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    const rel = await nextOfType(r.raw, PacketType.PUBREL);
    assert.equal(rel.flags, 0x02);
    assert.equal(rel.body.readUInt16BE(0), m.id);
    await expectNothing(r.raw, QUIET_MS, PacketType.PUBLISH, "the PUBLISH is not re-sent after its PUBREL");
    r.raw.write(pubcomp(m.id));
  });

  test("[MQTT-4.4.0-1] a QoS 2 delivery interrupted before PUBREC is re-sent as PUBLISH with DUP 1 and the same identifier", T, async () => {
    const id = uid("q2re");
    const base = topicBase("q2re");
    const c = await online(broker(), { clientId: id, clean: false });
    await sub(c, [[`${base}/t`, 2]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "q2", qos: 2, id: 1 }));
    const m = parsePublish(await nextOfType(c, PacketType.PUBLISH));
    c.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    const again = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.deepEqual([again.id, again.dup, again.qos], [m.id, true, 2]);
    r.raw.write(pubrec(again.id));
    await nextOfType(r.raw, PacketType.PUBREL);
    r.raw.write(pubcomp(again.id));
  });

  test("[MQTT-4.1.0-1] [MQTT-4.3.3-2] incoming QoS 2 state survives a reconnect: the repeated PUBLISH is not delivered twice", T, async () => {
    const id = uid("inq2");
    const base = topicBase("inq2");
    const s = await online(broker());
    await sub(s, [[`${base}/t`, 0]]);
    const c = await online(broker(), { clientId: id, clean: false });
    c.write(publishPacket({ topic: `${base}/t`, payload: "exactly once", qos: 2, id: 77 }));
    await nextOfType(c, PacketType.PUBREC);
    c.destroy(); // before PUBREL
    await new Promise((r) => setTimeout(r, 100));
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    assert.equal(r.sessionPresent, true);
    r.raw.write(publishPacket({ topic: `${base}/t`, payload: "exactly once", qos: 2, id: 77, dup: true }));
    await nextOfType(r.raw, PacketType.PUBREC);
    r.raw.write(pubrel(77));
    await nextOfType(r.raw, PacketType.PUBCOMP);
    const got = (await collect(s, PacketType.PUBLISH, 500)).map(parsePublish);
    assert.deepEqual(got.map((m) => m.payload.toString()), ["exactly once"], "one delivery");
  });

  test("[MQTT-4.1.0-2] a CleanSession 1 session lasts as long as its connection", T, async () => {
    const base = topicBase("lasts");
    const c = await online(broker(), { clean: true });
    await sub(c, [[`${base}/t`, 1]]);
    await new Promise((r) => setTimeout(r, 1000));
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "later", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(c, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "later");
    c.write(puback(m.id));
  });

  test("[MQTT-3.1.3-2] sessions are per client id: another id's session is not affected", T, async () => {
    const base = topicBase("perid");
    const a = await online(broker(), { clientId: uid("a"), clean: false });
    await sub(a, [[`${base}/a`, 1]]);
    const b = await online(broker(), { clientId: uid("b"), clean: false });
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/a`, payload: "for a", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(a, PacketType.PUBLISH));
    a.write(puback(m.id));
    await expectNothing(b, QUIET_MS, PacketType.PUBLISH, "b has no subscription");
  });

  test("[MQTT-3.1.4-2] a takeover with CleanSession 0 keeps the session (Session Present 1) and the old connection is closed", T, async () => {
    const id = uid("takeover");
    const base = topicBase("takeover");
    const old = await online(broker(), { clientId: id, clean: false });
    await sub(old, [[`${base}/t`, 1]]);
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    assert.equal(r.returnCode, 0);
    assert.equal(r.sessionPresent, true);
    await expectClose(old, 5000, "the older connection to be closed");
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "to the new one", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "to the new one");
    r.raw.write(puback(m.id));
    assert.equal(old.unread.filter((x) => x.type === PacketType.PUBLISH).length, 0, "nothing to the old connection");
  });

  test("[MQTT-3.1.4-2] a takeover hands over unacknowledged messages: the new connection gets them again", T, async () => {
    const id = uid("handover");
    const base = topicBase("handover");
    const old = await online(broker(), { clientId: id, clean: false });
    await sub(old, [[`${base}/t`, 1]]);
    const p = await online(broker());
    p.write(publishPacket({ topic: `${base}/t`, payload: "pending", qos: 1, id: 1 }));
    const m = parsePublish(await nextOfType(old, PacketType.PUBLISH));
    const r = await rawConnect(broker(), { clientId: id, clean: false });
    const again = parsePublish(await nextOfType(r.raw, PacketType.PUBLISH));
    assert.deepEqual([again.payload.toString(), again.id, again.dup], ["pending", m.id, true]);
    r.raw.write(puback(again.id));
  });
});
