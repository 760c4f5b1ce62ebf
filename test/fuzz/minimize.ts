// Shrinks a crash case to the fewest inputs, events and feeds that still fail the
// same way, so a bug report can show a handful of packets: run.mjs --minimize FILE
// writes FILE with ".min.json" and prints the packets of what is left.

import { readFileSync, writeFileSync } from "node:fs";
import { type Case, fromJson, toJson } from "./cases";
import { Failure, Harness } from "./harness";
import { type Event, type Input } from "./mutate";
import { split } from "./packets";

const NAMES = ["reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE",
  "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"];

/** The slots an input opens on a WebSocket or http listener: their bytes are not MQTT packets. */
function webSocketSlots(events: Event[]): Set<number> {
  return new Set(events.flatMap((e) => (e.e === "open" && (e.listener ?? 0) !== 0 ? [e.c] : [])));
}

/** An HTTP request as text (up to its blank line), what follows it (frames) in hex. */
function describeWebSocket(b: Uint8Array): string {
  const end = Buffer.from(b).indexOf("\r\n\r\n");
  const head = end < 0 ? b.length : end + 4;
  const text = Buffer.from(b.subarray(0, head)).toString("latin1");
  return (/^[\x20-\x7e\r\n\t]*$/.test(text) ? JSON.stringify(text) : `${Buffer.from(b.subarray(0, head)).toString("hex")}`) +
    (head < b.length ? ` + ${Buffer.from(b.subarray(head)).toString("hex")}` : "");
}

export function minimize(file: string, cores: Record<string, string>): number {
  const c = JSON.parse(readFileSync(file, "utf8")) as Case;
  const module = new WebAssembly.Module(readFileSync(cores[c.board ?? "small"]));
  let inputs: Input[] = c.inputs.map(fromJson);
  const kind = (what: string) => what.replace(/\d+/g, "N").slice(0, 60);
  const failure = (xs: Input[]): string | null => {
    const h = new Harness(module, c.options);
    try {
      for (const x of xs) h.run(x);
      h.settle();
    } catch (e) {
      if (e instanceof Failure) return e.message;
      throw e;
    }
    return null;
  };
  const original = failure(inputs);
  if (original === null) {
    console.log(`minimize: ${file} does not fail from a fresh core`);
    return 1;
  }
  const same = (xs: Input[]) => {
    const f = failure(xs);
    return f !== null && kind(f) === kind(original);
  };
  // 1. fewer inputs
  for (let i = inputs.length - 1; i >= 0; i--) {
    const fewer = inputs.filter((_, k) => k !== i);
    if (fewer.length > 0 && same(fewer)) inputs = fewer;
  }
  // 2. fewer events, then merged feeds, in each input
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    if (x.kind !== "events") continue;
    const tryEvents = (events: Event[]) => {
      const next = [...inputs];
      next[i] = { kind: "events", events };
      if (!same(next)) return false;
      inputs = next;
      return true;
    };
    let events = x.events;
    // the slots opened on a WebSocket or http listener: their bytes are not MQTT packets
    const notMqtt = webSocketSlots(events);
    for (let k = events.length - 1; k >= 0; k--) {
      const fewer = events.filter((_, j) => j !== k);
      if (tryEvents(fewer)) events = fewer;
    }
    for (let k = events.length - 2; k >= 0; k--) {
      const a = events[k], b = events[k + 1];
      if (a.e !== "feed" || b.e !== "feed" || a.c !== b.c) continue;
      const merged: Event = { e: "feed", c: a.c, b: new Uint8Array([...a.b, ...b.b]) };
      const next = [...events.slice(0, k), merged, ...events.slice(k + 2)];
      if (tryEvents(next)) events = next;
    }
    // 3. fewer packets in each feed
    for (let k = 0; k < events.length; k++) {
      const e = events[k];
      if (e.e !== "feed" || notMqtt.has(e.c)) continue;
      let b = e.b;
      for (let p = split(b).packets.length - 1; p >= 0; p--) {
        const { packets, used } = split(b);
        const kept = packets.filter((_, j) => j !== p);
        const bytesOf = (pk: (typeof packets)[number]) => {
          const len = pk.body.length;
          const v: number[] = [];
          let n = len;
          do {
            v.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
            n >>>= 7;
          } while (n > 0);
          return [(pk.type << 4) | pk.flags, ...v, ...pk.body];
        };
        const smaller = new Uint8Array([...kept.flatMap(bytesOf), ...b.subarray(used)]);
        const next = [...events];
        next[k] = { e: "feed", c: e.c, b: smaller };
        if (tryEvents(next)) {
          events = next;
          b = smaller;
        }
      }
    }
  }
  const last = failure(inputs)!;
  const out = file.replace(/\.json$/, "") + ".min.json";
  writeFileSync(out, JSON.stringify({ ...c, what: last, inputs: inputs.map(toJson) }, null, 1) + "\n");
  console.log(`minimize: ${last}\nminimize: wrote ${out}`);
  inputs.forEach((x, i) => {
    console.log(`input ${i}:`);
    if (x.kind === "split") return console.log(`  split run${x.listener ? ` on listener ${x.listener}` : ""} of ${Buffer.from(x.stream).toString("hex")}`);
    const notMqtt = webSocketSlots(x.events);
    for (const e of x.events) {
      if (e.e === "feed" && notMqtt.has(e.c)) {
        console.log(`  feed ${e.c}: ${describeWebSocket(e.b)}`);
        continue;
      }
      if (e.e !== "feed") {
        console.log(`  ${JSON.stringify(e)}`);
        continue;
      }
      const { packets, used } = split(e.b);
      const desc = packets.map((p) => `${NAMES[p.type]}(flags ${p.flags}) ${Buffer.from(p.body).toString("hex")}`);
      if (used < e.b.length) desc.push(`+ ${e.b.length - used} bytes: ${Buffer.from(e.b.subarray(used)).toString("hex")}`);
      console.log(`  feed ${e.c}: ${desc.join("\n          ")}`);
    }
  });
  return 0;
}
