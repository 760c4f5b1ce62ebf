// What a subscriber's progress sets going: its next QoS 1/2 deliveries, the publishers
// that waited for it, and its retained replay.

import { session } from "../session/sessions";
import { pump } from "../delivery/outbound";
import { subscriberAcked, connectionDrained } from "./holds";
import { continueReplays } from "./replay";

/** A QoS 1/2 exchange with the client on `conn` (session `s`) moved on (PUBACK, PUBREC,
 *  PUBCOMP): send what its window now allows, release the publishers held for it once
 *  its queue has room, and go on with its replay. */
export function acknowledged(conn: i32, s: i32): void {
  pump(s);
  subscriberAcked(conn, session(s).queued);
  continueReplays(conn);
}

/** The host wrote everything it had for `conn` (the `drained` export). */
export function drained(conn: i32): void {
  connectionDrained(conn);
  continueReplays(conn);
}
