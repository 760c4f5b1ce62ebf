// The config file: Mosquitto's mosquitto.conf grammar, parsed here once for every host
// (DESIGN §3). The host reads a file and hands its bytes to `config` (index.ts); this
// file splits them into lines, each `key value...`, and sets the setting the key names.
// A numeric key goes through the option table's row for its setting (options.ts): the
// same range, the same checks as the flag. Blank lines and lines whose first word starts
// with `#` are skipped. A key given twice: the last one wins, as in Mosquitto.
//
// `include_dir DIR` (in the main file only, as Mosquitto reads it) stops the parse: the
// core hands the directory back to the host, which reads the `.conf` files in it, sorted
// as Mosquitto sorts them (case-insensitively), each with part INCLUDED, then the main
// file again with part RESUMED: the parse goes on after the include_dir line.
//
// Mosquitto 2's defaults follow: with no listener configured the broker listens on the
// loopback address only and allows anonymous clients (whatever the file says); with a
// `listener`, `port` or `bind_address` in the file it listens on every address (or the
// one given) and refuses clients without a user name unless the file says
// `allow_anonymous true`. Several listeners are several sockets sharing one broker: the
// security settings are global (per_listener_settings false, the default).

import { Setting, LogTo, Text, PersistSync, persistence, configure, setListenAddress, listenAddressLen, LISTEN_ADDRESS, ADDRESS_MAX } from "./settings";
import { Kind, loadRowOf, rowMin, rowMax, rowKind, parseNumber, kindPhrase, logNumber, refuse } from "./options";
import { LogLevel } from "./host";
import { INPUT, INPUT_CAPACITY } from "./broker";
import { CONFIG_TEXT, BRIDGE, PERSISTENCE, WEBSOCKETS, MAX_LISTENERS, MAX_USERS, MAX_ACL_RULES, MAX_ACL_USERS, ACL_TEXT_BYTES } from "./config";
import { aclBegin, aclLine, aclEnd, AclError, aclRuleCount, aclSectionCount, aclExpandedMax, disconnectUnknownUsers } from "./auth/acl";
import { addUser, clearUsers, checkUsers, LineError, USER_MAX, ITERATIONS_MAX } from "./auth/passwords";
import { logStart, logText, logBytes, logInt, logTakeInto, logOn, logEnd } from "./log";
import { TlsKey, tlsKey, tlsReset, tlsMove, tlsCheck, tlsText } from "./tlsconfig";
import { BridgeKey, bridgeKey, bridgeConfigReset, bridgeConfigCheck, bridgeTlsText } from "./bridge/config";

/** What `config` is given: the main file, a file of its include_dir, the main file again. */
export const enum Part { Main = 0, Included = 1, Resumed = 2, PasswordFile = 3, AclFile = 4 }

/** How a key's value is read. */
const enum Rule {
  Number = 0,     // a number in the range of the setting's option row (or the key's own)
  Bool = 1,       // true or false (Mosquitto also takes 1 and 0)
  Listener = 2,   // PORT [ADDRESS]
  Address = 3,    // an address or host name
  LogDest = 4,    // stderr, stdout, file PATH or none (a set: each line adds one)
  LogType = 5,    // error, warning, notice, information, debug, all, none, ...
  IncludeDir = 6, // a directory of .conf files
  File = 7,       // a file the host reads and hands back (password_file)
  Persistence = 8, // true or false (true: on a board with PERSISTENCE only)
  NoEffect = 9,   // accepted and without effect in Midge, as in Mosquitto in the same case
                  // (a number in keyMin..keyMax when keyMax > 0)
  Protocol = 10,  // mqtt or websockets: the last listener's
  Tls = 11,       // a TLS setting of the current listener (tlsconfig.ts; the setting column: TlsKey)
  Bridge = 12,    // `connection` and the keys of its section (bridge/config.ts; the setting column: BridgeKey)
}

// The key `loadKey` loaded last.
let keyName: usize = 0;       // a static string
let keyRule: Rule = Rule.Number;
let keySetting: i32 = 0;
export let keyMin: f64 = 0;   // for a setting no option row sets
export let keyMax: f64 = 0;
let keyKind: Kind = Kind.Count; // for a setting no option row sets
let keyUnlimited: f64 = 1;    // Mosquitto's value for "no limit" (0 or -1): the top of the range; 1: none

// @ts-ignore: decorator
@inline function key(name: string, rule: Rule, setting: i32, min: f64, max: f64, unlimited: f64, kind: Kind = Kind.Count): bool {
  keyName = changetype<usize>(name);
  keyKind = kind;
  keyRule = rule;
  keySetting = setting;
  keyMin = min;
  keyMax = max;
  keyUnlimited = unlimited;
  return true;
}

/** Loads key `i` of the table (README's Configuration table); false past the last. A key
 *  whose setting has an option row takes that row's range (min and max here are 0). */
function loadKey(i: i32): bool {
  switch (i) {
    //                 key                      rule             setting                       min  max    no limit
    case 0: return key("listener",              Rule.Listener,   Setting.Port,                 0,   0,     1);
    case 1: return key("port",                  Rule.Number,     Setting.Port,                 0,   0,     1);
    case 2: return key("bind_address",          Rule.Address,    0,                            0,   0,     1);
    case 3: return key("max_connections",       Rule.Number,     Setting.MaxConnections,       0,   0,     -1);
    case 4: return key("max_keepalive",         Rule.Number,     Setting.MaxKeepAlive,         0,   0,     1);
    case 5: return key("max_packet_size",       Rule.Number,     Setting.MaxPacketSize,        0,   0,     0);
    case 6: return key("max_inflight_messages", Rule.Number,     Setting.MaxInflight,          0,   0,     0);
    case 7: return key("max_queued_messages",   Rule.Number,     Setting.MaxQueued,            0,   0,     0);
    case 8: return key("allow_anonymous",       Rule.Bool,       Setting.AllowAnonymous,       0,   1,     1);
    case 9: return key("per_listener_settings", Rule.Bool,       Setting.PerListenerSettings,  0,   1,     1);
    case 10: return key("connection_messages",  Rule.Bool,       Setting.ConnectionMessages,   0,   1,     1);
    case 11: return key("sys_interval",         Rule.Number,     Setting.SysInterval,          0,   65535, 1, Kind.Seconds);
    case 12: return key("log_dest",             Rule.LogDest,    Setting.LogDest,              0,   7,     1);
    case 13: return key("log_type",             Rule.LogType,    Setting.LogLevel,             0,   4,     1);
    case 14: return key("include_dir",          Rule.IncludeDir, 0,                            0,   0,     1);
    case 15: return key("message_size_limit",   Rule.Number,     Setting.MessageSizeLimit,     0,   268435455, 1, Kind.Bytes);
    case 16: return key("password_file",        Rule.File,       0,                            0,   0,     1);
    case 17: return key("acl_file",             Rule.File,       1,                            0,   0,     1);
    case 18: return key("retain_available",     Rule.Bool,       Setting.RetainAvailable,      0,   1,     1);
    case 19: return key("persistence",          Rule.Persistence, Setting.Persistence,         0,   1,     1);
    // a directory (Mosquitto's: ends in "/") and the file in it (persist/)
    case 20: return key("persistence_location", Rule.File,       2,                            0,   0,     1);
    case 21: return key("autosave_interval",    Rule.Number,     Setting.AutosaveInterval,     0,   2147483647, 1, Kind.Seconds);
    // Mosquitto writes it only when it runs as a daemon (-d), which Midge does not
    case 22: return key("pid_file",             Rule.NoEffect,   0,                            0,   0,     1);
    case 23: return key("protocol",             Rule.Protocol,   0,                            0,   0,     1);
    // TLS, per listener (tlsconfig.ts)
    case 24: return key("certfile",             Rule.Tls,        TlsKey.Certfile,              0,   0,     1);
    case 25: return key("keyfile",              Rule.Tls,        TlsKey.Keyfile,               0,   0,     1);
    case 26: return key("cafile",               Rule.Tls,        TlsKey.Cafile,                0,   0,     1);
    case 27: return key("capath",               Rule.Tls,        TlsKey.Capath,                0,   0,     1);
    case 28: return key("ciphers",              Rule.Tls,        TlsKey.Ciphers,               0,   0,     1);
    case 29: return key("ciphers_tls1.3",       Rule.Tls,        TlsKey.Ciphers13,             0,   0,     1);
    case 30: return key("tls_version",          Rule.Tls,        TlsKey.Version,               0,   0,     1);
    case 31: return key("require_certificate",  Rule.Tls,        TlsKey.RequireCertificate,    0,   0,     1);
    case 32: return key("use_identity_as_username", Rule.Tls,    TlsKey.UseIdentity,           0,   0,     1);
    case 33: return key("use_subject_as_username", Rule.Tls,     TlsKey.UseSubject,            0,   0,     1);
    case 34: return key("persistence_file",     Rule.File,       3,                            0,   0,     1);
    // Midge's own: when the file is synced (settings.ts PersistSync)
    case 35: return key("persistence_sync",     Rule.Persistence, Setting.PersistenceSync,     0,   1,     1);
    case 36: return key("autosave_on_changes",  Rule.Bool,       Setting.AutosaveOnChanges,    0,   1,     1);
    // bridges (bridge/config.ts): `connection NAME`, then its keys
    case 37: return key("connection",           Rule.Bridge,     BridgeKey.Connection,         0,   0,     1);
    case 38: return key("address",              Rule.Bridge,     BridgeKey.Address,            0,   0,     1);
    case 39: return key("addresses",            Rule.Bridge,     BridgeKey.Address,            0,   0,     1);
    case 40: return key("topic",                Rule.Bridge,     BridgeKey.Topic,              0,   0,     1);
    case 41: return key("cleansession",         Rule.Bridge,     BridgeKey.CleanSession,       0,   0,     1);
    case 42: return key("remote_clientid",      Rule.Bridge,     BridgeKey.ClientId,           0,   0,     1);
    case 43: return key("clientid",             Rule.Bridge,     BridgeKey.ClientId,           0,   0,     1);
    case 44: return key("remote_username",      Rule.Bridge,     BridgeKey.Username,           0,   0,     1);
    case 45: return key("username",             Rule.Bridge,     BridgeKey.Username,           0,   0,     1);
    case 46: return key("remote_password",      Rule.Bridge,     BridgeKey.Password,           0,   0,     1);
    case 47: return key("password",             Rule.Bridge,     BridgeKey.Password,           0,   0,     1);
    case 48: return key("bridge_protocol_version", Rule.Bridge,  BridgeKey.Protocol,           0,   0,     1);
    case 49: return key("try_private",          Rule.Bridge,     BridgeKey.TryPrivate,         0,   0,     1);
    case 50: return key("notifications",        Rule.Bridge,     BridgeKey.Notifications,      0,   0,     1);
    case 51: return key("notifications_local_only", Rule.Bridge, BridgeKey.NotifyLocalOnly,    0,   0,     1);
    case 52: return key("notification_topic",   Rule.Bridge,     BridgeKey.NotificationTopic,  0,   0,     1);
    case 53: return key("keepalive_interval",   Rule.Bridge,     BridgeKey.KeepAlive,          0,   0,     1);
    case 54: return key("restart_timeout",      Rule.Bridge,     BridgeKey.RestartTimeout,     0,   0,     1);
    case 55: return key("start_type",           Rule.Bridge,     BridgeKey.StartType,          0,   0,     1);
    case 56: return key("round_robin",          Rule.Bridge,     BridgeKey.RoundRobin,         0,   0,     1);
    case 57: return key("bridge_cafile",        Rule.Bridge,     BridgeKey.Cafile,             0,   0,     1);
    case 58: return key("bridge_capath",        Rule.Bridge,     BridgeKey.Capath,             0,   0,     1);
    case 59: return key("bridge_certfile",      Rule.Bridge,     BridgeKey.Certfile,           0,   0,     1);
    case 60: return key("bridge_keyfile",       Rule.Bridge,     BridgeKey.Keyfile,            0,   0,     1);
    case 61: return key("bridge_insecure",      Rule.Bridge,     BridgeKey.Insecure,           0,   0,     1);
    case 62: return key("local_clientid",       Rule.Bridge,     BridgeKey.LocalClientId,      0,   0,     1);
    case 63: return key("bridge_outgoing_retain", Rule.Bridge,   BridgeKey.OutgoingRetain,     0,   0,     1);
    // Midge's own: how much a bridge keeps for upstream while its link is down
    case 64: return key("bridge_max_queued",    Rule.Bridge,     BridgeKey.MaxQueued,          0,   0,     1);
    // Mosquitto's, without effect in Midge (README "Bridges" says why)
    case 65: return key("bridge_attempt_unsubscribe", Rule.Bridge, BridgeKey.AttemptUnsubscribe, 0, 0,     1);
    case 66: return key("local_username",       Rule.Bridge,     BridgeKey.LocalUsername,      0,   0,     1);
    case 67: return key("local_password",       Rule.Bridge,     BridgeKey.LocalUsername,      0,   0,     1);
  }
  return false;
}

/** The range of a setting only the config file sets (keyMin, keyMax); false if none. */
export function keyRange(setting: i32): bool {
  // written out, not looked up in the key table: a board without the parser (mcu) then
  // carries none of its key names (test/assembly/configfile.spec.ts compares the two)
  switch (setting) {
    case Setting.AllowAnonymous: case Setting.ConnectionMessages: case Setting.PerListenerSettings:
    case Setting.RetainAvailable: keyMin = 0; keyMax = 1; return true;
    case Setting.SysInterval: keyMin = 0; keyMax = 65535; return true;
    case Setting.LogDest: keyMin = 0; keyMax = 7; return true;
    case Setting.LogLevel: keyMin = 0; keyMax = 4; return true;
    case Setting.MessageSizeLimit: keyMin = 0; keyMax = 268435455; return true;
    case Setting.Persistence: case Setting.PersistenceSync: case Setting.AutosaveOnChanges: keyMin = 0; keyMax = 1; return true;
    case Setting.AutosaveInterval: keyMin = 0; keyMax = 2147483647; return true;
  }
  return false;
}

/** keyRange as the key table says it (for the spec that keeps the two the same). */
export function keyRangeInTable(setting: i32): bool {
  for (let i = 0; loadKey(i); i++) {
    if (keySetting == setting && keyRule != Rule.Listener && keyRule != Rule.Tls && keyRule != Rule.Bridge && !loadRowOf(setting)) return true;
  }
  return false;
}

// ---- the state of one parse ----

// @ts-ignore: decorator
@inline const PATH_MAX: i32 = 255;
const PASSWORD_FILE = memory.data(PATH_MAX);   // password_file's path (text(2))
let passwordFileLen: i32 = 0;
const ACL_FILE = memory.data(PATH_MAX);        // acl_file's path (text(3))
const PERSIST_DIR = memory.data(PATH_MAX);     // persistence_location (text(5) with the file)
let persistDirLen: i32 = 0;
const PERSIST_FILE = memory.data(PATH_MAX);    // persistence_file
let persistFileLen: i32 = 0;
let aclFileLen: i32 = 0;

/** --acl-file: the ACL file's path (on every board); false when it is too long. */
export function setAclFile(p: usize, len: u32): bool {
  if (len > <u32>PATH_MAX) return false;
  memory.copy(ACL_FILE, p, len);
  aclFileLen = <i32>len;
  return true;
}
const LOG_FILE = memory.data(PATH_MAX);        // log_dest file's path (text(4))
let logFileLen: i32 = 0;

// The listeners. Each `listener` line is a row, in the file's order; the default listener
// of `port` and `bind_address` (Mosquitto 2 opens it after the others) waits in the spare
// last row and is appended at the end of the main file. Row 0 then goes to the settings
// (Setting.Port, LISTEN_ADDRESS), where --port, $MIDGE_PORT and --host override it: the
// flags set the first listener. text(Text.Listener + k) answers row k (k >= 1) as it is.
//
//   LISTENERS: MAX_LISTENERS + 1 rows of LISTENER_ROW bytes (none on a board without the parser)
//   +----------+-------------+-----------------------------------+----------+
//   | port i32 | addrLen i32 | address, ADDRESS_MAX bytes        | protocol |   addrLen 0: every address
//   +----------+-------------+-----------------------------------+----------+   protocol u8: 1 websockets
// @ts-ignore: decorator
@inline const LISTENER_ROW: i32 = 264; // 8 + ADDRESS_MAX (255), rounded up to 4 (a literal: settings.ts may load after this file)
const LISTENERS = memory.data(CONFIG_TEXT ? (MAX_LISTENERS + 1) * LISTENER_ROW : 4, 4);
// @ts-ignore: decorator
@inline function listenerAt(k: i32): usize { return LISTENERS + <usize>(k * LISTENER_ROW); }
// @ts-ignore: decorator
@inline const PROTOCOL_AT: usize = 263; // the row's last byte (after 8 + ADDRESS_MAX)

/** Whether listener k (text(16 + k)) speaks MQTT over WebSockets (`protocol websockets`). */
export function listenerSpeaksWebSocket(k: i32): bool {
  return CONFIG_TEXT != 0 && WEBSOCKETS != 0 && k >= 0 && k < fileListeners && load<u8>(listenerAt(k) + PROTOCOL_AT) >= 1;
}

/** Whether listener k is `protocol http`: HTTP only (/metrics, the status page), no upgrade. */
export function listenerHttpOnly(k: i32): bool {
  return CONFIG_TEXT != 0 && WEBSOCKETS != 0 && k >= 0 && k < fileListeners && load<u8>(listenerAt(k) + PROTOCOL_AT) == 2;
}

/** Listener k's port as configured (0: the system chose one). */
export function listenerPort(k: i32): i32 {
  if (k >= 0 && k < MAX_LISTENERS && load<i32>(BOUND + (<usize>k << 2)) > 0) return load<i32>(BOUND + (<usize>k << 2));
  if (k == 0 || !CONFIG_TEXT || k >= fileListeners) return <i32>configure(Setting.Port, -1);
  return load<i32>(listenerAt(k));
}

/** The ports the host bound (`listening`): the one the system chose for a port of 0. */
const BOUND = memory.data(MAX_LISTENERS * 4, 8);

/** The host bound listener k to `port`: logs, text(16 + k) and the status page say it. */
export function setListening(k: i32, port: i32): void {
  if (k >= 0 && k < MAX_LISTENERS && port > 0 && port <= 65535) store<i32>(BOUND + (<usize>k << 2), port);
}
// @ts-ignore: decorator
@inline const MQTT_PORT: i32 = 1883; // the default listener's port when only bind_address is given
let listenerRow: i32 = 0;     // the row the current line sets
let fileListeners: i32 = 0;   // the listeners the main file configured, once it is read

let fileName: usize = 0;      // the file's name, as the host gave it (for messages)
let fileNameLen: u32 = 0;
let lineNumber: i32 = 0;
let resumeAt: u32 = 0;        // in the main file: the offset after its include_dir line
let resumeLine: i32 = 0;      //   and that line's number
let listeners: i32 = 0;       // `listener` lines read
let defaultListener = false;  // a `port` or `bind_address` line was read
let logDestSet = false;       // a log_dest line was read: the first one replaces the default
let anonymousSet = false;     // allow_anonymous was given
let logTypeSet = false;       // a log_type line was read: the first one replaces the default
let logNothing = false;       // log_type none
let configured = false;       // a config file was read

// The words of the current line.
// @ts-ignore: decorator
@inline const WORDS_MAX: i32 = 6; // a bridge's `topic` line has six
const WORD_AT = memory.data(WORDS_MAX * 4, 4);
const WORD_LEN = memory.data(WORDS_MAX * 4, 4);
export let words: i32 = 0;    // how many (may exceed WORDS_MAX: the rest are not kept)
export let restAt: usize = 0; // where the line goes on after the key (for include_dir)
export let restLen: u32 = 0;

// @ts-ignore: decorator
@inline export function wordAt(i: i32): usize { return <usize>load<u32>(WORD_AT + <usize>(i << 2)); }
// @ts-ignore: decorator
@inline export function wordLen(i: i32): u32 { return load<u32>(WORD_LEN + <usize>(i << 2)); }

/**
 * One file's text (`text`, `textLen` bytes), named `name` for messages. `part`: Main,
 * Included or Resumed (see the top of this file). Returns 0 when the text is read to its
 * end; n > 0 at an include_dir line of the main file, with the directory's name (n bytes)
 * at INPUT; -n when a line is refused, with an n-byte message at INPUT naming the file,
 * the line, the key and what is wrong. A `textLen` above what fits in the input window
 * (the host wrote what fits) is refused as too large for the board.
 */
export function readConfig(name: usize, nameLen: u32, text: usize, textLen: u32, part: i32): i32 {
  fileName = name;
  fileNameLen = nameLen;
  // an ACL file is read on every board that has ACLs (the mcu board too: its host hands
  // one in without a config file)
  if (part == Part.AclFile) return readAcl(text, textLen);
  // a constant condition: on a board without the parser, nothing below is compiled
  if (CONFIG_TEXT) return readText(text, textLen, part);
  logStart(); logFile(); logText(": this board's core is built without the config file parser (CONFIG_TEXT 0); give options instead");
  return refuse();
}

function readText(text: usize, textLen: u32, part: i32): i32 {
  const nameLen = fileNameLen;
  let at: u32 = 0;
  lineNumber = 0;
  if (part == Part.Main) {
    configured = true;
    listeners = 0; defaultListener = false; fileListeners = 0; anonymousSet = false; logTypeSet = false; logNothing = false;
    passwordFileLen = 0; aclFileLen = 0; logFileLen = 0; logDestSet = false; persistDirLen = 0; persistFileLen = 0;
    tlsReset();
    bridgeConfigReset();
    store<i32>(listenerAt(MAX_LISTENERS), MQTT_PORT);
    store<i32>(listenerAt(MAX_LISTENERS) + 4, 0);
    store<u8>(listenerAt(MAX_LISTENERS) + PROTOCOL_AT, 0);
  } else if (part == Part.Resumed) {
    at = resumeAt;
    lineNumber = resumeLine;
  }
  if (<u64>nameLen + <u64>textLen > <u64>INPUT_CAPACITY) {
    logStart(); logFile(); logText(": "); logInt(textLen);
    logText(" bytes is more than this board takes in a config file ("); logInt(INPUT_CAPACITY - nameLen); logText(")");
    return refuse();
  }
  if (part == Part.PasswordFile) return readPasswords(text, textLen);
  while (at < textLen) {
    let end = at;
    while (end < textLen && load<u8>(text + <usize>end) != 0x0A) end++;
    lineNumber++;
    const next = end + 1;
    splitLine(text + <usize>at, end - at);
    at = next;
    if (words == 0) continue;
    const r = applyLine();
    if (r < 0) return r;
    if (r > 0) {
      if (part != Part.Main && part != Part.Resumed) return refuseLine("is read in the main config file only (Mosquitto ignores it here)");
      resumeAt = at;
      resumeLine = lineNumber;
      memory.copy(INPUT, restAt, restLen);
      return <i32>restLen;
    }
  }
  if (part == Part.Included) return 0;
  finish();
  const r = bridgeConfigCheck(fileName, fileNameLen);
  if (r < 0) return r;
  return tlsCheck(fileListeners, !defaultListener, fileName, fileNameLen);
}

/** After the main file: the default listener after the others, the first listener in the
 *  settings (for the flags to override), and Mosquitto 2's rules for what was not said. */
function finish(): void {
  fileListeners = listeners;
  if (defaultListener) {
    tlsMove(MAX_LISTENERS, fileListeners);
    memory.copy(listenerAt(fileListeners++), listenerAt(MAX_LISTENERS), LISTENER_ROW);
  }
  if (fileListeners > 0) {
    configure(Setting.Port, load<i32>(listenerAt(0)));
    const n = load<i32>(listenerAt(0) + 4);
    if (n > 0) setListenAddress(listenerAt(0) + 8, n);
  }
  if (fileListeners == 0) configure(Setting.AllowAnonymous, 1); // loopback only
  else if (!anonymousSet) configure(Setting.AllowAnonymous, 0);
  if (logNothing) configure(Setting.LogDest, 0);
}

/** Counts the listener the current line adds (a `listener` line; the first `port` or
 *  `bind_address` line adds the default listener): 0, or -n when refused. */
function addListener(): i32 {
  const count = listeners + (defaultListener ? 1 : 0) + 1;
  if (count > MAX_LISTENERS) {
    logStart(); logWhere(); logText(" is one listener more than this board holds ("); logInt(MAX_LISTENERS); logText(")");
    return refuse();
  }
  if (count > 1 && configure(Setting.PerListenerSettings, -1) > 0) {
    return refuseLine("is a second listener with per_listener_settings true: Midge applies allow_anonymous, password_file and acl_file to every listener for now");
  }
  if (keyRule == Rule.Listener) listenerRow = listeners++;
  else defaultListener = true;
  return 0;
}

/** Splits the line at `p` into words (spaces and tabs; a carriage return at its end is
 *  dropped); a line whose first word starts with '#' has none. */
function splitLine(p: usize, len: u32): void {
  words = 0;
  let k: u32 = 0;
  while (k < len) {
    while (k < len && isSpace(load<u8>(p + <usize>k))) k++;
    if (k >= len) break;
    const start = k;
    while (k < len && !isSpace(load<u8>(p + <usize>k))) k++;
    if (words == 0 && load<u8>(p + <usize>start) == 0x23) return; // '#': a comment
    if (words < WORDS_MAX) {
      store<u32>(WORD_AT + <usize>(words << 2), <u32>(p + <usize>start));
      store<u32>(WORD_LEN + <usize>(words << 2), k - start);
    }
    if (words == 0) {
      // the rest of the line, trimmed: include_dir takes it whole (a path may hold spaces)
      let s = k, e = len;
      while (s < e && isSpace(load<u8>(p + <usize>s))) s++;
      while (e > s && isSpace(load<u8>(p + <usize>(e - 1)))) e--;
      restAt = p + <usize>s;
      restLen = e - s;
    }
    words++;
  }
}

// @ts-ignore: decorator
@inline function isSpace(c: u8): bool { return c == 0x20 || c == 0x09 || c == 0x0D; }

/** The current line: 0 when applied, 1 for an include_dir, -n when refused. */
function applyLine(): i32 {
  const k = wordAt(0), kLen = wordLen(0);
  let i = 0;
  while (loadKey(i) && !wordIs(0, changetype<string>(keyName))) i++;
  if (!loadKey(i)) {
    logStart(); logWhere();
    logText(isMosquittoKey(k, kLen) ? " is a Mosquitto option Midge does not support yet" : " is not a configuration key");
    return refuse();
  }
  if (words < 2) return refuseLine(keyRule == Rule.Listener ? "needs a port" : "needs a value");
  if (keyRule == Rule.IncludeDir) return 1;
  if (keyRule == Rule.Bridge) return bridgeKey(keySetting);
  if (keyRule == Rule.NoEffect) {
    if (keyMax > 0) {
      if (words > 2) return refuseExtra();
      const v = parseNumber(wordAt(1), wordLen(1), false);
      if (!(v >= keyMin && v <= keyMax)) return refuseValue("must be a whole number of seconds");
    }
    return 0;
  }
  if (keyRule == Rule.Persistence) {
    if (words > 2) return refuseExtra();
    let v = -1;
    if (keySetting == Setting.PersistenceSync) {
      if (wordIs(1, "always")) v = PersistSync.Always;
      else if (wordIs(1, "interval")) v = PersistSync.Interval;
      else return refuseValue("must be always or interval");
    } else if (wordIs(1, "false") || wordIs(1, "0")) v = 0;
    else if (wordIs(1, "true") || wordIs(1, "1")) v = 1;
    else return refuseValue("must be true or false");
    if (!PERSISTENCE && keySetting == Setting.Persistence && v == 1) return refuseLine("true: this board's core is built without persistence (PERSISTENCE 0)");
    configure(keySetting, v);
    return 0;
  }
  if (keyRule == Rule.File) {
    if (restLen > <u32>PATH_MAX) return refuseLine("names a path longer than 255 bytes");
    if (keySetting == 1) { memory.copy(ACL_FILE, restAt, restLen); aclFileLen = <i32>restLen; }
    else if (keySetting == 2) { memory.copy(PERSIST_DIR, restAt, restLen); persistDirLen = <i32>restLen; }
    else if (keySetting == 3) {
      for (let k: u32 = 0; k < restLen; k++) if (load<u8>(restAt + k) == 0x2F) return refuseLine("is a file name, without a directory (persistence_location says where)");
      memory.copy(PERSIST_FILE, restAt, restLen); persistFileLen = <i32>restLen;
    }
    else { memory.copy(PASSWORD_FILE, restAt, restLen); passwordFileLen = <i32>restLen; }
    return 0;
  }
  if (keyRule == Rule.Listener) {
    if (words > 3) return refuseLine("takes a port and an address, no more");
    let r = addListener();
    if (r < 0) return r;
    store<i32>(listenerAt(listenerRow) + 4, 0);
    store<u8>(listenerAt(listenerRow) + PROTOCOL_AT, 0);
    r = setNumber(1);
    if (r < 0) return r;
    if (words == 3) return setAddress(2);
    return 0;
  }
  if (keyRule == Rule.Protocol) return setProtocol();
  if (keyRule == Rule.LogDest) return setLogDest(); // `log_dest file PATH`: two words
  if (keyRule == Rule.Tls) { // the last `listener` line's listener; before any, the default one (as in Mosquitto)
    logStart(); logWhere(); // the start of a refusal's message
    return tlsKey(listeners > 0 ? listeners - 1 : MAX_LISTENERS, keySetting, restAt, restLen, lineNumber);
  }
  if (words > 2) return refuseExtra();
  if (keySetting == Setting.Port || keyRule == Rule.Address) { // the default listener
    if (!defaultListener) {
      const r = addListener();
      if (r < 0) return r;
    }
    listenerRow = MAX_LISTENERS;
    if (keyRule == Rule.Address) return setAddress(1);
  }
  switch (keyRule) {
    case Rule.Bool: {
      let v = -1;
      if (wordIs(1, "true") || wordIs(1, "1")) v = 1;
      else if (wordIs(1, "false") || wordIs(1, "0")) v = 0;
      if (v < 0) return refuseValue("must be true or false");
      if (keySetting == Setting.AllowAnonymous) anonymousSet = true;
      if (keySetting == Setting.PerListenerSettings && v > 0 && listeners + (defaultListener ? 1 : 0) > 1) {
        logStart(); logWhere(); logText(" true with several listeners: Midge applies allow_anonymous, password_file and acl_file to every listener for now");
        return refuse();
      }
      configure(keySetting, v);
      return 0;
    }
    case Rule.LogType: return setLogType();
  }
  return setNumber(1);
}

/** Word `w` as a number for the loaded key's setting, checked against its range. */
function setNumber(w: i32): i32 {
  let kind = keyKind;
  let min = keyMin, max = keyMax;
  if (loadRowOf(keySetting)) { kind = rowKind; min = rowMin; max = rowMax; }
  if (keyUnlimited <= 0 && (keyUnlimited == 0 ? wordIs(w, "0") : wordIs(w, "-1"))) {
    configure(keySetting, kind == Kind.Duration ? max * 1000 : max);
    return 0;
  }
  const v = parseNumber(wordAt(w), wordLen(w), kind == Kind.Duration);
  if (!(v >= min && v <= max)) {
    logStart(); logWhere(); logText(" must be "); logText(kindPhrase(kind));
    logText(" from "); logNumber(min); logText(" to "); logNumber(max);
    if (keyUnlimited <= 0) { logText(" ("); logInt(<i64>keyUnlimited); logText(": no limit)"); }
    logText(", not '"); logBytes(wordAt(w), <i32>wordLen(w)); logText("'");
    return refuse();
  }
  if (keySetting == Setting.Port) store<i32>(listenerAt(listenerRow), <i32>v); // finish() sets listener 0's
  else configure(keySetting, kind == Kind.Duration ? Math.round(v * 1000) : v);
  return 0;
}

/** `protocol mqtt|websockets`: the protocol of the listener the last listener line (or
 *  `port`/`bind_address`) made. */
function setProtocol(): i32 {
  if (words > 2) return refuseExtra();
  if (listeners == 0 && !defaultListener) return refuseLine("must follow a listener line (it sets that listener's protocol)");
  let v = -1;
  if (wordIs(1, "mqtt")) v = 0;
  else if (wordIs(1, "websockets")) v = 1;
  else if (wordIs(1, "http")) v = 2;
  if (v < 0) return refuseValue("must be mqtt, websockets or http");
  if (v == 1 && !WEBSOCKETS) return refuseLine("websockets: this board has no WebSockets");
  if (v == 2 && !WEBSOCKETS) return refuseLine("http: this board has no HTTP (no /metrics, no status page; $SYS is its way to tell)");
  store<u8>(listenerAt(listenerRow) + PROTOCOL_AT, <u8>v);
  return 0;
}

/** Word `w` as the address of the listener in row listenerRow. */
function setAddress(w: i32): i32 {
  const n = wordLen(w);
  if (n <= <u32>ADDRESS_MAX) {
    memory.copy(listenerAt(listenerRow) + 8, wordAt(w), n);
    store<i32>(listenerAt(listenerRow) + 4, <i32>n);
    return 0;
  }
  logStart(); logWhere(); logText(" must be an address of at most "); logInt(ADDRESS_MAX); logText(" bytes");
  return refuse();
}

/** log_dest: as in Mosquitto, a set of destinations: the first line replaces the default
 *  (stderr), each further line adds one, `none` empties it; one log file at most. */
function setLogDest(): i32 {
  let bit = -1;
  if (wordIs(1, "stderr")) bit = LogTo.Stderr;
  else if (wordIs(1, "stdout")) bit = LogTo.Stdout;
  else if (wordIs(1, "file")) bit = LogTo.File;
  else if (wordIs(1, "none")) bit = 0;
  else if (wordIs(1, "syslog") || wordIs(1, "topic") || wordIs(1, "dlt")) {
    logStart(); logWhere(); logText(" "); logBytes(wordAt(1), <i32>wordLen(1));
    logText(" is a Mosquitto option Midge does not support yet");
    return refuse();
  }
  if (bit < 0) return refuseValue("must be stderr, stdout, file or none");
  if (bit == LogTo.File) {
    // the path: the rest of the line after `file` (it may hold spaces, as in Mosquitto)
    let at = wordAt(1) + <usize>wordLen(1);
    const end = restAt + <usize>restLen;
    while (at < end && isSpace(load<u8>(at))) at++;
    if (at == end) return refuseLine("file needs a path");
    if (logFileLen > 0) return refuseLine("file is given twice (one log file, as in Mosquitto)");
    if (end - at > <usize>PATH_MAX) return refuseLine("file names a path longer than 255 bytes");
    memory.copy(LOG_FILE, at, end - at);
    logFileLen = <i32>(end - at);
  } else if (words > 2) return refuseExtra();
  const dest = logDestSet ? <i32>configure(Setting.LogDest, -1) : 0;
  logDestSet = true;
  configure(Setting.LogDest, bit == 0 ? 0 : dest | bit);
  return 0;
}

/** log_type: Mosquitto's types are a set; Midge logs by level, so the most detailed
 *  type given sets the level (subscribe, unsubscribe and websockets add nothing). */
function setLogType(): i32 {
  let level = -1;
  if (wordIs(1, "error")) level = LogLevel.Error;
  else if (wordIs(1, "warning")) level = LogLevel.Warning;
  else if (wordIs(1, "notice")) level = LogLevel.Notice;
  else if (wordIs(1, "information")) level = LogLevel.Info;
  else if (wordIs(1, "debug") || wordIs(1, "all")) level = LogLevel.Debug;
  else if (wordIs(1, "subscribe") || wordIs(1, "unsubscribe") || wordIs(1, "websockets")) level = LogLevel.Error;
  else if (wordIs(1, "none")) { logNothing = true; return 0; }
  else return refuseValue("must be error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all or none");
  const current = <i32>configure(Setting.LogLevel, -1);
  configure(Setting.LogLevel, logTypeSet && current > level ? current : level);
  logTypeSet = true;
  logNothing = false;
  return 0;
}

/** The next line of a password or ACL file that is neither blank nor a comment, trimmed
 *  (lineFrom, lineTo), counting lines in lineNumber from lineAt; false at the end. */
let lineAt: u32 = 0;
let lineFrom: u32 = 0;
let lineTo: u32 = 0;
function nextLine(text: usize, textLen: u32): bool {
  while (lineAt < textLen) {
    let end = lineAt;
    while (end < textLen && load<u8>(text + <usize>end) != 0x0A) end++;
    lineNumber++;
    let s = lineAt, e = end;
    lineAt = end + 1;
    while (s < e && (load<u8>(text + <usize>s) == 0x20 || load<u8>(text + <usize>s) == 0x09)) s++;
    while (e > s && isSpace(load<u8>(text + <usize>(e - 1)))) e--;
    if (e == s || load<u8>(text + <usize>s) == 0x23) continue; // blank, or '#'
    lineFrom = s;
    lineTo = e;
    return true;
  }
  return false;
}

/** A password file (part 3): every line `user:hash`, replacing the users read before.
 *  Read twice, checked whole and then loaded, so that a refused file (on reload) leaves
 *  the users in force as they were. After a load, a connected client whose user name is
 *  no longer in the file is disconnected (as Mosquitto 2 does on reload). */
function readPasswords(text: usize, textLen: u32): i32 {
  for (let pass = 0; pass < 2; pass++) {
    const check = pass == 0;
    if (check) checkUsers(); else clearUsers();
    lineNumber = 0;
    lineAt = 0;
    while (nextLine(text, textLen)) {
      const start = lineFrom, e = lineTo;
      const r = addUser(text + <usize>start, e - start, check);
      if (r == LineError.None) continue;
      logStart(); logFile(); logText(":"); logInt(lineNumber); logText(": ");
      let colon = start;
      while (colon < e && load<u8>(text + <usize>colon) != 0x3A) colon++;
      if (r != LineError.NoColon && r != LineError.NameTooLong) { logBytes(text + <usize>start, <i32>(colon - start)); logText(": "); }
      switch (r) {
        case LineError.NoColon: logText("not a 'user:password hash' line"); break;
        case LineError.NameTooLong: logText("a user name longer than "); logInt(USER_MAX); logText(" bytes"); break;
        case LineError.NotHashed: logText("the password is not a mosquitto_passwd hash ($7$ or $6$); mosquitto_passwd -U FILE hashes a plain-text file"); break;
        case LineError.BadIterations: logText("the $7$ iteration count must be a whole number from 1 to "); logInt(ITERATIONS_MAX); break;
        case LineError.BadSalt: logText("the salt is not base64 of 1 to 64 bytes"); break;
        case LineError.BadHash: logText("the hash is not base64 of a 64-byte SHA-512 digest"); break;
        case LineError.TableFull: logText("more users than this board holds ("); logInt(MAX_USERS); logText(")"); break;
      }
      return refuse();
    }
  }
  disconnectUnknownUsers();
  return 0;
}

/** An ACL file (part 4): read once to check every line, then again to load it, so that a
 *  refused file leaves the rules in force as they were (a reload keeps the old rules). */
function readAcl(text: usize, textLen: u32): i32 {
  if (MAX_ACL_RULES == 0) {
    logStart(); logFile(); logText(": this board's core is built without access control (MAX_ACL_RULES 0)");
    return refuse();
  }
  if (<u64>fileNameLen + <u64>textLen > <u64>INPUT_CAPACITY) {
    logStart(); logFile(); logText(": "); logInt(textLen);
    logText(" bytes is more than this board takes in an ACL file ("); logInt(INPUT_CAPACITY - fileNameLen); logText(")");
    return refuse();
  }
  for (let pass = 0; pass < 2; pass++) {
    aclBegin(pass == 0);
    lineNumber = 0;
    lineAt = 0;
    while (nextLine(text, textLen)) {
      const s = lineFrom, e = lineTo;
      const r = aclLine(text + <usize>s, e - s);
      if (r == AclError.None) continue;
      logStart(); logFile(); logText(":"); logInt(lineNumber); logText(": ");
      switch (r) {
        case AclError.UnknownLine: logText("not a user, topic or pattern line"); break;
        case AclError.NoUser: logText("user needs a name"); break;
        case AclError.NoTopic: logText("no topic"); break;
        case AclError.BadTopic: logText("not a valid topic filter"); break;
        case AclError.TooLong: logText("topic longer than "); logInt(aclExpandedMax()); logText(" bytes with %c and %u put in"); break;
        case AclError.RulesFull: logText("more rules than this board holds: "); logInt(MAX_ACL_RULES); break;
        case AclError.UsersFull: logText("more users than this board holds: "); logInt(MAX_ACL_USERS); break;
        case AclError.TextFull: logText("more text than this board holds: "); logInt(ACL_TEXT_BYTES); logText(" bytes"); break;
      }
      logText(": '"); logBytes(text + <usize>s, <i32>(e - s)); logText("'");
      return refuse();
    }
  }
  aclEnd();
  if (logOn(LogLevel.Info)) {
    logStart(); logText("ACL file "); logFile(); logText(": "); logInt(aclRuleCount()); logText(" rules, ");
    logInt(aclSectionCount()); logText(" users"); logEnd(LogLevel.Info);
  }
  return 0;
}

// ---- after the parse: what the host asks ----

/**
 * Text for the host, copied to INPUT; returns its length (ids: Text in settings.ts).
 * 0: the first listener's address (the one set, else every address with a configured
 * listener, else the loopback); 1: the note after the first log line's address, saying
 * who may connect; 2: the path of the password file to read and hand back (part 3), empty
 * when none is configured; 3: the path of the ACL file (part 4), the same way; 4: the
 * path of the log file (log_dest file), the same way; 16 + k: listener k as "PORT
 * ADDRESS" (listener 0: Setting.Port and text 0), empty past the last one.
 */
export function listenText(id: i32): i32 {
  logStart();
  if (BRIDGE && id >= Text.Bridge) bridgeTlsText(id - Text.Bridge);
  else if (id >= Text.Tls) tlsText(id, fileListeners);
  else if (id >= Text.Listener) logListener(id - Text.Listener);
  else if (id == Text.AclFile) logBytes(ACL_FILE, aclFileLen); // from the file or --acl-file
  else if (CONFIG_TEXT) listenTextOfFile(id);
  else if (id == Text.Address) logAddress("127.0.0.1");
  else if (id == Text.Note && listenAddressLen == 0) logText(NO_CONFIGURATION);
  return logTakeInto(INPUT, INPUT_CAPACITY);
}

/** Listener k as "PORT ADDRESS": the first from the settings (flags override it), the
 *  others from the file's rows (every address when the line gave none). */
function logListener(k: i32): void {
  if (k == 0) {
    logInt(listenerPort(0)); logText(" ");
    if (CONFIG_TEXT) logAddress(fileListeners > 0 ? "0.0.0.0" : "127.0.0.1");
    else logAddress("127.0.0.1");
    if (listenerSpeaksWebSocket(0)) logText(listenerHttpOnly(0) ? " http" : " websockets");
  } else if (CONFIG_TEXT && k < fileListeners) {
    const row = listenerAt(k), n = load<i32>(row + 4);
    logInt(listenerPort(k)); logText(" ");
    if (n > 0) logBytes(row + 8, n); else logText("0.0.0.0");
    if (listenerSpeaksWebSocket(k)) logText(listenerHttpOnly(k) ? " http" : " websockets");
  }
}

const NO_CONFIGURATION = " (loopback only: no configuration; use --host 0.0.0.0 to accept network clients)";

function logAddress(otherwise: string): void {
  if (listenAddressLen > 0) logBytes(LISTEN_ADDRESS, listenAddressLen);
  else logText(otherwise);
}

/** The persistence file's path, into the log line being built. */
export function logPersistencePath(): void { persistencePath(); }

/** text(Text.PersistenceFile): persistence_location (Mosquitto's: "a path ending in /";
 *  one is added when missing) then persistence_file (default midge.db); empty when off. */
function persistencePath(): void {
  if (!PERSISTENCE || persistence == 0) return;
  if (persistDirLen > 0) {
    logBytes(PERSIST_DIR, persistDirLen);
    if (load<u8>(PERSIST_DIR + <usize>persistDirLen - 1) != 0x2F) logText("/");
  }
  if (persistFileLen > 0) logBytes(PERSIST_FILE, persistFileLen);
  else logText("midge.db");
}

function listenTextOfFile(id: i32): void {
  const fromFile = fileListeners > 0;
  if (id == Text.PasswordFile) logBytes(PASSWORD_FILE, passwordFileLen);
  else if (id == Text.LogFile) logBytes(LOG_FILE, logFileLen);
  else if (id == Text.PersistenceFile) persistencePath();
  else if (id == Text.Address) logAddress(fromFile ? "0.0.0.0" : "127.0.0.1");
  else if (id == Text.Note) {
    if (fromFile) logText(configure(Setting.AllowAnonymous, -1) > 0
      ? " (anonymous clients allowed: allow_anonymous true)"
      : " (anonymous clients refused: allow_anonymous false)");
    else if (listenAddressLen == 0) logText(configured
      ? " (loopback only: the config file has no listener; use --host 0.0.0.0 to accept network clients)"
      : NO_CONFIGURATION);
  }
}

// ---- words and messages ----

/** Whether word `w` of the line is the ASCII text `s`. */
export function wordIs(w: i32, s: string): bool {
  const p = wordAt(w);
  const n = s.length;
  if (wordLen(w) != <u32>n) return false;
  for (let k = 0; k < n; k++) if (<i32>load<u8>(p + <usize>k) != s.charCodeAt(k)) return false;
  return true;
}

/** Whether the key is one of Mosquitto 2.0's mosquitto.conf keys that Midge does not read
 *  yet, or starts with the prefix of its plugin option keys. (The literals are here, not
 *  in constants, so that a board built without the parser does not carry them.) */
function isMosquittoKey(p: usize, len: u32): bool {
  const keys = " address addresses allow_duplicate_messages allow_zero_length_clientid auth_plugin auth_plugin_deny_special_chars auto_id_prefix bind_interface bridge_alpn bridge_attempt_unsubscribe bridge_bind_address bridge_cafile bridge_capath bridge_certfile bridge_identity bridge_insecure bridge_keyfile bridge_max_packet_size bridge_outgoing_retain bridge_protocol_version bridge_psk bridge_require_ocsp bridge_tls_version check_retain_source cleansession clientid_prefixes connection crlfile dhparamfile http_dir idle_timeout keepalive_interval local_cleansession local_clientid local_password local_username log_facility log_timestamp log_timestamp_format max_inflight_bytes max_qos max_queued_bytes max_topic_alias memory_limit mount_point notification_topic notifications notifications_local_only persistent_client_expiration plugin psk_file psk_hint queue_qos0_messages remote_clientid remote_password remote_username restart_timeout round_robin set_tcp_nodelay socket_domain start_type threshold tls_engine tls_engine_kpass_sha1 tls_keyform topic try_private upgrade_outgoing_qos use_username_as_clientid user websockets_headers_size websockets_log_level ";
  const n = keys.length;
  for (let at = 0; at + 1 < n; at++) {
    if (keys.charCodeAt(at) != 0x20) continue;
    let k: u32 = 0;
    while (k < len && <i32>load<u8>(p + <usize>k) == keys.charCodeAt(at + 1 + <i32>k)) k++;
    if (k == len && keys.charCodeAt(at + 1 + <i32>k) == 0x20) return true;
  }
  const prefixes = " auth_opt_ plugin_opt_ ";
  for (let at = 0; at + 1 < prefixes.length; at++) {
    if (prefixes.charCodeAt(at) != 0x20) continue;
    let k: u32 = 0;
    while (k < len && <i32>load<u8>(p + <usize>k) == prefixes.charCodeAt(at + 1 + <i32>k)) k++;
    if (prefixes.charCodeAt(at + 1 + <i32>k) == 0x20 && k > 0) return true;
  }
  return false;
}

function logFile(): void {
  logBytes(fileName, <i32>fileNameLen);
}

/** "FILE:LINE: KEY", the start of every message about a line. */
export function logWhere(): void {
  logFile(); logText(":"); logInt(lineNumber); logText(": "); logBytes(wordAt(0), <i32>wordLen(0));
}

export function refuseLine(what: string): i32 {
  logStart(); logWhere(); logText(" "); logText(what);
  return refuse();
}

export function refuseValue(what: string): i32 {
  logStart(); logWhere(); logText(" "); logText(what); logText(", not '"); logBytes(wordAt(1), <i32>wordLen(1)); logText("'");
  return refuse();
}

export function refuseExtra(): i32 {
  logStart(); logWhere(); logText(" takes one value, not '"); logBytes(restAt, <i32>restLen); logText("'");
  return refuse();
}
