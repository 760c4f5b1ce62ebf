// SUBACK (§3.9): packet id, [v5 empty properties], one return/reason code per
// requested filter, in order [MQTT-3.8.4-6]. Long ones are flushed in pieces.

import { writerStart, writeU8, writeU16, writeVarint, flush, ensure } from "./writer";

export const SUBACK_FAILURE: i32 = 0x80;       // 3.1.1 failure / 5.0 unspecified error
export const SUBACK_FILTER_INVALID: i32 = 0x8F;
export const SUBACK_QUOTA_EXCEEDED: i32 = 0x97;
export const SUBACK_NOT_AUTHORIZED: i32 = 0x87;

/** Start a SUBACK for `count` filters; then `subackCode` for each, then `subackEnd`. */
export function subackBegin(conn: i32, packetId: i32, count: i32, v5: bool): void {
  writerStart(conn);
  writeU8(0x90);
  writeVarint(2 + (v5 ? 1 : 0) + count);
  writeU16(packetId);
  if (v5) writeU8(0); // no properties
}

export function subackCode(code: i32): void { ensure(1); writeU8(code); }

export function subackEnd(): void { flush(); }
