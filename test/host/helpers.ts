// Shared helpers for the host integration tests: start a real broker on a loopback
// port, connect `mqtt` clients to it, and talk raw MQTT bytes over a net.Socket for
// the checks no client library allows.
//
// Environment:
//   MIDGE_BIN=path            broker entry (default: dist/midge.mjs at the repo root)
//   MIDGE_TEST_VERBOSE=1      start the broker with --verbose (its stderr is kept either way)
//   MIDGE_TEST_BROKER=mosquitto
//                             run the same tests against Debian's mosquitto instead, to
//                             check a test itself against a reference broker
//   MIDGE_TEST_BROKER=native  run them against the native host (build/native/midge-<board>,
//                             from npm run build:native): the same core, no Node
//
// The tests themselves may encode and decode MQTT (the small codec below); only the
// broker's host must not.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes as cryptoRandomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, afterEach, before } from "node:test";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from "mqtt";

export const HOST = "127.0.0.1";

/** The repository root: this file runs as test/host/*.ts or bundled as build/test-host/*.mjs. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const BROKER_KIND: "midge" | "mosquitto" | "native" =
  process.env.MIDGE_TEST_BROKER === "mosquitto" || process.env.MIDGE_TEST_BROKER === "native"
    ? process.env.MIDGE_TEST_BROKER
    : "midge";

// ---------------------------------------------------------------------------------
// small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A short pause before a negative check ("nothing else arrived"); never a timing assertion. */
export const settle = (ms = 250) => sleep(ms);

let uidCounter = 0;
/** A unique name for client ids and topic prefixes, so tests never see each other's traffic. */
export function uid(prefix = "t"): string {
  uidCounter += 1;
  return `${prefix}-${process.pid}-${uidCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Rejects with `what` (and the running brokers' stderr tails) unless `p` settles within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}${brokerTails()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Whether an executable is on PATH. */
export function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const full = path.join(dir, bin);
    if (dir && existsSync(full)) return full;
  }
  return null;
}

// ---------------------------------------------------------------------------------
// the broker process

export interface Broker {
  readonly host: string;
  readonly port: number;
  readonly proc: ChildProcess;
  /** everything the broker wrote to stderr and stdout so far */
  output(): string;
  /** null while running */
  exitCode(): number | null;
  /** throws (with the broker's output) if the process has exited */
  assertAlive(): void;
  /** SIGTERM, and wait for the process to exit (SIGKILL after 5 s) */
  stop(): Promise<void>;
}

const running = new Set<Broker>();
const OUTPUT_CAP = 256 * 1024;

function brokerTails(): string {
  let s = "";
  for (const b of running) {
    const out = b.output();
    s += `\n--- broker :${b.port} output (last 3000 chars) ---\n${out.slice(-3000)}`;
  }
  return s;
}

process.on("exit", () => {
  for (const b of running) b.proc.kill("SIGKILL");
});

export interface BrokerOptions {
  /** extra command-line flags, e.g. ["--max-packet-size", "1000"] */
  args?: string[];
  verbose?: boolean;
}

/** Starts `node dist/midge.mjs --port 0` and waits (10 s at most) for its listening line. */
export async function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  if (BROKER_KIND === "mosquitto") return startMosquitto(opts);
  if (BROKER_KIND === "native") return startNative(opts);
  const bin = process.env.MIDGE_BIN ?? path.join(ROOT, "dist", "midge.mjs");
  if (!existsSync(bin)) throw new Error(`broker not built: ${bin} is missing (run npm run build)`);
  const verbose = opts.verbose ?? process.env.MIDGE_TEST_VERBOSE === "1";
  const args = [bin, "--port", "0", ...(verbose ? ["--verbose"] : []), ...(opts.args ?? [])];
  return launch(process.execPath, args, /listening on ([\d.]+):(\d+)/, (m) => ({
    host: m[1],
    port: Number(m[2]),
  }));
}

/** The real mosquitto with the config file `conf` (which sets `port`), ready once it says
 *  it is running: the reference of the differential tests (27-config, 28-passwords). */
export async function startMosquittoConf(conf: string, port: number): Promise<Broker> {
  const bin = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
  if (bin === null) throw new Error("mosquitto is not installed (apt-get install mosquitto)");
  const proc = spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mosquitto did not start: ${out}`)), 5000);
    const seen = (chunk: Buffer) => {
      out += chunk.toString();
      if (/running/.test(out)) { clearTimeout(timer); resolve(); }
    };
    proc.stdout!.on("data", seen);
    proc.stderr!.on("data", seen);
    proc.once("exit", () => reject(new Error(`mosquitto exited: ${out}`)));
  });
  return {
    host: HOST, port, proc, output: () => out, exitCode: () => proc.exitCode, assertAlive: () => undefined,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
    }),
  };
}

/**
 * Starts any broker command that logs `listening on <ip>:<port>` on stderr (the Node host
 * under Deno or Bun, the C build of the mcu board, the wasm2js script), 10 s at most.
 */
export function startCommand(cmd: string, args: string[]): Promise<Broker> {
  return launch(cmd, args, /listening on ([\d.]+):(\d+)/, (m) => ({ host: m[1], port: Number(m[2]) }));
}

/** The native host of the board named by --board (default pi), with the other flags. */
export function startNative(opts: BrokerOptions = {}): Promise<Broker> {
  const args = [...(opts.args ?? [])];
  const i = args.indexOf("--board");
  const board = i >= 0 ? args.splice(i, 2)[1] : "pi";
  const bin = path.join(ROOT, "build", "native", `midge-${board}`);
  if (!existsSync(bin)) throw new Error(`native broker not built: ${bin} is missing (run npm run build:native)`);
  const verbose = opts.verbose ?? process.env.MIDGE_TEST_VERBOSE === "1";
  return startCommand(bin, ["--port", "0", ...(verbose ? ["--verbose"] : []), ...args]);
}

async function startMosquitto(opts: BrokerOptions): Promise<Broker> {
  const bin = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
  if (!bin) throw new Error("MIDGE_TEST_BROKER=mosquitto but mosquitto is not installed");
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "midge-mosq-"));
  const conf = [
    `listener ${port} ${HOST}`,
    "allow_anonymous true",
    "persistence false",
    "log_dest stderr",
    "log_type all",
  ];
  const a = opts.args ?? [];
  const i = a.indexOf("--max-packet-size");
  if (i >= 0) conf.push(`max_packet_size ${a[i + 1]}`);
  writeFileSync(path.join(dir, "mosquitto.conf"), conf.join("\n") + "\n");
  const b = await launch(bin, ["-c", path.join(dir, "mosquitto.conf")], / running/, () => ({ host: HOST, port }));
  b.proc.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return b;
}

/** Keeps each broker's output in build/test-host/logs/<test file>-<port>.log for post-mortems. */
function saveLog(port: number, out: string): void {
  try {
    const dir = path.join(ROOT, "build", "test-host", "logs");
    mkdirSync(dir, { recursive: true });
    const file = path.basename(process.argv[1] ?? "test").replace(/\.(m?js|ts)$/, "");
    writeFileSync(path.join(dir, `${file}-${port}.log`), out);
  } catch {
    // best effort
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function launch(
  cmd: string,
  args: string[],
  ready: RegExp,
  address: (m: RegExpMatchArray) => { host: string; port: number },
): Promise<Broker> {
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let stderrText = "";
  let code: number | null = null;
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", (c, sig) => {
      code = c ?? (sig ? 128 : -1);
      resolve();
    }),
  );
  const append = (chunk: Buffer) => {
    out += chunk.toString("utf8");
    if (out.length > OUTPUT_CAP) out = out.slice(-OUTPUT_CAP);
  };
  proc.stdout!.on("data", append);

  return new Promise<Broker>((resolve, reject) => {
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill("SIGKILL");
      reject(new Error(`broker did not start: ${why}\n$ ${cmd} ${args.join(" ")}\n${out.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail("no listening line within 10 s"), 10_000);
    proc.once("error", (e) => fail(String(e)));
    proc.once("exit", (c, sig) => fail(`exited early (code ${c}, signal ${sig})`));
    proc.stderr!.on("data", (chunk: Buffer) => {
      append(chunk);
      if (done) return;
      stderrText += chunk.toString("utf8");
      const m = stderrText.match(ready);
      if (!m) return;
      done = true;
      clearTimeout(timer);
      const { host, port } = address(m);
      const broker: Broker = {
        host,
        port,
        proc,
        output: () => out,
        exitCode: () => code,
        assertAlive() {
          if (code !== null) throw new Error(`broker exited with code ${code}\n${out.slice(-4000)}`);
        },
        async stop() {
          running.delete(broker);
          if (code === null) {
            proc.kill("SIGTERM");
            const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(t);
          }
          saveLog(port, out);
        },
      };
      running.add(broker);
      resolve(broker);
    });
  });
}

/**
 * One broker for the enclosing file or describe block: started in `before`, stopped in
 * `after` (which fails if the broker died meanwhile); clients and raw sockets that tests
 * opened are closed after each test.
 */
export function useBroker(opts: BrokerOptions = {}): () => Broker {
  let b: Broker | undefined;
  before(async () => {
    b = await startBroker(opts);
  });
  afterEach(() => closeAll());
  after(async () => {
    await closeAll();
    if (!b) return;
    const code = b.exitCode();
    const out = b.output();
    await b.stop();
    if (code !== null) throw new Error(`the broker exited during the tests (code ${code})\n${out.slice(-4000)}`);
  });
  return () => {
    if (!b) throw new Error("broker not started");
    return b;
  };
}

// ---------------------------------------------------------------------------------
// mqtt (npm) clients

export interface Received {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  messageId?: number;
  /** MQTT 5 properties as the `mqtt` client decoded them */
  properties?: IPublishPacket["properties"];
}

/** Every message a client received, in order, with waits bounded by a timeout. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: Array<() => void> = [];

  push(m: Received): void {
    this.messages.push(m);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** messages whose topic is `topic` */
  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** Waits until `pred` holds over the messages received so far. */
  until(pred: (msgs: Received[]) => boolean, ms = 5000, what = "messages"): Promise<Received[]> {
    const p = new Promise<Received[]>((resolve) => {
      const check = () => {
        if (pred(this.messages)) resolve(this.messages);
        else this.waiters.push(check);
      };
      check();
    });
    return withTimeout(p, ms, `${what} (have ${this.messages.length}: ${this.summary()})`);
  }

  /** Waits until at least `n` messages (on `topic`, if given) have arrived; returns those. */
  async wait(n: number, ms = 5000, topic?: string): Promise<Received[]> {
    const sel = (msgs: Received[]) => (topic === undefined ? msgs : msgs.filter((m) => m.topic === topic));
    await this.until((msgs) => sel(msgs).length >= n, ms, `${n} message(s)${topic ? ` on ${topic}` : ""}`);
    return sel(this.messages);
  }

  /** Waits for a message on `topic` (the marker of a negative check). */
  async waitTopic(topic: string, ms = 5000): Promise<Received> {
    await this.until((msgs) => msgs.some((m) => m.topic === topic), ms, `a message on ${topic}`);
    return this.messages.find((m) => m.topic === topic)!;
  }

  private summary(): string {
    return this.messages
      .slice(-10)
      .map((m) => `${m.topic}(q${m.qos}${m.retain ? ",r" : ""}${m.dup ? ",d" : ""}):${m.payload.length}B`)
      .join(" ");
  }
}

export interface TestClient {
  client: MqttClient;
  inbox: Inbox;
  connack: IConnackPacket;
  /** resolves when the network connection has closed */
  closed: Promise<void>;
  isClosed(): boolean;
  /** DISCONNECT and wait for the close (5 s at most) */
  end(): Promise<void>;
  /** drop the TCP connection without DISCONNECT (an "abnormal" close, the will fires) */
  destroy(): void;
}

const liveClients = new Set<TestClient>();

/**
 * Connects an `mqtt` client (MQTT 3.1.1 unless `opts` says otherwise, no reconnect) and
 * collects its messages from the first byte on, so messages a stored session delivers
 * right after CONNACK are not lost.
 */
export async function connect(
  broker: Broker,
  opts: IClientOptions = {},
  { keep = false }: { keep?: boolean } = {},
): Promise<TestClient> {
  const client = mqtt.connect({
    host: broker.host,
    port: broker.port,
    protocol: "mqtt",
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    keepalive: 60,
    clean: true,
    resubscribe: false,
    clientId: opts.clientId ?? uid("c"),
    ...opts,
  });
  const inbox = new Inbox();
  client.on("message", (topic: string, payload: Buffer, packet: IPublishPacket) => {
    inbox.push({
      topic,
      payload,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      messageId: packet.messageId,
      properties: packet.properties,
    });
  });
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    client.once("close", () => {
      isClosed = true;
      resolve();
    }),
  );
  client.on("error", () => {}); // reported through the connect promise or `closed`
  const connack = await withTimeout(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
      closed.then(() => reject(new Error("connection closed before CONNACK")));
    }),
    6000,
    `CONNACK for ${client.options.clientId}`,
  ).catch((e) => {
    client.end(true);
    throw e;
  });
  const tc: TestClient = {
    client,
    inbox,
    connack,
    closed,
    isClosed: () => isClosed,
    async end() {
      liveClients.delete(tc);
      if (isClosed) return;
      await withTimeout(client.endAsync(), 5000, `end of ${client.options.clientId}`).catch(() =>
        client.end(true),
      );
      await withTimeout(closed, 5000, `close of ${client.options.clientId}`).catch(() => {});
    },
    destroy() {
      liveClients.delete(tc);
      (client as unknown as { stream: net.Socket }).stream.destroy();
    },
  };
  if (!keep) liveClients.add(tc); // `keep`: the caller ends it (closeAll leaves it alone)
  return tc;
}

/** Ends every client and raw socket still open (use in afterEach / after). */
export async function closeAll(): Promise<void> {
  const clients = [...liveClients];
  liveClients.clear();
  for (const c of clients) c.client.end(true);
  for (const r of liveRaw) r.destroy();
  liveRaw.clear();
  await Promise.all(clients.map((c) => withTimeout(c.closed, 2000, "client close").catch(() => {})));
}

/** Subscribes and checks the granted QoS values. */
export async function subscribe(
  c: TestClient,
  filters: Record<string, 0 | 1 | 2> | string,
  qos: 0 | 1 | 2 = 0,
): Promise<number[]> {
  const req =
    typeof filters === "string"
      ? { [filters]: { qos } }
      : Object.fromEntries(Object.entries(filters).map(([f, q]) => [f, { qos: q }]));
  const granted = await withTimeout(c.client.subscribeAsync(req), 5000, `SUBACK for ${Object.keys(req)}`);
  return granted.map((g) => g.qos);
}

export function publish(
  c: TestClient,
  topic: string,
  payload: string | Buffer,
  opts: { qos?: 0 | 1 | 2; retain?: boolean } = {},
): Promise<unknown> {
  return withTimeout(
    c.client.publishAsync(topic, payload, { qos: opts.qos ?? 0, retain: opts.retain ?? false }),
    15000,
    `publish to ${topic}`,
  );
}

// ---------------------------------------------------------------------------------
// raw MQTT bytes (3.1.1), for what no client library lets a test send

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/** The variable byte integer of a remaining length (any value, even an invalid one, for tests). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** A length-prefixed string field; a Buffer is taken as raw bytes (e.g. invalid UTF-8). */
export function str(s: string | Buffer): Buffer {
  const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  return Buffer.concat([u16(b.length), b]);
}

/** A whole packet: first byte (type << 4 | flags), remaining length, body. */
export function packet(type: number, flags: number, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([(type << 4) | (flags & 0x0f)]), varint(body.length), body]);
}

export interface ConnectFields {
  clientId?: string | Buffer;
  clean?: boolean;
  keepalive?: number;
  protocolName?: string;
  protocolLevel?: number;
  will?: { topic: string | Buffer; payload: string | Buffer; qos?: number; retain?: boolean };
  username?: string | Buffer;
  password?: string | Buffer;
  /** OR-ed into the connect flags byte as is (bit 0 is reserved) */
  extraFlags?: number;
}

export function connectPacket(f: ConnectFields = {}): Buffer {
  return buildConnect(f, 4);
}

/**
 * A CONNECT of any protocol level. MQTT 5 adds a property block after the keep-alive
 * (`properties`) and one before the will topic (`willProperties`); older levels have
 * neither.
 */
function buildConnect(f: ConnectFields, defaultLevel: number, properties?: Buffer, willProperties?: Buffer): Buffer {
  let flags = f.extraFlags ?? 0;
  if (f.clean ?? true) flags |= 0x02;
  const payload: Buffer[] = [str(f.clientId ?? "")];
  if (f.will) {
    flags |= 0x04 | ((f.will.qos ?? 0) << 3) | (f.will.retain ? 0x20 : 0);
    if (willProperties) payload.push(willProperties);
    payload.push(str(f.will.topic));
    const wp = typeof f.will.payload === "string" ? Buffer.from(f.will.payload) : f.will.payload;
    payload.push(u16(wp.length), wp);
  }
  if (f.username !== undefined) {
    flags |= 0x80;
    payload.push(str(f.username));
  }
  if (f.password !== undefined) {
    flags |= 0x40;
    payload.push(str(f.password));
  }
  const body = Buffer.concat([
    str(f.protocolName ?? "MQTT"),
    Buffer.from([f.protocolLevel ?? defaultLevel, flags]),
    u16(f.keepalive ?? 60),
    ...(properties ? [properties] : []),
    ...payload,
  ]);
  return packet(PacketType.CONNECT, 0, body);
}

export interface PublishFields {
  topic: string | Buffer;
  payload?: string | Buffer;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  id?: number;
}

export function publishPacket(f: PublishFields): Buffer {
  const qos = f.qos ?? 0;
  const flags = (f.dup ? 0x08 : 0) | ((qos & 3) << 1) | (f.retain ? 1 : 0);
  const payload = typeof f.payload === "string" ? Buffer.from(f.payload) : (f.payload ?? Buffer.alloc(0));
  const parts = [str(f.topic)];
  if (qos > 0) parts.push(u16(f.id ?? 1));
  parts.push(payload);
  return packet(PacketType.PUBLISH, flags, Buffer.concat(parts));
}

export function subscribePacket(id: number, filters: Array<[string | Buffer, number]>, flags = 0x02): Buffer {
  const parts: Buffer[] = [u16(id)];
  for (const [f, q] of filters) parts.push(str(f), Buffer.from([q]));
  return packet(PacketType.SUBSCRIBE, flags, Buffer.concat(parts));
}

export const puback = (id: number) => packet(PacketType.PUBACK, 0, u16(id));
export const pubrec = (id: number) => packet(PacketType.PUBREC, 0, u16(id));
export const pubrel = (id: number) => packet(PacketType.PUBREL, 0x02, u16(id));
export const pubcomp = (id: number) => packet(PacketType.PUBCOMP, 0, u16(id));
export const pingreq = () => packet(PacketType.PINGREQ, 0);
export const disconnect = () => packet(PacketType.DISCONNECT, 0);

export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export interface RawPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  id: number; // 0 for QoS 0
}

export function parsePublish(p: RawPacket): RawPublish {
  if (p.type !== PacketType.PUBLISH) throw new Error(`not a PUBLISH: type ${p.type}`);
  const qos = (p.flags >> 1) & 3;
  const tlen = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + tlen).toString("utf8");
  let off = 2 + tlen;
  let id = 0;
  if (qos > 0) {
    id = p.body.readUInt16BE(off);
    off += 2;
  }
  return { topic, payload: p.body.subarray(off), qos, retain: (p.flags & 1) === 1, dup: (p.flags & 8) === 8, id };
}

/** Splits whole packets off the front of `buf`; returns them and the unconsumed rest. */
export function splitPackets(buf: Buffer): { packets: RawPacket[]; rest: Buffer } {
  const packets: RawPacket[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    let len = 0;
    let mul = 1;
    let i = off + 1;
    let complete = false;
    for (let k = 0; k < 4 && i < buf.length; k++, i++) {
      len += (buf[i] & 0x7f) * mul;
      mul *= 128;
      if ((buf[i] & 0x80) === 0) {
        complete = true;
        i++;
        break;
      }
    }
    if (!complete || buf.length - i < len) break;
    packets.push({ type: buf[off] >> 4, flags: buf[off] & 0x0f, body: buf.subarray(i, i + len) });
    off = i + len;
  }
  return { packets, rest: buf.subarray(off) };
}

const liveRaw = new Set<RawClient>();

/** A plain TCP connection that speaks bytes: write packets, read packets, see the close. */
export class RawClient {
  readonly socket: net.Socket;
  /** every byte received, in order */
  received: Buffer = Buffer.alloc(0);
  private pending: Buffer = Buffer.alloc(0);
  private queue: RawPacket[] = [];
  private waiters: Array<() => void> = [];
  private closedAt: number | null = null;
  readonly closed: Promise<void>;
  error: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      const { packets, rest } = splitPackets(Buffer.concat([this.pending, d]));
      this.pending = Buffer.from(rest);
      this.queue.push(...packets);
      this.wake();
    });
    socket.on("error", (e) => {
      this.error = e; // ECONNRESET and the like: the close that follows is what tests check
    });
    this.closed = new Promise<void>((resolve) =>
      socket.once("close", () => {
        this.closedAt = Date.now();
        liveRaw.delete(this);
        this.wake();
        resolve();
      }),
    );
  }

  static open(broker: Broker): Promise<RawClient> {
    return withTimeout(
      new Promise<RawClient>((resolve, reject) => {
        const s = net.connect({ host: broker.host, port: broker.port });
        s.setNoDelay(true);
        s.once("connect", () => {
          s.off("error", reject);
          const r = new RawClient(s);
          liveRaw.add(r);
          resolve(r);
        });
        s.once("error", reject);
      }),
      5000,
      "TCP connect",
    );
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get isClosed(): boolean {
    return this.closedAt !== null;
  }

  /** Date.now() when the socket closed, or null */
  get closedTime(): number | null {
    return this.closedAt;
  }

  write(bytes: Buffer | number[]): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet received (in order), or an error if the connection closes first. */
  next(ms = 5000, what = "a packet"): Promise<RawPacket> {
    const p = new Promise<RawPacket>((resolve, reject) => {
      const check = () => {
        const pk = this.queue.shift();
        if (pk) resolve(pk);
        else if (this.isClosed) reject(new Error(`connection closed while waiting for ${what}`));
        else this.waiters.push(check);
      };
      check();
    });
    return withTimeout(p, ms, what);
  }

  /** The next packet, checked to be of `type`. */
  async expect(type: number, ms = 5000): Promise<RawPacket> {
    const name = Object.entries(PacketType).find(([, v]) => v === type)?.[0] ?? String(type);
    const pk = await this.next(ms, name);
    if (pk.type !== type) {
      throw new Error(`expected ${name}, got packet type ${pk.type} flags ${pk.flags} body ${pk.body.toString("hex")}`);
    }
    return pk;
  }

  /** Packets received and not yet taken with next()/expect(). */
  get unread(): RawPacket[] {
    return this.queue;
  }

  /** Waits for the peer to close the connection; resolves with Date.now() at the close. */
  async waitClose(ms = 5000, what = "the broker to close the connection"): Promise<number> {
    await withTimeout(this.closed, ms, what);
    return this.closedAt!;
  }

  /** Stop reading (the broker's writes back up, as with a stalled subscriber). */
  pause(): void {
    this.socket.pause();
  }

  destroy(): void {
    liveRaw.delete(this);
    this.socket.destroy();
  }
}

export interface RawConnectResult {
  raw: RawClient;
  returnCode: number;
  sessionPresent: boolean;
}

/** Opens a raw connection, sends CONNECT, and reads the CONNACK (any return code). */
export async function rawConnect(broker: Broker, f: ConnectFields = {}): Promise<RawConnectResult> {
  const raw = await RawClient.open(broker);
  raw.write(connectPacket({ clientId: uid("raw"), ...f }));
  const ack = await raw.expect(PacketType.CONNACK);
  if (ack.body.length !== 2) throw new Error(`CONNACK with ${ack.body.length} body bytes`);
  return { raw, returnCode: ack.body[1], sessionPresent: (ack.body[0] & 1) === 1 };
}

/** rawConnect that insists on return code 0. */
export async function rawSession(broker: Broker, f: ConnectFields = {}): Promise<RawConnectResult> {
  const r = await rawConnect(broker, f);
  if (r.returnCode !== 0) throw new Error(`CONNACK return code ${r.returnCode}`);
  return r;
}

/** SUBSCRIBE over a raw connection and return the SUBACK return codes. */
export async function rawSubscribe(raw: RawClient, id: number, filters: Array<[string, number]>): Promise<number[]> {
  raw.write(subscribePacket(id, filters));
  const ack = await raw.expect(PacketType.SUBACK);
  if (ack.body.readUInt16BE(0) !== id) throw new Error(`SUBACK for packet id ${ack.body.readUInt16BE(0)}, not ${id}`);
  return [...ack.body.subarray(2)];
}

/** n random bytes (every byte value occurs, including 0x00 and 0xFF). */
export function randomBytes(n: number): Buffer {
  return cryptoRandomBytes(n);
}

// ---------------------------------------------------------------------------------
// raw MQTT 5 bytes: properties, and the v5 forms of CONNECT, PUBLISH, SUBSCRIBE,
// UNSUBSCRIBE, the acks and DISCONNECT, for what the MQTT 5 tests must see on the wire
// (topic aliases, the order of user properties, reason codes, both forms of an ack).

/** AUTH, the packet type MQTT 5 adds. */
export const AUTH = 15;

/** MQTT 5 property identifiers (§2.2.2.2). */
export const Prop = {
  PayloadFormat: 0x01,
  MessageExpiry: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionId: 0x0b,
  SessionExpiry: 0x11,
  AssignedClientId: 0x12,
  ServerKeepAlive: 0x13,
  AuthMethod: 0x15,
  AuthData: 0x16,
  RequestProblemInfo: 0x17,
  WillDelay: 0x18,
  RequestResponseInfo: 0x19,
  ResponseInfo: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQos: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardAvailable: 0x28,
  SubscriptionIdAvailable: 0x29,
  SharedAvailable: 0x2a,
} as const;

type PropKind = "byte" | "u16" | "u32" | "varint" | "utf8" | "binary" | "pair";
const PROP_KIND: Record<number, PropKind> = {
  0x01: "byte", 0x02: "u32", 0x03: "utf8", 0x08: "utf8", 0x09: "binary", 0x0b: "varint",
  0x11: "u32", 0x12: "utf8", 0x13: "u16", 0x15: "utf8", 0x16: "binary", 0x17: "byte",
  0x18: "u32", 0x19: "byte", 0x1a: "utf8", 0x1c: "utf8", 0x1f: "utf8", 0x21: "u16",
  0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
  0x28: "byte", 0x29: "byte", 0x2a: "byte",
};

export type PropValue = number | string | Buffer | [string, string];
/** One property as it sits on the wire: identifier and value, in order (repeats allowed). */
export type Prop5 = [id: number, value: PropValue];

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A property block: its Variable Byte Integer length, then every property in order. */
export function props(list: Prop5[] = []): Buffer {
  const parts: Buffer[] = [];
  for (const [id, v] of list) {
    parts.push(varint(id));
    switch (PROP_KIND[id]) {
      case "byte": parts.push(Buffer.from([v as number])); break;
      case "u16": parts.push(u16(v as number)); break;
      case "u32": parts.push(u32(v as number)); break;
      case "varint": parts.push(varint(v as number)); break;
      case "utf8": case "binary": parts.push(str(v as string | Buffer)); break;
      case "pair": parts.push(str((v as [string, string])[0]), str((v as [string, string])[1])); break;
      default: throw new Error(`props: unknown property 0x${id.toString(16)}`);
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([varint(body.length), body]);
}

/** Properties read from a packet, in wire order. */
export class Props {
  constructor(readonly list: Prop5[] = []) {}
  has(id: number): boolean {
    return this.list.some(([i]) => i === id);
  }
  get(id: number): PropValue | undefined {
    return this.list.find(([i]) => i === id)?.[1];
  }
  all(id: number): PropValue[] {
    return this.list.filter(([i]) => i === id).map(([, v]) => v);
  }
  /** the user properties, in order */
  get user(): Array<[string, string]> {
    return this.all(Prop.UserProperty) as Array<[string, string]>;
  }
}

function readVarintAt(buf: Buffer, off: number): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  for (let k = 0; k < 4; k++) {
    if (off >= buf.length) throw new Error("varint runs past the packet");
    const b = buf[off++];
    value += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) return { value, next: off };
  }
  throw new Error("varint longer than 4 bytes");
}

/** Decodes the property block at `off`; throws on anything malformed (a broker bug). */
export function decodeProps(buf: Buffer, off: number): { props: Props; next: number } {
  const { value: len, next: start } = readVarintAt(buf, off);
  const stop = start + len;
  if (stop > buf.length) throw new Error(`property length ${len} runs past the packet`);
  const list: Prop5[] = [];
  let p = start;
  const readStr = () => {
    const n = buf.readUInt16BE(p);
    const s = buf.subarray(p + 2, p + 2 + n);
    p += 2 + n;
    return s;
  };
  while (p < stop) {
    const { value: id, next } = readVarintAt(buf, p);
    p = next;
    switch (PROP_KIND[id]) {
      case "byte": list.push([id, buf[p]]); p += 1; break;
      case "u16": list.push([id, buf.readUInt16BE(p)]); p += 2; break;
      case "u32": list.push([id, buf.readUInt32BE(p)]); p += 4; break;
      case "varint": { const v = readVarintAt(buf, p); list.push([id, v.value]); p = v.next; break; }
      case "utf8": list.push([id, readStr().toString("utf8")]); break;
      case "binary": list.push([id, Buffer.from(readStr())]); break;
      case "pair": { const k = readStr().toString("utf8"); const v = readStr().toString("utf8"); list.push([id, [k, v]]); break; }
      default: throw new Error(`unknown property identifier 0x${id.toString(16)}`);
    }
  }
  if (p !== stop) throw new Error("properties overrun their length");
  return { props: new Props(list), next: stop };
}

export interface Connect5Fields extends Omit<ConnectFields, "will"> {
  properties?: Prop5[];
  will?: { topic: string | Buffer; payload: string | Buffer; qos?: number; retain?: boolean; properties?: Prop5[] };
  /** raw bytes instead of the encoded property block (malformed-input tests) */
  rawProperties?: Buffer;
}

/** An MQTT 5 CONNECT (protocol level 5 unless `protocolLevel` says otherwise). */
export function connect5Packet(f: Connect5Fields = {}): Buffer {
  return buildConnect(f, 5, f.rawProperties ?? props(f.properties), f.will ? props(f.will.properties) : undefined);
}

export interface Publish5Fields extends PublishFields {
  properties?: Prop5[];
  /** raw bytes instead of the encoded property block (malformed-input tests) */
  rawProperties?: Buffer;
}

/** An MQTT 5 PUBLISH: topic (may be empty with a Topic Alias), [packet id], properties, payload. */
export function publish5Packet(f: Publish5Fields): Buffer {
  const qos = f.qos ?? 0;
  const flags = (f.dup ? 0x08 : 0) | ((qos & 3) << 1) | (f.retain ? 1 : 0);
  const payload = typeof f.payload === "string" ? Buffer.from(f.payload) : (f.payload ?? Buffer.alloc(0));
  const parts = [str(f.topic)];
  if (qos > 0) parts.push(u16(f.id ?? 1));
  parts.push(f.rawProperties ?? props(f.properties), payload);
  return packet(PacketType.PUBLISH, flags, Buffer.concat(parts));
}

/** Subscription options byte (§3.8.3.1). */
export function subOptions(o: { qos?: number; nl?: boolean; rap?: boolean; rh?: number } = {}): number {
  return (o.qos ?? 0) | (o.nl ? 0x04 : 0) | (o.rap ? 0x08 : 0) | ((o.rh ?? 0) << 4);
}

/** An MQTT 5 SUBSCRIBE: (filter, options byte) pairs, with properties (Subscription Identifier). */
export function subscribe5Packet(id: number, filters: Array<[string | Buffer, number]>, properties: Prop5[] = [], flags = 0x02): Buffer {
  const parts: Buffer[] = [u16(id), props(properties)];
  for (const [f, o] of filters) parts.push(str(f), Buffer.from([o]));
  return packet(PacketType.SUBSCRIBE, flags, Buffer.concat(parts));
}

export function unsubscribe5Packet(id: number, filters: Array<string | Buffer>, properties: Prop5[] = [], flags = 0x02): Buffer {
  return packet(PacketType.UNSUBSCRIBE, flags, Buffer.concat([u16(id), props(properties), ...filters.map((f) => str(f))]));
}

/**
 * An MQTT 5 PUBACK/PUBREC/PUBREL/PUBCOMP. `form`: "short" = packet id only (reason 0
 * implied), "reason" = id + reason code, "full" = id + reason + property block.
 */
export function ack5(type: number, id: number, reason = 0, form: "short" | "reason" | "full" = "reason", properties: Prop5[] = []): Buffer {
  const flags = type === PacketType.PUBREL ? 0x02 : 0;
  if (form === "short") return packet(type, flags, u16(id));
  if (form === "reason") return packet(type, flags, Buffer.concat([u16(id), Buffer.from([reason])]));
  return packet(type, flags, Buffer.concat([u16(id), Buffer.from([reason]), props(properties)]));
}

/** An MQTT 5 DISCONNECT; no reason and no properties gives the two-byte form. */
export function disconnect5(reason?: number, properties?: Prop5[]): Buffer {
  if (reason === undefined && !properties) return packet(PacketType.DISCONNECT, 0);
  const parts: Buffer[] = [Buffer.from([reason ?? 0])];
  if (properties) parts.push(props(properties));
  return packet(PacketType.DISCONNECT, 0, Buffer.concat(parts));
}

export interface Connack5 {
  sessionPresent: boolean;
  reasonCode: number;
  props: Props;
}

export function parseConnack5(p: RawPacket): Connack5 {
  if (p.type !== PacketType.CONNACK) throw new Error(`not a CONNACK: type ${p.type}`);
  if (p.body.length < 3) throw new Error(`MQTT 5 CONNACK with ${p.body.length} body bytes: ${p.body.toString("hex")}`);
  const { props: pr, next } = decodeProps(p.body, 2);
  if (next !== p.body.length) throw new Error("CONNACK: bytes after the properties");
  return { sessionPresent: (p.body[0] & 1) === 1, reasonCode: p.body[1], props: pr };
}

export interface RawPublish5 extends RawPublish {
  props: Props;
}

export function parsePublish5(p: RawPacket): RawPublish5 {
  if (p.type !== PacketType.PUBLISH) throw new Error(`not a PUBLISH: type ${p.type} body ${p.body.toString("hex")}`);
  const qos = (p.flags >> 1) & 3;
  const tlen = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + tlen).toString("utf8");
  let off = 2 + tlen;
  let id = 0;
  if (qos > 0) {
    id = p.body.readUInt16BE(off);
    off += 2;
  }
  const { props: pr, next } = decodeProps(p.body, off);
  return { topic, payload: p.body.subarray(next), qos, retain: (p.flags & 1) === 1, dup: (p.flags & 8) === 8, id, props: pr };
}

/** A PUBACK/PUBREC/PUBREL/PUBCOMP (either form): packet id, reason code (0 when omitted), properties. */
export function parseAck5(p: RawPacket): { id: number; reasonCode: number; props: Props } {
  const id = p.body.readUInt16BE(0);
  const reasonCode = p.body.length > 2 ? p.body[2] : 0;
  const pr = p.body.length > 3 ? decodeProps(p.body, 3).props : new Props();
  return { id, reasonCode, props: pr };
}

/** SUBACK or UNSUBACK: packet id, properties, one reason code per filter. */
export function parseSuback5(p: RawPacket): { id: number; props: Props; codes: number[] } {
  const id = p.body.readUInt16BE(0);
  const { props: pr, next } = decodeProps(p.body, 2);
  return { id, props: pr, codes: [...p.body.subarray(next)] };
}

export function parseDisconnect5(p: RawPacket): { reasonCode: number; props: Props } {
  if (p.type !== PacketType.DISCONNECT) throw new Error(`not a DISCONNECT: type ${p.type} body ${p.body.toString("hex")}`);
  const reasonCode = p.body.length > 0 ? p.body[0] : 0;
  const pr = p.body.length > 1 ? decodeProps(p.body, 1).props : new Props();
  return { reasonCode, props: pr };
}

export interface Raw5ConnectResult {
  raw: RawClient;
  connack: Connack5;
}

/** Opens a raw connection, sends an MQTT 5 CONNECT, reads the CONNACK (any reason code). */
export async function rawConnect5(broker: Broker, f: Connect5Fields = {}): Promise<Raw5ConnectResult> {
  const raw = await RawClient.open(broker);
  raw.write(connect5Packet({ clientId: uid("raw5"), ...f }));
  const connack = parseConnack5(await raw.expect(PacketType.CONNACK));
  return { raw, connack };
}

/** rawConnect5 that insists on reason code 0. */
export async function rawSession5(broker: Broker, f: Connect5Fields = {}): Promise<Raw5ConnectResult> {
  const r = await rawConnect5(broker, f);
  if (r.connack.reasonCode !== 0) throw new Error(`CONNACK reason code 0x${r.connack.reasonCode.toString(16)}`);
  return r;
}

/** MQTT 5 SUBSCRIBE over a raw connection; returns the SUBACK reason codes. */
export async function rawSubscribe5(
  raw: RawClient,
  id: number,
  filters: Array<[string, number]>,
  properties: Prop5[] = [],
): Promise<number[]> {
  raw.write(subscribe5Packet(id, filters, properties));
  const ack = parseSuback5(await raw.expect(PacketType.SUBACK));
  if (ack.id !== id) throw new Error(`SUBACK for packet id ${ack.id}, not ${id}`);
  return ack.codes;
}

/**
 * Waits for the broker's DISCONNECT (skipping nothing: any other packet first is an
 * error) and then for the close; returns the reason code.
 */
export async function expectDisconnect5(raw: RawClient, ms = 5000): Promise<number> {
  const pk = await raw.next(ms, "a DISCONNECT");
  const { reasonCode } = parseDisconnect5(pk);
  await raw.waitClose(ms, "the broker to close the connection after DISCONNECT");
  return reasonCode;
}

/** The next PUBLISH on a raw MQTT 5 connection, decoded. */
export async function nextPublish5(raw: RawClient, ms = 5000): Promise<RawPublish5> {
  return parsePublish5(await raw.expect(PacketType.PUBLISH, ms));
}

/** Connects an `mqtt` client speaking MQTT 5 (see connect). */
export function connect5(broker: Broker, opts: IClientOptions = {}, o: { keep?: boolean } = {}): Promise<TestClient> {
  return connect(broker, { protocolVersion: 5, ...opts }, o);
}

/** The Debian python3 with paho-mqtt (python3-paho-mqtt), or null when it is not installed. */
export function pahoPython(): string | null {
  for (const py of ["/usr/bin/python3", which("python3")]) {
    if (!py || !existsSync(py)) continue;
    const r = spawnSync(py, ["-c", "import paho.mqtt.client"], { stdio: "ignore", timeout: 10_000 });
    if (r.status === 0) return py;
  }
  return null;
}

/** Whether the broker's --help lists a flag (for features still landing in a host). */
export function brokerHasFlag(flag: string): boolean {
  if (BROKER_KIND === "mosquitto") return false;
  const bin = process.env.MIDGE_BIN ?? path.join(ROOT, "dist", "midge.mjs");
  const r =
    BROKER_KIND === "native"
      ? spawnSync(path.join(ROOT, "build", "native", "midge-pi"), ["--help"], { encoding: "utf8", timeout: 10_000 })
      : spawnSync(process.execPath, [bin, "--help"], { encoding: "utf8", timeout: 10_000 });
  return `${r.stdout}${r.stderr}`.includes(flag);
}
