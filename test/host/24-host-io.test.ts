// What a host does with sockets that stop reading: a client far behind on its own
// output is read again once it catches up, and a connection the core closed while its
// peer reads nothing is let go after the grace time rather than holding its slot.
// Runs against the Node host (npm run test:host) and the native one (npm run test:native).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  useBroker, rawSession, rawSubscribe, subscribePacket, publishPacket, parsePublish, packet, PacketType, uid, sleep, withTimeout, BROKER_KIND,
} from "./helpers";

const skip = BROKER_KIND === "mosquitto" ? "Midge's own hosts and flags" : false;

/** `name=value` of the stats lines the broker logged after `from` characters of its output. */
function statsSince(output: string, from: number, name: string): number[] {
  return output.slice(from).split("\n").filter((l) => l.includes("stats: "))
    .map((l) => new RegExp(`\\b${name}=(\\d+)`).exec(l)).filter((m) => m !== null).map((m) => Number(m![1]));
}

describe("sockets that stop reading", { skip }, () => {
  const broker = useBroker({ args: ["--stats-interval", "1"] });

  test("a subscriber 8 MB behind on its QoS 1 messages catches up and is then read again (PINGREQ answered)", { timeout: 30_000 }, async () => {
    const t = uid("behind");
    const { raw: pub } = await rawSession(broker());
    // 40 retained QoS 1 messages of 256 KiB: the pi board keeps 32 in flight to a
    // subscriber, 8 MB, more than the kernel buffers for a socket that does not read
    const big = Buffer.alloc(256 * 1024, 0x42);
    for (let i = 0; i < 40; i++) pub.write(publishPacket({ topic: `${t}/r/${i}`, payload: big, retain: true, qos: 1, id: i + 1 }));
    for (let i = 0; i < 40; i++) await withTimeout(pub.expect(PacketType.PUBACK, 10_000), 12_000, `PUBACK ${i + 1} of 40`);

    const { raw: sub } = await rawSession(broker());
    sub.socket.pause(); // reads nothing while the retained messages come
    sub.write(subscribePacket(1, [[`${t}/#`, 1]]));
    await sleep(500);
    // keep something flowing to it while it catches up
    const ticker = setInterval(() => pub.write(publishPacket({ topic: `${t}/live`, payload: "x" })), 10);
    try {
      sub.socket.resume();
      await withTimeout(sub.expect(PacketType.SUBACK, 10_000), 12_000, "SUBACK");
      let retained = 0;
      while (retained < 40) {
        const m = parsePublish(await withTimeout(sub.expect(PacketType.PUBLISH, 10_000), 12_000, `retained message ${retained + 1} of 40`));
        if (m.qos === 1) sub.write(packet(PacketType.PUBACK, 0, Buffer.from([m.id >> 8, m.id & 0xff])));
        if (m.topic.startsWith(`${t}/r/`)) retained++;
      }
      await sleep(200);
      sub.write(packet(PacketType.PINGREQ, 0));
      let pong = false;
      while (!pong) { // live messages may come first
        const p = await withTimeout(sub.next(5000), 6000, "PINGRESP after catching up");
        pong = p.type === PacketType.PINGRESP;
      }
    } finally {
      clearInterval(ticker);
    }
    broker().assertAlive();
  });

  test("a taken-over connection that reads nothing is let go after the grace time", { timeout: 30_000 }, async () => {
    const t = uid("stuck");
    const id = uid("stuck-client");
    const { raw: old } = await rawSession(broker(), { clientId: id });
    assert.deepEqual(await rawSubscribe(old, 1, [[`${t}/#`, 0]]), [0]);
    old.socket.pause(); // from now on it reads nothing
    const { raw: pub } = await rawSession(broker());
    // 8 MB to it: the kernel's buffers fill, the rest waits in the host
    const payload = Buffer.alloc(8 * 1024, 0x43);
    for (let i = 0; i < 1000; i++) pub.write(publishPacket({ topic: `${t}/x`, payload }));
    pub.write(packet(PacketType.PINGREQ, 0));
    await withTimeout(pub.expect(PacketType.PINGRESP, 10_000), 12_000, "the flood handled");
    // the same client id again: the core closes the old connection, whose peer reads nothing
    const { raw: fresh } = await rawSession(broker(), { clientId: id });
    const mark = broker().output().length;
    // within the 2 s grace and a stats interval or two, only the new one and the publisher are left
    const deadline = Date.now() + 8000;
    let seen = statsSince(broker().output(), mark, "connectionsOpen");
    while (Date.now() < deadline && seen[seen.length - 1] !== 2) {
      await sleep(250);
      seen = statsSince(broker().output(), mark, "connectionsOpen");
    }
    assert.equal(seen[seen.length - 1], 2, `connections open after the takeover, by second: ${seen.join(", ")}`);
    fresh.write(packet(PacketType.PINGREQ, 0));
    await withTimeout(fresh.expect(PacketType.PINGRESP, 5000), 6000, "the new connection works");
    broker().assertAlive();
  });
});
