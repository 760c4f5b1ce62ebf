// SUBACK (§3.9): packet id and one return code per requested filter, in order [MQTT-3.8.4-6].

import { writeU8, writeU16, writeVarint, flush } from "./writer";

export const SUBACK_FAILURE: i32 = 0x80;

/** Start a SUBACK for `count` filters; then call `subackCode` for each, then `flush`. */
export function subackBegin(packetId: i32, count: i32): void {
  writeU8(0x90);
  writeVarint(2 + count);
  writeU16(packetId);
}

export function subackCode(code: i32): void { writeU8(code); }

export function subackEnd(conn: i32): void { flush(conn); }
