// Persistent sessions (CleanSession=0): sessionPresent, subscriptions kept, messages
// queued while offline, redelivery of unacknowledged QoS 1/2 messages with DUP=1.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  connect,
  parsePublish,
  puback,
  pubcomp,
  publish,
  pubrec,
  rawSession,
  rawSubscribe,
  settle,
  subscribe,
  uid,
  useBroker,
  type Broker,
} from "./helpers.js";

const T = { timeout: 20_000 };

/** Ends a stored session: connect with clean=1 and disconnect. */
async function dropSession(broker: Broker, clientId: string) {
  const c = await connect(broker, { clientId, clean: true });
  await c.end();
}

describe("persistent sessions", () => {
  const broker = useBroker();

  test("[MQTT-3.2.2-3] clean=0 without a stored session gets sessionPresent=0", T, async () => {
    const id = uid("fresh");
    const c = await connect(broker(), { clientId: id, clean: false });
    assert.equal(c.connack.returnCode, 0);
    assert.equal(c.connack.sessionPresent, false);
    await c.end();
    await dropSession(broker(), id);
  });

  test("[MQTT-3.2.2-2] [MQTT-3.1.2-4] subscriptions survive a reconnect with clean=0 (sessionPresent=1)", T, async () => {
    const id = uid("keep");
    const topic = uid("keep") + "/t";
    const first = await connect(broker(), { clientId: id, clean: false });
    await subscribe(first, topic, 1);
    await first.end();

    const again = await connect(broker(), { clientId: id, clean: false });
    assert.equal(again.connack.sessionPresent, true);
    const pub = await connect(broker());
    await publish(pub, topic, "still subscribed", { qos: 1 });
    const [m] = await again.inbox.wait(1);
    assert.equal(m.payload.toString(), "still subscribed");
    assert.equal(m.qos, 1);
    await again.end();
    await dropSession(broker(), id);
  });

  test("[MQTT-3.1.2-5] QoS 1 and 2 messages published while offline are delivered on reconnect", T, async () => {
    const id = uid("offline");
    const topic = uid("offline") + "/t";
    const first = await connect(broker(), { clientId: id, clean: false });
    await subscribe(first, topic, 2);
    await first.end();

    const pub = await connect(broker());
    await publish(pub, topic, "q1", { qos: 1 });
    await publish(pub, topic, "q2", { qos: 2 });
    await publish(pub, topic, "q2 again", { qos: 2 });

    const back = await connect(broker(), { clientId: id, clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const got = await back.inbox.until(
      (ms) => ["q1", "q2", "q2 again"].every((p) => ms.some((m) => m.payload.toString() === p)),
      5000,
      "the three queued messages",
    );
    const q = (p: string) => got.find((m) => m.payload.toString() === p)!;
    assert.equal(q("q1").qos, 1);
    assert.equal(q("q2").qos, 2);
    assert.equal(q("q2 again").qos, 2);
    assert.deepEqual(
      got.map((m) => m.payload.toString()),
      ["q1", "q2", "q2 again"],
      "[MQTT-4.6.0-6] in publication order, each once",
    );
    await back.end();
    await dropSession(broker(), id);
  });

  test("[MQTT-3.1.2-5] messages are queued also after an abnormal disconnect", T, async () => {
    const id = uid("dropped");
    const topic = uid("dropped") + "/t";
    const first = await connect(broker(), { clientId: id, clean: false });
    await subscribe(first, topic, 1);
    first.destroy();
    await first.closed;
    await settle(); // let the broker notice the close
    const pub = await connect(broker());
    await publish(pub, topic, "while away", { qos: 1 });
    const back = await connect(broker(), { clientId: id, clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const [m] = await back.inbox.wait(1);
    assert.equal(m.payload.toString(), "while away");
    await back.end();
    await dropSession(broker(), id);
  });

  test("[MQTT-3.1.2-6] [MQTT-3.2.2-1] clean=1 discards the stored session", T, async () => {
    const id = uid("discard");
    const base = uid("discard");
    const first = await connect(broker(), { clientId: id, clean: false });
    await subscribe(first, `${base}/t`, 1);
    await first.end();

    const cleanOne = await connect(broker(), { clientId: id, clean: true });
    assert.equal(cleanOne.connack.sessionPresent, false, "clean=1 always gets sessionPresent=0");
    await cleanOne.end();

    const pub = await connect(broker());
    await publish(pub, `${base}/t`, "not for you", { qos: 1 }); // nobody keeps this

    const later = await connect(broker(), { clientId: id, clean: false });
    assert.equal(later.connack.sessionPresent, false, "the old session is gone");
    await subscribe(later, `${base}/marker`, 1);
    await publish(pub, `${base}/t`, "no subscription", { qos: 1 });
    await publish(pub, `${base}/marker`, "end", { qos: 1 });
    await later.inbox.waitTopic(`${base}/marker`);
    assert.deepEqual(later.inbox.on(`${base}/t`), [], "the old subscription was discarded");
    await later.end();
    await dropSession(broker(), id);
  });

  test("[MQTT-3.1.2-6] a clean=1 session is not kept after it disconnects", T, async () => {
    const id = uid("transient");
    const topic = uid("transient") + "/t";
    const c = await connect(broker(), { clientId: id, clean: true });
    await subscribe(c, topic, 1);
    await c.end();
    const pub = await connect(broker());
    await publish(pub, topic, "lost", { qos: 1 });
    const back = await connect(broker(), { clientId: id, clean: false });
    assert.equal(back.connack.sessionPresent, false);
    await settle();
    assert.deepEqual(back.inbox.messages, []);
    await back.end();
    await dropSession(broker(), id);
  });

  for (const qos of [1, 2] as const) {
    test(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] an unacknowledged QoS ${qos} PUBLISH is resent on reconnect with DUP=1 and the same packet id`, T, async () => {
      const id = uid(`redeliver${qos}`);
      const topic = uid(`redeliver${qos}`) + "/t";
      const first = await rawSession(broker(), { clientId: id, clean: false });
      assert.deepEqual(await rawSubscribe(first.raw, 1, [[topic, qos]]), [qos]);

      const pub = await connect(broker());
      await publish(pub, topic, "ack me", { qos });
      const original = parsePublish(await first.raw.expect(PacketType.PUBLISH));
      assert.equal(original.qos, qos);
      assert.equal(original.dup, false);
      assert.notEqual(original.id, 0);
      // never acknowledge it; drop the connection
      first.raw.destroy();
      await first.raw.closed;
      await settle();

      const second = await rawSession(broker(), { clientId: id, clean: false });
      assert.equal(second.sessionPresent, true);
      const again = parsePublish(await second.raw.expect(PacketType.PUBLISH));
      assert.equal(again.dup, true, "DUP=1 on redelivery");
      assert.equal(again.id, original.id, "the original packet id");
      assert.equal(again.qos, qos);
      assert.equal(again.topic, topic);
      assert.equal(again.payload.toString(), "ack me");
      if (qos === 1) {
        second.raw.write(puback(again.id));
      } else {
        second.raw.write(pubrec(again.id));
        const rel = await second.raw.expect(PacketType.PUBREL);
        assert.equal(rel.flags, 0x02, "[MQTT-3.6.1-1] PUBREL flags 0010");
        assert.equal(rel.body.readUInt16BE(0), again.id);
        second.raw.write(pubcomp(again.id));
      }
      // acknowledged now: a third connection gets nothing
      second.raw.destroy();
      await second.raw.closed;
      await settle();
      const third = await connect(broker(), { clientId: id, clean: false });
      assert.equal(third.connack.sessionPresent, true);
      await settle();
      assert.deepEqual(third.inbox.messages, [], "nothing is redelivered once acknowledged");
      await third.end();
      await dropSession(broker(), id);
    });
  }

  test("[MQTT-4.4.0-1] a PUBREL not completed with PUBCOMP is resent on reconnect", T, async () => {
    const id = uid("pubrel");
    const topic = uid("pubrel") + "/t";
    const first = await rawSession(broker(), { clientId: id, clean: false });
    await rawSubscribe(first.raw, 1, [[topic, 2]]);
    const pub = await connect(broker());
    await publish(pub, topic, "q2", { qos: 2 });
    const p = parsePublish(await first.raw.expect(PacketType.PUBLISH));
    first.raw.write(pubrec(p.id));
    const rel = await first.raw.expect(PacketType.PUBREL);
    assert.equal(rel.body.readUInt16BE(0), p.id);
    first.raw.destroy(); // no PUBCOMP
    await first.raw.closed;
    await settle();

    const second = await rawSession(broker(), { clientId: id, clean: false });
    assert.equal(second.sessionPresent, true);
    const next = await second.raw.next(5000, "the resent PUBREL");
    assert.equal(next.type, PacketType.PUBREL, "PUBREL, not the PUBLISH again");
    assert.equal(next.flags, 0x02);
    assert.equal(next.body.readUInt16BE(0), p.id);
    second.raw.write(pubcomp(p.id));
    await settle();
    assert.deepEqual(second.raw.unread, [], "nothing else is resent");
    second.raw.destroy();
    await dropSession(broker(), id);
  });
});
