// TLS settings per listener: Mosquitto's certfile, keyfile, cafile, capath, ciphers,
// ciphers_tls1.3, tls_version, require_certificate, use_identity_as_username and
// use_subject_as_username, which apply to the listener of the last `listener` line (before
// any, to the default listener of `port`). The core parses and checks them and holds them
// for the host; TLS itself is the host's, with its platform's library (node:tls, OpenSSL):
// the core only ever sees the bytes inside. The host reads listener k's settings with
// text(Text.Tls + k * 16 + TlsField) (docs/ABI.md). A board without the config file parser
// (mcu) has no TLS listener: this table is then one word, and every answer is empty.
//
//   TLS_ROWS: MAX_LISTENERS + 1 rows (row k: listener k; the spare last row: the default
//   listener of `port`, moved after the others at the end of the main file, as its row is)
//   +-----------+---------------+--------------+---------------------------------------+
//   | flags i32 | certLine i32  | keyLine i32  | TEXTS x (len i32, TLS_TEXT_MAX bytes)  |
//   +-----------+---------------+--------------+---------------------------------------+
//   flags: TlsFlag bits; certLine, keyLine: the line of certfile, keyfile (0: not given);
//   texts: TlsField.Certfile .. TlsField.Ciphers13 as written, MinVersion as the host's word

import { Text, TlsField, TlsFlag } from "./settings";
import { CONFIG_TEXT, MAX_LISTENERS } from "./config";
import { logText, logBytes, logInt, logStart } from "./log";
import { refuse } from "./options";

// @ts-ignore: decorator
@inline const TLS_TEXT_MAX: i32 = 256;         // a path or a cipher list, in bytes
// @ts-ignore: decorator
@inline const TEXTS: i32 = 7;                  // TlsField.Certfile .. TlsField.MinVersion
// @ts-ignore: decorator
@inline const TEXT_AT: i32 = 12;               // after flags, certLine, keyLine
// @ts-ignore: decorator
@inline const SLOT: i32 = 4 + TLS_TEXT_MAX;    // one text: its length, its bytes
// @ts-ignore: decorator
@inline const TLS_ROW: i32 = TEXT_AT + TEXTS * SLOT;
const TLS_ROWS = memory.data(CONFIG_TEXT ? (MAX_LISTENERS + 1) * TLS_ROW : 4, 4);

// @ts-ignore: decorator
@inline function rowAt(k: i32): usize { return TLS_ROWS + <usize>(k * TLS_ROW); }
// @ts-ignore: decorator
@inline function slotAt(k: i32, field: i32): usize { return rowAt(k) + <usize>(TEXT_AT + field * SLOT); }

/** The keys this file reads (configfile.ts's key table points each at its field). */
export const enum TlsKey {
  Certfile = 0, Keyfile = 1, Cafile = 2, Capath = 3, Ciphers = 4, Ciphers13 = 5,
  Version = 6, RequireCertificate = 7, UseIdentity = 8, UseSubject = 9,
}

/** A new main file: no listener has TLS. */
export function tlsReset(): void {
  if (CONFIG_TEXT) memory.fill(TLS_ROWS, 0, (MAX_LISTENERS + 1) * TLS_ROW);
}

/** The default listener's row (the spare last one) becomes row `to`. */
export function tlsMove(from: i32, to: i32): void {
  if (CONFIG_TEXT) memory.copy(rowAt(to), rowAt(from), TLS_ROW);
}

/** True when `p` (len bytes) is the ASCII text `s`. */
function same(p: usize, len: u32, s: string): bool {
  if (len != <u32>s.length) return false;
  for (let i = 0; i < s.length; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

function setText(k: i32, field: i32, p: usize, len: u32): void {
  const slot = slotAt(k, field);
  store<i32>(slot, <i32>len);
  memory.copy(slot + 4, p, len);
}

/**
 * Key `key` with its value (`p`, `len` bytes: the rest of the line, trimmed) for the
 * listener in row `k`, read at line `line`. Returns 0, or -n through `refuse`: the caller
 * has started the message with "FILE:LINE: KEY" (logStart, logWhere), this adds what is wrong.
 */
export function tlsKey(k: i32, key: i32, p: usize, len: u32, line: i32): i32 {
  if (!CONFIG_TEXT) return 0;
  const row = rowAt(k);
  if (key <= TlsKey.Ciphers13) {
    if (len > <u32>TLS_TEXT_MAX) {
      logText(" must be at most "); logInt(TLS_TEXT_MAX); logText(" bytes");
      return refuse();
    }
    setText(k, key, p, len);
    if (key == TlsKey.Certfile) store<i32>(row, line, 4);
    if (key == TlsKey.Keyfile) store<i32>(row, line, 8);
    return 0;
  }
  if (key == TlsKey.Version) {
    // Mosquitto 2's words: the lowest version allowed (the default: TLS 1.2)
    let word = "";
    if (same(p, len, "tlsv1.3")) word = "TLSv1.3";
    else if (same(p, len, "tlsv1.2")) word = "TLSv1.2";
    else if (same(p, len, "tlsv1.1")) word = "TLSv1.1";
    else {
      logText(" must be tlsv1.3, tlsv1.2 or tlsv1.1, not '"); logBytes(p, <i32>len); logText("'");
      return refuse();
    }
    store<i32>(slotAt(k, TlsField.MinVersion), word.length);
    for (let i = 0; i < word.length; i++) store<u8>(slotAt(k, TlsField.MinVersion) + 4 + <usize>i, <u8>word.charCodeAt(i));
    return 0;
  }
  let on = -1;
  if (same(p, len, "true") || same(p, len, "1")) on = 1;
  else if (same(p, len, "false") || same(p, len, "0")) on = 0;
  if (on < 0) {
    logText(" must be true or false, not '"); logBytes(p, <i32>len); logText("'");
    return refuse();
  }
  const bit = key == TlsKey.RequireCertificate ? TlsFlag.RequireCertificate
    : key == TlsKey.UseIdentity ? TlsFlag.UseIdentity : TlsFlag.UseSubject;
  const flags = load<i32>(row);
  store<i32>(row, on ? flags | bit : flags & ~bit);
  return 0;
}

/**
 * After the main file, for each of its `count` listeners: certfile and keyfile go together
 * (Mosquitto 2.0.11 ignores one without the other and listens without TLS, which hides the
 * mistake: Midge refuses it), and require_certificate needs a cafile or capath to check
 * the certificates against; TLS settings before any `listener` line need the default listener
 * (`noDefault`: the file has no `port` line). Returns 0, or -n with a message naming `file` and the line.
 */
export function tlsCheck(count: i32, noDefault: bool, file: usize, fileLen: u32): i32 {
  if (!CONFIG_TEXT) return 0;
  const spareCert = load<i32>(rowAt(MAX_LISTENERS), 4);
  const spareLine = spareCert > 0 ? spareCert : load<i32>(rowAt(MAX_LISTENERS), 8);
  if (noDefault && spareLine != 0) {
    logStart(); logBytes(file, <i32>fileLen); logText(":"); logInt(spareLine);
    logText(": TLS settings before any listener line are the default listener's, and the file has no port line: put them after a listener line");
    return refuse();
  }
  for (let k = 0; k < count; k++) {
    const row = rowAt(k);
    const certLine = load<i32>(row, 4), keyLine = load<i32>(row, 8);
    if ((certLine == 0) != (keyLine == 0)) {
      logStart(); logBytes(file, <i32>fileLen); logText(":"); logInt(certLine > 0 ? certLine : keyLine);
      logText(certLine > 0 ? ": certfile without keyfile" : ": keyfile without certfile");
      logText(": a TLS listener needs both (Mosquitto 2.0.11 would listen without TLS)");
      return refuse();
    }
    if (certLine > 0 && (load<i32>(row) & TlsFlag.RequireCertificate) != 0
        && load<i32>(slotAt(k, TlsField.Cafile)) == 0 && load<i32>(slotAt(k, TlsField.Capath)) == 0) {
      logStart(); logBytes(file, <i32>fileLen); logText(":"); logInt(certLine);
      logText(": require_certificate true needs a cafile or capath to check client certificates against");
      return refuse();
    }
  }
  return 0;
}

/**
 * text(Text.Tls + k * 16 + field) into the log line being built: listener k's field, empty
 * for a listener without TLS (no certfile) and past the last. MinVersion defaults to
 * TLSv1.2 (Mosquitto 2's), Flags is decimal and names at most one of UseIdentity and
 * UseSubject (use_identity_as_username wins, as in Mosquitto).
 */
export function tlsText(id: i32, count: i32): void {
  if (!CONFIG_TEXT) return;
  const k = (id - Text.Tls) >> 4, field = (id - Text.Tls) & 15;
  if (k >= count || load<i32>(rowAt(k), 4) == 0 || field > TlsField.Flags) return;
  if (field == TlsField.Flags) {
    let flags = load<i32>(rowAt(k));
    if (flags & TlsFlag.UseIdentity) flags &= ~TlsFlag.UseSubject;
    logInt(flags);
    return;
  }
  const slot = slotAt(k, field), n = load<i32>(slot);
  if (field == TlsField.MinVersion && n == 0) logText("TLSv1.2");
  else logBytes(slot + 4, n);
}
