// The bridges: one row per `connection NAME` section of the config file, and one per
// `topic` line, as the config file sets them (configfile.ts calls the setters here while
// it reads a section). Texts live in one arena filled while the file is read, so a row
// is numbers only. What a link does at run time is in link.ts.
//
//   BRIDGES (MAX_BRIDGES rows)                           BRIDGE_TOPICS (MAX_BRIDGE_TOPICS rows)
//   ┌──────────────────────────────────────────────┐      ┌────────┬───────────┬─────┬─────────┐
//   │ settings: protocol, clean, keep-alive, ...   │      │ bridge │ direction │ qos │ pattern │
//   │ texts: name, addresses, client id, user, ... │      │        │           │     │ local prefix, remote prefix │
//   │ run time: state, conn, session, backoff, ... │      └────────┴───────────┴─────┴─────────┘
//   └──────────────────────────────────────────────┘

import { BRIDGE, MAX_BRIDGES, MAX_BRIDGE_TOPICS, BRIDGE_TEXT_BYTES } from "../config";

/** The texts of a bridge (each an offset and a length in the arena). */
export const enum BridgeText {
  Name = 0, Addresses = 1, ClientId = 2, Username = 3, Password = 4, NotificationTopic = 5,
  Cafile = 6, Certfile = 7, Keyfile = 8, Capath = 9, LocalClientId = 10,
}
// @ts-ignore: decorator
@inline const TEXTS: i32 = 11;

export const enum Direction { Out = 1, In = 2, Both = 3 }

/** What a link is doing (link.ts). */
export const enum LinkState { Idle = 0, Dialing = 1, Connecting = 2, Up = 3, Waiting = 4, Stopped = 5 }

// @ts-ignore: decorator
@unmanaged @final export class Bridge {
  // ---- from the config file ----
  protocol: i32;       // 4 (mqttv311) or 5 (mqttv50)
  cleanSession: i32;   // cleansession (default false)
  tryPrivate: i32;     // try_private (default true): the 3.1.1 bridge bit
  notifications: i32;  // notifications (default true)
  notifyLocalOnly: i32;// notifications_local_only
  keepAlive: i32;      // keepalive_interval, s (default 60)
  restartBase: i32;    // restart_timeout BASE [CAP], s: the first wait after a failure,
  restartCap: i32;     //   doubled up to CAP (0: always BASE)
  once: i32;           // start_type once: no new attempt after the link ends
  insecure: i32;       // bridge_insecure: the certificate's host name is not checked
  roundRobin: i32;     // round_robin: the next attempt tries the next address (else the first again)
  outgoingRetain: i32; // bridge_outgoing_retain (default true)
  maxQueued: i32;      // bridge_max_queued: QoS 1/2 messages kept for upstream while the link is down (0: the default)
  topics: i32;         // its first row in BRIDGE_TOPICS
  topicCount: i32;
  addressCount: i32;
  // ---- at run time (link.ts) ----
  state: i32;          // LinkState
  conn: i32;           // its connection while dialing, connecting or up; -1 otherwise
  session: i32;        // its local session (the queue of what goes upstream)
  address: i32;        // the address tried now (index in its addresses)
  wait: i32;           // the wait before the next attempt, s (backoff)
  attempts: i32;       // failed attempts since it was last up
  subsAcked: i32;      // SUBACKs still awaited after it came up
  probe: i32;          // round_robin false, up on a backup: a connection that tries the first address, else -1
  probeAt: f64;        //   when to try it next
  backToFirst: i32;    //   it answered: the link is being moved back to the first address
  noRetain: i32;       // the upstream's CONNACK said Retain Available 0: no RETAIN flag upstream
  nextAt: f64;         // Waiting: when to dial again
  pingAt: f64;         // Up: when to send the next PINGREQ
  upSince: f64;        // Up: since when
}

// @ts-ignore: decorator
@inline const ROW: i32 = (offsetof<Bridge>() + 7) & ~7;
const BRIDGES = memory.data(BRIDGE ? MAX_BRIDGES * ROW : 8, 8);
/** Per bridge, TEXTS pairs (offset, length) into the arena. */
const TEXT_ROWS = memory.data(BRIDGE ? MAX_BRIDGES * TEXTS * 8 : 8, 4);
const ARENA = memory.data(BRIDGE ? BRIDGE_TEXT_BYTES : 8, 8);
let arenaUsed = 0;

/** `topic` rows: bridge, direction, qos, then (offset, length) of pattern, local and remote prefix. */
// @ts-ignore: decorator
@inline const TOPIC_ROW: i32 = 36;
const TOPICS = memory.data(BRIDGE ? MAX_BRIDGE_TOPICS * TOPIC_ROW : 8, 4);
let topicsUsed = 0;

/** Bridges the config file configured. */
export let bridgeCount = 0;

// @ts-ignore: decorator
@inline export function bridge(k: i32): Bridge { return changetype<Bridge>(BRIDGES + <usize>(k * ROW)); }

/** A config file is read again from its start: no bridges. */
export function bridgesReset(): void {
  bridgeCount = 0;
  arenaUsed = 0;
  topicsUsed = 0;
}

/** `connection NAME`: a new bridge with Mosquitto's defaults; false when the board holds no more. */
export function addBridge(name: usize, len: i32): bool {
  if (bridgeCount >= MAX_BRIDGES) return false;
  const k = bridgeCount;
  memory.fill(BRIDGES + <usize>(k * ROW), 0, <usize>ROW);
  memory.fill(TEXT_ROWS + <usize>(k * TEXTS * 8), 0, <usize>(TEXTS * 8));
  if (!setBridgeText(k, BridgeText.Name, name, len)) return false;
  const b = bridge(k);
  b.protocol = 4; b.tryPrivate = 1; b.notifications = 1; b.keepAlive = 60;
  b.restartBase = 5; b.restartCap = 30; b.outgoingRetain = 1; // Mosquitto 2: backoff from 5 s up to 30 s
  b.topics = topicsUsed; b.conn = -1; b.session = -1; b.probe = -1;
  bridgeCount++;
  return true;
}

/** Set text `t` of bridge `k`; false when the arena is full. */
export function setBridgeText(k: i32, t: BridgeText, p: usize, len: i32): bool {
  if (arenaUsed + len > BRIDGE_TEXT_BYTES) return false;
  memory.copy(ARENA + <usize>arenaUsed, p, <usize>len);
  const at = TEXT_ROWS + <usize>((k * TEXTS + <i32>t) * 8);
  store<i32>(at, arenaUsed);
  store<i32>(at, len, 4);
  arenaUsed += len;
  return true;
}

/** Text `t` of bridge `k`: its bytes (length in `textLen`). */
export let textLen = 0;
export function bridgeText(k: i32, t: BridgeText): usize {
  const at = TEXT_ROWS + <usize>((k * TEXTS + <i32>t) * 8);
  textLen = load<i32>(at, 4);
  return ARENA + <usize>load<i32>(at);
}
export function bridgeTextLen(k: i32, t: BridgeText): i32 {
  return load<i32>(TEXT_ROWS + <usize>((k * TEXTS + <i32>t) * 8), 4);
}

/** A `topic` line of the last bridge; false when the board holds no more. */
export function addBridgeTopic(direction: Direction, qos: i32, pattern: usize, patternLen: i32,
                               local: usize, localLen: i32, remote: usize, remoteLen: i32): bool {
  if (topicsUsed >= MAX_BRIDGE_TOPICS || arenaUsed + patternLen + localLen + remoteLen > BRIDGE_TEXT_BYTES) return false;
  const row = TOPICS + <usize>(topicsUsed * TOPIC_ROW);
  store<i32>(row, bridgeCount - 1);
  store<i32>(row, <i32>direction, 4);
  store<i32>(row, qos, 8);
  storeText(row + 12, pattern, patternLen);
  storeText(row + 20, local, localLen);
  storeText(row + 28, remote, remoteLen);
  topicsUsed++;
  bridge(bridgeCount - 1).topicCount++;
  return true;
}

function storeText(at: usize, p: usize, len: i32): void {
  memory.copy(ARENA + <usize>arenaUsed, p, <usize>len);
  store<i32>(at, arenaUsed);
  store<i32>(at, len, 4);
  arenaUsed += len;
}

// ---- a topic row's fields ----
// @ts-ignore: decorator
@inline function topicRow(i: i32): usize { return TOPICS + <usize>(i * TOPIC_ROW); }
export function topicDirection(i: i32): i32 { return load<i32>(topicRow(i), 4); }
export function topicQos(i: i32): i32 { return load<i32>(topicRow(i), 8); }
export function topicPattern(i: i32): usize { textLen = load<i32>(topicRow(i), 16); return ARENA + <usize>load<i32>(topicRow(i), 12); }
export function topicLocal(i: i32): usize { textLen = load<i32>(topicRow(i), 24); return ARENA + <usize>load<i32>(topicRow(i), 20); }
export function topicRemote(i: i32): usize { textLen = load<i32>(topicRow(i), 32); return ARENA + <usize>load<i32>(topicRow(i), 28); }

/** Bytes of linear memory the bridge tables take (budget.ts). */
export function bridgeTableBytes(): i32 {
  return BRIDGE ? MAX_BRIDGES * ROW + MAX_BRIDGES * TEXTS * 8 + BRIDGE_TEXT_BYTES + MAX_BRIDGE_TOPICS * TOPIC_ROW : 0;
}
