// The exported ABI of the Midge core, and nothing else. docs/ABI.md documents every
// export and import, who owns which memory, and the call order.

import { brokerInit, brokerOpen, brokerFeed, brokerDrained, brokerClosed, brokerTick, brokerShutdown, brokerDialed, INPUT, INPUT_CAPACITY,
         neededBytes } from "./broker";
import { configure as configureSetting } from "./settings";
import { option as optionText } from "./options";
import { tableBytes, statValue } from "./budget";
import { readConfig, listenText, setListening } from "./configfile";
import { passwd as passwdStep } from "./auth/passwd";
import { setIdentity } from "./auth/identity";
import { validConnection } from "./session/connections";
import { PERSISTENCE } from "./config";
import { persistence } from "./settings";
import { setNow } from "./clock";
import { restoreBytes, restoreFinish } from "./persist/restore";
import { flushed } from "./persist/journal";

/** Call once. `maxPacketSize` 0 = the board's maximum; `logLevel` 0..4. Returns the limit in force. */
export function init(maxPacketSize: u32, logLevel: i32): u32 { return brokerInit(maxPacketSize, logLevel); }
/** A run-time setting (see Setting in settings.ts), clamped to its range; the value in force, -1 if unknown. */
export function configure(key: i32, value: f64): f64 { return configureSetting(key, value); }
/** One option as text (`--max-inflight`, `10`), both at any place in memory (the host
 *  may use inputBuffer()): the setting it set (0: the host's own option), or -n when
 *  refused, with an n-byte UTF-8 message at inputBuffer(). See Kind and the table in options.ts. */
export function option(name: usize, nameLen: u32, value: usize, valueLen: u32): i32 {
  return optionText(name, nameLen, value, valueLen);
}
/** A config file's text (`text`, `textLen` bytes; only what fits in the input window is
 *  read), named `name` in messages; `part` 0 the main file, 1 a file of its include_dir,
 *  2 the main file again after an include_dir. 0: read; n > 0: an include_dir, its n-byte
 *  directory at inputBuffer(); -n: refused, an n-byte message there. See configfile.ts. */
export function config(name: usize, nameLen: u32, text: usize, textLen: u32, part: i32): i32 {
  return readConfig(name, nameLen, text, textLen, part);
}
/** Text the host needs after the options (Text in settings.ts: 0 the first listener's
 *  address, 1 the note on who may connect, 2-4 the password, ACL and log files, 16 + k
 *  listener k as "PORT ADDRESS"), copied to inputBuffer(); returns its length in bytes. */
export function text(id: i32): i32 { return listenText(id); }
/** The user name a TLS client certificate gives connection `conn` (use_identity_as_username,
 *  use_subject_as_username): `len` bytes at `ptr` (0: no certificate, or no CN), after the
 *  handshake and before the first `feed`. 0, or -1 when refused (see auth/identity.ts). */
export function identity(conn: i32, ptr: usize, len: u32): i32 {
  return validConnection(conn) ? setIdentity(conn, ptr, len) : -1;
}
/** The host bound listener `listener` to `port` (the one the system chose for a port of 0). */
export function listening(listener: i32, port: i32): void { setListening(listener, port); }
/** Where the host writes received bytes before `feed`. */
export function inputBuffer(): usize { return INPUT; }
export function inputCapacity(): u32 { return <u32>INPUT_CAPACITY; }
/** A socket was accepted: its connection id, or -1 when the table is full. */
export function open(now: f64): i32 { return brokerOpen(0, now); }
/** A socket was accepted on listener `listener` (text(16 + listener)): as `open`. */
export function openOn(listener: i32, now: f64): i32 { return brokerOpen(listener, now); }
/** `len` bytes for `conn` are at inputBuffer(); returns how many were consumed. */
export function feed(conn: i32, len: u32, now: f64): u32 { return brokerFeed(conn, len, now); }
/** Total size of the incomplete packet left after the last `feed` (0: header incomplete). */
export function needed(): u32 { return neededBytes; }
/** Everything sent to `conn` has been written to the network (its backlog is 0). */
export function drained(conn: i32, now: f64): void { brokerDrained(conn, now); }
/** The outbound connection the core asked for with `dial` is connected. */
export function dialed(conn: i32, now: f64): void { brokerDialed(conn, now); }
/** The socket of `conn` is gone; the id is free afterwards. */
export function closed(conn: i32, now: f64): void { brokerClosed(conn, now); }
/** Timeouts; returns ms until it wants to be called again. */
export function tick(now: f64): u32 { return brokerTick(now); }
/** The host is shutting down: every connection is closed (MQTT 5 clients get DISCONNECT 0x8B). */
export function shutdown(now: f64): void { brokerShutdown(now); }
/** A counter (see Stat in stats.ts). */
export function stat(id: u32): f64 { return statValue(id); }
/** Bytes of linear memory reserved for table `id` (see Table in budget.ts), -1 past the last. */
export function budget(id: u32): i32 { return tableBytes(id); }
/** The persistence file, read back at start: `len` bytes of it at inputBuffer(); returns
 *  the bytes taken (whole records). `wall`: the wall clock, ms since 1970. */
export function restore(len: u32, now: f64, wall: f64): u32 {
  return PERSISTENCE ? restoreBytes(INPUT, min(len, <u32>INPUT_CAPACITY), now, wall) : len;
}
/** The whole file was offered (or there is none; `error` 3: it could not be read). */
export function restoreEnd(now: f64, wall: f64, error: i32): void {
  if (PERSISTENCE && persistence != 0) restoreFinish(now, wall, error);
}
/** The host's flush is done: `bytes` appended in all are written (synced if it was asked),
 *  or `error` (1 no space, 2 not permitted, 3 other). */
export function persisted(now: f64, bytes: f64, error: i32): void {
  if (PERSISTENCE) { setNow(now); flushed(bytes, error); }
}
/** `midge passwd` (mosquitto_passwd), one step at a time, text in and out through the
 *  input window: Step and Todo in auth/passwd.ts; docs/ABI.md. */
export function passwd(step: i32, len: u32): i32 { return passwdStep(step, len); }
