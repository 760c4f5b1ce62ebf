// Will messages: published when the network connection closes without DISCONNECT
// (socket dropped, keep-alive expired, protocol error), never after DISCONNECT.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connect,
  disconnect,
  publish,
  publishPacket,
  rawSession,
  settle,
  subscribe,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("will messages", () => {
  const broker = useBroker();

  test("[MQTT-3.1.2-8] the will is published when the connection drops without DISCONNECT", T, async () => {
    const topic = uid("will") + "/gone";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 2);
    const dying = await connect(broker(), {
      will: { topic, payload: Buffer.from("bye"), qos: 1, retain: false },
    });
    dying.destroy();
    const [m] = await watcher.inbox.wait(1);
    assert.equal(m.topic, topic);
    assert.equal(m.payload.toString(), "bye");
    assert.equal(m.qos, 1, "will QoS 1, granted 2");
    assert.equal(m.retain, false);
  });

  test("[MQTT-3.1.2-8] a QoS 2 will from a raw connection is delivered at QoS 2", T, async () => {
    const topic = uid("will2") + "/gone";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 2);
    const { raw } = await rawSession(broker(), { will: { topic, payload: "raw bye", qos: 2 } });
    raw.destroy();
    const [m] = await watcher.inbox.wait(1);
    assert.equal(m.payload.toString(), "raw bye");
    assert.equal(m.qos, 2);
  });

  test("[MQTT-3.14.4-3] [MQTT-3.1.2-10] the will is NOT published after DISCONNECT", T, async () => {
    const base = uid("nowill");
    const watcher = await connect(broker());
    await subscribe(watcher, `${base}/#`, 1);
    // raw, so the test sees the broker close after DISCONNECT (it has then dropped the will)
    const { raw } = await rawSession(broker(), { will: { topic: `${base}/will`, payload: "should not", qos: 1 } });
    raw.write(disconnect());
    await raw.waitClose(5000, "the broker to close after DISCONNECT");
    // and the same with the mqtt client's own end()
    const c = await connect(broker(), { will: { topic: `${base}/will`, payload: "nor this", qos: 1, retain: false } });
    await c.end();
    await settle();
    const pub = await connect(broker());
    await publish(pub, `${base}/marker`, "end", { qos: 1 });
    await watcher.inbox.waitTopic(`${base}/marker`);
    assert.deepEqual(watcher.inbox.on(`${base}/will`), []);
  });

  test("[MQTT-3.1.2-17] a will with retain=1 is published as retained ([MQTT-3.3.1-9] live subscribers see RETAIN=0)", T, async () => {
    const topic = uid("willret") + "/status";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 1);
    const dying = await connect(broker(), {
      will: { topic, payload: Buffer.from("offline"), qos: 1, retain: true },
    });
    dying.destroy();
    const [live] = await watcher.inbox.wait(1);
    assert.equal(live.payload.toString(), "offline");
    assert.equal(live.retain, false);
    // a new subscriber gets it from the retained store
    const late = await connect(broker());
    await subscribe(late, topic, 1);
    const [m] = await late.inbox.wait(1);
    assert.equal(m.payload.toString(), "offline");
    assert.equal(m.retain, true);
    assert.equal(m.qos, 1);
    // clean up the retained will
    const p = await connect(broker());
    await publish(p, topic, Buffer.alloc(0), { qos: 1, retain: true });
  });

  test("[MQTT-3.1.2-16] a will with retain=0 is not retained", T, async () => {
    const topic = uid("willnoret") + "/status";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 1);
    const dying = await connect(broker(), { will: { topic, payload: Buffer.from("x"), qos: 0, retain: false } });
    dying.destroy();
    await watcher.inbox.wait(1);
    const late = await connect(broker());
    const marker = uid("marker");
    await subscribe(late, { [topic]: 1, [marker]: 0 });
    await publish(late, marker, "end");
    await late.inbox.waitTopic(marker);
    assert.deepEqual(late.inbox.on(topic), []);
  });

  test("[MQTT-3.1.2-24] the will is published when the keep-alive expires", T, async () => {
    const topic = uid("willka") + "/gone";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 1);
    const { raw } = await rawSession(broker(), { keepalive: 1, will: { topic, payload: "timed out", qos: 1 } });
    await raw.waitClose(10_000, "the keep-alive close"); // its timing is checked in 09
    const [m] = await watcher.inbox.wait(1);
    assert.equal(m.payload.toString(), "timed out");
  });

  test("[MQTT-4.8.0-1] the will is published when the broker closes a connection for a protocol error", T, async () => {
    const topic = uid("willerr") + "/gone";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 1);
    const { raw } = await rawSession(broker(), { will: { topic, payload: "protocol error", qos: 1 } });
    raw.write(publishPacket({ topic: "x", payload: "bad", qos: 3, id: 1 })); // QoS 3 is malformed
    await raw.waitClose();
    const [m] = await watcher.inbox.wait(1);
    assert.equal(m.payload.toString(), "protocol error");
  });

  test("[MQTT-3.1.2-10] the will is published once, not again when the session is resumed", T, async () => {
    const base = uid("willonce");
    const id = uid("willonce-client");
    const watcher = await connect(broker());
    await subscribe(watcher, `${base}/#`, 1);
    const dying = await connect(broker(), {
      clientId: id,
      clean: false,
      will: { topic: `${base}/will`, payload: Buffer.from("w"), qos: 1, retain: false },
    });
    dying.destroy();
    await watcher.inbox.wait(1);
    const back = await connect(broker(), { clientId: id, clean: false });
    await back.end(); // no will this time
    await settle();
    const pub = await connect(broker());
    await publish(pub, `${base}/marker`, "end", { qos: 1 });
    await watcher.inbox.waitTopic(`${base}/marker`);
    assert.equal(watcher.inbox.on(`${base}/will`).length, 1);
    // drop the stored session
    const clean = await connect(broker(), { clientId: id, clean: true });
    await clean.end();
  });
});
