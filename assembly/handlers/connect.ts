// CONNECT: validate, refuse or accept, bind the connection to a new or resumed
// session (taking it over from an older connection), store the will, and answer
// CONNACK in the client's protocol version.

import { listenerPort } from "../configfile";
import { isWebSocket } from "../ws/state";
import { CLIENT_ID_MAX, INFLIGHT_IN_MAX, INFLIGHT_MAX, TOPIC_ALIAS_MAX, ALIAS_OUT_MAX, CONFIG_TEXT } from "../config";
import { passwordFileRead, findUser, passwordMatches } from "../auth/passwords";
import { aclBind } from "../auth/acl";
import { Identity, identityLen, identityAt } from "../auth/identity";
import { CloseReason, LogLevel } from "../host";
import { now } from "../clock";
import { DecodeError } from "../codec/reader";
import { decodeConnect, ConnectRefusal, ConnectFlag, connectLevel, connectFromBridge, connectFlags, keepAlive,
         clientIdPtr, clientIdLen, willQos, willTopicPtr, willTopicLen, willPayloadPtr,
         willPayloadLen, willPropsPtr, willPropsLen, willDelayInterval, willHasExpiry, willExpiry,
         connSessionExpiry, connReceiveMax, connMaxPacket, connTopicAliasMax, connProblemInfo,
         connAuthMethod, usernamePtr, usernameLen, passwordPtr, passwordLen } from "../codec/connect";
import { sendConnack, sendConnack5, connackCode, Refusal, setConnackLimits, setConnackKeepAlive,
         setConnackAssignedId } from "../codec/connack";
import { validTopicName } from "../topics/validate";
import { connection, ConnState } from "../session/connections";
import { session, sessionId, findSession, createSession } from "../session/sessions";
import { closeConnection, closeForDecodeError, endSession, discardWill } from "../session/lifecycle";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { redeliver } from "../delivery/outbound";
import { maxPacketSize, maxKeepAlive, allowAnonymous, connectionMessages, retainAvailable } from "../settings";
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

/** Why a client is not let in (Mosquitto 2's rules; its log line says which). */
const enum Auth { Ok = 0, NoUserName = 1, NoPasswordFile = 2, UnknownUser = 3, BadPassword = 4 }
let notAuthorized: Auth = Auth.Ok;

function authorize(): Auth {
  const hasUser = (connectFlags & ConnectFlag.Username) != 0;
  let fileRead = false;
  if (CONFIG_TEXT) { // a board without the config file parser has no password file
    fileRead = passwordFileRead;
    if (fileRead && hasUser) { // a user name is checked, whatever allow_anonymous says
      const u = findUser(usernamePtr, <u32>usernameLen);
      if (u < 0) return Auth.UnknownUser;
      const ok = (connectFlags & ConnectFlag.Password) != 0 && passwordMatches(u, passwordPtr, <u32>passwordLen);
      return ok ? Auth.Ok : Auth.BadPassword;
    }
  }
  if (allowAnonymous != 0) return Auth.Ok;
  return hasUser ? Auth.NoPasswordFile : Auth.NoUserName;
}

function refuse(conn: i32, level: i32, why: i32): void {
  const code = connackCode(level, why);
  if (level == 5) sendConnack5(conn, false, code);
  else sendConnack(conn, false, code);
  statAdd(Stat.RefusedConnections);
  if (logOn(LogLevel.Notice)) {
    logStart();
    logText("connection refused, CONNACK code ");
    logInt(code);
    switch (why) {
      case Refusal.IdentifierRejected: logText(" (client identifier not valid)"); break;
      case Refusal.ServerUnavailable: logText(" (server unavailable: a table is full)"); break;
      case Refusal.UnsupportedVersion: logText(" (unsupported protocol version)"); break;
      case Refusal.BadAuthMethod: logText(" (unsupported authentication method)"); break;
      case Refusal.Malformed: logText(" (malformed CONNECT)"); break;
      case Refusal.ProtocolError: logText(" (protocol error in CONNECT)"); break;
      case Refusal.RetainNotSupported: logText(" (a retained will, and retain_available is false)"); break;
      case Refusal.BadCredentials: logText(" (bad credentials: the listener takes the user name from the client certificate, and the client sent none with a CN)"); break;
      case Refusal.NotAuthorized:
        switch (notAuthorized) {
          case Auth.NoUserName: logText(" (not authorized: no user name, and allow_anonymous is false)"); break;
          case Auth.NoPasswordFile: logText(" (not authorized: allow_anonymous is false, and no password file to check the user against)"); break;
          case Auth.UnknownUser: logText(" (not authorized: the user is not in the password file)"); break;
          case Auth.BadPassword: logText(" (not authorized: wrong or missing password)"); break;
        }
        break;
    }
    logEnd(LogLevel.Notice);
  }
  closeConnection(conn, CloseReason.Refused);
}

import { PERSISTENCE } from "../config";
import { journalOnline } from "../persist/journal";

export function handleConnect(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  if (c.state != ConnState.AwaitingConnect) {       // [MQTT-3.1.0-2] a second CONNECT
    closeConnection(conn, CloseReason.ProtocolError);
    return;
  }
  statAdd(Stat.ConnectPackets);
  const r = decodeConnect(body, limit);
  if (r == ConnectRefusal.UnacceptableVersion) { refuse(conn, 4, Refusal.UnsupportedVersion); return; }
  if (r < 0) {
    // an MQTT 5 client is told why [MQTT-3.1.4-1]; older ones are just closed
    if (connectLevel == 5) refuse(conn, 5, r == DecodeError.Malformed ? Refusal.Malformed : Refusal.ProtocolError);
    else closeForDecodeError(conn, r);
    return;
  }
  const level = connectLevel;
  const v5 = level == 5;
  c.level = level;
  c.fromBridge = connectFromBridge ? 1 : 0;
  const cleanStart = (connectFlags & ConnectFlag.CleanStart) != 0;
  const hasWill = (connectFlags & ConnectFlag.Will) != 0;

  // MQTT 5 enhanced authentication: no method is implemented yet
  if (v5 && connAuthMethod) { refuse(conn, 5, Refusal.BadAuthMethod); return; }

  // Client identifier [MQTT-3.1.3-6..9]
  let idPtr = clientIdPtr, idLen = clientIdLen;
  let assigned = false;
  if (idLen == 0) {
    // MQTT 3.1 requires an id; 3.1.1 allows none only with a clean session [MQTT-3.1.3-8]
    if (level == 3 || (level == 4 && !cleanStart)) { refuse(conn, level, Refusal.IdentifierRejected); return; }
    assignClientId();                               // [MQTT-3.1.3-6]
    idPtr = ASSIGNED_ID; idLen = ASSIGNED_ID_LEN;
    assigned = true;
  }
  if (idLen > CLIENT_ID_MAX) { refuse(conn, level, Refusal.IdentifierRejected); return; }
  // Who may connect (Mosquitto 2): with a password file, a client giving a user name must
  // be in it with the right password; a client without one, and every client when there
  // is no password file, only with allow_anonymous true. Mosquitto answers every refusal
  // with 5 (MQTT 5: 0x87), a wrong password too
  // A TLS listener with use_identity_as_username or use_subject_as_username (Mosquitto 2):
  // the certificate's name is the user name, the CONNECT's user name and password are
  // ignored; without a certificate (or a CN) the client is refused as bad credentials
  const certName = identityLen(conn);
  if (certName != Identity.None) {
    if (certName < 0) { refuse(conn, level, Refusal.BadCredentials); return; }
  } else {
    notAuthorized = authorize();
    if (notAuthorized != Auth.Ok) { refuse(conn, level, Refusal.NotAuthorized); return; }
  }
  if (hasWill && !validTopicName(willTopicPtr, willTopicLen)) {
    if (v5) refuse(conn, 5, Refusal.ProtocolError);
    else closeConnection(conn, CloseReason.ProtocolError);
    return;
  }

  // retain_available false (Mosquitto 2): a will with Will Retain is refused; MQTT 5 is
  // told 0x9A [MQTT-3.2.2-13], an older client is closed without a CONNACK
  if (hasWill && (connectFlags & ConnectFlag.WillRetain) != 0 && retainAvailable == 0) {
    if (v5) refuse(conn, 5, Refusal.RetainNotSupported);
    else closeConnection(conn, CloseReason.RetainNotSupported);
    return;
  }

  // The will is stored first: if there is no room, nothing else has changed yet.
  let will = -1;
  if (hasWill) {
    will = storeMessage(willTopicPtr, willTopicLen, willPropsPtr, willPropsLen, willPayloadPtr, willPayloadLen,
                        willQos, (connectFlags & ConnectFlag.WillRetain) != 0 ? 1 : 0,
                        // its expiry starts when it is published: kept as -interval until then
                        willHasExpiry ? -(<f64>willExpiry * 1000) : 0);
    if (will < 0) { refuse(conn, level, Refusal.ServerUnavailable); return; }
    holdMessage(will);
  }

  // [MQTT-3.1.4-2] an existing connection with this id is closed first
  let s = findSession(idPtr, idLen);
  if (s >= 0 && session(s).conn >= 0) {
    closeConnection(session(s).conn, CloseReason.TakenOver);
    s = findSession(idPtr, idLen); // a session with expiry 0 ended with its connection
  }
  let sessionPresent = false;
  if (s >= 0 && cleanStart) { endSession(s); s = -1; }   // [MQTT-3.1.2-4]
  if (s >= 0) {
    sessionPresent = true;                               // [MQTT-3.2.2-2]
    discardWill(s); // [MQTT-3.1.3-9] a delayed will is not sent once the client is back
  } else {
    s = createSession(idPtr, idLen);
    if (s < 0) {
      if (will >= 0) releaseMessage(will);
      refuse(conn, level, Refusal.ServerUnavailable);
      return;
    }
    statAdd(Stat.SessionsStored);
  }
  const ss = session(s);
  ss.conn = conn;
  ss.dropped = 0;
  ss.expiresAt = 0;
  // 3.1.1: a clean session ends with the connection, another lives until the client
  // cleans it; MQTT 5: the Session Expiry Interval says [MQTT-3.1.2-23]
  ss.expiry = v5 ? connSessionExpiry : cleanStart ? 0 : 0xFFFFFFFF;
  ss.will = will;
  ss.willDelay = v5 ? willDelayInterval : 0;
  ss.willAt = 0;
  c.session = s;
  c.state = ConnState.Connected;
  if (certName > 0) aclBind(s, identityAt(conn), certName, true);
  else aclBind(s, usernamePtr, usernameLen, (connectFlags & ConnectFlag.Username) != 0);
  if (PERSISTENCE) journalOnline(s); // a persistent session, in the persistence file
  if (v5) {
    c.receiveMax = connReceiveMax;
    c.maxPacketOut = connMaxPacket;
    c.aliasOutMax = min(connTopicAliasMax, ALIAS_OUT_MAX);
    c.problemInfo = connProblemInfo;
  } else {
    c.receiveMax = INFLIGHT_MAX;
  }

  // Keep-alive, capped by the server's maximum when one is configured
  let keep = keepAlive;
  const cap = maxKeepAlive;
  if (v5 && cap > 0 && (keep == 0 || keep > cap)) keep = cap;   // told with Server Keep Alive
  c.keepAliveMs = <f64>keep * 1000;
  // [MQTT-3.1.2-24] close after one and a half keep-alive periods of silence
  c.deadline = keep > 0 ? now + c.keepAliveMs * 1.5 : 0;
  statAdd(Stat.ClientsConnected);

  if (v5) {
    setConnackLimits(INFLIGHT_IN_MAX, <u32>maxPacketSize, TOPIC_ALIAS_MAX);
    if (keep != keepAlive) setConnackKeepAlive(keep);
    if (assigned) setConnackAssignedId(ASSIGNED_ID, ASSIGNED_ID_LEN);
    sendConnack5(conn, sessionPresent, 0);
  } else {
    sendConnack(conn, sessionPresent, 0);
  }

  if (connectionMessages != 0 && logOn(LogLevel.Info)) {
    logStart();
    logText("client ");
    logBytes(sessionId(s), idLen);
    logText(" connected (");
    logText(level == 3 ? "MQTT 3.1" : level == 4 ? "MQTT 3.1.1" : "MQTT 5.0");
    if (c.fromBridge != 0) logText(" bridge");
    logText(sessionPresent ? ", session resumed" : ss.expiry == 0 ? ", clean session" : ", new persistent session");
    logText(", keep-alive ");
    logInt(keep);
    logText(" s");
    if (CONFIG_TEXT) {
      logText(", listener "); logInt(c.listener); logText(" port "); logInt(listenerPort(c.listener));
      if (isWebSocket(conn)) logText(" websockets");
    }
    logText(")");
    logEnd(LogLevel.Info);
  }
  if (sessionPresent) redeliver(s);
}
