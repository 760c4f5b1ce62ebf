// A bridge's link to its upstream broker, the client side of MQTT (DESIGN §3: the host
// only opens the outbound connection). Each bridge has a local session, persistent and
// never expiring, that subscribes to its `out` topics: what goes upstream is queued and
// kept in flight there like any client's QoS 1/2 messages (across link failures, and
// across restarts with persistence on). When the link is up, that session is bound to
// the outbound connection, so the usual flow sends, resends with DUP and completes its
// deliveries; PUBLISH from upstream goes through the usual handler as if the session
// had published it (mapped to the local topic), so No Local keeps it from going back.
//
//   Idle ──dial──> Dialing ──dialed: CONNECT──> Connecting ──CONNACK 0──> Up
//     ^               │ closed                     │ refused, timeout        │ lost
//     └── Waiting <───┴────────────────────────────┴─────────────────────────┘
//         (the next address at once, then restart_timeout, doubled up to its cap)

import { hostDial, hostWake, CloseReason, LogLevel } from "../host";
import { now } from "../clock";
import { BRIDGE, PERSISTENCE, WEBSOCKETS, MAX_DELIVERIES } from "../config";
import { wsOpen } from "../ws/state";
import { identityClear } from "../auth/identity";
import { connection, openConnection, ConnState } from "../session/connections";
import { session, findSession, createSession, isBridgeSession } from "../session/sessions";
import { subscribe, unsubscribeAll, subscription, SubOption, SUBSCRIBE_FAILED } from "../session/subscriptions";
import { closeConnection } from "../session/lifecycle";
import { redeliver, nextPacketId } from "../delivery/outbound";
import { forgetReceived } from "../session/received";
import { route } from "../delivery/route";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { setRetained } from "../store/retained";
import { journalOnline } from "../persist/journal";
import { aclBind, Reach } from "../auth/acl";
import { writerStart, writeU8, writeU16, writeVarint, emit, flush } from "../codec/writer";
import { maxInflight } from "../settings";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "../log";
import { bridge, bridgeCount, bridgeText, textLen, topicDirection, topicQos, topicPattern, topicLocal,
         BridgeText, Direction, LinkState } from "./bridges";
import { sendBridgeConnect } from "./connect";
import { sendBridgeSubscribe } from "./subscribe";

// @ts-ignore: decorator
@inline const DIAL_TIMEOUT_MS: f64 = 10000;   // to connect, and then to get CONNACK
let started = false;

// ---- the texts a link derives from its config ----

const ID = memory.data(72, 8);   // its local session's id: a zero byte and the name
const CLIENT_ID = memory.data(80, 8);
export let clientIdLen = 0;
const NOTIFY = memory.data(400, 8);
export let notificationLen = 0;

/** remote_clientid, else "midge.NAME" (Mosquitto says "HOSTNAME.NAME"; the core knows no host name). */
export function clientIdOf(b: i32): usize {
  const p = bridgeText(b, BridgeText.ClientId);
  if (textLen > 0) { clientIdLen = textLen; return p; }
  const name = bridgeText(b, BridgeText.Name), n = textLen;
  put(CLIENT_ID, "midge.");
  memory.copy(CLIENT_ID + 6, name, <usize>n);
  clientIdLen = 6 + n;
  return CLIENT_ID;
}

/** notification_topic, else "$SYS/broker/connection/CLIENT_ID/state", as in Mosquitto. */
export function notificationTopicOf(b: i32): usize {
  const p = bridgeText(b, BridgeText.NotificationTopic);
  if (textLen > 0) { notificationLen = textLen; return p; }
  let at = NOTIFY;
  at = put(at, "$SYS/broker/connection/");
  const id = clientIdOf(b);
  memory.copy(at, id, <usize>clientIdLen); at += <usize>clientIdLen;
  at = put(at, "/state");
  notificationLen = <i32>(at - NOTIFY);
  return NOTIFY;
}

function put(at: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(at + <usize>i, <u8>s.charCodeAt(i));
  return at + <usize>s.length;
}

/** Address `k` of bridge `b` as "HOST PORT" at ADDRESS (addressLen bytes), for `dial` and the log. */
const ADDRESS = memory.data(272, 8);
let addressLen = 0;
let hostLen = 0;  // "HOST" is the first hostLen bytes
function addressOf(b: i32, k: i32): void {
  const p = bridgeText(b, BridgeText.Addresses), n = textLen;
  let at = 0, i = 0;
  while (true) {
    while (at < n && (load<u8>(p + <usize>at) == 0x20 || load<u8>(p + <usize>at) == 0x09)) at++;
    const start = at;
    while (at < n && load<u8>(p + <usize>at) != 0x20 && load<u8>(p + <usize>at) != 0x09) at++;
    if (i == k || at >= n) {
      let colon = at;
      for (let j = start; j < at; j++) if (load<u8>(p + <usize>j) == 0x3A) colon = j;
      hostLen = colon - start;
      memory.copy(ADDRESS, p + <usize>start, <usize>hostLen);
      store<u8>(ADDRESS + <usize>hostLen, 0x20);
      if (colon < at) {
        memory.copy(ADDRESS + <usize>hostLen + 1, p + <usize>colon + 1, <usize>(at - colon - 1));
        addressLen = hostLen + 1 + (at - colon - 1);
      } else {
        put(ADDRESS + <usize>hostLen + 1, "1883");
        addressLen = hostLen + 5;
      }
      return;
    }
    i++;
  }
}

// ---- the log ----

function logBridge(b: i32): void {
  logStart(); logText("bridge "); const name = bridgeText(b, BridgeText.Name); logBytes(name, textLen); logText(": ");
}
/** "HOST:PORT" of the address being tried. */
function logAddress(b: i32): void {
  addressOf(b, bridge(b).address);
  logBytes(ADDRESS, hostLen); logText(":"); logBytes(ADDRESS + <usize>hostLen + 1, addressLen - hostLen - 1);
}

// ---- start-up: the local sessions ----

/** Each bridge's local session, found (a restored one keeps its queue) or made, with a
 *  subscription for each of its `out` topics (the config file's, not an old file's). */
function startBridges(): void {
  for (let b = 0; b < bridgeCount; b++) {
    const row = bridge(b);
    store<u8>(ID, 0);
    const name = bridgeText(b, BridgeText.Name), n = textLen;
    memory.copy(ID + 1, name, <usize>n);
    let s = findSession(ID, n + 1);
    if (s < 0) {
      s = createSession(ID, n + 1);
      if (s < 0) {
        logBridge(b); logText("no free session for its queue: not started"); logEnd(LogLevel.Error);
        row.state = LinkState.Stopped;
        continue;
      }
      statAdd(Stat.SessionsStored);
    }
    row.session = s;
    const ss = session(s);
    ss.expiry = 0xFFFFFFFF; // kept while the link is down, and (with persistence) across restarts
    ss.expiresAt = 0;
    aclBind(s, 0, 0, false);
    if (PERSISTENCE) journalOnline(s);
    unsubscribeAll(s);
    for (let i = row.topics, e = row.topics + row.topicCount; i < e; i++) {
      if ((topicDirection(i) & Direction.Out) == 0) continue;
      const local = topicLocal(i), localLen = textLen;
      const pattern = topicPattern(i), patternLen = textLen;
      memory.copy(ADDRESS, local, <usize>localLen); // (a scratch here)
      memory.copy(ADDRESS + <usize>localLen, pattern, <usize>patternLen);
      const options = SubOption.NoLocal | (row.outgoingRetain != 0 ? SubOption.RetainAsPublished : 0);
      const sub = subscribe(s, ADDRESS, localLen + patternLen, 0, topicQos(i), options, 0);
      if (sub == SUBSCRIBE_FAILED) { logBridge(b); logText("the subscription table is full: a topic line is not forwarded"); logEnd(LogLevel.Error); }
      else subscription(sub).reach = Reach.All;
    }
    row.state = LinkState.Waiting;
    row.nextAt = now;
    row.wait = row.restartBase;
  }
}

/** How many QoS 1/2 messages session `s` may hold queued while it is offline: a bridge's
 *  bridge_max_queued (default ten times max_queued_messages, at most half the board's
 *  deliveries: a link down for a while should not drop what a minute of sensors says),
 *  anyone else's max_queued_messages. */
export function offlineQueueLimit(s: i32, maxQueued: i32): i32 {
  if (!BRIDGE || !isBridgeSession(s)) return maxQueued;
  for (let b = 0; b < bridgeCount; b++) {
    const row = bridge(b);
    if (row.session != s) continue;
    return row.maxQueued > 0 ? row.maxQueued : min(maxQueued * 10, MAX_DELIVERIES / 2);
  }
  return maxQueued;
}

/** Bridges whose link is up ($SYS, /metrics). */
export function bridgesUp(): i32 {
  let n = 0;
  for (let b = 0; b < bridgeCount; b++) if (bridge(b).state == LinkState.Up) n++;
  return n;
}

// ---- the clock ----

/** Dial what is due, time out what hangs, ping what is up. Returns ms until it wants to run again. */
export function bridgeTick(): f64 {
  if (!BRIDGE || bridgeCount == 0) return 1000;
  if (!started) { started = true; startBridges(); }
  let next: f64 = 1000;
  for (let b = 0; b < bridgeCount; b++) {
    const row = bridge(b);
    switch (row.state) {
      case LinkState.Waiting:
        if (row.nextAt <= now) dial(b);
        else next = min(next, row.nextAt - now);
        break;
      case LinkState.Dialing: case LinkState.Connecting: {
        const c = connection(row.conn);
        if (c.state == ConnState.Closing) break; // asked to close: `closed` comes
        if (c.deadline <= now) {
          logBridge(b); logText(row.state == LinkState.Dialing ? "no connection to " : "no CONNACK from ");
          logAddress(b); logText(" within "); logInt(<i64>(DIAL_TIMEOUT_MS / 1000)); logText(" s"); logEnd(LogLevel.Warning);
          closeConnection(row.conn, CloseReason.ConnectTimeout);
        } else next = min(next, c.deadline - now);
        break;
      }
      case LinkState.Up:
        if (connection(row.conn).state == ConnState.Closing) break;
        if (row.roundRobin == 0 && row.address != 0) {
          if (row.probe >= 0 && connection(row.probe).deadline <= now) closeConnection(row.probe, CloseReason.ConnectTimeout);
          else if (row.probe < 0 && row.probeAt <= now) probe(b);
          next = min(next, PROBE_MS);
        }
        if (row.pingAt <= now) {
          writerStart(row.conn); writeU8(0xC0); writeU8(0); flush(); // PINGREQ
          row.pingAt = pingAfter(row.conn);
        }
        if (row.pingAt != Infinity) next = min(next, row.pingAt - now);
        break;
    }
  }
  return next;
}

function dial(b: i32): void {
  const row = bridge(b);
  const conn = openDial(b, row.address);
  if (conn < 0) {
    logBridge(b); logText("no free connection: trying again later"); logEnd(LogLevel.Warning);
    waitAfterFailure(b, true);
    return;
  }
  row.conn = conn;
  row.state = LinkState.Dialing;
  if (logOn(LogLevel.Notice)) { logBridge(b); logText("connecting to "); logAddress(b); logEnd(LogLevel.Notice); }
}

/** A connection row for bridge `b`, dialed to its address `k`; -1 when the table is full. */
function openDial(b: i32, k: i32): i32 {
  const conn = openConnection(now + DIAL_TIMEOUT_MS);
  if (conn < 0) return -1;
  const c = connection(conn);
  // a row another connection used: nothing of its transport or identity stays with it
  if (WEBSOCKETS) wsOpen(conn, false, false);
  identityClear(conn);
  c.state = ConnState.Dialing;
  c.bridge = b;
  c.level = bridge(b).protocol;
  statAdd(Stat.ConnectionsOpen);
  addressOf(b, k);
  hostDial(conn, ADDRESS, <u32>addressLen, b);
  return conn;
}

// @ts-ignore: decorator
@inline const PROBE_MS: f64 = 5000; // as Mosquitto: while on a backup, the first address is tried every 5 s

/** round_robin false, up on a backup address: try the first address now and then (a TCP
 *  connection only); once it answers, the link moves back to it. */
function probe(b: i32): void {
  const row = bridge(b);
  row.probeAt = now + PROBE_MS;
  row.probe = openDial(b, 0);
}

/** The host connected `conn` (export `dialed`): CONNECT goes out. */
export function bridgeDialed(conn: i32): void {
  const c = connection(conn);
  if (c.bridge < 0 || c.state != ConnState.Dialing) return;
  const b = c.bridge;
  const row = bridge(b);
  if (conn == row.probe) { // the first address answers: go back to it
    closeConnection(conn, CloseReason.Normal);
    if (row.state == LinkState.Up && row.conn >= 0) {
      if (logOn(LogLevel.Notice)) {
        logBridge(b); addressOf(b, 0); logBytes(ADDRESS, hostLen); logText(":");
        logBytes(ADDRESS + <usize>hostLen + 1, addressLen - hostLen - 1); logText(" answers again: moving back to it");
        logEnd(LogLevel.Notice);
      }
      row.backToFirst = 1;
      sendDisconnect0(row.conn);
      closeConnection(row.conn, CloseReason.Normal);
    }
    return;
  }
  sendBridgeConnect(conn, b);
  c.state = ConnState.BridgeConnecting;
  c.deadline = now + DIAL_TIMEOUT_MS;
  bridge(b).state = LinkState.Connecting;
}

/** CONNACK accepted (connack.ts): bind the session, subscribe upstream, send what waits. */
export function bridgeUp(conn: i32, sessionPresent: bool, keepAlive: i32, receiveMax: i32, maxPacket: u32,
                         maxQos: i32, retainAvailable: i32): void {
  const c = connection(conn);
  const b = c.bridge;
  const row = bridge(b);
  const s = row.session;
  const ss = session(s);
  c.session = s;
  c.state = ConnState.Connected;
  ss.conn = conn;
  c.receiveMax = receiveMax > 0 ? receiveMax : maxInflight;
  c.maxPacketOut = maxPacket;
  c.keepAliveMs = <f64>keepAlive * 1000;
  c.deadline = keepAlive > 0 ? now + c.keepAliveMs * 1.5 : 0;
  row.pingAt = pingAfter(conn);
  row.state = LinkState.Up;
  row.upSince = now;
  row.probeAt = now + PROBE_MS;
  row.attempts = 0;
  row.wait = row.restartBase;
  statAdd(Stat.ClientsConnected);
  if (logOn(LogLevel.Notice)) {
    logBridge(b); logText("connected to "); logAddress(b);
    logText(row.protocol == 5 ? " (MQTT 5.0" : " (MQTT 3.1.1");
    logText(sessionPresent ? ", session present)" : ", new session)"); logEnd(LogLevel.Notice);
  }
  // a new session upstream: the QoS 2 ids it had sent and not released are gone with the
  // old one, and its next messages may reuse them [MQTT-4.3.3-2]
  if (!sessionPresent) forgetReceived(s, true);
  if (sendBridgeSubscribe(conn, b, nextPacketId(s))) row.subsAcked = 1;
  // MQTT 5 upstream limits [MQTT-3.2.2-11] [MQTT-3.2.2-14]: the retained flag is left off
  // (encode.ts); a QoS above its maximum would have it close the link, so say so
  row.noRetain = retainAvailable == 0 ? 1 : 0;
  if (maxQos < 2) {
    for (let i = row.topics, e = row.topics + row.topicCount; i < e; i++) {
      if ((topicDirection(i) & Direction.Out) == 0 || topicQos(i) <= maxQos) continue;
      logBridge(b); logText("the upstream takes QoS "); logInt(maxQos); logText(" at most (CONNACK Maximum QoS): set the QoS of its out topic lines to ");
      logInt(maxQos); logText(", or it will close the link on a message above it"); logEnd(LogLevel.Warning);
      break;
    }
  }
  notify(b, true);
  redeliver(s); // what was in flight again (DUP), then the queue
}

/** When the next PINGREQ is due: one keep-alive (the one in force, the upstream's Server
 *  Keep Alive when it said one) after now; never with keep-alive 0. */
function pingAfter(conn: i32): f64 {
  const ka = connection(conn).keepAliveMs;
  return ka > 0 ? now + ka : Infinity;
}

/** The link's connection is gone (`closed`, before the row is freed). */
export function bridgeClosed(conn: i32): void {
  const b = connection(conn).bridge;
  const row = bridge(b);
  if (conn == row.probe) { row.probe = -1; return; } // not yet: tried again at probeAt
  if (row.conn != conn) return;
  row.conn = -1;
  if (row.state == LinkState.Stopped) return; // the broker stops
  const wasUp = row.state == LinkState.Up;
  if (logOn(LogLevel.Notice)) {
    logBridge(b); logText(wasUp ? "connection to " : "connection to "); logAddress(b);
    logText(wasUp ? " lost" : " failed"); logEnd(LogLevel.Notice);
  }
  if (row.probe >= 0) closeConnection(row.probe, CloseReason.Normal);
  if (row.once != 0) {
    if (wasUp) notify(b, false);
    row.state = LinkState.Stopped;
    logBridge(b); logText("start_type once: not connecting again"); logEnd(LogLevel.Notice);
    return;
  }
  if (!wasUp) { waitAfterFailure(b, true); return; }
  notify(b, false);
  row.attempts = 0;
  row.wait = row.restartBase;
  if (row.backToFirst != 0) { // the first address answered a probe: at once, there
    row.backToFirst = 0;
    row.address = 0;
    row.state = LinkState.Waiting;
    row.nextAt = now;
    hostWake(10);
    return;
  }
  // round_robin false: the first address first again; true: the next one
  if (row.roundRobin == 0) row.address = 0;
  else if (row.addressCount > 1) row.address = (row.address + 1) % row.addressCount;
  waitAfterFailure(b, false);
}

/** The next attempt after a failure (`advance`: a failed attempt, so the next address; a
 *  lost link has chosen its address already): at once while some addresses were not tried
 *  in this round, else after the wait, which doubles up to the cap (restart_timeout BASE CAP). */
function waitAfterFailure(b: i32, advance: bool): void {
  const row = bridge(b);
  row.state = LinkState.Waiting;
  if (advance) {
    row.attempts++;
    if (row.addressCount > 1) row.address = (row.address + 1) % row.addressCount;
    if (row.attempts % max(row.addressCount, 1) != 0) {
      row.nextAt = now;
      hostWake(10);
      return;
    }
  }
  const wait = row.wait;
  row.nextAt = now + <f64>wait * 1000;
  if (row.restartCap > 0) row.wait = min(row.wait * 2, row.restartCap);
  if (logOn(LogLevel.Notice)) { logBridge(b); logText("next attempt in "); logInt(wait); logText(" s"); logEnd(LogLevel.Notice); }
  hostWake(<u32>(wait * 1000));
}

/** The upstream refused the CONNECT (connack.ts): say why, then wait as after a failure. */
export function bridgeRefused(conn: i32, code: i32, v5: bool): void {
  const b = connection(conn).bridge;
  logBridge(b); logAddress(b); logText(" refused the connection: ");
  logText(refusalText(code, v5)); logText(" (CONNACK "); logInt(code); logText(")");
  logEnd(LogLevel.Warning);
  closeConnection(conn, CloseReason.Refused);
}

function refusalText(code: i32, v5: bool): string {
  if (!v5) {
    switch (code) {
      case 1: return "unacceptable protocol version";
      case 2: return "client id rejected";
      case 3: return "server unavailable";
      case 4: return "bad user name or password";
      case 5: return "not authorized";
    }
    return "unknown reason";
  }
  switch (code) {
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client id not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8C: return "bad authentication method";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x9F: return "connection rate exceeded";
  }
  return "refused";
}

/** SUBACK from upstream: a refused topic is said once per connection. */
export function bridgeSubscribed(conn: i32, codes: usize, count: i32): void {
  const b = connection(conn).bridge;
  const row = bridge(b);
  row.subsAcked = 0;
  let k = 0;
  for (let i = row.topics, e = row.topics + row.topicCount; i < e && k < count; i++) {
    if ((topicDirection(i) & Direction.In) == 0) continue;
    const code = <i32>load<u8>(codes + <usize>k);
    k++;
    if (code < 0x80) continue;
    logBridge(b); logText("upstream refused the subscription to '");
    const pattern = topicPattern(i), p = textLen;
    logBytes(pattern, p); logText("' (code "); logInt(code); logText(")"); logEnd(LogLevel.Warning);
  }
}

/** The broker stops: upstream hears "0" on the notification topic (a DISCONNECT discards
 *  the will), then a normal DISCONNECT. */
export function bridgeShutdown(conn: i32): void {
  const b = connection(conn).bridge;
  const row = bridge(b);
  if (row.state == LinkState.Up) notify(b, false);
  if (connection(conn).state == ConnState.Connected) sendDisconnect0(conn);
  row.state = LinkState.Stopped;
  closeConnection(conn, CloseReason.Normal);
}

/** DISCONNECT, reason 0 (the same two bytes in 3.1.1 and 5.0): the upstream discards the
 *  will, so a link that ends on purpose is not said to be down by it. */
function sendDisconnect0(conn: i32): void {
  writerStart(conn); writeU8(0xE0); writeU8(0); flush();
}

// ---- notifications (notifications true): "1" up, "0" down, retained ----

const ONE = memory.data<u8>([0x31]);
const ZERO = memory.data<u8>([0x30]);

function notify(b: i32, up: bool): void {
  const row = bridge(b);
  if (row.notifications == 0) return;
  const topic = notificationTopicOf(b), n = notificationLen;
  const value = up ? ONE : ZERO;
  // locally: retained, to whoever subscribes
  const m = storeMessage(topic, n, 0, 0, value, 1, 1, 1, 0);
  if (m >= 0) {
    holdMessage(m);
    setRetained(topic, n, m);
    route(topic, n, 0, 0, value, 1, 1, true, 0, m, row.session);
    releaseMessage(m);
  }
  // upstream, where the will says "0" when the link drops (and this at shutdown)
  if (row.notifyLocalOnly == 0 && row.conn >= 0 && row.state == LinkState.Up) {
    writerStart(row.conn);
    writeU8(0x31); // PUBLISH, QoS 0, retained
    writeVarint(2 + n + (row.protocol == 5 ? 1 : 0) + 1);
    writeU16(n);
    emit(topic, n);
    if (row.protocol == 5) writeU8(0);
    writeU8(up ? 0x31 : 0x30);
    flush();
  }
}
