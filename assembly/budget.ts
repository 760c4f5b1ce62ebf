// What each fixed table costs, for the build's budget table (`budget(id)` export).

import { INPUT_CAPACITY } from "./broker";
import { OUT_SIZE } from "./codec/writer";
import { TOPIC_MAX } from "./config";
import { connectionTableBytes } from "./session/connections";
import { sessionTableBytes } from "./session/sessions";
import { subscriptionTableBytes } from "./session/subscriptions";
import { deliveryTableBytes, deliveriesInUse } from "./session/queue";
import { statGet, Stat } from "./stats";
import { aliasTableBytes } from "./session/aliases";
import { messageTableBytes, chunkTableBytes, messagesInUse, chunksInUse } from "./store/messages";
import { retainedTableBytes } from "./store/retained";
import { groupTableBytes } from "./topics/shared";
import { deliveryScratchBytes } from "./delivery";
import { trieBytes } from "./topics/matcher";

export const enum Table {
  Input = 0, Output = 1, Connections = 2, Sessions = 3, Subscriptions = 4, TopicTrie = 5,
  Messages = 6, MessageStore = 7, Retained = 8, Deliveries = 9, TopicAliases = 10,
  ShareGroups = 11, Scratch = 12, COUNT = 13,
}

/** A counter; those that are the fill of a table are read from the table itself. */
export function statValue(id: u32): f64 {
  switch (id) {
    case Stat.StoredMessages: return <f64>messagesInUse();
    case Stat.StoreChunksUsed: return <f64>chunksInUse();
    case Stat.Deliveries: return <f64>deliveriesInUse();
  }
  return statGet(id);
}

/** Bytes of linear memory reserved for a table, or -1 past the last one. */
export function tableBytes(id: u32): i32 {
  switch (id) {
    case Table.Input: return INPUT_CAPACITY;
    case Table.Output: return OUT_SIZE;
    case Table.Connections: return connectionTableBytes();
    case Table.Sessions: return sessionTableBytes();
    case Table.Subscriptions: return subscriptionTableBytes();
    case Table.TopicTrie: return trieBytes();
    case Table.Messages: return messageTableBytes();
    case Table.MessageStore: return chunkTableBytes();
    case Table.Retained: return retainedTableBytes();
    case Table.Deliveries: return deliveryTableBytes();
    case Table.TopicAliases: return aliasTableBytes();
    case Table.ShareGroups: return groupTableBytes();
    case Table.Scratch: return 2 * (TOPIC_MAX + 8) + deliveryScratchBytes();
  }
  return -1;
}
