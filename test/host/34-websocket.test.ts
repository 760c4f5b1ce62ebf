// MQTT over WebSockets (`protocol websockets` on a listener): the HTTP upgrade and RFC 6455
// framing are the core's (assembly/ws/), so both hosts must answer the same. `mqtt` (npm)
// over ws:// with MQTT 3.1.1 and 5.0 at every QoS and a 1 MiB message; raw sockets for
// what a library would not send (many packets in one frame, a packet spread over tiny
// continuation frames with a ping between them, the close handshake) and for hostile
// input (unmasked frames, control frames over 125 bytes or fragmented, lengths of 2^63 and
// 2^64 - 1, bad UTF-8 and bad codes in a close frame, reserved opcodes, bad upgrades):
// only that connection closes, with the close code or HTTP status RFC 6455 asks for; a
// client connected before it stays connected, and a new one is served. The same
// upgrades go to the Debian mosquitto too; and a headless Chromium runs mqtt's browser
// bundle against the broker when it is installed (.ci/run installs it).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { HOST, PacketType, ROOT, connectPacket, disconnect, freePort, pingreq, publishPacket, splitPackets, startBroker,
  startMosquittoConf, subscribePacket, uid, which, type Broker } from "./helpers.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-ws-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A client frame (masked unless told otherwise); `length` overrides the length field. */
function frame(opcode: number, payload: Buffer, o: { fin?: boolean; mask?: boolean; length?: bigint } = {}): Buffer {
  const fin = o.fin ?? true, masked = o.mask ?? true;
  const len = o.length ?? BigInt(payload.length);
  let head: Buffer;
  if (len < 126n) head = Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | Number(len)]);
  else if (len < 65536n) { head = Buffer.alloc(4); head[0] = (fin ? 0x80 : 0) | opcode; head[1] = (masked ? 0x80 : 0) | 126; head.writeUInt16BE(Number(len), 2); }
  else { head = Buffer.alloc(10); head[0] = (fin ? 0x80 : 0) | opcode; head[1] = (masked ? 0x80 : 0) | 127; head.writeBigUInt64BE(len, 2); }
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([head, key, body]);
}
const binary = (b: Buffer, o = {}) => frame(2, b, o);
/** A close frame's payload: the code, then the reason's bytes. */
const closeBody = (code: number, reason: number[] = []) => Buffer.from([code >> 8, code & 0xff, ...reason]);

interface ServerFrame { opcode: number; payload: Buffer }

/** A raw WebSocket connection: the upgrade, then frames in and out. */
class RawWs {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  status = "";
  headers = "";
  constructor(readonly sock: net.Socket) {
    sock.on("data", (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    sock.on("close", () => { this.closed = true; this.wake(); });
    sock.on("error", () => {});
  }
  private wake(): void { for (const w of this.waiters.splice(0)) w(); }
  private async until<T>(take: () => T | null, what: string, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const got = take();
      if (got !== null) return got;
      if (this.closed) throw new Error(`closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
  /** The HTTP answer to the request written: its status line and headers. */
  async answer(): Promise<string> {
    return this.until(() => {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return null;
      const text = this.buf.subarray(0, end).toString("latin1");
      this.buf = this.buf.subarray(end + 4);
      this.status = text.split("\r\n")[0];
      this.headers = text;
      return text;
    }, "the HTTP answer");
  }
  async next(ms = 5000): Promise<ServerFrame> {
    return this.until(() => {
      if (this.buf.length < 2) return null;
      const b1 = this.buf[1];
      assert.equal(b1 & 0x80, 0, "server frames are not masked");
      let len = b1 & 0x7f, at = 2;
      if (len === 126) { if (this.buf.length < 4) return null; len = this.buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (this.buf.length < 10) return null; len = Number(this.buf.readBigUInt64BE(2)); at = 10; }
      if (this.buf.length < at + len) return null;
      const f = { opcode: this.buf[0] & 15, payload: Buffer.from(this.buf.subarray(at, at + len)) };
      assert.equal(this.buf[0] & 0xf0, 0x80, "FIN set, no RSV bits");
      this.buf = this.buf.subarray(at + len);
      return f;
    }, "a frame", ms);
  }
  /** MQTT packets from the next binary frames, until `n` have come. */
  async packets(n: number): Promise<{ type: number; body: Buffer }[]> {
    let data: Buffer = Buffer.alloc(0);
    const out: { type: number; body: Buffer }[] = [];
    while (out.length < n) {
      const f = await this.next();
      assert.equal(f.opcode, 2, `a binary frame, not opcode ${f.opcode}`);
      data = Buffer.concat([data, f.payload]);
      const { packets, rest } = splitPackets(data);
      out.push(...packets.map((p) => ({ type: p.type, body: p.body })));
      data = rest;
    }
    return out;
  }
  send(b: Buffer): void { this.sock.write(b); }
  async gone(ms = 5000): Promise<void> { await this.until(() => (this.closed ? true : null), "the close", ms).catch(() => undefined); }
}

function request(port: number, o: { key?: string | null; protocol?: string | null; version?: string; upgrade?: boolean; method?: string; path?: string } = {}): string {
  const lines = [`${o.method ?? "GET"} ${o.path ?? "/mqtt"} HTTP/1.1`, `Host: ${HOST}:${port}`];
  if (o.upgrade !== false) lines.push("Upgrade: websocket", "Connection: keep-alive, Upgrade");
  if (o.key !== null) lines.push(`Sec-WebSocket-Key: ${o.key ?? randomBytes(16).toString("base64")}`);
  lines.push(`Sec-WebSocket-Version: ${o.version ?? "13"}`);
  if (o.protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${o.protocol ?? "mqtt"}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

async function rawWs(port: number, req?: string | Buffer): Promise<RawWs> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: HOST, port }, () => resolve(s));
    s.on("error", reject);
  });
  const ws = new RawWs(sock);
  sock.write(req ?? request(port));
  return ws;
}

async function upgraded(port: number): Promise<RawWs> {
  const ws = await rawWs(port);
  await ws.answer();
  assert.match(ws.status, /^HTTP\/1\.1 101/);
  return ws;
}

/** The broker with a plain listener and a WebSocket one. */
async function startWs(): Promise<{ broker: Broker; wsPort: number }> {
  const wsPort = await freePort();
  const conf = path.join(dir, `midge-${wsPort}.conf`);
  writeFileSync(conf, `listener 0 ${HOST}\nlistener ${wsPort} ${HOST}\nprotocol websockets\nallow_anonymous true\nconnection_messages true\n`);
  const broker = await startBroker({ args: ["-c", conf] });
  return { broker, wsPort };
}

function wsClient(port: number, protocolVersion: 4 | 5): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(`ws://${HOST}:${port}/mqtt`, { protocolVersion, reconnectPeriod: 0, clientId: uid("ws") });
  return new Promise((resolve, reject) => {
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

describe("MQTT over WebSockets", () => {
  let broker: Broker;
  let wsPort: number;
  /** A ws client connected all along: hostile input on other connections must not reach it. */
  let bystander: mqtt.MqttClient;
  let bystanderClosed = false;
  before(async () => {
    ({ broker, wsPort } = await startWs());
    bystander = await wsClient(wsPort, 5);
    bystander.on("close", () => (bystanderClosed = true));
  });
  after(async () => {
    await bystander.endAsync();
    await broker.stop();
  });

  /** Only that connection closed: the bystander is still connected and publishes at QoS 1
   *  to a new ws client, which gets the message. */
  async function stillServes(): Promise<void> {
    broker.assertAlive();
    assert.ok(!bystanderClosed && bystander.connected, "the client connected before is still connected");
    const c = await wsClient(wsPort, 4);
    const topic = `alive/${uid()}`;
    await c.subscribeAsync(topic);
    const got = new Promise<string>((r) => c.once("message", (_t, m) => r(m.toString())));
    await bystander.publishAsync(topic, "ok", { qos: 1 });
    assert.equal(await got, "ok");
    await c.endAsync();
  }

  for (const version of [4, 5] as const) {
    test(`mqtt.js over ws:// with MQTT ${version === 4 ? "3.1.1" : "5.0"}: QoS 0, 1, 2 and a 1 MiB message`, async () => {
      const sub = await wsClient(wsPort, version), pub = await wsClient(wsPort, version);
      const topic = `ws/${uid()}`;
      await sub.subscribeAsync(`${topic}/#`, { qos: 2 });
      const big = randomBytes(1 << 20);
      const got: Buffer[] = [];
      const all = new Promise<void>((r) => sub.on("message", (_t, m) => { got.push(m); if (got.length === 4) r(); }));
      await pub.publishAsync(`${topic}/0`, "zero", { qos: 0 });
      await pub.publishAsync(`${topic}/1`, "one", { qos: 1 });
      await pub.publishAsync(`${topic}/2`, "two", { qos: 2 });
      await pub.publishAsync(`${topic}/big`, big, { qos: 1 });
      await all;
      assert.deepEqual(got.slice(0, 3).map(String).sort(), ["one", "two", "zero"]);
      assert.ok(got[3].equals(big), "the 1 MiB message arrived whole");
      await sub.endAsync();
      await pub.endAsync();
      assert.match(broker.output(), /connected \(MQTT .*listener 1 port \d+ websockets\)/);
    });
  }

  test("many packets in one frame, answered in frames", async () => {
    const ws = await upgraded(wsPort);
    const topic = `many/${uid()}`;
    ws.send(binary(Buffer.concat([connectPacket({ clientId: uid("raw") }), subscribePacket(1, [[topic, 0]]),
      publishPacket({ topic, payload: Buffer.from("self") }), pingreq()])));
    const types = (await ws.packets(4)).map((p) => p.type);
    assert.deepEqual(types, [PacketType.CONNACK, PacketType.SUBACK, PacketType.PUBLISH, PacketType.PINGRESP]);
    ws.sock.destroy();
  });

  test("a packet over many tiny continuation frames with a ping between them; the close handshake", async () => {
    const ws = await upgraded(wsPort);
    const bytes = Buffer.concat([connectPacket({ clientId: uid("frag") }), pingreq()]);
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 3) {
      const piece = bytes.subarray(i, i + 3);
      parts.push(frame(i === 0 ? 2 : 0, piece, { fin: i + 3 >= bytes.length }));
      if (i === 6) parts.push(frame(9, Buffer.from("hi")));
    }
    // one byte at a time, so every frame and packet boundary falls between reads
    for (const b of Buffer.concat(parts)) { ws.send(Buffer.from([b])); await new Promise((r) => setImmediate(r)); }
    const seen: number[] = [];
    let pong = "";
    while (seen.length < 2) {
      const f = await ws.next();
      if (f.opcode === 10) pong = f.payload.toString();
      else seen.push(...splitPackets(f.payload).packets.map((p) => p.type));
    }
    assert.equal(pong, "hi", "the ping answered with its payload");
    assert.deepEqual(seen, [PacketType.CONNACK, PacketType.PINGRESP]);
    const code = Buffer.alloc(2); code.writeUInt16BE(1000);
    ws.send(frame(8, Buffer.concat([code, Buffer.from("bye")])));
    const close = await ws.next();
    assert.equal(close.opcode, 8);
    assert.equal(close.payload.readUInt16BE(0), 1000);
    await ws.gone();
    assert.ok(ws.closed, "the broker closed the TCP connection after the close handshake");
  });

  test("an MQTT DISCONNECT: a close frame 1000, then the close", async () => {
    const ws = await upgraded(wsPort);
    ws.send(binary(connectPacket({ clientId: uid("bye") })));
    assert.equal((await ws.packets(1))[0].type, PacketType.CONNACK);
    ws.send(binary(disconnect()));
    const f = await ws.next();
    assert.deepEqual([f.opcode, f.payload.readUInt16BE(0)], [8, 1000]);
    await ws.gone();
    assert.ok(ws.closed);
  });

  const hostile: [string, () => Buffer, number][] = [
    ["an unmasked frame", () => binary(connectPacket(), { mask: false }), 1002],
    ["an unmasked close frame", () => frame(8, closeBody(1000), { mask: false }), 1002],
    ["a ping of 126 bytes", () => frame(9, Buffer.alloc(126)), 1002],
    ["a pong of 126 bytes", () => frame(10, Buffer.alloc(126)), 1002],
    ["a close frame of 126 bytes", () => frame(8, closeBody(1000, new Array(124).fill(0x61))), 1002],
    ["a fragmented ping", () => frame(9, Buffer.from("x"), { fin: false }), 1002],
    ["a fragmented close frame", () => frame(8, closeBody(1000), { fin: false }), 1002],
    ["a length of 2^63", () => frame(2, Buffer.alloc(0), { length: 1n << 63n }), 1002],
    ["a length of 2^64 - 1", () => frame(2, Buffer.alloc(0), { length: (1n << 64n) - 1n }), 1002],
    ["a close reason that is not UTF-8", () => frame(8, closeBody(1000, [0xc3, 0x28])), 1007],
    ["a close reason cut inside a UTF-8 sequence", () => frame(8, closeBody(1000, [0x6f, 0x6b, 0xe2, 0x82])), 1007],
    ["a close reason with a UTF-16 surrogate", () => frame(8, closeBody(1000, [0xed, 0xa0, 0x80])), 1007],
    ["a close frame of one byte", () => frame(8, Buffer.from([0x03])), 1002],
    ["close code 1005, which no endpoint may send", () => frame(8, closeBody(1005)), 1002],
    ["a text frame", () => frame(1, Buffer.from("hello")), 1003],
    ["a continuation with nothing to continue", () => frame(0, connectPacket()), 1002],
    ["a new message before the fragmented one ended", () => Buffer.concat([binary(connectPacket().subarray(0, 4), { fin: false }),
      binary(connectPacket())]), 1002],
    ["reserved opcode 3", () => frame(3, connectPacket()), 1002],
    ["reserved control opcode 11", () => frame(11, Buffer.alloc(0)), 1002],
    ["RSV bits", () => { const f = binary(connectPacket()); f[0] |= 0x40; return f; }, 1002],
  ];
  for (const [what, bytes, code] of hostile) {
    test(`${what}: close frame ${code}, only that connection closes`, async () => {
      const ws = await upgraded(wsPort);
      ws.send(bytes());
      const f = await ws.next();
      assert.equal(f.opcode, 8);
      assert.equal(f.payload.readUInt16BE(0), code);
      await ws.gone();
      assert.ok(ws.closed);
      await stillServes();
    });
  }

  test("a packet above the size limit is refused from its fixed header (1009)", async () => {
    const ws = await upgraded(wsPort);
    ws.send(binary(connectPacket({ clientId: uid("big") })));
    await ws.packets(1);
    // a PUBLISH announcing 200 MiB: refused before anything is buffered
    ws.send(binary(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])));
    const f = await ws.next();
    assert.equal(f.opcode, 8);
    assert.equal(f.payload.readUInt16BE(0), 1009);
    await stillServes();
  });

  test("an unmasked frame from a connected MQTT client: close frame 1002, only that connection closes", async () => {
    const ws = await upgraded(wsPort);
    ws.send(binary(connectPacket({ clientId: uid("late") })));
    assert.equal((await ws.packets(1))[0].type, PacketType.CONNACK);
    ws.send(binary(pingreq(), { mask: false }));
    const f = await ws.next();
    assert.deepEqual([f.opcode, f.payload.readUInt16BE(0)], [8, 1002]);
    await ws.gone();
    assert.ok(ws.closed);
    await stillServes();
  });

  const badUpgrades: [string, (port: number) => string | Buffer, RegExp][] = [
    ["no Sec-WebSocket-Key", (p) => request(p, { key: null }), /^HTTP\/1\.1 400/],
    ["no Upgrade header (plain HTTP)", (p) => request(p, { upgrade: false }), /^HTTP\/1\.1 426/],
    ["WebSocket version 8", (p) => request(p, { version: "8" }), /^HTTP\/1\.1 426/],
    ["a POST", (p) => request(p, { method: "POST" }), /^HTTP\/1\.1 405/],
    ["an MQTT CONNECT instead of HTTP", () => connectPacket(), /^HTTP\/1\.1 400/],
    ["binary garbage", () => Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]), /^HTTP\/1\.1 400/],
    ["a lower-case method", (p) => request(p).replace("GET", "get"), /^HTTP\/1\.1 400/],
    ["HTTP/1.0", (p) => request(p).replace("HTTP/1.1", "HTTP/1.0"), /^HTTP\/1\.1 400/],
    ["a Sec-WebSocket-Key of 23 bytes", (p) => request(p, { key: randomBytes(16).toString("base64").slice(1) }), /^HTTP\/1\.1 400/],
    ["only an unknown subprotocol", (p) => request(p, { protocol: "mqttv5, wamp" }), /^HTTP\/1\.1 400/],
    ["a header line without a colon", (p) => request(p).replace("Upgrade: websocket", "Upgrade websocket"), /^HTTP\/1\.1 400/],
    ["Upgrade: h2c", (p) => request(p).replace("Upgrade: websocket", "Upgrade: h2c"), /^HTTP\/1\.1 426/],
    ["a whole request of more than 4096 bytes", (p) => request(p).replace("\r\n\r\n", `\r\nX-Filler: ${"a".repeat(5000)}\r\n\r\n`),
      /^HTTP\/1\.1 431/],
    ["headers that never end", () => "GET / HTTP/1.1\r\n" + "X-Filler: aaaaaaaaaaaaaaaa\r\n".repeat(300), /^HTTP\/1\.1 431/],
  ];
  for (const [what, req, status] of badUpgrades) {
    test(`bad upgrade: ${what} gets an HTTP error status and a close`, async () => {
      const ws = await rawWs(wsPort, req(wsPort));
      await ws.answer();
      assert.match(ws.status, status);
      await ws.gone();
      assert.ok(ws.closed);
      await stillServes();
    });
  }

  test("the plain listener still speaks MQTT", async () => {
    const c = await mqtt.connectAsync(`mqtt://${HOST}:${broker.port}`, { reconnectPeriod: 0 });
    await c.endAsync();
  });
});

// ---- the same upgrades against the Debian mosquitto ----

interface Upgrade { status: string; accept: string | null; protocol: string | null }

async function upgradeAnswer(port: number, protocol: string | null): Promise<Upgrade> {
  const key = randomBytes(16).toString("base64");
  const ws = await rawWs(port, request(port, { key, protocol }));
  const text = await ws.answer();
  ws.sock.destroy();
  const header = (name: string) => new RegExp(`^${name}: *(.*)$`, "im").exec(text)?.[1]?.trim() ?? null;
  const accept = header("Sec-WebSocket-Accept");
  if (accept !== null) assert.equal(accept, createHash("sha1").update(key + GUID).digest("base64"));
  return { status: ws.status.split(" ")[1], accept: accept === null ? null : "ok", protocol: header("Sec-WebSocket-Protocol") };
}

const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
describe("the same upgrades as mosquitto", { skip: mosquitto === null ? "mosquitto is not installed" : false }, () => {
  for (const protocol of ["mqtt", "mqttv3.1", null]) {
    test(`subprotocol ${protocol ?? "(none)"}`, async (t) => {
      const mport = await freePort();
      const conf = path.join(dir, `mosq-${mport}.conf`);
      writeFileSync(conf, `listener ${mport} ${HOST}\nprotocol websockets\nallow_anonymous true\n`);
      let mosq: Broker;
      try {
        mosq = await startMosquittoConf(conf, mport);
      } catch (error) {
        // libwebsockets in some sandboxes (no IPv6) cannot open any WebSocket socket
        if (/Unable to start any listening sockets/.test(String(error))) return t.skip("mosquitto cannot open a WebSocket listener here");
        throw error;
      }
      const { broker, wsPort } = await startWs();
      try {
        const theirs = await upgradeAnswer(mport, protocol);
        const ours = await upgradeAnswer(wsPort, protocol);
        assert.deepEqual(ours, theirs);
        // and an MQTT client gets through both
        for (const port of [mport, wsPort]) {
          const c = await mqtt.connectAsync(`ws://${HOST}:${port}/`, { reconnectPeriod: 0, protocolVersion: 4 });
          await c.endAsync();
        }
      } finally {
        await broker.stop();
        await mosq.stop();
      }
    });
  }
});

// ---- a real browser ----

const chromium = ["chromium", "chromium-browser", "google-chrome"].map(which).find((p) => p !== null) ?? null;
describe("a browser", { skip: chromium === null ? "chromium is not installed (apt-get install chromium; .ci/run does)" : false }, () => {
  test("headless Chromium with mqtt's browser bundle: subscribe, publish, round trip", async () => {
    const { broker, wsPort } = await startWs();
    const bundle = readFileSync(path.join(ROOT, "node_modules", "mqtt", "dist", "mqtt.min.js"), "utf8");
    const page = `<!doctype html><meta charset="utf-8"><title>midge</title><script>${bundle}</script>
<script>
const result = (text) => fetch("/result", { method: "POST", body: text });
const t0 = performance.now();
const client = mqtt.connect("ws://${HOST}:${wsPort}/mqtt", { reconnectPeriod: 0 });
client.on("error", (e) => result("error " + e.message));
client.on("connect", () => client.subscribe("browser/rt", { qos: 1 }, () => client.publish("browser/rt", "round trip", { qos: 1 })));
client.on("message", (topic, payload) => result("ok " + topic + " " + payload + " " + Math.round(performance.now() - t0) + " ms"));
</script>`;
    let done: (s: string) => void = () => {};
    const answer = new Promise<string>((r) => (done = r));
    const server = createServer((req, res) => {
      if (req.method === "POST") {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => { done(body); res.end(); });
        return;
      }
      res.setHeader("content-type", "text/html");
      res.end(page);
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    const url = `http://${HOST}:${(server.address() as net.AddressInfo).port}/`;
    const profile = mkdtempSync(path.join(os.tmpdir(), "midge-chromium-"));
    const browser = spawn(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${profile}`, url],
      { stdio: "ignore" });
    try {
      const text = await Promise.race([answer, new Promise<string>((r) => setTimeout(() => r("timeout"), 30_000))]);
      assert.match(text, /^ok browser\/rt round trip \d+ ms$/);
      assert.match(broker.output(), /websockets/);
    } finally {
      // chromium's helper processes may still write the profile for a moment after the kill
      const gone = new Promise<void>((r) => (browser.exitCode !== null || browser.signalCode !== null ? r() : browser.once("exit", () => r())));
      browser.kill("SIGKILL");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
      server.close();
      await broker.stop();
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  });
});
