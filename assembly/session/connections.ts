// The connection table: one row per open network connection. The row index is the
// connection id the host uses in every call.
//
//   Connection row (MAX_CONNECTIONS rows)
//   ┌──────┬───────┬───────┬─────────┬──────┬─────────────┬──────────┐
//   │ link │ state │ level │ session │ will │ keepAliveMs │ deadline │
//   └──────┴───────┴───────┴─────────┴──────┴─────────────┴──────────┘

import { MAX_CONNECTIONS } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";

export const enum ConnState {
  Free = 0,
  AwaitingConnect = 1, // accepted, CONNECT not yet received
  Connected = 2,       // CONNECT accepted, bound to a session
  Closing = 3,         // the core asked the host to close it; input is ignored
}

// @ts-ignore: decorator
@unmanaged @final export class Connection {
  link: i32;
  state: i32;        // ConnState
  level: i32;        // protocol level: 3 (MQTT 3.1), 4 (3.1.1), 5
  session: i32;      // session row, -1 before CONNECT and after close
  will: i32;         // stored will message, -1 if none
  keepAliveMs: f64;  // 0 = no keep-alive
  deadline: f64;     // close when `now` passes this (0 = never)
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

export function openConnection(deadline: f64): i32 {
  const i = poolAlloc(connections);
  if (i < 0) return -1;
  const c = connection(i);
  c.state = ConnState.AwaitingConnect; c.level = 0; c.session = -1; c.will = -1;
  c.keepAliveMs = 0; c.deadline = deadline;
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
