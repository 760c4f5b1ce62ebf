// What each fixed table costs, for the build's budget table (`budget(id)` export).

import { appended } from "./persist/record";
import { degraded, ackTableBytes } from "./persist/journal";
import { pidTableBytes } from "./persist/pids";
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
import { deliveryScratchBytes } from "./delivery/route";
import { trieBytes } from "./topics/matcher";
import { receivedTableBytes } from "./session/received";

// The comment after each table is its name in the build's budget table and the hosts'
// (scripts/vocab.mjs hands them over).
export const enum Table {
  Input = 0,          // input window
  Output = 1,         // output buffer
  Connections = 2,    // connections
  Sessions = 3,       // sessions
  Subscriptions = 4,  // subscriptions
  TopicTrie = 5,      // topic trie
  Messages = 6,       // message rows
  MessageStore = 7,   // message store
  Retained = 8,       // retained
  Deliveries = 9,     // deliveries
  TopicAliases = 10,  // topic aliases
  ShareGroups = 11,   // share groups
  Scratch = 12,       // scratch
  Received = 13,      // qos 2 received
  PersistIds = 14,    // persistence ids
  HeldAcks = 15,      // held acks
  COUNT = 16,
}

/** A counter; those that are the fill of a table are read from the table itself. */
export function statValue(id: u32): f64 {
  switch (id) {
    case Stat.StoredMessages: return <f64>messagesInUse();
    case Stat.StoreChunksUsed: return <f64>chunksInUse();
    case Stat.Deliveries: return <f64>deliveriesInUse();
    case Stat.PersistenceBytes: return appended;
    case Stat.PersistenceDegraded: return degraded ? 1 : 0;
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
    case Table.Received: return receivedTableBytes();
    case Table.PersistIds: return pidTableBytes();
    case Table.HeldAcks: return ackTableBytes();
  }
  return -1;
}
