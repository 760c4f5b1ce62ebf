// Limits the host may set at run time, each within the board's compile-time one,
// through `option` (the text of a flag, checked against the option table) and
// `configure` (a number, clamped to the same table's range); see docs/ABI.md. Every one
// has its flag, range and default in the option table (options.ts), a log line when hit
// and a counter (stats.ts). A few are held for the host only (Port, StatsInterval): the
// core parses them, as it will parse the config file (#12), and the host reads them back.

import { PACKET_MAX, MAX_CONNECTIONS, INFLIGHT_MAX, QUEUE_MAX, BACKLOG_MAX, CONNECT_TIMEOUT_MS } from "./config";
import { settingRange, rangeLow, rangeHigh } from "./options";
import { logLevel, setLogLevel } from "./log";

export const enum Setting {
  MaxKeepAlive = 1,       // s; 0 = whatever the client asks (MQTT 5 clients are told the cap)
  ConnectTimeout = 2,     // ms a new connection has to send CONNECT
  MaxInflight = 3,        // unacknowledged QoS 1/2 PUBLISHes towards one client (≤ INFLIGHT_MAX)
  MaxQueued = 4,          // QoS 1/2 messages queued or in flight per session (≤ QUEUE_MAX)
  MaxConnections = 5,     // network connections (≤ MAX_CONNECTIONS)
  MaxBacklog = 6,         // bytes waiting for a subscriber before QoS 0 is dropped (≤ BACKLOG_MAX)
  MaxInputBuffer = 7,     // bytes of incomplete packets the host holds for all connections together
  StallTimeout = 8,       // ms a subscriber may take no bytes and acknowledge nothing before it is stalled
  MaxPacketSize = 9,      // bytes of the largest packet accepted, whole packet (≤ PACKET_MAX)
  Port = 10,              // TCP port of the first listener (held for the host; the others: configfile.ts)
  StatsInterval = 11,     // s between the host's counter log lines; 0 = never (held for the host)
  AllowAnonymous = 12,    // 1: clients without a user name may connect; 0: refused (CONNACK 5 / 0x87)
  ConnectionMessages = 13, // 1: a line for every client connecting and disconnecting normally
  SysInterval = 14,       // s between $SYS updates (held: $SYS is not built yet)
  PerListenerSettings = 15, // 1: security settings per listener (held: Midge's are global; refused with several listeners)
  LogLevel = 16,          // the most detailed log level emitted, 0 (error) to 4 (debug)
  LogDest = 17,           // where the host writes log lines: bits of LogTo, 0 nowhere (held for the host)
  MessageSizeLimit = 18,  // bytes of payload above which a PUBLISH is dropped; 0 = no limit
  RetainAvailable = 19,   // 1: retained messages kept; 0: a retained PUBLISH or will closes its connection (MQTT 5: 0x9A)
  Persistence = 20,       // 1: state kept in the file text(Text.PersistenceFile) names (persist/)
  PersistenceSync = 21,   // PersistSync: when records are synced to disk
  AutosaveInterval = 22,  // s: with PersistSync.Interval, the longest time between syncs (0: only at compaction and exit)
  AutosaveOnChanges = 23, // 1: AutosaveInterval counts changes (records), not seconds (Mosquitto's autosave_on_changes)
}

/** When the persistence file is synced (Setting.PersistenceSync; `persistence_sync`). */
export const enum PersistSync {
  Interval = 0,           // written at once, synced every autosave_interval (a power cut loses at most that)
  Always = 1,             // synced before a QoS 1/2 PUBLISH or a retained message is acknowledged
}

/** Where the host writes log lines (Setting.LogDest): a set of these bits; 0: nowhere. */
export const enum LogTo {
  Stderr = 1,             // standard error (the default)
  Stdout = 2,             // standard output, a line at a time
  File = 4,               // appended to the file text(Text.LogFile) names
}

/** What `text(id)` answers (configfile.ts listenText; docs/ABI.md). */
export const enum Text {
  Address = 0,            // the first listener's address
  Note = 1,               // the note after the first listening line: who may connect
  PasswordFile = 2,       // password_file's path (empty: none)
  AclFile = 3,            // acl_file's path (empty: none)
  LogFile = 4,            // log_dest file's path (empty: none)
  PersistenceFile = 5,    // persistence_location + persistence_file (empty: persistence off)
  Listener = 16,          // Listener + k: listener k as "PORT ADDRESS"; empty past the last
  Tls = 48,               // Tls + k * 16 + TlsField: listener k's TLS settings (tlsconfig.ts); empty past the last
  Bridge = 1024,          // Bridge + b * 8 + BridgeField: bridge b's TLS settings (bridge/); empty past the last
}

/** The fields of bridge b's TLS settings: text(Text.Bridge + b * 8 + field), for the host's
 *  `dial`. Cafile and Capath both empty: plain TCP. */
export const enum BridgeField {
  Cafile = 0,             // bridge_cafile: CA certificates that sign the upstream's certificate (PEM)
  Capath = 1,             // bridge_capath: a directory of them
  Certfile = 2,           // bridge_certfile: this bridge's client certificate (PEM), empty: none
  Keyfile = 3,            // bridge_keyfile: its private key (PEM)
  Insecure = 4,           // bridge_insecure: "1" when the upstream's host name is not checked, else "0"
}

/** The fields of listener k's TLS settings: text(Text.Tls + k * 16 + field). Certfile is
 *  empty for a listener without TLS (then every field is). */
export const enum TlsField {
  Certfile = 0,           // certfile: the server's certificate chain (PEM)
  Keyfile = 1,            // keyfile: its private key (PEM)
  Cafile = 2,             // cafile: CA certificates that sign client certificates (PEM)
  Capath = 3,             // capath: a directory of CA certificates (PEM, c_rehash'd for OpenSSL)
  Ciphers = 4,            // ciphers: OpenSSL's cipher list for TLS 1.2 (empty: the library's default)
  Ciphers13 = 5,          // ciphers_tls1.3: the TLS 1.3 cipher suites (empty: the library's default)
  MinVersion = 6,         // the lowest version allowed: TLSv1.1, TLSv1.2 (the default) or TLSv1.3
  Flags = 7,              // TlsFlag bits, in decimal
}

/** Bits of text(Text.Tls + k * 16 + TlsField.Flags). */
export const enum TlsFlag {
  RequireCertificate = 1, // clients must present a certificate signed by cafile/capath (else the handshake fails)
  UseIdentity = 2,        // the client certificate's CN is the user name: the host calls identity()
  UseSubject = 4,         // the certificate's subject (RFC 2253) is the user name: the host calls identity()
}

// Settings 12-18 come from the config file (configfile.ts), whose key table holds their
// ranges; the rest from the option table, which the config file's keys reuse.

// The values in force, starting at their defaults (the option table shows the same ones
// in --help; test/assembly/options.spec.ts checks that they agree).
/** Largest packet accepted, whole packet. */
export let maxPacketSize: i32 = PACKET_MAX;
export let maxKeepAlive: i32 = 0;
export let connectTimeoutMs: f64 = CONNECT_TIMEOUT_MS;
export let maxInflight: i32 = INFLIGHT_MAX;
export let maxQueued: i32 = QUEUE_MAX;
export let maxConnections: i32 = MAX_CONNECTIONS;
export let maxBacklog: i32 = BACKLOG_MAX;
export let maxInputBuffer: f64 = 64 * 1024 * 1024;
export let stallTimeoutMs: f64 = 5000;
export let port: i32 = 1883;
export let statsInterval: i32 = 0;
/** Mosquitto 2's defaults: anonymous clients allowed while no listener is configured
 *  (loopback only); a config file's listener makes it false unless the file says so. */
export let allowAnonymous: i32 = 1;
export let connectionMessages: i32 = 1;
export let sysInterval: i32 = 10;
export let perListenerSettings: i32 = 0;
export let logDest: i32 = LogTo.Stderr;
export let messageSizeLimit: i32 = 0;
export let retainAvailable: i32 = 1;
export let persistence: i32 = 0;
export let persistenceSync: i32 = PersistSync.Interval;
/** Mosquitto's default: 30 minutes. */
export let autosaveInterval: i32 = 1800;
export let autosaveOnChanges: i32 = 0;

/** The address to listen on, as text (held for the host): set by --host, a config file's
 *  `listener` or `bind_address`; empty: the default (see listenText in configfile.ts). */
// @ts-ignore: decorator
@inline export const ADDRESS_MAX: i32 = 255;
export const LISTEN_ADDRESS = memory.data(ADDRESS_MAX);
export let listenAddressLen: i32 = 0;

/** Sets the listening address; false (nothing set) when it is longer than ADDRESS_MAX. */
export function setListenAddress(ptr: usize, len: u32): bool {
  if (len > <u32>ADDRESS_MAX) return false;
  memory.copy(LISTEN_ADDRESS, ptr, len);
  listenAddressLen = <i32>len;
  return true;
}

export function setMaxPacketSize(v: i32): void { maxPacketSize = v; }

function clamp(v: f64, lo: f64, hi: f64): f64 { return v < lo ? lo : v > hi ? hi : v; }

/** Sets `key` to `value` clamped to its range in the option table, then returns the value
 *  in force, or -1 for an unknown setting. A negative `value` only reads the setting. */
export function configure(key: i32, value: f64): f64 {
  if (value >= 0 && settingRange(key)) {
    const v = clamp(value, rangeLow, rangeHigh);
    switch (key) {
      case Setting.MaxKeepAlive: maxKeepAlive = <i32>v; break;
      case Setting.ConnectTimeout: connectTimeoutMs = v; break;
      case Setting.MaxInflight: maxInflight = <i32>v; break;
      case Setting.MaxQueued: maxQueued = <i32>v; break;
      case Setting.MaxConnections: maxConnections = <i32>v; break;
      case Setting.MaxBacklog: maxBacklog = <i32>v; break;
      case Setting.MaxInputBuffer: maxInputBuffer = v; break;
      case Setting.StallTimeout: stallTimeoutMs = v; break;
      case Setting.MaxPacketSize: maxPacketSize = <i32>v; break;
      case Setting.Port: port = <i32>v; break;
      case Setting.StatsInterval: statsInterval = <i32>v; break;
      case Setting.AllowAnonymous: allowAnonymous = <i32>v; break;
      case Setting.ConnectionMessages: connectionMessages = <i32>v; break;
      case Setting.SysInterval: sysInterval = <i32>v; break;
      case Setting.PerListenerSettings: perListenerSettings = <i32>v; break;
      case Setting.LogLevel: setLogLevel(<i32>v); break;
      case Setting.LogDest: logDest = <i32>v; break;
      case Setting.MessageSizeLimit: messageSizeLimit = <i32>v; break;
      case Setting.RetainAvailable: retainAvailable = <i32>v; break;
      case Setting.Persistence: persistence = <i32>v; break;
      case Setting.PersistenceSync: persistenceSync = <i32>v; break;
      case Setting.AutosaveInterval: autosaveInterval = <i32>v; break;
      case Setting.AutosaveOnChanges: autosaveOnChanges = <i32>v; break;
    }
  }
  switch (key) {
    case Setting.MaxKeepAlive: return maxKeepAlive;
    case Setting.ConnectTimeout: return connectTimeoutMs;
    case Setting.MaxInflight: return maxInflight;
    case Setting.MaxQueued: return maxQueued;
    case Setting.MaxConnections: return maxConnections;
    case Setting.MaxBacklog: return maxBacklog;
    case Setting.MaxInputBuffer: return maxInputBuffer;
    case Setting.StallTimeout: return stallTimeoutMs;
    case Setting.MaxPacketSize: return maxPacketSize;
    case Setting.Port: return port;
    case Setting.StatsInterval: return statsInterval;
    case Setting.AllowAnonymous: return allowAnonymous;
    case Setting.ConnectionMessages: return connectionMessages;
    case Setting.SysInterval: return sysInterval;
    case Setting.PerListenerSettings: return perListenerSettings;
    case Setting.LogLevel: return logLevel;
    case Setting.LogDest: return logDest;
    case Setting.MessageSizeLimit: return messageSizeLimit;
    case Setting.RetainAvailable: return retainAvailable;
    case Setting.Persistence: return persistence;
    case Setting.PersistenceSync: return persistenceSync;
    case Setting.AutosaveInterval: return autosaveInterval;
    case Setting.AutosaveOnChanges: return autosaveOnChanges;
  }
  return -1;
}
