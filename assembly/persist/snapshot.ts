// Compaction: the whole durable state written as records into a new file, which the
// host syncs and renames over the old one (docs/ABI.md, persistReplace). Done after the
// file is read back at start, when the records after the last snapshot outweigh it, and
// after a write failure (until one succeeds). Every object is numbered again from 1.

import { hostPersistReplace } from "../host";
import { statAdd, Stat } from "../stats";
import { message, messagesHighWater, copyOut } from "../store/messages";
import { retainedRow, retainedHighWater } from "../store/retained";
import { session, sessionsHighWater } from "../session/sessions";
import { appended, writeHeader, Rec, recBegin, recU32, recEnd } from "./record";
import { resetPids, saveMessage, saveSession, saveAllReceived, setFileBytes, snapshotDone, fail, setJournalOn } from "./journal";

const FIRST = memory.data(8);
/** Whether stored message `m`'s topic starts with "$SYS/". */
function isSys(m: i32): bool {
  if (message(m).topicLen < 5) return false;
  copyOut(m, 0, FIRST, 5);
  return load<u32>(FIRST) == 0x53595324 && load<u8>(FIRST + 4) == 0x2F; // "$SYS" "/"
}

/** Write the snapshot; `step` 0, or 2 to keep the current file as PATH.old. False when
 *  the host could not (the failure is logged, persistence degraded). */
export function snapshot(step: i32): bool {
  // the ids of the old file mean nothing in the new one
  resetPids();
  for (let i = 0, n = messagesHighWater(); i < n; i++) message(i).pid = 0;
  for (let i = 0, n = sessionsHighWater(); i < n; i++) session(i).pid = 0;
  const start = appended;
  let r = hostPersistReplace(step);
  if (r == 0) {
    setJournalOn(true); // the hooks below write only while it is
    writeHeader();
    for (let i = 0, n = retainedHighWater(); i < n; i++) {
      const row = retainedRow(i);
      if (row.used == 0 || isSys(row.msg)) continue; // $SYS is the broker's now, not kept
      const pid = saveMessage(row.msg);
      recBegin(Rec.Retain); recU32(pid); recEnd();
    }
    for (let i = 0, n = sessionsHighWater(); i < n; i++) {
      const ss = session(i);
      if (ss.used != 0 && ss.expiry != 0) saveSession(i, false);
    }
    saveAllReceived();
    r = hostPersistReplace(1);
  }
  if (r != 0) {
    // nothing of it counts: the old file stays, and nothing is written until a retry works
    for (let i = 0, n = sessionsHighWater(); i < n; i++) session(i).pid = 0;
    fail(r);
    return false;
  }
  statAdd(Stat.PersistenceSnapshots);
  setFileBytes(appended - start, appended - start);
  setJournalOn(true);
  snapshotDone();
  return true;
}
