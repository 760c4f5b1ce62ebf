// How connections and sessions end: closing a connection (with a DISCONNECT for an
// MQTT 5 client), publishing or discarding its will (at once or after the Will Delay
// Interval), ending a session (at once or after the Session Expiry Interval).

import { hostClose, CloseReason, LogLevel } from "../host";
import { wsClosing } from "../ws/output";
import { WEBSOCKETS, PERSISTENCE } from "../config";
import { journalWillDone, journalSessionEnd, journalOffline } from "../persist/journal";
import { now } from "../clock";
import { connection, ConnState } from "./connections";
import { session, sessionId, freeSession, isBridgeSession } from "./sessions";
import { unsubscribeAll } from "./subscriptions";
import { clearQueue } from "./queue";
import { forgetReceived } from "./received";
import { message, copyOut, releaseMessage } from "../store/messages";
import { setRetained, clearRetained } from "../store/retained";
import { route } from "../delivery/route";
import { endReplays } from "../flow/replay";
import { connectionGone } from "../flow/holds";
import { sendDisconnect, DisconnectReason } from "../codec/disconnect";
import { ROUTE_TOPIC } from "../memory/scratch";
import { DecodeError } from "../codec/reader";
import { statAdd, Stat } from "../stats";
import { connectionMessages } from "../settings";
import { aclLoaded, aclAllows, Access } from "../auth/acl";
import { logOn, logStart, logText, logBytes, logEnd } from "../log";

/** Publish a stored will message as if its client had sent it [MQTT-3.1.2-8]; the
 *  Message Expiry Interval of a will starts now. */
function publishWill(s: i32): void {
  const ss = session(s);
  const m = ss.will;
  ss.will = -1;
  ss.willAt = 0;
  const row = message(m);
  if (row.expiresAt < 0) {
    row.expiresAt = now + -row.expiresAt; // stored as -interval (ms)
    // the persistence file has it as a will (an interval): the records that name it from
    // now on (retained, queued) name a new Message record, with the time it expires
    row.pid = 0;
  }
  copyOut(m, 0, ROUTE_TOPIC, row.topicLen);
  // the ACL file at the time it is published (Mosquitto 2): a will its client may not
  // write goes nowhere
  if (aclLoaded && !aclAllows(s, ROUTE_TOPIC, row.topicLen, Access.Write)) {
    statAdd(Stat.DeniedPublishes);
    if (logOn(LogLevel.Notice)) {
      logStart(); logText("will of client "); logBytes(sessionId(s), ss.idLen);
      logText(" not published: the ACL file does not let it write to the topic"); logEnd(LogLevel.Notice);
    }
    if (PERSISTENCE) journalWillDone(s);
    releaseMessage(m);
    return;
  }
  if (row.retain != 0) {
    if (row.payloadLen == 0) clearRetained(ROUTE_TOPIC, row.topicLen);
    else setRetained(ROUTE_TOPIC, row.topicLen, m);
  }
  route(ROUTE_TOPIC, row.topicLen, 0, row.propsLen, 0, row.payloadLen, row.qos, row.retain != 0,
        row.expiresAt, m, s);
  statAdd(Stat.MessagesReceived);
  // the will's records go after the Retain and Queue records that name its message: read
  // back, the WillDone drops the session's reference, which may be the last one
  if (PERSISTENCE) journalWillDone(s);
  releaseMessage(m);
}

/** Drop a will without publishing it. */
export function discardWill(s: i32): void {
  const ss = session(s);
  if (ss.will < 0) return;
  if (PERSISTENCE) journalWillDone(s);
  releaseMessage(ss.will);
  ss.will = -1;
  ss.willAt = 0;
}

/** Remove a session with its subscriptions and queued deliveries. A will still
 *  waiting for its delay is published now: the session ending comes first. */
export function endSession(s: i32): void {
  if (session(s).will >= 0) publishWill(s);
  if (PERSISTENCE) journalSessionEnd(s); // its subscriptions and deliveries go with it
  unsubscribeAll(s);
  clearQueue(s);
  forgetReceived(s);
  freeSession(s);
  statAdd(Stat.SessionsStored, -1);
}

function reasonText(reason: i32): string {
  switch (reason) {
    case CloseReason.Normal: return "disconnected";
    case CloseReason.ProtocolError: return "closed: protocol error";
    case CloseReason.Malformed: return "closed: malformed packet";
    case CloseReason.KeepAliveTimeout: return "closed: keep-alive timeout";
    case CloseReason.TakenOver: return "closed: session taken over by a new connection";
    case CloseReason.PacketTooLarge: return "closed: packet too large";
    case CloseReason.ConnectTimeout: return "closed: no CONNECT in time";
    case CloseReason.Refused: return "refused";
    case CloseReason.ServerShutdown: return "closed: server shutting down";
    case CloseReason.QueueFull: return "closed: queue full";
    case CloseReason.TopicAliasInvalid: return "closed: invalid topic alias";
    case CloseReason.ReceiveMaximumExceeded: return "closed: receive maximum exceeded";
    case CloseReason.NotAuthorized: return "closed: not authorized (its user left the password file)";
    case CloseReason.RetainNotSupported: return "closed: retained message refused (retain_available false)";
    case CloseReason.WebSocketClosed: if (WEBSOCKETS) return "closed: WebSocket closed"; break;
    case CloseReason.WebSocketError: if (WEBSOCKETS) return "closed: WebSocket protocol error"; break;
    case CloseReason.HttpServed: if (WEBSOCKETS) return "closed: HTTP request answered"; break;
    case CloseReason.Lost: return "connection lost";
  }
  return "closed";
}

/** The MQTT 5 DISCONNECT reason code for a close the server decides, or -1 for none. */
function disconnectCode(reason: i32): i32 {
  switch (reason) {
    case CloseReason.ProtocolError: return DisconnectReason.ProtocolError;
    case CloseReason.Malformed: return DisconnectReason.Malformed;
    case CloseReason.KeepAliveTimeout: return DisconnectReason.KeepAliveTimeout;
    case CloseReason.TakenOver: return DisconnectReason.SessionTakenOver;
    case CloseReason.PacketTooLarge: return DisconnectReason.PacketTooLarge;
    case CloseReason.ServerShutdown: return DisconnectReason.ShuttingDown;
    case CloseReason.QueueFull: return DisconnectReason.QuotaExceeded;
    case CloseReason.TopicAliasInvalid: return DisconnectReason.TopicAliasInvalid;
    case CloseReason.ReceiveMaximumExceeded: return DisconnectReason.ReceiveMaximumExceeded;
    case CloseReason.NotAuthorized: return DisconnectReason.NotAuthorized;
    case CloseReason.RetainNotSupported: return DisconnectReason.RetainNotSupported;
  }
  return -1;
}

/** Unbind a connection from its session. The will is discarded after a normal
 *  DISCONNECT [MQTT-3.1.2-10] unless `publishWill` (MQTT 5 reason 0x04), and published
 *  otherwise: now, or after its delay while the session lives [MQTT-3.1.3-9]. A
 *  session with expiry 0 ends now; others wait for the client [MQTT-3.1.2-23]. */
export function detach(conn: i32, reason: i32, publishWill: bool): void {
  const c = connection(conn);
  const wasConnected = c.state == ConnState.Connected;
  const s = c.session;
  c.session = -1;
  if (wasConnected) statAdd(Stat.ClientsConnected, -1);
  if (s < 0) return;
  const ss = session(s);
  const level = reason == CloseReason.Normal || reason == CloseReason.Lost ? LogLevel.Info : LogLevel.Notice;
  // (a bridge's link says its own lines: bridge/link.ts)
  if (logOn(level) && (level != LogLevel.Info || connectionMessages != 0) && !isBridgeSession(s)) {
    logStart();
    logText("client ");
    logBytes(sessionId(s), ss.idLen);
    logText(" ");
    logText(reasonText(reason));
    logEnd(level);
  }
  endReplays(conn, s);
  ss.conn = -1;
  if (ss.will >= 0) {
    if (!publishWill) discardWill(s);
    else if (ss.willDelay == 0 || ss.expiry == 0) publishWillNow(s);
    else ss.willAt = now + <f64>ss.willDelay * 1000;
  }
  if (ss.expiry == 0) endSession(s);
  else {
    ss.expiresAt = ss.expiry == 0xFFFFFFFF ? 0 : now + <f64>ss.expiry * 1000;
    if (PERSISTENCE) journalOffline(s);
  }
}

export function publishWillNow(s: i32): void { publishWill(s); }

/** A packet that failed to decode: Malformed or Protocol Error, as the decoder said. */
export function closeForDecodeError(conn: i32, error: i32): void {
  closeConnection(conn, error == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError);
}

/** The core decides to close a connection: tell an MQTT 5 client why, detach it, and
 *  ask the host to close the socket. Bytes that still arrive for it are ignored until
 *  the host calls `closed`. */
export function closeConnection(conn: i32, reason: i32): void {
  const c = connection(conn);
  if (c.state == ConnState.Closing || c.state == ConnState.Free) return;
  if (reason == CloseReason.ProtocolError || reason == CloseReason.Malformed ||
      reason == CloseReason.PacketTooLarge || reason == CloseReason.TopicAliasInvalid ||
      reason == CloseReason.ReceiveMaximumExceeded || reason == CloseReason.WebSocketError) statAdd(Stat.ProtocolErrors);
  // [MQTT-4.13.2-1] a DISCONNECT with a reason code, only once CONNACK was sent
  if (c.level == 5 && c.state == ConnState.Connected) {
    const code = disconnectCode(reason);
    if (code >= 0) sendDisconnect(conn, code);
  }
  if (WEBSOCKETS) wsClosing(conn, reason); // a WebSocket's close frame goes last
  // a server shutting down is not the client failing: its will is not published
  detach(conn, reason, reason != CloseReason.Normal && reason != CloseReason.ServerShutdown);
  c.state = ConnState.Closing;
  connectionGone(conn); // nobody waits for it, and it waits for nothing
  hostClose(conn, reason);
}
