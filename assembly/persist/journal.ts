// Persistence while the broker runs (DESIGN §5b): every durable change of a persistent
// session (expiry > 0) or of the retained messages is appended to the file as a record
// (record.ts) at the moment it happens; the host writes them after the core call. The
// policy is here: when to sync, when to compact, what to do when the disk fails, and,
// with `persistence_sync always`, holding each PUBACK/PUBREC until its message's record
// is on disk.
//
//   held acknowledgements (ACK_RING rows, oldest first)
//   ┌──────┬──────────────────────────┬──────────┬────────────────────────────────────┐
//   │ conn │ ack byte | reason << 8   │ packetId │ f64 mark: `appended` when it was   │
//   └──────┴──────────────────────────┴──────────┴──────────────── held: sent once the host
//                                                                  reports that many bytes synced

import { PERSISTENCE, MAX_CONNECTIONS, SUB_IDS_PER_DELIVERY } from "../config";
import { hostPersistFlush, LogLevel } from "../host";
import { now } from "../clock";
import { persistenceSync, PersistSync, autosaveInterval, autosaveOnChanges } from "../settings";
import { sendAck } from "../codec/ack";
import { session, sessionId } from "../session/sessions";
import { delivery, deliveryIds } from "../session/queue";
import { subscription, subscriptionFilter } from "../session/subscriptions";
import { connection, connectionsHighWater } from "../session/connections";
import { message } from "../store/messages";
import { aclUserName } from "../auth/acl";
import { receivedSlots, receivedSlot } from "../session/received";
import { Rec, recBegin, recU8, recU16, recU32, recF64, recBytes, recEnd, appended, unitOpen, unitClose } from "./record";
import { snapshot } from "./snapshot";
import { sysPublishing } from "../sys/tree";
import { pauseConnection, unpauseConnection, Pause } from "../flow/holds";
import { logOn, logStart, logText, logInt, logEnd } from "../log";
import { statAdd, Stat } from "../stats";
import { logPersistencePath } from "../configfile";

/** Records are being written: persistence is on, the file was read back, and the disk
 *  has not failed. Every hook returns at once otherwise. */
export let journalOn = false;
export function setJournalOn(on: bool): void { journalOn = on; }
/** A write failed: nothing is written until a snapshot succeeds (tried every RETRY_MS). */
export let degraded = false;
let retryAt: f64 = 0;
// @ts-ignore: decorator
@inline const RETRY_MS: f64 = 30000;

/** The next id in the current file (a snapshot starts again at 1). */
export let nextPid: u32 = 1;
export function resetPids(): void { nextPid = 1; }
export function takePid(): u32 { return nextPid++; }

/** Bytes of the current file, and of the snapshot it started with: a compaction is due
 *  when the records after the snapshot outweigh it (each byte is then written at most
 *  about twice, whatever the traffic) and the file is past COMPACT_MIN. */
export let fileBytes: f64 = 0;
export let snapshotBytes: f64 = 0;
export function setFileBytes(file: f64, snap: f64): void { fileBytes = file; snapshotBytes = snap; }
// @ts-ignore: decorator
@inline const COMPACT_MIN: f64 = 1048576;

/** What the host reported on disk (always: synced), and what a sync was last asked for. */
export let durable: f64 = 0;
let flushAsked = false;  // a persistFlush is pending (the host calls `persisted` after it)
let syncAsked = false;   //   with sync
let lastSync: f64 = 0;
let syncedUpTo: f64 = 0; // interval: `appended` when the last sync was asked

// @ts-ignore: decorator
@inline function always(): bool { return persistenceSync == PersistSync.Always; }

/** Records since the last sync (autosave_on_changes: autosave_interval counts them). */
let changes = 0;

/** After each record: have the host write it after this call (and sync it, `always`). */
function wrote(size: i32): void {
  fileBytes += <f64>size;
  if (autosaveOnChanges != 0 && !always() && autosaveInterval > 0 && ++changes >= autosaveInterval) {
    changes = 0;
    hostPersistFlush(1);
    flushAsked = true; syncAsked = true;
    syncedUpTo = appended;
    return;
  }
  if (!flushAsked || (always() && !syncAsked)) {
    hostPersistFlush(always() ? 1 : 0);
    flushAsked = true;
    if (always()) syncAsked = true;
  }
}

// ---- the records of a running broker (each hook: only for what must survive) ----

/** The records until `journalUnitEnd` count only together (record.ts, UNIT). */
export function journalUnitBegin(): void {
  if (PERSISTENCE && journalOn) unitOpen();
}
export function journalUnitEnd(): void {
  if (!PERSISTENCE || !unitClose() || !journalOn) return;
  recBegin(Rec.Commit);
  wrote(recEnd());
}

// @ts-ignore: decorator
@inline function persistent(s: i32): bool { return journalOn && session(s).pid != 0; }

/** Stored message `m` is in the current file (written now if it was not); its pid. */
export function saveMessage(m: i32): u32 {
  const row = message(m);
  if (row.pid != 0) return row.pid;
  row.pid = takePid();
  recBegin(Rec.Message);
  recU32(row.pid); recU8(row.qos); recU8(row.retain);
  recF64(row.expiresAt > 0 ? toWall(row.expiresAt) : row.expiresAt);
  recU16(row.topicLen); recU32(<u32>row.propsLen); recU32(<u32>row.payloadLen);
  wrote(recEnd(m, 0, row.topicLen + row.propsLen + row.payloadLen));
  return row.pid;
}

export function journalRetain(m: i32): void {
  if (!PERSISTENCE || !journalOn || sysPublishing) return; // $SYS is the broker's now, not worth a write
  const pid = saveMessage(m);
  recBegin(Rec.Retain); recU32(pid);
  wrote(recEnd());
}

export function journalUnretain(m: i32): void {
  if (!PERSISTENCE || !journalOn || sysPublishing) return;
  recBegin(Rec.Unretain); recU16(message(m).topicLen);
  wrote(recEnd(m, 0, message(m).topicLen));
}

/** Session `s` as it is now (its expiry, whether it is online, its user name). */
export function saveSessionRow(s: i32): void {
  const ss = session(s);
  recBegin(Rec.Session);
  recU32(ss.pid); recU32(ss.expiry);
  recF64(ss.conn < 0 && ss.expiresAt > 0 ? toWall(ss.expiresAt) : 0);
  const user = aclUserName(s);
  recU8(user != 0 ? 1 : 0);
  recU16(ss.idLen); recU16(user != 0 ? ss.userLen : 0);
  recBytes(sessionId(s), ss.idLen);
  if (user != 0) recBytes(user, ss.userLen);
  wrote(recEnd());
}

/** A CONNECT bound session `s` (new, resumed or taken over): a persistent one is written
 *  whole the first time, its new expiry otherwise; one that stopped being persistent ends
 *  in the file. */
export function journalOnline(s: i32): void {
  if (!PERSISTENCE || !journalOn) return;
  const ss = session(s);
  if (ss.expiry == 0) {
    if (ss.pid != 0) { journalSessionEnd(s); ss.pid = 0; }
    return;
  }
  if (ss.pid == 0) {
    journalUnitBegin(); // its subscriptions and queue come with it or not at all
    saveSession(s);
    journalUnitEnd();
    return;
  }
  saveSessionRow(s);
  if (ss.will >= 0) journalWill(s);
}

/** Its connection went: its expiry now runs, and a delayed will waits. */
export function journalOffline(s: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  saveSessionRow(s);
  if (session(s).will >= 0) journalWill(s);
}

export function journalSessionEnd(s: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  recBegin(Rec.SessionEnd); recU32(session(s).pid);
  wrote(recEnd());
  session(s).pid = 0; // its subscriptions and deliveries go with it, without records
}

export function journalWill(s: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  const ss = session(s);
  const pid = saveMessage(ss.will);
  recBegin(Rec.Will); recU32(ss.pid); recU32(pid); recU32(ss.willDelay);
  recF64(ss.willAt > 0 ? toWall(ss.willAt) : 0);
  wrote(recEnd());
}

export function journalWillDone(s: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  recBegin(Rec.WillDone); recU32(session(s).pid);
  wrote(recEnd());
}

export function saveSubscription(i: i32): void {
  const row = subscription(i);
  recBegin(Rec.Subscribe);
  recU32(session(row.session).pid); recU8(row.qos); recU8(row.options); recU32(<u32>row.subId);
  recU16(row.filterOffset); recU16(row.filterLen); recBytes(subscriptionFilter(i), row.filterLen);
  wrote(recEnd());
}

export function journalSubscribe(s: i32, i: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  saveSubscription(i);
}

export function journalUnsubscribe(s: i32, filter: usize, len: i32, offset: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  recBegin(Rec.Unsubscribe); recU32(session(s).pid); recU16(offset); recU16(len); recBytes(filter, len);
  wrote(recEnd());
}

/** Delivery `d` of session `s`, in its present state. */
export function saveDelivery(s: i32, d: i32): void {
  const row = delivery(d);
  const mpid = row.msg >= 0 ? saveMessage(row.msg) : 0;
  row.pid = takePid();
  recBegin(Rec.Queue);
  recU32(row.pid); recU32(session(s).pid); recU32(mpid);
  recU8(row.qos); recU8(row.retain); recU8(row.state); recU16(row.packetId);
  const n = min(row.idCount, SUB_IDS_PER_DELIVERY);
  recU8(n);
  for (let k = 0; k < n; k++) recU32(load<u32>(deliveryIds(d) + (<usize>k << 2)));
  wrote(recEnd());
}

export function journalQueued(s: i32, d: i32): void {
  if (!persistent(s) || sysPublishing) return; // a $SYS update is not worth a write either
  saveDelivery(s, d);
}

export function journalSent(s: i32, d: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  const row = delivery(d);
  if (row.pid == 0) return;
  recBegin(Rec.Sent); recU32(row.pid); recU32(session(s).pid); recU16(row.packetId);
  wrote(recEnd());
}

export function journalReleased(s: i32, d: i32): void {
  if (!PERSISTENCE || !persistent(s)) return;
  const row = delivery(d);
  if (row.pid == 0) return;
  recBegin(Rec.Released); recU32(row.pid); recU32(session(s).pid);
  wrote(recEnd());
}

export function journalDone(s: i32, d: i32): void {
  if (!persistent(s)) return;
  const row = delivery(d);
  if (row.pid == 0) return;
  recBegin(Rec.Done); recU32(row.pid); recU32(session(s).pid);
  wrote(recEnd());
}

export function journalReceived(s: i32, packetId: i32, held: bool): void {
  if (!PERSISTENCE || !persistent(s)) return;
  recBegin(held ? Rec.Received : Rec.ReceivedDone); recU32(session(s).pid); recU16(packetId);
  wrote(recEnd());
}

/** Session `s` becomes persistent (or is written into a new file): all of it. A snapshot
 *  writes every session's QoS 2 ids afterwards in one pass (`withReceived` false). */
export function saveSession(s: i32, withReceived: bool = true): void {
  const ss = session(s);
  ss.pid = takePid();
  saveSessionRow(s);
  for (let i = ss.subs; i >= 0; i = subscription(i).sessionNext) saveSubscription(i);
  for (let d = ss.queueHead; d >= 0; d = delivery(d).next) saveDelivery(s, d);
  if (ss.will >= 0) journalWill(s);
  if (withReceived && ss.received > 0) saveReceivedOf(s);
}

/** Its QoS 2 ids awaiting PUBREL (received.ts keeps every session's in one table);
 *  s < 0: every persistent session's (a snapshot). */
function saveReceivedOf(s: i32): void {
  for (let i = 0, n = receivedSlots(); i < n; i++) {
    const k = receivedSlot(i);
    if (k == 0) continue;
    const owner = <i32>(k >> 16) - 1;
    if ((s >= 0 && owner != s) || session(owner).pid == 0) continue;
    recBegin(Rec.Received); recU32(session(owner).pid); recU16(<i32>(k & 0xFFFF));
    wrote(recEnd());
  }
}
/** Every persistent session's QoS 2 ids (a snapshot). */
export function saveAllReceived(): void { saveReceivedOf(-1); }

// ---- wall clock ----

/** Wall-clock ms minus the core's monotonic ms (given by `restore`). */
export let wallOffset: f64 = 0;
export function setWall(wall: f64, mono: f64): void { wallOffset = wall - mono; }
// @ts-ignore: decorator
@inline export function toWall(mono: f64): f64 { return mono + wallOffset; }
// @ts-ignore: decorator
@inline export function fromWall(wall: f64): f64 { return wall - wallOffset; }

// ---- persistence_sync always: acknowledgements wait for their records ----

// @ts-ignore: decorator
@inline const ACK_HOLD: i32 = 1024;
/** Room for ACK_HOLD held acknowledgements, plus one for every connection that may still be
 *  in the middle of a read when the line is reached (each is paused after that packet). */
// @ts-ignore: decorator
@inline const ACK_RING: i32 = PERSISTENCE ? ACK_HOLD + MAX_CONNECTIONS : 1;
// @ts-ignore: decorator
@inline const ACK_ROW: i32 = 24;
const ACKS = memory.data(ACK_RING * ACK_ROW, 8);
let ackHead = 0;
let ackCount = 0;
let pausedForAcks = 0;

export function ackTableBytes(): i32 { return ACK_RING * ACK_ROW; }

// @ts-ignore: decorator
@inline function ackAt(i: i32): usize { return ACKS + <usize>((ackHead + i) % ACK_RING) * ACK_ROW; }

/** Acknowledge a PUBLISH (PUBACK, PUBREC) or a PUBREL (PUBCOMP): now, or (`always`,
 *  records not yet synced) once they are. Every acknowledgement to publishers goes
 *  through here, so that they keep their order. */
export function ackPublish(conn: i32, ackByte: i32, packetId: i32, reason: i32): void {
  if (!PERSISTENCE || !journalOn || !always() || (appended <= durable && ackCount == 0) || ackCount >= ACK_RING) {
    sendAck(conn, ackByte, packetId, reason);
    return;
  }
  const p = ackAt(ackCount++);
  store<i32>(p, conn);
  store<i32>(p, ackByte | reason << 8, 4);
  store<i32>(p, packetId, 8);
  store<f64>(p, appended, 16);
}

/** After a packet: stop reading `conn` while the held acknowledgements are at their line. */
export function ackHoldFull(conn: i32): bool {
  if (!PERSISTENCE || ackCount < ACK_HOLD) return false;
  pauseConnection(conn, Pause.Persist);
  pausedForAcks++;
  return true;
}

/** Send the held acknowledgements whose records are on disk (all: `upTo` < 0). */
function releaseAcks(upTo: f64): void {
  while (ackCount > 0) {
    const p = ackAt(0);
    if (upTo >= 0 && load<f64>(p, 16) > upTo) break;
    const conn = load<i32>(p);
    if (conn >= 0) {
      const v = load<i32>(p, 4);
      sendAck(conn, v & 0xFF, load<i32>(p, 8), v >> 8);
    }
    ackHead = (ackHead + 1) % ACK_RING;
    ackCount--;
  }
  if (pausedForAcks > 0 && ackCount < ACK_HOLD) {
    pausedForAcks = 0;
    for (let i = 0, n = connectionsHighWater(); i < n; i++) {
      if ((connection(i).paused & Pause.Persist) != 0) unpauseConnection(i, Pause.Persist);
    }
  }
}

/** Connection `conn` is gone: what was held for it is not sent (its id may be reused). */
export function forgetAcks(conn: i32): void {
  if (!PERSISTENCE) return;
  for (let i = 0; i < ackCount; i++) if (load<i32>(ackAt(i)) == conn) store<i32>(ackAt(i), -1);
}

// ---- what the host reports, and the clock ----

/** The host's flush is done (`persisted`). */
export function flushed(bytes: f64, error: i32): void {
  const synced = syncAsked;
  flushAsked = false;
  syncAsked = false;
  if (error != 0) { fail(error); return; }
  if (synced) { durable = bytes; lastSync = now; }
  if (ackCount > 0) releaseAcks(durable);
}

/** A snapshot replaced the file: everything before it is on disk. */
export function snapshotDone(): void {
  durable = appended;
  syncedUpTo = appended;
  lastSync = now;
  flushAsked = false;
  syncAsked = false;
  if (ackCount > 0) releaseAcks(-1);
}

/** The disk failed: say so once, keep serving, try again later. */
export function fail(error: i32): void {
  if (!degraded && logOn(LogLevel.Error)) {
    logStart(); logText("persistence: cannot write "); logPersistencePath(); logText(": ");
    logText(error == 1 ? "no space left on the device (a snapshot needs room for a second copy of the file)"
          : error == 2 ? "not permitted (a read-only file system, or permissions)"
          : error == 4 ? "no such directory (persistence_location must exist)" : "input/output error");
    logText("; persistence degraded: nothing more is saved until a snapshot succeeds (tried every 30 s)");
    logEnd(LogLevel.Error);
  }
  degraded = true;
  journalOn = false;
  statAdd(Stat.PersistenceErrors);
  retryAt = now + RETRY_MS;
  flushAsked = false;
  syncAsked = false;
  releaseAcks(-1); // the publishers are answered: the broker keeps serving
}

/** The clock: sync on the interval, compact when due, retry after a failure. Returns the
 *  ms until it wants to look again. */
export function journalTick(): f64 {
  if (!PERSISTENCE) return 1000;
  if (degraded) {
    if (now >= retryAt) {
      if (snapshot(0)) {
        degraded = false;
        if (logOn(LogLevel.Notice)) {
          logStart(); logText("persistence: "); logPersistencePath(); logText(" written again: persistence restored");
          logEnd(LogLevel.Notice);
        }
      } else retryAt = now + RETRY_MS;
    }
    return 1000;
  }
  if (!journalOn) return 1000;
  if (fileBytes > COMPACT_MIN && fileBytes > 2 * snapshotBytes) { snapshot(0); return 1000; }
  if (!always() && autosaveOnChanges == 0 && autosaveInterval > 0 && appended > syncedUpTo) {
    const due = lastSync + <f64>autosaveInterval * 1000;
    if (now >= due) {
      hostPersistFlush(1);
      flushAsked = true; syncAsked = true;
      syncedUpTo = appended;
    } else return min(1000, due - now);
  }
  return 1000;
}

/** The broker stops: sync what was written. */
export function journalShutdown(): void {
  if (!PERSISTENCE || !journalOn) return;
  hostPersistFlush(1);
  flushAsked = true; syncAsked = true;
}

/** For the log: the held acknowledgements now. */
export function acksHeld(): i32 { return ackCount; }
