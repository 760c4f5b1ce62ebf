// The fuzz loop and the crash replays, in a worker thread so that test/fuzz/run.mjs
// can stop a core that hangs (an endless loop inside WebAssembly cannot be
// interrupted from the same thread) and still name the input that hung it: the
// worker publishes the index of the input it is running in shared memory.

import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { type Case, fromJson, toJson } from "./cases";
import { CLEAN_EVERY, Failure, Harness, type HarnessOptions } from "./harness";
import { type Input, generate, inputSeed, usesWebSocket } from "./mutate";

export interface Job {
  mode: "fuzz" | "replay";
  /** fuzz core files by board name */
  cores: Record<string, string>;
  board: string;
  seed: number;
  /** first input index and how many (fuzz), or the case files (replay) */
  start: number;
  count: number;
  /** stop after this many milliseconds (0: no limit) */
  timeMs: number;
  files: string[];
  /** [0] = index of the input running now, [1] = inputs done */
  progress: SharedArrayBuffer;
}

export type Report =
  | { type: "crash"; case: Case; index: number }
  | { type: "replayed"; file: string; ok: boolean; expect: "pass" | "fail"; what: string }
  | { type: "done"; inputs: number; ms: number; kinds: Record<string, number> };

const job = workerData as Job;
const progress = new Int32Array(job.progress);
const post = (r: Report) => parentPort!.postMessage(r);

const modules = new Map<string, WebAssembly.Module>();
function harness(board: string, options?: HarnessOptions): Harness {
  let m = modules.get(board);
  if (!m) {
    const file = job.cores[board];
    if (!file) throw new Error(`no fuzz core for board ${board}`);
    m = new WebAssembly.Module(readFileSync(file));
    modules.set(board, m);
  }
  return new Harness(m, options);
}


function fuzz(): void {
  const t0 = performance.now();
  const deadline = job.timeMs > 0 ? t0 + job.timeMs : Infinity;
  let h = harness(job.board);
  const history: Input[] = [];
  const kinds: Record<string, number> = { events: 0, split: 0, websocket: 0 };
  let done = 0;
  for (let i = job.start; job.count <= 0 || i < job.start + job.count; i++) {
    if ((i & 255) === 0 && performance.now() > deadline) break;
    Atomics.store(progress, 0, i);
    const input = generate(inputSeed(job.seed, i));
    kinds[input.kind]++;
    if (usesWebSocket(input)) kinds.websocket++;
    try {
      h.run(input);
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      post({
        type: "crash",
        index: i,
        case: {
          what: error.message,
          found: `seed ${job.seed} input ${i}, board ${job.board}`,
          board: job.board,
          expect: "pass",
          note: `core log before it: ${error.logTail.join(" | ")}`,
          inputs: [...history, input].map(toJson),
        },
      });
      h = harness(job.board); // its state is suspect (or gone, after a trap)
      history.length = 0;
      continue;
    }
    // the inputs since the last clean-up: a replay from a fresh core starts there
    history.push(input);
    if (h.count % CLEAN_EVERY === 0) history.length = 0;
    done++;
    Atomics.store(progress, 1, done);
  }
  post({ type: "done", inputs: done, ms: performance.now() - t0, kinds });
}

function replay(): void {
  const t0 = performance.now();
  for (let n = job.start; n < job.files.length; n++) {
    const file = job.files[n];
    Atomics.store(progress, 0, n);
    const c = JSON.parse(readFileSync(file, "utf8")) as Case;
    let what = "";
    try {
      const h = harness(c.board ?? "small", c.options);
      for (const input of c.inputs) h.run(fromJson(input));
      h.settle(); // clean up and check every table, whatever the input count
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      what = error.message;
    }
    post({ type: "replayed", file, ok: what === "", expect: c.expect ?? "pass", what });
  }
  post({ type: "done", inputs: job.files.length, ms: performance.now() - t0, kinds: {} });
}

if (job.mode === "fuzz") fuzz();
else replay();
