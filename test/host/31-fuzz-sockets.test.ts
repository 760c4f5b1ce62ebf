// The fuzzer's inputs (test/fuzz/mutate.ts: mutated MQTT 3.1/3.1.1/5.0 sequences, cut
// at arbitrary bytes, over up to three connections) sent over real sockets to the
// broker process. After every input: the broker is alive, a subscriber on another
// connection still gets a message, and a fresh connection gets a CONNACK. Fixed seed,
// a few hundred inputs (the in-process fuzzer runs 200,000: npm test runs both).
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { generate, inputSeed } from "../fuzz/mutate";
import { HOST, connect, connectPacket, publish, startBroker, subscribe, uid, type Broker, type TestClient } from "./helpers.js";

const INPUTS = Number(process.env.FUZZ_SOCKET_INPUTS ?? 1000);
const SEED = Number(process.env.FUZZ_SOCKET_SEED ?? 7);

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port }, () => resolve(s));
    s.on("error", reject);
  });
}

function write(s: net.Socket, b: Uint8Array): Promise<void> {
  if (s.destroyed || s.writableEnded) return Promise.resolve();
  return new Promise((resolve) => s.write(b, () => resolve()));
}

describe("socket fuzzing against the broker process", () => {
  let broker: Broker;
  let watcher: TestClient;
  let publisher: TestClient;
  const topic = uid("fuzz-alive") + "/t";

  before(async () => {
    broker = await startBroker();
    watcher = await connect(broker, { keepalive: 0 }, { keep: true });
    await subscribe(watcher, topic, 1);
    publisher = await connect(broker, { keepalive: 0 }, { keep: true });
  });
  after(async () => {
    await watcher?.end();
    await publisher?.end();
    await broker?.stop();
  });

  test(`${INPUTS} fuzz inputs over sockets (seed ${SEED})`, { timeout: 120_000 }, async () => {
    for (let i = 0; i < INPUTS; i++) {
      const input = generate(inputSeed(SEED, i));
      const sockets: net.Socket[] = [];
      const track = (s: net.Socket) => {
        s.on("error", () => {});
        s.resume(); // read and drop what the broker sends
        sockets.push(s);
        return s;
      };
      if (input.kind === "split") {
        const s = track(await open(broker.port));
        let at = 0;
        for (const size of input.cuts[1] ?? [input.stream.length]) {
          await write(s, input.stream.subarray(at, at + size));
          at += size;
        }
      } else {
        const slots: net.Socket[] = [];
        for (const e of input.events) {
          if (e.e === "open") slots[e.c] = track(await open(broker.port));
          else if (e.e === "feed") await write(slots[e.c], e.b);
          else if (e.e === "close") slots[e.c]?.destroy();
        }
      }
      // a little time for the broker to act on the bytes, then the checks
      await new Promise((r) => setImmediate(r));
      const payload = `alive ${i}`;
      await publish(publisher, topic, payload, { qos: 1 });
      await watcher.inbox.until((ms) => ms.some((m) => m.payload.toString() === payload), 5000, `${payload} after input ${i}`);
      const fresh = await open(broker.port);
      fresh.on("error", () => {});
      const ack = await new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no CONNACK for a fresh connection after input ${i}`)), 5000);
        fresh.once("data", (d: Buffer) => {
          clearTimeout(t);
          resolve(d);
        });
        fresh.write(connectPacket({ clientId: uid("fresh"), keepalive: 0 }));
      });
      assert.equal(ack[0], 0x20, `CONNACK after input ${i}`);
      fresh.destroy();
      for (const s of sockets) s.destroy();
      broker.assertAlive();
    }
    assert.equal(watcher.isClosed(), false);
    assert.equal(publisher.isClosed(), false);
  });
});
