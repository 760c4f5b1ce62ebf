// How connections and sessions end: closing a connection (with or without its
// will), ending a session, publishing a will.

import { hostClose, CloseReason, LogLevel } from "../host";
import { connection, ConnState } from "./connections";
import { session, sessionId, freeSession } from "./clients";
import { unsubscribeAll } from "./subscriptions";
import { clearQueue } from "./queue";
import { message, copyOut, releaseMessage } from "../store/messages";
import { setRetained, clearRetained } from "../store/retained";
import { route } from "../delivery";
import { TOPIC_MAX } from "../config";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logBytes, logEnd } from "../log";

/** A topic copied out of the store, contiguous for matching. */
const TOPIC_SCRATCH = memory.data(TOPIC_MAX + 1, 8);

/** Remove a session with its subscriptions and queued deliveries. */
export function endSession(s: i32): void {
  unsubscribeAll(s);
  clearQueue(s);
  freeSession(s);
  statAdd(Stat.SessionsStored, -1);
}

/** Publish a stored will message as if its client had sent it [MQTT-3.1.2-8]. */
function publishWill(m: i32): void {
  const row = message(m);
  copyOut(m, 0, TOPIC_SCRATCH, row.topicLen);
  if (row.retain != 0) {
    if (row.payloadLen == 0) clearRetained(TOPIC_SCRATCH, row.topicLen);
    else setRetained(TOPIC_SCRATCH, row.topicLen, m);
  }
  route(TOPIC_SCRATCH, row.topicLen, 0, row.payloadLen, row.qos, m);
  statAdd(Stat.MessagesReceived);
}

function reasonText(reason: i32): string {
  switch (reason) {
    case CloseReason.Normal: return "disconnected";
    case CloseReason.ProtocolError: return "protocol error";
    case CloseReason.Malformed: return "malformed packet";
    case CloseReason.KeepAliveTimeout: return "keep-alive timeout";
    case CloseReason.TakenOver: return "session taken over by a new connection";
    case CloseReason.PacketTooLarge: return "packet too large";
    case CloseReason.ConnectTimeout: return "no CONNECT in time";
    case CloseReason.Refused: return "connection refused";
    case CloseReason.ServerShutdown: return "server shutting down";
    case CloseReason.QueueFull: return "queue full";
    case -1: return "connection lost";
  }
  return "closed";
}

/** Unbind a connection from its session: publish or discard the will, end a clean
 *  session, keep a persistent one for the client's return. `reason` -1 = the socket
 *  went away without DISCONNECT. */
export function detach(conn: i32, reason: i32): void {
  const c = connection(conn);
  const wasConnected = c.state == ConnState.Connected;
  const s = c.session;
  if (s >= 0 && logOn(reason == CloseReason.Normal ? LogLevel.Info : LogLevel.Notice)) {
    logStart();
    logText("client ");
    logBytes(sessionId(s), session(s).idLen);
    logText(" ");
    logText(reasonText(reason));
    logEnd(reason == CloseReason.Normal ? LogLevel.Info : LogLevel.Notice);
  }
  const will = c.will;
  c.will = -1;
  c.session = -1;
  if (s >= 0) {
    session(s).conn = -1;
    if (session(s).clean != 0) endSession(s);
  }
  // [MQTT-3.1.2-10] a will is discarded on DISCONNECT and published otherwise
  if (will >= 0) {
    if (reason != CloseReason.Normal) publishWill(will);
    releaseMessage(will);
  }
  if (wasConnected) statAdd(Stat.ClientsConnected, -1);
}

/** The core decides to close a connection: detach it and ask the host to close the
 *  socket. Bytes that still arrive for it are ignored until the host calls `closed`. */
export function closeConnection(conn: i32, reason: i32): void {
  const c = connection(conn);
  if (c.state == ConnState.Closing || c.state == ConnState.Free) return;
  if (reason == CloseReason.ProtocolError || reason == CloseReason.Malformed ||
      reason == CloseReason.PacketTooLarge) statAdd(Stat.ProtocolErrors);
  detach(conn, reason);
  c.state = ConnState.Closing;
  hostClose(conn, reason);
}
