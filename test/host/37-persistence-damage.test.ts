// A damaged persistence file, at the core's level: the file of a small broker (retained
// messages, a persistent session with a subscription and queued QoS 1 messages) cut at
// every byte offset, and with seeded random bit flips, read back by a fresh core each
// time through the Node host's binding and store service (host/core.ts, host/persist.ts).
// Every time the broker starts, keeps exactly the records before the damage, says where
// the damage is, and writes a clean file that reads back without complaint.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Core, Stat } from "../../host/core";
import { QuietLink, connect, subscribe, publish, disconnect, restoredCore } from "./inprocess.js";
import { ROOT, BROKER_KIND } from "./helpers.js";

const skip = BROKER_KIND === "mosquitto" ? "the core's own file format" : false;
const wasm = path.join(ROOT, "build", "midge-pi-zero.wasm");
const dir = mkdtempSync(path.join(os.tmpdir(), "midge-damage-"));
after(() => rmSync(dir, { recursive: true, force: true }));



const module = existsSync(wasm) ? new WebAssembly.Module(readFileSync(wasm)) : null;

/** A fresh core with persistence in `file`, read back; its log lines. */
const start = (file: string) => restoredCore(module!, file);

/** Feed one client's packets; the connection stays open (or closes after DISCONNECT). */
function client(core: Core, ...packets: Uint8Array[]): void {
  const id = core.open(new QuietLink());
  for (const p of packets) core.feed(id, p);
  core.closed(id);
}

/** The file a small broker leaves: 3 retained messages, a persistent session with two
 *  subscriptions and 2 queued QoS 1 messages (one retained message then cleared), and a
 *  persistent publisher's QoS 2 message, its PUBREL not sent yet: the id held and the
 *  message queued for the subscriber, one unit in the file. */
function makeFile(file: string): Buffer {
  rmSync(file, { force: true });
  const { core } = start(file);
  client(core, connect("keeper", false), subscribe("q/#", 1), subscribe("x/#", 2), disconnect());
  client(core, connect("pub", true), publish("r/1", "one", 0, true), publish("r/2", "two", 1, true, 7),
         publish("r/3", "three", 0, true), publish("q/a", "queued a", 1, false, 8), publish("q/b", "queued b", 1, false, 9),
         publish("r/2", "", 0, true), disconnect());
  client(core, connect("pub2", false), publish("x/once", "exactly once", 2, false, 11));
  core.flushStore();
  return readFileSync(file);
}

/** The QoS 2 PUBLISH of makeFile again, as its publisher resends it after a restart. */
const resend = () => {
  const p = publish("x/once", "exactly once", 2, false, 11);
  p[0] |= 8; // DUP
  return p;
};

/** The topics of the PUBLISH packets in what a link was sent. */
function published(link: QuietLink): string[] {
  const bytes = Buffer.concat(link.out);
  const topics: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const first = bytes[at++];
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      len += (b & 127) << shift;
      if (b < 128) break;
    }
    if (first >> 4 === 3) topics.push(bytes.toString("latin1", at + 2, at + 2 + bytes.readUInt16BE(at)));
    at += len;
  }
  return topics;
}

interface Rec { type: number; unit: boolean; end: number; pid: number }
/** The records of a file (docs/ABI.md: a 16-byte header, then length, CRC, body; a type
 *  with bit 0x80 is in a unit, which counts only up to its Commit, type 16). */
function records(file: Buffer): Rec[] {
  const out: Rec[] = [];
  for (let at = 16; at + 8 <= file.length; ) {
    const len = file.readUInt32LE(at);
    const pid = len >= 5 ? file.readUInt32LE(at + 9) : 0; // the first field (a Session's own pid)
    out.push({ type: file[at + 8] & 0x7f, unit: (file[at + 8] & 0x80) !== 0, end: at + 8 + len, pid });
    at += 8 + len;
  }
  return out;
}

/** The offsets where the records before form a whole: ends of records outside a unit
 *  and of Commits. A cut or a damaged record loses everything back to the last one. */
const wholeEnds = (recs: Rec[]) => recs.filter((r) => !r.unit).map((r) => r.end);
const keptUpTo = (recs: Rec[], k: number) => (k < 16 ? 0 : Math.max(16, ...wholeEnds(recs).filter((e) => e <= k)));

/** What the records up to byte `limit` leave: retained messages, sessions, queued messages,
 *  and whether the keeper's x/# subscription is there. */
function expected(recs: Rec[], limit: number) {
  const whole = keptUpTo(recs, limit);
  const kept = recs.filter((r) => r.end <= whole);
  let retained = 0;
  let queued = 0;
  for (const r of kept) {
    if (r.type === 2) retained++;
    if (r.type === 3) retained--;
    if (r.type === 8) queued++;
    if (r.type === 11) queued--;
  }
  const subscribed = kept.filter((r) => r.type === 6).length === 2;
  const sessions = new Set(kept.filter((r) => r.type === 4).map((r) => r.pid)).size;
  return { retained, sessions, queued, subscribed };
}

describe("a damaged persistence file", { skip: skip || (module === null ? "build/midge-pi-zero.wasm not built" : false) }, () => {
  const original = module === null ? Buffer.alloc(0) : makeFile(path.join(dir, "original.db"));
  const recs = records(original);

  test("the file has the records the traffic made", () => {
    assert.equal(recs.at(-1)?.end, original.length, "whole records to the end");
    const types = recs.map((r) => r.type);
    for (const t of [1, 2, 3, 4, 6, 8, 12, 16]) assert.ok(types.includes(t), `record type ${t} in ${types.join(",")}`);
  });

  test(`cut at every byte offset (0 to ${original.length}): the broker starts with the records before the cut`, () => {
    const file = path.join(dir, "cut.db");
    const boundaries = new Set([0, 16, ...wholeEnds(recs)]);
    for (let k = 0; k <= original.length; k++) {
      writeFileSync(file, original.subarray(0, k));
      const { core, log } = start(file);
      const want = expected(recs, k);
      const where = `cut at ${k}: ${log.join(" | ")}`;
      assert.equal(core.stat(Stat.RetainedMessages), want.retained, where);
      assert.equal(core.stat(Stat.SessionsStored), want.sessions, where);
      assert.equal(core.stat(Stat.Deliveries), want.queued, where);
      const damaged = log.find((l) => l.includes("is damaged at byte"));
      if (boundaries.has(k)) assert.equal(damaged, undefined, where);
      else {
        const at = keptUpTo(recs, k);
        assert.match(damaged ?? "", new RegExp(`damaged at byte ${at}: cut off ${k - at} bytes`), where);
      }
      assert.ok(log.some((l) => /persistence: restored \d+ retained messages/.test(l)), where);
      // the file it wrote reads back whole
      const again = start(file);
      assert.equal(again.core.stat(Stat.RetainedMessages), want.retained, `${where} (read again)`);
      assert.equal(again.core.stat(Stat.Deliveries), want.queued, `${where} (read again)`);
      assert.equal(again.log.find((l) => l.includes("damaged")), undefined, `${where} (read again)`);
      // [MQTT-4.3.3-2] the QoS 2 message once, whatever the cut: its publisher, never
      // answered, sends it again; the subscriber then gets it exactly once (if its
      // subscription is in what was kept): a held id without the message would lose it
      client(again.core, connect("pub2", false), resend());
      const keeper = new QuietLink();
      again.core.feed(again.core.open(keeper), connect("keeper", false));
      const copies = published(keeper).filter((t) => t === "x/once").length;
      assert.equal(copies, want.subscribed ? 1 : 0, `${where}: x/once delivered ${copies} times`);
    }
  });

  test("random bit flips (seeded): the records before the flipped one are kept, the damage is reported", () => {
    let seed = 20261203;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    console.log(`bit flips: seed 20261203, ${original.length} bytes`);
    const file = path.join(dir, "flip.db");
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(original);
      const at = Math.floor(random() * bytes.length);
      bytes[at] ^= 1 << Math.floor(random() * 8);
      writeFileSync(file, bytes);
      rmSync(`${file}.old`, { force: true });
      const { core, log } = start(file);
      const where = `bit flipped at byte ${at}: ${log.join(" | ")}`;
      // the record holding the flip and all after it are gone; the header's magic or
      // version flipped makes it a foreign file, kept aside
      const before = keptUpTo(recs, at);
      const want = expected(recs, before);
      assert.equal(core.stat(Stat.RetainedMessages), want.retained, where);
      assert.equal(core.stat(Stat.Deliveries), want.queued, where);
      if (at < 12 && at !== 8 && at !== 9 && at !== 10 && at !== 11) {
        assert.ok(log.some((l) => /not a Midge persistence file.*kept as .*\.old, starting empty/.test(l)), where);
        assert.ok(existsSync(`${file}.old`), where);
      } else if (at >= 8 && at < 12) {
        assert.ok(log.some((l) => /version \d+, which this Midge does not read|damaged at byte 0/.test(l)), where);
      } else {
        assert.ok(log.some((l) => new RegExp(`damaged at byte ${before}: cut off ${original.length - before} bytes`).test(l)), where);
      }
    }
  });
});
