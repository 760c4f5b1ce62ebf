// A bridge's topic mapping, as Mosquitto's `topic PATTERN DIRECTION QOS LOCAL REMOTE`
// means it: a local topic LOCAL + x goes upstream as REMOTE + x, and back. The first
// `topic` line of the bridge whose filter (prefix + pattern) matches decides.

import { TOPIC_MAX, FILTER_MAX, BRIDGE } from "../config";
import { topicMatches } from "../topics/validate";
import { bridge, topicDirection, topicPattern, topicLocal, topicRemote, textLen, Direction } from "./bridges";

/** Where a mapped topic is written (mappedLen bytes): one for each direction, as a
 *  PUBLISH from upstream (In) may be sent on to another bridge (Out) while it is routed. */
export const MAPPED_IN = memory.data(BRIDGE ? TOPIC_MAX + FILTER_MAX + 8 : 8, 8);
export const MAPPED_OUT = memory.data(BRIDGE ? TOPIC_MAX + FILTER_MAX + 8 : 8, 8);
export let mappedLen = 0;
const FILTER = memory.data(FILTER_MAX * 2 + 8, 8);

/** `topic` mapped for bridge `b` in direction `d` (Out: local to remote; In: remote to
 *  local) into MAPPED; false when no topic line of the bridge covers it (or the result
 *  is longer than a topic can be). */
export function mapTopic(b: i32, d: Direction, topic: usize, len: i32): bool {
  const row = bridge(b);
  for (let i = row.topics, n = row.topics + row.topicCount; i < n; i++) {
    if ((topicDirection(i) & d) == 0) continue;
    const pattern = topicPattern(i), patternLen = textLen;
    const from = d == Direction.Out ? topicLocal(i) : topicRemote(i);
    const fromLen = textLen;
    const to = d == Direction.Out ? topicRemote(i) : topicLocal(i);
    const toLen = textLen;
    if (len < fromLen || memory.compare(topic, from, <usize>fromLen) != 0) continue;
    memory.copy(FILTER, from, <usize>fromLen);
    memory.copy(FILTER + <usize>fromLen, pattern, <usize>patternLen);
    if (!topicMatches(topic, len, FILTER, fromLen + patternLen)) continue;
    const n2 = toLen + len - fromLen;
    if (n2 <= 0 || n2 > TOPIC_MAX) return false;
    const out = d == Direction.Out ? MAPPED_OUT : MAPPED_IN;
    memory.copy(out, to, <usize>toLen);
    memory.copy(out + <usize>toLen, topic + <usize>fromLen, <usize>(len - fromLen));
    mappedLen = n2;
    return true;
  }
  return false;
}
