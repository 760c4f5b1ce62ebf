// The options: one table of names, kinds of value, ranges and defaults, and the one
// parser every host uses (DESIGN §3, "the same flags means the same parser"). A host
// hands each option over as text (`option` in index.ts); the core checks the value
// against the table and sets the setting, or answers with a message that says what is
// wrong and what would be right. The config file (#12) is meant to reuse both: a line
// of it is a key and a value text too.
//
// scripts/vocab.mjs reads this table as well, to write the hosts' option lists and their
// one --help text (host/generated/): keep each row one `case N: return row(...)` line,
// numbered in order, with its help text in the `//` lines right under it. "{boards}" in
// a help text stands for the list of board profiles. Ranges and defaults are in the unit
// the user writes (seconds for a Duration, which the setting holds in milliseconds); a
// default that is a board limit shows as "the board's". A setting's default here must be
// its starting value in settings.ts (test/assembly/options.spec.ts checks it).

import { Setting, configure, setListenAddress, ADDRESS_MAX } from "./settings";
import { keyRange, keyMin, keyMax, setAclFile } from "./configfile";
import { LogLevel } from "./host";
import { PACKET_MAX, MAX_CONNECTIONS, INFLIGHT_MAX, QUEUE_MAX, BACKLOG_MAX } from "./config";
import { INPUT, INPUT_CAPACITY } from "./broker";
import { logStart, logText, logBytes, logInt, logTakeInto } from "./log";

/** How an option's value is written. The word before the colon is its name in --help. */
export const enum Kind {
  Flag = 0,      // no value
  Address = 1,   // ADDR: an address or host name, which the host resolves
  Name = 2,      // NAME: a name the host knows
  Count = 3,     // N: a whole number
  Bytes = 4,     // BYTES: a whole number of bytes
  Millis = 5,    // MS: a whole number of milliseconds
  Seconds = 6,   // SECONDS: a whole number of seconds
  Duration = 7,  // SECONDS: seconds to the millisecond ("0.5"), held in milliseconds
  File = 8,      // FILE: a file the host reads and hands to the core (`config` in index.ts)
}

/** No setting: the host acts on the option itself (where to listen, which board, logging). */
// @ts-ignore: decorator
@inline const HOST: i32 = 0;

// The row `loadRow` loaded last.
export let rowName: usize = 0;     // a static string
export let rowSetting: i32 = HOST;
export let rowKind: Kind = Kind.Flag;
export let rowMin: f64 = 0;
export let rowMax: f64 = 0;
export let rowDefault: f64 = 0;
export let rowShort: usize = 0;    // a static string: its one-letter form ("c" for -c), or ""

// @ts-ignore: decorator
@inline function row(name: string, setting: i32, kind: Kind, min: f64, max: f64, initial: f64, short: string = ""): bool {
  rowName = changetype<usize>(name);
  rowShort = changetype<usize>(short);
  rowSetting = setting;
  rowKind = kind;
  rowMin = min;
  rowMax = max;
  rowDefault = initial;
  return true;
}

/** The row of --verbose, which sets the log level to debug. */
// @ts-ignore: decorator
@inline const VERBOSE_ROW: i32 = 15;
/** The row of --acl-file, whose path the core keeps (text 3). */
// @ts-ignore: decorator
@inline const ACL_FILE_ROW: i32 = 14;

/** Loads row `i` of the table (in --help order); false past the last. */
export function loadRow(i: i32): bool {
  switch (i) {
    //                  name                setting                 kind           min             max           default
    case 0: return row("config",           HOST,                   Kind.File,     0,              0,            0,       "c");
    // read settings from this file, Mosquitto's mosquitto.conf format (see README,
    // Configuration); options given here override it
    case 1: return row("port",             Setting.Port,           Kind.Count,    0,              65535,        1883);
    // TCP port to listen on (a config file's first listener), or $MIDGE_PORT; 0: any free port
    case 2: return row("host",             HOST,                   Kind.Address,  0,              0,            0);
    // address to listen on (a config file's first listener; default 127.0.0.1: this machine only;
    // 0.0.0.0: every network)
    case 3: return row("board",            HOST,                   Kind.Name,     0,              0,            0);
    // board profile: {boards} (default pi). The native host is one binary per board
    // (build/native/midge-NAME) and takes only its own
    case 4: return row("max-packet-size",  Setting.MaxPacketSize,  Kind.Bytes,    20,             PACKET_MAX,   PACKET_MAX);
    // largest packet accepted, fixed header included
    case 5: return row("max-keepalive",    Setting.MaxKeepAlive,   Kind.Seconds,  0,              65535,        0);
    // longest keep-alive allowed; MQTT 5 clients asking for more (or for 0) are told this
    // one (Server Keep Alive); 0: no limit
    case 6: return row("max-connections",  Setting.MaxConnections, Kind.Count,    1,              MAX_CONNECTIONS, MAX_CONNECTIONS);
    // network connections at once
    case 7: return row("connect-timeout",  Setting.ConnectTimeout, Kind.Millis,   100,            3600000,      10000);
    // time a new connection has to send CONNECT
    case 8: return row("max-inflight",     Setting.MaxInflight,    Kind.Count,    1,              INFLIGHT_MAX, INFLIGHT_MAX);
    // unacknowledged QoS 1/2 messages towards one client
    case 9: return row("max-queued",       Setting.MaxQueued,      Kind.Count,    1,              QUEUE_MAX,    QUEUE_MAX);
    // QoS 1/2 messages queued per client; beyond it its publishers wait while it reads,
    // and what an offline or stalled client cannot take is dropped and counted
    case 10: return row("max-backlog",     Setting.MaxBacklog,     Kind.Bytes,    1024,           BACKLOG_MAX,  BACKLOG_MAX);
    // unsent bytes for one subscriber: above half of it, its publishers wait; above all
    // of it, QoS 0 messages to a subscriber that stopped reading are dropped and counted
    case 11: return row("max-input-buffer", Setting.MaxInputBuffer, Kind.Bytes,  1024,           4294967295,   67108864);
    // bytes of incomplete packets held for all connections together; beyond it, connections
    // in the middle of a packet wait for room (one larger than the whole budget gets in
    // when nobody else holds any)
    case 12: return row("stall-timeout",   Setting.StallTimeout,   Kind.Duration, 0.1,            3600,         5);
    // a subscriber that took no bytes and acknowledged nothing for this long is stalled:
    // publishers are no longer held for it and what cannot be queued for it is dropped
    // and counted
    case 13: return row("stats-interval",  Setting.StatsInterval,  Kind.Seconds,  0,              86400,        0);
    // log every counter this often (also on SIGUSR2 and at shutdown); 0: only then
    case 14: return row("acl-file",        HOST,                   Kind.File,     0,              0,            0);
    // access rules from this file, Mosquitto's ACL format (as the config's acl_file, which
    // it overrides); boards without the config file parser (mcu) take their rules here
    case 15: return row("verbose",         HOST,                   Kind.Flag,     0,              0,            0);
    // log debug lines too, one per packet
    case 16: return row("help",            HOST,                   Kind.Flag,     0,              0,            0);
    // show this help and exit
    case 17: return row("version",         HOST,                   Kind.Flag,     0,              0,            0);
    // show the version and exit
  }
  return false;
}

// The range `settingRange` found, in the unit the setting holds.
export let rangeLow: f64 = 0;
export let rangeHigh: f64 = 0;

/** The range of setting `key` from its row (rangeLow, rangeHigh); false if no row sets it. */
export function settingRange(key: i32): bool {
  if (key == HOST) return false;
  for (let i = 0; loadRow(i); i++) {
    if (rowSetting != key) continue;
    const scale: f64 = rowKind == Kind.Duration ? 1000 : 1;
    rangeLow = rowMin * scale;
    rangeHigh = rowMax * scale;
    return true;
  }
  // the settings only a config file sets: their range is in its key table
  if (!keyRange(key)) return false;
  rangeLow = keyMin;
  rangeHigh = keyMax;
  return true;
}

/** Loads the row that sets `setting` (false: none does). */
export function loadRowOf(setting: i32): bool {
  for (let i = 0; loadRow(i); i++) if (rowSetting == setting) return true;
  return false;
}

/**
 * One option, as text: `name` as the user wrote it (`--max-inflight`, or `-c` for a row
 * with a one-letter form), `value` its value (empty for a flag). Sets the setting and
 * returns its key, or 0 when the option is the host's own (a flag, --config, --board:
 * checked, then left to the host; --host also sets the listening address, --verbose the
 * log level). Refused: returns -n, the message's length in bytes, with the message
 * (UTF-8) at INPUT.
 */
export function option(name: usize, nameLen: u32, value: usize, valueLen: u32): i32 {
  let i = 0;
  while (loadRow(i) && !isNamed(name, nameLen)) i++;
  if (!loadRow(i)) {
    logStart(); logText("unknown option '"); logBytes(name, <i32>nameLen); logText("'");
    return refuse();
  }
  if (rowKind == Kind.Flag) {
    if (valueLen == 0) {
      if (i == VERBOSE_ROW) configure(Setting.LogLevel, LogLevel.Debug);
      return HOST;
    }
    logStart(); logName(); logText(" takes no value");
    return refuse();
  }
  if (valueLen == 0) {
    logStart(); logName(); logText(" needs a value");
    return refuse();
  }
  if (rowKind == Kind.Address) {
    if (setListenAddress(value, valueLen)) return HOST;
    logStart(); logName(); logText(" must be an address of at most "); logInt(ADDRESS_MAX); logText(" bytes");
    return refuse();
  }
  if (i == ACL_FILE_ROW && !setAclFile(value, valueLen)) {
    logStart(); logName(); logText(" must be a path of at most 255 bytes");
    return refuse();
  }
  if (rowKind == Kind.Name || rowKind == Kind.File) return HOST;
  const v = parseNumber(value, valueLen, rowKind == Kind.Duration);
  if (!(v >= rowMin && v <= rowMax)) { // NaN too: not a number at all
    logStart(); logName(); logText(" must be "); logText(kindPhrase(rowKind));
    logText(" from "); logNumber(rowMin); logText(" to "); logNumber(rowMax);
    logText(", not '"); logBytes(value, <i32>valueLen); logText("'");
    return refuse();
  }
  configure(rowSetting, rowKind == Kind.Duration ? Math.round(v * 1000) : v);
  return rowSetting;
}

/** Whether the option text is `--` and the loaded row's name, or `-` and its one letter. */
function isNamed(name: usize, nameLen: u32): bool {
  const short = changetype<string>(rowShort);
  if (short.length == 1 && nameLen == 2 && load<u8>(name) == 0x2D && <i32>load<u8>(name + 1) == short.charCodeAt(0)) return true;
  const s = changetype<string>(rowName);
  const n = s.length;
  if (nameLen != <u32>(n + 2) || load<u16>(name) != 0x2D2D) return false;
  for (let k = 0; k < n; k++) {
    if (<i32>load<u8>(name + 2 + <usize>k) != s.charCodeAt(k)) return false;
  }
  return true;
}

/** A decimal number ("42", and with `fraction` also "0.25"), or NaN. */
export function parseNumber(p: usize, len: u32, fraction: bool): f64 {
  let v: f64 = 0;
  let scale: f64 = 0; // after the point: the weight of the next digit
  let digits = 0;
  for (let k: u32 = 0; k < len; k++) {
    const c = <i32>load<u8>(p + <usize>k);
    if (c >= 0x30 && c <= 0x39) {
      if (scale == 0) v = v * 10 + <f64>(c - 0x30);
      else { v += <f64>(c - 0x30) * scale; scale /= 10; }
      digits++;
    } else if (c == 0x2E && fraction && scale == 0 && digits > 0 && k + 1 < len) {
      scale = 0.1;
    } else {
      return NaN;
    }
  }
  return digits > 0 ? v : NaN;
}

export function kindPhrase(kind: Kind): string {
  switch (kind) {
    case Kind.Bytes: return "a whole number of bytes";
    case Kind.Millis: return "a whole number of milliseconds";
    case Kind.Seconds: return "a whole number of seconds";
    case Kind.Duration: return "a number of seconds";
  }
  return "a whole number";
}

function logName(): void {
  logText("--");
  logText(changetype<string>(rowName));
}

/** A bound of a range: whole, or to the millisecond (0.1). */
export function logNumber(v: f64): void {
  logInt(<i64>v);
  let frac = <i32>Math.round((v - Math.floor(v)) * 1000);
  if (frac == 0) return;
  logText(".");
  let unit = 100;
  while (frac > 0) {
    logInt(<i64>(frac / unit));
    frac %= unit;
    unit /= 10;
  }
}

/** The message built in the log line, moved to INPUT for the host: its negated length. */
export function refuse(): i32 {
  return -logTakeInto(INPUT, INPUT_CAPACITY);
}
