// Churn: 10,000 connections open and close — cleanly, abruptly, in the middle of a
// packet, before CONNECT is complete, with wills, with persistent sessions, with
// garbage — and everything comes back to where it started.
//
// Twice: against the broker process (it stays up, every will arrives, a fresh client
// is served), and against the same host code run in this process (host/core.ts with
// the TCP listener over real loopback sockets), where the core's counters and the
// host's per-connection state can be read: they return to their starting values.
// (The fuzzer, test/fuzz/, checks every fixed table of the core row by row.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Core, Stat } from "../../host/core";
import { listenTcp, type TcpListener } from "../../host/listeners/tcp";
import {
  HOST, ROOT, connect, connectPacket, disconnect, publishPacket, startBroker, subscribe, subscribePacket, uid,
  type Broker, type TestClient,
} from "./helpers.js";

const TOTAL = Number(process.env.CHURN_TOTAL ?? 10_000);
const CONCURRENCY = 64;
const PERSISTENT_IDS = 50;

type Kind = "clean" | "abrupt" | "mid-packet" | "mid-connect" | "will" | "persistent" | "garbage" | "silent";
const KINDS: Kind[] = ["clean", "clean", "abrupt", "mid-packet", "mid-connect", "will", "persistent", "garbage", "silent", "abrupt"];

interface Tally {
  byKind: Record<string, number>;
  wills: number;
  failures: string[];
}

/** One connection of the given kind; resolves when its socket is closed. */
function churnOne(port: number, kind: Kind, i: number, prefix: string, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.setNoDelay(true);
    let got = Buffer.alloc(0);
    let acked = false;
    const timer = setTimeout(() => {
      tally.failures.push(`${kind} #${i}: no progress in 10 s, acked ${acked} (got ${got.toString("hex").slice(0, 40)})`);
      s.destroy();
    }, 10_000);
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    const connectFor = (k: Kind) => {
      if (k === "will") {
        return connectPacket({ clientId: `${prefix}-w${i}`, keepalive: 0, will: { topic: `${prefix}/will/${i}`, payload: "gone" } });
      }
      if (k === "persistent") return connectPacket({ clientId: `${prefix}-p${i % PERSISTENT_IDS}`, clean: false, keepalive: 0 });
      return connectPacket({ clientId: `${prefix}-c${i}`, keepalive: 0 });
    };
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (acked || got.length < 4) return;
      acked = true;
      if (got[0] !== 0x20 || got[3] !== 0) {
        tally.failures.push(`${kind} #${i}: CONNACK ${got.subarray(0, 4).toString("hex")}`);
        s.destroy();
        return;
      }
      switch (kind) {
        case "clean":
          s.write(Buffer.concat([
            subscribePacket(1, [[`${prefix}/c/${i}`, 1]]),
            publishPacket({ topic: `${prefix}/c/${i}`, payload: "x", qos: 1, id: 2 }),
            disconnect(),
          ]));
          return;
        case "abrupt":
        case "will":
          s.destroy();
          return;
        case "mid-packet": {
          const p = publishPacket({ topic: `${prefix}/m/${i}`, payload: Buffer.alloc(300, 1), qos: 1, id: 1 });
          s.write(p.subarray(0, 1 + (i % (p.length - 1))), () => s.destroy());
          return;
        }
        case "persistent":
          s.write(subscribePacket(1, [[`${prefix}/p/#`, 1]]));
          if (i % 2 === 0) s.write(disconnect());
          else setImmediate(() => s.destroy());
          return;
      }
    });
    s.once("connect", () => {
      switch (kind) {
        case "mid-connect": {
          const c = connectFor("clean");
          s.write(c.subarray(0, 1 + (i % (c.length - 1))), () => s.destroy());
          return;
        }
        case "garbage":
          s.write(Buffer.from(`GET /${i} HTTP/1.1\r\n\r\n`)); // the broker closes it
          return;
        case "silent":
          s.end();
          return;
        default:
          s.write(connectFor(kind));
      }
    });
  });
}

async function churn(port: number, prefix: string): Promise<Tally> {
  const tally: Tally = { byKind: {}, wills: 0, failures: [] };
  let next = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const i = next++;
      const kind = KINDS[i % KINDS.length];
      tally.byKind[kind] = (tally.byKind[kind] ?? 0) + 1;
      await churnOne(port, kind, i, prefix, tally);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // end the persistent sessions
  const ends: Array<Promise<void>> = [];
  for (let k = 0; k < PERSISTENT_IDS; k++) {
    ends.push(new Promise((resolve) => {
      const s = net.connect({ host: HOST, port }, () => s.write(Buffer.concat([connectPacket({ clientId: `${prefix}-p${k}`, clean: true }), disconnect()])));
      s.resume(); // read (and drop) the CONNACK, so the close is seen
      s.on("error", () => {});
      s.on("close", () => resolve());
    }));
  }
  await Promise.all(ends);
  return tally;
}

/** Waits until `cond` holds (polling), at most `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function wellServed(port: number): Promise<void> {
  const b = { host: HOST, port } as Broker;
  const topic = uid("after-churn");
  const sub = await connect(b);
  await subscribe(sub, topic, 1);
  const pub = await connect(b);
  await pub.client.publishAsync(topic, "still here", { qos: 1 });
  await sub.inbox.wait(1);
  await sub.end();
  await pub.end();
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe("churn: 10,000 connections against the broker process", () => {
  let broker: Broker;
  let watcher: TestClient;
  const prefix = uid("churn");
  before(async () => {
    broker = await startBroker();
    watcher = await connect(broker, {}, { keep: true });
    await subscribe(watcher, `${prefix}/will/#`, 1);
  });
  after(async () => {
    await watcher?.end();
    await broker?.stop();
  });

  test("the broker stays up, every will arrives, and a fresh client is served", { timeout: 180_000 }, async () => {
    const rssBefore = rssMiB(broker.proc.pid!);
    const t0 = Date.now();
    const tally = await churn(broker.port, prefix);
    const ms = Date.now() - t0;
    assert.deepEqual(tally.failures.slice(0, 8), []);
    const wills = tally.byKind.will;
    await watcher.inbox.wait(wills, 15_000);
    assert.equal(watcher.inbox.messages.length, wills, "one will per abrupt will connection, no more");
    await wellServed(broker.port);
    broker.assertAlive();
    const rssAfter = rssMiB(broker.proc.pid!);
    console.log(`# churn (process): ${TOTAL} connections in ${ms} ms; RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB`);
  });
});

describe("churn: 10,000 connections against the host code in this process", () => {
  let core: Core;
  let listener: TcpListener;
  const errors: string[] = [];

  before(async () => {
    const wasm = readFileSync(path.join(ROOT, "build", "midge-pi.wasm"));
    core = await Core.load(new Uint8Array(wasm), {
      logLevel: 1,
      log: (level, text) => {
        if (level === 0) errors.push(text);
      },
      fatal: (e) => {
        throw e;
      },
    });
    core.startTicking();
    listener = await listenTcp(core, HOST, 0, () => {});
  });
  after(async () => {
    core?.stopTicking();
    await listener?.close();
  });

  /** The counters that are tables' sizes, and the host's per-connection entries. */
  function sizes(): Record<string, number> {
    const conns = (core as unknown as { conns: unknown[] }).conns;
    return {
      connectionsOpen: core.stat(Stat.ConnectionsOpen),
      clientsConnected: core.stat(Stat.ClientsConnected),
      sessions: core.stat(Stat.SessionsStored),
      subscriptions: core.stat(Stat.Subscriptions),
      retained: core.stat(Stat.RetainedMessages),
      hostConnections: conns.filter((c) => c !== undefined).length,
    };
  }

  test("the core's tables and the host's connection map return to their starting size", { timeout: 180_000 }, async () => {
    const start = sizes();
    const pages = core.memoryPages;
    const t0 = Date.now();
    const tally = await churn(listener.port, uid("inproc"));
    const ms = Date.now() - t0;
    assert.deepEqual(tally.failures.slice(0, 8), []);
    // sockets the broker closed may take a moment to report "close"
    await until(() => JSON.stringify(sizes()) === JSON.stringify(start), 10_000, `sizes back to ${JSON.stringify(start)}, now ${JSON.stringify(sizes())}`);
    assert.deepEqual(sizes(), start);
    assert.equal(core.memoryPages, pages, "linear memory did not grow");
    assert.deepEqual(errors, [], "no error lines from the core or the binding");
    await wellServed(listener.port);
    await until(() => JSON.stringify(sizes()) === JSON.stringify(start), 10_000, "sizes back after a well-served client");
    console.log(`# churn (in-process): ${TOTAL} connections in ${ms} ms; sizes ${JSON.stringify(start)} before and after`);
  });
});
