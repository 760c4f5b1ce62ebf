// The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4.2): the client's GET request
// is read whole (it ends with an empty line), checked, and answered with 101 Switching
// Protocols and Sec-WebSocket-Accept = base64(SHA-1(key + GUID)), the digest from the
// host's crypto service. Any path is accepted; the subprotocol answered is the first of
// `mqtt` and `mqttv3.1` the client offers (none when it offers none, as Mosquitto). A bad
// request gets an HTTP error status, then the connection is closed.

import { WEBSOCKETS } from "../config";
import { hostSend, hostSha1, CloseReason, LogLevel } from "../host";
import { closeConnection } from "../session/lifecycle";
import { logOn, logStart, logText, logInt, logEnd } from "../log";
import { wsConn, WsPhase } from "./state";
import { serveHttp } from "../http/serve";
import { statAdd, Stat } from "../stats";

/** Longest upgrade request read (browsers send under 1 KiB; Mosquitto's default
 *  websockets_headers_size is 4096). */
// @ts-ignore: decorator
@inline export const UPGRADE_MAX: i32 = 4096;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const KEY_GUID = memory.data(WEBSOCKETS ? 64 : 8, 8);   // the key (24 bytes) and the GUID (36)
const DIGEST = memory.data(WEBSOCKETS ? 20 : 8, 8);
const ANSWER = memory.data(WEBSOCKETS ? 256 : 8, 8);
let apos: usize = 0;

// What the request said (reset for each request).
let upgradeWebsocket = false;   // Upgrade: websocket
let connectionUpgrade = false;  // Connection: ..., upgrade
let version13 = false;          // Sec-WebSocket-Version: 13
let keyAt: usize = 0;           // Sec-WebSocket-Key
let keyLen: i32 = 0;
let protocolOffered = false;    // a Sec-WebSocket-Protocol header came
let protocol: i32 = 0;          // 1: mqtt, 2: mqttv3.1 (the first offered of them)

/** The upgrade request at (p, stop) for `conn`: the bytes it took (the connection is then
 *  upgraded), 0 while it is incomplete, or -1 when it was refused with an HTTP status and
 *  the connection is closing. */
export function upgrade(conn: i32, p: usize, stop: usize): i32 {
  // a method is a token of capital letters: anything else (MQTT sent to a WebSocket port) at once
  const c0 = <i32>load<u8>(p);
  if (c0 < 0x41 || c0 > 0x5A) return refuse(conn, 400, "not an HTTP request");
  let end = blankLine(p, stop);
  if (end == 0) return stop - p >= <usize>UPGRADE_MAX ? refuse(conn, 431, "request headers too large") : 0;
  // the same limit when the whole request came at once: the answer must not depend on how it arrived
  if (end - p > <usize>UPGRADE_MAX) return refuse(conn, 431, "request headers too large");
  statAdd(Stat.BytesReceived, <f64>(end - p)); // (MQTT bytes are counted packet by packet)
  // the request line: GET SP target SP HTTP/1.1
  const eol = lineEnd(p, end);
  if (!startsWith(p, eol, "GET ")) return refuse(conn, 405, "not a GET request");
  if (eol - p < 14 || !startsWith(eol - 9, eol, " HTTP/1.1")) return refuse(conn, 400, "not HTTP/1.1");
  upgradeWebsocket = connectionUpgrade = version13 = protocolOffered = false;
  keyAt = 0; keyLen = 0; protocol = 0;
  for (let q = eol + 2; q < end - 2;) {
    const e = lineEnd(q, end);
    if (!header(q, e)) return refuse(conn, 400, "a malformed header line");
    q = e + 2;
  }
  // a plain GET, nothing of an upgrade in it: /metrics, the status page (http/serve.ts)
  if (!upgradeWebsocket && !connectionUpgrade && keyLen == 0) return serveHttp(conn, p + 4, eol - 9);
  if (wsConn(conn).spare != 0) return refuse(conn, 400, "a WebSocket upgrade on a protocol http listener");
  if (!upgradeWebsocket || !connectionUpgrade) return refuse(conn, 426, "no Upgrade: websocket");
  if (!version13) return refuse(conn, 426, "not Sec-WebSocket-Version 13");
  if (keyLen != 24) return refuse(conn, 400, "no valid Sec-WebSocket-Key");
  if (protocolOffered && protocol == 0) return refuse(conn, 400, "no subprotocol mqtt or mqttv3.1 offered");
  memory.copy(KEY_GUID, keyAt, 24);
  for (let i = 0; i < 36; i++) store<u8>(KEY_GUID + 24 + <usize>i, <u8>GUID.charCodeAt(i));
  hostSha1(KEY_GUID, 60, DIGEST);
  apos = ANSWER;
  put("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  base64(DIGEST, 20);
  if (protocol != 0) { put("\r\nSec-WebSocket-Protocol: "); put(protocol == 1 ? "mqtt" : "mqttv3.1"); }
  put("\r\n\r\n");
  hostSend(conn, ANSWER, <u32>(apos - ANSWER));
  wsConn(conn).phase = <u8>WsPhase.Open;
  return <i32>(end - p);
}

/** One header line (q, e): false when it has no colon. */
function header(q: usize, e: usize): bool {
  let colon = q;
  while (colon < e && load<u8>(colon) != 0x3A) colon++;
  if (colon == e || colon == q) return false;
  let v = colon + 1, ve = e;
  while (v < ve && isBlank(load<u8>(v))) v++;
  while (ve > v && isBlank(load<u8>(ve - 1))) ve--;
  if (nameIs(q, colon, "upgrade")) upgradeWebsocket = upgradeWebsocket || hasToken(v, ve, "websocket") != 0;
  else if (nameIs(q, colon, "connection")) connectionUpgrade = connectionUpgrade || hasToken(v, ve, "upgrade") != 0;
  else if (nameIs(q, colon, "sec-websocket-version")) version13 = nameIs(v, ve, "13");
  else if (nameIs(q, colon, "sec-websocket-key")) { keyAt = v; keyLen = <i32>(ve - v); }
  else if (nameIs(q, colon, "sec-websocket-protocol")) {
    protocolOffered = true;
    if (protocol == 0) protocol = hasToken(v, ve, "mqtt", "mqttv3.1");
  }
  return true;
}

/** Of a comma-separated list (v, ve): 1 if `a` comes first, 2 if `b` does, 0: neither (any case). */
function hasToken(v: usize, ve: usize, a: string, b: string = ""): i32 {
  while (v < ve) {
    while (v < ve && (isBlank(load<u8>(v)) || load<u8>(v) == 0x2C)) v++;
    let t = v;
    while (t < ve && load<u8>(t) != 0x2C) t++;
    let te = t;
    while (te > v && isBlank(load<u8>(te - 1))) te--;
    if (nameIs(v, te, a)) return 1;
    if (b.length > 0 && nameIs(v, te, b)) return 2;
    v = t;
  }
  return 0;
}

/** Whether (p, e) is the ASCII text `s` (lower case), in any case. */
function nameIs(p: usize, e: usize, s: string): bool {
  const n = s.length;
  if (<i32>(e - p) != n) return false;
  for (let i = 0; i < n; i++) {
    let c = <i32>load<u8>(p + <usize>i);
    if (c >= 0x41 && c <= 0x5A) c |= 0x20;
    if (c != s.charCodeAt(i)) return false;
  }
  return true;
}

function startsWith(p: usize, e: usize, s: string): bool {
  const n = s.length;
  if (<i32>(e - p) < n) return false;
  for (let i = 0; i < n; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

// @ts-ignore: decorator
@inline function isBlank(c: u8): bool { return c == 0x20 || c == 0x09; }

/** The end of the request (after its CRLF CRLF), or 0 when it has not all come. */
function blankLine(p: usize, stop: usize): usize {
  for (let q = p; q + 4 <= stop; q++) {
    if (load<u32>(q, 0, 1) == 0x0A0D0A0D) return q + 4;
  }
  return 0;
}

/** Where the line starting at `q` ends (its CR; `end` - 2 at the latest). */
function lineEnd(q: usize, end: usize): usize {
  while (q < end - 2 && !(load<u8>(q) == 0x0D && load<u8>(q + 1) == 0x0A)) q++;
  return q;
}

function put(s: string): void {
  for (let i = 0, n = s.length; i < n; i++) store<u8>(apos++, <u8>s.charCodeAt(i));
}

function base64(p: usize, n: i32): void {
  for (let i = 0; i < n; i += 3) {
    const b0 = <i32>load<u8>(p + <usize>i);
    const b1 = i + 1 < n ? <i32>load<u8>(p + <usize>i + 1) : 0;
    const b2 = i + 2 < n ? <i32>load<u8>(p + <usize>i + 2) : 0;
    store<u8>(apos++, <u8>BASE64.charCodeAt(b0 >> 2));
    store<u8>(apos++, <u8>BASE64.charCodeAt(((b0 & 3) << 4) | (b1 >> 4)));
    store<u8>(apos++, i + 1 < n ? <u8>BASE64.charCodeAt(((b1 & 15) << 2) | (b2 >> 6)) : 0x3D);
    store<u8>(apos++, i + 2 < n ? <u8>BASE64.charCodeAt(b2 & 63) : 0x3D);
  }
}

/** Answers `status` and closes the connection. */
function refuse(conn: i32, status: i32, why: string): i32 {
  apos = ANSWER;
  put("HTTP/1.1 ");
  put(status == 400 ? "400 Bad Request" : status == 405 ? "405 Method Not Allowed"
    : status == 426 ? "426 Upgrade Required" : "431 Request Header Fields Too Large");
  put("\r\nConnection: close\r\nContent-Length: 0\r\n");
  if (status == 426) put("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
  put("\r\n");
  hostSend(conn, ANSWER, <u32>(apos - ANSWER));
  wsConn(conn).phase = <u8>WsPhase.Closed;
  if (logOn(LogLevel.Notice)) {
    logStart(); logText("connection "); logInt(conn); logText(": WebSocket upgrade refused with ");
    logInt(status); logText(": "); logText(why); logEnd(LogLevel.Notice);
  }
  closeConnection(conn, CloseReason.WebSocketError);
  return -1;
}
