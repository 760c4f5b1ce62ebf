// Interoperability with Debian's mosquitto_pub / mosquitto_sub (package
// mosquitto-clients): 1 MB binary payloads, live and retained, MQTT 3.1.1 and 3.1.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connect, publish, randomBytes, sleep, subscribe, uid, useBroker, which, withTimeout } from "./helpers.js";

const PUB = which("mosquitto_pub");
const SUB = which("mosquitto_sub");
const skip = PUB && SUB ? false : "mosquitto_pub/mosquitto_sub not installed (apt-get install -y mosquitto-clients; CI installs them)";
const T = { timeout: 60_000, skip };

interface Run {
  code: Promise<number>;
  stdout: () => Buffer;
  stderr: () => string;
  exited: () => boolean;
  kill: () => void;
}

function run(cmd: string, args: string[]): Run {
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  let err = "";
  let done = false;
  p.stdout.on("data", (d: Buffer) => out.push(d));
  p.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = new Promise<number>((resolve) =>
    p.once("close", (c) => {
      done = true;
      resolve(c ?? -1);
    }),
  );
  p.once("error", (e) => (err += String(e)));
  return {
    code,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited: () => done,
    kill: () => {
      if (!done) p.kill("SIGKILL");
    },
  };
}

const running: Run[] = [];
function start(cmd: string, args: string[]): Run {
  const r = run(cmd, args);
  running.push(r);
  return r;
}

async function ok(r: Run, what: string, ms = 30_000): Promise<void> {
  const code = await withTimeout(r.code, ms, what);
  assert.equal(code, 0, `${what} exited with ${code}: ${r.stderr()}`);
}

describe("mosquitto_pub / mosquitto_sub", () => {
  const broker = useBroker();
  let dir = "";
  let file = "";
  let data: Buffer;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "midge-mosq-clients-"));
    data = randomBytes(1024 * 1024);
    file = path.join(dir, "payload.bin");
    writeFileSync(file, data);
  });
  after(() => {
    for (const r of running) r.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const addr = () => ["-h", broker().host, "-p", String(broker().port)];

  /**
   * Starts `mosquitto_sub -C 1 -N`, then publishes with `publishOnce` every 300 ms until
   * the subscriber has its message (mosquitto_sub says nothing when its SUBACK arrives,
   * so the first publish may come before the subscription). Returns what it printed.
   */
  async function subscribeAndPublish(topic: string, version: string, publishOnce: () => Promise<void>) {
    const sub = start(SUB!, [...addr(), "-V", version, "-q", "1", "-t", topic, "-C", "1", "-N", "-i", uid("msub")]);
    for (let i = 0; i < 40 && !sub.exited(); i++) {
      await publishOnce();
      await Promise.race([sub.code, sleep(300)]);
    }
    await ok(sub, "mosquitto_sub", 10_000);
    return sub.stdout();
  }

  for (const version of ["mqttv311", "mqttv31"]) {
    test(`a 1 MB binary file round-trips mosquitto_pub -f -> mosquitto_sub -C 1 -N (${version})`, T, async () => {
      const topic = uid("mosq") + "/file";
      const got = await subscribeAndPublish(topic, version, () =>
        ok(start(PUB!, [...addr(), "-V", version, "-q", "1", "-t", topic, "-f", file, "-i", uid("mpub")]), "mosquitto_pub"),
      );
      assert.equal(got.length, data.length);
      assert.ok(got.equals(data), "bytes differ");
    });
  }

  test("a retained 1 MB binary file from mosquitto_pub -r reaches a later mosquitto_sub", T, async () => {
    const topic = uid("mosqret") + "/file";
    await ok(start(PUB!, [...addr(), "-q", "1", "-r", "-t", topic, "-f", file, "-i", uid("mpub")]), "mosquitto_pub -r");
    const sub = start(SUB!, [...addr(), "-q", "1", "-t", topic, "-C", "1", "-N", "-i", uid("msub")]);
    await ok(sub, "mosquitto_sub");
    assert.ok(sub.stdout().equals(data), "bytes differ");
    // clear it (mosquitto_pub -r -n sends a zero-length retained message)
    await ok(start(PUB!, [...addr(), "-q", "1", "-r", "-n", "-t", topic, "-i", uid("mpub")]), "mosquitto_pub -r -n");
  });

  test("mosquitto_pub -f -> mqtt (npm) subscriber, byte-identical", T, async () => {
    const topic = uid("mosq2npm") + "/file";
    const sub = await connect(broker());
    await subscribe(sub, topic, 2);
    await ok(start(PUB!, [...addr(), "-q", "2", "-t", topic, "-f", file, "-i", uid("mpub")]), "mosquitto_pub");
    const [m] = await sub.inbox.wait(1, 30_000);
    assert.equal(m.qos, 2);
    assert.ok(m.payload.equals(data), "bytes differ");
  });

  test("mqtt (npm) publisher -> mosquitto_sub, byte-identical", T, async () => {
    const topic = uid("npm2mosq") + "/file";
    const pub = await connect(broker());
    const got = await subscribeAndPublish(topic, "mqttv311", async () => {
      await publish(pub, topic, data, { qos: 1 });
    });
    assert.ok(got.equals(data), "bytes differ");
  });
});
