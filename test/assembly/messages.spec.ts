// The message store (assembly/store/messages.ts): messages in chains of chunks,
// reference counted; what it holds, what it refuses when full, and that every row and
// chunk comes back. The fuzzer once found messages freed twice by the fan-out: the
// last describe drives those cases through the broker.

import { CHUNK_SIZE, STORE_BYTES, MAX_MESSAGES } from "../../assembly/config";
import { storeInit, storeMessage, holdMessage, releaseMessage, freeMessage, message, messagesInUse,
         chunksInUse, copyOut, emitRange, topicEquals } from "../../assembly/store/messages";
import { writerStart, flush } from "../../assembly/codec/writer";
import { brokerInit, brokerOpen, brokerClosed } from "../../assembly/broker";
import { deliveriesInUse } from "../../assembly/session/queue";
import { begin, byte, word, str, ascii, send, take, sent, sentLen, connected, subscribe1, ackAll,
         publish, text, bodyLength, now } from "./wire";

// @ts-ignore: decorator
@inline const CHUNK_DATA: i32 = CHUNK_SIZE - 4;   // a chunk's first 4 bytes link the chain
// @ts-ignore: decorator
@inline const CHUNKS: i32 = STORE_BYTES / CHUNK_SIZE;

/** Bytes to store: byte i is (i * 7) & 255, so any slice is recognisable. */
const PAYLOAD = memory.data(STORE_BYTES);
for (let i = 0; i < STORE_BYTES; i++) store<u8>(PAYLOAD + <usize>i, <u8>(i * 7));
const PROPS = memory.data<u8>([0x01, 0x01, 0x03, 0x00, 0x01, 0x74]); // payload format 1, content type "t"
const COPY = memory.data(STORE_BYTES);
const ROWS = memory.data(4 * MAX_MESSAGES);

/** A message on topic "t" whose topic, properties and payload take `total` bytes. */
function storeSized(total: i32): i32 {
  return storeMessage(text("t"), 1, 0, 0, PAYLOAD, total - 1, 1, 0, 0);
}


describe("message store: what it holds", () => {
  beforeEach(() => { storeInit(); });   // a failed test leaves no damage behind

  it("stores topic, properties and payload across chunks and gives them back", () => {
    const topic = text("sensors/kitchen/temperature");
    const topicLen = bodyLength();
    const m = storeMessage(topic, topicLen, PROPS, 6, PAYLOAD, 300, 2, 1, 1234);
    expect(m).toBeGreaterThanOrEqual(0);
    const row = message(m);
    expect(row.refs).toBe(0);
    expect(row.qos).toBe(2);
    expect(row.retain).toBe(1);
    expect(row.topicLen).toBe(topicLen);
    expect(row.propsLen).toBe(6);
    expect(row.payloadLen).toBe(300);
    expect(row.expiresAt).toBe(1234);
    const total = topicLen + 6 + 300;
    expect(chunksInUse()).toBe((total + CHUNK_DATA - 1) / CHUNK_DATA);
    copyOut(m, 0, COPY, total);
    expect(memory.compare(COPY, topic, <usize>topicLen)).toBe(0);
    expect(memory.compare(COPY + <usize>topicLen, PROPS, 6)).toBe(0);
    expect(memory.compare(COPY + <usize>topicLen + 6, PAYLOAD, 300)).toBe(0);
    // a slice that starts inside a later chunk
    copyOut(m, CHUNK_DATA + 5, COPY, 100);
    expect(memory.compare(COPY, PAYLOAD + <usize>(CHUNK_DATA + 5 - topicLen - 6), 100)).toBe(0);
    freeMessage(m);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });

  it("compares its topic with a topic in memory", () => {
    const m = storeMessage(text("a/long/topic/that/fills/more/than/one/chunk/of/the/store/" +
                                "when/the/chunks/are/small/like/on/the/test/board/x"), bodyLength(),
                           0, 0, PAYLOAD, 10, 0, 0, 0);
    expect(topicEquals(m, text("a/long/topic/that/fills/more/than/one/chunk/of/the/store/" +
                               "when/the/chunks/are/small/like/on/the/test/board/x"), bodyLength())).toBe(true);
    expect(topicEquals(m, text("a/long/topic/that/fills/more/than/one/chunk/of/the/store/" +
                               "when/the/chunks/are/small/like/on/the/test/board/y"), bodyLength())).toBe(false);
    expect(topicEquals(m, text("a/long/topic"), bodyLength())).toBe(false);
    freeMessage(m);
  });

  it("takes exactly the chunks its bytes need", () => {
    const sizes: i32[] = [1, CHUNK_DATA, CHUNK_DATA + 1, 2 * CHUNK_DATA, 2 * CHUNK_DATA + 1];
    const chunks: i32[] = [1, 1, 2, 2, 3];
    for (let i = 0; i < sizes.length; i++) {
      const m = storeSized(sizes[i]);
      expect(chunksInUse()).toBe(chunks[i]);
      freeMessage(m);
      expect(chunksInUse()).toBe(0);
    }
  });

  it("emits any range of its bytes through the writer, across chunk boundaries", () => {
    const m = storeSized(3 * CHUNK_DATA);
    writerStart(7);
    emitRange(m, CHUNK_DATA - 10, CHUNK_DATA + 20);
    flush();
    expect(take(7)).toBe(CHUNK_DATA + 20);
    let mismatch = -1;
    for (let i = 0; i < sentLen; i++) {
      if (sent(i) != <i32>load<u8>(PAYLOAD + <usize>(CHUNK_DATA - 10 - 1 + i))) { mismatch = i; break; }
    }
    expect(mismatch).toBe(-1);
    freeMessage(m);
  });
});

describe("message store: references", () => {
  beforeEach(() => { storeInit(); });

  it("keeps a message while any reference holds it, and frees it with its chunks at the last release", () => {
    const m = storeSized(3 * CHUNK_DATA);
    holdMessage(m); holdMessage(m); holdMessage(m);   // e.g. retained, and two deliveries
    expect(message(m).refs).toBe(3);
    releaseMessage(m);
    releaseMessage(m);
    expect(messagesInUse()).toBe(1);
    expect(chunksInUse()).toBe(3);
    copyOut(m, 0, COPY, 3 * CHUNK_DATA);              // still readable
    expect(memory.compare(COPY + 1, PAYLOAD, <usize>(3 * CHUNK_DATA - 1))).toBe(0);
    releaseMessage(m);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });

  it("gives back every row and chunk over 10,000 rounds of store, hold and release", () => {
    let broken = 0;
    for (let r = 0; r < 10000; r++) {
      const a = storeSized(1 + (r % (4 * CHUNK_DATA)));
      const b = storeSized(1 + ((r * 13) % (2 * CHUNK_DATA)));
      if (a < 0 || b < 0) { broken++; break; }
      holdMessage(a); holdMessage(b); holdMessage(a);
      releaseMessage(a);
      releaseMessage(b);
      releaseMessage(a);
      if (messagesInUse() != 0 || chunksInUse() != 0) { broken++; break; } // before a double free loops
    }
    expect(broken).toBe(0);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });
});

describe("message store: limits", () => {
  beforeEach(() => { storeInit(); });

  it("refuses a message the free chunks cannot hold, taking neither a row nor a chunk", () => {
    const big = storeSized((CHUNKS - 12) * CHUNK_DATA);
    expect(big).toBeGreaterThanOrEqual(0);
    expect(chunksInUse()).toBe(CHUNKS - 12);
    expect(storeSized(12 * CHUNK_DATA + 1)).toBe(-1);    // one byte too many
    expect(messagesInUse()).toBe(1);
    expect(chunksInUse()).toBe(CHUNKS - 12);
    const last = storeSized(12 * CHUNK_DATA);            // exactly what is left
    expect(last).toBeGreaterThanOrEqual(0);
    expect(chunksInUse()).toBe(CHUNKS);
    expect(storeSized(1)).toBe(-1);                      // the store is full
    expect(messagesInUse()).toBe(2);
    freeMessage(big);
    freeMessage(last);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });

  it("refuses a message when every row is taken, and stores again once one is free", () => {
    for (let i = 0; i < MAX_MESSAGES; i++) store<i32>(ROWS + <usize>i * 4, storeSized(1));
    expect(messagesInUse()).toBe(MAX_MESSAGES);
    expect(storeSized(1)).toBe(-1);
    expect(chunksInUse()).toBe(MAX_MESSAGES);            // the refused one took no chunk
    freeMessage(load<i32>(ROWS + 5 * 4));
    const again = storeSized(1);
    expect(again).toBeGreaterThanOrEqual(0);
    store<i32>(ROWS + 5 * 4, again);
    for (let i = 0; i < MAX_MESSAGES; i++) freeMessage(load<i32>(ROWS + <usize>i * 4));
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
  });
});

/** CONNECT at MQTT 5 with an empty property block; returns the connection. */
function connectV5(id: string): i32 {
  const c = brokerOpen(0, now);
  begin(); str("MQTT"); byte(5); byte(2); word(60); byte(0); str(id);
  send(c, 0x10);
  take(c);
  return c;
}
/** PUBLISH at QoS 1 from an MQTT 5 client with Message Expiry Interval `expiry`. */
function publishExpiring(conn: i32, topic: string, payload: string, packetId: i32, expiry: u32): void {
  begin(); str(topic); word(packetId); byte(5); byte(0x02); word(<i32>(expiry >>> 16)); word(<i32>(expiry & 0xFFFF));
  ascii(payload);
  send(conn, 0x32);
}

describe("message store: references through the broker (fuzzer regressions)", () => {
  it("frees a QoS 1 message with Message Expiry 0 exactly once (one v5 subscriber)", () => {
    brokerInit(0, 0);
    const c = connectV5("expiry-0");
    begin(); word(1); byte(0); str("t"); byte(1); send(c, 0x82); take(c);
    publishExpiring(c, "t", "payload", 7, 0);
    ackAll(c);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
    expect(deliveriesInUse()).toBe(0);
    // and the store still works
    publishExpiring(c, "t", "after", 8, 3600);
    expect(ackAll(c)).toBe(1);
    expect(messagesInUse()).toBe(0);
    brokerClosed(c, now);
  });

  it("frees a message dropped as too large for a v5 subscriber exactly once", () => {
    const small = brokerOpen(0, now);
    // Maximum Packet Size 20
    begin(); str("MQTT"); byte(5); byte(2); word(60); byte(5); byte(0x27); word(0); word(20); str("small");
    send(small, 0x10); take(small);
    begin(); word(1); byte(0); str("t"); byte(1); send(small, 0x82); take(small);
    const pub = connected("pub-311");
    publish(pub, "t", "a payload well beyond twenty bytes", 1, false, 5);
    expect(take(small)).toBe(0);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
    publish(pub, "t", "tiny", 1, false, 6);
    expect(ackAll(small)).toBe(1);
    expect(messagesInUse()).toBe(0);
    brokerClosed(small, now); brokerClosed(pub, now);
  });
  // last: the bug this guards against went on to hang the core
  it("frees it exactly once with two subscribers, and delivers the next message to both", () => {
    const v5 = connectV5("sub-v5");
    begin(); word(1); byte(0); str("t"); byte(1); send(v5, 0x82); take(v5);
    const v311 = connected("sub-311");
    subscribe1(v311, 1, "t", 1); take(v311);
    const pub = connectV5("pub-v5");
    publishExpiring(pub, "t", "gone", 3, 0);
    ackAll(v5); ackAll(v311);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
    publishExpiring(pub, "t", "kept", 4, 3600);
    expect(ackAll(v5)).toBe(1);
    expect(ackAll(v311)).toBe(1);
    expect(messagesInUse()).toBe(0);
    expect(chunksInUse()).toBe(0);
    expect(deliveriesInUse()).toBe(0);
    brokerClosed(v5, now); brokerClosed(v311, now); brokerClosed(pub, now);
  });
});
