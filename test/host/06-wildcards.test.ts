// Topic filters: '+' (one level), '#' (this level and everything below), and the
// rule that wildcards at the start of a filter do not match topics starting with '$'.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connect,
  publish,
  rawSession,
  subscribePacket,
  PacketType,
  subscribe,
  uid,
  useBroker,
  type TestClient,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("wildcards", () => {
  const broker = useBroker();

  /** Publishes each topic (QoS 1, payload = topic), then a marker the subscriber also
   * gets, and returns the topics the subscriber received before the marker. */
  async function deliveredTopics(sub: TestClient, topics: string[], marker: string): Promise<string[]> {
    const pub = await connect(broker());
    for (const t of topics) await publish(pub, t, t, { qos: 1 });
    await publish(pub, marker, "end", { qos: 1 });
    await sub.inbox.waitTopic(marker);
    await pub.end();
    const got = sub.inbox.messages.filter((m) => m.topic !== marker);
    for (const m of got) assert.equal(m.payload.toString(), m.topic, "[MQTT-3.3.2-3] the topic name is the published one");
    return got.map((m) => m.topic);
  }

  test("[MQTT-4.7.1-3] '+' matches exactly one level, including an empty one", T, async () => {
    const b = uid("plus");
    const sub = await connect(broker());
    await subscribe(sub, { [`${b}/+/c`]: 1, [`${b}/marker`]: 1 });
    const got = await deliveredTopics(
      sub,
      [`${b}/x/c`, `${b}/y/c`, `${b}//c`, `${b}/c`, `${b}/x/y/c`, `${b}/x/c/d`, `${b}/x/cc`],
      `${b}/marker`,
    );
    assert.deepEqual(got, [`${b}/x/c`, `${b}/y/c`, `${b}//c`]);
  });

  test("[MQTT-4.7.1-2] '#' matches the parent level and every level below", T, async () => {
    const b = uid("hash");
    const sub = await connect(broker());
    await subscribe(sub, { [`${b}/a/#`]: 1, [`${b}/marker`]: 1 });
    const got = await deliveredTopics(
      sub,
      [`${b}/a`, `${b}/a/b`, `${b}/a/b/c/d`, `${b}/a/`, `${b}/ab`, `${b}/b/a`, `${b}`],
      `${b}/marker`,
    );
    assert.deepEqual(got, [`${b}/a`, `${b}/a/b`, `${b}/a/b/c/d`, `${b}/a/`]);
  });

  test("'+' and '#' combine ('+/x/#')", T, async () => {
    const b = uid("combo");
    const sub = await connect(broker());
    await subscribe(sub, { [`${b}/+/x/#`]: 1, [`${b}/marker`]: 1 });
    const got = await deliveredTopics(
      sub,
      [`${b}/1/x`, `${b}/2/x/y`, `${b}/3/y/x`, `${b}/x`, `${b}/4/x/y/z`],
      `${b}/marker`,
    );
    assert.deepEqual(got, [`${b}/1/x`, `${b}/2/x/y`, `${b}/4/x/y/z`]);
  });

  test("topic matching is case-sensitive and exact per level", T, async () => {
    const b = uid("case");
    const sub = await connect(broker());
    await subscribe(sub, { [`${b}/Room/temp`]: 1, [`${b}/marker`]: 1 });
    const got = await deliveredTopics(
      sub,
      [`${b}/room/temp`, `${b}/Room/temp`, `${b}/Room/temp/`, `${b}/Room/tem`, `${b}/Room/temp `],
      `${b}/marker`,
    );
    assert.deepEqual(got, [`${b}/Room/temp`]);
  });

  test("[MQTT-4.7.2-1] '#' and '+' do not match topics beginning with '$'; '$foo/#' does", T, async () => {
    const b = uid("dollar");
    const all = await connect(broker());
    await subscribe(all, "#", 1);
    const plus = await connect(broker());
    await subscribe(plus, { "+/bar": 1, "+": 1, [`${b}/marker`]: 1 });
    const dollar = await connect(broker());
    await subscribe(dollar, { "$foo/#": 1, [`${b}/marker`]: 1 });

    const pub = await connect(broker());
    await publish(pub, "$foo", "x", { qos: 1 });
    await publish(pub, "$foo/bar", "x", { qos: 1 });
    // a client may not be allowed to publish to $SYS: either way '#' must not see it
    await publish(pub, "$SYS/x", "x", { qos: 1 }).catch(() => {});
    if (pub.isClosed()) throw new Error("the broker closed a client for publishing to $SYS/x");
    await publish(pub, `${b}/marker`, "end", { qos: 1 });
    await all.inbox.waitTopic(`${b}/marker`);
    await plus.inbox.waitTopic(`${b}/marker`);
    await dollar.inbox.waitTopic(`${b}/marker`);

    const dollarTopics = (c: TestClient) => c.inbox.messages.map((m) => m.topic).filter((t) => t.startsWith("$"));
    assert.deepEqual(dollarTopics(all), [], "'#' got no $ topic");
    assert.deepEqual(dollarTopics(plus), [], "'+' and '+/bar' got no $ topic");
    assert.deepEqual(
      dollarTopics(dollar).sort(),
      ["$foo", "$foo/bar"],
      "'$foo/#' gets $foo and $foo/bar",
    );
  });

  test("a single '#' receives ordinary topics", T, async () => {
    const b = uid("all");
    const all = await connect(broker());
    await subscribe(all, "#", 0);
    const pub = await connect(broker());
    await publish(pub, `${b}/x/y`, "x", { qos: 1 });
    const m = await all.inbox.waitTopic(`${b}/x/y`);
    assert.equal(m.payload.toString(), "x");
  });

  for (const bad of ["a/#/b", "a#", "a/b+", "+a/b", "#/a"]) {
    test(`[MQTT-4.7.1-1] [MQTT-4.7.1-2] the invalid filter '${bad}' is not granted (SUBACK 0x80 or close)`, T, async () => {
      const { raw } = await rawSession(broker());
      raw.write(subscribePacket(9, [[bad, 1]]));
      const outcome = await raw.next(5000, "SUBACK or close").then(
        (p) => p,
        () => null, // closed: acceptable for a protocol violation
      );
      if (outcome !== null) {
        assert.equal(outcome.type, PacketType.SUBACK);
        assert.equal(outcome.body.readUInt16BE(0), 9);
        assert.deepEqual([...outcome.body.subarray(2)], [0x80]);
      } else {
        assert.equal(raw.isClosed, true);
      }
    });
  }
});
