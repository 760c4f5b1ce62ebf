// The broker's table of contents: start-up, the byte stream of each connection cut
// into packets, THE dispatch on packet type, and the clock-driven checks.

import { identityClear } from "./auth/identity";
import { PACKET_MAX, WEBSOCKETS, PERSISTENCE, SYS, BRIDGE } from "./config";
import { bridgePacket } from "./bridge/connack";
import { bridgeTick, bridgeClosed, bridgeDialed, bridgeShutdown } from "./bridge/link";
import { sysInit, sysTick } from "./sys/tree";
import { ackHoldFull, forgetAcks, journalTick, journalShutdown } from "./persist/journal";
import { CloseReason, LogLevel } from "./host";
import { setNow, now as clockNow } from "./clock";
import { takeHoldRequest, pauseConnection, Pause, checkOwnReplies, connectionGone, flowTick } from "./flow/holds";
import { reserveInput, releaseInput } from "./flow/input";
import { continueReplays } from "./flow/replay";
import { drained } from "./flow/progress";
import { decodeVarint, varintSize } from "./codec/reader";
import { PacketType, requiredFlags } from "./codec/packet";
import { matcherInit } from "./topics/matcher";
import { viewNothing } from "./delivery/encode";
import { sharedInit } from "./topics/shared";
import { storeInit } from "./store/messages";
import { retainedInit } from "./store/retained";
import { connectionsInit, connection, openConnection, freeConnection, validConnection,
         connectionsHighWater, connectionsInUse, ConnState } from "./session/connections";
import { sessionsInit, session, sessionsHighWater } from "./session/sessions";
import { subscriptionsInit } from "./session/subscriptions";
import { queueInit } from "./session/queue";
import { closeConnection, detach, endSession, publishWillNow } from "./session/lifecycle";
import { handleConnect } from "./handlers/connect";
import { handlePublish } from "./handlers/publish";
import { handlePuback } from "./handlers/puback";
import { handlePubrec } from "./handlers/pubrec";
import { handlePubrel } from "./handlers/pubrel";
import { handlePubcomp } from "./handlers/pubcomp";
import { handleSubscribe } from "./handlers/subscribe";
import { handleUnsubscribe } from "./handlers/unsubscribe";
import { handlePingreq } from "./handlers/pingreq";
import { handleDisconnect } from "./handlers/disconnect";
import { handleAuth } from "./handlers/auth";
import { maxPacketSize, setMaxPacketSize, connectTimeoutMs, maxConnections } from "./settings";
import { statAdd, Stat } from "./stats";
import { isWebSocket, wsOpen } from "./ws/state";
import { wsFeed } from "./ws/input";
import { listenerSpeaksWebSocket, listenerHttpOnly } from "./configfile";
import { setLogLevel, logOn, logStart, logText, logInt, logEnd } from "./log";

/** The input window: one whole packet of the largest size fits (over WebSockets, with
 *  up to WS_FRAMING bytes of the headers of the frames it comes in). */
// @ts-ignore: decorator
@inline const WS_FRAMING: i32 = WEBSOCKETS ? 4096 : 0;
/** (and a record of the persistence file holds a stored message with 32 bytes of its own) */
// @ts-ignore: decorator
@inline const PERSIST_ROOM: i32 = PERSISTENCE ? 32 : 0;
// @ts-ignore: decorator
@inline export const INPUT_CAPACITY: i32 = PACKET_MAX + 5 + (WS_FRAMING > PERSIST_ROOM ? WS_FRAMING : PERSIST_ROOM);
export const INPUT = memory.data(INPUT_CAPACITY, 16);

let initialized = false;
/** Total size of the incomplete packet left over by the last `feed` (0: unknown yet). */
export let neededBytes: u32 = 0;
export function setNeeded(n: u32): void { neededBytes = n; }

export function brokerInit(maxPacket: u32, logLevel: i32): u32 {
  if (!initialized) {
    connectionsInit();
    sessionsInit();
    subscriptionsInit();
    queueInit();
    storeInit();
    retainedInit();
    matcherInit();
    sharedInit();
    viewNothing(); // the view starts on no message (zeroed memory would say message 0)
    sysInit();
    initialized = true;
  }
  setMaxPacketSize(maxPacket == 0 || maxPacket > <u32>PACKET_MAX ? PACKET_MAX : <i32>maxPacket);
  setLogLevel(logLevel);
  return <u32>maxPacketSize;
}

let refusedForLimit: i32 = 0;

/** A socket accepted on listener `listener` (text(16 + listener)): its connection id. */
export function brokerOpen(listener: i32, now: f64): i32 {
  setNow(now);
  const conn = connectionsInUse() < maxConnections ? openConnection(now + connectTimeoutMs) : -1;
  if (conn >= 0) identityClear(conn); // until the host gives the TLS certificate's name
  if (conn < 0) {
    statAdd(Stat.RefusedConnections);
    // the first refusal and every 1000th after it, so a flood cannot flood the log
    if (refusedForLimit++ % 1000 == 0 && logOn(LogLevel.Warning)) {
      logStart();
      logText("connection refused: the limit of ");
      logInt(maxConnections);
      logText(" connections is reached (");
      logInt(refusedForLimit);
      logText(" refused so far)");
      logEnd(LogLevel.Warning);
    }
    return -1;
  }
  statAdd(Stat.ConnectionsOpen);
  statAdd(Stat.ConnectionsAccepted);
  connection(conn).listener = listener;
  wsOpen(conn, listenerSpeaksWebSocket(listener), listenerHttpOnly(listener));
  return conn;
}

/** Cut the bytes at INPUT into packets and handle each whole one. Stops early, leaving
 *  the rest to the host, when the connection must not be read for now (flow/holds.ts:
 *  a subscriber it publishes to is behind; flow/input.ts: no room for its next packet). */
export function brokerFeed(conn: i32, len: u32, now: f64): u32 {
  setNow(now);
  neededBytes = 0;
  // a longer input than the window cannot come from a host that follows the ABI: discarded
  if (!validConnection(conn) || len > <u32>INPUT_CAPACITY) return len;
  const c = connection(conn);
  if (c.state == ConnState.Closing) return len; // the rest is ignored
  if (c.paused != 0) return 0;                  // kept by the host until `resume`
  let consumed: u32;
  if (WEBSOCKETS) consumed = isWebSocket(conn) ? wsFeed(conn, INPUT, len, <u32>INPUT_CAPACITY) : mqttFeed(conn, len);
  else consumed = mqttFeed(conn, len);
  if (c.state == ConnState.Closing) return len;
  checkOwnReplies(conn);
  // the host buffers the incomplete packet only once the budget has room for all of it
  reserveInput(conn, neededBytes);
  if (c.paused != 0) neededBytes = 0; // offer everything again on `resume`
  return consumed;
}

/** The bytes of a plain MQTT connection cut into packets: how many were consumed (whole
 *  packets); `neededBytes`: the size of the incomplete one left, when its header is whole. */
function mqttFeed(conn: i32, len: u32): u32 {
  const c = connection(conn);
  const stop = INPUT + <usize>len;
  let p = INPUT;
  while (p < stop) {
    if (c.state == ConnState.Closing) return len; // the rest is ignored
    if (refuseFirst(conn, <i32>load<u8>(p))) return len;
    const remaining = decodeVarint(p + 1, stop);
    if (remaining == -2) { closeConnection(conn, CloseReason.Malformed); return len; }
    if (remaining == -1) break; // fixed header incomplete
    const total = 1 + varintSize + remaining;
    // refused as soon as the fixed header says so, before anything is buffered
    // (MQTT 5 clients get DISCONNECT 0x95 first, §3.1.2.11.4)
    if (total > maxPacketSize) { closeConnection(conn, CloseReason.PacketTooLarge); return len; }
    if (p + <usize>total > stop) { neededBytes = <u32>total; break; }
    const at = p;
    p += <usize>total;
    if (takePacket(conn, at, total, varintSize)) break;
  }
  return <u32>(p - INPUT);
}

/** [MQTT-3.1.0-1] the first packet must be CONNECT: anything else is refused at once
 *  (true: the connection is closing). */
export function refuseFirst(conn: i32, first: i32): bool {
  if (connection(conn).state == ConnState.AwaitingConnect && first >> 4 != PacketType.CONNECT) {
    closeConnection(conn, CloseReason.ProtocolError);
    return true;
  }
  return false;
}

/** One whole packet of `total` bytes at `p` (its Remaining Length took `vs` bytes), from
 *  either transport: handled. True when the connection must not be read further now. */
export function takePacket(conn: i32, p: usize, total: i32, vs: i32): bool {
  const c = connection(conn);
  const first = <i32>load<u8>(p);
  const type = first >> 4;
  statAdd(Stat.BytesReceived, <f64>total);
  statAdd(Stat.PacketsReceived);
  // [MQTT-3.1.2-24] any packet resets the keep-alive timer
  if (c.state == ConnState.Connected && c.keepAliveMs > 0) c.deadline = clockNow + c.keepAliveMs * 1.5;
  if (logOn(LogLevel.Debug)) logPacket(conn, type, total);
  dispatch(conn, type, first & 15, p + 1 + <usize>vs, p + <usize>total);
  if (takeHoldRequest() && c.state == ConnState.Connected) {
    pauseConnection(conn, Pause.Hold);
    return true;
  }
  // persistence_sync always: too many acknowledgements wait for the disk
  if (PERSISTENCE && c.state == ConnState.Connected && ackHoldFull(conn)) return true;
  return false;
}

/** The host connected a bridge's outbound connection (`dial`). */
export function brokerDialed(conn: i32, now: f64): void {
  setNow(now);
  if (BRIDGE && validConnection(conn)) bridgeDialed(conn);
}

/** The host wrote everything it had for `conn`. */
export function brokerDrained(conn: i32, now: f64): void {
  setNow(now);
  if (!validConnection(conn) || connection(conn).state == ConnState.Closing) return;
  drained(conn);
}

function dispatch(conn: i32, type: i32, flags: i32, body: usize, limit: usize): void {
  const required = requiredFlags(type);
  if (required >= 0 && flags != required) {        // [MQTT-2.2.2-2] reserved flag bits
    closeConnection(conn, CloseReason.Malformed);
    return;
  }
  // a bridge's outbound connection: the client side (CONNACK, SUBACK, PINGRESP) is its own
  if (BRIDGE && connection(conn).bridge >= 0 && bridgePacket(conn, type, body, limit)) return;
  switch (type) {
    case PacketType.CONNECT:     handleConnect(conn, body, limit); break;
    case PacketType.PUBLISH:     handlePublish(conn, flags, body, limit); break;
    case PacketType.PUBACK:      handlePuback(conn, body, limit); break;
    case PacketType.PUBREC:      handlePubrec(conn, body, limit); break;
    case PacketType.PUBREL:      handlePubrel(conn, body, limit); break;
    case PacketType.PUBCOMP:     handlePubcomp(conn, body, limit); break;
    case PacketType.SUBSCRIBE:   handleSubscribe(conn, body, limit); break;
    case PacketType.UNSUBSCRIBE: handleUnsubscribe(conn, body, limit); break;
    case PacketType.PINGREQ:     handlePingreq(conn, body, limit); break;
    case PacketType.DISCONNECT:  handleDisconnect(conn, body, limit); break;
    case PacketType.AUTH:        handleAuth(conn, body, limit); break;
    // CONNACK, SUBACK, UNSUBACK, PINGRESP only flow to clients; 0 is reserved
    default: closeConnection(conn, CloseReason.ProtocolError);
  }
}

function logPacket(conn: i32, type: i32, size: i32): void {
  logStart();
  logText("connection ");
  logInt(conn);
  logText(" sent packet type ");
  logInt(type);
  logText(", ");
  logInt(size);
  logText(" bytes");
  logEnd(LogLevel.Debug);
}

/** The host's socket is gone. A connection that did not DISCONNECT loses its session
 *  binding and its will is published [MQTT-3.1.2-8]. */
export function brokerClosed(conn: i32, now: f64): void {
  setNow(now);
  if (!validConnection(conn)) return;
  const c = connection(conn);
  if (c.state != ConnState.Closing) detach(conn, CloseReason.Lost, true);
  if (BRIDGE && c.bridge >= 0) bridgeClosed(conn);
  if (PERSISTENCE) forgetAcks(conn);
  releaseInput(conn);
  connectionGone(conn);
  freeConnection(conn);
  statAdd(Stat.ConnectionsOpen, -1);
}

/** The host is shutting down: close every connection, telling MQTT 5 clients why
 *  (DISCONNECT 0x8B). The host still calls `closed` for each. */
export function brokerShutdown(now: f64): void {
  setNow(now);
  for (let i = 0, n = connectionsHighWater(); i < n; i++) {
    const st = connection(i).state;
    if (BRIDGE && connection(i).bridge >= 0 && st != ConnState.Closing && st != ConnState.Free) bridgeShutdown(i);
    else if (st == ConnState.AwaitingConnect || st == ConnState.Connected) closeConnection(i, CloseReason.ServerShutdown);
  }
  if (PERSISTENCE) journalShutdown();
}

/** Keep-alive and CONNECT timeouts, delayed wills, session expiry. Returns ms until
 *  the next deadline (at most 1 s). */
export function brokerTick(now: f64): u32 {
  setNow(now);
  let next: f64 = flowTick();
  if (PERSISTENCE) next = min(next, journalTick());
  if (SYS) next = min(next, sysTick());
  if (BRIDGE) next = min(next, bridgeTick());
  for (let i = 0, n = connectionsHighWater(); i < n; i++) {
    const c = connection(i);
    if (c.replays > 0) continueReplays(i); // a drain the host did not report
    if (c.state != ConnState.AwaitingConnect && c.state != ConnState.Connected) continue;
    if (c.deadline <= 0) continue;
    if (c.deadline <= now) {
      if (c.state == ConnState.AwaitingConnect) {
        statAdd(Stat.ConnectTimeouts);
        if (logOn(LogLevel.Notice)) {
          logStart(); logText("connection "); logInt(i); logText(" closed: no CONNECT within ");
          logInt(<i64><u32>connectTimeoutMs); logText(" ms"); logEnd(LogLevel.Notice);
        }
        closeConnection(i, CloseReason.ConnectTimeout);
      } else {
        statAdd(Stat.KeepAliveTimeouts);
        closeConnection(i, CloseReason.KeepAliveTimeout);
      }
      continue;
    }
    next = min(next, c.deadline - now);
  }
  for (let i = 0, n = sessionsHighWater(); i < n; i++) {
    const s = session(i);
    if (s.used == 0 || s.conn >= 0) continue;
    if (s.willAt > 0) {
      if (s.willAt <= now) publishWillNow(i);       // [MQTT-3.1.3-9] the delay has passed
      else next = min(next, s.willAt - now);
    }
    if (s.expiresAt > 0) {
      if (s.expiresAt <= now) { endSession(i); statAdd(Stat.SessionsExpired); } // [MQTT-3.1.2-23] the session expired
      else next = min(next, s.expiresAt - now);
    }
  }
  return <u32>max(next, 10);
}
