// Every decoder with its malformed twin; the writer's varint against the reader's.

import { DecodeError, utf8Valid, decodeVarint, varintSize } from "../../assembly/codec/reader";
import { writerStart, writeVarint, OUT, wpos } from "../../assembly/codec/writer";
import { decodeConnect, ConnectRefusal, connectLevel, keepAlive, clientIdLen, willTopicLen,
         willPayloadLen, willQos, usernameLen, passwordLen } from "../../assembly/codec/connect";
import { decodePublish, publishQos, publishRetain, publishDup, publishTopicLen, publishPacketId,
         publishPayloadLen } from "../../assembly/codec/publish";
import { decodeAck, ackPacketId } from "../../assembly/codec/ack";
import { subscribeBegin, subscribeNext, subscribeError, filterLen, requestedQos,
         subscribePacketId } from "../../assembly/codec/subscribe";
import { unsubscribeBegin, unsubscribeNext, unsubscribeError } from "../../assembly/codec/unsubscribe";
import { begin, byte, word, str, ascii, bodyPtr, bodyEnd } from "./wire";

function bytesValid(a: i32, b: i32 = -1, c: i32 = -1, d: i32 = -1): bool {
  begin(); byte(a); if (b >= 0) byte(b); if (c >= 0) byte(c); if (d >= 0) byte(d);
  return utf8Valid(bodyPtr(), <i32>(bodyEnd() - bodyPtr()));
}

describe("UTF-8 strings [MQTT-1.5.3-1] [MQTT-1.5.3-2]", () => {
  it("accepts ASCII, 2-, 3- and 4-byte sequences", () => {
    expect(bytesValid(0x41)).toBe(true);
    expect(bytesValid(0xC3, 0xA9)).toBe(true);          // é
    expect(bytesValid(0xE2, 0x82, 0xAC)).toBe(true);    // €
    expect(bytesValid(0xF0, 0x9F, 0x98, 0x80)).toBe(true);
    expect(bytesValid(0xEF, 0xBB, 0xBF)).toBe(true);    // U+FEFF is allowed [MQTT-1.5.3-3]
  });
  it("rejects U+0000, surrogates, overlong forms, stray and truncated bytes", () => {
    expect(bytesValid(0x00)).toBe(false);
    expect(bytesValid(0xED, 0xA0, 0x80)).toBe(false);   // U+D800
    expect(bytesValid(0xED, 0xBF, 0xBF)).toBe(false);   // U+DFFF
    expect(bytesValid(0xC0, 0x80)).toBe(false);         // overlong NUL
    expect(bytesValid(0xE0, 0x80, 0xAF)).toBe(false);   // overlong '/'
    expect(bytesValid(0x80)).toBe(false);
    expect(bytesValid(0xE2, 0x82)).toBe(false);
    expect(bytesValid(0xF4, 0x90, 0x80, 0x80)).toBe(false); // above U+10FFFF
    expect(bytesValid(0xFF)).toBe(false);
  });
});

/** 24 ASCII bytes with `bad` (1 or 2 bytes; -1: none) at `at`: the eight-byte fast path
 *  and the byte loop both see it, whatever its alignment. */
function longValid(at: i32, bad0: i32, bad1: i32 = -1): bool {
  begin();
  for (let i = 0; i < 24; i++) {
    if (i == at) { byte(bad0); if (bad1 >= 0) byte(bad1); }
    else byte(0x61 + (i % 26));
  }
  return utf8Valid(bodyPtr(), <i32>(bodyEnd() - bodyPtr()));
}

describe("UTF-8 strings, eight bytes at a time", () => {
  it("[MQTT-1.5.3-2] finds U+0000 at every position of a long ASCII string", () => {
    for (let at = 0; at < 24; at++) expect(longValid(at, 0x00)).toBe(false);
    expect(longValid(-1, 0)).toBe(true);
  });
  it("[MQTT-1.5.3-1] checks a multi-byte or stray byte at every position", () => {
    for (let at = 0; at < 24; at++) {
      expect(longValid(at, 0xC3, 0xA9)).toBe(true);   // é
      expect(longValid(at, 0xFF)).toBe(false);
      expect(longValid(at, 0x80)).toBe(false);
      expect(longValid(at, 0xC3)).toBe(false);        // truncated: followed by ASCII
    }
  });
});

describe("Remaining Length varint", () => {
  it("round-trips the boundaries of 1 to 4 bytes", () => {
    const values: i32[] = [0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455];
    const sizes: i32[] = [1, 1, 2, 2, 3, 3, 4, 4];
    for (let i = 0; i < values.length; i++) {
      writerStart(0);
      writeVarint(values[i]);
      expect(<i32>(wpos - OUT)).toBe(sizes[i]);
      expect(decodeVarint(OUT, wpos)).toBe(values[i]);
      expect(varintSize).toBe(sizes[i]);
    }
  });
  it("[MQTT-1.5.5-1] rejects more bytes than the value needs", () => {
    begin(); byte(0x80); byte(0x00);
    expect(decodeVarint(bodyPtr(), bodyEnd())).toBe(-2);
    begin(); byte(0xFF); byte(0x80); byte(0x00);
    expect(decodeVarint(bodyPtr(), bodyEnd())).toBe(-2);
  });
  it("rejects a fifth continuation byte and waits for a truncated one", () => {
    begin(); byte(0xFF); byte(0xFF); byte(0xFF); byte(0xFF); byte(0x01);
    expect(decodeVarint(bodyPtr(), bodyEnd())).toBe(-2);
    begin(); byte(0x80);
    expect(decodeVarint(bodyPtr(), bodyEnd())).toBe(-1);
  });
});

describe("CONNECT", () => {
  it("decodes a full 3.1.1 CONNECT", () => {
    begin(); str("MQTT"); byte(4); byte(0xEE); word(30); str("client"); str("will/t"); str("bye"); str("user"); str("pw");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(0);
    expect(connectLevel).toBe(4);
    expect(keepAlive).toBe(30);
    expect(clientIdLen).toBe(6);
    expect(willTopicLen).toBe(6);
    expect(willPayloadLen).toBe(3);
    expect(willQos).toBe(1);
    expect(usernameLen).toBe(4);
    expect(passwordLen).toBe(2);
  });
  it("decodes MQTT 3.1 (MQIsdp, level 3)", () => {
    begin(); str("MQIsdp"); byte(3); byte(2); word(10); str("old");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(0);
    expect(connectLevel).toBe(3);
  });
  it("[MQTT-3.1.2-1] rejects another protocol name", () => {
    begin(); str("MQTX"); byte(4); byte(2); word(10); str("a");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Protocol);
  });
  it("[MQTT-3.1.2-2] refuses an unsupported level with a CONNACK code", () => {
    begin(); str("MQTT"); byte(9); byte(2); word(10); str("a");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(ConnectRefusal.UnacceptableVersion);
  });
  it("[MQTT-3.1.2-3] rejects the reserved flag", () => {
    begin(); str("MQTT"); byte(4); byte(3); word(10); str("a");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Malformed);
  });
  it("[MQTT-3.1.2-13] [MQTT-3.1.2-15] rejects will QoS or retain without the will flag", () => {
    begin(); str("MQTT"); byte(4); byte(2 | 8); word(10); str("a");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Protocol);
    begin(); str("MQTT"); byte(4); byte(2 | 32); word(10); str("a");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Protocol);
  });
  it("[MQTT-3.1.2-14] rejects will QoS 3", () => {
    begin(); str("MQTT"); byte(4); byte(2 | 4 | 24); word(10); str("a"); str("t"); str("p");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Protocol);
  });
  it("[MQTT-3.1.2-22] rejects a password without a user name", () => {
    begin(); str("MQTT"); byte(4); byte(2 | 64); word(10); str("a"); str("pw");
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Protocol);
  });
  it("rejects truncation at every length and trailing bytes", () => {
    begin(); str("MQTT"); byte(4); byte(0xEE); word(30); str("client"); str("will/t"); str("bye"); str("user"); str("pw");
    const full = <i32>(bodyEnd() - bodyPtr());
    for (let cut = 0; cut < full; cut++) {
      expect(decodeConnect(bodyPtr(), bodyPtr() + <usize>cut)).toBeLessThan(0);
    }
    begin(); str("MQTT"); byte(4); byte(2); word(30); str("a"); byte(0);
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.Malformed);
  });
  it("[MQTT-3.1.3-4] rejects a client id that is not UTF-8", () => {
    begin(); str("MQTT"); byte(4); byte(2); word(30); word(2); byte(0xC0); byte(0x80);
    expect(decodeConnect(bodyPtr(), bodyEnd())).toBe(DecodeError.BadUtf8);
  });
});

describe("PUBLISH", () => {
  it("decodes QoS 1 with packet id and payload", () => {
    begin(); str("a/b"); word(42); ascii("hello");
    expect(decodePublish(0x0B, bodyPtr(), bodyEnd(), false)).toBe(0); // DUP, QoS 1, RETAIN
    expect(publishQos).toBe(1);
    expect(publishDup).toBe(true);
    expect(publishRetain).toBe(true);
    expect(publishTopicLen).toBe(3);
    expect(publishPacketId).toBe(42);
    expect(publishPayloadLen).toBe(5);
  });
  it("decodes QoS 0 without packet id and with an empty payload", () => {
    begin(); str("a");
    expect(decodePublish(0, bodyPtr(), bodyEnd(), false)).toBe(0);
    expect(publishPayloadLen).toBe(0);
  });
  it("rejects a property identifier encoded in more bytes than it needs", () => {
    // Content Type (3) written as 0x83 0x00: accepting it would let the property
    // compaction, which reads identifiers as one byte, walk out of step
    begin(); str("t"); byte(7); byte(0x83); byte(0x00); word(3); ascii("abc"); ascii("payload");
    expect(decodePublish(0, bodyPtr(), bodyEnd(), true)).toBe(DecodeError.Malformed);
    begin(); str("t"); byte(6); byte(0x03); word(3); ascii("abc"); ascii("payload");
    expect(decodePublish(0, bodyPtr(), bodyEnd(), true)).toBe(0);
  });
  it("[MQTT-3.3.1-4] rejects QoS 3", () => {
    begin(); str("a"); word(1);
    expect(decodePublish(6, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Malformed);
  });
  it("[MQTT-2.3.1-1] rejects packet id 0 at QoS 1", () => {
    begin(); str("a"); word(0);
    expect(decodePublish(2, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
  });
  it("[MQTT-3.3.1-2] rejects DUP at QoS 0", () => {
    begin(); str("a");
    expect(decodePublish(8, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
  });
  it("rejects a truncated topic or packet id", () => {
    begin(); word(10); ascii("abc");
    expect(decodePublish(0, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Malformed);
    begin(); str("abc"); byte(1);
    expect(decodePublish(2, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Malformed);
  });
  it("[MQTT-3.3.2-1] rejects a topic that is not UTF-8", () => {
    begin(); word(1); byte(0xFF);
    expect(decodePublish(0, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.BadUtf8);
  });
});

describe("acknowledgements", () => {
  it("decodes a packet id", () => {
    begin(); word(513);
    expect(decodeAck(4, bodyPtr(), bodyEnd(), false)).toBe(0);
    expect(ackPacketId).toBe(513);
  });
  it("rejects a short or long body and id 0", () => {
    begin(); byte(1);
    expect(decodeAck(4, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Malformed);
    begin(); word(1); byte(0);
    expect(decodeAck(4, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Malformed);
    begin(); word(0);
    expect(decodeAck(4, bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
  });
});

describe("SUBSCRIBE", () => {
  it("iterates every (filter, QoS) pair", () => {
    begin(); word(7); str("a/#"); byte(1); str("+/b"); byte(2);
    expect(subscribeBegin(bodyPtr(), bodyEnd(), false)).toBe(0);
    expect(subscribePacketId).toBe(7);
    expect(subscribeNext()).toBe(true);
    expect(filterLen).toBe(3);
    expect(requestedQos).toBe(1);
    expect(subscribeNext()).toBe(true);
    expect(requestedQos).toBe(2);
    expect(subscribeNext()).toBe(false);
    expect(subscribeError()).toBe(0);
  });
  it("[MQTT-3.8.3-3] rejects a SUBSCRIBE with no pair", () => {
    begin(); word(7);
    expect(subscribeBegin(bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
  });
  it("[MQTT-3.8.3-4] rejects reserved option bits and QoS 3", () => {
    begin(); word(7); str("a"); byte(4);
    subscribeBegin(bodyPtr(), bodyEnd(), false);
    expect(subscribeNext()).toBe(false);
    expect(subscribeError()).toBe(DecodeError.Protocol);
    begin(); word(7); str("a"); byte(3);
    subscribeBegin(bodyPtr(), bodyEnd(), false);
    expect(subscribeNext()).toBe(false);
    expect(subscribeError()).toBe(DecodeError.Protocol);
  });
  it("rejects a pair without its options byte, and packet id 0", () => {
    begin(); word(7); str("a");
    subscribeBegin(bodyPtr(), bodyEnd(), false);
    expect(subscribeNext()).toBe(false);
    expect(subscribeError()).toBe(DecodeError.Malformed);
    begin(); word(0); str("a"); byte(0);
    expect(subscribeBegin(bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
  });
});

describe("UNSUBSCRIBE", () => {
  it("iterates filters", () => {
    begin(); word(9); str("a"); str("b/c");
    expect(unsubscribeBegin(bodyPtr(), bodyEnd(), false)).toBe(0);
    expect(unsubscribeNext()).toBe(true);
    expect(unsubscribeNext()).toBe(true);
    expect(unsubscribeNext()).toBe(false);
    expect(unsubscribeError()).toBe(0);
  });
  it("[MQTT-3.10.3-2] rejects no filter; rejects a truncated filter", () => {
    begin(); word(9);
    expect(unsubscribeBegin(bodyPtr(), bodyEnd(), false)).toBe(DecodeError.Protocol);
    begin(); word(9); word(5); ascii("ab");
    unsubscribeBegin(bodyPtr(), bodyEnd(), false);
    expect(unsubscribeNext()).toBe(false);
    expect(unsubscribeError()).toBe(DecodeError.Malformed);
  });
});
