// What only a bridge's connection receives (§3.2, §3.9, §3.13, §3.14): CONNACK, SUBACK,
// PINGRESP and an upstream's DISCONNECT. Everything else it receives (PUBLISH and the
// acknowledgements) goes through the broker's own handlers (broker.ts dispatch).

import { CloseReason, LogLevel } from "../host";
import { PacketType } from "../codec/packet";
import { readerStart, readU8, readU16, readError, pos, end, DecodeError } from "../codec/reader";
import { decodeProperties, hasProp, Prop, receiveMaximum, maximumPacketSize, serverKeepAlive, maximumQos, retainAvailable } from "../codec/properties";
import { connection, ConnState } from "../session/connections";
import { closeConnection } from "../session/lifecycle";
import { bridge } from "./bridges";
import { bridgeUp, bridgeRefused, bridgeSubscribed } from "./link";
import { logStart, logText, logInt, logEnd } from "../log";

/** A packet on a bridge's connection: true when handled here. */
export function bridgePacket(conn: i32, type: i32, body: usize, limit: usize): bool {
  const c = connection(conn);
  if (c.state == ConnState.BridgeConnecting) {
    if (type != PacketType.CONNACK) closeConnection(conn, CloseReason.ProtocolError); // [MQTT-3.2.0-1] CONNACK first
    else connack(conn, body, limit);
    return true;
  }
  switch (type) {
    case PacketType.PUBLISH: case PacketType.PUBACK: case PacketType.PUBREC: case PacketType.PUBREL:
    case PacketType.PUBCOMP: return false;
    case PacketType.SUBACK: suback(conn, body, limit); return true;
    case PacketType.PINGRESP: if (body != limit) closeConnection(conn, CloseReason.Malformed); return true;
    case PacketType.DISCONNECT: {
      logStart(); logText("bridge: the upstream broker sent DISCONNECT");
      if (body < limit) { logText(" (reason "); logInt(load<u8>(body)); logText(")"); }
      logEnd(LogLevel.Notice);
      closeConnection(conn, CloseReason.Normal);
      return true;
    }
  }
  closeConnection(conn, CloseReason.ProtocolError); // a server never sends CONNECT, SUBSCRIBE, ...
  return true;
}

function connack(conn: i32, body: usize, limit: usize): void {
  const v5 = connection(conn).level == 5;
  readerStart(body, limit);
  const flags = readU8();
  const code = readU8();
  if (readError != DecodeError.None || (flags & 0xFE) != 0) { closeConnection(conn, CloseReason.Malformed); return; }
  let keepAlive = bridge(connection(conn).bridge).keepAlive;
  let receiveMax = 0;
  let maxPacket: u32 = 0xFFFFFFFF;
  let maxQos = 2, retain = 1;
  if (v5 && pos < end) {
    if (!decodeProperties(PacketType.CONNACK)) { closeConnection(conn, CloseReason.Malformed); return; }
    if (hasProp(Prop.ReceiveMaximum)) receiveMax = receiveMaximum;
    if (hasProp(Prop.MaximumPacketSize)) maxPacket = maximumPacketSize;
    if (serverKeepAlive >= 0) keepAlive = serverKeepAlive;
    maxQos = maximumQos; retain = retainAvailable;
  }
  if (code != 0) { bridgeRefused(conn, code, v5); return; }
  bridgeUp(conn, (flags & 1) != 0, keepAlive, receiveMax, maxPacket, maxQos, retain);
}

function suback(conn: i32, body: usize, limit: usize): void {
  const v5 = connection(conn).level == 5;
  readerStart(body, limit);
  readU16();
  if (v5 && !decodeProperties(PacketType.SUBACK)) { closeConnection(conn, CloseReason.Malformed); return; }
  if (readError != DecodeError.None) { closeConnection(conn, CloseReason.Malformed); return; }
  bridgeSubscribed(conn, pos, <i32>(end - pos));
}
