// A bridge's queue across restarts (issue 15; README "Bridges"): with persistence on,
// QoS 1 and 2 messages accepted for upstream while the link is down wait in the bridge's
// local session, survive a SIGTERM or a kill -9 of Midge, and reach the upstream once the
// link is up again: QoS 2 exactly once. The upstream is a real Mosquitto behind a TCP
// relay the test opens only when it wants the link to work. Also: a Mosquitto bridge
// (try_private) connecting to Midge sees nothing twice.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import {
  BROKER_KIND, HOST, closeAll, connect, freePort, publish, sleep, startBroker, startMosquittoConf, subscribe, which,
  withTimeout, type Broker,
} from "./helpers.js";

const skip = BROKER_KIND === "mosquitto" ? "Midge's persistence keeps the bridge's queue (Mosquitto's own is another test)"
  : which("mosquitto") === null && !process.env.CI ? "mosquitto is not installed" : false;
const TMP = mkdtempSync(path.join(os.tmpdir(), "midge-bridge-"));
after(async () => {
  await closeAll();
  rmSync(TMP, { recursive: true, force: true });
});

/** A TCP relay from `port` to the upstream; `close` ends it and every link through it. */
async function relay(port: number, upstream: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(upstream, HOST);
    for (const s of [a, b]) { sockets.add(s); s.on("error", () => {}); s.on("close", () => sockets.delete(s)); }
    a.pipe(b);
    b.pipe(a);
  });
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
  return {
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function upstream(name: string): Promise<Broker> {
  const port = await freePort();
  const conf = path.join(TMP, `${name}-up.conf`);
  writeFileSync(conf, `listener ${port} ${HOST}\nallow_anonymous true\nlog_dest stderr\nlog_type all\n`);
  return startMosquittoConf(conf, port);
}

function midgeConf(name: string, lines: string[]): string {
  const dir = path.join(TMP, name);
  const conf = path.join(TMP, `${name}.conf`);
  writeFileSync(conf, [`persistence true`, `persistence_location ${dir}/`, ...lines].join("\n") + "\n");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return conf;
}

describe("a bridge's queue across a restart of Midge", { skip }, () => {
  for (const stop of ["SIGTERM", "SIGKILL"] as const) {
    test(`[MQTT-4.3.3-2] QoS 1 and 2 accepted while the link is down, then a ${stop}: delivered upstream after the restart, QoS 2 exactly once`, async () => {
      const up = await upstream(`restart-${stop}`);
      const sub = await connect(up, { clientId: `far-${stop}`, clean: false }, { keep: true });
      await subscribe(sub, "q/#", 2);
      const relayPort = await freePort();
      const conf = midgeConf(`restart-${stop}`, [
        "sys_interval 1", "connection up", `address ${HOST}:${relayPort}`, "topic q/# out 2", "restart_timeout 1 1", "notifications false",
      ]);
      let local = await startBroker({ args: ["-c", conf] });
      try {
        const pub = await connect(local, { clientId: `near-${stop}` });
        const sent: string[] = [];
        for (let i = 0; i < 20; i++) {
          await publish(pub, "q/one", `one-${i}`, { qos: 1 });
          await publish(pub, "q/two", `two-${i}`, { qos: 2 });
          sent.push(`one-${i}`, `two-${i}`);
        }
        await pub.end();
        await sleep(300); // with SIGKILL: the records are written (not synced) before the acknowledgements went out
        if (stop === "SIGTERM") await local.stop();
        else {
          local.proc.kill("SIGKILL");
          await withTimeout(new Promise((r) => local.proc.once("exit", r)), 5000, "exit after SIGKILL");
        }
        local = await startBroker({ args: ["-c", conf] });
        assert.match(local.output(), /restored .*queued messages/);
        const link = await relay(relayPort, up.port);
        try {
          await sub.inbox.until((m) => m.length >= sent.length, 15000,
            `the ${sent.length} messages upstream; local log:\n${local.output().slice(-3000)}\n`);
          await sleep(500); // a duplicate would come now
          const got = sub.inbox.messages.map((m) => m.payload.toString());
          for (const p of sent) {
            const n = got.filter((g) => g === p).length;
            if (p.startsWith("two-")) assert.equal(n, 1, `${p} arrived ${n} times (QoS 2: exactly once)`);
            else assert.ok(n >= 1, `${p} never arrived`);
          }
          assert.match(local.output(), /bridge up: connected to/);
          // $SYS says so too (midge/bridges/{configured,connected}, every sys_interval)
          const watcher = await connect(local);
          await subscribe(watcher, "$SYS/broker/midge/bridges/#", 0);
          await watcher.inbox.until((m) => m.some((x) => x.topic.endsWith("/connected") && x.payload.toString() === "1") &&
            m.some((x) => x.topic.endsWith("/configured") && x.payload.toString() === "1"), 5000, "$SYS bridges configured 1, connected 1");
        } finally {
          await link.close();
        }
      } finally {
        await local.stop();
        await sub.end();
        await up.stop();
      }
    });
  }
});

describe("a Mosquitto bridge connecting to Midge (try_private)", { skip: BROKER_KIND === "mosquitto" ? "Midge is the upstream here" : skip }, () => {
  test("topic room/# both 2: a message published on either side arrives once on each side, none comes back", async () => {
    const midge = await startBroker();
    const port = await freePort();
    const conf = path.join(TMP, "mosq-local.conf");
    writeFileSync(conf, [`listener ${port} ${HOST}`, "allow_anonymous true", "log_dest stderr", "log_type all",
      "connection up", `address ${HOST}:${midge.port}`, "topic room/# both 2"].join("\n") + "\n");
    const mosq = await startMosquittoConf(conf, port);
    try {
      await withTimeout((async () => { while (!/connected \(MQTT 3\.1\.1 bridge/.test(midge.output())) await sleep(50); })(), 10000,
        `the bridge connected to Midge:\n${midge.output()}`);
      const far = await connect(midge);
      const near = await connect(mosq);
      await subscribe(far, "room/#", 2);
      await subscribe(near, "room/#", 2);
      await sleep(300);
      const a = await connect(mosq);
      await publish(a, "room/a", "from the near side", { qos: 2 });
      const b = await connect(midge);
      await publish(b, "room/b", "from the far side", { qos: 2 });
      await sleep(1500);
      for (const c of [far, near]) {
        assert.deepEqual(c.inbox.messages.map((m) => `${m.topic} ${m.payload}`).sort(), ["room/a from the near side", "room/b from the far side"]);
      }
    } finally {
      await mosq.stop();
      await midge.stop();
    }
  });
});

describe("a bridge's keep-alive", { skip }, () => {
  test("[MQTT-3.2.2-21] MQTT 5: the upstream's Server Keep Alive (5 s) paces the PINGREQs, not keepalive_interval (60 s): an idle link stays up", async () => {
    const up = await startBroker({ args: ["--max-keepalive", "5"] });
    const conf = midgeConf("keepalive", ["connection up", `address ${HOST}:${up.port}`, "topic x/# out 1",
      "bridge_protocol_version mqttv50", "keepalive_interval 60"]);
    const local = await startBroker({ args: ["-c", conf] });
    try {
      await withTimeout((async () => { while (!/bridge up: connected/.test(local.output())) await sleep(50); })(), 10000,
        `the bridge connected:\n${local.output()}`);
      await sleep(16_000); // past 1.5 × 5 s twice: without a PINGREQ every 5 s the upstream closes the link
      assert.doesNotMatch(local.output(), /bridge up: connection to .* lost/, local.output());
      assert.equal(local.output().match(/bridge up: connected/g)?.length, 1, local.output());
    } finally {
      await local.stop();
      await up.stop();
    }
  });
});
