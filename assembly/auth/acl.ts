// Access control from an ACL file in Mosquitto's grammar (the config's `acl_file`), and
// the checks: may this session publish to a topic, read a topic, and which topics a
// subscription filter can reach. The host reads the file and hands its bytes in
// (`config`, part 4); a file is read twice, checked whole and then loaded, so that a
// broken file (at start or on reload) changes nothing.
//
//   user NAME                          the rules after it are NAME's
//   topic [read|write|readwrite|deny] TOPIC      (no word: readwrite)
//   pattern [read|write|readwrite|deny] TOPIC    for every client; %c: its client id,
//                                                %u: its user name
//
// `topic` lines before the first `user` line are those of clients without a user name.
// TOPIC is a topic filter (the rest of the line: it may hold spaces, as in Mosquitto).
// The decision for a topic (Mosquitto 2's acl_check_default): a deny rule of the
// client's section that matches denies; else a rule of it that matches with the access
// grants; else the patterns, the same way; else denied. A client id or user name with
// `+` or `#` gets nothing from the patterns (as in Mosquitto), and one with `/` nothing
// while a pattern puts it in a topic (it would reach into another client's levels).
//
//   rule row (RULE bytes)            section row (SECTION bytes)
//   ┌────────┬─────┬────────┬──────┐ ┌────────┬─────┬──────┬──────┐
//   │ textAt │ len │ access │ next │ │ nameAt │ len │ head │ tail │
//   │ u32    │ u16 │ u8 |%cu│ i32  │ │ u32    │ u32 │ i32  │ i32  │
//   └────────┴─────┴────────┴──────┘ └────────┴─────┴──────┴──────┘

import { MAX_ACL_RULES, MAX_ACL_USERS, ACL_TEXT_BYTES, USERNAME_MAX, MAX_SESSIONS, FILTER_MAX, CLIENT_ID_MAX } from "../config";
import { session, sessionId, sessionsHighWater, isBridgeSession } from "../session/sessions";
import { subscription, subscriptionFilter } from "../session/subscriptions";
import { validTopicFilter, topicMatches } from "../topics/validate";
import { findUser } from "./passwords";
import { closeConnection } from "../session/lifecycle";
import { CloseReason } from "../host";

/** What a rule allows (Mosquitto's MOSQ_ACL_READ, _WRITE; 0 is `deny`). */
export const enum Access { Deny = 0, Read = 1, Write = 2, ReadWrite = 3 }

/** What a subscription filter can reach for its session (Subscription.reach). */
export const enum Reach { Nothing = 0, Some = 1, All = 2 }

/** Why a line was refused (`aclLine`); the message is configfile.ts's. */
export const enum AclError {
  None = 0, UnknownLine = 1, NoUser = 2, NoTopic = 3, BadTopic = 4, TooLong = 5,
  RulesFull = 6, UsersFull = 7, TextFull = 8,
}

// @ts-ignore: decorator
@inline const RULE: usize = 12;
// @ts-ignore: decorator
@inline const SECTION: usize = 16;
/** Longest topic of one rule, bytes. */
// @ts-ignore: decorator
@inline export const ACL_TOPIC_MAX: i32 = 65535;
// @ts-ignore: decorator
@inline const SUB_C: u8 = 0x10;   // the rule's topic holds %c
// @ts-ignore: decorator
@inline const SUB_U: u8 = 0x20;   // ... %u

const ENABLED = MAX_ACL_RULES > 0;
const RULES = memory.data(ENABLED ? MAX_ACL_RULES * <i32>RULE : 8, 8);
const SECTIONS = memory.data(ENABLED ? (MAX_ACL_USERS + 1) * <i32>SECTION : 8, 8);
const TEXT = memory.data(ENABLED ? ACL_TEXT_BYTES : 8, 8);
/** Each session's user name (for `user` sections on reload and for %u). */
const NAMES = memory.data(ENABLED ? MAX_SESSIONS * USERNAME_MAX : 8, 8);
/** A pattern with %c and %u put in; longer ones are refused when read. */
// @ts-ignore: decorator
@inline const EXPANDED_MAX: i32 = FILTER_MAX + 4 * (CLIENT_ID_MAX + USERNAME_MAX);
const EXPANDED = memory.data(ENABLED ? EXPANDED_MAX : 8, 8);

/** An ACL file is in force: every publish, subscription and delivery is checked. */
export let aclLoaded = false;
let ruleCount: i32 = 0;
let sectionCount: i32 = 0;      // `user` sections, rows 1.. (row 0: clients without a user name)
let textUsed: i32 = 0;
let patternHead: i32 = -1;
let patternTail: i32 = -1;
let patternSubs: u8 = 0;        // SUB_C | SUB_U: what the patterns put in
let current: i32 = 0;           // the section the next `topic` line goes to
// The first of the two reads only counts (the rules in force stay as they are); it counts
// every `user` line as a new section, so it may refuse a file that repeats names a lot.
let checking = false;
let checkRules: i32 = 0;
let checkSections: i32 = 0;
let checkText: i32 = 0;

// ---- rows ----

// @ts-ignore: decorator
@inline function rule(i: i32): usize { return RULES + <usize>i * RULE; }
// @ts-ignore: decorator
@inline function ruleText(i: i32): usize { return TEXT + <usize>load<u32>(rule(i)); }
// @ts-ignore: decorator
@inline function ruleLen(i: i32): i32 { return <i32>load<u16>(rule(i), 4); }
// @ts-ignore: decorator
@inline function ruleAccess(i: i32): i32 { return <i32>(load<u8>(rule(i), 6) & 3); }
// @ts-ignore: decorator
@inline function ruleSubs(i: i32): u8 { return load<u8>(rule(i), 6) & (SUB_C | SUB_U); }
// @ts-ignore: decorator
@inline function ruleNext(i: i32): i32 { return load<i32>(rule(i), 8); }
// @ts-ignore: decorator
@inline function section(i: i32): usize { return SECTIONS + <usize>i * SECTION; }
// @ts-ignore: decorator
@inline function sectionHead(i: i32): i32 { return load<i32>(section(i), 8); }

/** Session fields (Session.aclSection, .aclFlags): which section, and what blocks it. */
export const enum AclFlag {
  NoName = 1,        // connected without a user name
  NameTooLong = 2,   // its user name is longer than USERNAME_MAX: denied everything
  WildId = 4,        // the client id holds + or #
  WildName = 8,      // the user name holds + or #
  SlashId = 16,      // the client id holds /
  SlashName = 32,    // the user name holds /
}

// ---- reading the file ----

/** Forget the rules (before a file is read for the second time, or none is in force). */
function clearRules(): void {
  ruleCount = 0; sectionCount = 0; textUsed = 0;
  patternHead = -1; patternTail = -1; patternSubs = 0;
  store<i32>(section(0), 0); store<u32>(section(0), 0, 4);
  store<i32>(section(0), -1, 8); store<i32>(section(0), -1, 12);
  current = 0;
}

/** Start a read of the file: `check` true for the first one (nothing stored). */
export function aclBegin(check: bool): void {
  checking = check;
  checkRules = 0; checkSections = 0; checkText = 0;
  if (!check) clearRules();
}

/** After the second read: the rules are in force, for connected clients too. */
export function aclEnd(): void {
  aclLoaded = true;
  memory.fill(SECTION_SEEN, 0, <usize>(MAX_ACL_USERS + 1) * 8);
  rebindAll();
}

/** Whether the line (trimmed, not blank, not a comment) is one of the file's. */
export function aclLine(p: usize, len: u32): AclError {
  if (!ENABLED) return AclError.RulesFull;
  const n = <i32>len;
  if (startsWord(p, n, "user")) {
    let s = 4;
    while (s < n && isBlank(load<u8>(p + <usize>s))) s++;
    if (s == n) return AclError.NoUser;
    return addSection(p + <usize>s, n - s);
  }
  let isPattern = false;
  let at = 0;
  if (startsWord(p, n, "topic")) at = 5;
  else if (startsWord(p, n, "pattern")) { at = 7; isPattern = true; }
  else return AclError.UnknownLine;
  while (at < n && isBlank(load<u8>(p + <usize>at))) at++;
  let access = Access.ReadWrite;
  const rest = p + <usize>at, restLen = n - at;
  let w = 0;
  if (startsWord(rest, restLen, "read")) { access = Access.Read; w = 4; }
  else if (startsWord(rest, restLen, "write")) { access = Access.Write; w = 5; }
  else if (startsWord(rest, restLen, "readwrite")) { access = Access.ReadWrite; w = 9; }
  else if (startsWord(rest, restLen, "deny")) { access = Access.Deny; w = 4; }
  else if (wordIsAccess(rest, restLen)) w = restLen; // "topic read" with no topic
  at += w;
  while (at < n && isBlank(load<u8>(p + <usize>at))) at++;
  if (at == n) return AclError.NoTopic;
  const t = p + <usize>at, tLen = n - at;
  if (tLen > ACL_TOPIC_MAX) return AclError.TooLong;
  if (!validTopicFilter(t, tLen)) return AclError.BadTopic;
  return addRule(t, tLen, access, isPattern);
}

function addSection(name: usize, len: i32): AclError {
  if (checking) {
    if (++checkSections > MAX_ACL_USERS) return AclError.UsersFull;
    checkText += len;
    return checkText > ACL_TEXT_BYTES ? AclError.TextFull : AclError.None;
  }
  // a name given again continues its section (Mosquitto appends to the same user)
  for (let i = 1; i <= sectionCount; i++) {
    const r = section(i);
    if (<i32>load<u32>(r, 4) == len && memory.compare(TEXT + <usize>load<u32>(r), name, <usize>len) == 0) {
      current = i;
      return AclError.None;
    }
  }
  if (sectionCount >= MAX_ACL_USERS) return AclError.UsersFull;
  if (textUsed + len > ACL_TEXT_BYTES) return AclError.TextFull;
  sectionCount++;
  current = sectionCount;
  const r = section(current);
  memory.copy(TEXT + <usize>textUsed, name, <usize>len);
  store<u32>(r, <u32>textUsed); store<u32>(r, <u32>len, 4);
  store<i32>(r, -1, 8); store<i32>(r, -1, 12);
  textUsed += len;
  return AclError.None;
}

function addRule(t: usize, len: i32, access: Access, isPattern: bool): AclError {
  let subs: u8 = 0;
  if (isPattern) {
    let c = 0, u = 0;
    for (let k = 0; k + 1 < len; k++) {
      if (load<u8>(t + <usize>k) != 0x25) continue;
      const x = load<u8>(t + <usize>(k + 1));
      if (x == 0x63) c++; else if (x == 0x75) u++;
    }
    if (c > 0) subs |= SUB_C;
    if (u > 0) subs |= SUB_U;
    if (len + c * (CLIENT_ID_MAX - 2) + u * (USERNAME_MAX - 2) > EXPANDED_MAX) return AclError.TooLong;
  }
  if (checking) {
    if (++checkRules > MAX_ACL_RULES) return AclError.RulesFull;
    checkText += len;
    return checkText > ACL_TEXT_BYTES ? AclError.TextFull : AclError.None;
  }
  const i = ruleCount++;
  memory.copy(TEXT + <usize>textUsed, t, <usize>len);
  const r = rule(i);
  store<u32>(r, <u32>textUsed);
  store<u16>(r, <u16>len, 4);
  store<u8>(r, <u8>access | subs, 6);
  store<i32>(r, -1, 8);
  textUsed += len;
  if (isPattern) {
    if (patternTail >= 0) store<i32>(rule(patternTail), i, 8); else patternHead = i;
    patternTail = i;
    patternSubs |= subs;
  } else {
    const sr = section(current);
    const tail = load<i32>(sr, 12);
    if (tail >= 0) store<i32>(rule(tail), i, 8); else store<i32>(sr, i, 8);
    store<i32>(sr, i, 12);
  }
  return AclError.None;
}

// @ts-ignore: decorator
@inline function isBlank(c: u8): bool { return c == 0x20 || c == 0x09; }

/** Whether `p` starts with the word `w` followed by a blank or its end. */
function startsWord(p: usize, n: i32, w: string): bool {
  const k = w.length;
  if (n < k) return false;
  for (let i = 0; i < k; i++) if (<i32>load<u8>(p + <usize>i) != w.charCodeAt(i)) return false;
  return n == k || isBlank(load<u8>(p + <usize>k));
}

function wordIsAccess(p: usize, n: i32): bool {
  return startsWord(p, n, "read") || startsWord(p, n, "write") || startsWord(p, n, "readwrite") || startsWord(p, n, "deny");
}

// ---- who a session is ----

/** The session's user name (Session.userLen bytes), 0 when it has none (or no ACLs are built). */
export function aclUserName(s: i32): usize {
  if (!ENABLED || (session(s).aclFlags & (AclFlag.NoName | AclFlag.NameTooLong)) != 0) return 0;
  return NAMES + <usize>s * <usize>USERNAME_MAX;
}

/** At CONNECT (after the session is bound): remember its user name, find its section. */
export function aclBind(s: i32, name: usize, nameLen: i32, hasName: bool): void {
  if (!ENABLED) return;
  const ss = session(s);
  ss.aclFlags = hasName ? 0 : AclFlag.NoName;
  if (hasName) {
    if (nameLen > USERNAME_MAX) ss.aclFlags |= AclFlag.NameTooLong;
    else memory.copy(NAMES + <usize>s * <usize>USERNAME_MAX, name, <usize>nameLen);
  }
  ss.userLen = hasName && nameLen <= USERNAME_MAX ? nameLen : 0;
  bind(s);
}

/** The session's section and flags, from its user name and client id. */
function bind(s: i32): void {
  const ss = session(s);
  let f = ss.aclFlags & (AclFlag.NoName | AclFlag.NameTooLong);
  const id = sessionId(s);
  f |= scan(id, ss.idLen, AclFlag.WildId, AclFlag.SlashId);
  const name = NAMES + <usize>s * <usize>USERNAME_MAX;
  if ((f & AclFlag.NoName) == 0) f |= scan(name, ss.userLen, AclFlag.WildName, AclFlag.SlashName);
  ss.aclFlags = f;
  ss.aclSection = -1; // a user name the file has no section for: the patterns only
  if ((f & AclFlag.NoName) != 0) { ss.aclSection = 0; return; }
  if ((f & AclFlag.NameTooLong) != 0) return;
  for (let i = 1; i <= sectionCount; i++) {
    const r = section(i);
    if (<i32>load<u32>(r, 4) == ss.userLen && memory.compare(TEXT + <usize>load<u32>(r), name, <usize>ss.userLen) == 0) {
      ss.aclSection = i;
      return;
    }
  }
}

function scan(p: usize, n: i32, wild: i32, slash: i32): i32 {
  let f = 0;
  for (let k = 0; k < n; k++) {
    const c = load<u8>(p + <usize>k);
    if (c == 0x2B || c == 0x23) f |= wild;
    else if (c == 0x2F) f |= slash;
  }
  return f;
}

/** After a password file is (re)loaded: a connected client whose user name is not in it
 *  any more is disconnected (Mosquitto 2 on reload). A changed password is not seen: the
 *  core keeps no passwords. */
export function disconnectUnknownUsers(): void {
  if (!ENABLED) return;
  for (let s = 0, n = sessionsHighWater(); s < n; s++) {
    const ss = session(s);
    if (ss.used == 0 || ss.conn < 0 || (ss.aclFlags & AclFlag.NoName) != 0) continue;
    if ((ss.aclFlags & AclFlag.NameTooLong) != 0 || findUser(NAMES + <usize>s * <usize>USERNAME_MAX, <u32>ss.userLen) < 0) {
      closeConnection(ss.conn, CloseReason.NotAuthorized);
    }
  }
}

/** After a (re)load: every session's section, every subscription's reach. */
function rebindAll(): void {
  for (let s = 0, n = sessionsHighWater(); s < n; s++) {
    if (session(s).used == 0) continue;
    bind(s);
    for (let i = session(s).subs; i >= 0; i = subscription(i).sessionNext) {
      const row = subscription(i);
      row.reach = aclReach(s, subscriptionFilter(i) + <usize>row.filterOffset, row.filterLen - row.filterOffset);
    }
  }
}

/** Whether the patterns give this session nothing at all: a wildcard in its client id or
 *  user name (Mosquitto's rule), or a / in one that a pattern puts in a topic. */
// @ts-ignore: decorator
@inline function patternsBlocked(f: i32): bool {
  return (f & (AclFlag.WildId | AclFlag.WildName | AclFlag.NameTooLong)) != 0
    || ((patternSubs & SUB_C) != 0 && (f & AclFlag.SlashId) != 0)
    || ((patternSubs & SUB_U) != 0 && (f & AclFlag.SlashName) != 0);
}

/** Pattern `i` with the session's client id and user name put in, at EXPANDED; its
 *  length, or -1 when it does not apply (%u and no user name). */
function expand(i: i32, s: i32): i32 {
  const t = ruleText(i), n = ruleLen(i);
  const subs = ruleSubs(i);
  if (subs == 0) { memory.copy(EXPANDED, t, <usize>n); return n; }
  const ss = session(s);
  if ((subs & SUB_U) != 0 && (ss.aclFlags & AclFlag.NoName) != 0) return -1;
  let o = 0;
  for (let k = 0; k < n; k++) {
    const c = load<u8>(t + <usize>k);
    if (c == 0x25 && k + 1 < n) {
      const x = load<u8>(t + <usize>(k + 1));
      if (x == 0x63) { memory.copy(EXPANDED + <usize>o, sessionId(s), <usize>ss.idLen); o += ss.idLen; k++; continue; }
      if (x == 0x75) { memory.copy(EXPANDED + <usize>o, NAMES + <usize>s * <usize>USERNAME_MAX, <usize>ss.userLen); o += ss.userLen; k++; continue; }
    }
    store<u8>(EXPANDED + <usize>o, c);
    o++;
  }
  return o;
}

// ---- the checks ----

/** May session `s` publish to (Access.Write) or receive from (Access.Read) `topic`? */
export function aclAllows(s: i32, topic: usize, len: i32, access: i32): bool {
  if (!ENABLED || !aclLoaded || isBridgeSession(s)) return true;
  const ss = session(s);
  if ((ss.aclFlags & AclFlag.NameTooLong) != 0) return false;
  const r = ss.aclSection >= 0 ? sectionDecides(ss.aclSection, topic, len, access) : Decision.Open;
  return r == Decision.Open ? patternsAllow(s, topic, len, access) : r == Decision.Granted;
}

/** The same for reading, in a fan-out: the part that depends on the section alone is
 *  worked out once per section per message (`epoch`, the fan-out's), so a hundred
 *  subscribers of one section cost one check. */
export function aclAllowsRead(s: i32, topic: usize, len: i32, epoch: u32): bool {
  if (!ENABLED || !aclLoaded) return true;
  const ss = session(s);
  if ((ss.aclFlags & AclFlag.NameTooLong) != 0) return false;
  let r = Decision.Open;
  const sec = ss.aclSection;
  if (sec >= 0) {
    const at = SECTION_SEEN + (<usize>sec << 3);
    if (load<u32>(at) == epoch) r = load<i32>(at, 4);
    else {
      r = sectionDecides(sec, topic, len, Access.Read);
      store<u32>(at, epoch);
      store<i32>(at, r, 4);
    }
  }
  return r == Decision.Open ? patternsAllow(s, topic, len, Access.Read) : r == Decision.Granted;
}

const enum Decision { Denied = 0, Granted = 1, Open = 2 }
/** Per section: the fan-out epoch of its last read decision, and that decision. */
const SECTION_SEEN = memory.data(ENABLED ? (MAX_ACL_USERS + 1) * 8 : 8, 8);

/** A section's rules: a deny that matches denies, a rule that matches with the access
 *  grants, else the patterns decide (Open). */
function sectionDecides(sec: i32, topic: usize, len: i32, access: i32): Decision {
  let granted = false;
  for (let i = sectionHead(sec); i >= 0; i = ruleNext(i)) {
    if (!topicMatches(topic, len, ruleText(i), ruleLen(i))) continue;
    const a = ruleAccess(i);
    if (a == Access.Deny) return Decision.Denied;
    if ((a & access) != 0) granted = true;
  }
  return granted ? Decision.Granted : Decision.Open;
}

function patternsAllow(s: i32, topic: usize, len: i32, access: i32): bool {
  if (patternHead < 0 || patternsBlocked(session(s).aclFlags)) return false;
  let granted = false;
  for (let i = patternHead; i >= 0; i = ruleNext(i)) {
    const n = expand(i, s);
    if (n < 0 || !topicMatches(topic, len, EXPANDED, n)) continue;
    const a = ruleAccess(i);
    if (a == Access.Deny) return false;
    if ((a & access) != 0) granted = true;
  }
  return granted;
}

/**
 * Which topics a subscription filter reaches for session `s`: All (every topic it
 * matches may be read: no check per delivery), Nothing (none may: the SUBSCRIBE is
 * refused), or Some (each delivery is checked). Judged rule by rule, so it may say Some
 * where the rules together say All or Nothing: Some is always safe.
 */
export function aclReach(s: i32, filter: usize, len: i32): Reach {
  if (!ENABLED || !aclLoaded || isBridgeSession(s)) return Reach.All; // a bridge is the broker's own, as in Mosquitto
  const ss = session(s);
  const f = ss.aclFlags;
  if ((f & AclFlag.NameTooLong) != 0) return Reach.Nothing;
  let denyMeets = false, grantCovers = false, grantMeets = false;
  if (ss.aclSection >= 0) {
    for (let i = sectionHead(ss.aclSection); i >= 0; i = ruleNext(i)) {
      const a = ruleAccess(i);
      if (a != Access.Deny && (a & Access.Read) == 0) continue;
      const t = ruleText(i), n = ruleLen(i);
      if (!filtersMeet(t, n, filter, len)) continue;
      if (a == Access.Deny) {
        if (filterCovers(t, n, filter, len)) return Reach.Nothing;
        denyMeets = true;
      } else {
        grantMeets = true;
        if (filterCovers(t, n, filter, len)) grantCovers = true;
      }
    }
  }
  if (grantCovers && !denyMeets) return Reach.All;
  let pDenyMeets = false, pDenyCovers = false, pGrantCovers = false, pGrantMeets = false;
  if (patternHead >= 0 && !patternsBlocked(f)) {
    for (let i = patternHead; i >= 0; i = ruleNext(i)) {
      const a = ruleAccess(i);
      if (a != Access.Deny && (a & Access.Read) == 0) continue;
      const n = expand(i, s);
      if (n < 0 || !filtersMeet(EXPANDED, n, filter, len)) continue;
      const covers = filterCovers(EXPANDED, n, filter, len);
      if (a == Access.Deny) { pDenyMeets = true; pDenyCovers = pDenyCovers || covers; }
      else { pGrantMeets = true; pGrantCovers = pGrantCovers || covers; }
    }
  }
  if (!denyMeets && !pDenyMeets && pGrantCovers) return Reach.All;
  if (!grantMeets && (pDenyCovers || !pGrantMeets)) return Reach.Nothing;
  return Reach.Some;
}

// ---- two filters ----

function levelEnd(p: usize, n: i32, i: i32): i32 {
  while (i < n && load<u8>(p + <usize>i) != 0x2F) i++;
  return i;
}

/** 0: a literal level; '+' or '#': that wildcard. */
function wildcard(p: usize, i: i32, end: i32): i32 {
  if (end - i != 1) return 0;
  const c = <i32>load<u8>(p + <usize>i);
  return c == 0x2B || c == 0x23 ? c : 0;
}

/** A filter whose first level is a wildcard matches no topic starting with '$'
 *  [MQTT-4.7.2-1]: true when `a` has one and `b` is for '$' topics only. */
function dollarApart(a: usize, aLen: i32, b: usize, bLen: i32): bool {
  return wildcard(a, 0, levelEnd(a, aLen, 0)) != 0 && bLen > 0 && load<u8>(b) == 0x24;
}

/** Whether some topic matches both filters. */
export function filtersMeet(a: usize, aLen: i32, b: usize, bLen: i32): bool {
  if (dollarApart(a, aLen, b, bLen) || dollarApart(b, bLen, a, aLen)) return false;
  let i = 0, j = 0;
  while (true) {
    const aDone = i > aLen, bDone = j > bLen;
    if (aDone && bDone) return true;
    // one has no more levels: the other's next must be a '#' (it matches the parent)
    if (aDone) return wildcard(b, j, levelEnd(b, bLen, j)) == 0x23;
    if (bDone) return wildcard(a, i, levelEnd(a, aLen, i)) == 0x23;
    const ae = levelEnd(a, aLen, i), be = levelEnd(b, bLen, j);
    const aw = wildcard(a, i, ae), bw = wildcard(b, j, be);
    if (aw == 0x23 || bw == 0x23) return true;
    if (aw == 0 && bw == 0 && (ae - i != be - j || memory.compare(a + <usize>i, b + <usize>j, <usize>(ae - i)) != 0)) return false;
    i = ae + 1; j = be + 1;
  }
}

/** Whether every topic that filter `b` matches also matches filter `a`. */
export function filterCovers(a: usize, aLen: i32, b: usize, bLen: i32): bool {
  if (dollarApart(a, aLen, b, bLen)) return false;
  let i = 0, j = 0;
  while (true) {
    const aDone = i > aLen, bDone = j > bLen;
    if (aDone) return bDone;
    const ae = levelEnd(a, aLen, i);
    const aw = wildcard(a, i, ae);
    if (aw == 0x23) return true;
    if (bDone) return false;
    const be = levelEnd(b, bLen, j);
    const bw = wildcard(b, j, be);
    if (bw == 0x23) return false;
    if (aw == 0 && (bw != 0 || ae - i != be - j || memory.compare(a + <usize>i, b + <usize>j, <usize>(ae - i)) != 0)) return false;
    i = ae + 1; j = be + 1;
  }
}

/** Bytes of the ACL tables (for the memory budget). */
export function aclTableBytes(): i32 {
  return ENABLED ? MAX_ACL_RULES * <i32>RULE + (MAX_ACL_USERS + 1) * <i32>SECTION + ACL_TEXT_BYTES
    + MAX_SESSIONS * USERNAME_MAX + EXPANDED_MAX : 0;
}

export function aclExpandedMax(): i32 { return EXPANDED_MAX; }

/** Rules and sections loaded (for the log line after a load). */
export function aclRuleCount(): i32 { return ruleCount; }
export function aclSectionCount(): i32 { return sectionCount; }
