// The persistence file's format, written and read only here and in restore.ts (hosts
// append, sync, read back and rename it without looking inside: docs/ABI.md).
//
//   file    ┌──────────────────────────────┬──────────┬──────────┬──────────┬─────┐
//           │ header: "MIDGEDB\n" u32 1 crc│ record   │ record   │ record   │ ... │
//           └──────────────────────────────┴──────────┴──────────┴──────────┴─────┘
//   record  ┌────────────┬─────────────┬─────────┬──────────────────────────────────┐
//           │ u32 length │ u32 CRC-32  │ u8 type │ fields (little-endian), bytes     │
//           └────────────┴─────────────┴─────────┴──────────────────────────────────┘
//                         of the body: type, fields and bytes; `length` counts them too
//
// Records say what changed (a retained message set, a delivery acknowledged), in the
// order it changed, so reading them back in order rebuilds the state; a compaction
// writes the whole state as records into a new file. Times are wall-clock milliseconds
// (the core's own clock is monotonic and restarts with the process).

import { CLIENT_ID_MAX, USERNAME_MAX, FILTER_MAX, SUB_IDS_PER_DELIVERY } from "../config";
import { hostPersistWrite } from "../host";
import { CRC_START, crcUpdate, crcEnd } from "./crc";
import { rangeCrc, rangePersist } from "../store/messages";

export const FILE_VERSION: u32 = 1;
// @ts-ignore: decorator
@inline export const HEADER_SIZE: i32 = 16;
// @ts-ignore: decorator
@inline export const RECORD_HEADER: i32 = 8;

export const enum Rec {
  Message = 1,      // u32 pid, u8 qos, u8 retain, f64 expires (wall ms; 0 never; < 0: -interval of a will),
                    //   u16 topicLen, u32 propsLen, u32 payloadLen, then topic, properties, payload
  Retain = 2,       // u32 message pid: the retained message of its topic
  Unretain = 3,     // u16 topicLen, topic: no retained message there any more
  Session = 4,      // u32 pid, u32 expiry (s), f64 expiresAt (wall ms; 0 online or never), u8 hasName,
                    //   u16 idLen, u16 userLen, id, user name
  SessionEnd = 5,   // u32 session pid
  Subscribe = 6,    // u32 session pid, u8 qos, u8 options, u32 subId, u16 offset, u16 filterLen, filter
  Unsubscribe = 7,  // u32 session pid, u16 offset, u16 filterLen, filter
  Queue = 8,        // u32 pid, u32 session pid, u32 message pid (0: released), u8 qos, u8 retain, u8 state,
                    //   u16 packetId, u8 idCount, u32 × idCount subscription identifiers
  Sent = 9,         // u32 delivery pid, u32 session pid, u16 packetId
  Released = 10,    // u32 delivery pid, u32 session pid: PUBREC came, PUBREL sent
  Done = 11,        // u32 delivery pid, u32 session pid
  Received = 12,    // u32 session pid, u16 packetId: a QoS 2 id held until PUBREL
  ReceivedDone = 13,// u32 session pid, u16 packetId
  Will = 14,        // u32 session pid, u32 message pid, u32 willDelay (s), f64 willAt (wall ms; 0: client online)
  WillDone = 15,    // u32 session pid
  Commit = 16,      // (no fields): ends a unit
}

/** In a record's type: the record belongs to a unit, records that count only together
 *  (a QoS 2 id and the deliveries its message made): restore applies a unit once its
 *  Commit is read, so a write torn inside it (kill -9 can cut a write() at a page
 *  boundary) loses the whole unit, never half of it. */
// @ts-ignore: decorator
@inline export const UNIT: u8 = 0x80;
let unitBit: u8 = 0;
/** Records written in the open unit (none: no Commit is needed). */
export let unitRecords = 0;
export function unitOpen(): void { unitBit = UNIT; unitRecords = 0; }
/** Close the unit; whether a Commit must follow (the caller writes it). */
export function unitClose(): bool { unitBit = 0; return unitRecords > 0; }

/** The largest fixed part of a record: a Session with its id and user name, a
 *  Subscribe with its filter, a Queue with its identifiers (topics and payloads are
 *  streamed from the message store). */
// @ts-ignore: decorator
@inline const REC_MAX: i32 = RECORD_HEADER + 32 + CLIENT_ID_MAX + USERNAME_MAX + FILTER_MAX + SUB_IDS_PER_DELIVERY * 4;
const REC = memory.data(REC_MAX, 8);
let at: usize = 0;

/** Bytes passed to the host since the start (the host counts the same: `persisted`). */
export let appended: f64 = 0;

export function recBegin(type: Rec): void {
  at = REC + <usize>RECORD_HEADER;
  store<u8>(at, <u8>type | unitBit);
  at++;
  if (unitBit != 0) unitRecords++;
}
export function recU8(v: i32): void { store<u8>(at, <u8>v); at++; }
export function recU16(v: i32): void { store<u16>(at, <u16>v); at += 2; }
export function recU32(v: u32): void { store<u32>(at, v); at += 4; }
export function recF64(v: f64): void { store<f64>(at, v); at += 8; }
export function recBytes(p: usize, len: i32): void { memory.copy(at, p, <usize>len); at += <usize>len; }

/** Frame the record and hand it to the host, followed by bytes [from, from+len) of
 *  stored message `m` (len 0: none). Returns the record's size in the file. */
export function recEnd(m: i32 = -1, from: i32 = 0, len: i32 = 0): i32 {
  const fixed = <i32>(at - REC) - RECORD_HEADER;
  let crc = crcUpdate(CRC_START, REC + <usize>RECORD_HEADER, fixed);
  if (len > 0) crc = rangeCrc(m, from, len, crc);
  store<u32>(REC, <u32>(fixed + len));
  store<u32>(REC, crcEnd(crc), 4);
  hostPersistWrite(REC, <u32>(at - REC));
  if (len > 0) rangePersist(m, from, len);
  const size = RECORD_HEADER + fixed + len;
  appended += <f64>size;
  return size;
}

/** The file's first bytes. */
export function writeHeader(): void {
  const p = REC;
  store<u64>(p, 0x0A4244454744494D); // "MIDGEDB\n" (little-endian)
  store<u32>(p, FILE_VERSION, 8);
  store<u32>(p, crcEnd(crcUpdate(CRC_START, p, 12)), 12);
  hostPersistWrite(p, HEADER_SIZE);
  appended += <f64>HEADER_SIZE;
}
