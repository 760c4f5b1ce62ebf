// PINGREQ (§3.12) in, PINGRESP (§3.13) out: no variable header, no payload.

import { writerStart, writeU8, flush } from "./writer";

export function sendPingresp(conn: i32): void {
  writerStart(conn);
  writeU8(0xD0);
  writeU8(0);
  flush();
}
