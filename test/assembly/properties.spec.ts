// The MQTT 5 property block (assembly/codec/properties.ts): which packet may carry
// which property, how often, with which values; every decode with its refusal twin.

import { readerStart, readError, pos, end, DecodeError } from "../../assembly/codec/reader";
import { decodeProperties, compactForwardable, hasProp, has, Prop, WILL, propsStart, propsEnd,
         sessionExpiry, receiveMaximum, maximumPacketSize, topicAliasMaximum, topicAlias,
         requestProblemInfo, willDelay, messageExpiry, subscriptionId } from "../../assembly/codec/properties";
import { PacketType } from "../../assembly/codec/packet";
import { begin, byte, bytes, bodyPtr, bodyEnd } from "./wire";

// The properties under test are built here, then framed by `decode` as a block (a
// Variable Byte Integer length, then the properties) followed by `after` more bytes of
// the packet, so a read that overruns the block would not overrun the input.
const PROPS = memory.data(1024);
let propsLen = 0;
function props(): void { propsLen = 0; }
function p8(v: i32): void { store<u8>(PROPS + <usize>propsLen, <u8>v); propsLen++; }
function p16(v: i32): void { p8(v >> 8); p8(v & 255); }
function p32(v: u32): void { p16(<i32>(v >>> 16)); p16(<i32>(v & 0xFFFF)); }
function pstr(s: string): void { p16(s.length); for (let i = 0; i < s.length; i++) p8(s.charCodeAt(i)); }

function decode(context: i32, after: i32 = 0): bool {
  begin();
  let l = propsLen;
  do { let d = l & 127; l >>= 7; if (l > 0) d |= 128; byte(d); } while (l > 0);
  bytes(PROPS, propsLen);
  for (let i = 0; i < after; i++) byte(0xEE);
  readerStart(bodyPtr(), bodyEnd());
  return decodeProperties(context);
}

/** The error of the last decode, and the cursor where the caller expects it: after the
 *  block, with the packet's own limit back in place. */
function refused(): i32 {
  expect(pos).toBe(propsEnd);
  expect(end).toBe(bodyEnd());
  return readError;
}

/** One property of the given kind, with a valid value, for the packet tables. */
function one(id: i32): void {
  p8(id);
  switch (id) {
    case Prop.SessionExpiry: case Prop.MaximumPacketSize: case Prop.WillDelay: case Prop.MessageExpiry:
      p32(1); break;
    case Prop.ReceiveMaximum: case Prop.TopicAliasMaximum: case Prop.TopicAlias: case Prop.ServerKeepAlive:
      p16(1); break;
    case Prop.SubscriptionId: p8(1); break;
    case Prop.UserProperty: pstr("k"); pstr("v"); break;
    case Prop.AuthMethod: case Prop.ReasonString: case Prop.ContentType: case Prop.ResponseTopic:
    case Prop.CorrelationData: case Prop.AssignedClientId: case Prop.ResponseInfo: case Prop.ServerReference:
    case Prop.AuthData:
      pstr("x"); break;
    default: p8(1); // the byte-valued ones
  }
}

describe("properties: what each packet may carry", () => {
  it("decodes the CONNECT properties and says which it saw", () => {
    props();
    p8(Prop.SessionExpiry); p32(3600);
    p8(Prop.ReceiveMaximum); p16(20);
    p8(Prop.MaximumPacketSize); p32(1000);
    p8(Prop.TopicAliasMaximum); p16(5);
    p8(Prop.RequestProblemInfo); p8(0);
    p8(Prop.UserProperty); pstr("site"); pstr("kitchen");
    expect(decode(PacketType.CONNECT, 3)).toBe(true);
    expect(sessionExpiry).toBe(3600);
    expect(receiveMaximum).toBe(20);
    expect(maximumPacketSize).toBe(1000);
    expect(topicAliasMaximum).toBe(5);
    expect(requestProblemInfo).toBe(0);
    expect(hasProp(Prop.SessionExpiry)).toBe(true);
    expect(hasProp(Prop.UserProperty)).toBe(true);
    expect(hasProp(Prop.WillDelay)).toBe(false);
    // the cursor stops after the block; the rest of the packet is still there
    expect(pos).toBe(propsEnd);
    expect(propsEnd).toBe(bodyEnd() - 3);
    expect(end).toBe(bodyEnd());
  });

  it("[MQTT-2.2.2-2] refuses a property given twice where once is allowed", () => {
    props(); one(Prop.SessionExpiry); one(Prop.SessionExpiry);
    expect(decode(PacketType.CONNECT, 2)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); one(Prop.ContentType); one(Prop.MessageExpiry); one(Prop.ContentType);
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); one(Prop.ReasonString); one(Prop.ReasonString);
    expect(decode(PacketType.DISCONNECT)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
  });

  it("takes User Property any number of times, in every packet with properties", () => {
    const packets: i32[] = [WILL, PacketType.CONNECT, PacketType.CONNACK, PacketType.PUBLISH,
      PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP, PacketType.SUBSCRIBE,
      PacketType.SUBACK, PacketType.UNSUBSCRIBE, PacketType.UNSUBACK, PacketType.DISCONNECT, PacketType.AUTH];
    for (let i = 0; i < packets.length; i++) {
      props(); one(Prop.UserProperty); one(Prop.UserProperty); one(Prop.UserProperty);
      expect(decode(packets[i])).toBe(true);
    }
  });

  it("[MQTT-2.2.2-2] refuses a property in a packet that may not carry it", () => {
    props(); one(Prop.TopicAlias);
    expect(decode(PacketType.CONNECT)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); one(Prop.SessionExpiry);
    expect(decode(PacketType.PUBLISH)).toBe(false);
    props(); one(Prop.SubscriptionId);
    expect(decode(PacketType.CONNECT)).toBe(false);
    props(); one(Prop.ServerKeepAlive);          // only the server sends it (CONNACK)
    expect(decode(PacketType.CONNECT)).toBe(false);
    props(); one(Prop.AuthMethod);
    expect(decode(PacketType.PUBLISH)).toBe(false);
    props(); one(Prop.ReasonString);
    expect(decode(PacketType.CONNECT)).toBe(false);
    // the Will Delay belongs to the will's properties, not to the CONNECT's own
    props(); one(Prop.WillDelay);
    expect(decode(PacketType.CONNECT)).toBe(false);
    expect(readError).toBe(DecodeError.Protocol);
    props(); one(Prop.WillDelay);
    expect(decode(WILL)).toBe(true);
    expect(willDelay).toBe(1);
  });

  it("refuses a property identifier the specification does not define", () => {
    const unknown: i32[] = [0x00, 0x04, 0x0A, 0x14, 0x2B, 0x7F];
    for (let i = 0; i < unknown.length; i++) {
      props(); p8(unknown[i]); p8(0);
      expect(decode(PacketType.PUBLISH)).toBe(false);
      expect(refused()).toBe(DecodeError.Protocol);
    }
  });

  it("takes several Subscription Identifiers in a PUBLISH (one per matching subscription)", () => {
    props(); p8(Prop.SubscriptionId); p8(1); p8(Prop.SubscriptionId); p8(2);
    expect(decode(PacketType.PUBLISH)).toBe(true);
    expect(subscriptionId).toBe(2);
  });

  it("refuses a second Subscription Identifier in a SUBSCRIBE", () => {
    props(); p8(Prop.SubscriptionId); p8(1); p8(Prop.SubscriptionId); p8(2);
    expect(decode(PacketType.SUBSCRIBE)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
  });
});

describe("properties: values", () => {
  it("takes every value at the edges of its range", () => {
    props(); p8(Prop.ReceiveMaximum); p16(1); p8(Prop.MaximumPacketSize); p32(1);
    p8(Prop.RequestProblemInfo); p8(1); p8(Prop.RequestResponseInfo); p8(1);
    expect(decode(PacketType.CONNECT)).toBe(true);
    expect(receiveMaximum).toBe(1);
    expect(maximumPacketSize).toBe(1);
    props(); p8(Prop.ReceiveMaximum); p16(65535); p8(Prop.MaximumPacketSize); p32(0xFFFFFFFF);
    expect(decode(PacketType.CONNECT)).toBe(true);
    expect(receiveMaximum).toBe(65535);
    expect(maximumPacketSize).toBe(0xFFFFFFFF);
    props(); p8(Prop.PayloadFormat); p8(1); p8(Prop.MessageExpiry); p32(0); p8(Prop.TopicAlias); p16(7);
    expect(decode(PacketType.PUBLISH)).toBe(true);
    expect(messageExpiry).toBe(0);
    expect(topicAlias).toBe(7);
    // Subscription Identifier 1 and 268,435,455 (the largest four-byte varint)
    props(); p8(Prop.SubscriptionId); p8(1);
    expect(decode(PacketType.SUBSCRIBE)).toBe(true);
    expect(subscriptionId).toBe(1);
    props(); p8(Prop.SubscriptionId); p8(0xFF); p8(0xFF); p8(0xFF); p8(0x7F);
    expect(decode(PacketType.SUBSCRIBE)).toBe(true);
    expect(subscriptionId).toBe(268435455);
  });

  it("refuses the values the specification calls a Protocol Error", () => {
    props(); p8(Prop.ReceiveMaximum); p16(0);            // §3.1.2.11.3
    expect(decode(PacketType.CONNECT)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); p8(Prop.MaximumPacketSize); p32(0);         // §3.1.2.11.4
    expect(decode(PacketType.CONNECT)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); p8(Prop.RequestProblemInfo); p8(2);
    expect(decode(PacketType.CONNECT)).toBe(false);
    props(); p8(Prop.RequestResponseInfo); p8(2);
    expect(decode(PacketType.CONNECT)).toBe(false);
    props(); p8(Prop.PayloadFormat); p8(2);
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); p8(Prop.SubscriptionId); p8(0);             // 1 .. 268,435,455
    expect(decode(PacketType.SUBSCRIBE)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
  });

  it("[MQTT-3.3.2-14] takes a Response Topic that is a topic name", () => {
    props(); p8(Prop.ResponseTopic); pstr("reply/to/me");
    expect(decode(PacketType.PUBLISH)).toBe(true);
    expect(hasProp(Prop.ResponseTopic)).toBe(true);
  });

  it("[MQTT-3.3.2-14] refuses a Response Topic with a wildcard, or empty", () => {
    props(); p8(Prop.ResponseTopic); pstr("reply/+");
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
    props(); p8(Prop.ResponseTopic); pstr("reply/#");
    expect(decode(PacketType.PUBLISH)).toBe(false);
    props(); p8(Prop.ResponseTopic); pstr("");
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Protocol);
  });
});

describe("properties: the block itself", () => {
  it("decodes an empty block", () => {
    props();
    expect(decode(PacketType.PUBLISH, 4)).toBe(true);
    expect(has).toBe(0);
    expect(propsStart).toBe(propsEnd);
    expect(pos).toBe(bodyPtr() + 1);
  });

  it("refuses a block longer than the packet", () => {
    begin(); byte(10); byte(Prop.PayloadFormat); byte(1);
    readerStart(bodyPtr(), bodyEnd());
    expect(decodeProperties(PacketType.PUBLISH)).toBe(false);
    expect(readError).toBe(DecodeError.Malformed);
  });

  it("refuses a value cut off by the end of the block, even with packet bytes after it", () => {
    // the block says 3 bytes: Message Expiry needs 5; the 4 bytes after the block are
    // the payload and must not be read as the rest of the value
    props(); p8(Prop.MessageExpiry); p16(0);
    expect(decode(PacketType.PUBLISH, 4)).toBe(false);
    expect(refused()).toBe(DecodeError.Malformed);
    props(); p8(Prop.UserProperty); pstr("key"); p16(5); p8(0x61);
    expect(decode(PacketType.PUBLISH, 8)).toBe(false);
    expect(refused()).toBe(DecodeError.Malformed);
    props(); p8(Prop.CorrelationData); p16(9); p8(1); p8(2);
    expect(decode(PacketType.PUBLISH, 9)).toBe(false);
    expect(refused()).toBe(DecodeError.Malformed);
  });

  it("refuses an identifier written in more than one byte", () => {
    props(); p8(0x83); p8(0x00); pstr("abc");   // Content Type, padded: not minimal
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Malformed);
    props(); p8(0x80); p8(0x01); p8(0);         // 128, minimal but no property has two bytes
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.Malformed);
  });

  it("[MQTT-1.5.3-1] [MQTT-1.5.3-2] refuses a string property that is not well-formed UTF-8", () => {
    props(); p8(Prop.ContentType); p16(2); p8(0xC0); p8(0x80);       // overlong
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.BadUtf8);
    props(); p8(Prop.UserProperty); p16(3); p8(0x61); p8(0); p8(0x62); pstr("v"); // U+0000
    expect(decode(PacketType.PUBLISH)).toBe(false);
    expect(refused()).toBe(DecodeError.BadUtf8);
    // binary data may hold anything
    props(); p8(Prop.CorrelationData); p16(2); p8(0xC0); p8(0);
    expect(decode(PacketType.PUBLISH)).toBe(true);
  });
});

describe("properties: what travels with a message", () => {
  it("[MQTT-3.3.2-17] [MQTT-3.3.2-20] keeps, in order, only what goes to subscribers", () => {
    props();
    p8(Prop.PayloadFormat); p8(1);
    p8(Prop.MessageExpiry); p32(60);            // re-created per delivery
    p8(Prop.ContentType); pstr("text");
    p8(Prop.TopicAlias); p16(3);                // the sender's, not the receiver's
    p8(Prop.ResponseTopic); pstr("r");
    p8(Prop.SubscriptionId); p8(9);             // re-created per delivery
    p8(Prop.CorrelationData); p16(2); p8(0xAB); p8(0xCD);
    p8(Prop.UserProperty); pstr("k"); pstr("v");
    expect(decode(PacketType.PUBLISH, 5)).toBe(true);
    const kept = compactForwardable(propsStart, propsEnd);
    props();
    p8(Prop.PayloadFormat); p8(1);
    p8(Prop.ContentType); pstr("text");
    p8(Prop.ResponseTopic); pstr("r");
    p8(Prop.CorrelationData); p16(2); p8(0xAB); p8(0xCD);
    p8(Prop.UserProperty); pstr("k"); pstr("v");
    expect(kept).toBe(propsLen);
    expect(memory.compare(propsStart, PROPS, <usize>propsLen)).toBe(0);
  });

  it("keeps nothing when nothing travels", () => {
    props(); p8(Prop.MessageExpiry); p32(10); p8(Prop.TopicAlias); p16(1);
    expect(decode(PacketType.PUBLISH)).toBe(true);
    expect(compactForwardable(propsStart, propsEnd)).toBe(0);
  });
});
