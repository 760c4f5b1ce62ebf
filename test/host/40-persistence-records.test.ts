// Records that pass their CRC but that Midge's writer never makes (a bug elsewhere, a
// file edited by hand): read back by a fresh core through the Node host's binding, each
// is skipped and counted, and the core never traps (a trap ends the broker).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import { after, describe, test } from "node:test";
import { Core, Stat } from "../../host/core";
import { QuietLink, str, packet, connect, subscribe, restoredCore } from "./inprocess.js";
import { ROOT, BROKER_KIND } from "./helpers.js";

const skip = BROKER_KIND === "mosquitto" ? "the core's own file format" : false;
const wasm = path.join(ROOT, "build", "midge-pi-zero.wasm");
const dir = mkdtempSync(path.join(os.tmpdir(), "midge-records-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const module = existsSync(wasm) ? new WebAssembly.Module(readFileSync(wasm)) : null;



// ---- the file format (assembly/persist/record.ts), written here field by field
class Fields {
  parts: Buffer[] = [];
  u8(v: number) { this.parts.push(Buffer.from([v & 255])); return this; }
  u16(v: number) { const b = Buffer.alloc(2); b.writeUInt16LE(v & 0xffff); this.parts.push(b); return this; }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.parts.push(b); return this; }
  f64(v: number) { const b = Buffer.alloc(8); b.writeDoubleLE(v); this.parts.push(b); return this; }
  bytes(v: string | Buffer) { this.parts.push(Buffer.from(v)); return this; }
}
function record(type: number, f: Fields): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...f.parts]);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length);
  head.writeUInt32LE(crc32(body) >>> 0, 4);
  return Buffer.concat([head, body]);
}
function header(): Buffer {
  const h = Buffer.alloc(16);
  h.write("MIDGEDB\n", 0, "latin1");
  h.writeUInt32LE(1, 8);
  h.writeUInt32LE(crc32(h.subarray(0, 12)) >>> 0, 12);
  return h;
}
const message = (pid: number, topic: string, payload: string, o: { qos?: number; retain?: number; propsLen?: number; payloadLen?: number; topicLen?: number } = {}) =>
  record(1, new Fields().u32(pid).u8(o.qos ?? 1).u8(o.retain ?? 0).f64(0).u16(o.topicLen ?? topic.length).u32(o.propsLen ?? 0)
    .u32(o.payloadLen ?? payload.length).bytes(topic).bytes(payload));
const session = (pid: number, id: string, o: { idLen?: number } = {}) =>
  record(4, new Fields().u32(pid).u32(0xffffffff).f64(0).u8(0).u16(o.idLen ?? id.length).u16(0).bytes(id));
const subscription = (spid: number, filter: string, o: { offset?: number; len?: number } = {}) =>
  record(6, new Fields().u32(spid).u8(1).u8(0).u32(0).u16(o.offset ?? 0).u16(o.len ?? filter.length).bytes(filter));
const queue = (pid: number, spid: number, mpid: number, o: { qos?: number; state?: number } = {}) =>
  record(8, new Fields().u32(pid).u32(spid).u32(mpid).u8(o.qos ?? 1).u8(0).u8(o.state ?? 0).u16(0).u8(0));
const sent = (dpid: number, spid: number, id: number) => record(9, new Fields().u32(dpid).u32(spid).u16(id));
const retain = (mpid: number) => record(2, new Fields().u32(mpid));
const unretain = (topic: string, len = topic.length) => record(3, new Fields().u16(len).bytes(topic));

/** A fresh core reading `records` back; its log. A trap (or fatal) throws out of here. */
function start(name: string, records: Buffer[], lines = ""): { core: Core; log: string[] } {
  const file = path.join(dir, `${name}.db`);
  writeFileSync(file, Buffer.concat([header(), ...records]));
  return restoredCore(module!, file, lines);
}
const skipped = (log: string[]) => Number(log.join("\n").match(/persistence: (\d+) records did not fit/)?.[1] ?? 0);

describe("records the writer never makes: skipped, never a trap", { skip: skip || (module === null ? "build/midge-pi-zero.wasm not built" : false) }, () => {
  test("a Message whose lengths add up only through a negative one (u32 wrap-around)", () => {
    const { core, log } = start("negative-length", [
      message(1, "a/b", "12345", { propsLen: 0xfffffffc, payloadLen: 9, retain: 1 }), retain(1),
    ]);
    assert.equal(skipped(log), 2, log.join(" | "));
    assert.equal(core.stat(Stat.RetainedMessages), 0);
    const link = new QuietLink();
    const c = core.open(link);
    core.feed(c, connect("sub", true));
    core.feed(c, subscribe("a/#", 1));
  });

  test("a Session whose client id is longer than the board's CLIENT_ID_MAX", () => {
    const { core, log } = start("long-id", [session(1, "x".repeat(3000))]);
    assert.equal(skipped(log), 1, log.join(" | "));
    assert.equal(core.stat(Stat.SessionsStored), 0);
  });

  test("a Session whose id length runs past the end of its record", () => {
    const { core, log } = start("id-past-end", [session(1, "abc", { idLen: 40 })]);
    assert.equal(skipped(log), 1, log.join(" | "));
    assert.equal(core.stat(Stat.SessionsStored), 0);
  });

  test("a Subscribe whose filter offset is past its filter's end", () => {
    const { core, log } = start("offset-past-len", [session(1, "s"), subscription(1, "a/b", { offset: 9 })]);
    assert.equal(skipped(log), 1, log.join(" | "));
    assert.equal(core.stat(Stat.Subscriptions), 0);
  });

  test("an Unretain whose topic length runs past the end of its record", () => {
    const { log } = start("unretain-past-end", [unretain("a/b", 60000)]);
    assert.equal(skipped(log), 1, log.join(" | "));
  });

  test("a Queue with QoS 0 or 3, or a state no delivery has", () => {
    const { core, log } = start("queue-fields", [
      session(1, "s"), message(2, "t", "m"), queue(3, 1, 2, { qos: 0 }), queue(4, 1, 2, { qos: 3 }), queue(5, 1, 2, { state: 9 }),
    ]);
    assert.equal(skipped(log), 3, log.join(" | "));
    assert.equal(core.stat(Stat.Deliveries), 0);
  });

  test("a Sent naming another session's delivery, or one not next in its queue", () => {
    const { core, log } = start("sent-elsewhere", [
      session(1, "a"), session(2, "b"), message(3, "t", "m"), queue(4, 1, 3), queue(5, 1, 3),
      sent(4, 2, 1), // b's? no: a's
      sent(5, 1, 2), // a's second before its first
    ]);
    assert.equal(skipped(log), 2, log.join(" | "));
    assert.equal(core.stat(Stat.Deliveries), 2);
    for (const id of ["a", "b"]) {
      const link = new QuietLink();
      const c = core.open(link);
      core.feed(c, connect(id, false));
    }
  });
});

// ---- units (record.ts, UNIT): records with bit 0x80 in their type count only with the Commit after them
const inUnit = (rec: Buffer) => { const r = Buffer.from(rec); r[8] |= 0x80; r.writeUInt32LE(crc32(r.subarray(8)) >>> 0, 4); return r; };
const received = (spid: number, id: number) => record(12, new Fields().u32(spid).u16(id));
const commit = () => record(16, new Fields());
const damagedAt = (log: string[]) => log.join("\n").match(/damaged at byte (\d+): cut off (\d+) bytes \(the damaged record(?: and (\d+) after it)?\)/);

describe("units: a QoS 2 id and the deliveries its message made, all or nothing", { skip: skip || (module === null ? "build/midge-pi-zero.wasm not built" : false) }, () => {
  const before = [session(1, "sub"), subscription(1, "t"), session(2, "pub")];
  const unit = [inUnit(received(2, 11)), inUnit(message(3, "t", "once", { qos: 2 })), inUnit(queue(4, 1, 3, { qos: 2 }))];
  const at = 16 + Buffer.concat(before).length;

  test("a unit with its Commit is applied", () => {
    const { core, log } = start("unit-whole", [...before, ...unit, commit()]);
    assert.equal(core.stat(Stat.Deliveries), 1, log.join(" | "));
    assert.equal(damagedAt(log), null, log.join(" | "));
  });

  test("a unit the file ends in before its Commit (a torn write) is cut off whole, and said so", () => {
    const { core, log } = start("unit-torn", [...before, ...unit]);
    assert.equal(core.stat(Stat.Deliveries), 0, log.join(" | "));
    assert.equal(core.stat(Stat.SessionsStored), 2, log.join(" | "));
    const m = damagedAt(log);
    assert.ok(m, log.join(" | "));
    assert.deepEqual([Number(m[1]), Number(m[2]), Number(m[3])], [at, Buffer.concat(unit).length, 2]);
  });

  test("a unit torn inside its third record: cut back to its first", () => {
    const torn = Buffer.concat(unit).subarray(0, Buffer.concat(unit).length - 5);
    const { core, log } = start("unit-torn-record", [...before, torn]);
    assert.equal(core.stat(Stat.Deliveries), 0, log.join(" | "));
    const m = damagedAt(log);
    assert.deepEqual([Number(m?.[1]), Number(m?.[2]), Number(m?.[3])], [at, torn.length, 2], log.join(" | "));
  });

  test("a corrupt record in a unit takes the whole unit, and all after it", () => {
    const bad = Buffer.from(unit[2]);
    bad[bad.length - 1] ^= 1;
    const { core, log } = start("unit-corrupt", [...before, unit[0], unit[1], bad, commit(), retain(3)]);
    assert.equal(core.stat(Stat.Deliveries), 0, log.join(" | "));
    assert.equal(core.stat(Stat.RetainedMessages), 0, log.join(" | "));
    assert.equal(Number(damagedAt(log)?.[1]), at, log.join(" | "));
  });

  test("a unit longer than the read window (a 1 MiB message to 400 sessions) is applied as it comes", () => {
    const subs = Array.from({ length: 400 }, (_, k) => [session(10 + k, `s${k}`), subscription(10 + k, "big")]).flat();
    const big = "x".repeat(1_044_000);
    const queued = Array.from({ length: 400 }, (_, k) => inUnit(queue(1000 + k, 10 + k, 3, { qos: 2 })));
    const records = [...subs, session(2, "pub"), inUnit(received(2, 11)), inUnit(message(3, "big", big, { qos: 2 })), ...queued, commit()];
    const length = Buffer.concat(records.slice(-402)).length;
    assert.ok(length > 1_048_576 + 5 + 4096, `the unit (${length} bytes) is longer than pi-zero's input window`);
    const { core, log } = start("unit-too-long", records);
    assert.equal(core.stat(Stat.Deliveries), 400, log.join(" | "));
    assert.equal(damagedAt(log), null, log.join(" | "));
    assert.equal(skipped(log), 0, log.join(" | "));
  });
});

describe("persistence_sync always: acknowledgements wait for their records", { skip: skip || (module === null ? "build/midge-pi-zero.wasm not built" : false) }, () => {
  const types = (link: QuietLink) => link.out.flatMap((b) => [...b]).length === 0 ? [] : splitTypes(Buffer.concat(link.out));
  test("[MQTT-4.3.3-2] the PUBCOMP for a persistent session's QoS 2 id waits until the ReceivedDone record is synced", () => {
    const { core } = start("pubcomp-held", [], "persistence_sync always\n");
    const link = new QuietLink();
    const c = core.open(link);
    core.feed(c, connect("q2", false));
    core.flushStore();
    link.out.length = 0;
    core.feed(c, packet(0x34, [...str("t"), 0, 7, ...Buffer.from("m")])); // QoS 2 PUBLISH, id 7: a Received record
    assert.deepEqual(types(link), [], "the PUBREC waits for the sync");
    core.flushStore();
    assert.deepEqual(types(link), [0x50], "PUBREC after the sync");
    link.out.length = 0;
    core.feed(c, packet(0x62, [0, 7])); // PUBREL: a ReceivedDone record
    assert.deepEqual(types(link), [], "the PUBCOMP waits for the sync (a power cut would keep id 7 held, and the client's next QoS 2 message with id 7 would be taken for a duplicate)");
    core.flushStore();
    assert.deepEqual(types(link), [0x70], "PUBCOMP after the sync");
  });
});

function splitTypes(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < buf.length; ) {
    let len = 0, mul = 1, i = at + 1;
    for (;;) { const b = buf[i++]; len += (b & 127) * mul; mul *= 128; if (b < 128) break; }
    out.push(buf[at] & 0xf0);
    at = i + len;
  }
  return out;
}
