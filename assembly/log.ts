// Log lines built without allocating: text is appended into one static buffer and
// handed to the host in UTF-8. Client-supplied bytes are escaped so a log line can
// never carry control characters.

import { hostLog, LogLevel } from "./host";

// @ts-ignore: decorator
@inline const LOG_SIZE: i32 = 400;
const LOG = memory.data(LOG_SIZE + 8, 8);
let logPos: usize = LOG;

/** Set by the host through init: lines above this level are not even built. */
export let logLevel: i32 = LogLevel.Info;
export function setLogLevel(level: i32): void { logLevel = level; }

// @ts-ignore: decorator
@inline export function logOn(level: i32): bool { return level <= logLevel; }

export function logStart(): void { logPos = LOG; }

function put(c: i32): void {
  if (logPos < LOG + <usize>LOG_SIZE) store<u8>(logPos++, <u8>c);
}

/** Append a static ASCII string. */
export function logText(s: string): void {
  for (let i = 0, n = s.length; i < n; i++) put(s.charCodeAt(i));
}

/** Append client bytes (a client id, a topic), printable ASCII kept, the rest as \xNN. */
export function logBytes(ptr: usize, len: i32): void {
  const shown = min(len, 120);
  for (let i = 0; i < shown; i++) {
    const c = <i32>load<u8>(ptr + <usize>i);
    if (c >= 0x20 && c < 0x7F && c != 0x5C) { put(c); continue; }
    put(0x5C); put(0x78); put(hex(c >> 4)); put(hex(c & 15));
  }
  if (shown < len) logText("...");
}

function hex(d: i32): i32 { return d < 10 ? 0x30 + d : 0x61 + d - 10; }

export function logInt(v: i64): void {
  if (v < 0) { put(0x2D); v = -v; }
  let div: i64 = 1;
  while (v / div >= 10) div *= 10;
  while (div > 0) { put(<i32>((v / div) % 10) + 0x30); div /= 10; }
}

export function logEnd(level: i32): void {
  hostLog(level, LOG, <u32>(logPos - LOG));
  logPos = LOG;
}

/** The line built so far, copied to `to` (at most `cap` bytes) instead of logged: an
 *  answer the host prints itself (a refused option). Returns its length. */
export function logTakeInto(to: usize, cap: i32): i32 {
  const n = min(<i32>(logPos - LOG), cap);
  memory.copy(to, LOG, <usize>n);
  logPos = LOG;
  return n;
}
