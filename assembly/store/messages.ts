// The message store: messages that must outlive the packet they arrived in
// (retained messages, wills, QoS 1/2 messages waiting for acknowledgement or for an
// offline session). One stored copy is shared by every delivery that needs it,
// counted by `refs`; the topic and payload live in a chain of fixed-size chunks, so
// the store never fragments.
//
//   Message row                                       chunk (CHUNK_SIZE bytes)
//   ┌──────┬──────┬─────┬────────┬──────────┬───────┐ ┌──────┬──────────────────────┐
//   │ link │ refs │ qos │ retain │ topicLen │ ...   │ │ next │ topic, props, payload│
//   └──────┴──────┴─────┴────────┴──────────┴───────┘ └──────┴──────────────────────┘
//   ... propsLen, payloadLen, first chunk, expiresAt   next = -1 ends the chain

import { MAX_MESSAGES, CHUNK_SIZE, STORE_BYTES } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";
import { emit } from "../codec/writer";
import { PERSISTENCE } from "../config";
import { hostPersistWrite } from "../host";
import { crcUpdate } from "../persist/crc";
import { restoring, pidForget } from "../persist/pids";

// @ts-ignore: decorator
@unmanaged @final export class Message {
  link: i32;
  refs: i32;        // deliveries, retained entry and wills holding this message
  qos: i32;
  retain: i32;      // the RETAIN flag it was published with
  topicLen: i32;
  propsLen: i32;    // MQTT 5 properties that travel with the message (between topic and payload)
  payloadLen: i32;
  first: i32;       // first chunk, -1 if none
  expiresAt: f64;   // Message Expiry: when it must no longer be delivered (0 = never)
  pid: u32;         // its id in the persistence file (0: not written there: persist/pids.ts)
  spare: u32;       // (rows stay a multiple of 8 bytes: expiresAt of every row 8-aligned, which
                    //  wasm2js needs: it reads an f64 as HEAPF64[address >> 3])
}

// @ts-ignore: decorator
@inline const CHUNK_DATA: i32 = CHUNK_SIZE - 4;
// @ts-ignore: decorator
@inline const MAX_CHUNKS: i32 = STORE_BYTES / CHUNK_SIZE;

const messages: Pool = poolDescriptor();
const MESSAGE_BASE = memory.data(MAX_MESSAGES * offsetof<Message>(), 8);
const chunks: Pool = poolDescriptor();
const CHUNK_BASE = memory.data(MAX_CHUNKS * CHUNK_SIZE, 16);

export function storeInit(): void {
  poolInit(messages, MESSAGE_BASE, offsetof<Message>(), MAX_MESSAGES);
  poolInit(chunks, CHUNK_BASE, CHUNK_SIZE, MAX_CHUNKS);
}

// @ts-ignore: decorator
@inline export function message(i: i32): Message {
  return changetype<Message>(MESSAGE_BASE + <usize>i * offsetof<Message>());
}

// @ts-ignore: decorator
@inline function chunkAt(i: i32): usize { return CHUNK_BASE + <usize>i * CHUNK_SIZE; }

export function messagesInUse(): i32 { return messages.used; }
/** Rows [0, high) may be in use (refs > 0). */
export function messagesHighWater(): i32 { return messages.high; }
export function messageTableBytes(): i32 { return MAX_MESSAGES * offsetof<Message>(); }
export function chunkTableBytes(): i32 { return MAX_CHUNKS * CHUNK_SIZE; }
export function chunksInUse(): i32 { return chunks.used; }

/** Copy bytes from `src` into the chain starting at byte `offset` of the message. */
function writeInto(first: i32, offset: i32, src: usize, len: i32): void {
  let c = first;
  while (offset >= CHUNK_DATA) { c = load<i32>(chunkAt(c)); offset -= CHUNK_DATA; }
  while (len > 0) {
    const n = min(len, CHUNK_DATA - offset);
    memory.copy(chunkAt(c) + 4 + <usize>offset, src, <usize>n);
    src += <usize>n; len -= n; offset = 0;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
}

/** Store a message; returns its index with refs = 0, or -1 when the store is full. */
export function storeMessage(topic: usize, topicLen: i32, props: usize, propsLen: i32,
                             payload: usize, payloadLen: i32, qos: i32, retain: i32, expiresAt: f64): i32 {
  const total = topicLen + propsLen + payloadLen;
  const need = (total + CHUNK_DATA - 1) / CHUNK_DATA;
  if (need > chunks.max - chunks.used) return -1;
  const m = poolAlloc(messages);
  if (m < 0) return -1;
  // link the chain first, then copy
  let first = -1;
  for (let i = 0; i < need; i++) {
    const c = poolAlloc(chunks);
    store<i32>(chunkAt(c), first);
    first = c;
  }
  const row = message(m);
  row.refs = 0; row.qos = qos; row.retain = retain;
  row.topicLen = topicLen; row.propsLen = propsLen; row.payloadLen = payloadLen; row.first = first;
  row.expiresAt = expiresAt;
  row.pid = 0;
  writeInto(first, 0, topic, topicLen);
  if (propsLen > 0) writeInto(first, topicLen, props, propsLen);
  writeInto(first, topicLen + propsLen, payload, payloadLen);
  return m;
}

// @ts-ignore: decorator
@inline export function holdMessage(m: i32): void { message(m).refs++; }

/** Messages whose last reference went while the file was read back, not yet freed. */
export let unreferenced = 0;
export function clearUnreferenced(): void { unreferenced = 0; }

/** Drop one reference; the message is freed with its chunks when none is left. While the
 *  file is read back it stays (refs 0) until the end: a later record may name it again
 *  (the broker that wrote them held it by references the file does not keep, such as a
 *  clean session's delivery); persist/restore.ts frees it then, or when the store is full. */
export function releaseMessage(m: i32): void {
  const row = message(m);
  if (--row.refs > 0) return;
  if (PERSISTENCE && restoring) { unreferenced++; return; }
  freeMessage(m);
}

/** Free a message nobody references (e.g. stored but then not needed). */
export function freeMessage(m: i32): void {
  if (PERSISTENCE && restoring) pidForget(message(m).pid);
  let c = message(m).first;
  while (c >= 0) {
    const next = load<i32>(chunkAt(c));
    poolFree(chunks, c);
    c = next;
  }
  poolFree(messages, m);
}

/** Copy `len` bytes from byte `offset` of the message (topic first, then payload). */
export function copyOut(m: i32, offset: i32, dst: usize, len: i32): void {
  let c = message(m).first;
  while (offset >= CHUNK_DATA) { c = load<i32>(chunkAt(c)); offset -= CHUNK_DATA; }
  while (len > 0) {
    const n = min(len, CHUNK_DATA - offset);
    memory.copy(dst, chunkAt(c) + 4 + <usize>offset, <usize>n);
    dst += <usize>n; len -= n; offset = 0;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
}

/** Emit bytes [offset, offset+len) of the message through the writer, straight from
 *  the chunks (no copy in the core for large pieces). */
export function emitRange(m: i32, offset: i32, len: i32): void {
  let c = message(m).first;
  while (offset >= CHUNK_DATA) { c = load<i32>(chunkAt(c)); offset -= CHUNK_DATA; }
  while (len > 0) {
    const n = min(len, CHUNK_DATA - offset);
    emit(chunkAt(c) + 4 + <usize>offset, n);
    len -= n; offset = 0;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
}

/** Whether the stored topic equals the bytes at `ptr`. */
export function topicEquals(m: i32, ptr: usize, len: i32): bool {
  const row = message(m);
  if (row.topicLen != len) return false;
  let c = row.first;
  let offset = 0;
  while (len > 0) {
    const n = min(len, CHUNK_DATA);
    if (memory.compare(chunkAt(c) + 4, ptr + <usize>offset, <usize>n) != 0) return false;
    len -= n; offset += n;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
  return true;
}

/** Continue `crc` over bytes [offset, offset+len) of the message (a persistence record). */
export function rangeCrc(m: i32, offset: i32, len: i32, crc: u32): u32 {
  let c = message(m).first;
  while (offset >= CHUNK_DATA) { c = load<i32>(chunkAt(c)); offset -= CHUNK_DATA; }
  while (len > 0) {
    const n = min(len, CHUNK_DATA - offset);
    crc = crcUpdate(crc, chunkAt(c) + 4 + <usize>offset, n);
    len -= n; offset = 0;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
  return crc;
}

/** Append bytes [offset, offset+len) of the message to the persistence file, straight
 *  from the chunks. */
export function rangePersist(m: i32, offset: i32, len: i32): void {
  let c = message(m).first;
  while (offset >= CHUNK_DATA) { c = load<i32>(chunkAt(c)); offset -= CHUNK_DATA; }
  while (len > 0) {
    const n = min(len, CHUNK_DATA - offset);
    hostPersistWrite(chunkAt(c) + 4 + <usize>offset, n);
    len -= n; offset = 0;
    if (len > 0) c = load<i32>(chunkAt(c));
  }
}
