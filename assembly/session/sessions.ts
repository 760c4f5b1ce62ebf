// The session table: one row per client session, online or persistent and offline.
// The client identifier sits inline after the fixed fields, so a session is one
// contiguous row (the QoS 2 packet ids awaiting PUBREL are in received.ts).
//
//   Session row (MAX_SESSIONS rows, SESSION_STRIDE bytes each)
//   ┌──────┬──────┬──────┬────────┬──────┬──────┬───────┬─────┬─────────────────┬───────────────────────┐
//   │ link │ used │ conn │ expiry │ will │ subs │ queue │ ... │ client id bytes │
//   └──────┴──────┴──────┴────────┴──────┴──────┴───────┴─────┴─────────────────┘

import { MAX_SESSIONS, CLIENT_ID_MAX, PERSISTENCE } from "../config";
import { restoring, pidForget } from "../persist/pids";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { logText, logBytes } from "../log";

// @ts-ignore: decorator
@unmanaged @final export class Session {
  link: i32;
  used: i32;
  conn: i32;          // connection row while online, -1 while offline
  expiry: u32;        // Session Expiry Interval, s: 0 ends with the connection, 0xFFFFFFFF never
  expiresAt: f64;     // while offline: when it ends (0 = never)
  will: i32;          // stored will message, -1 if none
  willDelay: u32;     // Will Delay Interval, s
  willAt: f64;        // after an abnormal close: when the delayed will is due (0 = not pending)
  subs: i32;          // first subscription of this session, -1 if none
  subCount: i32;
  queueHead: i32;     // deliveries, oldest first: in flight ones, then queued ones
  queueTail: i32;
  queued: i32;        // deliveries in the list
  inflight: i32;      // deliveries sent and not yet completed
  inflightTail: i32;  // the last of them (-1 if none): queued ones follow it
  wrapped: i32;       // packet ids have wrapped past 65535: check reuse from now on
  nextPacketId: i32;  // last packet id used for an outgoing PUBLISH
  received: i32;      // QoS 2 packet ids held until PUBREL (in received.ts)
  idLen: i32;
  idHash: u32;
  matchEpoch: u32;    // fan-out: last publish that selected this session,
  matchQos: i32;      //   the highest QoS among its matching subscriptions,
  matchRetain: i32;   //   whether one of them has Retain As Published,
  matchIds: i32;      //   and the first of its subscription identifiers (-1: none)
  dropped: i32;       // messages dropped for this session since it last connected
  aclSection: i32;    // ACL file: its `user` section (0: no user name), -1: patterns only
  aclFlags: i32;      //   what keeps patterns from it (auth/acl.ts AclFlag)
  userLen: i32;       //   its user name's length (the name is kept in auth/acl.ts)
  pid: u32;           // its id in the persistence file (0: not written there: persist/pids.ts)
}

// @ts-ignore: decorator
@inline const ID_OFFSET: usize = offsetof<Session>();
// @ts-ignore: decorator
@inline const SESSION_STRIDE: usize = (ID_OFFSET + <usize>CLIENT_ID_MAX + 7) & ~7;

const sessions: Pool = poolDescriptor();
const SESSION_BASE = memory.data(MAX_SESSIONS * <i32>SESSION_STRIDE, 8);

export function sessionsInit(): void {
  poolInit(sessions, SESSION_BASE, SESSION_STRIDE, MAX_SESSIONS);
}

// @ts-ignore: decorator
@inline export function session(i: i32): Session {
  return changetype<Session>(SESSION_BASE + <usize>i * SESSION_STRIDE);
}

// @ts-ignore: decorator
@inline export function sessionId(i: i32): usize { return SESSION_BASE + <usize>i * SESSION_STRIDE + ID_OFFSET; }

export function sessionsInUse(): i32 { return sessions.used; }
/** "client ID", or "bridge NAME" for a bridge's session, into the log line being built. */
export function logSessionName(i: i32): void {
  const ss = session(i);
  if (isBridgeSession(i)) { logText("bridge "); logBytes(sessionId(i) + 1, ss.idLen - 1); }
  else { logText("client "); logBytes(sessionId(i), ss.idLen); }
}

/** A bridge's local session (bridge/link.ts): its id starts with a zero byte, which no
 *  client's id may hold [MQTT-1.5.4-2], so no client can take it over. */
export function isBridgeSession(i: i32): bool {
  return session(i).idLen > 0 && load<u8>(sessionId(i)) == 0;
}
/** Rows [0, high) have been used at least once: the range `tick` scans for expiry. */
export function sessionsHighWater(): i32 { return sessions.high; }
export function sessionTableBytes(): i32 { return MAX_SESSIONS * <i32>SESSION_STRIDE; }

function idHash(ptr: usize, len: i32): u32 {
  let h: u32 = 2166136261;
  for (let i = 0; i < len; i++) { h ^= load<u8>(ptr + <usize>i); h *= 16777619; }
  return h;
}

/** The session with this client id, or -1. */
export function findSession(id: usize, len: i32): i32 {
  const h = idHash(id, len);
  for (let i = 0, n = sessions.high; i < n; i++) {
    const s = session(i);
    if (s.used == 0 || s.idHash != h || s.idLen != len) continue;
    if (memory.compare(sessionId(i), id, <usize>len) == 0) return i;
  }
  return -1;
}

/** A new empty session for this client id, or -1 when the table is full. */
export function createSession(id: usize, len: i32): i32 {
  const i = poolAlloc(sessions);
  if (i < 0) return -1;
  const s = session(i);
  s.used = 1; s.conn = -1; s.expiry = 0; s.expiresAt = 0;
  s.aclSection = 0; s.aclFlags = 1; s.userLen = 0;
  s.will = -1; s.willDelay = 0; s.willAt = 0;
  s.subs = -1; s.subCount = 0;
  s.queueHead = -1; s.queueTail = -1; s.queued = 0; s.inflight = 0; s.inflightTail = -1; s.wrapped = 0;
  s.nextPacketId = 0; s.received = 0;
  s.idLen = len; s.idHash = idHash(id, len);
  s.matchEpoch = 0; s.matchQos = 0; s.matchRetain = 0; s.matchIds = -1; s.dropped = 0; s.pid = 0;
  memory.copy(sessionId(i), id, <usize>len);
  return i;
}

/** Release the row; the caller has already removed subscriptions and deliveries. */
export function freeSession(i: i32): void {
  if (PERSISTENCE && restoring) pidForget(session(i).pid);
  session(i).used = 0;
  poolFree(sessions, i);
}
