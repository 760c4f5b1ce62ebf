// CONNECT / CONNACK, client identifiers, protocol levels, PINGREQ.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  connect,
  pingreq,
  publish,
  rawConnect,
  subscribe,
  uid,
  useBroker,
} from "./helpers.js";

const T = { timeout: 20_000 };

describe("connect", () => {
  const broker = useBroker();

  test("[MQTT-3.1.4-4] [MQTT-3.2.2-1] a clean CONNECT gets CONNACK 0 with sessionPresent=0", T, async () => {
    const c = await connect(broker(), { clean: true });
    assert.equal(c.connack.returnCode, 0);
    assert.equal(c.connack.sessionPresent, false);
  });

  test("[MQTT-3.2.0-1] the first packet the server sends is CONNACK (raw)", T, async () => {
    const { raw, returnCode, sessionPresent } = await rawConnect(broker(), { clientId: uid("raw") });
    assert.equal(returnCode, 0);
    assert.equal(sessionPresent, false);
    assert.equal(raw.received[0], 0x20, "CONNACK first byte");
    assert.equal(raw.received[1], 0x02, "CONNACK remaining length");
  });

  test("[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP", T, async () => {
    const { raw } = await rawConnect(broker());
    raw.write(pingreq());
    const p = await raw.expect(PacketType.PINGRESP);
    assert.equal(p.flags, 0);
    assert.equal(p.body.length, 0);
  });

  test("MQTT 3.1 ('MQIsdp', level 3) clients can subscribe and publish, also to 3.1.1 clients", T, async () => {
    const v3 = { protocolId: "MQIsdp" as const, protocolVersion: 3 as const };
    const sub31 = await connect(broker(), v3);
    assert.equal(sub31.connack.returnCode, 0);
    const sub311 = await connect(broker());
    const pub31 = await connect(broker(), v3);
    const topic = uid("v31") + "/x";
    assert.deepEqual(await subscribe(sub31, topic, 1), [1]);
    assert.deepEqual(await subscribe(sub311, topic, 2), [2]);
    await publish(pub31, topic, "from 3.1", { qos: 2 });
    const [a] = await sub31.inbox.wait(1);
    const [b] = await sub311.inbox.wait(1);
    assert.equal(a.payload.toString(), "from 3.1");
    assert.equal(a.qos, 1);
    assert.equal(b.payload.toString(), "from 3.1");
    assert.equal(b.qos, 2);
  });

  test("MQTT 3.1 raw CONNECT ('MQIsdp', level 3) gets CONNACK 0", T, async () => {
    const r = await rawConnect(broker(), { protocolName: "MQIsdp", protocolLevel: 3, clientId: uid("v31raw") });
    assert.equal(r.returnCode, 0);
  });

  test("[MQTT-3.1.3-5] a 23-character [0-9a-zA-Z] client id is accepted", T, async () => {
    const id = ("Midge" + Date.now().toString(36) + "abcdefghijklmnopqrstuvwxyz0123456789").slice(0, 23);
    assert.equal(id.length, 23);
    const r = await rawConnect(broker(), { clientId: id });
    assert.equal(r.returnCode, 0);
  });

  test("[MQTT-3.1.3-6] a zero-length client id with clean=1 is accepted", T, async () => {
    const { raw, returnCode, sessionPresent } = await rawConnect(broker(), { clientId: "", clean: true });
    assert.equal(returnCode, 0);
    assert.equal(sessionPresent, false);
    raw.write(pingreq());
    await raw.expect(PacketType.PINGRESP);
  });

  test("[MQTT-3.1.3-6] two zero-length client ids get distinct identities (no takeover)", T, async () => {
    const a = await rawConnect(broker(), { clientId: "", clean: true });
    const b = await rawConnect(broker(), { clientId: "", clean: true });
    assert.equal(a.returnCode, 0);
    assert.equal(b.returnCode, 0);
    // the first one is still connected and served
    a.raw.write(pingreq());
    await a.raw.expect(PacketType.PINGRESP);
    b.raw.write(pingreq());
    await b.raw.expect(PacketType.PINGRESP);
    assert.equal(a.raw.isClosed, false);
  });

  test("[MQTT-3.1.3-8] [MQTT-3.2.2-4] [MQTT-3.2.2-5] a zero-length client id with clean=0 is refused with CONNACK 0x02 and closed", T, async () => {
    const { raw, returnCode, sessionPresent } = await rawConnect(broker(), { clientId: "", clean: false });
    assert.equal(returnCode, 0x02, "identifier rejected");
    assert.equal(sessionPresent, false);
    await raw.waitClose();
  });

  test("[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 and is closed", T, async () => {
    const { raw, returnCode } = await rawConnect(broker(), { protocolLevel: 0x7f, clientId: uid("lvl") });
    assert.equal(returnCode, 0x01, "unacceptable protocol version");
    await raw.waitClose();
  });
});
