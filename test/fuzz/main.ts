// The fuzz run: replay the saved crash cases, then fuzz, in a worker watched for
// hangs. Options: see test/fuzz/run.mjs. Exit code 1 when a replay or an input fails.

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { type Case, toJson } from "./cases";
import { minimize } from "./minimize";
import { generate, inputSeed } from "./mutate";
import type { Job, Report } from "./worker";

const CRASHES = "test/fuzz/crashes";
/** An input that runs this long without finishing is a hang (the slowest take ~50 ms). */
const HANG_MS = 10_000;

interface Args {
  count: number;
  timeMs: number;
  seed: number;
  board: string;
  save: string;
  replay: boolean;
  fuzz: boolean;
}

function parse(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const time = Number(get("--time") ?? 0);
  const seed = get("--seed") !== undefined ? Number(get("--seed")) : time > 0 ? (Math.random() * 2 ** 32) >>> 0 : 1;
  return {
    count: Number(get("--count") ?? (time > 0 ? 0 : 200_000)),
    timeMs: time * 1000,
    seed,
    board: get("--board") ?? "small",
    save: get("--save") ?? (time > 0 ? CRASHES : "build/fuzz/crashes"),
    replay: !argv.includes("--no-replay"),
    fuzz: !argv.includes("--replay-only"),
  };
}

/** Runs one job; resolves with its reports. A hang ends the worker and is reported as a crash. */
function runJob(workerFile: string, job: Omit<Job, "progress">, onReport: (r: Report) => void): Promise<void> {
  const progress = new SharedArrayBuffer(8);
  const view = new Int32Array(progress);
  Atomics.store(view, 0, -1);
  const worker = new Worker(workerFile, { workerData: { ...job, progress } });
  return new Promise((resolve, reject) => {
    let last = -1;
    let since = performance.now();
    const timer = setInterval(() => {
      const now = Atomics.load(view, 0);
      if (now !== last) {
        last = now;
        since = performance.now();
        return;
      }
      if (performance.now() - since < HANG_MS) return;
      clearInterval(timer);
      void worker.terminate();
      if (job.mode === "fuzz") {
        const input = generate(inputSeed(job.seed, now));
        onReport({
          type: "crash",
          index: now,
          case: {
            what: `hang: input ${now} did not finish within ${HANG_MS / 1000} s`,
            found: `seed ${job.seed} input ${now}, board ${job.board}`,
            board: job.board,
            expect: "pass",
            inputs: [toJson(input)],
          },
        });
        // carry on after the input that hung
        runJob(workerFile, { ...job, start: now + 1, count: job.count > 0 ? job.count - (now + 1 - job.start) : 0 }, onReport).then(resolve, reject);
      } else {
        const expect = (JSON.parse(readFileSync(job.files[now], "utf8")) as Case).expect ?? "pass";
        onReport({ type: "replayed", file: job.files[now], ok: false, expect, what: `hang: did not finish within ${HANG_MS / 1000} s` });
        runJob(workerFile, { ...job, start: now + 1 }, onReport).then(resolve, reject);
      }
    }, 500);
    worker.on("message", onReport);
    worker.on("error", (e) => {
      clearInterval(timer);
      reject(e);
    });
    worker.on("exit", () => {
      clearInterval(timer);
      resolve();
    });
  });
}

/** The kind of failure without its numbers, so one bug is saved once. */
const signature = (what: string) => what.replace(/\d+/g, "N").replace(/-> [0-9a-f.()a-z ]+/g, "").slice(0, 120);

export async function main(argv: string[], cores: Record<string, string>, workerFile: string): Promise<number> {
  if (argv.includes("--minimize")) return minimize(argv[argv.indexOf("--minimize") + 1], cores);
  const a = parse(argv);
  let failed = 0;

  if (a.replay) {
    const files = readdirSync(CRASHES).filter((f) => f.endsWith(".json")).sort().map((f) => path.join(CRASHES, f));
    let passed = 0;
    const job = { mode: "replay" as const, cores, board: a.board, seed: 0, start: 0, count: 0, timeMs: 0, files };
    await runJob(workerFile, job, (r) => {
      if (r.type !== "replayed") return;
      if (r.ok && r.expect === "pass") passed++;
      else if (!r.ok && r.expect === "fail") {
        passed++;
        console.log(`fuzz: known open bug still fails as expected: ${r.file}: ${r.what}`);
      } else if (r.ok) {
        failed++;
        console.log(`fuzz: ${r.file} now passes: the bug is fixed; set "expect": "pass" in it`);
      } else {
        failed++;
        console.log(`fuzz: REPLAY FAILED ${r.file}: ${r.what}`);
      }
    });
    console.log(`fuzz: replayed ${files.length} crash cases from ${CRASHES}/, ${passed} as expected`);
  }

  if (a.fuzz) {
    const seen = new Map<string, number>();
    let inputs = 0;
    let ms = 0;
    let kinds: Record<string, number> = {};
    const what = a.timeMs > 0 ? `${a.timeMs / 1000} s` : `${a.count} inputs`;
    console.log(`fuzz: seed ${a.seed}, board ${a.board}, ${what}`);
    const job = { mode: "fuzz" as const, cores, board: a.board, seed: a.seed, start: 0, count: a.count, timeMs: a.timeMs, files: [] };
    await runJob(workerFile, job, (r) => {
      if (r.type === "done") {
        inputs += r.inputs;
        ms += r.ms;
        kinds = r.kinds;
        return;
      }
      if (r.type !== "crash") return;
      failed++;
      const sig = signature(r.case.what);
      const n = (seen.get(sig) ?? 0) + 1;
      seen.set(sig, n);
      if (n > 1) return; // one file per kind of failure
      mkdirSync(a.save, { recursive: true });
      const file = path.join(a.save, `seed${a.seed}-input${r.index}.json`);
      writeFileSync(file, JSON.stringify(r.case satisfies Case, null, 1) + "\n");
      console.log(`fuzz: FAILED at input ${r.index}: ${r.case.what}\n      saved ${file}`);
    });
    const rate = ms > 0 ? Math.round(inputs / (ms / 1000)) : 0;
    console.log(`fuzz: ${inputs} inputs in ${(ms / 1000).toFixed(1)} s (${rate}/s; ${kinds.events ?? 0} multi-connection, ${kinds.split ?? 0} split-differential; ${kinds.websocket ?? 0} with WebSocket or HTTP connections)`);
    for (const [sig, n] of seen) console.log(`fuzz: ${n} x ${sig}`);
    if (a.timeMs === 0 && a.count > 0 && inputs + failed < a.count) {
      console.log(`fuzz: only ${inputs + failed} of ${a.count} inputs ran`);
      failed++;
    }
    console.log(`fuzz: ${inputs} passed, ${failed} failed`);
  }
  return failed > 0 ? 1 : 0;
}
