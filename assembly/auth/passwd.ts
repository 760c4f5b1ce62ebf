// `midge passwd`: Mosquitto 2's mosquitto_passwd, decided here once for every host
// (DESIGN §3). The host splits the command line, reads and writes the file, asks for the
// password without echo and supplies random bytes; this file reads the command line,
// says what the host must do, and turns the old file's text into the new one:
//
//   passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] FILE USER     (the password is asked)
//   passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b FILE USER PASSWORD
//   passwd [-H ...] -U FILE                 (hash every plain-text `user:password` line)
//
// New lines are written as mosquitto_passwd writes them, so Mosquitto reads them too:
//
//   user:$7$101$SALT$HASH   PBKDF2-HMAC-SHA512(password, salt, 101 rounds), the default
//   user:$6$SALT$HASH       SHA-512(password ‖ salt)                        (-H sha512)
//
// SALT is base64 of 12 bytes, HASH base64 of 64. The salts come from the 64 random bytes
// the host hands in with the file: salt k is the first 12 bytes of SHA-512(random ‖ k).
// Every other line of the file (comments, blank lines, other users, lines this file
// cannot read) is kept as it is, in its place.
//
// The steps (`passwd(step, len)` in index.ts; docs/ABI.md says it for a host):
//   Args     INPUT: the arguments after `passwd`, each ended by a NUL byte
//            → Todo flags << 24 | n: the file's name, n bytes at INPUT
//   Prompt   len 0 or 1: the first or the second prompt → n: its text at INPUT
//   Entries  INPUT: what was typed at the prompts, each ended by a NUL byte → 0
//   Edit     INPUT: 64 random bytes, then the file's text → n: the new text at INPUT
// A refusal is -(status << 24 | n): an n-byte message at INPUT, and the exit status
// (0 for --help, whose message is the usage text).

import { MAX_USERS } from "../config";
import { INPUT, INPUT_CAPACITY } from "../broker";
import { hostSha512, hostPbkdf2Sha512 } from "../host";
import { Kind, USER_MAX, PASSWORD_MAX, HASH, encodeBase64 } from "./passwords";

// The three enums below are the hosts' too: scripts/vocab.mjs hands them over (host/generated/).
/** The steps of `passwd(step, len)`. */
export const enum PasswdStep { Args = 0, Prompt = 1, Entries = 2, Edit = 3 }
/** What the host must do after Args (bits of the answer's top byte). */
export const enum PasswdTodo {
  Ask = 1,    // ask for the password at the two prompts, then Entries
  Create = 2, // do not read the file: it starts empty (created, or overwritten)
}
/** What the host hands in at Edit before the file's text. */
export const enum PasswdInput { RandomBytes = 64 }

const enum Op { Set = 0, Delete = 1, Update = 2 }

/** Random bytes the host hands in before the file's text. */
// @ts-ignore: decorator
@inline const RANDOM: u32 = PasswdInput.RandomBytes;
/** Salt bytes of a new line, and PBKDF2 rounds ($7$), as mosquitto_passwd 2 writes them. */
// @ts-ignore: decorator
@inline const SALT: u32 = 12;
// @ts-ignore: decorator
@inline const ROUNDS: u32 = 101;

/** The usage text (`midge passwd --help`, and after a wrong command line). */
function putUsage(): void {
  putText("Usage: midge passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] FILE USER\n");
  putText("       midge passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b FILE USER PASSWORD\n");
  putText("       midge passwd -U FILE\n");
  putText("Manages a password file (the config's password_file) as Mosquitto's mosquitto_passwd does.\n");
  putText(" -b : batch mode: the password is the last argument instead of being asked.\n");
  putText(" -c : create FILE (an existing one is overwritten).\n");
  putText(" -D : delete USER instead of adding it or changing its password.\n");
  putText(" -H : the hash of new lines: sha512-pbkdf2 ($7$, the default) or sha512 ($6$).\n");
  putText(" -U : hash every plain-text user:password line of FILE in place.\n");
}

// The command line, kept from Args to Edit (the input window is reused in between).
const USER = memory.data(MAX_USERS > 0 ? USER_MAX : 8);
let userLen: u32 = 0;
const PASSWORD = memory.data(MAX_USERS > 0 ? PASSWORD_MAX : 8);
let passwordLen: u32 = 0;
let op: Op = Op.Set;
let kind: i32 = Kind.Pbkdf2Sha512;

//   SCRATCH
//   ┌────────────────────┬─────┬────────────┬─────────────────────────────┐
//   │ random (64)        │ k   │ digest (64)│ password ‖ salt ($6$)       │
//   │                    │ u32 │            │ PASSWORD_MAX + SALT         │
//   └────────────────────┴─────┴────────────┴─────────────────────────────┘
// @ts-ignore: decorator
@inline const DIGEST_AT: usize = <usize>RANDOM + 4;
// @ts-ignore: decorator
@inline const JOINED_AT: usize = DIGEST_AT + <usize>HASH;
const SCRATCH = memory.data(MAX_USERS > 0 ? <i32>JOINED_AT + PASSWORD_MAX + <i32>SALT : 8, 8);
/** The salt of the line being written, then its hash. */
const SALT_HASH = memory.data(MAX_USERS > 0 ? <i32>SALT + HASH : 8, 8);

// ---- a bounded writer (a message or the new file, into the input window) ----

let at: usize = 0;
let end: usize = 0;
let full = false;

function writeTo(p: usize, stop: usize): void { at = p; end = stop; full = false; }

function put(c: i32): void {
  if (at < end) store<u8>(at++, <u8>c);
  else full = true;
}

function putText(s: string): void {
  for (let i = 0, n = s.length; i < n; i++) put(s.charCodeAt(i));
}

function putBytes(p: usize, len: u32): void {
  if (<u64>at + len > <u64>end) { full = true; return; }
  memory.copy(at, p, len);
  at += len;
}

function putInt(v: u32): void {
  let div: u32 = 1;
  while (v / div >= 10) div *= 10;
  for (; div > 0; div /= 10) put(<i32>((v / div) % 10) + 0x30);
}

/** A refusal: `text` at INPUT, with `status`. */
function refuse(text: string, status: i32 = 1): i32 {
  writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
  putText(text);
  return refused(status);
}

/** A refusal with a number in its message. */
function refuseOver(before: string, n: u32, after: string): i32 {
  writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
  putText(before); putInt(n); putText(after);
  return refused(1);
}

/** A refusal with the usage text after the message (alone when `text` is empty). */
function refuseWithUsage(text: string, status: i32): i32 {
  writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
  putText(text);
  if (text.length > 0) putText("\n\n");
  putUsage();
  return refused(status);
}

/** A refusal quoting an argument (`n` bytes at `p`, in the input window the message is
 *  written to: copied aside first; at most 200 bytes of it). */
function refuseQuoting(before: string, p: usize, n: u32, after: string, usage: bool): i32 {
  const quoted = min(n, 200);
  memory.copy(SCRATCH + JOINED_AT, p, quoted);
  writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
  putText(before); putBytes(SCRATCH + JOINED_AT, quoted); putText(after);
  if (usage) { putText("\n\n"); putUsage(); }
  return refused(1);
}

function refused(status: i32): i32 {
  return -((status << 24) | <i32>(at - INPUT));
}

// ---- the steps ----

/** One step of `midge passwd` (see the top of this file). */
export function passwd(step: i32, len: u32): i32 {
  // a constant condition: on a board without users (mcu), nothing else here is compiled
  if (MAX_USERS > 0) return runStep(step, len);
  return refuse("Error: no users on this board (MAX_USERS 0).");
}

function runStep(step: i32, len: u32): i32 {
  if (len > <u32>INPUT_CAPACITY) {
    return refuse(step == PasswdStep.Edit ? "Error: the password file is too large for this board." : "Error: the command line is too long.");
  }
  switch (step) {
    case PasswdStep.Args: return readArgs(len);
    case PasswdStep.Prompt: return prompt(len);
    case PasswdStep.Entries: return readEntries(len);
    case PasswdStep.Edit: return edit(len);
  }
  return refuse("Error: no such step.");
}

/** The length of the NUL-ended string at `p` (at most up to `stop`). */
function cString(p: usize, stop: usize): u32 {
  let e = p;
  while (e < stop && load<u8>(e) != 0) e++;
  return <u32>(e - p);
}

function isArg(p: usize, len: u32, s: string): bool {
  if (len != <u32>s.length) return false;
  for (let i: u32 = 0; i < len; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

/** The first positional arguments (FILE USER PASSWORD; one more is one too many), as
 *  (address, length) pairs of u32. */
// @ts-ignore: decorator
@inline const POSITIONAL_MAX: i32 = 4;
const POSITIONAL = memory.data(MAX_USERS > 0 ? POSITIONAL_MAX * 8 : 8, 4);

function readArgs(len: u32): i32 {
  const stop = INPUT + <usize>len;
  let batch = false, create = false, del = false, update = false;
  kind = Kind.Pbkdf2Sha512;
  let p = INPUT;
  let count = 0;
  // the options, up to the first argument that is not one (mosquitto_passwd's loop)
  while (p < stop) {
    const n = cString(p, stop);
    if (isArg(p, n, "-H")) {
      const v = p + <usize>n + 1;
      if (v >= stop) return refuse("Error: -H needs a hash type: sha512-pbkdf2 or sha512.");
      const m = cString(v, stop);
      if (isArg(v, m, "sha512-pbkdf2")) kind = Kind.Pbkdf2Sha512;
      else if (isArg(v, m, "sha512")) kind = Kind.Sha512;
      else return refuseQuoting("Error: Unknown hash type '", v, m, "' (sha512-pbkdf2 or sha512).", false);
      p = v + <usize>m + 1;
      continue;
    }
    if (isArg(p, n, "-b")) batch = true;
    else if (isArg(p, n, "-c")) create = true;
    else if (isArg(p, n, "-D")) del = true;
    else if (isArg(p, n, "-U")) update = true;
    else if (isArg(p, n, "-h") || isArg(p, n, "--help")) return refuseWithUsage("", 0);
    else if (n > 1 && load<u8>(p) == 0x2D) return refuseQuoting("Error: Unknown option '", p, n, "'.", true);
    else break;
    p += <usize>n + 1;
  }
  // the rest: FILE USER [PASSWORD]
  for (; p < stop; count++) {
    const n = cString(p, stop);
    if (count < POSITIONAL_MAX) { store<u32>(POSITIONAL + <usize>(count << 3), <u32>p); store<u32>(POSITIONAL + <usize>(count << 3) + 4, n); }
    p += <usize>n + 1;
  }
  if (create && del) return refuse("Error: -c and -D cannot be used together.");
  if (create && update) return refuse("Error: -c and -U cannot be used together.");
  if (del && update) return refuse("Error: -D and -U cannot be used together.");
  if (del && batch) return refuse("Error: -b and -D cannot be used together.");
  const needed = update ? 1 : del ? 2 : batch ? 3 : 2;
  if (count < needed && create) {
    return refuse(batch ? "Error: -c argument given but password file, username, or password missing."
      : "Error: -c argument given but password file or username missing.");
  }
  if (count < needed && del) return refuse("Error: -D argument given but password file or username missing.");
  if (count < needed && update) return refuse("Error: -U argument given but password file missing.");
  if (count != needed) return refuseWithUsage("Error: wrong number of arguments.", 1);
  op = update ? Op.Update : del ? Op.Delete : Op.Set;
  if (!update) {
    const user = <usize>load<u32>(POSITIONAL + 8);
    userLen = load<u32>(POSITIONAL + 12);
    for (let i: u32 = 0; i < userLen; i++) {
      if (load<u8>(user + <usize>i) == 0x3A) return refuse("Error: Username must not contain the ':' character.");
    }
    if (userLen == 0) return refuse("Error: Username must not be empty.");
    if (userLen > <u32>USER_MAX) return refuseOver("Error: Username must be at most ", USER_MAX, " bytes (the most a password file holds).");
    memory.copy(USER, user, userLen);
  }
  if (batch && !del && !update) {
    passwordLen = load<u32>(POSITIONAL + 20);
    if (passwordLen > <u32>PASSWORD_MAX) return refuseOver("Error: Password must be at most ", PASSWORD_MAX, " bytes.");
    memory.copy(PASSWORD, <usize>load<u32>(POSITIONAL + 16), passwordLen);
  }
  // the file's name, for the host, at INPUT
  const nameLen = load<u32>(POSITIONAL + 4);
  memory.copy(INPUT, <usize>load<u32>(POSITIONAL), nameLen);
  const todo = (op == Op.Set && !batch ? PasswdTodo.Ask : 0) | (create ? PasswdTodo.Create : 0);
  return (todo << 24) | <i32>nameLen;
}

function prompt(which: u32): i32 {
  writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
  putText(which == 0 ? "Password: " : "Reenter password: ");
  return <i32>(at - INPUT);
}

/** The two entries typed at the prompts; the first is the password. */
function readEntries(len: u32): i32 {
  const stop = INPUT + <usize>len;
  const first = cString(INPUT, stop);
  const second = INPUT + <usize>first + 1;
  if (first == 0 || second >= stop) return refuse("Error: Empty password.");
  const n = cString(second, stop);
  if (n != first || memory.compare(INPUT, second, first) != 0) return refuse("Error: Passwords do not match.", 2);
  if (first > <u32>PASSWORD_MAX) return refuseOver("Error: Password must be at most ", PASSWORD_MAX, " bytes.");
  memory.copy(PASSWORD, INPUT, first);
  passwordLen = first;
  return 0;
}

/** The old file's text (after the random bytes) into the new one, built after it in the
 *  input window, then moved to INPUT. */
function edit(len: u32): i32 {
  if (len < RANDOM) return refuse("Error: no random bytes for the salt.");
  memory.copy(SCRATCH, INPUT, RANDOM);
  const text = INPUT + <usize>RANDOM;
  const textEnd = INPUT + <usize>len;
  writeTo(textEnd, INPUT + <usize>INPUT_CAPACITY);
  const out = textEnd;
  let found = false;
  let salts: u32 = 0;
  let lineNumber: u32 = 0;
  let p = text;
  while (p < textEnd) {
    let next = p;
    while (next < textEnd && load<u8>(next) != 0x0A) next++;
    let e = next;
    if (e > p && load<u8>(e - 1) == 0x0D) e--;
    if (next < textEnd) next++; // the line end is kept with the line
    lineNumber++;
    let colon = p;
    while (colon < e && load<u8>(colon) != 0x3A) colon++;
    let blank = true;
    for (let q = p; q < e; q++) if (load<u8>(q) != 0x20 && load<u8>(q) != 0x09) blank = false;
    const entry = !blank && load<u8>(p) != 0x23 && colon < e; // not a comment
    const mine = entry && op != Op.Update && <u32>(colon - p) == userLen && memory.compare(p, USER, userLen) == 0;
    if (op == Op.Update && !blank && load<u8>(p) != 0x23 && colon == e) {
      writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
      putText("Error: Corrupt password file at line "); putInt(lineNumber); putText(" (not a 'user:password' line).");
      return refused(1);
    }
    if (mine) {
      found = true;
      if (op == Op.Set) { putLine(USER, userLen, PASSWORD, passwordLen, 0); putBytes(e, <u32>(next - e)); }
    } else if (op == Op.Update && entry && !hashed(colon + 1, e)) {
      const password = colon + 1, n = <u32>(e - password);
      if (n > <u32>PASSWORD_MAX) {
        refuseOver("Error: Password longer than ", PASSWORD_MAX, " bytes at line ");
        putInt(lineNumber); put(0x2E);
        return refused(1);
      }
      putLine(p, <u32>(colon - p), password, n, salts++);
      putBytes(e, <u32>(next - e));
    } else {
      putBytes(p, <u32>(next - p));
    }
    p = next;
  }
  if (op == Op.Delete && !found) {
    writeTo(INPUT, INPUT + <usize>INPUT_CAPACITY);
    putText("Warning: User "); putBytes(USER, userLen); putText(" not found in password file.");
    return refused(1);
  }
  if (op == Op.Set && !found) {
    if (textEnd > text && load<u8>(textEnd - 1) != 0x0A) put(0x0A);
    putLine(USER, userLen, PASSWORD, passwordLen, 0);
    put(0x0A);
  }
  if (full) return refuse("Error: the password file is too large for this board (the old and the new text together).");
  const n = <u32>(at - out);
  memory.copy(INPUT, out, n);
  return <i32>n;
}

/** Whether a password field already is a mosquitto_passwd hash (`$6$...` or `$7$...`). */
function hashed(p: usize, e: usize): bool {
  return e - p >= 3 && load<u8>(p) == 0x24 && load<u8>(p + 2) == 0x24 && (load<u8>(p + 1) == 0x36 || load<u8>(p + 1) == 0x37);
}

/** `user:$7$101$SALT$HASH` (or `$6$`) for this password, with salt number `k` (no line end). */
function putLine(user: usize, userLen: u32, password: usize, passwordLen: u32, k: u32): void {
  // salt k: SHA-512(random ‖ k), its first SALT bytes
  store<u32>(SCRATCH + <usize>RANDOM, k);
  hostSha512(SCRATCH, RANDOM + 4, SCRATCH + DIGEST_AT);
  memory.copy(SALT_HASH, SCRATCH + DIGEST_AT, SALT);
  const hash = SALT_HASH + <usize>SALT;
  if (kind == Kind.Pbkdf2Sha512) {
    hostPbkdf2Sha512(password, passwordLen, SALT_HASH, SALT, ROUNDS, hash, <u32>HASH);
  } else {
    memory.copy(SCRATCH + JOINED_AT, password, passwordLen);
    memory.copy(SCRATCH + JOINED_AT + <usize>passwordLen, SALT_HASH, SALT);
    hostSha512(SCRATCH + JOINED_AT, passwordLen + SALT, hash);
  }
  putBytes(user, userLen);
  if (kind == Kind.Pbkdf2Sha512) { putText(":$7$"); putInt(ROUNDS); put(0x24); }
  else putText(":$6$");
  putBase64(SALT_HASH, SALT);
  put(0x24);
  putBase64(hash, <u32>HASH);
}

function putBase64(p: usize, len: u32): void {
  const n = ((len + 2) / 3) * 4;
  if (<u64>at + n > <u64>end) { full = true; return; }
  at += encodeBase64(p, len, at);
}
