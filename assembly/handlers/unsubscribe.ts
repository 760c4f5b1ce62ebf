// UNSUBSCRIBE: validate every filter, remove those the session has, and always
// answer UNSUBACK [MQTT-3.10.4-4] [MQTT-3.10.4-5]; MQTT 5 with a code per filter.

import { unsubscribeBegin, unsubscribeNext, unsubscribeError, unsubscribePacketId,
         unsubscribeFilterPtr, unsubscribeFilterLen } from "../codec/unsubscribe";
import { unsubackBegin, unsubackCode, unsubackEnd, UNSUBACK_SUCCESS, UNSUBACK_NO_SUBSCRIPTION,
         UNSUBACK_FILTER_INVALID } from "../codec/unsuback";
import { validTopicFilter } from "../topics/validate";
import { sharePrefixLength } from "../topics/shared";
import { connection } from "../session/connections";
import { unsubscribe } from "../session/subscriptions";
import { closeForDecodeError } from "../session/lifecycle";

export function handleUnsubscribe(conn: i32, body: usize, limit: usize): void {
  const c = connection(conn);
  const v5 = c.level == 5;
  let r = unsubscribeBegin(body, limit, v5);
  let count = 0;
  if (r >= 0) {
    while (unsubscribeNext()) count++; // validate all first
    r = unsubscribeError();
  }
  if (r < 0) {
    closeForDecodeError(conn, r);
    return;
  }
  const s = c.session;
  unsubackBegin(conn, unsubscribePacketId, count, v5);
  unsubscribeBegin(body, limit, v5);
  while (unsubscribeNext()) {
    const offset = sharePrefixLength(unsubscribeFilterPtr, unsubscribeFilterLen);
    if (offset < 0 || !validTopicFilter(unsubscribeFilterPtr + <usize>offset, unsubscribeFilterLen - offset)) {
      if (v5) unsubackCode(UNSUBACK_FILTER_INVALID);
      continue;
    }
    const removed = unsubscribe(s, unsubscribeFilterPtr, unsubscribeFilterLen, offset);
    if (v5) unsubackCode(removed ? UNSUBACK_SUCCESS : UNSUBACK_NO_SUBSCRIPTION);
  }
  unsubackEnd();
}
