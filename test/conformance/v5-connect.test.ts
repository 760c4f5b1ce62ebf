// MQTT 5.0 conformance: CONNECT / CONNACK and their properties, sessions and Session
// Expiry, keep-alive, wills and Will Delay, takeover, DISCONNECT, AUTH, error handling
// (sections 1.5, 2, 3.1, 3.2, 3.12, 3.14, 3.15, 4.1, 4.12, 4.13).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import {
  AUTH,
  BROKER_KIND,
  closeAll,
  startBroker,
  PacketType,
  Prop,
  QUIET_MS,
  T,
  auth5,
  connect5,
  disconnect5,
  encodeProps,
  expectClose,
  expectClose5,
  expectNothing,
  nextOfType,
  online5,
  openRaw,
  packet,
  packetTypes,
  parseConnack5,
  parseDisconnect5,
  parsePublish5,
  prop,
  props,
  publish5,
  str,
  sub5,
  subOpts,
  topicBase,
  u16,
  uid,
  unsub5,
  useBroker,
  type RawClient,
} from "./helpers.js";

const CONNACK_CODES = [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f];
const DISCONNECT_CODES = [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2];

/** A refused or broken CONNECT: closed, with at most a CONNACK >= 0x80 first and never a DISCONNECT. */
async function expectRefused(raw: RawClient, allowed?: number[]): Promise<number | null> {
  await expectClose(raw);
  const types = packetTypes(raw.received);
  assert.ok(!types.includes(PacketType.DISCONNECT), "[MQTT-3.14.0-1] no DISCONNECT before a successful CONNACK");
  if (types.length === 0) return null;
  assert.deepEqual(types, [PacketType.CONNACK], `only a CONNACK may come back, got ${raw.received.toString("hex")}`);
  const { packets } = (await import("./helpers.js")).splitPackets(raw.received);
  const ack = parseConnack5(packets[0]);
  assert.ok(ack.reason >= 0x80, `a refusing CONNACK has a reason >= 0x80, got 0x${ack.reason.toString(16)}`);
  assert.equal(ack.sessionPresent, false, "[MQTT-3.2.2-6] Session Present 0 with a non-zero reason");
  assert.ok(CONNACK_CODES.includes(ack.reason), `[MQTT-3.2.2-8] 0x${ack.reason.toString(16)} is a CONNACK reason code`);
  if (allowed) assert.ok(allowed.includes(ack.reason), `reason 0x${ack.reason.toString(16)} not in ${allowed.map((c) => "0x" + c.toString(16))}`);
  return ack.reason;
}

describe("MQTT 5.0 CONNECT / CONNACK", () => {
  const broker = useBroker();

  test("[MQTT-3.1.4-5] [MQTT-3.2.0-1] [MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-2.2.2-1] a valid CONNECT gets CONNACK 0x00 first, Session Present 0, reserved flag bits 0, a property length", T, async () => {
    const raw = await openRaw(broker(), Buffer.concat([connect5({ clientId: uid("c5") }), packet(PacketType.PINGREQ, 0)]));
    const first = await raw.next(5000, "CONNACK");
    assert.equal(first.type, PacketType.CONNACK, "CONNACK comes first");
    assert.equal(first.flags, 0);
    const ack = parseConnack5(first);
    assert.equal(ack.reason, 0);
    assert.equal(ack.flags, 0, "acknowledge flags: bits 7-1 reserved 0, Session Present 0");
    assert.ok(first.body.length >= 3, "a property length follows the reason code");
    await nextOfType(raw, PacketType.PINGRESP);
  });

  test("[MQTT-3.2.0-2] [MQTT-3.1.0-2] [MQTT-4.13.1-1] a second CONNECT is a protocol error: no second CONNACK, closed (DISCONNECT 0x82 allowed)", T, async () => {
    const { raw } = await online5(broker());
    raw.write(connect5({ clientId: uid("again") }));
    const reason = await expectClose5(raw);
    assert.ok(reason === null || reason === 0x82, `reason ${reason}`);
    assert.equal(packetTypes(raw.received).filter((t) => t === PacketType.CONNACK).length, 1, "one CONNACK only");
  });

  test("[MQTT-3.1.2-1] a protocol name other than MQTT: closed, at most CONNACK 0x84", T, async () => {
    const p = connect5({ clientId: uid("nm") });
    p.write("MQTX", 4, "latin1");
    const raw = await openRaw(broker(), p);
    await expectRefused(raw, [0x84]);
  });

  test("[MQTT-3.1.2-2] an unsupported protocol version (6): closed, at most CONNACK 0x84", T, async () => {
    const raw = await openRaw(broker(), connect5({ clientId: uid("v6"), protocolLevel: 6 }));
    await expectClose(raw);
    // a server may answer in the form of the version it guesses: CONNACK 0x84 (5.0) or 0x01 (3.1.1)
    const ok = raw.received.length === 0 || raw.received.equals(Buffer.from([0x20, 0x02, 0x00, 0x01])) || (raw.received[0] === 0x20 && raw.received[3] === 0x84);
    assert.ok(ok, `closed, at most a refusing CONNACK: got ${raw.received.toString("hex")}`);
  });

  test("[MQTT-3.1.2-3] [MQTT-3.1.4-1] the reserved connect flag set: closed, at most CONNACK 0x81", T, async () => {
    const raw = await openRaw(broker(), connect5({ clientId: uid("rsv"), extraFlags: 0x01 }));
    await expectRefused(raw, [0x81]);
  });

  const badConnects: Array<[string, () => Buffer]> = [
    ["[MQTT-3.1.4-1] [MQTT-2.1.3-1] CONNECT fixed-header flags 0010", () => { const p = connect5({ clientId: uid("f") }); p[0] |= 2; return p; }],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-12] will QoS 3", () => connect5({ clientId: uid("w3"), will: { topic: "w", payload: "x", qos: 3 } })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-11] will QoS without the will flag", () => connect5({ clientId: uid("wq"), extraFlags: 0x10 })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-13] will retain without the will flag", () => connect5({ clientId: uid("wr"), extraFlags: 0x20 })],
    ["[MQTT-3.1.4-1] Session Expiry Interval given twice", () => connect5({ clientId: uid("dup"), props: [[Prop.SessionExpiryInterval, 1], [Prop.SessionExpiryInterval, 2]] })],
    ["[MQTT-3.1.4-1] Receive Maximum 0", () => connect5({ clientId: uid("rm0"), props: [[Prop.ReceiveMaximum, 0]] })],
    ["[MQTT-3.1.4-1] Maximum Packet Size 0", () => connect5({ clientId: uid("mp0"), props: [[Prop.MaximumPacketSize, 0]] })],
    ["[MQTT-3.1.4-1] Request Problem Information 2", () => connect5({ clientId: uid("rpi"), props: [[Prop.RequestProblemInformation, 2]] })],
    ["[MQTT-3.1.4-1] a property that does not belong in CONNECT (Topic Alias)", () => connect5({ clientId: uid("ta"), props: [[Prop.TopicAlias, 1]] })],
    ["[MQTT-3.1.4-1] an unknown property identifier 0x7F", () => connect5({ clientId: uid("unk"), rawProps: Buffer.from([0x7f, 0x00]) })],
    ["[MQTT-3.1.4-1] a property length running past the packet", () => {
      const body = Buffer.concat([str("MQTT"), Buffer.from([5, 2]), u16(60), Buffer.from([0x40]), str(uid("pl"))]);
      return packet(PacketType.CONNECT, 0, body);
    }],
    ["[MQTT-1.5.5-1] [MQTT-3.1.4-1] a property length of five bytes", () => {
      const body = Buffer.concat([str("MQTT"), Buffer.from([5, 2]), u16(60), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x00]), str(uid("vb"))]);
      return packet(PacketType.CONNECT, 0, body);
    }],
    ["[MQTT-1.5.4-1] [MQTT-3.1.3-4] a client id with a surrogate (ED A0 80)", () => connect5({ clientId: Buffer.from([0x61, 0xed, 0xa0, 0x80]) })],
    ["[MQTT-1.5.4-2] a client id containing U+0000", () => connect5({ clientId: Buffer.from([0x61, 0x00]) })],
    ["[MQTT-1.5.7-1] a User Property whose name is invalid UTF-8", () => connect5({ clientId: uid("up"), rawProps: Buffer.concat([Buffer.from([0x26]), str(Buffer.from([0xff])), str("v")]) })],
    ["[MQTT-1.5.4-1] [MQTT-3.1.3-11] a will topic with invalid UTF-8", () => connect5({ clientId: uid("wt"), will: { topic: Buffer.from([0xc0, 0xaf]), payload: "x" } })],
    ["[MQTT-3.1.4-1] [MQTT-4.7.0-1] a will topic with a wildcard", () => connect5({ clientId: uid("ww"), will: { topic: "w/#", payload: "x" } })],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-9] the will flag without will properties/topic/payload", () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([5, 0x06]), u16(60), encodeProps([]), str(uid("nw"))]))],
    ["[MQTT-3.1.4-1] [MQTT-3.1.2-17] the user name flag without a user name", () => packet(PacketType.CONNECT, 0, Buffer.concat([str("MQTT"), Buffer.from([5, 0x82]), u16(60), encodeProps([]), str(uid("nu"))]))],
    ["[MQTT-3.1.4-1] a will property that is not a will property (Session Expiry Interval)", () => connect5({ clientId: uid("wp"), will: { topic: "w", payload: "x", props: [[Prop.SessionExpiryInterval, 5]] } })],
  ];
  for (const [name, bytes] of badConnects) {
    test(`${name} [MQTT-3.2.2-6] [MQTT-3.2.2-8] [MQTT-4.13.2-1]: closed, no DISCONNECT, at most a CONNACK >= 0x80`, T, async () => {
      const raw = await openRaw(broker(), bytes());
      await expectRefused(raw);
    });
  }

  test("[MQTT-3.1.3-5] [MQTT-3.1.3-2] 1- and 23-character client ids from [0-9a-zA-Z] are accepted", T, async () => {
    await online5(broker(), { clientId: "q" });
    await online5(broker(), { clientId: ("Zz09" + Date.now().toString(36) + "abcdefghijklmnopqrstuvw").slice(0, 23) });
  });

  test("[MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16] an empty client id gets a unique Assigned Client Identifier in CONNACK", T, async () => {
    const a = await online5(broker(), { clientId: "" });
    const b = await online5(broker(), { clientId: "" });
    const ida = prop(a.connack.props, Prop.AssignedClientIdentifier);
    const idb = prop(b.connack.props, Prop.AssignedClientIdentifier);
    assert.equal(typeof ida, "string");
    assert.ok((ida as string).length > 0);
    assert.notEqual(ida, idb, "two different identifiers");
  });

  test("[MQTT-3.1.3-8] [MQTT-3.2.2-7] a client id the server rejects (too long): CONNACK 0x85 (or another >= 0x80) and closed", T, async () => {
    const raw = await openRaw(broker(), connect5({ clientId: "x".repeat(5000) }));
    await expectRefused(raw);
  });

  test("[MQTT-3.1.4-6] after a refused CONNECT nothing else the client sent is processed", T, async () => {
    const base = topicBase("ref5");
    const w = await online5(broker());
    await sub5(w.raw, [[`${base}/#`, 0]]);
    const raw = await openRaw(broker(), Buffer.concat([
      connect5({ clientId: "x".repeat(5000) }),
      publish5({ topic: `${base}/sneaky`, payload: "x" }),
      packet(PacketType.PINGREQ, 0),
    ]));
    await expectRefused(raw);
    await expectNothing(w.raw, QUIET_MS, PacketType.PUBLISH, "not delivered");
  });

  test("[MQTT-3.2.2-9] [MQTT-3.2.2-10] a server advertising Maximum QoS below 2 still accepts SUBSCRIBE at QoS 0, 1 and 2", T, async () => {
    const s = await online5(broker());
    const max = prop(s.connack.props, Prop.MaximumQoS);
    assert.ok(max === undefined || max === 0 || max === 1, `Maximum QoS ${max} must be 0 or 1 when present`);
    const ack = await sub5(s.raw, [[`${topicBase("mq")}/a`, 0], [`${topicBase("mq")}/b`, 1], [`${topicBase("mq")}/c`, 2]]);
    assert.equal(ack.reasons.length, 3);
    for (const r of ack.reasons) assert.ok(r <= 2, `granted, not refused: 0x${r.toString(16)}`);
  });

  test("[MQTT-3.2.2-12] a will QoS above the server's Maximum QoS is refused (0x9B), otherwise accepted", T, async () => {
    const probe = await online5(broker());
    const max = (prop(probe.connack.props, Prop.MaximumQoS) as number | undefined) ?? 2;
    const raw = await openRaw(broker(), connect5({ clientId: uid("wq2"), will: { topic: "w", payload: "x", qos: 2 } }));
    if (max < 2) {
      await expectRefused(raw, [0x9b]);
    } else {
      const ack = parseConnack5(await raw.next(5000, "CONNACK"));
      assert.equal(ack.reason, 0);
    }
  });

  test("[MQTT-3.2.2-13] a retained will on a server without retain support is refused (0x9A), otherwise accepted", T, async () => {
    const probe = await online5(broker());
    const avail = prop(probe.connack.props, Prop.RetainAvailable) ?? 1;
    const raw = await openRaw(broker(), connect5({ clientId: uid("wret"), will: { topic: "w", payload: "x", retain: true } }));
    if (avail === 0) await expectRefused(raw, [0x9a]);
    else assert.equal(parseConnack5(await raw.next(5000, "CONNACK")).reason, 0);
  });

  test("[MQTT-3.1.2-28] [MQTT-4.12.0-6] without a request the CONNACK has no Response Information and no Authentication Method", T, async () => {
    const s = await online5(broker(), { props: [[Prop.RequestResponseInformation, 0]] });
    assert.equal(prop(s.connack.props, Prop.ResponseInformation), undefined);
    assert.equal(prop(s.connack.props, Prop.AuthenticationMethod), undefined);
    await expectNothing(s.raw, QUIET_MS, AUTH, "no AUTH");
  });

  test("[MQTT-3.1.2-29] Request Problem Information 0: no Reason String or User Property on SUBACK, UNSUBACK or PUBACK", T, async () => {
    const base = topicBase("rpi");
    const { raw } = await online5(broker(), { props: [[Prop.RequestProblemInformation, 0]] });
    const bad = await sub5(raw, [[`${base}/${"x".repeat(4000)}`, 1], ["a/#/b", 0]]);
    assert.equal(prop(bad.props, Prop.ReasonString), undefined);
    assert.equal(prop(bad.props, Prop.UserProperty), undefined);
    const un = await unsub5(raw, [`${base}/none`]);
    assert.equal(prop(un.props, Prop.ReasonString), undefined);
    raw.write(publish5({ topic: `${base}/nobody`, payload: "x", qos: 1, id: 5 }));
    const pa = await nextOfType(raw, PacketType.PUBACK);
    assert.ok(pa.body.length <= 3 || prop((await import("./helpers.js")).parsePubAck5(pa).props, Prop.ReasonString) === undefined);
  });

  test("[MQTT-4.12.0-1] an Authentication Method the server does not support: CONNACK 0x8C or 0x87 (or just closed)", T, async () => {
    const raw = await openRaw(broker(), connect5({ clientId: uid("am"), props: [[Prop.AuthenticationMethod, "NO-SUCH-METHOD"]] }));
    await expectRefused(raw, [0x8c, 0x87]);
  });

  test("[MQTT-3.12.4-1] PINGREQ gets PINGRESP", T, async () => {
    const { raw } = await online5(broker());
    raw.write(packet(PacketType.PINGREQ, 0));
    await nextOfType(raw, PacketType.PINGRESP);
  });
});

describe("MQTT 5.0 sessions and keep-alive", () => {
  const broker = useBroker();

  test("[MQTT-3.1.2-23] [MQTT-3.1.2-5] [MQTT-3.2.2-3] [MQTT-3.1.4-4] [MQTT-4.5.0-1] [MQTT-4.1.0-1] Session Expiry > 0 keeps the session: Session Present 1 and the subscription delivers", T, async () => {
    const id = uid("se");
    const base = topicBase("se");
    const a = await online5(broker(), { clientId: id, props: [[Prop.SessionExpiryInterval, 60]] });
    await sub5(a.raw, [[`${base}/t`, 1]]);
    a.raw.write(disconnect5());
    await expectClose(a.raw);
    const p = await online5(broker());
    p.raw.write(publish5({ topic: `${base}/t`, payload: "kept", qos: 1, id: 1 }));
    await nextOfType(p.raw, PacketType.PUBACK);
    const b = await online5(broker(), { clientId: id, clean: false, props: [[Prop.SessionExpiryInterval, 60]] });
    assert.equal(b.connack.sessionPresent, true);
    const m = parsePublish5(await nextOfType(b.raw, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "kept");
  });

  test("[MQTT-3.1.2-6] [MQTT-3.2.2-3] Clean Start 0 with no session: a new one, Session Present 0", T, async () => {
    const s = await online5(broker(), { clientId: uid("new"), clean: false });
    assert.equal(s.connack.sessionPresent, false);
  });

  test("[MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-4] Clean Start 1 discards the stored session", T, async () => {
    const id = uid("cs");
    const base = topicBase("cs");
    const a = await online5(broker(), { clientId: id, props: [[Prop.SessionExpiryInterval, 60]] });
    await sub5(a.raw, [[`${base}/t`, 1]]);
    a.raw.write(disconnect5());
    await expectClose(a.raw);
    const b = await online5(broker(), { clientId: id, clean: true });
    assert.equal(b.connack.sessionPresent, false);
    const p = await online5(broker());
    p.raw.write(publish5({ topic: `${base}/t`, payload: "x", qos: 1, id: 1 }));
    await expectNothing(b.raw, QUIET_MS, PacketType.PUBLISH, "the old subscription is gone");
  });

  test("[MQTT-4.1.0-2] the session is discarded once the connection is closed and Session Expiry has passed", T, async () => {
    const id = uid("exp");
    const a = await online5(broker(), { clientId: id, props: [[Prop.SessionExpiryInterval, 1]] });
    await sub5(a.raw, [[`${topicBase("exp")}/t`, 1]]);
    a.raw.write(disconnect5());
    await expectClose(a.raw);
    await new Promise((r) => setTimeout(r, 2500));
    const b = await online5(broker(), { clientId: id, clean: false });
    assert.equal(b.connack.sessionPresent, false, "expired after 1 s");
  });

  test("[MQTT-4.1.0-2] Session Expiry 0 (absent): the session ends with the connection", T, async () => {
    const id = uid("zero");
    const a = await online5(broker(), { clientId: id });
    a.raw.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const b = await online5(broker(), { clientId: id, clean: false });
    assert.equal(b.connack.sessionPresent, false);
  });

  test("[MQTT-3.1.2-22] [MQTT-3.2.2-22] keep-alive 1 s without Server Keep Alive: closed after about 1.5 s", T, async () => {
    const start = Date.now();
    const s = await online5(broker(), { keepalive: 1 });
    const ka = prop(s.connack.props, Prop.ServerKeepAlive);
    const interval = ((ka as number | undefined) ?? 1) * 1000;
    const closedAt = await s.raw.waitClose(interval * 1.5 + 3000, "the keep-alive close");
    const after = closedAt - start;
    assert.ok(after >= interval, `closed after ${after} ms, before the keep-alive`);
    assert.ok(after <= interval * 1.5 + 1500, `closed after ${after} ms`);
  });

  test("[MQTT-3.1.4-3] a takeover sends the old connection DISCONNECT 0x8E and closes it", T, async () => {
    const id = uid("take5");
    const old = await online5(broker(), { clientId: id });
    await online5(broker(), { clientId: id });
    const reason = await expectClose5(old.raw);
    assert.equal(reason, 0x8e, "Session taken over");
  });

  test("[MQTT-3.14.1-1] [MQTT-2.1.3-1] a DISCONNECT with reserved flags set is malformed: closed", T, async () => {
    const { raw } = await online5(broker());
    raw.write(packet(PacketType.DISCONNECT, 0x02));
    const r = await expectClose5(raw);
    assert.ok(r === null || r === 0x81);
  });

  test("[MQTT-3.14.2-1] [MQTT-3.14.2-2] [MQTT-3.14.4-1] [MQTT-3.14.4-2] a server DISCONNECT uses a DISCONNECT reason code, no Session Expiry, then nothing more and closed", T, async () => {
    const { raw } = await online5(broker());
    raw.write(publish5({ topic: "a/+", payload: "x" })); // protocol error: wildcard in topic name
    await expectClose(raw);
    const { packets } = (await import("./helpers.js")).splitPackets(raw.received);
    const after = packets.slice(1);
    const i = after.findIndex((p) => p.type === PacketType.DISCONNECT);
    if (i >= 0) {
      const d = parseDisconnect5(after[i]);
      assert.ok(DISCONNECT_CODES.includes(d.reason), `0x${d.reason.toString(16)}`);
      assert.equal(prop(d.props, Prop.SessionExpiryInterval), undefined);
      assert.equal(i, after.length - 1, "DISCONNECT is the last packet");
    }
  });

  test("[MQTT-3.14.0-1] a malformed CONNECT never gets a DISCONNECT (only a CONNACK may precede the close)", T, async () => {
    const raw = await openRaw(broker(), connect5({ clientId: uid("m"), rawProps: Buffer.from([0x11]) }));
    await expectRefused(raw);
  });

  test("[MQTT-3.15.1-1] [MQTT-4.13.1-1] an AUTH with reserved flags, or an AUTH without an authentication method, is refused: closed", T, async () => {
    const { raw } = await online5(broker());
    raw.write(auth5(0x19, [], 0x01));
    await expectClose5(raw);
    const b = await online5(broker());
    b.raw.write(auth5(0x19));
    await expectClose5(b.raw);
  });
});

describe("MQTT 5.0 wills", () => {
  const broker = useBroker();

  async function watch(topic: string) {
    const w = await online5(broker());
    await sub5(w.raw, [[topic, subOpts(2, { rap: true })]]);
    return w.raw;
  }

  test("[MQTT-3.1.2-7] [MQTT-3.1.2-8] [MQTT-3.1.2-14] [MQTT-3.1.3-10] the will is published on a network drop, not retained, with its properties and User Property order", T, async () => {
    const base = topicBase("w5");
    const w = await watch(`${base}/w`);
    const c = await online5(broker(), {
      will: {
        topic: `${base}/w`, payload: "bye", qos: 1,
        props: [[Prop.UserProperty, ["k", "2"]], [Prop.ContentType, "text/plain"], [Prop.UserProperty, ["k", "1"]], [Prop.UserProperty, ["a", "3"]]],
      },
    });
    c.raw.destroy();
    const m = parsePublish5(await nextOfType(w, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "bye");
    assert.equal(m.retain, false);
    assert.equal(prop(m.props, Prop.ContentType), "text/plain");
    assert.deepEqual(props(m.props, Prop.UserProperty), [["k", "2"], ["k", "1"], ["a", "3"]]);
  });

  test("[MQTT-3.1.2-15] a will with retain is published retained", T, async () => {
    const base = topicBase("wr5");
    const c = await online5(broker(), { will: { topic: `${base}/w`, payload: "kept", retain: true } });
    c.raw.destroy();
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const s = await online5(broker());
    await sub5(s.raw, [[`${base}/w`, 0]]);
    const m = parsePublish5(await nextOfType(s.raw, PacketType.PUBLISH));
    assert.equal(m.retain, true);
  });

  test("[MQTT-3.1.2-10] [MQTT-3.14.4-3] DISCONNECT 0x00 discards the will", T, async () => {
    const base = topicBase("wd5");
    const w = await watch(`${base}/w`);
    const c = await online5(broker(), { will: { topic: `${base}/w`, payload: "no" } });
    c.raw.write(disconnect5(0));
    await expectClose(c.raw);
    await expectNothing(w, QUIET_MS * 2, PacketType.PUBLISH, "no will");
  });

  test("[MQTT-3.1.2-8] DISCONNECT 0x04 (with will message) publishes the will", T, async () => {
    const base = topicBase("w04");
    const w = await watch(`${base}/w`);
    const c = await online5(broker(), { will: { topic: `${base}/w`, payload: "yes" } });
    c.raw.write(disconnect5(0x04));
    await expectClose(c.raw);
    const m = parsePublish5(await nextOfType(w, PacketType.PUBLISH));
    assert.equal(m.payload.toString(), "yes");
  });

  test("[MQTT-3.1.2-8] [MQTT-3.1.3-9] a will with Will Delay 2 s is not sent if the client reconnects within the delay", T, async () => {
    const base = topicBase("wdl");
    const id = uid("wdl");
    const w = await watch(`${base}/w`);
    const c = await online5(broker(), { clientId: id, props: [[Prop.SessionExpiryInterval, 60]], will: { topic: `${base}/w`, payload: "late", props: [[Prop.WillDelayInterval, 2]] } });
    c.raw.destroy();
    await new Promise((r) => setTimeout(r, 500));
    await online5(broker(), { clientId: id, clean: false, props: [[Prop.SessionExpiryInterval, 60]] });
    await expectNothing(w, 2500, PacketType.PUBLISH, "no will: the client came back within the delay");
  });

  test("[MQTT-3.1.2-8] a will with Will Delay 1 s is published after the delay, not at once", T, async () => {
    const base = topicBase("wdl1");
    const w = await watch(`${base}/w`);
    const c = await online5(broker(), { props: [[Prop.SessionExpiryInterval, 60]], will: { topic: `${base}/w`, payload: "delayed", props: [[Prop.WillDelayInterval, 1]] } });
    const t0 = Date.now();
    c.raw.destroy();
    const m = parsePublish5(await nextOfType(w, PacketType.PUBLISH, 4000));
    assert.equal(m.payload.toString(), "delayed");
    assert.ok(Date.now() - t0 >= 900, `published after ${Date.now() - t0} ms`);
  });
});


describe("MQTT 5 CONNECT with a password file", { skip: BROKER_KIND === "mosquitto" ? "midge's own config files" : false }, () => {
  // alice/secret, as Debian's mosquitto_passwd 2.0.11 wrote it ($7$, its default)
  const ALICE = "alice:$7$101$soGyUhKrQ90SJ8kC$0a58ARyjR9M2/llPG83G9Rf3qtgolz8YGgKhNZusOaMAnJlqYzUuBcptmYyME2GyuGtHFCA2SZ/8hD7SDeumbw==\n";
  test("[MQTT-3.1.4-2] a failed authentication is answered CONNACK 0x87 and the connection closed", T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "midge-conf-pw-"));
    writeFileSync(path.join(dir, "passwd"), ALICE);
    writeFileSync(path.join(dir, "midge.conf"), `password_file ${path.join(dir, "passwd")}\n`);
    const b = await startBroker({ args: ["-c", path.join(dir, "midge.conf")] });
    try {
      const bad = await openRaw(b, connect5({ clientId: "pw-bad", username: "alice", password: "wrong" }));
      assert.equal(await expectRefused(bad), 0x87);
      const good = await openRaw(b, connect5({ clientId: "pw-good", username: "alice", password: "secret" }));
      assert.equal(parseConnack5(await nextOfType(good, PacketType.CONNACK)).reason, 0);
    } finally {
      await closeAll();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("MQTT 5 with retain_available false", { skip: BROKER_KIND === "mosquitto" ? "midge's own config files" : false }, () => {
  test("[MQTT-3.2.2-13] a will with Will Retain is refused with CONNACK 0x9A and the connection closed; CONNACK says Retain Available 0", T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "midge-conf-retain-"));
    writeFileSync(path.join(dir, "midge.conf"), "retain_available false\n");
    const b = await startBroker({ args: ["-c", path.join(dir, "midge.conf")] });
    try {
      const willed = await openRaw(b, connect5({ clientId: "ra-will", will: { topic: "ra/will", payload: "x", retain: true } }));
      assert.equal(await expectRefused(willed), 0x9a);
      const c = await openRaw(b, connect5({ clientId: "ra-pub" }));
      const ack = parseConnack5(await nextOfType(c, PacketType.CONNACK));
      assert.equal(ack.reason, 0);
      assert.equal(prop(ack.props, Prop.RetainAvailable), 0);
      c.write(publish5({ topic: "ra/x", payload: "r", retain: true }));
      const d = await nextOfType(c, PacketType.DISCONNECT);
      assert.equal(parseDisconnect5(d).reason, 0x9a, "a retained PUBLISH: DISCONNECT 0x9A");
      await expectClose(c);
    } finally {
      await closeAll();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
