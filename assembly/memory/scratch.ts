// Two topic-sized scratch buffers: a topic copied out of the message store must be
// contiguous to be matched or compared. One holds the topic being routed (a will, a
// retained message being replayed), the other the topic of the message being
// encoded, since encoding a queued message can happen in the middle of a route.

import { TOPIC_MAX } from "../config";

export const ROUTE_TOPIC = memory.data(TOPIC_MAX + 8, 8);
export const SEND_TOPIC = memory.data(TOPIC_MAX + 8, 8);
