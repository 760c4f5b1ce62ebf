// Compile-time limits, read once from the board profile (`boards/<name>.json`,
// passed by scripts/build.mjs as `--use BOARD_<KEY>=<value>`). They are constants,
// so every table in linear memory has a static size and an over-budget board
// fails at build time instead of at run time. The fallbacks are a small test board.

/** Network connections the core tracks at once (a few more than sessions, so a
 *  client beyond MAX_SESSIONS still gets a CONNACK "server unavailable"). */
// @ts-ignore: decorator
@inline export const MAX_CONNECTIONS: i32 = isDefined(BOARD_MAX_CONNECTIONS) ? BOARD_MAX_CONNECTIONS : 20;
/** Client sessions, online or persistent and offline. */
// @ts-ignore: decorator
@inline export const MAX_SESSIONS: i32 = isDefined(BOARD_MAX_SESSIONS) ? BOARD_MAX_SESSIONS : 16;
/** Longest client identifier accepted, in bytes (the spec requires 23). */
// @ts-ignore: decorator
@inline export const CLIENT_ID_MAX: i32 = isDefined(BOARD_CLIENT_ID_MAX) ? BOARD_CLIENT_ID_MAX : 64;
/** Subscriptions of all sessions together. */
// @ts-ignore: decorator
@inline export const MAX_SUBSCRIPTIONS: i32 = isDefined(BOARD_MAX_SUBSCRIPTIONS) ? BOARD_MAX_SUBSCRIPTIONS : 64;
/** Longest topic filter a subscription may have, in bytes. */
// @ts-ignore: decorator
@inline export const FILTER_MAX: i32 = isDefined(BOARD_FILTER_MAX) ? BOARD_FILTER_MAX : 128;
/** Nodes of the subscription trie (one per distinct filter level). */
// @ts-ignore: decorator
@inline export const MAX_TOPIC_NODES: i32 = isDefined(BOARD_MAX_TOPIC_NODES) ? BOARD_MAX_TOPIC_NODES : 256;
/** Stored messages (retained, wills, and QoS 1/2 messages waiting for delivery). */
// @ts-ignore: decorator
@inline export const MAX_MESSAGES: i32 = isDefined(BOARD_MAX_MESSAGES) ? BOARD_MAX_MESSAGES : 128;
/** Bytes per chunk of the message store; a message is a chain of chunks. */
// @ts-ignore: decorator
@inline export const CHUNK_SIZE: i32 = isDefined(BOARD_CHUNK_SIZE) ? BOARD_CHUNK_SIZE : 128;
/** Bytes of the message store (topics and payloads of stored messages). */
// @ts-ignore: decorator
@inline export const STORE_BYTES: i32 = isDefined(BOARD_STORE_BYTES) ? BOARD_STORE_BYTES : 65536;
/** Retained messages. */
// @ts-ignore: decorator
@inline export const MAX_RETAINED: i32 = isDefined(BOARD_MAX_RETAINED) ? BOARD_MAX_RETAINED : 32;
/** Queued or in-flight QoS 1/2 deliveries of all sessions together. */
// @ts-ignore: decorator
@inline export const MAX_DELIVERIES: i32 = isDefined(BOARD_MAX_DELIVERIES) ? BOARD_MAX_DELIVERIES : 256;
/** QoS 1/2 messages one session may have queued or in flight; more are dropped and counted. */
// @ts-ignore: decorator
@inline export const QUEUE_MAX: i32 = isDefined(BOARD_QUEUE_MAX) ? BOARD_QUEUE_MAX : 100;
/** Unacknowledged QoS 1/2 PUBLISHes sent to one client at a time. */
// @ts-ignore: decorator
@inline export const INFLIGHT_MAX: i32 = isDefined(BOARD_INFLIGHT_MAX) ? BOARD_INFLIGHT_MAX : 16;
/** QoS 2 packet ids received from one client and not yet released (PUBREL). */
// @ts-ignore: decorator
@inline export const INFLIGHT_IN_MAX: i32 = isDefined(BOARD_INFLIGHT_IN_MAX) ? BOARD_INFLIGHT_IN_MAX : 16;
/** QoS 2 packet ids received and not yet released, all sessions together (MQTT 3.1.1
 *  clients have no Receive Maximum; MQTT 5 ones are held to INFLIGHT_IN_MAX each). */
// @ts-ignore: decorator
@inline export const MAX_RECEIVED: i32 = isDefined(BOARD_MAX_RECEIVED) ? BOARD_MAX_RECEIVED : MAX_SESSIONS * INFLIGHT_IN_MAX;
/** Largest whole packet accepted (fixed header included). */
// @ts-ignore: decorator
@inline export const PACKET_MAX: i32 = isDefined(BOARD_PACKET_MAX) ? BOARD_PACKET_MAX : 65536;
/** Bytes waiting in the host for one subscriber above which QoS 0 messages to it are dropped. */
// @ts-ignore: decorator
@inline export const BACKLOG_MAX: i32 = isDefined(BOARD_BACKLOG_MAX) ? BOARD_BACKLOG_MAX : 65536;

/** MQTT 5 topic aliases a client may use towards us (our Topic Alias Maximum, ≤ 32). */
// @ts-ignore: decorator
@inline export const TOPIC_ALIAS_MAX: i32 = isDefined(BOARD_TOPIC_ALIAS_MAX) ? BOARD_TOPIC_ALIAS_MAX : 4;
/** MQTT 5 topic aliases we use towards one client that allows them. */
// @ts-ignore: decorator
@inline export const ALIAS_OUT_MAX: i32 = isDefined(BOARD_ALIAS_OUT_MAX) ? BOARD_ALIAS_OUT_MAX : 4;
/** Longest topic an alias slot holds (in either direction). */
// @ts-ignore: decorator
@inline export const ALIAS_TOPIC_MAX: i32 = isDefined(BOARD_ALIAS_TOPIC_MAX) ? BOARD_ALIAS_TOPIC_MAX : 64;
/** Shared subscription groups ($share/{group}/{filter}) of all sessions together. */
// @ts-ignore: decorator
@inline export const MAX_SHARE_GROUPS: i32 = isDefined(BOARD_MAX_SHARE_GROUPS) ? BOARD_MAX_SHARE_GROUPS : 8;

/** 1: the core parses config file text (configfile.ts); 0: it is compiled out and `config`
 *  refuses every file (a microcontroller takes its settings as options, and the parser
 *  with Mosquitto's key list would cost it about a third of its .wasm). */
// @ts-ignore: decorator
@inline export const CONFIG_TEXT: i32 = isDefined(BOARD_CONFIG_TEXT) ? BOARD_CONFIG_TEXT : 1;

/** Listeners (sockets) a config file may configure: `listener` lines, and the default
 *  listener of `port`/`bind_address`. A board without the parser has its one (--port). */
// @ts-ignore: decorator
@inline export const MAX_LISTENERS: i32 = isDefined(BOARD_MAX_LISTENERS) ? BOARD_MAX_LISTENERS : 8;

/** 1: listeners may speak MQTT over WebSockets (`protocol websockets`: the HTTP upgrade and
 *  RFC 6455 framing in ws/); 0: compiled out (a microcontroller has no HTTP). */
// @ts-ignore: decorator
@inline export const WEBSOCKETS: i32 = isDefined(BOARD_WEBSOCKETS) ? BOARD_WEBSOCKETS : 1;

/** 1: the broker can keep its state in a file (`persistence true`: persist/); 0: compiled
 *  out (the mcu's .wasm budget has no room for it yet). */
// @ts-ignore: decorator
@inline export const PERSISTENCE: i32 = isDefined(BOARD_PERSISTENCE) ? BOARD_PERSISTENCE : 1;

/** 1: the broker publishes `$SYS/broker/...` every sys_interval (sys/tree.ts); 0: compiled out. */
// @ts-ignore: decorator
@inline export const SYS: i32 = isDefined(BOARD_SYS) ? BOARD_SYS : 1;

/** Users a password file may hold (the config's password_file); 0: none. */
// @ts-ignore: decorator
@inline export const MAX_USERS: i32 = isDefined(BOARD_MAX_USERS) ? BOARD_MAX_USERS : 32;

/** Rules an ACL file may hold (the config's acl_file: `topic` and `pattern` lines); 0: no ACLs. */
// @ts-ignore: decorator
@inline export const MAX_ACL_RULES: i32 = isDefined(BOARD_MAX_ACL_RULES) ? BOARD_MAX_ACL_RULES : 64;
/** `user` sections an ACL file may hold. */
// @ts-ignore: decorator
@inline export const MAX_ACL_USERS: i32 = isDefined(BOARD_MAX_ACL_USERS) ? BOARD_MAX_ACL_USERS : 16;
/** Bytes of the ACL file's topics and user names together. */
// @ts-ignore: decorator
@inline export const ACL_TEXT_BYTES: i32 = isDefined(BOARD_ACL_TEXT_BYTES) ? BOARD_ACL_TEXT_BYTES : 4096;
/** Longest user name kept with a session for the ACL's `user` sections and `%u`; a client
 *  with a longer one is denied everything while an ACL file is in force. */
// @ts-ignore: decorator
@inline export const USERNAME_MAX: i32 = isDefined(BOARD_USERNAME_MAX) ? BOARD_USERNAME_MAX : 64;

/** Subscription identifiers kept per queued delivery (MQTT 5, overlapping subscriptions). */
// @ts-ignore: decorator
@inline export const SUB_IDS_PER_DELIVERY: i32 = 4;
/** Milliseconds a new connection has to send CONNECT. */
// @ts-ignore: decorator
@inline export const CONNECT_TIMEOUT_MS: f64 = 10000;
/** Longest topic name: the wire format caps it at 65535, and no topic can be longer
 *  than the largest packet it arrives in (this keeps small boards' scratch small). */
// @ts-ignore: decorator
@inline export const TOPIC_MAX: i32 = PACKET_MAX < 65535 ? PACKET_MAX : 65535;

/** 1: `connection` sections bridge this broker to upstream brokers (bridge/); 0: compiled out. */
// @ts-ignore: decorator
@inline export const BRIDGE: i32 = isDefined(BOARD_BRIDGE) ? BOARD_BRIDGE : 1;
/** Bridges (`connection` sections) a config file may hold. */
// @ts-ignore: decorator
@inline export const MAX_BRIDGES: i32 = isDefined(BOARD_MAX_BRIDGES) ? BOARD_MAX_BRIDGES : 4;
/** `topic` lines of all bridges together. */
// @ts-ignore: decorator
@inline export const MAX_BRIDGE_TOPICS: i32 = isDefined(BOARD_MAX_BRIDGE_TOPICS) ? BOARD_MAX_BRIDGE_TOPICS : 32;
/** Bytes of the bridges' texts together: names, addresses, client ids, credentials, file
 *  paths, topic patterns and prefixes. */
// @ts-ignore: decorator
@inline export const BRIDGE_TEXT_BYTES: i32 = isDefined(BOARD_BRIDGE_TEXT_BYTES) ? BOARD_BRIDGE_TEXT_BYTES : 8192;
