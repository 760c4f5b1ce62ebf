// The native host (host/native/main.c, the core through wasm2c on one epoll loop): it
// is built for every board and speaks the same command line as the Node host (so that
// `MIDGE_TEST_BROKER=native` can run this whole suite and the conformance suite against
// it, as `npm test` does; 26-flags.test.ts checks both hosts' answers to the same
// arguments). The protocol itself is tested by running those suites against it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ROOT, RawClient, PacketType, closeAll, connectPacket, sleep, startCommand, uid, withTimeout } from "./helpers.js";

const NATIVE = path.join(ROOT, "build", "native");
const boards = readdirSync(path.join(ROOT, "boards")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));

// Without wasm2c and a C compiler there is no native host (scripts/native.mjs says so);
// under CI there always is.
const skip = !existsSync(path.join(NATIVE, "midge-pi")) && process.env.CI !== "true"
  ? "no build/native/midge-pi (npm run build:native needs wasm2c and gcc)" : false;

test("npm run build:native made a binary for every board", { skip }, () => {
  for (const board of boards) assert.ok(existsSync(path.join(NATIVE, `midge-${board}`)), `build/native/midge-${board}`);
});

test("--board names only the binary's own board (one binary per board)", { skip }, () => {
  const board = spawnSync(path.join(NATIVE, "midge-pi"), ["--board", "mcu"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(board.status, 2);
  assert.match(board.stderr, /^midge: this binary holds the pi board's core; for 'mcu' run build\/native\/midge-mcu\n/);
  const own = spawnSync(path.join(NATIVE, "midge-mcu"), ["--board", "mcu", "--version"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(own.status, 0);
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
