// Limits the host may set at run time (within the board's compile-time ones), through
// `init` and `configure` (docs/ABI.md).

import { PACKET_MAX } from "./config";

export const enum Setting {
  MaxKeepAlive = 1,   // seconds; 0 = whatever the client asks (MQTT 5 clients are told the cap)
}

/** Largest packet accepted, whole packet. */
export let maxPacketSize: i32 = PACKET_MAX;
export let maxKeepAlive: i32 = 0;

export function setMaxPacketSize(v: i32): void { maxPacketSize = v; }

/** Returns the value in force, or -1 for an unknown setting. */
export function configure(key: i32, value: f64): f64 {
  switch (key) {
    case Setting.MaxKeepAlive:
      maxKeepAlive = <i32>min(max(value, 0), 65535);
      return maxKeepAlive;
  }
  return -1;
}
