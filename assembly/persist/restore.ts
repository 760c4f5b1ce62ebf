// Reading the persistence file back at start (docs/ABI.md: restore, restoreEnd). Records
// are applied in order, those of a unit (record.ts, UNIT) only once its Commit is read;
// the first one that is torn (the file ends inside it) or corrupt (a bad length or CRC)
// ends the valid prefix, at the start of its unit: it and everything after it are cut
// off, counted and reported, never a reason not to start. A record that names an object the
// file never created, or that does not fit this board's tables, is skipped and counted.

import { LogLevel } from "../host";
import { CLIENT_ID_MAX, FILTER_MAX, TOPIC_MAX } from "../config";
import { now, setNow } from "../clock";
import { INPUT_CAPACITY } from "../broker";
import { CRC_START, crcUpdate, crcEnd } from "./crc";
import { Rec, FILE_VERSION, HEADER_SIZE, RECORD_HEADER, UNIT } from "./record";
import { PidKind, pidPut, pidRow, pidSlot, pidSlots, pidClear, setRestoring } from "./pids";
import { setWall, fromWall } from "./journal";
import { snapshot } from "./snapshot";
import { storeMessage, message, holdMessage, releaseMessage, freeMessage, copyOut, unreferenced, clearUnreferenced } from "../store/messages";
import { setRetained, clearRetained, retainedInUse } from "../store/retained";
import { session, findSession, createSession, sessionsHighWater, sessionsInUse } from "../session/sessions";
import { subscribe, unsubscribe, subscription, SUBSCRIBE_FAILED, subscriptionsInUse } from "../session/subscriptions";
import { enqueue, delivery, removeDelivery, DeliveryState, deliveriesInUse } from "../session/queue";
import { addReceived, hasReceived, removeReceived } from "../session/received";
import { endSession, discardWill } from "../session/lifecycle";
import { aclBind, aclReach } from "../auth/acl";
import { ROUTE_TOPIC } from "../memory/scratch";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logInt, logEnd } from "../log";
import { logPersistencePath } from "../configfile";
import { persistenceSync, PersistSync, autosaveInterval, autosaveOnChanges } from "../settings";

const enum Read { Header = 0, Records = 1, Damaged = 2, Lost = 3, Foreign = 4 }

let state = Read.Header;
let offset: f64 = 0;        // file offset of the next byte offered
let damagedAt: f64 = -1;    // where the valid prefix ends
let recordsRead = 0;
let recordsSkipped = 0;
let recordsAfter = 0;       // whole records after the damage (lost with it)
let lastLeft: u32 = 0;      // bytes the last `restore` did not take (a torn record at the end)
let leftRecords = 0;        //   whole records among them (of a unit without its Commit),
let leftWhole: u32 = 0;     //   and their bytes
let unitTooLong = false;    // a unit longer than the window: applied as it comes, to its Commit
let foreignVersion: u32 = 0;
let started: f64 = 0;

/** `len` bytes of the file at `p`: the bytes taken (whole records). */
export function restoreBytes(p: usize, len: u32, t: f64, wall: f64): u32 {
  setNow(t);
  setWall(wall, t);
  if (recordsRead == 0 && offset == 0) { started = t; setRestoring(true); }
  let q: u32 = 0;
  if (state == Read.Header) {
    if (len < <u32>HEADER_SIZE) { lastLeft = len; return 0; }
    if (load<u64>(p) != 0x0A4244454744494D) { state = Read.Foreign; }
    else if (load<u32>(p, 12) != crcEnd(crcUpdate(CRC_START, p, 12))) { state = Read.Damaged; damagedAt = 0; }
    else if (load<u32>(p, 8) != FILE_VERSION) { state = Read.Foreign; foreignVersion = load<u32>(p, 8); }
    else { state = Read.Records; q = <u32>HEADER_SIZE; }
  }
  if (state == Read.Foreign || state == Read.Lost) { offset += <f64>len; lastLeft = 0; return len; }
  leftRecords = 0;
  let checked: u32 = 0; // records before this offset passed their CRC in a unit's scan
  while (len - q >= <u32>RECORD_HEADER) {
    const r = p + <usize>q;
    const bodyLen = load<u32>(r);
    if (bodyLen == 0 || bodyLen > <u32>(INPUT_CAPACITY - RECORD_HEADER)) { damage(q); state = Read.Lost; break; }
    if (len - q < <u32>RECORD_HEADER + bodyLen) break; // the rest comes with the next bytes
    const body = r + <usize>RECORD_HEADER;
    const type = <i32>load<u8>(body);
    if (state == Read.Records && q >= checked && (type & UNIT) != 0 && !unitTooLong) {
      const e = unitEnd(p, q, len);
      if (e != 0) leftRecords = 0;
      if (e > 0) checked = <u32>e;
      else if (e < 0) {       // a record in it is corrupt: all of it goes
        damage(q); recordsAfter--;
        checked = q + <u32>RECORD_HEADER + bodyLen;
      }
      else if (q > 0 || len < <u32>INPUT_CAPACITY) break; // its Commit comes with the next bytes (or never)
      else unitTooLong = true;
    }
    if (q >= checked && load<u32>(r, 4) != crcEnd(crcUpdate(CRC_START, body, <i32>bodyLen))) { damage(q); recordsAfter--; }
    if (state == Read.Records) {
      if (type == Rec.Commit) unitTooLong = false;
      if (!apply(type & ~UNIT, body + 1, body + <usize>bodyLen)) recordsSkipped++;
      recordsRead++;
    } else recordsAfter++;
    q += <u32>RECORD_HEADER + bodyLen;
  }
  if (state == Read.Lost) { offset += <f64>len; lastLeft = 0; return len; }
  offset += <f64>q;
  lastLeft = len - q;
  return q;
}

/** The unit whose first record is at `q`: the offset after its Commit when all of it is
 *  in the `len` bytes at `p` and every record passes its CRC; 0 when its end is not
 *  there; -1 when a record of it is corrupt (or it ends without its Commit). */
function unitEnd(p: usize, q: u32, len: u32): i64 {
  const start = q;
  leftRecords = 0;
  while (len - q >= <u32>RECORD_HEADER) {
    const r = p + <usize>q;
    const bodyLen = load<u32>(r);
    if (bodyLen == 0 || bodyLen > <u32>(INPUT_CAPACITY - RECORD_HEADER)) return -1;
    if (len - q < <u32>RECORD_HEADER + bodyLen) break;
    const body = r + <usize>RECORD_HEADER;
    if (load<u32>(r, 4) != crcEnd(crcUpdate(CRC_START, body, <i32>bodyLen))) return -1;
    leftRecords++;
    q += <u32>RECORD_HEADER + bodyLen;
    const type = <i32>load<u8>(body);
    if (type == Rec.Commit) return <i64>q;
    if ((type & UNIT) == 0) return -1;
  }
  leftWhole = q - start;
  return 0;
}

function damage(q: u32): void {
  if (state != Read.Records) return;
  state = Read.Damaged;
  damagedAt = offset + <f64>q;
}

/** A time from the file on the core's clock: one that passed before the process started
 *  comes out as 0 or less, which means "never" to the tables; 1 keeps it in the past. */
// @ts-ignore: decorator
@inline function past(t: f64): f64 { return t >= 1 ? t : 1; }

// ---- the records ----

// fields, read from `at` on
let at: usize = 0;
// @ts-ignore: decorator
@inline function rd8(): i32 { return <i32>load<u8>(at++); }
// @ts-ignore: decorator
@inline function rd16(): i32 { const v = <i32>load<u16>(at); at += 2; return v; }
// @ts-ignore: decorator
@inline function rd32(): u32 { const v = load<u32>(at); at += 4; return v; }
// @ts-ignore: decorator
@inline function rdF64(): f64 { const v = load<f64>(at); at += 8; return v; }

/** The fixed fields of each record type (record.ts), in bytes after the type. */
const FIXED = memory.data<u8>([0, 24, 4, 2, 21, 4, 14, 8, 18, 10, 8, 8, 6, 6, 20, 4, 0]);
// @ts-ignore: decorator
@inline const TYPES: i32 = 17;

/** Whether `n` more bytes from `at` are in the record (lengths from the file are checked
 *  before anything is copied by them: a record can pass its CRC and still be wrong). */
// @ts-ignore: decorator
@inline function left(end: usize, n: i64): bool { return n >= 0 && <i64>(end - at) >= n; }

/** Apply one record; false when it cannot be (skipped). */
function apply(type: i32, p: usize, end: usize): bool {
  at = p;
  if (type <= 0 || type >= TYPES || !left(end, <i64>load<u8>(FIXED + <usize>type))) return false;
  switch (type) {
    case Rec.Message: {
      const pid = rd32(); const qos = rd8(); const retain = rd8(); const expires = rdF64();
      const topicLen = rd16(); const propsLen = <i32>rd32(); const payloadLen = <i32>rd32();
      if (qos > 2 || topicLen == 0 || topicLen > TOPIC_MAX || propsLen < 0 || payloadLen < 0 ||
          <i64>(end - at) != <i64>topicLen + <i64>propsLen + <i64>payloadLen) return false;
      let m = storeMessage(at, topicLen, at + <usize>topicLen, propsLen, at + <usize>topicLen + <usize>propsLen,
                           payloadLen, qos, retain, expires > 0 ? past(fromWall(expires)) : expires);
      if (m < 0 && unreferenced > 0) {
        freeUnreferenced(); // room first for what the file still names
        m = storeMessage(at, topicLen, at + <usize>topicLen, propsLen, at + <usize>topicLen + <usize>propsLen,
                         payloadLen, qos, retain, expires > 0 ? past(fromWall(expires)) : expires);
      }
      if (m < 0) return false;
      // (the pid is the row's only once it is in the table: freeing the row forgets it)
      if (!pidPut(pid, PidKind.Message, m)) { freeMessage(m); return false; }
      message(m).pid = pid;
      return true;
    }
    case Rec.Retain: {
      const m = pidRow(rd32(), PidKind.Message);
      if (m < 0) return false;
      copyOut(m, 0, ROUTE_TOPIC, message(m).topicLen);
      return setRetained(ROUTE_TOPIC, message(m).topicLen, m);
    }
    case Rec.Unretain: {
      const n = rd16();
      if (n == 0 || n > TOPIC_MAX || !left(end, n)) return false;
      clearRetained(at, n);
      return true;
    }
    case Rec.Session: {
      const pid = rd32(); const expiry = rd32(); const expiresAt = rdF64();
      const hasName = rd8(); const idLen = rd16(); const userLen = rd16();
      if (idLen > CLIENT_ID_MAX || !left(end, <i64>idLen + <i64>userLen)) return false;
      let s = pidRow(pid, PidKind.Session);
      if (s < 0) {
        s = findSession(at, idLen);
        if (s >= 0) return false;  // one id, two live sessions: not from our writer
        s = createSession(at, idLen);
        if (s < 0) return false;
        statAdd(Stat.SessionsStored);
        if (pidPut(pid, PidKind.Session, s)) session(s).pid = pid;
      }
      const ss = session(s);
      ss.expiry = expiry;
      ss.expiresAt = expiresAt > 0 ? past(fromWall(expiresAt)) : 0;
      aclBind(s, at + <usize>idLen, userLen, hasName != 0);
      return true;
    }
    case Rec.SessionEnd: {
      const s = pidRow(rd32(), PidKind.Session);
      if (s < 0) return false;
      discardWill(s); // its will was published (or not) by records of its own
      endSession(s);
      return true;
    }
    case Rec.Subscribe: {
      const s = pidRow(rd32(), PidKind.Session);
      const qos = rd8(); const options = rd8(); const subId = <i32>rd32(); const off = rd16(); const len = rd16();
      if (s < 0 || qos > 2 || off >= len || len > FILTER_MAX || !left(end, len)) return false;
      const row = subscribe(s, at, len, off, qos, options, subId);
      if (row == SUBSCRIBE_FAILED) return false;
      subscription(row).reach = aclReach(s, at + <usize>off, len - off);
      return true;
    }
    case Rec.Unsubscribe: {
      const s = pidRow(rd32(), PidKind.Session);
      const off = rd16(); const len = rd16();
      if (off >= len || len > FILTER_MAX || !left(end, len)) return false;
      return s >= 0 && unsubscribe(s, at, len, off);
    }
    case Rec.Queue: {
      const pid = rd32(); const s = pidRow(rd32(), PidKind.Session); const mpid = rd32();
      const qos = rd8(); const retain = rd8(); const st = rd8(); const packetId = rd16(); const n = rd8();
      const m = mpid != 0 ? pidRow(mpid, PidKind.Message) : -1;
      if (qos < 1 || qos > 2 || st > DeliveryState.Released || !left(end, <i64>n << 2)) return false;
      if (s < 0 || (mpid != 0 && m < 0) || (m < 0 && st != DeliveryState.Released)) return false;
      if (!enqueue(s, m, qos, retain != 0, at, n)) return false;
      const d = session(s).queueTail;
      if (pidPut(pid, PidKind.Delivery, d)) delivery(d).pid = pid;
      if (st != DeliveryState.Queued) markSent(s, d, st, packetId);
      return true;
    }
    case Rec.Sent: {
      const d = pidRow(rd32(), PidKind.Delivery); const s = pidRow(rd32(), PidKind.Session);
      if (d < 0 || s < 0) return false;
      // the broker sends a session's queue in order: the first delivery not yet in flight
      // (which also makes sure it is this session's)
      const tail = session(s).inflightTail;
      if (d != (tail >= 0 ? delivery(tail).next : session(s).queueHead) || delivery(d).state != DeliveryState.Queued) return false;
      markSent(s, d, DeliveryState.Sent, rd16());
      return true;
    }
    case Rec.Released: {
      const d = pidRow(rd32(), PidKind.Delivery); const s = pidRow(rd32(), PidKind.Session);
      if (d < 0 || s < 0) return false;
      const row = delivery(d);
      if (row.state != DeliveryState.Sent) return false;
      row.state = DeliveryState.Released;
      if (row.msg >= 0) { releaseMessage(row.msg); row.msg = -1; }
      return true;
    }
    case Rec.Done: {
      const d = pidRow(rd32(), PidKind.Delivery); const s = pidRow(rd32(), PidKind.Session);
      if (d < 0 || s < 0) return false;
      let prev = -1;
      let i = session(s).queueHead;
      while (i >= 0 && i != d) { prev = i; i = delivery(i).next; }
      if (i < 0) return false;
      removeDelivery(s, d, prev);
      return true;
    }
    case Rec.Received: case Rec.ReceivedDone: {
      const s = pidRow(rd32(), PidKind.Session); const id = rd16();
      if (s < 0) return false;
      if (type == Rec.ReceivedDone) removeReceived(s, id);
      else if (!hasReceived(s, id) && !addReceived(s, id)) return false;
      return true;
    }
    case Rec.Will: {
      const s = pidRow(rd32(), PidKind.Session); const m = pidRow(rd32(), PidKind.Message);
      const delay = rd32(); const willAt = rdF64();
      if (s < 0 || m < 0) return false;
      holdMessage(m); // first: the will it replaces may be this very message
      discardWill(s);
      const ss = session(s);
      ss.will = m; ss.willDelay = delay;
      ss.willAt = willAt > 0 ? max(fromWall(willAt), 1) : 0;
      return true;
    }
    case Rec.WillDone: {
      const s = pidRow(rd32(), PidKind.Session);
      if (s < 0) return false;
      discardWill(s);
      return true;
    }
    case Rec.Commit: return true;
  }
  return false;
}


/** The store is full: free the messages no record holds any more (releaseMessage kept
 *  them, in case a later record named them again; one that does now is skipped). */
function freeUnreferenced(): void {
  for (let i = 0, n = pidSlots(); i < n; i++) {
    const v = pidSlot(i);
    if (v >>> 28 != <i32>PidKind.Message || message(v & 0x0FFFFFFF).refs != 0) continue;
    freeMessage(v & 0x0FFFFFFF); // pidForget moves later entries back into this slot:
    i--;                         //   look at it again
  }
  clearUnreferenced();
}

/** A delivery read back as sent (or released): in flight, in order. */
function markSent(s: i32, d: i32, st: i32, packetId: i32): void {
  const ss = session(s);
  const row = delivery(d);
  if (row.state == DeliveryState.Queued) { ss.inflight++; ss.inflightTail = d; }
  row.state = st;
  row.packetId = packetId;
  ss.nextPacketId = packetId;
  ss.wrapped = 1; // ids in flight came from the file: check each new one against them
}

// ---- the end ----

/** The whole file was offered (or there is none, or it could not be read: `error`). */
export function restoreFinish(t: f64, wall: f64, error: i32): void {
  setNow(t);
  setWall(wall, t);
  if (started == 0) started = t;
  setRestoring(false);
  // messages no record kept (a torn tail cut what would have held them, or their last
  // reference went: releaseMessage keeps them until here)
  for (let i = 0, n = pidSlots(); i < n; i++) {
    const v = pidSlot(i);
    if (v >>> 28 == <i32>PidKind.Message && message(v & 0x0FFFFFFF).refs == 0) freeMessage(v & 0x0FFFFFFF);
  }
  clearUnreferenced();
  pidClear();
  // every session is offline now: one that was online when the broker stopped counts as
  // disconnected at this start, and its will is due as for a lost connection
  for (let i = 0, n = sessionsHighWater(); i < n; i++) {
    const ss = session(i);
    if (ss.used == 0) continue;
    if (ss.expiresAt == 0 && ss.expiry != 0xFFFFFFFF) ss.expiresAt = now + <f64>ss.expiry * 1000;
    if (ss.will >= 0 && ss.willAt == 0) ss.willAt = max(now + <f64>ss.willDelay * 1000, 1);
  }
  const foreign = state == Read.Foreign || error != 0;
  if (state == Read.Header && lastLeft > 0) { state = Read.Damaged; damagedAt = 0; }
  if (state == Read.Records && lastLeft > 0) {
    state = Read.Damaged; damagedAt = offset;
    // a unit without its Commit: its whole records go too, and the torn one after them
    if (leftRecords > 0) recordsAfter += leftRecords - 1 + (lastLeft > leftWhole ? 1 : 0);
  }
  const cut = state == Read.Damaged || state == Read.Lost ? offset + <f64>lastLeft - damagedAt : 0;
  report(t, foreign, error, cut);
  if (!snapshot(foreign ? 2 : 0) || !logOn(LogLevel.Notice)) return;
  logStart(); logText("persistence: "); logPersistencePath();
  if (persistenceSync == PersistSync.Always) {
    logText(": each QoS 1/2 message and retained message is synced to disk before it is acknowledged (persistence_sync always)");
  } else if (autosaveOnChanges != 0) {
    logText(": written at once, synced every "); logInt(autosaveInterval);
    logText(" changes (persistence_sync interval, autosave_on_changes true): a crash of the broker loses nothing, a power cut at most the last ");
    logInt(autosaveInterval); logText(" changes");
  } else {
    logText(": written at once, synced every "); logInt(autosaveInterval);
    logText(" s (persistence_sync interval): a crash of the broker loses nothing, a power cut at most the last ");
    logInt(autosaveInterval); logText(" s");
  }
  logEnd(LogLevel.Notice);
}

function report(t: f64, foreign: bool, error: i32, cut: f64): void {
  if (foreign) {
    if (logOn(LogLevel.Error)) {
      logStart(); logText("persistence: "); logPersistencePath();
      if (error != 0) logText(" cannot be read");
      else if (foreignVersion != 0) { logText(" is a file of version "); logInt(foreignVersion); logText(", which this Midge does not read"); }
      else logText(" is not a Midge persistence file (Mosquitto's own format?)");
      logText(": kept as "); logPersistencePath(); logText(".old, starting empty");
      logEnd(LogLevel.Error);
    }
    return;
  }
  if (cut > 0 && logOn(LogLevel.Warning)) {
    logStart(); logText("persistence: "); logPersistencePath(); logText(" is damaged at byte ");
    logInt(<i64>damagedAt); logText(": cut off "); logInt(<i64>cut); logText(" bytes (the damaged record");
    if (recordsAfter > 0) { logText(" and "); logInt(recordsAfter); logText(" after it"); }
    logText("); kept what came before");
    logEnd(LogLevel.Warning);
  }
  if (recordsSkipped > 0 && logOn(LogLevel.Warning)) {
    logStart(); logText("persistence: "); logInt(recordsSkipped);
    logText(" records did not fit this board's tables or named what the file never held: skipped");
    logEnd(LogLevel.Warning);
  }
  if (logOn(LogLevel.Notice)) {
    logStart(); logText("persistence: restored "); logInt(retainedInUse()); logText(" retained messages, ");
    logInt(sessionsInUse()); logText(" sessions, "); logInt(subscriptionsInUse()); logText(" subscriptions, ");
    logInt(deliveriesInUse()); logText(" queued messages from "); logPersistencePath();
    logText(" ("); logInt(<i64>(offset + <f64>lastLeft)); logText(" bytes, "); logInt(recordsRead);
    logText(" records) in "); logInt(<i64>(t - started)); logText(" ms");
    logEnd(LogLevel.Notice);
  }
}
