// The config file parser (assembly/configfile.ts): Mosquitto's mosquitto.conf lines in,
// settings set or a message out naming the file, the line, the key and what is wrong,
// with the default board of assembly/config.ts (in-flight window 16, 20 connections,
// 64 KiB packets). Both hosts print these messages as they are.

import { readConfig, listenText, Part, keyRange, keyRangeInTable, keyMin, keyMax } from "../../assembly/configfile";
import { option } from "../../assembly/options";
import { Setting, LogTo, Text, PersistSync, configure } from "../../assembly/settings";
import { INPUT } from "../../assembly/broker";
import { INFLIGHT_MAX, QUEUE_MAX, MAX_CONNECTIONS, PACKET_MAX, MAX_LISTENERS } from "../../assembly/config";

const TEXT = memory.data(4096);

/** readConfig(name, text, part) with both written as bytes, as a host writes them. */
function read(name: string, text: string, part: i32 = Part.Main): i32 {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(name), name.length, TEXT);
  const t = String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, TEXT + n);
  return readConfig(TEXT, <u32>n, TEXT + n, <u32>t, part);
}

/** What the core left at INPUT: a refusal's message (`result` < 0) or an include_dir's
 *  directory (> 0); "" when the text was read. */
function said(result: i32): string {
  return result == 0 ? "" : String.UTF8.decodeUnsafe(INPUT, <usize>(result < 0 ? -result : result));
}

function text(id: i32): string {
  return String.UTF8.decodeUnsafe(INPUT, <usize>listenText(id));
}

function give(name: string, value: string): i32 {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(name), name.length, TEXT);
  const v = String.UTF8.encodeUnsafe(changetype<usize>(value), value.length, TEXT + n);
  return option(TEXT, <u32>n, TEXT + n, <u32>v);
}

function heapTop(): usize {
  const p = __alloc(1);
  __free(p);
  return p;
}

describe("a config file", () => {
  it("without a listener: loopback only, anonymous clients allowed (even if it says false)", () => {
    expect(text(0)).toBe("127.0.0.1");
    expect(text(1)).toBe(" (loopback only: no configuration; use --host 0.0.0.0 to accept network clients)");
    expect(said(read("a.conf", "allow_anonymous false\n"))).toBe("");
    expect(configure(Setting.AllowAnonymous, -1)).toBe(1);
    expect(text(0)).toBe("127.0.0.1");
    expect(text(1)).toBe(" (loopback only: the config file has no listener; use --host 0.0.0.0 to accept network clients)");
  });

  it("sets every key it knows, skipping comments and blank lines (LF or CRLF)", () => {
    const conf = "# Mosquitto's example\r\n\r\n   \nlistener 1884 10.0.0.1\r\n" +
      "max_connections 7\nmax_keepalive 120\nmax_packet_size 1000\nmax_inflight_messages 5\n" +
      "max_queued_messages 9\nper_listener_settings true\nconnection_messages false\n" +
      "sys_interval 30\nlog_dest stdout\nlog_type warning\nlog_type error\n\t# indented comment\nmessage_size_limit 100\n";
    expect(said(read("good.conf", conf))).toBe("");
    expect(configure(Setting.Port, -1)).toBe(1884);
    expect(configure(Setting.MaxConnections, -1)).toBe(7);
    expect(configure(Setting.MaxKeepAlive, -1)).toBe(120);
    expect(configure(Setting.MaxPacketSize, -1)).toBe(1000);
    expect(configure(Setting.MaxInflight, -1)).toBe(5);
    expect(configure(Setting.MaxQueued, -1)).toBe(9);
    expect(configure(Setting.PerListenerSettings, -1)).toBe(1);
    expect(configure(Setting.ConnectionMessages, -1)).toBe(0);
    expect(configure(Setting.SysInterval, -1)).toBe(30);
    expect(configure(Setting.MessageSizeLimit, -1)).toBe(100);
    expect(configure(Setting.LogDest, -1)).toBe(LogTo.Stdout); // the first log_dest replaces the default
    expect(configure(Setting.LogLevel, -1)).toBe(1); // the most detailed type given: warning
    expect(text(0)).toBe("10.0.0.1");
    // a listener and no allow_anonymous: Mosquitto 2 refuses anonymous clients
    expect(configure(Setting.AllowAnonymous, -1)).toBe(0);
    expect(text(1)).toBe(" (anonymous clients refused: allow_anonymous false)");
  });

  it("takes Mosquitto's 'no limit' values as the board's limit", () => {
    expect(said(read("u.conf", "max_connections -1\nmax_packet_size 0\nmax_inflight_messages 0\nmax_queued_messages 0\n"))).toBe("");
    expect(configure(Setting.MaxConnections, -1)).toBe(MAX_CONNECTIONS);
    expect(configure(Setting.MaxPacketSize, -1)).toBe(PACKET_MAX);
    expect(configure(Setting.MaxInflight, -1)).toBe(INFLIGHT_MAX);
    expect(configure(Setting.MaxQueued, -1)).toBe(QUEUE_MAX);
  });

  it("a listener without an address listens everywhere; allow_anonymous true, 1 and the last of a key win", () => {
    expect(said(read("b.conf", "port 1000\nport 1885\nallow_anonymous false\nallow_anonymous 1\nlog_dest none\nlog_dest stderr\n"))).toBe("");
    expect(configure(Setting.Port, -1)).toBe(1885);
    expect(configure(Setting.AllowAnonymous, -1)).toBe(1);
    expect(configure(Setting.LogDest, -1)).toBe(LogTo.Stderr); // none, then stderr
    expect(text(1)).toBe(" (anonymous clients allowed: allow_anonymous true)");
    // the address of the file before (10.0.0.1) is kept: the address is one setting
    expect(said(read("c.conf", "listener 1886\n"))).toBe("");
    expect(configure(Setting.AllowAnonymous, -1)).toBe(0);
  });

  it("log_type none and --verbose; options given after the file override it", () => {
    expect(said(read("l.conf", "log_type none\nlog_dest stdout\n"))).toBe("");
    expect(configure(Setting.LogDest, -1)).toBe(0);
    expect(said(read("l.conf", "log_type debug\nlog_type notice\n"))).toBe("");
    expect(configure(Setting.LogLevel, -1)).toBe(4);
    expect(said(read("m.conf", "max_inflight_messages 3\n"))).toBe("");
    expect(give("--max-inflight", "8")).toBe(Setting.MaxInflight);
    expect(configure(Setting.MaxInflight, -1)).toBe(8);
    expect(give("--host", "0.0.0.0")).toBe(0);
    expect(text(0)).toBe("0.0.0.0");
    expect(give("-c", "x.conf")).toBe(0);
    expect(give("--config", "x.conf")).toBe(0);
    expect(give("--verbose", "")).toBe(0);
    expect(configure(Setting.LogLevel, -1)).toBe(4);
  });
});

describe("TLS settings", () => {
  it("belong to the listener of the last listener line (before any: the default listener), text(48 + k*16 + field)", () => {
    configure(Setting.PerListenerSettings, 0); // (an earlier spec may have set it)
    expect(said(read("t.conf", "port 8883\ncertfile /c/d.pem\nkeyfile /c/d.key\nlistener 1883\nlistener 8884 127.0.0.1\ncertfile /c/s.pem\nkeyfile /c/s key.pem\ncafile /c/ca.pem\nrequire_certificate true\nuse_subject_as_username true\ntls_version tlsv1.3\nciphers_tls1.3 TLS_AES_256_GCM_SHA384\n"))).toBe("");
    expect(text(16)).toBe("1883 0.0.0.0");
    expect(text(48)).toBe("");            // listener 0 (1883): plain
    expect(text(48 + 7)).toBe("");
    expect(text(48 + 16)).toBe("/c/s.pem"); // listener 1 (8884)
    expect(text(48 + 16 + 1)).toBe("/c/s key.pem");
    expect(text(48 + 16 + 2)).toBe("/c/ca.pem");
    expect(text(48 + 16 + 5)).toBe("TLS_AES_256_GCM_SHA384");
    expect(text(48 + 16 + 6)).toBe("TLSv1.3");
    expect(text(48 + 16 + 7)).toBe("5");     // RequireCertificate | UseSubject
    expect(text(18)).toBe("8883 0.0.0.0");   // the default listener, last
    expect(text(48 + 32)).toBe("/c/d.pem");
    expect(text(48 + 32 + 6)).toBe("TLSv1.2"); // the default
    expect(text(48 + 32 + 7)).toBe("0");
    expect(text(48 + 48)).toBe("");          // past the last
    expect(read("t.conf", "listener 1883\n")).toBe(0); // a new file: no TLS left over
    expect(text(48)).toBe("");
  });
});

describe("a bad line", () => {
  it("is refused with its file, line and key, and what is wrong", () => {
    expect(said(read("e.conf", "\n# x\nfoo bar\n"))).toBe("e.conf:3: foo is not a configuration key");
    expect(said(read("e.conf", "psk_file /etc/psk\n"))).toBe("e.conf:1: psk_file is a Mosquitto option Midge does not support yet");
    expect(said(read("e.conf", "listener 1883\ncrlfile /etc/crl.pem\n"))).toBe("e.conf:2: crlfile is a Mosquitto option Midge does not support yet");
    expect(said(read("e.conf", "listener 1883\ncertfile /etc/cert.pem\n"))).toBe("e.conf:2: certfile without keyfile: a TLS listener needs both (Mosquitto 2.0.11 would listen without TLS)");
    expect(said(read("e.conf", "listener 1883\ntls_version tlsv1.0\n"))).toBe("e.conf:2: tls_version must be tlsv1.3, tlsv1.2 or tlsv1.1, not 'tlsv1.0'");
    expect(said(read("e.conf", "listener 1883\nrequire_certificate yes\n"))).toBe("e.conf:2: require_certificate must be true or false, not 'yes'");
    expect(said(read("e.conf", "listener 8883\ncertfile c.pem\nkeyfile k.pem\nrequire_certificate true\n"))).toBe("e.conf:2: require_certificate true needs a cafile or capath to check client certificates against");
    expect(said(read("e.conf", "certfile c.pem\nkeyfile k.pem\nlistener 1883\n"))).toBe("e.conf:1: TLS settings before any listener line are the default listener's, and the file has no port line: put them after a listener line");
    expect(said(read("e.conf", "plugin_opt_x 1\n"))).toBe("e.conf:1: plugin_opt_x is a Mosquitto option Midge does not support yet");
    expect(said(read("e.conf", "max_keepalive\n"))).toBe("e.conf:1: max_keepalive needs a value");
    expect(said(read("e.conf", "listener\n"))).toBe("e.conf:1: listener needs a port");
    expect(said(read("e.conf", "max_keepalive 70000\n"))).toBe("e.conf:1: max_keepalive must be a whole number of seconds from 0 to 65535, not '70000'");
    expect(said(read("e.conf", "max_keepalive ten\n"))).toBe("e.conf:1: max_keepalive must be a whole number of seconds from 0 to 65535, not 'ten'");
    expect(said(read("e.conf", "max_inflight_messages 17\n"))).toBe("e.conf:1: max_inflight_messages must be a whole number from 1 to 16 (0: no limit), not '17'");
    expect(said(read("e.conf", "max_connections 0\n"))).toBe("e.conf:1: max_connections must be a whole number from 1 to 20 (-1: no limit), not '0'");
    expect(said(read("e.conf", "sys_interval -5\n"))).toBe("e.conf:1: sys_interval must be a whole number of seconds from 0 to 65535, not '-5'");
    expect(said(read("e.conf", "message_size_limit 268435456\n"))).toBe("e.conf:1: message_size_limit must be a whole number of bytes from 0 to 268435455, not '268435456'");
    expect(said(read("e.conf", "listener 70000\n"))).toBe("e.conf:1: listener must be a whole number from 0 to 65535, not '70000'");
    expect(said(read("e.conf", "allow_anonymous maybe\n"))).toBe("e.conf:1: allow_anonymous must be true or false, not 'maybe'");
    expect(said(read("e.conf", "max_keepalive 10 20\n"))).toBe("e.conf:1: max_keepalive takes one value, not '10 20'");
    expect(said(read("e.conf", "listener 1 a b\n"))).toBe("e.conf:1: listener takes a port and an address, no more");
    expect(said(read("e.conf", "log_dest syslog\n"))).toBe("e.conf:1: log_dest syslog is a Mosquitto option Midge does not support yet");
    expect(said(read("e.conf", "log_dest paper\n"))).toBe("e.conf:1: log_dest must be stderr, stdout, file or none, not 'paper'");
    expect(said(read("e.conf", "log_dest file\n"))).toBe("e.conf:1: log_dest file needs a path");
    expect(said(read("e.conf", "log_dest file a.log\nlog_dest file b.log\n"))).toBe("e.conf:2: log_dest file is given twice (one log file, as in Mosquitto)");
    expect(said(read("e.conf", "log_type loud\n"))).toBe("e.conf:1: log_type must be error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all or none, not 'loud'");
  });

  it("several listeners: in the file's order, the default one (port, bind_address) last, as Mosquitto 2", () => {
    configure(Setting.PerListenerSettings, 0); // (set true by a file above)
    expect(said(read("s.conf", "port 1900\nlistener 1901 127.0.0.2\nbind_address 127.0.0.3\nlistener 0\n"))).toBe("");
    expect(text(16)).toBe("1901 127.0.0.2");
    expect(text(17)).toBe("0 0.0.0.0");
    expect(text(18)).toBe("1900 127.0.0.3");
    expect(text(19)).toBe("");
    expect(text(0)).toBe("127.0.0.2");
    expect(configure(Setting.Port, -1)).toBe(1901);
    expect(configure(Setting.AllowAnonymous, -1)).toBe(0);
    // --port and --host set the first listener
    expect(give("--port", "1999")).toBe(Setting.Port);
    expect(text(16)).toBe("1999 127.0.0.2");
    expect(give("--host", "::1")).toBe(0);
    expect(text(16)).toBe("1999 ::1");
    expect(text(17)).toBe("0 0.0.0.0");
    // bind_address alone: the default listener on 1883 (Mosquitto 2 too)
    expect(said(read("b.conf", "bind_address 127.0.0.4\nallow_anonymous true\n"))).toBe("");
    expect(text(16)).toBe("1883 127.0.0.4");
    expect(text(17)).toBe("");
    expect(text(1)).toBe(" (anonymous clients allowed: allow_anonymous true)");
  });

  it("more listeners than the board holds, or with per_listener_settings true, are refused", () => {
    let conf = "";
    for (let i = 0; i <= MAX_LISTENERS; i++) conf += "listener " + (2000 + i).toString() + "\n";
    expect(said(read("e.conf", conf))).toBe("e.conf:" + (MAX_LISTENERS + 1).toString() + ": listener is one listener more than this board holds (" + MAX_LISTENERS.toString() + ")");
    const why = "Midge applies allow_anonymous, password_file and acl_file to every listener for now";
    expect(said(read("e.conf", "per_listener_settings true\nlistener 1\nport 2\n"))).toBe("e.conf:3: port is a second listener with per_listener_settings true: " + why);
    configure(Setting.PerListenerSettings, 0);
    expect(said(read("e.conf", "listener 1\nlistener 2\nper_listener_settings true\n"))).toBe("e.conf:3: per_listener_settings true with several listeners: " + why);
    configure(Setting.PerListenerSettings, 0);
  });

  it("log_dest: a set of destinations, one log file (text 4)", () => {
    expect(said(read("d.conf", "log_dest file /var/log/midge log\nlog_dest stderr\n"))).toBe("");
    expect(configure(Setting.LogDest, -1)).toBe(LogTo.File | LogTo.Stderr);
    expect(text(4)).toBe("/var/log/midge log");
    expect(said(read("d.conf", "log_dest stdout\n"))).toBe("");
    expect(text(4)).toBe("");
    expect(configure(Setting.LogDest, -1)).toBe(LogTo.Stdout);
  });

  it("retain_available; persistence false and the keys that go with it; pid_file", () => {
    expect(said(read("r.conf", "retain_available false\npersistence false\npersistence_location /var/lib/mosquitto/\nautosave_interval 1800\npid_file /run/mosquitto/mosquitto.pid\n"))).toBe("");
    expect(configure(Setting.RetainAvailable, -1)).toBe(0);
    expect(said(read("r.conf", "retain_available true\n"))).toBe("");
    expect(configure(Setting.RetainAvailable, -1)).toBe(1);
    expect(said(read("r.conf", "persistence maybe\n"))).toBe("r.conf:1: persistence must be true or false, not 'maybe'");
    expect(said(read("r.conf", "autosave_interval soon\n"))).toBe("r.conf:1: autosave_interval must be a whole number of seconds from 0 to 2147483647, not 'soon'");
  });

  it("persistence true: the file is persistence_location + persistence_file (text 5), synced as persistence_sync says", () => {
    expect(said(read("p.conf", "persistence false\npersistence_location /var/lib/midge\n"))).toBe("");
    expect(text(Text.PersistenceFile)).toBe("");
    expect(said(read("p.conf", "persistence true\npersistence_location /var/lib/midge\nautosave_interval 60\n"))).toBe("");
    expect(text(Text.PersistenceFile)).toBe("/var/lib/midge/midge.db");
    expect(configure(Setting.AutosaveInterval, -1)).toBe(60);
    expect(configure(Setting.PersistenceSync, -1)).toBe(PersistSync.Interval);
    expect(said(read("p.conf", "persistence true\npersistence_location /var/lib/mosquitto/\npersistence_file mosquitto.db\npersistence_sync always\n"))).toBe("");
    expect(text(Text.PersistenceFile)).toBe("/var/lib/mosquitto/mosquitto.db");
    expect(configure(Setting.PersistenceSync, -1)).toBe(PersistSync.Always);
    expect(said(read("p.conf", "persistence true\n"))).toBe("");
    expect(text(Text.PersistenceFile)).toBe("midge.db");
    expect(said(read("p.conf", "persistence_sync sometimes\n"))).toBe("p.conf:1: persistence_sync must be always or interval, not 'sometimes'");
    expect(said(read("p.conf", "persistence_file db/midge.db\n"))).toBe("p.conf:1: persistence_file is a file name, without a directory (persistence_location says where)");
    expect(said(read("p.conf", "persistence true\nautosave_on_changes true\nautosave_interval 100\n"))).toBe("");
    expect(configure(Setting.AutosaveOnChanges, -1)).toBe(1);
    expect(said(read("p.conf", "autosave_on_changes maybe\n"))).toBe("p.conf:1: autosave_on_changes must be true or false, not 'maybe'");
    expect(said(read("p.conf", "persistence false\nautosave_on_changes false\n"))).toBe("");
  });

  it("the ranges of the settings only the file sets are the key table's", () => {
    for (let setting = 1; setting < 40; setting++) {
      const inTable = keyRangeInTable(setting);
      const tableMin = keyMin, tableMax = keyMax;
      expect(keyRange(setting)).toBe(inTable, "setting " + setting.toString());
      if (inTable) { expect(keyMin).toBe(tableMin); expect(keyMax).toBe(tableMax); }
    }
  });

  it("a file larger than the input window is refused as too large for the board", () => {
    const r = readConfig(TEXT, 6, TEXT + 6, 1 << 30, Part.Main);
    expect(said(r).endsWith("bytes is more than this board takes in a config file (69631)")).toBe(true);
  });
});

describe("include_dir", () => {
  it("hands the directory back, reads the included files, then the rest with its line numbers", () => {
    const main = "listener 1900\ninclude_dir /etc/mosquitto/conf.d\nmax_keepalive x\n";
    expect(said(read("main.conf", main))).toBe("/etc/mosquitto/conf.d");
    expect(said(read("/etc/mosquitto/conf.d/a.conf", "allow_anonymous true\n", Part.Included))).toBe("");
    expect(said(read("/etc/mosquitto/conf.d/b.conf", "\nnope 1\n", Part.Included))).toBe("/etc/mosquitto/conf.d/b.conf:2: nope is not a configuration key");
    expect(said(read("/etc/mosquitto/conf.d/c.conf", "include_dir x\n", Part.Included)))
      .toBe("/etc/mosquitto/conf.d/c.conf:1: include_dir is read in the main config file only (Mosquitto ignores it here)");
    expect(said(read("main.conf", main, Part.Resumed))).toBe("main.conf:3: max_keepalive must be a whole number of seconds from 0 to 65535, not 'x'");
    expect(said(read("main.conf", "listener 1900\ninclude_dir d\n"))).toBe("d");
    expect(said(read("main.conf", "listener 1900\ninclude_dir d\n", Part.Resumed))).toBe("");
    expect(configure(Setting.AllowAnonymous, -1)).toBe(0);
  });

  it("allocates nothing", () => {
    read("e.conf", "listener 1 a\nmax_keepalive 5\nfoo\n"); // the bytes stay at TEXT
    const before = heapTop();
    for (let i = 0; i < 100; i++) {
      readConfig(TEXT, 6, TEXT + 6, 31, Part.Main);
      listenText(0);
      listenText(1);
    }
    expect(heapTop()).toBe(before);
  });
});
