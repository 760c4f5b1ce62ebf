// Host-side limits: the input budget (bytes of incomplete packets held for all
// connections together) and the counters a running broker reports on SIGUSR2.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  useBroker, rawSession, rawSubscribe, publishPacket, parsePublish, PacketType, uid, sleep, withTimeout, BROKER_KIND,
} from "./helpers";

const skip = BROKER_KIND === "mosquitto" ? "Midge's own flags" : false;

describe("input budget (--max-input-buffer)", { skip }, () => {
  // The smallest budget the pi-zero board allows (one whole 1 MiB packet and its header):
  // three clients each holding half of a 800 kB PUBLISH exceed it.
  const broker = useBroker({ args: ["--board", "pi-zero", "--max-input-buffer", "1048581"] });

  test("clients holding partial packets beyond the budget are paused, not dropped, and all complete", { timeout: 30_000 }, async () => {
    const topic = uid("budget") + "/t";
    const { raw: sub } = await rawSession(broker());
    assert.deepEqual(await rawSubscribe(sub, 1, [[topic, 0]]), [0]);
    const pubs = [];
    for (let i = 0; i < 3; i++) pubs.push((await rawSession(broker())).raw);
    const packets = pubs.map((_, i) => publishPacket({ topic, payload: Buffer.alloc(800_000, 0x41 + i) }));
    // first halves from everybody, then the rest
    pubs.forEach((p, i) => p.write(packets[i].subarray(0, 400_000)));
    await sleep(200);
    pubs.forEach((p, i) => p.write(packets[i].subarray(400_000)));
    const got = new Set<number>();
    while (got.size < 3) {
      const p = await withTimeout(sub.expect(PacketType.PUBLISH, 10_000), 12_000, "the three large messages");
      const m = parsePublish(p);
      assert.equal(m.payload.length, 800_000);
      got.add(m.payload[0]);
    }
    assert.deepEqual([...got].sort(), [0x41, 0x42, 0x43]);
    // the budget was really reached (and said so), and nobody was dropped for it
    assert.match(broker().output(), /input budget of 1048581 bytes reached/);
    broker().assertAlive();
  });
});

describe("counters on SIGUSR2", { skip }, () => {
  const broker = useBroker();

  test("the broker logs every counter by name", { timeout: 10_000 }, async () => {
    const { raw } = await rawSession(broker());
    raw.write(publishPacket({ topic: uid("count") + "/t", payload: "x" }));
    await sleep(100);
    broker().proc.kill("SIGUSR2");
    const deadline = Date.now() + 5000;
    let line: string | undefined;
    while (Date.now() < deadline && line === undefined) {
      line = broker().output().split("\n").find((l) => l.includes("stats: ") && l.includes("messagesReceived="));
      if (line === undefined) await sleep(50);
    }
    assert.ok(line, "a stats line");
    assert.match(line, /connectionsOpen=1\b/);
    assert.match(line, /messagesReceived=1\b/);
    // (the $SYS topics are the only stored messages: one retained message each)
    assert.equal(/storedMessages=(\d+)/.exec(line)?.[1], /retainedMessages=(\d+)/.exec(line)?.[1]);
  });
});
