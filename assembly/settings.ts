// Limits the host may set at run time, each within the board's compile-time one,
// through `init` and `configure` (docs/ABI.md). Every one has a default here, a
// command-line flag in the host, a log line when hit and a counter (stats.ts).

import { PACKET_MAX, MAX_CONNECTIONS, INFLIGHT_MAX, QUEUE_MAX, BACKLOG_MAX, CONNECT_TIMEOUT_MS } from "./config";

export const enum Setting {
  MaxKeepAlive = 1,       // s; 0 = whatever the client asks (MQTT 5 clients are told the cap)
  ConnectTimeout = 2,     // ms a new connection has to send CONNECT
  MaxInflight = 3,        // unacknowledged QoS 1/2 PUBLISHes towards one client (≤ INFLIGHT_MAX)
  MaxQueued = 4,          // QoS 1/2 messages queued or in flight per session (≤ QUEUE_MAX)
  MaxConnections = 5,     // network connections (≤ MAX_CONNECTIONS)
  MaxBacklog = 6,         // bytes waiting for a subscriber before QoS 0 is dropped (≤ BACKLOG_MAX)
  MaxInputBuffer = 7,     // bytes of incomplete packets the host holds for all connections together
  StallTimeout = 8,       // ms a subscriber may take no bytes and acknowledge nothing before it is stalled
}

/** Largest packet accepted, whole packet. */
export let maxPacketSize: i32 = PACKET_MAX;
export let maxKeepAlive: i32 = 0;
export let connectTimeoutMs: f64 = CONNECT_TIMEOUT_MS;
export let maxInflight: i32 = INFLIGHT_MAX;
export let maxQueued: i32 = QUEUE_MAX;
export let maxConnections: i32 = MAX_CONNECTIONS;
export let maxBacklog: i32 = BACKLOG_MAX;
export let maxInputBuffer: f64 = 64 * 1024 * 1024;
export let stallTimeoutMs: f64 = 5000;

export function setMaxPacketSize(v: i32): void { maxPacketSize = v; }

function clamp(v: f64, lo: f64, hi: f64): f64 { return v < lo ? lo : v > hi ? hi : v; }

/** Returns the value in force (clamped to the board), or -1 for an unknown setting.
 *  A negative `value` only reads the setting. */
export function configure(key: i32, value: f64): f64 {
  if (value < 0) {
    switch (key) {
      case Setting.MaxKeepAlive: return maxKeepAlive;
      case Setting.ConnectTimeout: return connectTimeoutMs;
      case Setting.MaxInflight: return maxInflight;
      case Setting.MaxQueued: return maxQueued;
      case Setting.MaxConnections: return maxConnections;
      case Setting.MaxBacklog: return maxBacklog;
      case Setting.MaxInputBuffer: return maxInputBuffer;
      case Setting.StallTimeout: return stallTimeoutMs;
    }
    return -1;
  }
  switch (key) {
    case Setting.MaxKeepAlive: maxKeepAlive = <i32>clamp(value, 0, 65535); return maxKeepAlive;
    case Setting.ConnectTimeout: connectTimeoutMs = clamp(value, 100, 3600000); return connectTimeoutMs;
    case Setting.MaxInflight: maxInflight = <i32>clamp(value, 1, INFLIGHT_MAX); return maxInflight;
    case Setting.MaxQueued: maxQueued = <i32>clamp(value, 1, QUEUE_MAX); return maxQueued;
    case Setting.MaxConnections: maxConnections = <i32>clamp(value, 1, MAX_CONNECTIONS); return maxConnections;
    case Setting.MaxBacklog: maxBacklog = <i32>clamp(value, 1024, BACKLOG_MAX); return maxBacklog;
    // (a packet larger than the budget is still let in when nobody else holds any: flow/input.ts)
    case Setting.MaxInputBuffer: maxInputBuffer = clamp(value, 1024, 4294967295); return maxInputBuffer;
    case Setting.StallTimeout: stallTimeoutMs = clamp(value, 100, 3600000); return stallTimeoutMs;
  }
  return -1;
}
