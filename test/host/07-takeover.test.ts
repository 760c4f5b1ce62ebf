// Session takeover: a second connection with the same client id closes the first.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PacketType, connect, pingreq, publish, rawSession, subscribe, uid, useBroker } from "./helpers.js";

const T = { timeout: 20_000 };

describe("takeover", () => {
  const broker = useBroker();

  test("[MQTT-3.1.4-2] a second client with the same id takes over the session: the old connection is closed", T, async () => {
    const id = uid("same");
    const topic = uid("same") + "/t";
    const old = await connect(broker(), { clientId: id, clean: false });
    await subscribe(old, topic, 1);
    const bystander = await connect(broker());
    await subscribe(bystander, topic, 1);

    const fresh = await connect(broker(), { clientId: id, clean: false });
    assert.equal(fresh.connack.returnCode, 0);
    assert.equal(fresh.connack.sessionPresent, true, "the new connection continues the session");
    await old.closed; // bounded by the test timeout
    assert.equal(old.isClosed(), true);

    // the session (and its subscription) now belongs to the new connection
    const pub = await connect(broker());
    await publish(pub, topic, "to the new one", { qos: 1 });
    const [m] = await fresh.inbox.wait(1);
    assert.equal(m.payload.toString(), "to the new one");
    await bystander.inbox.wait(1);
    assert.equal(bystander.isClosed(), false, "other clients are not disturbed");
    assert.deepEqual(old.inbox.messages, []);
    await fresh.end();
    const clean = await connect(broker(), { clientId: id, clean: true });
    await clean.end();
  });

  test("[MQTT-3.1.4-2] takeover of a raw connection closes its socket", T, async () => {
    const id = uid("rawsame");
    const first = await rawSession(broker(), { clientId: id });
    const second = await rawSession(broker(), { clientId: id });
    await first.raw.waitClose(5000, "the broker to close the taken-over connection");
    second.raw.write(pingreq());
    await second.raw.expect(PacketType.PINGRESP);
    assert.equal(second.raw.isClosed, false);
  });

  test("[MQTT-3.1.4-2] clean=1 takeover: sessionPresent=0 and the old subscriptions are gone", T, async () => {
    const id = uid("cleanover");
    const base = uid("cleanover");
    const old = await connect(broker(), { clientId: id, clean: false });
    await subscribe(old, `${base}/t`, 1);
    const fresh = await connect(broker(), { clientId: id, clean: true });
    assert.equal(fresh.connack.sessionPresent, false);
    await old.closed;
    await subscribe(fresh, `${base}/marker`, 1);
    const pub = await connect(broker());
    await publish(pub, `${base}/t`, "old subscription", { qos: 1 });
    await publish(pub, `${base}/marker`, "end", { qos: 1 });
    await fresh.inbox.waitTopic(`${base}/marker`);
    assert.deepEqual(fresh.inbox.on(`${base}/t`), []);
  });

  test("[MQTT-3.1.4-2] a chain of 20 takeovers leaves exactly the last connection open", { timeout: 30_000 }, async () => {
    const id = uid("chain");
    const conns = [];
    for (let i = 0; i < 20; i++) conns.push(await rawSession(broker(), { clientId: id }));
    for (const c of conns.slice(0, -1)) await c.raw.waitClose(5000, "a taken-over connection to close");
    const last = conns[conns.length - 1].raw;
    last.write(pingreq());
    await last.expect(PacketType.PINGRESP);
    assert.equal(last.isClosed, false);
  });
});
