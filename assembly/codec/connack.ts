// CONNACK (3.1.1 §3.2, 5.0 §3.2): session present, a return/reason code and, in
// MQTT 5, the properties that tell the client what this server does.

import { retainAvailable } from "../settings";
import { writerStart, writeU8, writeVarint, flush, OUT, wpos, writeU32, writeU16, writeBinary, varintLength,
         setWpos, sendRaw } from "./writer";
import { Prop } from "./properties";

/** Why a CONNECT is refused, independent of the protocol version. */
export const enum Refusal {
  None = 0, UnsupportedVersion = 1, IdentifierRejected = 2, ServerUnavailable = 3,
  BadCredentials = 4, NotAuthorized = 5, Malformed = 6, ProtocolError = 7, BadAuthMethod = 8,
  PacketTooLarge = 9, QuotaExceeded = 10, RetainNotSupported = 11,
}

/** The code for a refusal: 3.1.1 return codes (0x01-0x05), MQTT 5 reason codes (0x80+). */
export function connackCode(level: i32, r: i32): i32 {
  if (level != 5) {
    switch (r) {
      case Refusal.None: return 0;
      case Refusal.UnsupportedVersion: return 1;
      case Refusal.IdentifierRejected: return 2;
      case Refusal.BadCredentials: return 4;
      case Refusal.NotAuthorized: return 5;
    }
    return 3; // server unavailable
  }
  switch (r) {
    case Refusal.None: return 0x00;
    case Refusal.UnsupportedVersion: return 0x84;
    case Refusal.IdentifierRejected: return 0x85;
    case Refusal.ServerUnavailable: return 0x88;
    case Refusal.BadCredentials: return 0x86;
    case Refusal.NotAuthorized: return 0x87;
    case Refusal.Malformed: return 0x81;
    case Refusal.ProtocolError: return 0x82;
    case Refusal.BadAuthMethod: return 0x8C;
    case Refusal.PacketTooLarge: return 0x95;
    case Refusal.QuotaExceeded: return 0x97;
    case Refusal.RetainNotSupported: return 0x9A;
  }
  return 0x80;
}

/** A 3.1.1-form CONNACK (also what a client of an unknown level gets). */
export function sendConnack(conn: i32, sessionPresent: bool, code: i32): void {
  writerStart(conn);
  writeU8(0x20);
  writeU8(2);
  writeU8(sessionPresent ? 1 : 0);
  writeU8(code);
  flush();
}

// What an MQTT 5 CONNACK advertises (set by the CONNECT handler before sending).
let ackReceiveMaximum: i32 = 0;
let ackMaximumPacketSize: u32 = 0;
let ackTopicAliasMaximum: i32 = 0;
let ackServerKeepAlive: i32 = -1;      // -1: not sent
let ackAssignedIdPtr: usize = 0;
let ackAssignedIdLen: i32 = 0;         // 0: not sent

export function setConnackLimits(receiveMax: i32, maxPacket: u32, aliasMax: i32): void {
  ackReceiveMaximum = receiveMax; ackMaximumPacketSize = maxPacket; ackTopicAliasMaximum = aliasMax;
  ackServerKeepAlive = -1; ackAssignedIdLen = 0;
}
export function setConnackKeepAlive(v: i32): void { ackServerKeepAlive = v; }
export function setConnackAssignedId(ptr: usize, len: i32): void { ackAssignedIdPtr = ptr; ackAssignedIdLen = len; }

/** An MQTT 5 CONNACK. A refusal carries no properties but the reason code. */
export function sendConnack5(conn: i32, sessionPresent: bool, code: i32): void {
  writerStart(conn);
  writeU8(0x20);
  if (code >= 0x80) {
    writeU8(3); writeU8(0); writeU8(code); writeU8(0);
    flush();
    return;
  }
  // properties first, at a fixed offset, then the header in front of them
  const HEADER: usize = 16; // room for 0x20, remaining length, flags, code, props length
  const start = OUT + HEADER;
  setWpos(start);
  writeU8(Prop.ReceiveMaximum); writeU16(ackReceiveMaximum);
  writeU8(Prop.MaximumPacketSize); writeU32(ackMaximumPacketSize);
  writeU8(Prop.TopicAliasMaximum); writeU16(ackTopicAliasMaximum);
  writeU8(Prop.RetainAvailable); writeU8(retainAvailable);
  writeU8(Prop.WildcardAvailable); writeU8(1);
  writeU8(Prop.SubscriptionIdAvailable); writeU8(1);
  writeU8(Prop.SharedAvailable); writeU8(1);
  if (ackServerKeepAlive >= 0) { writeU8(Prop.ServerKeepAlive); writeU16(ackServerKeepAlive); }
  if (ackAssignedIdLen > 0) { writeU8(Prop.AssignedClientId); writeBinary(ackAssignedIdPtr, ackAssignedIdLen); }
  const propsLen = <i32>(wpos - start);
  const end = wpos;
  // now the header, written just before the properties
  const remaining = 2 + varintLength(propsLen) + propsLen;
  const headerLen = 1 + varintLength(remaining) + 2 + varintLength(propsLen);
  const headerStart = start - <usize>headerLen;
  setWpos(headerStart);
  writeU8(0x20);
  writeVarint(remaining);
  writeU8(sessionPresent ? 1 : 0);
  writeU8(code);
  writeVarint(propsLen);
  setWpos(end);
  sendRaw(conn, headerStart, <i32>(end - headerStart));
}
