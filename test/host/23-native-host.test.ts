// The native host (host/native/main.c, the core through wasm2c on one epoll loop): it
// is built for every board, speaks the same command line as the Node host (so that
// `MIDGE_TEST_BROKER=native` can run this whole suite and the conformance suite against
// it, as `npm test` does), and refuses a bad command line the same way. The protocol
// itself is tested by running those suites against it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ROOT, RawClient, PacketType, closeAll, connectPacket, rawSession, sleep, startCommand, startNative, uid, withTimeout } from "./helpers.js";

const NATIVE = path.join(ROOT, "build", "native");
const boards = readdirSync(path.join(ROOT, "boards")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
const version = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;

/** The `--flag`s a usage text lists at the start of its lines. */
function flags(text: string): string[] {
  return [...text.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]).sort();
}

// Without wasm2c and a C compiler there is no native host (scripts/native.mjs says so);
// under CI there always is.
const skip = !existsSync(path.join(NATIVE, "midge-pi")) && process.env.CI !== "true"
  ? "no build/native/midge-pi (npm run build:native needs wasm2c and gcc)" : false;

test("npm run build:native made a binary for every board", { skip }, () => {
  for (const board of boards) assert.ok(existsSync(path.join(NATIVE, `midge-${board}`)), `build/native/midge-${board}`);
});

test("the native host takes exactly the Node host's flags, except --board (one binary per board)", { skip }, () => {
  const node = spawnSync(process.execPath, [path.join(ROOT, "dist", "midge.mjs"), "--help"], { encoding: "utf8", timeout: 10_000 });
  const native = spawnSync(path.join(NATIVE, "midge-pi"), ["--help"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(native.status, 0);
  assert.deepEqual(flags(native.stdout), flags(node.stdout).filter((f) => f !== "--board"));
  const v = spawnSync(path.join(NATIVE, "midge-pi"), ["--version"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(v.stdout.trim(), version);
});

test("a bad command line exits with status 2 and names the flag", { skip }, () => {
  const bin = path.join(NATIVE, "midge-pi");
  const unknown = spawnSync(bin, ["--no-such-flag"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option '--no-such-flag'/);
  const bad = spawnSync(bin, ["--max-inflight", "ten"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--max-inflight needs a whole number, not 'ten'/);
  const board = spawnSync(bin, ["--board", "mcu"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(board.status, 2);
  assert.match(board.stderr, /holds the pi board's core; for 'mcu' run build\/native\/midge-mcu/);
  const missing = spawnSync(bin, ["--port"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--port needs a value/);
});

test("a limit beyond the board is clamped, with a warning naming it", { skip }, async () => {
  const b = await startNative({ args: ["--board", "mcu", "--max-inflight", "1000"] });
  try {
    const { returnCode } = await rawSession(b); // the clamped core still serves
    assert.equal(returnCode, 0);
    await closeAll();
    assert.match(b.output(), /--max-inflight 1000 is outside what the mcu board allows; using \d+/);
  } finally {
    await b.stop();
  }
});

/** CPU seconds (user + system) `pid` has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

test("out of descriptors, it stops accepting instead of spinning, and accepts again when one is free", { skip, timeout: 30_000 }, async () => {
  // 40 descriptors (soft and hard): about 30 clients, then accept() fails with EMFILE
  const b = await startCommand("sh", ["-c", 'ulimit -n 40 && exec "$0" --port 0', path.join(NATIVE, "midge-pi")]);
  try {
    const first: RawClient[] = [];
    for (let i = 0; i < 45; i++) {
      const raw = await RawClient.open(b); // the kernel completes the handshake either way
      raw.write(connectPacket({ clientId: uid("fd") }));
      first.push(raw);
    }
    await sleep(500);
    const t0 = cpuSeconds(b.proc.pid!);
    await sleep(1000);
    const used = cpuSeconds(b.proc.pid!) - t0;
    assert.ok(used < 0.3, `the broker used ${used.toFixed(2)} s of CPU in 1 s while out of descriptors`);
    assert.match(b.output(), /cannot accept connections: Too many open files; retrying/);
    // the clients beyond the limit wait; freeing ten descriptors lets them in
    const waiting = first.slice(-5);
    for (const raw of first.slice(0, 10)) raw.socket.destroy();
    for (const raw of waiting) await withTimeout(raw.expect(PacketType.CONNACK, 5000), 6000, "CONNACK once a descriptor is free");
    b.assertAlive();
  } finally {
    await closeAll();
    await b.stop();
  }
});
