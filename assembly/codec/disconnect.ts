// DISCONNECT (3.1.1 §3.14: empty; 5.0 §3.14: reason code and properties, both
// optional). The server sends one to an MQTT 5 client before closing it.

import { readerStart, readU8, readError, pos, end, DecodeError } from "./reader";
import { writerStart, writeU8, flush } from "./writer";
import { decodeProperties, hasProp, Prop, sessionExpiry } from "./properties";
import { PacketType } from "./packet";

export const enum DisconnectReason {
  Normal = 0x00, WithWill = 0x04, Unspecified = 0x80, Malformed = 0x81, ProtocolError = 0x82,
  NotAuthorized = 0x87, ServerBusy = 0x89, ShuttingDown = 0x8B, KeepAliveTimeout = 0x8D,
  SessionTakenOver = 0x8E, TopicFilterInvalid = 0x8F, TopicNameInvalid = 0x90,
  ReceiveMaximumExceeded = 0x93, TopicAliasInvalid = 0x94, PacketTooLarge = 0x95,
  QuotaExceeded = 0x97, AdministrativeAction = 0x98, PayloadFormatInvalid = 0x99, RetainNotSupported = 0x9A,
}

export let disconnectReason: i32 = 0;
export let disconnectHasExpiry: bool = false;
export let disconnectExpiry: u32 = 0;

export function decodeDisconnect(ptr: usize, limit: usize, v5: bool): i32 {
  disconnectReason = 0; disconnectHasExpiry = false;
  if (!v5) return ptr == limit ? 0 : DecodeError.Malformed;
  readerStart(ptr, limit);
  if (pos < end) disconnectReason = readU8();
  if (pos < end) {
    if (!decodeProperties(PacketType.DISCONNECT)) return readError;
    // Server Reference is for the server to send (§3.14.2.2.5)
    if (hasProp(Prop.ServerReference)) return DecodeError.Protocol;
    disconnectHasExpiry = hasProp(Prop.SessionExpiry);
    disconnectExpiry = sessionExpiry;
  }
  if (pos != end) return DecodeError.Malformed;
  return 0;
}

export function sendDisconnect(conn: i32, reason: i32): void {
  writerStart(conn);
  writeU8(0xE0);
  writeU8(2);
  writeU8(reason);
  writeU8(0); // no properties
  flush();
}
