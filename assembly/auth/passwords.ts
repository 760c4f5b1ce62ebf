// Users from a password file as Mosquitto's mosquitto_passwd writes it, and the check of
// a CONNECT's user name and password against them. The host reads the file the config's
// `password_file` names and hands its bytes in (`config`, part 3); the digests come from
// the host's crypto service (the `sha512` and `pbkdf2Sha512` imports): the core decides
// which one, with what, and compares the result in constant time.
//
//   user:$7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512(password, salt, iterations), 64 bytes
//   user:$6$SALT$HASH              SHA-512(password ‖ salt)
//
// SALT and HASH are base64. Blank lines and lines starting with '#' are skipped.
//
//   one row of USERS (ROW bytes)
//   ┌──────────┬──────┬──────────┬─────────┬──────────────┬──────────────┐
//   │ nameLen  │ kind │ saltLen  │ iter.   │ name         │ salt │ hash  │
//   │ u8       │ u8   │ u8       │ u32     │ USER_MAX     │ SALT_MAX│ 64  │
//   └──────────┴──────┴──────────┴─────────┴──────────────┴──────────────┘

import { MAX_USERS } from "../config";
import { hostSha512, hostPbkdf2Sha512 } from "../host";

/** Longest user name a password file may hold, bytes. */
// @ts-ignore: decorator
@inline export const USER_MAX: i32 = 64;
/** Longest salt, bytes (mosquitto_passwd writes 12). */
// @ts-ignore: decorator
@inline const SALT_MAX: i32 = 64;
/** A SHA-512 digest, bytes. */
// @ts-ignore: decorator
@inline export const HASH: i32 = 64;
/** The most PBKDF2 iterations accepted (mosquitto_passwd writes 101). */
// @ts-ignore: decorator
@inline export const ITERATIONS_MAX: i32 = 1000000;
/** Longest password checked, bytes (SHA-512 hashes it with the salt in SCRATCH). */
// @ts-ignore: decorator
@inline export const PASSWORD_MAX: i32 = 1024;

// @ts-ignore: decorator
@inline const NAME_AT: usize = 8;
// @ts-ignore: decorator
@inline const SALT_AT: usize = NAME_AT + <usize>USER_MAX;
// @ts-ignore: decorator
@inline const HASH_AT: usize = SALT_AT + <usize>SALT_MAX;
// @ts-ignore: decorator
@inline const ROW: usize = HASH_AT + <usize>HASH;

// (a board without users, mcu, keeps 8 bytes of each)
// (one row more: a line being checked is decoded there)
const USERS = memory.data(MAX_USERS > 0 ? <i32>ROW * (MAX_USERS + 1) : 8, 8);
/** The password + salt for SHA-512, then the digest. */
const SCRATCH = memory.data(MAX_USERS > 0 ? PASSWORD_MAX + SALT_MAX + HASH : 8, 8);

/** Users loaded (0: no password file). */
export let userCount: i32 = 0;
/** A password file was read (even an empty one: then nobody has a password). */
export let passwordFileRead = false;

export const enum Kind { Sha512 = 6, Pbkdf2Sha512 = 7 }

/** Why a line was refused (`addUser`); the message is the caller's. */
export const enum LineError {
  None = 0, NoColon = 1, NameTooLong = 2, NotHashed = 3, BadIterations = 4, BadSalt = 5, BadHash = 6, TableFull = 7,
}

@inline function row(i: i32): usize { return USERS + <usize>i * ROW; }

export function clearUsers(): void {
  userCount = 0;
  passwordFileRead = true;
}

/** Lines checked by `addUser(…, true)` since `checkUsers`. */
let checked: i32 = 0;

/** Before a file is checked line by line (the users in force stay as they are). */
export function checkUsers(): void { checked = 0; }

/**
 * One line `user:hash` (without its line end; not blank, not a comment). Returns a
 * LineError (None: the user was added, or replaced: the last line of a name wins).
 * `check`: only see whether it would be (every line counts as a new user).
 */
export function addUser(p: usize, len: u32, check: bool = false): LineError {
  let colon: u32 = 0;
  while (colon < len && load<u8>(p + <usize>colon) != 0x3A) colon++;
  if (colon == len) return LineError.NoColon;
  if (colon > <u32>USER_MAX) return LineError.NameTooLong;
  let u = check ? MAX_USERS : findUser(p, colon);
  if (check && ++checked > MAX_USERS) return LineError.TableFull;
  if (u < 0) {
    if (userCount >= MAX_USERS) return LineError.TableFull;
    u = userCount;
  }
  const r = row(u);
  // "$7$" or "$6$"
  let at = colon + 1;
  if (len - at < 3 || load<u8>(p + <usize>at) != 0x24 || load<u8>(p + <usize>at + 2) != 0x24) return LineError.NotHashed;
  const kind = <i32>load<u8>(p + <usize>at + 1) - 0x30;
  if (kind != Kind.Sha512 && kind != Kind.Pbkdf2Sha512) return LineError.NotHashed;
  at += 3;
  let iterations: u32 = 0;
  if (kind == Kind.Pbkdf2Sha512) {
    let digits = 0;
    while (at < len && load<u8>(p + <usize>at) != 0x24) {
      const c = <u32>load<u8>(p + <usize>at) - 0x30;
      if (c > 9 || iterations > <u32>ITERATIONS_MAX) return LineError.BadIterations;
      iterations = iterations * 10 + c;
      digits++;
      at++;
    }
    if (digits == 0 || at == len || iterations < 1 || iterations > <u32>ITERATIONS_MAX) return LineError.BadIterations;
    at++;
  }
  let saltEnd = at;
  while (saltEnd < len && load<u8>(p + <usize>saltEnd) != 0x24) saltEnd++;
  if (saltEnd == len) return LineError.BadSalt;
  const saltLen = decodeBase64(p + <usize>at, saltEnd - at, r + SALT_AT, SALT_MAX);
  if (saltLen <= 0) return LineError.BadSalt;
  const hashLen = decodeBase64(p + <usize>saltEnd + 1, len - saltEnd - 1, r + HASH_AT, HASH);
  if (hashLen != HASH) return LineError.BadHash;
  if (check) return LineError.None;
  memory.copy(r + NAME_AT, p, colon);
  store<u8>(r, <u8>colon);
  store<u8>(r, <u8>kind, 1);
  store<u8>(r, <u8>saltLen, 2);
  store<u32>(r, iterations, 4);
  if (u == userCount) userCount++;
  return LineError.None;
}

/** The row of user `name`, or -1. */
export function findUser(name: usize, len: u32): i32 {
  if (len > <u32>USER_MAX) return -1;
  for (let i = 0; i < userCount; i++) {
    const r = row(i);
    if (<u32>load<u8>(r) == len && memory.compare(r + NAME_AT, name, len) == 0) return i;
  }
  return -1;
}

/** Whether `password` is user `u`'s: its digest compared with the file's in constant time. */
export function passwordMatches(u: i32, password: usize, len: u32): bool {
  if (len > <u32>PASSWORD_MAX) return false;
  const r = row(u);
  const saltLen = <u32>load<u8>(r, 2);
  const digest = SCRATCH + <usize>(PASSWORD_MAX + SALT_MAX);
  if (<i32>load<u8>(r, 1) == Kind.Pbkdf2Sha512) {
    hostPbkdf2Sha512(password, len, r + SALT_AT, saltLen, load<u32>(r, 4), digest, <u32>HASH);
  } else {
    memory.copy(SCRATCH, password, len);
    memory.copy(SCRATCH + <usize>len, r + SALT_AT, saltLen);
    hostSha512(SCRATCH, len + saltLen, digest);
  }
  let diff = 0;
  for (let k = 0; k < HASH; k++) diff |= <i32>(load<u8>(digest + <usize>k) ^ load<u8>(r + HASH_AT + <usize>k));
  return diff == 0;
}

/** `len` bytes as standard base64 with '=' padding (as mosquitto_passwd writes it) at
 *  `out`, which has room for ((len + 2) / 3) * 4 bytes; returns that length. */
export function encodeBase64(p: usize, len: u32, out: usize): u32 {
  let n: u32 = 0;
  for (let k: u32 = 0; k < len; k += 3) {
    const left = len - k;
    const b = (<u32>load<u8>(p + <usize>k) << 16) | (left > 1 ? <u32>load<u8>(p + <usize>k + 1) << 8 : 0)
      | (left > 2 ? <u32>load<u8>(p + <usize>k + 2) : 0);
    store<u8>(out + <usize>n, base64Digit(b >> 18));
    store<u8>(out + <usize>n + 1, base64Digit((b >> 12) & 63));
    store<u8>(out + <usize>n + 2, left > 1 ? base64Digit((b >> 6) & 63) : 0x3D);
    store<u8>(out + <usize>n + 3, left > 2 ? base64Digit(b & 63) : 0x3D);
    n += 4;
  }
  return n;
}

/** The base64 digit of `v` (0..63): A-Z a-z 0-9 + /, the alphabet decodeBase64 reads. */
function base64Digit(v: u32): u8 {
  return <u8>(v < 26 ? 0x41 + v : v < 52 ? 0x61 + v - 26 : v < 62 ? 0x30 + v - 52 : v == 62 ? 0x2B : 0x2F);
}

/** Standard base64 (with or without '=' padding) into at most `cap` bytes: the length, or -1. */
function decodeBase64(p: usize, len: u32, out: usize, cap: i32): i32 {
  let bits: u32 = 0, count = 0, n = 0;
  let k: u32 = 0;
  for (; k < len; k++) {
    const c = <i32>load<u8>(p + <usize>k);
    if (c == 0x3D) break; // '='
    let v = -1;
    if (c >= 0x41 && c <= 0x5A) v = c - 0x41;
    else if (c >= 0x61 && c <= 0x7A) v = c - 0x61 + 26;
    else if (c >= 0x30 && c <= 0x39) v = c - 0x30 + 52;
    else if (c == 0x2B) v = 62;
    else if (c == 0x2F) v = 63;
    if (v < 0) return -1;
    bits = (bits << 6) | <u32>v;
    count += 6;
    if (count >= 8) {
      count -= 8;
      if (n >= cap) return -1;
      store<u8>(out + <usize>n, <u8>(bits >> <u32>count));
      n++;
    }
  }
  for (; k < len; k++) if (load<u8>(p + <usize>k) != 0x3D) return -1; // only padding after '='
  return n;
}
