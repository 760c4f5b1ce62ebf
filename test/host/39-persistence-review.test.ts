// Persistence, cases found in review (docs/ABI.md, "Persistence"): states a running
// broker has that a restart must rebuild the same.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import {
  BROKER_KIND, Prop, closeAll, connect, publish, rawSession, rawSession5, rawSubscribe, rawSubscribe5, settle, sleep, startBroker,
  type Broker,
} from "./helpers.js";

const skip = BROKER_KIND === "mosquitto" ? "Midge's own persistence" : false;

const TMP = mkdtempSync(path.join(os.tmpdir(), "midge-review-"));
interface Store { dir: string; conf: string; db: string }
function store(name: string, lines: string[] = []): Store {
  const dir = path.join(TMP, name);
  mkdirSync(dir, { recursive: true });
  const conf = path.join(TMP, `${name}.conf`);
  writeFileSync(conf, ["persistence true", `persistence_location ${dir}/`, ...lines].join("\n") + "\n");
  return { dir, conf, db: path.join(dir, "midge.db") };
}
const brokers = new Set<Broker>();
async function start(s: Store): Promise<Broker> {
  const b = await startBroker({ args: ["-c", s.conf] });
  brokers.add(b);
  await sleep(100); // the Node host sets its SIGTERM handler just after its listening line
  return b;
}
async function stop(b: Broker): Promise<void> {
  b.assertAlive();
  await b.stop();
  brokers.delete(b);
  assert.equal(b.exitCode(), 0, `the broker's status after SIGTERM\n${b.output().slice(-3000)}`);
}
afterEach(() => closeAll());
after(async () => {
  for (const b of brokers) await b.stop();
  rmSync(TMP, { recursive: true, force: true });
});

function restoredLine(b: Broker): string {
  const m = b.output().match(/persistence: restored [^\n]*/);
  return m ? m[0] : "(no restore line)";
}

describe("persistence review: a published will and the records after it", { skip }, () => {
  test("a retained will published when its client drops is retained after a restart", async () => {
    const s = store("will-retained");
    const b = await start(s);
    const w = await rawSession(b, { clientId: "rv-will", clean: false, will: { topic: "status/rv", payload: "offline", qos: 1, retain: true } });
    w.raw.destroy(); // lost: the will is published now (no delay), and retained
    await settle(300);
    const check = await connect(b);
    await check.client.subscribeAsync("status/#", { qos: 1 });
    await check.inbox.wait(1, 2000);
    await check.end();
    await stop(b);
    const b2 = await start(s);
    const c = await connect(b2);
    await c.client.subscribeAsync("status/#", { qos: 1 });
    await settle(400);
    const msgs = inboxAll(c);
    assert.deepEqual(msgs.map((m) => `${m.topic} ${m.payload}`), ["status/rv offline"], `after the restart (${restoredLine(b2)})`);
    await stop(b2);
  });

  test("a will queued to a persistent subscriber while it is offline is delivered after a restart", async () => {
    const s = store("will-queued");
    const b = await start(s);
    const sub = await rawSession(b, { clientId: "rv-sub", clean: false });
    assert.deepEqual(await rawSubscribe(sub.raw, 1, [["wills/#", 1]]), [1]);
    sub.raw.destroy();
    await settle(200);
    const w = await rawSession(b, { clientId: "rv-will2", clean: false, will: { topic: "wills/rv", payload: "gone", qos: 1 } });
    w.raw.destroy();
    await settle(300);
    await stop(b);
    const b2 = await start(s);
    const c = await connect(b2, { clientId: "rv-sub", clean: false });
    await settle(400);
    assert.deepEqual(inboxAll(c).map((m) => `${m.topic} ${m.payload}`), ["wills/rv gone"], `after the restart (${restoredLine(b2)})`);
    await stop(b2);
  });
});

describe("persistence review: a published will's Message Expiry Interval", { skip }, () => {
  // a will's message is written as a will (its expiry kept as an interval until it is
  // published); once published, its expiry is a time, and the records after name it
  test("[MQTT-3.3.2-5] a retained will with a Message Expiry Interval still expires after a restart", async () => {
    const s = store("will-expiry");
    const b = await start(s);
    const w = await rawSession5(b, {
      clientId: "rv-will-exp", clean: false, properties: [[Prop.SessionExpiry, 3600]],
      will: { topic: "status/exp", payload: "offline", qos: 1, retain: true, properties: [[Prop.MessageExpiry, 1]] },
    });
    w.raw.destroy(); // lost: published now, retained, expires in 1 s
    await settle(200);
    await stop(b);
    await sleep(1500);
    const b2 = await start(s);
    const c = await connect(b2);
    await c.client.subscribeAsync("status/#", { qos: 1 });
    await settle(300);
    assert.deepEqual(inboxAll(c).map((m) => `${m.topic} ${m.payload}`), [], `the will expired while the broker was down (${restoredLine(b2)})`);
    await stop(b2);
  });
});

describe("persistence review: a delivery done within the fan-out that queued it", { skip }, () => {
  // a subscriber whose Maximum Packet Size the message exceeds is done with it at once
  // ([MQTT-3.1.2-25]): its Done record comes before the Queue records of the sessions
  // after it in the same fan-out, which name the same message
  for (const smallFirst of [true, false]) {
    test(`[MQTT-3.1.2-25] the offline session in the same fan-out still has the message after a restart (the small one subscribed ${smallFirst ? "first" : "second"})`, async () => {
      const s = store(`fanout-done-${smallFirst}`);
      const b = await start(s);
      const subscribeSmall = async () => {
        const small = await rawSession5(b, { clientId: "rv-small", clean: false, properties: [[Prop.SessionExpiry, 3600], [Prop.MaximumPacketSize, 40]] });
        assert.deepEqual(await rawSubscribe5(small.raw, 1, [["big/#", 1]]), [1]);
      };
      if (smallFirst) await subscribeSmall();
      const off = await rawSession(b, { clientId: "rv-offline", clean: false });
      assert.deepEqual(await rawSubscribe(off.raw, 1, [["big/#", 1]]), [1]);
      off.raw.destroy();
      if (!smallFirst) await subscribeSmall();
      await settle(200);
      const pub = await connect(b);
      await publish(pub, "big/x", "x".repeat(100), { qos: 1 });
      await pub.end();
      await settle(200);
      await stop(b);
      const b2 = await start(s);
      const c = await connect(b2, { clientId: "rv-offline", clean: false });
      await settle(300);
      assert.deepEqual(inboxAll(c).map((m) => `${m.topic} ${m.payload.length}`), ["big/x 100"], `after the restart (${restoredLine(b2)})`);
      await c.end();
      await stop(b2);
    });
  }
});

function inboxAll(c: Awaited<ReturnType<typeof connect>>): Array<{ topic: string; payload: Buffer }> {
  return c.inbox.messages;
}
