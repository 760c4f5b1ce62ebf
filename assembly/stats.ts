// Counters the host reads with `stat(id)` (for logs now, `$SYS` later).

export const enum Stat {
  ConnectionsOpen = 0,      // network connections currently open
  ClientsConnected = 1,     // connections that completed CONNECT
  SessionsStored = 2,       // sessions in the table (online and offline)
  MessagesReceived = 3,     // PUBLISH packets received
  MessagesSent = 4,         // PUBLISH packets sent
  BytesReceived = 5,
  DroppedQos0Slow = 6,      // QoS 0 messages dropped for a subscriber that does not read
  DroppedQueueFull = 7,     // QoS 1/2 messages dropped because a session's queue was full
  DroppedStoreFull = 8,     // messages that could not be stored (message store full)
  Subscriptions = 9,
  RetainedMessages = 10,
  StoredMessages = 11,
  RefusedConnections = 12,  // CONNACK with a refusal, or no connection slot
  ProtocolErrors = 13,      // connections closed for a malformed or forbidden packet
  StoreChunksUsed = 14,
  Deliveries = 15,          // queued or in-flight QoS 1/2 deliveries
  DroppedExpired = 16,      // queued messages whose Message Expiry Interval passed
  DroppedTooLarge = 17,     // messages larger than a client's Maximum Packet Size
  ConnectTimeouts = 18,     // connections closed for not sending CONNECT in time
  KeepAliveTimeouts = 19,   // connections closed for keep-alive silence
  RetainedRefused = 20,     // retained messages not kept (retained table or message store full)
  PublisherHolds = 21,      // times a publisher was not read while a subscriber it feeds caught up
  StalledSubscribers = 22,  // subscribers declared stalled (took no bytes for the stall timeout)
  InputBudgetPauses = 23,   // times a connection waited for room in the input budget
  OwnReplyPauses = 24,      // times a client was not read while its own replies piled up unread
  DroppedSizeLimit = 25,    // PUBLISHes dropped: payload above message_size_limit
  DeniedPublishes = 26,     // PUBLISHes and wills the ACL file does not let their client write
  DeniedSubscriptions = 27, // SUBSCRIBE filters refused: the ACL file lets their client read none of it
  PersistenceBytes = 28,    // bytes written to the persistence file (records and snapshots)
  PersistenceSnapshots = 29, // snapshots written (at start, compactions, retries after a failure)
  PersistenceErrors = 30,   // writes or snapshots of the persistence file that failed
  PersistenceDegraded = 31, // 1 while persistence is degraded (a write failed; nothing is being saved)
  BytesSent = 32,           // bytes handed to the host for every connection (frames and HTTP included)
  PacketsReceived = 33,     // MQTT packets of every type received
  PacketsSent = 34,         // MQTT packets of every type sent
  PublishBytesReceived = 35, // payload bytes of the PUBLISHes received
  PublishBytesSent = 36,    // payload bytes of the PUBLISHes sent
  SessionsExpired = 37,     // persistent sessions ended by their expiry
  ConnectPackets = 38,      // CONNECT packets received
  ConnectionsAccepted = 39, // sockets the core took (open returned an id)
  COUNT = 40,
}

const COUNTERS = memory.data(<i32>Stat.COUNT * 8, 8);

// @ts-ignore: decorator
@inline export function statAdd(id: Stat, n: f64 = 1): void {
  const p = COUNTERS + (<usize>id << 3);
  store<f64>(p, load<f64>(p) + n);
}

export function statGet(id: u32): f64 {
  if (id >= <u32>Stat.COUNT) return -1;
  return load<f64>(COUNTERS + (<usize>id << 3));
}
