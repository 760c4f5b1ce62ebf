// Crash cases: the inputs that broke an invariant, as JSON files in test/fuzz/crashes/.
// A case holds the failing input last, after the few inputs that ran before it on
// the same core (state carries over between inputs only through what clean-up leaves,
// so the history is usually not needed; it is kept so a replay is faithful).
//
//   {
//     "what": "the core trapped: unreachable",     what went wrong when it was found
//     "found": "seed 1234 input 5678, board small",
//     "board": "small",                            which fuzz core: build/fuzz/probe-<board>.wasm
//     "expect": "pass" | "fail",                   "fail": a known open bug (the replay must
//                                                  still fail; flip it once the core is fixed)
//     "note": "...",                               free text: the suspected cause
//     "options": {...},                            HarnessOptions for the replay (optional)
//     "inputs": [ <input>, ... ]
//   }
//   <input> = {"events": [["open",0], ["feed",0,"<hex>"], ["tick",1600], ["backlog",0,N], ["close",0]]}
//           | {"split": "<hex>", "cuts": [[sizes...], ...]}
//   ["open",0,L] and "listener": L open the connection on listener L of the fuzz core
//   (LISTENER in websocket.ts: 1 `protocol websockets`, 2 `protocol http`; 0 when left out)

import { type HarnessOptions } from "./harness";
import { type Event, type Input } from "./mutate";

export interface Case {
  what: string;
  found: string;
  board: string;
  expect: "pass" | "fail";
  note?: string;
  options?: HarnessOptions;
  inputs: unknown[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

export function toJson(input: Input): unknown {
  if (input.kind === "split") {
    return input.listener ? { split: hex(input.stream), cuts: input.cuts, listener: input.listener } : { split: hex(input.stream), cuts: input.cuts };
  }
  return {
    events: input.events.map((e) => {
      switch (e.e) {
        case "open": return e.listener ? ["open", e.c, e.listener] : ["open", e.c];
        case "feed": return ["feed", e.c, hex(e.b)];
        case "tick": return ["tick", e.ms];
        case "backlog": return ["backlog", e.c, e.n];
        case "close": return ["close", e.c];
      }
    }),
  };
}

export function fromJson(j: unknown): Input {
  const o = j as { split?: string; cuts?: number[][]; listener?: number; events?: unknown[][] };
  if (typeof o.split === "string") return { kind: "split", stream: unhex(o.split), cuts: o.cuts ?? [], listener: o.listener };
  const events: Event[] = (o.events ?? []).map((e) => {
    const [name, a, b] = e as [string, number, unknown];
    switch (name) {
      case "open": return { e: "open", c: a, listener: b === undefined ? undefined : Number(b) };
      case "feed": return { e: "feed", c: a, b: unhex(String(b)) };
      case "tick": return { e: "tick", ms: a };
      case "backlog": return { e: "backlog", c: a, n: Number(b) };
      case "close": return { e: "close", c: a };
    }
    throw new Error(`unknown event ${name}`);
  });
  return { kind: "events", events };
}
