// The input budget (--max-input-buffer): the bytes of incomplete packets the host may
// hold for all connections together. A connection whose next packet is incomplete
// reserves the packet's whole size (known from its fixed header) before the host
// buffers it; a reservation that does not fit waits, with the connection unread, and
// waits are granted (lowest connection id first) as others complete their packets. A
// packet larger than the whole budget is let in when nobody else holds any, so someone
// always makes progress, and the host's memory for incomplete packets never passes the
// budget or one packet (plus what one read brought to connections now waiting).

import { LogLevel } from "../host";
import { maxInputBuffer } from "../settings";
import { connection, connectionsHighWater, ConnState } from "../session/connections";
import { pauseConnection, unpauseConnection, Pause } from "./holds";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logInt, logEnd } from "../log";

let reservedTotal: f64 = 0;
let waiting = 0;
let pauses: i32 = 0;

/** Whether `bytes` more fit, for a connection holding `holding` now. */
// @ts-ignore: decorator
@inline function fits(holding: u32, bytes: u32): bool {
  const others = reservedTotal - <f64>holding;
  return others == 0 || others + <f64>bytes <= maxInputBuffer;
}

function give(conn: i32, bytes: u32): void {
  const c = connection(conn);
  reservedTotal += <f64>bytes - <f64>c.reserved;
  c.reserved = bytes;
}

/** After `feed`: `needed` is the size of the incomplete packet left (0: none, or its
 *  header is not whole yet). False when the connection must wait for room. */
export function reserveInput(conn: i32, needed: u32): bool {
  const c = connection(conn);
  if (needed == c.reserved) return true;
  if (needed < c.reserved || (waiting == 0 && fits(c.reserved, needed))) {
    give(conn, needed);
    if (needed < c.reserved || waiting > 0) grantWaiting();
    return true;
  }
  if ((c.paused & Pause.Budget) == 0) {
    c.wantReserve = needed;
    waiting++;
    statAdd(Stat.InputBudgetPauses);
    // the first time and every 1000th after it, so a flood cannot flood the log
    if (pauses++ % 1000 == 0 && logOn(LogLevel.Warning)) {
      logStart();
      logText("input budget of ");
      logInt(<i64>maxInputBuffer);
      logText(" bytes reached: connection ");
      logInt(conn);
      logText(" waits to buffer a packet of ");
      logInt(needed);
      logText(" bytes (");
      logInt(pauses);
      logText(" times so far)");
      logEnd(LogLevel.Warning);
    }
    pauseConnection(conn, Pause.Budget);
  }
  return false;
}

/** The connection is gone: its reservation and its wait end. */
export function releaseInput(conn: i32): void {
  const c = connection(conn);
  if ((c.paused & Pause.Budget) != 0) waiting--;
  c.wantReserve = 0;
  if (c.reserved != 0) {
    give(conn, 0);
    grantWaiting();
  }
}

/** Grant waiting reservations, lowest connection id first, while they fit. */
function grantWaiting(): void {
  for (let i = 0, n = connectionsHighWater(); i < n && waiting > 0; i++) {
    const c = connection(i);
    if ((c.paused & Pause.Budget) == 0) continue;
    if (c.state == ConnState.Closing || c.state == ConnState.Free) continue;
    if (!fits(c.reserved, c.wantReserve)) return;
    give(i, c.wantReserve);
    c.wantReserve = 0;
    waiting--;
    unpauseConnection(i, Pause.Budget);
  }
}

/** Bytes reserved now, all connections together (a counter for tests and logs). */
export function inputReserved(): f64 { return reservedTotal; }
