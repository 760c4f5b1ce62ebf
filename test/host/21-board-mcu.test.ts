// The mcu board (one 64 KiB page of linear memory) hosted three ways, each a real
// broker on a loopback port driven by real clients:
//   - in the Node host (`--board mcu`);
//   - with no JavaScript at all: wasm2c + gcc + boards/mcu/main.c (POSIX sockets, poll);
//   - with no WebAssembly: the wasm2js script for Espruino, under `node --jitless`.
// The C build also shows the board's promise: 8 clients with 64 subscriptions among
// them, and 16 retained messages.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type Broker, ROOT, connect, publish, startBroker, startCommand, subscribe, uid, which, withTimeout } from "./helpers.js";
import { smoke } from "./smoke.js";

const cBinary = path.join(ROOT, "build", "mcu-c", "midge-mcu");
const script = path.join(ROOT, "dist", "midge-mcu-espruino.cjs");
const PUB = which("mosquitto_pub");
const SUB = which("mosquitto_sub");
const noMosquitto = PUB && SUB ? false : "mosquitto_pub/mosquitto_sub not installed (CI installs mosquitto-clients)";
const noCompiler = which("wasm2c") && which("gcc") ? false : "wasm2c or gcc missing (apt-get install -y wabt gcc; CI installs them)";

/** mosquitto_sub waiting for `count` messages while mosquitto_pub sends them. */
async function mosquittoRoundTrip(b: Broker, qos: number): Promise<void> {
  const topic = uid("mosq");
  const common = ["-h", b.host, "-p", String(b.port), "-q", String(qos), "-t", topic];
  const sub = spawn(SUB!, [...common, "-C", "2", "-W", "10", "-v"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  sub.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number>((resolve) => sub.once("close", (c) => resolve(c ?? -1)));
  // mosquitto_sub has no "subscribed" signal: publish until the first message lands
  for (let i = 0; i < 50 && out === ""; i++) {
    spawnSync(PUB!, [...common, "-m", "first"], { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 100));
  }
  spawnSync(PUB!, [...common, "-m", "second"], { timeout: 5000 });
  assert.equal(await withTimeout(closed, 12_000, "mosquitto_sub"), 0, out);
  assert.match(out, new RegExp(`${topic} first`));
}

function hosted(name: string, start: () => Promise<Broker>, skip: string | false, more?: (b: () => Broker) => void) {
  describe(name, { skip }, () => {
    let broker: Broker | undefined;
    before(async () => {
      broker = await start();
    });
    after(async () => {
      await broker?.stop();
    });
    test("smoke: connect, subscribe, QoS 1 and 2 round trips, retained, will (mqtt client)", { timeout: 30_000 }, () =>
      smoke(broker!),
    );
    test("mosquitto_pub to mosquitto_sub, QoS 2", { timeout: 30_000, skip: noMosquitto }, () => mosquittoRoundTrip(broker!, 2));
    more?.(() => broker!);
  });
}

hosted("mcu core in the Node host (--board mcu)", () => startBroker({ args: ["--board", "mcu"] }), false);

hosted(
  "mcu core in C: wasm2c + gcc + boards/mcu/main.c, no JavaScript",
  async () => {
    const r = spawnSync("sh", [path.join(ROOT, "boards", "mcu", "build.sh")], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, `boards/mcu/build.sh failed:\n${r.stdout}\n${r.stderr}`);
    return startCommand(cBinary, ["--port", "0"]);
  },
  noCompiler,
  (broker) => {
    test("8 clients with 64 subscriptions among them all receive one publish", { timeout: 30_000 }, async () => {
      const t = uid("eight");
      const clients = await Promise.all(Array.from({ length: 8 }, () => connect(broker())));
      for (const [i, c] of clients.entries()) {
        const filters = Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`${t}/${i}/${k}/#`, 1 as const]));
        filters[`${t}/all`] = 1;
        delete filters[`${t}/${i}/7/#`]; // 8 filters each: 64 in all
        assert.deepEqual(await subscribe(c, filters), Array(8).fill(1));
      }
      await publish(clients[0], `${t}/all`, "to everyone", { qos: 1 });
      for (const c of clients) assert.equal((await c.inbox.wait(1, 5000, `${t}/all`))[0].payload.toString(), "to everyone");
      await Promise.all(clients.map((c) => c.end()));
    });

    test("16 retained messages are kept and delivered to a new subscriber", { timeout: 30_000 }, async () => {
      const t = uid("kept");
      const pub = await connect(broker());
      for (let i = 0; i < 16; i++) await publish(pub, `${t}/${i}`, `value ${i}`, { qos: 1, retain: true });
      const late = await connect(broker());
      await subscribe(late, `${t}/#`, 1);
      const got = await late.inbox.wait(16);
      assert.deepEqual(got.map((m) => m.payload.toString()).sort(), Array.from({ length: 16 }, (_, i) => `value ${i}`).sort());
      assert.ok(got.every((m) => m.retain));
      for (let i = 0; i < 16; i++) await publish(pub, `${t}/${i}`, "", { qos: 1, retain: true });
      await Promise.all([pub.end(), late.end()]);
    });
  },
);

hosted(
  "mcu core as plain JavaScript (wasm2js, Espruino host) under node --jitless: no WebAssembly",
  () => {
    assert.ok(existsSync(script), `${script} is missing: run npm run build`);
    return startCommand(process.execPath, ["--jitless", script, "--port", "0"]);
  },
  false,
  (broker) => {
    test("the runtime really had no WebAssembly", () => {
      assert.match(broker().output(), /no WebAssembly\) listening on/);
    });
  },
);

// The mcu board carries ACLs but no config file parser: its rules come with --acl-file,
// the same option on the Node host (--board mcu) and on the C build.
describe("mcu: an ACL file given with --acl-file", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "midge-mcu-acl-"));
  const acl = path.join(dir, "acl");
  writeFileSync(acl, "topic read sensors/#\ntopic write sensors/+/state\npattern readwrite clients/%c/#\n");
  after(() => rmSync(dir, { recursive: true, force: true }));
  const starts: Array<[string, () => Promise<Broker>, string | false]> = [
    ["Node host, --board mcu", () => startBroker({ args: ["--board", "mcu", "--acl-file", acl] }), false],
    ["C build", () => startCommand(cBinary, ["--port", "0", "--acl-file", acl]), noCompiler],
  ];
  for (const [name, start, skip] of starts) {
    test(`${name}: only what the rules allow is published and delivered`, { timeout: 30_000, skip }, async () => {
      if (name === "C build" && !existsSync(cBinary)) {
        const r = spawnSync("sh", [path.join(ROOT, "boards", "mcu", "build.sh")], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
        assert.equal(r.status, 0, r.stderr);
      }
      const b = await start();
      try {
        const s = await connect(b, { clientId: "s1", protocolVersion: 5 });
        assert.deepEqual(await subscribe(s, "#", 1), [1]);
        const p = await connect(b, { clientId: "p1", protocolVersion: 5 });
        const denied = await p.client.publishAsync("other/x", "no", { qos: 1 }).catch((e: { code?: number }) => ({ reasonCode: e.code }));
        assert.equal((denied as { reasonCode?: number }).reasonCode, 0x87);
        await p.client.publishAsync("sensors/t1/state", "21", { qos: 1 });
        await s.inbox.waitTopic("sensors/t1/state");
        assert.deepEqual(s.inbox.messages.map((m) => m.topic), ["sensors/t1/state"]);
        await s.end();
        await p.end();
      } finally {
        await b.stop();
      }
    });
  }
  test("C build: a bad ACL line stops it with the file and line (status 2)", { timeout: 30_000, skip: noCompiler }, () => {
    if (!existsSync(cBinary)) return;
    const bad = path.join(dir, "bad.acl");
    writeFileSync(bad, "topic read a\ntopik b\n");
    const r = spawnSync(cBinary, ["--port", "0", "--acl-file", bad], { encoding: "utf8", timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `midge: ${bad}:2: not a user, topic or pattern line: 'topik b'\n`);
  });
});
