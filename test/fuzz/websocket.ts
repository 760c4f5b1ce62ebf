// WebSocket input for the fuzzer, and the reading of what the core answers on a WebSocket
// listener. The fuzz core has three listeners (harness.ts, FUZZ_CONFIG): plain MQTT,
// `protocol websockets` and `protocol http`; a connection opened on the second one must
// first send an HTTP/1.1 upgrade (RFC 6455 §4.2), then masked client frames (§5) that
// carry the MQTT bytes. The inputs here are
//   - a valid upgrade, then an MQTT stream (mutatedStream's) cut into binary and
//     continuation frames, with pings, pongs and a close between or after them; the
//     frames mutated where assembly/ws/frames.ts looks (mask bit, RSV bits, opcodes,
//     FIN on control frames, control frames over 125 bytes, a length field that lies,
//     non-minimal, 2^63 or more);
//   - upgrades mutated where assembly/ws/upgrade.ts looks (method, version, each
//     header, the 4096-byte limit, line ends) and plain GETs (`/metrics`,
//     `/stats.json`, `/`) for assembly/http/serve.ts;
//   - garbage.
//
//   what a client sends            what the core sends back
//   ┌──────────────────────┐       ┌───────────────────────────────────────────┐
//   │ GET ... HTTP/1.1     │  ──>  │ HTTP/1.1 101 ..., or 4xx / 200 and a body │
//   │ headers, blank line  │       ├───────────────────────────────────────────┤
//   ├──────────────────────┤       │ server frames, unmasked, FIN set: binary  │
//   │ client frames,       │  ──>  │ (MQTT packets), pong, close (last)        │
//   │ masked               │       └───────────────────────────────────────────┘
//   └──────────────────────┘

import type { Rng } from "./mutate";

/** The fuzz core's listeners, by index (the order of FUZZ_CONFIG's `listener` lines). */
export const LISTENER = { mqtt: 0, websockets: 1, http: 2 } as const;

const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

// ---- client frames ----

/** One client frame. `lengthField` overrides the length written (a length that lies);
 *  `lengthForm` forces the 16- or 64-bit form for a length that fits a shorter one. */
export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  key: Uint8Array;
  payload: Uint8Array;
  lengthField?: bigint | number;
  lengthForm?: 16 | 64;
}

/** The bytes of `frames`, one after the other. */
export function encodeFrames(frames: Frame[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + frameSize(f), 0));
  let at = 0;
  for (const f of frames) at = writeFrame(out, at, f);
  return out;
}

function lengthForm(f: Frame): 7 | 16 | 64 {
  const len = f.lengthField ?? f.payload.length;
  return len > 0xffff || f.lengthForm === 64 ? 64 : len > 125 || f.lengthForm === 16 ? 16 : 7;
}

function frameSize(f: Frame): number {
  const form = lengthForm(f);
  return (form === 7 ? 2 : form === 16 ? 4 : 10) + (f.masked ? 4 : 0) + f.payload.length;
}

/** Writes `f` at `at`; returns where it ends. */
function writeFrame(out: Uint8Array, at: number, f: Frame): number {
  const form = lengthForm(f);
  const len = f.lengthField ?? BigInt(f.payload.length);
  out[at] = (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 15);
  out[at + 1] = (f.masked ? 0x80 : 0) | (form === 7 ? Number(len) : form === 16 ? 126 : 127);
  at += 2;
  if (form === 16) {
    out[at++] = Number(len) >> 8;
    out[at++] = Number(len) & 0xff;
  } else if (form === 64) {
    const big = BigInt.asUintN(64, BigInt(len));
    for (let k = 7; k >= 0; k--) out[at++] = Number((big >> BigInt(k * 8)) & 0xffn);
  }
  const p = f.payload;
  if (!f.masked) {
    out.set(p, at);
    return at + p.length;
  }
  const key = f.key;
  out.set(key, at);
  at += 4;
  for (let i = 0; i < p.length; i++) out[at + i] = p[i] ^ key[i & 3];
  return at + p.length;
}

const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

/** A well-formed masked frame with a fixed key (the harness's own clients). */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  return encodeFrames([{ fin, rsv: 0, opcode, masked: true, key: KEY, payload }]);
}

export function closePayload(code: number, reason: ArrayLike<number> = []): Uint8Array {
  const b = new Uint8Array(2 + reason.length);
  b[0] = code >> 8;
  b[1] = code & 0xff;
  b.set(reason, 2);
  return b;
}

// ---- the upgrade request ----

interface Request {
  method: string;
  target: string;
  version: string;
  headers: Array<[string, string]>;
  eol: string;
  /** the request's bytes end before its blank line (it never ends) */
  unfinished?: boolean;
  /** bytes put in somewhere (a NUL, a byte above 0x7f) */
  insert?: { at: number; b: Uint8Array };
}

const textBytes = new TextEncoder();
const base64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** The fixed upgrade the harness's own WebSocket clients send. */
export const UPGRADE = textBytes.encode("GET /mqtt HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n");

function upgradeRequest(r: Rng): Request {
  const headers: Array<[string, string]> = [["Host", "fuzz:8080"]];
  headers.push(["Upgrade", r.pick(["websocket", "websocket", "WebSocket"])]);
  headers.push(["Connection", r.pick(["Upgrade", "Upgrade", "keep-alive, Upgrade", "upgrade"])]);
  headers.push(["Sec-WebSocket-Key", base64(r.bytes(16))]);
  headers.push(["Sec-WebSocket-Version", "13"]);
  if (r.chance(0.8)) headers.push(["Sec-WebSocket-Protocol", r.pick(["mqtt", "mqtt", "mqttv3.1", "mqttv3.1, mqtt", "foo, mqtt"])]);
  if (r.chance(0.2)) headers.push(["Origin", "http://fuzz"]);
  // the order of the headers does not matter (Host stays first, as browsers send it)
  for (let i = headers.length - 1; i > 1; i--) {
    if (!r.chance(0.3)) continue;
    const j = r.range(1, i);
    [headers[i], headers[j]] = [headers[j], headers[i]];
  }
  return { method: "GET", target: r.pick(["/mqtt", "/mqtt", "/", "/ws?x=1"]), version: "HTTP/1.1", headers, eol: "\r\n" };
}

function plainGet(r: Rng): Request {
  const headers: Array<[string, string]> = [["Host", "fuzz:8080"]];
  if (r.chance(0.5)) headers.push(["Accept", r.pick(["*/*", "text/html", "application/json"])]);
  if (r.chance(0.2)) headers.push(["Connection", "close"]);
  const target = r.pick(["/metrics", "/metrics", "/stats.json", "/stats.json", "/", "/index.html", "/metrics?x=1", "/nope", "/mqtt"]);
  return { method: "GET", target, version: "HTTP/1.1", headers, eol: "\r\n" };
}

const HEADER_NAMES = ["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"];

/** One mutation of the request, where assembly/ws/upgrade.ts and http/serve.ts look. */
function mutateRequest(r: Rng, q: Request): void {
  const hs = q.headers;
  switch (r.int(14)) {
    case 0:
      q.method = r.pick(["POST", "get", "HEAD", "G ET", "", "PUT", "GETX", "OPTIONS"]);
      return;
    case 1:
      q.target = r.pick(["/metrics", "/stats.json", "/", "/index.html", "", "/nope", "*", "/" + "a".repeat(r.pick([100, 3000, 5000])),
        "/metrics?", "/stats.json?x", "metrics", "/metrics/"]);
      return;
    case 2:
      q.version = r.pick(["HTTP/1.0", "HTTP/2", "HTTP/1.1 ", "", "http/1.1", "HTTP/1.11", " HTTP/1.1"]);
      return;
    case 3:
      if (hs.length > 0) hs.splice(r.int(hs.length), 1); // a header missing
      return;
    case 4:
      if (hs.length > 0) hs.splice(r.int(hs.length + 1), 0, structuredClone(r.pick(hs))); // twice
      return;
    case 5: {
      // a value that is wrong
      const name = r.pick(HEADER_NAMES);
      const value = name === "Upgrade" ? r.pick(["h2c", "", "websocket, h2c", "web socket"])
        : name === "Connection" ? r.pick(["close", "", "keep-alive", "Upgrade,", ",,upgrade,,"])
        : name === "Sec-WebSocket-Key" ? r.pick(["", "abc", base64(r.bytes(15)), base64(r.bytes(17)), "x".repeat(24), " ".repeat(24)])
        : name === "Sec-WebSocket-Version" ? r.pick(["8", "12", "13 ", "", "13, 8", "0013"])
        : r.pick(["", "foo", "MQTT", "mqttv5", ",", "mqtt".repeat(100)]);
      const h = hs.find((x) => x[0] === name);
      if (h) h[1] = value;
      else hs.push([name, value]);
      return;
    }
    case 6: {
      // header names in another case, blanks around the value
      const h = hs.length > 0 ? r.pick(hs) : undefined;
      if (!h) return;
      if (r.chance(0.5)) h[0] = r.chance(0.5) ? h[0].toUpperCase() : h[0].toLowerCase();
      else h[1] = r.pick([" ", "\t", "  \t"]) + h[1] + r.pick(["", " ", "\t"]);
      return;
    }
    case 7: {
      // a line without a colon, or with nothing before it
      const h = hs.length > 0 ? r.pick(hs) : undefined;
      if (!h) return;
      if (r.chance(0.5)) {
        h[0] = `${h[0]} ${h[1]}`;
        h[1] = "\u0000"; // marks a line written without ": " (see encodeRequest)
      } else h[0] = "";
      return;
    }
    case 8:
      q.eol = r.pick(["\n", "\r", "\n\r"]);
      return;
    case 9: {
      // headers up to, just below or just above the 4096-byte limit
      const size = r.pick([4000, 4090, 4094, 4095, 4096, 4097, 4100, 8000]);
      const now = encodeRequest(q).length;
      if (size > now + 12) hs.push(["X-Filler", "a".repeat(size - now - 12)]);
      return;
    }
    case 10:
      q.unfinished = true;
      return;
    case 11: {
      const b = r.pick([[0], [0xff], [0x80], [0xc3, 0x28], [0x0d], [0x0a], [0x3a], [0x20]]);
      q.insert = { at: r.int(200), b: new Uint8Array(b) };
      return;
    }
    case 12:
      // an upgrade turned into a plain GET, or the reverse
      if (hs.some((h) => h[0] === "Upgrade")) q.headers = hs.filter((h) => !HEADER_NAMES.includes(h[0]) || r.chance(0.2));
      else hs.push(["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Version", "13"]);
      return;
    default:
      for (let i = 0; i < 3; i++) if (hs.length > 1) hs.splice(r.int(hs.length), 1);
      return;
  }
}

function encodeRequest(q: Request): Uint8Array {
  let s = `${q.method} ${q.target} ${q.version}${q.eol}`;
  for (const [n, v] of q.headers) s += v === "\u0000" ? `${n}${q.eol}` : `${n}: ${v}${q.eol}`;
  if (!q.unfinished) s += q.eol;
  let b = textBytes.encode(s);
  if (q.insert) {
    const at = Math.min(q.insert.at, b.length);
    const out = new Uint8Array(b.length + q.insert.b.length);
    out.set(b.subarray(0, at));
    out.set(q.insert.b, at);
    out.set(b.subarray(at), at + q.insert.b.length);
    b = out;
  }
  return b;
}

// ---- frames around an MQTT stream ----

/** Payload sizes of the data frames an MQTT stream of `n` bytes is cut into. */
function pieceSizes(r: Rng, n: number): number[] {
  const x = r.next();
  if (n <= 1 || x < 0.3) return [n];
  if (x < 0.42 && n <= 256) return new Array<number>(n).fill(1);
  const sizes: number[] = [];
  const small = x < 0.65 && n <= 4096; // many small frames: most packets span several
  for (let left = n; left > 0;) {
    const s = Math.min(left, small ? r.range(1, 16) : r.range(1, Math.max(1, Math.ceil(n / r.range(2, 4)))));
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

function dataFrame(r: Rng, opcode: number, fin: boolean, payload: Uint8Array): Frame {
  return { fin, rsv: 0, opcode, masked: true, key: r.chance(0.05) ? new Uint8Array(4) : r.bytes(4), payload };
}

function controlFrame(r: Rng): Frame {
  const opcode = r.chance(0.8) ? OP.ping : OP.pong;
  return dataFrame(r, opcode, true, r.bytes(r.pick([0, 1, 4, 11, 125])));
}

function closeFrame(r: Rng): Frame {
  const x = r.int(10);
  const payload = x === 0 ? new Uint8Array(0)
    : x === 1 ? new Uint8Array([0x03])                                      // one byte: 1002
    : x === 2 ? closePayload(1000, [0x62, 0x79, 0x65])
    : x === 3 ? closePayload(1000, r.pick([[0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]])) // 1007
    : x === 4 ? closePayload(r.pick([999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 0]))  // codes no one may send: 1002
    : x === 5 ? closePayload(r.pick([1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]))
    : x === 6 ? closePayload(1000, new Uint8Array(123).fill(0x61))        // 125 bytes: the most a control frame holds
    : x === 7 ? closePayload(1000, [0xf0, 0x9f, 0x98, 0x80])             // valid 4-byte UTF-8
    : closePayload(1000);
  return dataFrame(r, OP.close, true, payload);
}

/** The MQTT bytes as data frames, sometimes in fragmented messages, with control frames
 *  between them (allowed inside a fragmented message, §5.4) and sometimes a close at the end. */
function framesFor(r: Rng, mqtt: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  const fragmenting = r.chance(0.4);
  let inMessage = false;
  let at = 0;
  for (const s of mqtt.length > 0 ? pieceSizes(r, mqtt.length) : []) {
    const payload = mqtt.subarray(at, at + s);
    at += s;
    const fin = at === mqtt.length || !fragmenting || r.chance(0.3);
    frames.push(dataFrame(r, inMessage ? OP.continuation : OP.binary, fin, payload));
    inMessage = !fin;
    if (r.chance(0.06)) frames.push(controlFrame(r));
    if (r.chance(0.02)) frames.push(dataFrame(r, inMessage ? OP.continuation : OP.binary, !inMessage, new Uint8Array(0)));
  }
  if (r.chance(0.25)) {
    frames.push(closeFrame(r));
    if (r.chance(0.2)) frames.push(dataFrame(r, OP.binary, true, r.bytes(r.int(8)))); // after the close: ignored
  }
  return frames;
}

/** One frame mutated where assembly/ws/frames.ts and input.ts look. */
function mutateFrames(r: Rng, frames: Frame[]): void {
  if (frames.length === 0) return;
  const i = r.int(frames.length);
  const f = frames[i];
  switch (r.int(14)) {
    case 0: f.masked = false; return;                                     // §5.1 clients must mask
    case 1: f.rsv = r.pick([1, 2, 4, 7]); return;
    case 2: f.opcode = r.pick([OP.text, 3, 7, 11, 15]); return;
    case 3: f.opcode = f.opcode === OP.continuation ? OP.binary : OP.continuation; return; // nothing to continue, or a message not ended
    case 4: frames.splice(i, 0, { ...controlFrame(r), fin: false }); return;                  // a fragmented control frame
    case 5: frames.splice(i, 0, dataFrame(r, r.pick([OP.ping, OP.pong, OP.close]), true, r.bytes(r.pick([126, 127, 200, 1000])))); return;
    case 6: f.lengthField = Math.max(0, f.payload.length + r.pick([-3, -2, -1, 1, 2, 3])); return;
    case 7: f.lengthField = r.pick([1n << 63n, (1n << 63n) + 1n, (1n << 64n) - 1n, 1n << 32n, 1n << 31n, 65536n, 70000n, 1n << 40n]); return;
    case 8: f.lengthForm = r.pick([16, 64] as const); return;               // non-minimal (RFC 6455 says minimal; tolerated)
    case 9: frames.splice(i, 1); return;
    case 10: frames.splice(r.int(frames.length + 1), 0, structuredClone(f)); return;
    case 11: f.fin = !f.fin; return;
    case 12: f.payload = r.bytes(r.int(24)); return;                    // not MQTT inside a good frame
    default: {
      const j = r.int(frames.length);
      [frames[i], frames[j]] = [frames[j], frames[i]];
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An upgrade, then `mqtt` in frames; `mutate`: sometimes a mutated upgrade, mutated frames
 *  and flipped bytes. */
export function overWebSocket(r: Rng, mqtt: Uint8Array, mutate: boolean): Uint8Array {
  const q = upgradeRequest(r);
  if (mutate && r.chance(0.08)) mutateRequest(r, q);
  const frames = framesFor(r, mqtt);
  if (mutate && r.chance(0.3)) for (let k = r.range(1, 3); k > 0; k--) mutateFrames(r, frames);
  const head = encodeRequest(q);
  const body = encodeFrames(frames);
  if (mutate && r.chance(0.04) && body.length > 0) {
    for (let k = r.range(1, 3); k > 0; k--) body[r.int(body.length)] ^= 1 << r.int(8);
  }
  return concat([head, body]);
}

/** What a client sends to a WebSocket (or http) listener that is not MQTT over WebSockets
 *  done right: a plain GET, a mutated upgrade, garbage, and what may follow them. */
export function httpStream(r: Rng, mqtt: () => Uint8Array): Uint8Array {
  const x = r.next();
  if (x < 0.35) {
    const q = plainGet(r);
    if (r.chance(0.3)) mutateRequest(r, q);
    const b = encodeRequest(q);
    return r.chance(0.2) ? concat([b, encodeRequest(plainGet(r))]) : b; // a pipelined second request: unanswered
  }
  if (x < 0.75) {
    const q = upgradeRequest(r);
    for (let k = r.range(1, 3); k > 0; k--) mutateRequest(r, q);
    return concat([encodeRequest(q), encodeFrames(framesFor(r, mqtt()))]);
  }
  const y = r.int(5);
  if (y === 0) return r.bytes(r.range(1, 200));
  if (y === 1) return concat([new Uint8Array([r.range(0x41, 0x5a)]), r.bytes(r.range(0, 300))]); // a "method", then noise
  if (y === 2) return mqtt(); // MQTT on a WebSocket port
  if (y === 3) return concat([textBytes.encode("GET "), r.bytes(r.range(0, 100)), textBytes.encode("\r\n\r\n")]);
  return encodeFrames(framesFor(r, mqtt())); // frames without an upgrade
}

// ---- what the core sent ----

export interface ServerOutput {
  /** the HTTP status, 0 when nothing was sent */
  status: number;
  /** the MQTT bytes of the binary frames, joined */
  mqtt: Uint8Array;
  /** the code of the close frame (the last frame), or -1 */
  closeCode: number;
  /** the payloads of the pongs */
  pongs: Uint8Array[];
}

const latin1 = new TextDecoder("latin1");
const STATUSES = new Set([101, 200, 400, 404, 405, 426, 431]);
const CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1007, 1009]);
const PROMETHEUS_LINE = /^(# HELP midge_\w+ .+|# TYPE midge_\w+ (counter|gauge)|midge_\w+(\{\w+="[^"\\]*"\})? -?\d+)$/;

/** Reads what the core sent on a connection of listener `http` (true: `protocol http`) or
 *  `protocol websockets`: an HTTP answer, then after a 101 server frames. Returns the
 *  answer, or a string saying what is not well-formed. */
export function readServerOutput(out: Uint8Array, httpOnly: boolean): ServerOutput | string {
  const got: ServerOutput = { status: 0, mqtt: new Uint8Array(0), closeCode: -1, pongs: [] };
  if (out.length === 0) return got;
  let end = -1;
  for (let i = 0; i + 3 < out.length; i++) {
    if (out[i] === 13 && out[i + 1] === 10 && out[i + 2] === 13 && out[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) return `an HTTP answer without its blank line: ${JSON.stringify(latin1.decode(out.subarray(0, 80)))}`;
  const lines = latin1.decode(out.subarray(0, end)).split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3}) [A-Za-z ]+$/.exec(lines[0]);
  if (!m) return `not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`;
  got.status = Number(m[1]);
  if (!STATUSES.has(got.status)) return `HTTP status ${got.status}`;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const h = /^([A-Za-z][A-Za-z0-9-]*): (\S.*)$/.exec(line);
    if (!h) return `a malformed header line in the answer: ${JSON.stringify(line)}`;
    headers.set(h[1].toLowerCase(), h[2]);
  }
  const rest = out.subarray(end + 4);
  if (got.status !== 101) {
    const length = Number(headers.get("content-length") ?? NaN);
    if (!Number.isInteger(length)) return `a ${got.status} answer without a Content-Length`;
    if (rest.length !== length) return `a ${got.status} answer says Content-Length ${length} but ${rest.length} bytes follow`;
    if (headers.get("connection") !== "close") return `a ${got.status} answer without Connection: close`;
    if (got.status !== 200 && got.status !== 404 && length !== 0) return `a ${got.status} answer with a body`;
    if (got.status === 200) return checkBody(headers.get("content-type") ?? "", latin1.decode(rest)) ?? got;
    return got;
  }
  if (httpOnly) return "a protocol http listener upgraded a connection to WebSocket";
  if (headers.get("upgrade") !== "websocket" || headers.get("connection") !== "Upgrade") return "a 101 answer without Upgrade: websocket";
  if (!/^[A-Za-z0-9+/]{27}=$/.test(headers.get("sec-websocket-accept") ?? "")) return "a 101 answer without a Sec-WebSocket-Accept";
  const protocol = headers.get("sec-websocket-protocol");
  if (protocol !== undefined && protocol !== "mqtt" && protocol !== "mqttv3.1") return `subprotocol ${protocol}`;
  return readFrames(rest, got);
}

function checkBody(type: string, body: string): string | null {
  if (type === "application/json") {
    try {
      const j = JSON.parse(body) as { metrics?: unknown; tables?: unknown };
      if (typeof j.metrics !== "object" || typeof j.tables !== "object") return "/stats.json without metrics and tables";
    } catch (error) {
      return `/stats.json is not JSON: ${(error as Error).message}`;
    }
    return null;
  }
  if (type.startsWith("text/plain; version=0.0.4")) {
    if (!body.endsWith("\n")) return "/metrics does not end with a newline";
    const bad = body.slice(0, -1).split("\n").find((l) => !PROMETHEUS_LINE.test(l));
    return bad === undefined ? null : `/metrics has a line that is not Prometheus text: ${JSON.stringify(bad)}`;
  }
  if (type.startsWith("text/html")) return body.startsWith("<!doctype html>") ? null : "the status page is not HTML";
  return `a 200 answer of type ${type}`;
}

/** Whether `b` is whole server control frames (pong, close) and nothing else. */
export function onlyControlFrames(b: Uint8Array): boolean {
  let at = 0;
  while (at + 2 <= b.length) {
    if ((b[at] !== 0x88 && b[at] !== 0x8a) || b[at + 1] > 125) return false;
    at += 2 + b[at + 1];
  }
  return at === b.length && b.length > 0;
}

/** Server frames (§5.2): FIN set, no RSV bits, unmasked, the shortest length form; binary,
 *  pong or close, the close last with a code only. */
function readFrames(b: Uint8Array, got: ServerOutput): ServerOutput | string {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    if (got.closeCode >= 0) return `${b.length - at} bytes after the close frame`;
    if (b.length - at < 2) return "a frame header cut short";
    const b0 = b[at], b1 = b[at + 1];
    if ((b0 & 0xf0) !== 0x80) return `a server frame with FIN clear or RSV bits: first byte ${b0.toString(16)}`;
    if (b1 & 0x80) return "a masked server frame";
    const op = b0 & 15;
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (b.length - at < 4) return "a frame header cut short";
      len = (b[at + 2] << 8) | b[at + 3];
      head = 4;
      if (len < 126) return `a 16-bit length of ${len}`;
    } else if (len === 127) {
      if (b.length - at < 10) return "a frame header cut short";
      const big = new DataView(b.buffer, b.byteOffset + at + 2, 8).getBigUint64(0);
      if (big < 65536n || big > BigInt(b.length)) return `a 64-bit length of ${big}`;
      len = Number(big);
      head = 10;
    }
    if (b.length - at - head < len) return `a frame of ${len} bytes cut short`;
    const payload = b.subarray(at + head, at + head + len);
    at += head + len;
    if (op === OP.binary) parts.push(payload);
    else if (op === OP.pong) {
      if (len > 125) return `a pong of ${len} bytes`;
      got.pongs.push(payload);
    } else if (op === OP.close) {
      if (len !== 2) return `a close frame of ${len} bytes`;
      got.closeCode = (payload[0] << 8) | payload[1];
      if (!CLOSE_CODES.has(got.closeCode)) return `close code ${got.closeCode}`;
    } else return `a server frame with opcode ${op}`;
  }
  got.mqtt = concat(parts);
  return got;
}
