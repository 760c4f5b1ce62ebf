// CONNECT: validate, refuse or accept, bind the connection to a new or resumed
// session (taking it over from an older connection), store the will.

import { CLIENT_ID_MAX } from "../config";
import { CloseReason, LogLevel } from "../host";
import { DecodeError } from "../codec/reader";
import { decodeConnect, ConnectRefusal, ConnectFlag, connectLevel, connectFlags, keepAlive,
         clientIdPtr, clientIdLen, willQos, willTopicPtr, willTopicLen, willPayloadPtr,
         willPayloadLen } from "../codec/connect";
import { sendConnack, ConnackCode } from "../codec/connack";
import { validTopicName } from "../topics/validate";
import { connection, ConnState } from "../session/connections";
import { session, sessionId, findSession, createSession } from "../session/clients";
import { closeConnection, endSession } from "../session/lifecycle";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { redeliver } from "../delivery";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "../log";

/** Identifiers assigned to clients that sent an empty one: "midge-" and 12 hex digits. */
const ASSIGNED_ID = memory.data<u8>([0x6D, 0x69, 0x64, 0x67, 0x65, 0x2D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const ASSIGNED_ID_LEN: i32 = 18;
let assignedCounter: u64 = 0;

function assignClientId(): void {
  // skip any counter value some client picked as its own id
  do {
    assignedCounter++;
    let v = assignedCounter;
    for (let i = ASSIGNED_ID_LEN - 1; i >= 6; i--) {
      const d = <i32>(v & 15);
      store<u8>(ASSIGNED_ID + <usize>i, <u8>(d < 10 ? 0x30 + d : 0x61 + d - 10));
      v >>= 4;
    }
  } while (findSession(ASSIGNED_ID, ASSIGNED_ID_LEN) >= 0);
}

function refuse(conn: i32, code: i32): void {
  sendConnack(conn, false, code);
  statAdd(Stat.RefusedConnections);
  if (logOn(LogLevel.Notice)) {
    logStart();
    logText("connection refused, CONNACK code ");
    logInt(code);
    if (code == ConnackCode.IdentifierRejected) logText(" (identifier rejected)");
    else if (code == ConnackCode.ServerUnavailable) logText(" (server unavailable: table full)");
    else if (code == ConnackCode.UnacceptableVersion) logText(" (unsupported protocol version)");
    logEnd(LogLevel.Notice);
  }
  closeConnection(conn, CloseReason.Refused);
}

export function handleConnect(conn: i32, body: usize, limit: usize, now: f64): void {
  const c = connection(conn);
  if (c.state == ConnState.Connected) {            // [MQTT-3.1.0-2] a second CONNECT
    closeConnection(conn, CloseReason.ProtocolError);
    return;
  }
  const r = decodeConnect(body, limit);
  if (r < 0) {
    closeConnection(conn, r == DecodeError.Malformed ? CloseReason.Malformed : CloseReason.ProtocolError);
    return;
  }
  if (r == ConnectRefusal.UnacceptableVersion) { refuse(conn, ConnackCode.UnacceptableVersion); return; }
  c.level = connectLevel;
  const clean = (connectFlags & ConnectFlag.CleanSession) != 0;
  const hasWill = (connectFlags & ConnectFlag.Will) != 0;

  // Client identifier [MQTT-3.1.3-6..9]
  let idPtr = clientIdPtr, idLen = clientIdLen;
  if (idLen == 0) {
    // MQTT 3.1 requires an id; 3.1.1 allows none only with a clean session [MQTT-3.1.3-8]
    if (connectLevel == 3 || !clean) { refuse(conn, ConnackCode.IdentifierRejected); return; }
    assignClientId();                               // [MQTT-3.1.3-6]
    idPtr = ASSIGNED_ID; idLen = ASSIGNED_ID_LEN;
  }
  if (idLen > CLIENT_ID_MAX) { refuse(conn, ConnackCode.IdentifierRejected); return; }
  if (hasWill && !validTopicName(willTopicPtr, willTopicLen)) {
    closeConnection(conn, CloseReason.ProtocolError);
    return;
  }

  // The will is stored first: if there is no room, nothing else has changed yet.
  let will = -1;
  if (hasWill) {
    will = storeMessage(willTopicPtr, willTopicLen, willPayloadPtr, willPayloadLen, willQos,
                        (connectFlags & ConnectFlag.WillRetain) != 0 ? 1 : 0);
    if (will < 0) { refuse(conn, ConnackCode.ServerUnavailable); return; }
    holdMessage(will);
  }

  // [MQTT-3.1.4-2] an existing connection with this id is closed first
  let s = findSession(idPtr, idLen);
  if (s >= 0 && session(s).conn >= 0) {
    closeConnection(session(s).conn, CloseReason.TakenOver);
    s = findSession(idPtr, idLen); // a clean session ended with its connection
  }
  let sessionPresent = false;
  if (s >= 0 && clean) { endSession(s); s = -1; }   // [MQTT-3.1.2-6]
  if (s >= 0) {
    sessionPresent = true;                          // [MQTT-3.2.2-2]
  } else {
    s = createSession(idPtr, idLen, clean);
    if (s < 0) {
      if (will >= 0) releaseMessage(will);
      refuse(conn, ConnackCode.ServerUnavailable);
      return;
    }
    statAdd(Stat.SessionsStored);
  }
  const ss = session(s);
  ss.conn = conn; ss.clean = clean ? 1 : 0; ss.dropped = 0;
  c.session = s; c.will = will; c.state = ConnState.Connected;
  c.keepAliveMs = <f64>keepAlive * 1000;
  // [MQTT-3.1.2-24] close after one and a half keep-alive periods of silence
  c.deadline = keepAlive > 0 ? now + c.keepAliveMs * 1.5 : 0;
  statAdd(Stat.ClientsConnected);
  sendConnack(conn, sessionPresent, ConnackCode.Accepted);

  if (logOn(LogLevel.Info)) {
    logStart();
    logText("client ");
    logBytes(sessionId(s), idLen);
    logText(" connected (");
    logText(connectLevel == 3 ? "MQTT 3.1" : "MQTT 3.1.1");
    logText(clean ? ", clean session" : sessionPresent ? ", session resumed" : ", new persistent session");
    logText(", keep-alive ");
    logInt(keepAlive);
    logText(" s)");
    logEnd(LogLevel.Info);
  }
  if (sessionPresent) redeliver(s);
}
