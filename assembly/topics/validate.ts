// Topic names and topic filters (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7).

import { hasByte } from "../codec/reader";

const SLASH: u8 = 0x2F;
const PLUS: u8 = 0x2B;
const HASH: u8 = 0x23;
const DOLLAR: u8 = 0x24;

/** A topic name a client may PUBLISH to: at least one byte [MQTT-4.7.3-1] and no
 *  wildcard characters [MQTT-3.3.2-2]. (UTF-8 is checked by the reader.) */
export function validTopicName(ptr: usize, len: i32): bool {
  if (len < 1) return false;
  let i = 0;
  for (; i + 8 <= len; i += 8) { // eight bytes at a time
    const a = load<u32>(ptr + <usize>i, 0, 1), b = load<u32>(ptr + <usize>i, 4, 1); // unaligned
    if (hasByte(a, PLUS) || hasByte(a, HASH) || hasByte(b, PLUS) || hasByte(b, HASH)) return false;
  }
  for (; i < len; i++) {
    const c = load<u8>(ptr + <usize>i);
    if (c == PLUS || c == HASH) return false;
  }
  return true;
}

/** A topic filter: at least one byte [MQTT-4.7.3-1]; `+` occupies a whole level
 *  [MQTT-4.7.1-3]; `#` occupies a whole level and is the last one [MQTT-4.7.1-2]. */
export function validTopicFilter(ptr: usize, len: i32): bool {
  if (len < 1) return false;
  for (let i = 0; i < len; i++) {
    const c = load<u8>(ptr + <usize>i);
    if (c != PLUS && c != HASH) continue;
    const startsLevel = i == 0 || load<u8>(ptr + <usize>(i - 1)) == SLASH;
    const endsLevel = i == len - 1 || load<u8>(ptr + <usize>(i + 1)) == SLASH;
    if (!startsLevel || !endsLevel) return false;
    if (c == HASH && i != len - 1) return false;
  }
  return true;
}

/** Whether `topic` matches `filter`, including the rule that a filter starting with a
 *  wildcard does not match a topic starting with `$` [MQTT-4.7.2-1]. */
export function topicMatches(topic: usize, topicLen: i32, filter: usize, filterLen: i32): bool {
  if (topicLen > 0 && load<u8>(topic) == DOLLAR && filterLen > 0) {
    const f0 = load<u8>(filter);
    if (f0 == PLUS || f0 == HASH) return false;
  }
  let t = 0, f = 0;
  while (f < filterLen) {
    const fc = load<u8>(filter + <usize>f);
    if (fc == HASH) return true; // matches the parent level and everything below
    if (fc == PLUS) {
      while (t < topicLen && load<u8>(topic + <usize>t) != SLASH) t++;
      f++;
    } else {
      // literal level: compare up to the next separator
      while (f < filterLen && t < topicLen) {
        const c = load<u8>(filter + <usize>f);
        if (c == SLASH) break;
        if (c != load<u8>(topic + <usize>t)) return false;
        f++; t++;
      }
      const fEnd = f == filterLen || load<u8>(filter + <usize>f) == SLASH;
      const tEnd = t == topicLen || load<u8>(topic + <usize>t) == SLASH;
      if (!fEnd || !tEnd) return false;
    }
    // both are at a separator or at their end
    if (f == filterLen) return t == topicLen;
    // filter has another level
    if (t == topicLen) {
      // "a/#" matches "a": the rest of the filter must be exactly "/#"
      return f + 2 == filterLen && load<u8>(filter + <usize>(f + 1)) == HASH;
    }
    f++; t++; // skip both separators
  }
  return t == topicLen;
}
