// Malformed input and protocol violations close only the offending connection while
// other clients keep being served; keep-alive; maximum packet size; a stalled
// subscriber does not hold up the others.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PacketType,
  RawClient,
  connect,
  connectPacket,
  packet,
  pingreq,
  publish,
  publishPacket,
  randomBytes,
  rawSession,
  rawSubscribe,
  str,
  subscribe,
  subscribePacket,
  u16,
  uid,
  useBroker,
  varint,
  type TestClient,
} from "./helpers.js";

const T = { timeout: 20_000 };

interface Case {
  name: string;
  /** bytes sent after a successful CONNECT/CONNACK */
  bytes: () => Buffer;
}

const afterConnect: Case[] = [
  { name: "[MQTT-3.1.0-2] a second CONNECT", bytes: () => connectPacket({ clientId: uid("again") }) },
  {
    name: "[MQTT-2.2.2-2] [MQTT-3.8.1-1] SUBSCRIBE with reserved flags 0000",
    bytes: () => subscribePacket(1, [["a/b", 0]], 0x00),
  },
  {
    name: "[MQTT-2.2.2-2] [MQTT-3.10.1-1] UNSUBSCRIBE with reserved flags 0000",
    bytes: () => packet(PacketType.UNSUBSCRIBE, 0x00, Buffer.concat([u16(1), str("a/b")])),
  },
  {
    name: "[MQTT-2.2.2-2] [MQTT-3.6.1-1] PUBREL with reserved flags 0000",
    bytes: () => packet(PacketType.PUBREL, 0x00, u16(1)),
  },
  { name: "[MQTT-2.2.2-2] PINGREQ with reserved flags 0001", bytes: () => packet(PacketType.PINGREQ, 0x01) },
  { name: "[MQTT-3.3.1-4] PUBLISH with QoS 3", bytes: () => publishPacket({ topic: "a/b", payload: "x", qos: 3, id: 1 }) },
  { name: "[MQTT-2.3.1-1] PUBLISH QoS 1 with packet id 0", bytes: () => publishPacket({ topic: "a/b", payload: "x", qos: 1, id: 0 }) },
  { name: "[MQTT-2.3.1-1] PUBLISH QoS 2 with packet id 0", bytes: () => publishPacket({ topic: "a/b", payload: "x", qos: 2, id: 0 }) },
  { name: "[MQTT-2.3.1-1] SUBSCRIBE with packet id 0", bytes: () => subscribePacket(0, [["a/b", 0]]) },
  {
    name: "[MQTT-1.5.3-1] invalid UTF-8 (0xFF) in a PUBLISH topic",
    bytes: () => publishPacket({ topic: Buffer.from([0x61, 0x2f, 0xff, 0x62]), payload: "x" }),
  },
  {
    name: "[MQTT-1.5.3-1] a UTF-16 surrogate (ED A0 80) in a PUBLISH topic",
    bytes: () => publishPacket({ topic: Buffer.from([0x61, 0x2f, 0xed, 0xa0, 0x80]), payload: "x" }),
  },
  {
    name: "[MQTT-1.5.3-1] an overlong UTF-8 encoding (C0 AF) in a PUBLISH topic",
    bytes: () => publishPacket({ topic: Buffer.from([0x61, 0xc0, 0xaf]), payload: "x" }),
  },
  {
    name: "[MQTT-1.5.3-1] invalid UTF-8 in a SUBSCRIBE filter",
    bytes: () => subscribePacket(1, [[Buffer.from([0x61, 0x2f, 0xfe]), 0]]),
  },
  {
    name: "[MQTT-1.5.3-2] [MQTT-4.7.3-2] U+0000 in a PUBLISH topic",
    bytes: () => publishPacket({ topic: Buffer.from([0x61, 0x00, 0x62]), payload: "x" }),
  },
  { name: "[MQTT-3.3.2-2] '+' in a PUBLISH topic name", bytes: () => publishPacket({ topic: "a/+/b", payload: "x" }) },
  { name: "[MQTT-3.3.2-2] '#' in a PUBLISH topic name", bytes: () => publishPacket({ topic: "a/#", payload: "x", qos: 1, id: 3 }) },
  { name: "[MQTT-4.7.3-1] PUBLISH with an empty topic name", bytes: () => publishPacket({ topic: "", payload: "x" }) },
  { name: "[MQTT-3.8.3-3] SUBSCRIBE without any topic filter", bytes: () => packet(PacketType.SUBSCRIBE, 0x02, u16(5)) },
  { name: "[MQTT-3.8.3-4] SUBSCRIBE requesting QoS 3", bytes: () => subscribePacket(1, [["a/b", 3]]) },
  {
    name: "[MQTT-3.8.3-4] SUBSCRIBE with reserved bits set in the options byte",
    bytes: () => subscribePacket(1, [["a/b", 0x40 | 1]]),
  },
  { name: "[MQTT-3.10.3-2] UNSUBSCRIBE without any topic filter", bytes: () => packet(PacketType.UNSUBSCRIBE, 0x02, u16(5)) },
  { name: "packet type 0 (reserved)", bytes: () => packet(0, 0, Buffer.alloc(0)) },
  { name: "packet type 15 (reserved in 3.1.1)", bytes: () => packet(15, 0, Buffer.alloc(0)) },
  { name: "a server-to-client packet (CONNACK) from a client", bytes: () => packet(PacketType.CONNACK, 0, Buffer.from([0, 0])) },
  {
    name: "a remaining length of 5 bytes (malformed variable byte integer)",
    bytes: () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
  },
  {
    name: "a PUBLISH whose topic length runs past the end of the packet",
    bytes: () => packet(PacketType.PUBLISH, 0, Buffer.concat([u16(200), Buffer.from("short")])),
  },
  {
    name: "a PUBLISH QoS 1 too short to hold its packet id",
    bytes: () => packet(PacketType.PUBLISH, 0x02, Buffer.concat([str("a/b"), Buffer.from([0x01])])),
  },
];

const asFirstPacket: Case[] = [
  { name: "[MQTT-3.1.0-1] PINGREQ before CONNECT", bytes: () => pingreq() },
  { name: "[MQTT-3.1.0-1] PUBLISH before CONNECT", bytes: () => publishPacket({ topic: "a/b", payload: "x" }) },
  { name: "[MQTT-3.1.0-1] SUBSCRIBE before CONNECT", bytes: () => subscribePacket(1, [["#", 0]]) },
  {
    name: "[MQTT-3.1.2-3] CONNECT with the reserved flag bit set",
    bytes: () => connectPacket({ clientId: uid("rsv"), extraFlags: 0x01 }),
  },
  {
    name: "[MQTT-3.1.2-14] CONNECT with will QoS 3",
    bytes: () => connectPacket({ clientId: uid("wq3"), will: { topic: "w", payload: "x", qos: 3 } }),
  },
  {
    name: "[MQTT-3.1.2-13] CONNECT with will QoS 1 but no will flag",
    bytes: () => connectPacket({ clientId: uid("wq"), extraFlags: 0x08 }),
  },
  {
    name: "[MQTT-3.1.2-15] CONNECT with will retain but no will flag",
    bytes: () => connectPacket({ clientId: uid("wr"), extraFlags: 0x20 }),
  },
  {
    name: "[MQTT-3.1.2-22] CONNECT with a password flag but no user name flag",
    bytes: () => connectPacket({ clientId: uid("pw"), password: "secret" }),
  },
  {
    name: "[MQTT-3.3.2-2] CONNECT with a wildcard in the will topic",
    bytes: () => connectPacket({ clientId: uid("wt"), will: { topic: "w/#", payload: "x" } }),
  },
  {
    name: "[MQTT-3.1.3-4] CONNECT with invalid UTF-8 in the client id",
    bytes: () => connectPacket({ clientId: Buffer.from([0x61, 0xff]) }),
  },
  {
    name: "[MQTT-3.1.4-1] CONNECT truncated inside its payload",
    bytes: () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([4, 2]), u16(60), u16(10), Buffer.from("ab")])),
  },
  {
    name: "[MQTT-3.1.2-1] CONNECT with protocol name 'HTTP'",
    bytes: () => connectPacket({ clientId: uid("http"), protocolName: "HTTP" }),
  },
  { name: "[MQTT-3.1.0-1] an HTTP request instead of MQTT", bytes: () => Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n") },
];

describe("malformed input closes only that connection", () => {
  const broker = useBroker();
  let watcher: TestClient;
  let publisher: TestClient;
  const topic = uid("alive") + "/t";
  let n = 0;

  before(async () => {
    watcher = await connect(broker(), {}, { keep: true });
    await subscribe(watcher, topic, 1);
    publisher = await connect(broker(), {}, { keep: true });
  });
  after(async () => {
    await watcher?.end();
    await publisher?.end();
  });

  /** The long-lived clients are still connected and a message still flows. */
  async function othersStillServed() {
    n += 1;
    await publish(publisher, topic, `alive ${n}`, { qos: 1 });
    await watcher.inbox.until((ms) => ms.some((m) => m.payload.toString() === `alive ${n}`), 5000, `alive ${n}`);
    assert.equal(watcher.isClosed(), false);
    assert.equal(publisher.isClosed(), false);
    broker().assertAlive();
  }

  for (const c of afterConnect) {
    test(`${c.name} closes the connection`, T, async () => {
      const { raw } = await rawSession(broker());
      raw.write(c.bytes());
      await raw.waitClose(5000, `the broker to close the connection after: ${c.name}`);
      await othersStillServed();
    });
  }

  for (const c of asFirstPacket) {
    test(`${c.name} closes the connection without CONNACK`, T, async () => {
      const raw = await RawClient.open(broker());
      raw.write(c.bytes());
      await raw.waitClose(5000, `the broker to close the connection after: ${c.name}`);
      const connacks = splitTypes(raw.received).filter((t) => t === PacketType.CONNACK);
      if (c.name.startsWith("[MQTT-3.1.2-1]")) {
        // an unknown protocol name: the server MAY answer CONNACK 0x01 before closing
        assert.ok(connacks.length <= 1);
      } else {
        assert.deepEqual(connacks, [], "[MQTT-3.1.4-1] no CONNACK");
      }
      await othersStillServed();
    });
  }

  test("a packet split into single bytes is still understood", T, async () => {
    const raw = await RawClient.open(broker());
    const bytes = Buffer.concat([connectPacket({ clientId: uid("drip") }), pingreq()]);
    for (const b of bytes) {
      raw.write([b]);
      await new Promise((r) => setImmediate(r));
    }
    await raw.expect(PacketType.CONNACK);
    await raw.expect(PacketType.PINGRESP);
  });

  test("many packets in one write are all handled", T, async () => {
    const raw = await RawClient.open(broker());
    const parts = [connectPacket({ clientId: uid("burst") })];
    for (let i = 0; i < 50; i++) parts.push(pingreq());
    raw.write(Buffer.concat(parts));
    await raw.expect(PacketType.CONNACK);
    for (let i = 0; i < 50; i++) await raw.expect(PacketType.PINGRESP);
  });

  test("[MQTT-3.1.4-5] nothing after a refused CONNECT is processed", T, async () => {
    const base = uid("refused");
    const w = await connect(broker());
    await subscribe(w, `${base}/#`, 0);
    const raw = await RawClient.open(broker());
    raw.write(
      Buffer.concat([
        connectPacket({ clientId: "", clean: false }), // refused: 0x02
        publishPacket({ topic: `${base}/sneaky`, payload: "x" }),
      ]),
    );
    await raw.waitClose();
    const types = splitTypes(raw.received);
    assert.deepEqual(types, [PacketType.CONNACK]);
    await publish(publisher, `${base}/marker`, "end", { qos: 1 });
    await w.inbox.waitTopic(`${base}/marker`);
    assert.deepEqual(w.inbox.on(`${base}/sneaky`), []);
  });
});

function splitTypes(buf: Buffer): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    let len = 0;
    let mul = 1;
    let i = off + 1;
    for (; i < buf.length && i < off + 5; i++) {
      len += (buf[i] & 0x7f) * mul;
      mul *= 128;
      if ((buf[i] & 0x80) === 0) break;
    }
    out.push(buf[off] >> 4);
    off = i + 1 + len;
  }
  return out;
}

describe("keep-alive", () => {
  const broker = useBroker();

  test("[MQTT-3.1.2-24] a client with keep-alive 1 s that sends nothing is closed after ~1.5 s", T, async () => {
    const { raw } = await rawSession(broker(), { keepalive: 1 });
    const start = Date.now();
    const closedAt = await raw.waitClose(6000, "the keep-alive close");
    const elapsed = closedAt - start;
    assert.ok(elapsed >= 1000, `closed too early: after ${elapsed} ms`);
    assert.ok(elapsed <= 3500, `closed too late: after ${elapsed} ms`);
  });

  test("[MQTT-3.1.2-23] a client with keep-alive 1 s that sends PINGREQ every 400 ms stays connected", T, async () => {
    const { raw } = await rawSession(broker(), { keepalive: 1 });
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 400));
      raw.write(pingreq());
      await raw.expect(PacketType.PINGRESP, 2000);
    }
    assert.equal(raw.isClosed, false, "still connected after 3.2 s");
  });

  test("keep-alive 0 disables the timeout", T, async () => {
    const { raw } = await rawSession(broker(), { keepalive: 0 });
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(raw.isClosed, false);
    raw.write(pingreq());
    await raw.expect(PacketType.PINGRESP);
  });
});

describe("maximum packet size (--max-packet-size 1000)", () => {
  const broker = useBroker({ args: ["--max-packet-size", "1000"] });

  test("a 2000-byte PUBLISH closes the connection; others keep receiving", T, async () => {
    const topic = uid("max") + "/t";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 1);
    const big = await connect(broker());
    big.client.publish(topic, randomBytes(2000), { qos: 1 }, () => {});
    await big.closed;
    const small = await connect(broker());
    await publish(small, topic, randomBytes(500), { qos: 1 });
    const got = await watcher.inbox.wait(1);
    assert.equal(got[0].payload.length, 500);
    assert.equal(watcher.inbox.messages.length, 1, "the oversized message was not delivered");
  });

  test("the fixed header alone announcing 2000 bytes closes the connection", T, async () => {
    const { raw } = await rawSession(broker());
    raw.write(Buffer.concat([Buffer.from([0x30]), varint(2000), str("a/b")])); // body never sent
    await raw.waitClose(5000, "a close as soon as the fixed header announces too much");
  });

  test("a PUBLISH just under the limit is accepted", T, async () => {
    const topic = uid("fits") + "/t";
    const watcher = await connect(broker());
    await subscribe(watcher, topic, 0);
    const { raw } = await rawSession(broker());
    // whole packet = 1 + 2 (remaining length) + 2 + topic + payload = 990 bytes
    const payload = randomBytes(990 - 5 - Buffer.byteLength(topic));
    const p = publishPacket({ topic, payload });
    assert.equal(p.length, 990);
    raw.write(p);
    const [m] = await watcher.inbox.wait(1);
    assert.ok(m.payload.equals(payload));
    assert.equal(raw.isClosed, false);
  });
});

describe("a stalled subscriber does not hold up the others", () => {
  const broker = useBroker();

  test("5000 x 1 KiB QoS 0 messages reach a reading subscriber while another never reads", { timeout: 120_000 }, async () => {
    const topic = uid("stall") + "/t";
    const total = 5000;
    const batch = 250;

    // the stalled one: subscribes, then stops reading its socket
    const stalled = await rawSession(broker());
    assert.deepEqual(await rawSubscribe(stalled.raw, 1, [[topic, 0]]), [0]);
    stalled.raw.pause();

    const reader = await connect(broker());
    await subscribe(reader, topic, 0);
    const pub = await connect(broker());
    const payload = randomBytes(1024);

    // publish in batches and wait for each batch, so the reading subscriber itself
    // never falls far enough behind for the broker to drop QoS 0 messages to it
    for (let sent = 0; sent < total; ) {
      const n = Math.min(batch, total - sent);
      for (let i = 0; i < n; i++) {
        const p = Buffer.from(payload);
        p.writeUInt32BE(sent + i, 0);
        pub.client.publish(topic, p, { qos: 0 });
      }
      sent += n;
      await reader.inbox.wait(sent, 15_000, topic);
    }
    const got = reader.inbox.messages;
    assert.equal(got.length, total);
    for (let i = 0; i < total; i++) {
      assert.equal(got[i].payload.readUInt32BE(0), i, `message ${i} in order`);
      assert.equal(got[i].payload.length, 1024);
    }
    broker().assertAlive();
    stalled.raw.destroy();
  });

  // The wording: one subscriber stops reading while others receive a 1 KiB
  // QoS 0 stream at full speed. The publisher writes the whole stream at once (no
  // waiting for anyone); two readers on raw sockets (cheap enough to keep up) must get
  // every message in order; the stalled one's messages are dropped, counted and logged
  // rather than buffered without bound.
  // The host pauses reading a publisher while the subscribers it feeds are behind
  // (backpressure), so the readers lose nothing while the stalled one is dropped.
  test("a 20 MiB 1 KiB QoS 0 stream at full speed reaches two readers while a third subscriber stalls", {
    timeout: 120_000,
  }, async () => {
    const topic = uid("fullspeed") + "/t";
    const total = 20_000;
    const stalled = await rawSession(broker(), { clientId: uid("stalled") });
    assert.deepEqual(await rawSubscribe(stalled.raw, 1, [[topic, 0]]), [0]);
    stalled.raw.pause();
    const readers = [];
    for (let r = 0; r < 2; r++) {
      const { raw } = await rawSession(broker());
      assert.deepEqual(await rawSubscribe(raw, 1, [[topic, 0]]), [0]);
      // count PUBLISH packets and check their sequence numbers without keeping them
      const state = { count: 0, outOfOrder: 0, pending: Buffer.alloc(0) };
      raw.socket.removeAllListeners("data");
      raw.socket.on("data", (d: Buffer) => {
        let buf = state.pending.length > 0 ? Buffer.concat([state.pending, d]) : d;
        let off = 0;
        for (;;) {
          if (buf.length - off < 2) break;
          let len = 0, mul = 1, i = off + 1, done = false;
          for (let k = 0; k < 4 && i < buf.length; k++, i++) {
            len += (buf[i] & 0x7f) * mul;
            mul *= 128;
            if ((buf[i] & 0x80) === 0) { done = true; i++; break; }
          }
          if (!done || buf.length - i < len) break;
          if (buf[off] >> 4 === PacketType.PUBLISH) {
            const tlen = buf.readUInt16BE(i);
            if (buf.readUInt32BE(i + 2 + tlen) !== state.count) state.outOfOrder++;
            state.count++;
          }
          off = i + len;
        }
        state.pending = Buffer.from(buf.subarray(off));
      });
      readers.push(state);
    }
    const pub = await rawSession(broker());
    const payload = randomBytes(1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < total; i++) {
      const p = Buffer.from(payload);
      p.writeUInt32BE(i, 0);
      parts.push(publishPacket({ topic, payload: p }));
    }
    const started = Date.now();
    pub.raw.write(Buffer.concat(parts)); // all of it at once: full speed
    // wait while the readers make progress (2 s without any ends the wait)
    let last = -1;
    let idleSince = Date.now();
    while (readers.some((r) => r.count < total) && Date.now() - idleSince < 2000) {
      await new Promise((r) => setTimeout(r, 50));
      const now = readers[0].count + readers[1].count;
      if (now !== last) {
        last = now;
        idleSince = Date.now();
      }
    }
    const ms = Date.now() - started;
    for (const [n, r] of readers.entries()) {
      assert.equal(r.count, total, `reader ${n} got every message (${r.count} of ${total} after ${ms} ms)`);
      assert.equal(r.outOfOrder, 0, `reader ${n} got them in order`);
    }
    // the stalled subscriber cost the broker at most its backlog limit: the rest was dropped and said so
    await new Promise((r) => setTimeout(r, 200));
    assert.match(broker().output(), /dropping messages for client stalled-[^:]*: subscriber is lagging behind/);
    assert.equal(stalled.raw.isClosed, false, "a slow QoS 0 subscriber is not disconnected");
    broker().assertAlive();
    console.log(`# full speed: ${total} x 1 KiB to 2 readers in ${ms} ms while a third subscriber stalled`);
    stalled.raw.destroy();
  });
});
