// The SUBSCRIBE a bridge sends upstream once connected (§3.8): REMOTE_PREFIX + PATTERN of
// each `in` and `both` topic line, at its QoS; in MQTT 5 with No Local (its own messages
// are not sent back) and Retain As Published (a retained message stays one downstream).

import { writerStart, writeU8, writeU16, writeVarint, flush, emit, ensure } from "../codec/writer";
import { bridge, topicDirection, topicQos, topicPattern, topicRemote, textLen, Direction } from "./bridges";

/** The SUBSCRIBE for bridge `b` with packet id `packetId`; false when it has no `in` topic. */
export function sendBridgeSubscribe(conn: i32, b: i32, packetId: i32): bool {
  const row = bridge(b);
  const v5 = row.protocol == 5;
  let len = 2 + (v5 ? 1 : 0);
  let count = 0;
  for (let i = row.topics, n = row.topics + row.topicCount; i < n; i++) {
    if ((topicDirection(i) & Direction.In) == 0) continue;
    topicPattern(i); const p = textLen;
    topicRemote(i); const r = textLen;
    len += 2 + r + p + 1;
    count++;
  }
  if (count == 0) return false;
  writerStart(conn);
  writeU8(0x82);
  writeVarint(len);
  writeU16(packetId);
  if (v5) writeU8(0); // no properties
  for (let i = row.topics, n = row.topics + row.topicCount; i < n; i++) {
    if ((topicDirection(i) & Direction.In) == 0) continue;
    const pattern = topicPattern(i), p = textLen;
    const remote = topicRemote(i), r = textLen;
    ensure(2);
    writeU16(r + p);
    emit(remote, r);
    emit(pattern, p);
    ensure(1);
    writeU8(topicQos(i) | (v5 ? 0x04 | 0x08 : 0));
  }
  flush();
  return true;
}
