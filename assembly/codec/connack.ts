// CONNACK (§3.2): session present flag and return code.

import { writeU8, flush } from "./writer";

export const enum ConnackCode {
  Accepted = 0, UnacceptableVersion = 1, IdentifierRejected = 2, ServerUnavailable = 3,
  BadUsernameOrPassword = 4, NotAuthorized = 5,
}

export function sendConnack(conn: i32, sessionPresent: bool, code: i32): void {
  writeU8(0x20);
  writeU8(2);
  writeU8(sessionPresent ? 1 : 0);
  writeU8(code);
  flush(conn);
}
