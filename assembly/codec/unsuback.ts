// UNSUBACK (§3.11): packet id; in MQTT 5 also empty properties and one reason code
// per filter (0x00 success, 0x11 no subscription existed, 0x8F filter invalid).

import { writerStart, writeU8, writeU16, writeVarint, flush, ensure } from "./writer";

export const UNSUBACK_SUCCESS: i32 = 0x00;
export const UNSUBACK_NO_SUBSCRIPTION: i32 = 0x11;
export const UNSUBACK_FILTER_INVALID: i32 = 0x8F;

export function unsubackBegin(conn: i32, packetId: i32, count: i32, v5: bool): void {
  writerStart(conn);
  writeU8(0xB0);
  writeVarint(v5 ? 3 + count : 2);
  writeU16(packetId);
  if (v5) writeU8(0);
}

export function unsubackCode(code: i32): void { ensure(1); writeU8(code); }

export function unsubackEnd(): void { flush(); }
