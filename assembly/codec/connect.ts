// CONNECT (MQTT 3.1.1 §3.1, MQTT 5.0 §3.1; MQTT 3.1 "MQIsdp" level 3 shares the
// 3.1.1 layout).
//
//  protocol name │ level │ flags │ keep-alive │ [v5 properties] │ client id │
//  [will: [v5 will properties] topic, payload] │ [user name] │ [password]

import { readerStart, readU8, readU16, readBinary, readString, readError, fieldPtr, fieldLen,
         pos, end, DecodeError } from "./reader";
import { decodeProperties, compactForwardable, propsStart, propsEnd, hasProp, Prop, WILL,
         sessionExpiry, receiveMaximum, maximumPacketSize, topicAliasMaximum, requestProblemInfo,
         willDelay, messageExpiry } from "./properties";
import { PacketType } from "./packet";

export const enum ConnectFlag { Reserved = 1, CleanStart = 2, Will = 4, WillRetain = 32, Password = 64, Username = 128 }

/** Outcomes beyond DecodeError: answered with a CONNACK refusal, then closed. */
export const enum ConnectRefusal { UnacceptableVersion = 1 }

export let connectLevel: i32 = 0;
/** The level had bit 0x80: a bridge (Mosquitto's try_private), which is not sent its own
 *  messages back and gets retained flags as published (bridge/ is the other end). */
export let connectFromBridge = false;
export let connectFlags: i32 = 0;
export let keepAlive: i32 = 0;
export let clientIdPtr: usize = 0;
export let clientIdLen: i32 = 0;
export let willQos: i32 = 0;
export let willTopicPtr: usize = 0;
export let willTopicLen: i32 = 0;
export let willPayloadPtr: usize = 0;
export let willPayloadLen: i32 = 0;
export let usernamePtr: usize = 0;
export let usernameLen: i32 = 0;
export let passwordPtr: usize = 0;
export let passwordLen: i32 = 0;
// MQTT 5 properties of the CONNECT
export let connSessionExpiry: u32 = 0;
export let connReceiveMax: i32 = 65535;
export let connMaxPacket: u32 = 0xFFFFFFFF;
export let connTopicAliasMax: i32 = 0;
export let connProblemInfo: i32 = 1;
export let connAuthMethod: bool = false;
// and of its will
export let willDelayInterval: u32 = 0;
export let willHasExpiry: bool = false;
export let willExpiry: u32 = 0;
export let willPropsPtr: usize = 0;
export let willPropsLen: i32 = 0;

// "MQTT" and "MQIsdp" as bytes
const NAME_MQTT = memory.data<u8>([0x4D, 0x51, 0x54, 0x54]);
const NAME_MQISDP = memory.data<u8>([0x4D, 0x51, 0x49, 0x73, 0x64, 0x70]);

/** 0 when accepted, a DecodeError (< 0), or a ConnectRefusal (> 0). `connectLevel` is
 *  valid as soon as the level byte was read (to answer in the right version). */
export function decodeConnect(ptr: usize, limit: usize): i32 {
  connectLevel = 0;
  readerStart(ptr, limit);
  if (!readBinary()) return readError;
  const namePtr = fieldPtr, nameLen = fieldLen;
  let level = readU8();
  connectFromBridge = level == 0x83 || level == 0x84;
  if (connectFromBridge) level &= 0x7F;
  if (readError != DecodeError.None) return readError;
  const isMqtt = nameLen == 4 && memory.compare(namePtr, NAME_MQTT, 4) == 0;
  const isMqisdp = nameLen == 6 && memory.compare(namePtr, NAME_MQISDP, 6) == 0;
  // [MQTT-3.1.2-1] any other protocol name: close without CONNACK
  if (!isMqtt && !isMqisdp) return DecodeError.Protocol;
  // [MQTT-3.1.2-2] a level we do not speak: CONNACK 0x01 (in the 3.1.1 form)
  if ((isMqtt && level != 4 && level != 5) || (isMqisdp && level != 3)) {
    return ConnectRefusal.UnacceptableVersion;
  }
  connectLevel = level;
  const v5 = level == 5;

  connectFlags = readU8();
  keepAlive = readU16();
  if (readError != DecodeError.None) return readError;
  if ((connectFlags & ConnectFlag.Reserved) != 0) return DecodeError.Malformed; // [MQTT-3.1.2-3]
  const will = (connectFlags & ConnectFlag.Will) != 0;
  willQos = (connectFlags >> 3) & 3;
  if (!will && (willQos != 0 || (connectFlags & ConnectFlag.WillRetain) != 0)) {
    return DecodeError.Protocol; // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
  }
  if (willQos == 3) return DecodeError.Protocol; // [MQTT-3.1.2-14]
  const hasUser = (connectFlags & ConnectFlag.Username) != 0;
  const hasPassword = (connectFlags & ConnectFlag.Password) != 0;
  if (level == 4 && hasPassword && !hasUser) return DecodeError.Protocol; // [MQTT-3.1.2-22]

  connSessionExpiry = 0; connReceiveMax = 65535; connMaxPacket = 0xFFFFFFFF;
  connTopicAliasMax = 0; connProblemInfo = 1; connAuthMethod = false;
  if (v5) {
    if (!decodeProperties(PacketType.CONNECT)) return readError;
    if (hasProp(Prop.SessionExpiry)) connSessionExpiry = sessionExpiry;
    if (hasProp(Prop.ReceiveMaximum)) connReceiveMax = receiveMaximum;
    if (hasProp(Prop.MaximumPacketSize)) connMaxPacket = maximumPacketSize;
    if (hasProp(Prop.TopicAliasMaximum)) connTopicAliasMax = topicAliasMaximum;
    connProblemInfo = requestProblemInfo;
    connAuthMethod = hasProp(Prop.AuthMethod);
    // authentication data without a method is a Protocol Error (§3.1.2.11.10)
    if (hasProp(Prop.AuthData) && !connAuthMethod) return DecodeError.Protocol;
  }

  if (!readString()) return readError; // [MQTT-3.1.3-4] client id is UTF-8
  clientIdPtr = fieldPtr; clientIdLen = fieldLen;
  willTopicLen = 0; willPayloadLen = 0; usernameLen = 0; passwordLen = 0;
  willDelayInterval = 0; willHasExpiry = false; willExpiry = 0; willPropsLen = 0;
  if (will) {
    if (v5) {
      if (!decodeProperties(WILL)) return readError;
      if (hasProp(Prop.WillDelay)) willDelayInterval = willDelay;
      willHasExpiry = hasProp(Prop.MessageExpiry);
      willExpiry = messageExpiry;
      willPropsPtr = propsStart;
      willPropsLen = compactForwardable(propsStart, propsEnd);
    }
    if (!readString()) return readError;
    willTopicPtr = fieldPtr; willTopicLen = fieldLen;
    if (!readBinary()) return readError;
    willPayloadPtr = fieldPtr; willPayloadLen = fieldLen;
  }
  if (hasUser) {
    if (!readString()) return readError; // [MQTT-3.1.3-11]
    usernamePtr = fieldPtr; usernameLen = fieldLen;
  }
  if (hasPassword) {
    if (!readBinary()) return readError;
    passwordPtr = fieldPtr; passwordLen = fieldLen;
  }
  if (pos != end) return DecodeError.Malformed; // bytes left over
  return 0;
}
