// The connection table: one row per open network connection. The row index is the
// connection id the host uses in every call. What the client told us in CONNECT
// about itself (MQTT 5 limits) lives here; what outlives the connection lives in
// its session.
//
//   Connection row (MAX_CONNECTIONS rows)
//   ┌──────┬───────┬───────┬─────────┬────────────┬──────────────┬─────────────────────┐
//   │ link │ state │ level │ session │ receiveMax │ maxPacketOut │ alias state ...     │
//   ├──────┴───────┴───────┴─────────┴────────────┴──────────────┴─────────────────────┤
//   │ keepAliveMs │ deadline │ flow control: paused, congestion, replays, input reserved │
//   └─────────────┴──────────┴───────────────────────────────────────────────────────────┘

import { MAX_CONNECTIONS, INFLIGHT_MAX } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";

export const enum ConnState {
  Free = 0,
  AwaitingConnect = 1, // accepted, CONNECT not yet received
  Connected = 2,       // CONNECT accepted, bound to a session
  Closing = 3,         // the core asked the host to close it; input is ignored
  Authenticating = 4,  // MQTT 5 enhanced authentication in progress (AUTH exchange)
  Dialing = 5,         // a bridge's outbound connection: the host is connecting it
  BridgeConnecting = 6,// a bridge's CONNECT is sent: CONNACK awaited
}

// @ts-ignore: decorator
@unmanaged @final export class Connection {
  link: i32;
  state: i32;        // ConnState
  level: i32;        // protocol level: 3 (MQTT 3.1), 4 (3.1.1), 5
  session: i32;      // session row, -1 before CONNECT and after close
  receiveMax: i32;   // unacknowledged QoS 1/2 PUBLISHes the client accepts (its Receive Maximum)
  maxPacketOut: u32; // largest packet the client accepts (its Maximum Packet Size)
  aliasOutMax: i32;  // topic aliases we may use towards it (its Topic Alias Maximum, capped)
  aliasOutCount: i32;// aliases assigned so far
  aliasOutNext: i32; // next alias to reassign once all are used
  aliasInMask: u32;  // bit a-1 set: the client has defined topic alias a
  problemInfo: i32;  // Request Problem Information (1: reason strings allowed)
  keepAliveMs: f64;  // 0 = no keep-alive
  deadline: f64;     // close when `now` passes this (0 = never)
  // ---- flow control (flow/): see flow/holds.ts, flow/input.ts, flow/replay.ts ----
  paused: i32;       // Pause bits: why the host was asked not to read this connection
  heldAt: f64;       // Pause.Hold: since when
  congestion: i32;   // Congestion bits: why this subscriber holds its publishers
  congestedAt: f64;  // since when it holds them (0: it holds nobody)
  progressAt: f64;   // last time it took bytes or acknowledged something
  lastBacklog: u32;  // its backlog when last looked at (progress = it went down)
  lagging: i32;      // 1: stayed over the hold line past the grace; not waited for until drained
  stalled: i32;      // 1: took nothing for the stall timeout; not waited for until it takes something
  replays: i32;      // its subscriptions with a retained replay still going
  reserved: u32;     // bytes of the input budget reserved for its incomplete packet
  wantReserve: u32;  // Pause.Budget: the reservation it waits for
  listener: i32;     // the listener it came through (text(16 + listener))
  bridge: i32;       // the bridge whose outbound connection it is (bridge/), -1: a client's
  fromBridge: i32;   // 1: the client is another broker's bridge (level 0x84, try_private)
}

const connections: Pool = poolDescriptor();
const CONNECTION_BASE = memory.data(MAX_CONNECTIONS * offsetof<Connection>(), 8);

export function connectionsInit(): void {
  poolInit(connections, CONNECTION_BASE, offsetof<Connection>(), MAX_CONNECTIONS);
}

// @ts-ignore: decorator
@inline export function connection(i: i32): Connection {
  return changetype<Connection>(CONNECTION_BASE + <usize>i * offsetof<Connection>());
}

export function connectionsInUse(): i32 { return connections.used; }
/** Rows [0, highWater) have been used at least once: the range `tick` scans. */
export function connectionsHighWater(): i32 { return connections.high; }
export function connectionTableBytes(): i32 { return MAX_CONNECTIONS * offsetof<Connection>(); }

export function openConnection(deadline: f64): i32 {
  const i = poolAlloc(connections);
  if (i < 0) return -1;
  const c = connection(i);
  c.state = ConnState.AwaitingConnect; c.level = 0; c.session = -1;
  c.receiveMax = INFLIGHT_MAX; c.maxPacketOut = 0xFFFFFFFF;
  c.aliasOutMax = 0; c.aliasOutCount = 0; c.aliasOutNext = 0; c.aliasInMask = 0;
  c.problemInfo = 1;
  c.keepAliveMs = 0; c.deadline = deadline;
  c.paused = 0; c.heldAt = 0; c.congestion = 0; c.congestedAt = 0; c.progressAt = 0; c.lastBacklog = 0;
  c.lagging = 0; c.stalled = 0; c.replays = 0; c.reserved = 0; c.wantReserve = 0; c.listener = 0; c.bridge = -1; c.fromBridge = 0;
  return i;
}

export function freeConnection(i: i32): void {
  connection(i).state = ConnState.Free;
  poolFree(connections, i);
}

/** Whether `i` is a connection id the host may legitimately pass. */
export function validConnection(i: i32): bool {
  return i >= 0 && i < connections.high && connection(i).state != ConnState.Free;
}
