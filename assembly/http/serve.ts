// Plain HTTP on the listeners that speak it (`protocol websockets`, as Mosquitto 2.1
// serves http_dir there, and `protocol http`): a GET without an upgrade is answered and
// the connection closed. `/metrics`: Prometheus text format; `/stats.json`: the same
// numbers for the status page; `/`: the status page itself (page.ts). From the one table
// of sys/metrics.ts, so all three say what `$SYS` says.

import { WEBSOCKETS } from "../config";
import { hostSend, CloseReason, LogLevel } from "../host";
import { closeConnection } from "../session/lifecycle";
import { wsConn, WsPhase } from "../ws/state";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logInt, logBytes, logEnd, logTakeInto } from "../log";
import { metric, sysName, promName, help, kind, value, label, Kind, noteStart } from "../sys/metrics";
import { listenText } from "../configfile";
import { Text } from "../settings";
import { INPUT } from "../broker";
import { now } from "../clock";
import { VERSION } from "../version";
import { page } from "./page";

// @ts-ignore: decorator
@inline const BODY_MAX: i32 = 65536;
const BODY = memory.data(WEBSOCKETS ? BODY_MAX : 8, 8);
const HEAD = memory.data(WEBSOCKETS ? 256 : 8, 8);
let bpos: usize = 0;
let bend: usize = 0;

function put(s: string): void {
  for (let i = 0, n = s.length; i < n && bpos < bend; i++) store<u8>(bpos++, <u8>s.charCodeAt(i));
}
function putBytes(p: usize, n: i32): void {
  const room = <i32>(bend - bpos);
  if (n > room) n = room;
  memory.copy(bpos, p, <usize>n);
  bpos += <usize>n;
}
function putNumber(v: f64): void {
  logStart(); logInt(<i64>v);
  const n = logTakeInto(bpos, <i32>(bend - bpos));
  bpos += <usize>n;
}

/** Answer the GET of `target` (its bytes at (p, e)) on `conn` and close it. */
export function serveHttp(conn: i32, p: usize, e: usize): i32 {
  let q = p;
  while (q < e && load<u8>(q) != 0x3F) q++; // the query string is not looked at
  if (logOn(LogLevel.Debug)) {
    logStart(); logText("connection "); logInt(conn); logText(": HTTP GET "); logBytes(p, <i32>(e - p)); logEnd(LogLevel.Debug);
  }
  bpos = BODY; bend = BODY + <usize>BODY_MAX;
  let status = 200;
  let type = "text/plain; version=0.0.4; charset=utf-8";
  if (pathIs(p, q, "/metrics")) prometheus();
  else if (pathIs(p, q, "/stats.json")) { json(); type = "application/json"; }
  else if (pathIs(p, q, "/") || pathIs(p, q, "/index.html")) { put(page()); type = "text/html; charset=utf-8"; }
  else { status = 404; put("not found: try /, /metrics or /stats.json\n"); type = "text/plain; charset=utf-8"; }
  const body = <i32>(bpos - BODY);
  bpos = HEAD; bend = HEAD + 256;
  const save = bpos;
  put(status == 200 ? "HTTP/1.1 200 OK\r\nContent-Type: " : "HTTP/1.1 404 Not Found\r\nContent-Type: ");
  put(type);
  put("\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ");
  logStart(); logInt(body); const n = logTakeInto(bpos, 16); bpos += <usize>n;
  put("\r\n\r\n");
  hostSend(conn, HEAD, <u32>(bpos - save));
  if (body > 0) hostSend(conn, BODY, <u32>body);
  statAdd(Stat.BytesSent, <f64>(<i32>(bpos - save) + body));
  wsConn(conn).phase = <u8>WsPhase.Closed;
  closeConnection(conn, CloseReason.HttpServed);
  return -1;
}

function pathIs(p: usize, e: usize, s: string): bool {
  if (<i32>(e - p) != s.length) return false;
  for (let i = 0; i < s.length; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

/** Prometheus text format 0.0.4: HELP and TYPE once per name, then its samples. */
function prometheus(): void {
  noteStart(now);
  put("# HELP midge_info The broker's version\n# TYPE midge_info gauge\nmidge_info{version=\""); put(VERSION); put("\"} 1\n");
  let last = "";
  // one family after the other: the table rows (used, size, used, ...) in two passes
  for (let pass = 0; pass < 3; pass++) for (let i = 0; metric(i); i++) {
    if (promName.length == 0) continue;
    if (pass != (label.length == 0 ? 0 : promName == "table_used" ? 1 : 2)) continue;
    if (promName != last) {
      put("# HELP midge_"); put(promName); put(" "); put(help); put("\n");
      put("# TYPE midge_"); put(promName); put(kind == Kind.Counter ? " counter\n" : " gauge\n");
      last = promName;
    }
    put("midge_"); put(promName);
    if (label.length > 0) { put("{table=\""); put(label); put("\"}"); }
    put(" "); putNumber(value); put("\n");
  }
}

/** The numbers of /metrics as one JSON object (the status page reads it). */
function json(): void {
  noteStart(now);
  put("{\"version\":\""); put(VERSION); put("\",\"now\":"); putNumber(now);
  put(",\"metrics\":{");
  let first = true;
  for (let i = 0; metric(i); i++) {
    if (promName.length == 0 || label.length > 0) continue;
    if (!first) put(",");
    first = false;
    put("\""); put(promName); put("\":"); putNumber(value);
  }
  put("},\"tables\":{");
  first = true;
  for (let i = 0; metric(i); i++) {
    if (label.length == 0 || promName != "table_used") continue;
    const used = value;
    metric(i + 1); // its size is the next row
    if (!first) put(",");
    first = false;
    put("\""); put(label); put("\":["); putNumber(used); put(","); putNumber(value); put("]");
  }
  put("},\"listeners\":[");
  for (let k = 0; k < 16; k++) {
    const n = listenText(Text.Listener + k);
    if (n == 0) break;
    if (k > 0) put(",");
    put("\""); putBytes(INPUT, n); put("\"");
  }
  put("]}\n");
}
