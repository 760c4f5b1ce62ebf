// MQTT 5 wills: Will Delay Interval (published after the delay, not if the client is
// back in time, at session end if that comes sooner), DISCONNECT 0x04 "with will
// message", and the will properties forwarded.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Prop,
  connect5,
  disconnect5,
  publish,
  rawSession5,
  settle,
  sleep,
  subscribe,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("MQTT 5 wills", () => {
  const broker = useBroker();

  async function watch(topic: string) {
    const w = await connect5(broker());
    await subscribe(w, topic, 1);
    return w;
  }

  test("[MQTT-3.1.3-9] a will with Will Delay 2 s is published after the delay, not at the drop", T, async () => {
    const topic = uid("wd") + "/status";
    const w = await watch(topic);
    const { raw } = await rawSession5(broker(), {
      properties: [[Prop.SessionExpiry, 60]],
      will: { topic, payload: "late bye", qos: 1, properties: [[Prop.WillDelay, 2]] },
    });
    raw.destroy();
    const t0 = Date.now();
    await settle(1000);
    assert.deepEqual(w.inbox.messages, [], "not before the delay");
    const [m] = await w.inbox.wait(1, 6000);
    assert.equal(m.payload.toString(), "late bye");
    assert.ok(Date.now() - t0 >= 1500, "after about the delay");
  });

  test("[MQTT-3.1.3-9] a client back within the Will Delay: the will is not published", T, async () => {
    const id = uid("wdback");
    const topic = uid("wdback") + "/status";
    const w = await watch(topic);
    const opts = {
      clientId: id,
      properties: [[Prop.SessionExpiry, 60]] as Array<[number, number]>,
      will: { topic, payload: "should not", qos: 1, properties: [[Prop.WillDelay, 2]] as Array<[number, number]> },
    };
    const first = await rawSession5(broker(), opts);
    first.raw.destroy();
    await settle(300);
    const back = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(back.connack.sessionPresent, true);
    await sleep(3000);
    const pub = await connect5(broker());
    await publish(pub, topic, "marker", { qos: 1 });
    const msgs = await w.inbox.wait(1);
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ["marker"]);
  });

  test("[MQTT-3.1.3-9] the will is sent when the session ends, if that is sooner than the delay", T, async () => {
    const topic = uid("wdend") + "/status";
    const w = await watch(topic);
    const { raw } = await rawSession5(broker(), {
      properties: [[Prop.SessionExpiry, 1]],
      will: { topic, payload: "session over", qos: 1, properties: [[Prop.WillDelay, 30]] },
    });
    raw.destroy();
    const [m] = await w.inbox.wait(1, 6000);
    assert.equal(m.payload.toString(), "session over");
  });

  test("a will with a delay and Session Expiry 0 is published at once (the session ends with the connection)", T, async () => {
    const topic = uid("wd0") + "/status";
    const w = await watch(topic);
    const { raw } = await rawSession5(broker(), {
      will: { topic, payload: "now", qos: 1, properties: [[Prop.WillDelay, 30]] },
    });
    raw.destroy();
    const [m] = await w.inbox.wait(1, 3000);
    assert.equal(m.payload.toString(), "now");
  });

  test("§3.14.2.1 DISCONNECT with reason 0x04 publishes the will", T, async () => {
    const topic = uid("w04") + "/status";
    const w = await watch(topic);
    const { raw } = await rawSession5(broker(), { will: { topic, payload: "asked for", qos: 1 } });
    raw.write(disconnect5(0x04));
    await raw.waitClose();
    const [m] = await w.inbox.wait(1);
    assert.equal(m.payload.toString(), "asked for");
  });

  test("[MQTT-3.1.2-10] DISCONNECT with reason 0x00 discards the will", T, async () => {
    const topic = uid("w00") + "/status";
    const w = await watch(topic);
    const { raw } = await rawSession5(broker(), { will: { topic, payload: "not this", qos: 1 } });
    raw.write(disconnect5(0x00));
    await raw.waitClose();
    const pub = await connect5(broker());
    await publish(pub, topic, "marker", { qos: 1 });
    assert.deepEqual((await w.inbox.wait(1)).map((m) => m.payload.toString()), ["marker"]);
  });

  test("the mqtt client's will properties are forwarded (content type, user properties, response topic, correlation data, payload format, expiry)", T, async () => {
    const topic = uid("wprops") + "/status";
    const w = await watch(topic);
    const dying = await connect5(broker(), {
      will: {
        topic,
        payload: Buffer.from("gone"),
        qos: 1,
        retain: false,
        properties: {
          contentType: "text/plain",
          payloadFormatIndicator: true,
          responseTopic: `${topic}/reply`,
          correlationData: Buffer.from([1, 2, 3]),
          userProperties: { who: "sensor-7" },
          messageExpiryInterval: 100,
        },
      },
    });
    dying.destroy();
    const [m] = await w.inbox.wait(1);
    const p = m.properties ?? {};
    assert.equal(p.contentType, "text/plain");
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(p.responseTopic, `${topic}/reply`);
    assert.deepEqual([...Buffer.from(p.correlationData ?? [])], [1, 2, 3]);
    assert.deepEqual({ ...p.userProperties }, { who: "sensor-7" });
    assert.ok(p.messageExpiryInterval !== undefined && p.messageExpiryInterval <= 100, `expiry ${p.messageExpiryInterval}`);
  });

  test("a takeover of a session with a delayed will does not publish the will", T, async () => {
    const id = uid("wtake");
    const topic = uid("wtake") + "/status";
    const w = await watch(topic);
    await rawSession5(broker(), {
      clientId: id,
      properties: [[Prop.SessionExpiry, 60]],
      will: { topic, payload: "taken", qos: 1, properties: [[Prop.WillDelay, 5]] },
    });
    const neu = await rawSession5(broker(), { clientId: id, clean: false, properties: [[Prop.SessionExpiry, 60]] });
    assert.equal(neu.connack.sessionPresent, true);
    await sleep(500);
    const pub = await connect5(broker());
    await publish(pub, topic, "marker", { qos: 1 });
    assert.deepEqual((await w.inbox.wait(1)).map((m) => m.payload.toString()), ["marker"]);
  });
});
