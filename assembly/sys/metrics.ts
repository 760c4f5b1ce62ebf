// One table of what the broker tells about itself, for the three places that tell it:
// the `$SYS/broker/...` topics (tree.ts, Mosquitto's names and formats), Prometheus
// metrics at /metrics and the status page's /stats.json (http/serve.ts). `metric(i)`
// loads row i into the globals below; false past the last.

import { MAX_CONNECTIONS, MAX_SESSIONS, MAX_SUBSCRIPTIONS, MAX_TOPIC_NODES, MAX_MESSAGES, STORE_BYTES, CHUNK_SIZE,
         MAX_RETAINED, MAX_DELIVERIES, MAX_RECEIVED, MAX_SHARE_GROUPS, PERSISTENCE, WEBSOCKETS, BRIDGE } from "../config";
import { bridgeCount } from "../bridge/bridges";
import { bridgesUp } from "../bridge/link";
import { statValue } from "../budget";
import { Stat } from "../stats";
import { now } from "../clock";
import { connectionsInUse } from "../session/connections";
import { sessionsInUse } from "../session/sessions";
import { subscriptionsInUse } from "../session/subscriptions";
import { nodesInUse } from "../topics/matcher";
import { messagesInUse, chunksInUse } from "../store/messages";
import { retainedInUse } from "../store/retained";
import { deliveriesInUse } from "../session/queue";
import { receivedInUse } from "../session/received";
import { groupsInUse } from "../topics/shared";
import { persistence } from "../settings";
import { degraded } from "../persist/journal";

/** Names and HELP texts for /metrics only where there is HTTP: a board without it carries none. */
// @ts-ignore: decorator
@inline const H: bool = WEBSOCKETS != 0;

export const enum Kind { Counter = 0, Gauge = 1, Text = 2, Load = 3 }

/** Row i: `$SYS/broker/` + sysName (empty: not in $SYS), the Prometheus name (`midge_`
 *  + promName; empty: not a metric), its HELP, and the value now. */
export let sysName: string = "";
export let promName: string = "";
export let help: string = "";
export let kind: Kind = Kind.Counter;
export let value: f64 = 0;
/** For a table row: which table (`midge_table_used{table="…"}`). */
export let label: string = "";

/** When the broker started (the core's clock). */
export let startedAt: f64 = -1;
export function noteStart(t: f64): void { if (startedAt < 0) startedAt = t; }

// @ts-ignore: decorator
@inline function row(s: string, p: string, h: string, k: Kind, v: f64): bool {
  sysName = s; promName = p; help = h; kind = k; value = v; label = "";
  return true;
}
// @ts-ignore: decorator
@inline function table(name: string, used: i32, size: i32, isSize: bool): bool {
  sysName = "midge/tables/"; promName = isSize ? "table_size" : "table_used";
  help = !H ? "" : isSize ? "Rows (bytes for the message store) of each fixed table, reserved at start" : "Rows (bytes for the message store) of each fixed table in use";
  kind = Kind.Gauge; value = <f64>(isSize ? size : used); label = name;
  return true;
}

function st(id: Stat): f64 { return statValue(<u32>id); }

export const LOADS = 9;
/** The nine counters Mosquitto publishes load averages of (tree.ts keeps them). */
export function loadSource(k: i32): f64 {
  switch (k) {
    case 0: return st(Stat.PacketsReceived);
    case 1: return st(Stat.PacketsSent);
    case 2: return st(Stat.MessagesReceived);
    case 3: return st(Stat.MessagesSent);
    case 4: return droppedTotal();
    case 5: return st(Stat.BytesReceived);
    case 6: return st(Stat.BytesSent);
    case 7: return st(Stat.ConnectPackets);
    case 8: return st(Stat.ConnectionsAccepted);
  }
  return 0;
}
export function loadName(k: i32): string {
  switch (k) {
    case 0: return "messages/received";
    case 1: return "messages/sent";
    case 2: return "publish/received";
    case 3: return "publish/sent";
    case 4: return "publish/dropped";
    case 5: return "bytes/received";
    case 6: return "bytes/sent";
    case 7: return "connections";
  }
  return "sockets";
}

export function droppedTotal(): f64 {
  return st(Stat.DroppedQos0Slow) + st(Stat.DroppedQueueFull) + st(Stat.DroppedStoreFull) + st(Stat.DroppedExpired) +
         st(Stat.DroppedTooLarge) + st(Stat.DroppedSizeLimit);
}

/** The most clients (sessions) there have been at once, noted at each $SYS update and scrape. */
let clientsMaximum: f64 = 0;

export function metric(i: i32): bool {
  const connected = st(Stat.ClientsConnected);
  const total = <f64>sessionsInUse();
  switch (i) {
    case 0: return row("uptime", H ? "uptime_seconds" : "", H ? "Seconds since the broker started" : "", Kind.Gauge, Math.floor((now - startedAt) / 1000));
    case 1: return row("clients/total", H ? "clients_total" : "", H ? "Client sessions, connected or persistent and offline" : "", Kind.Gauge, total);
    case 2: return row("clients/connected", H ? "clients_connected" : "", H ? "Clients connected" : "", Kind.Gauge, connected);
    case 3: return row("clients/active", "", "", Kind.Gauge, connected);
    case 4: return row("clients/disconnected", H ? "clients_disconnected" : "", H ? "Persistent sessions whose client is not connected" : "", Kind.Gauge, total - connected);
    case 5: return row("clients/inactive", "", "", Kind.Gauge, total - connected);
    case 6: if (total > clientsMaximum) clientsMaximum = total;
            return row("clients/maximum", H ? "clients_maximum" : "", H ? "The most client sessions there have been at once" : "", Kind.Gauge, clientsMaximum);
    case 7: return row("clients/expired", H ? "clients_expired_total" : "", H ? "Persistent sessions ended by their expiry" : "", Kind.Counter, st(Stat.SessionsExpired));
    case 8: return row("messages/received", H ? "packets_received_total" : "", H ? "MQTT packets received, every type" : "", Kind.Counter, st(Stat.PacketsReceived));
    case 9: return row("messages/sent", H ? "packets_sent_total" : "", H ? "MQTT packets sent, every type" : "", Kind.Counter, st(Stat.PacketsSent));
    case 10: return row("messages/stored", H ? "messages_stored" : "", H ? "Messages in the message store (retained, queued, wills)" : "", Kind.Gauge, <f64>messagesInUse());
    case 11: return row("store/messages/count", "", "", Kind.Gauge, <f64>messagesInUse());
    case 12: return row("store/messages/bytes", H ? "store_bytes" : "", H ? "Bytes of the message store in use" : "", Kind.Gauge, <f64>chunksInUse() * <f64>CHUNK_SIZE);
    case 13: return row("publish/messages/received", H ? "messages_received_total" : "", H ? "PUBLISH packets received" : "", Kind.Counter, st(Stat.MessagesReceived));
    case 14: return row("publish/messages/sent", H ? "messages_sent_total" : "", H ? "PUBLISH packets sent" : "", Kind.Counter, st(Stat.MessagesSent));
    case 15: return row("publish/messages/dropped", H ? "messages_dropped_total" : "", H ? "Messages not delivered: every reason (see midge_dropped_total)" : "", Kind.Counter, droppedTotal());
    case 16: return row("publish/bytes/received", H ? "publish_bytes_received_total" : "", H ? "Payload bytes of the PUBLISHes received" : "", Kind.Counter, st(Stat.PublishBytesReceived));
    case 17: return row("publish/bytes/sent", H ? "publish_bytes_sent_total" : "", H ? "Payload bytes of the PUBLISHes sent" : "", Kind.Counter, st(Stat.PublishBytesSent));
    case 18: return row("bytes/received", H ? "bytes_received_total" : "", H ? "Bytes received, every listener" : "", Kind.Counter, st(Stat.BytesReceived));
    case 19: return row("bytes/sent", H ? "bytes_sent_total" : "", H ? "Bytes sent, every listener" : "", Kind.Counter, st(Stat.BytesSent));
    case 20: return row("subscriptions/count", H ? "subscriptions" : "", H ? "Subscriptions" : "", Kind.Gauge, <f64>subscriptionsInUse());
    case 21: return row("shared_subscriptions/count", H ? "share_groups" : "", H ? "Shared subscription groups" : "", Kind.Gauge, <f64>groupsInUse());
    case 22: return row("retained messages/count", H ? "retained_messages" : "", H ? "Retained messages" : "", Kind.Gauge, <f64>retainedInUse());
    case 23: return row("heap/current", H ? "memory_bytes" : "", H ? "Linear memory of the core: reserved whole at start, it never grows" : "", Kind.Gauge, <f64>memory.size() * 65536);
    case 24: return row("heap/maximum", "", "", Kind.Gauge, <f64>memory.size() * 65536);
    case 25: return row("midge/connections/open", H ? "connections_open" : "", H ? "Network connections open (before and after CONNECT)" : "", Kind.Gauge, st(Stat.ConnectionsOpen));
    case 26: return row("midge/dropped/slow subscriber", H ? "dropped_slow_subscriber_total" : "", H ? "QoS 0 messages dropped for a subscriber that stopped reading" : "", Kind.Counter, st(Stat.DroppedQos0Slow));
    case 27: return row("midge/dropped/queue full", H ? "dropped_queue_full_total" : "", H ? "QoS 1/2 messages dropped: a session's queue was full (offline or stalled)" : "", Kind.Counter, st(Stat.DroppedQueueFull));
    case 28: return row("midge/dropped/store full", H ? "dropped_store_full_total" : "", H ? "Messages not stored: the message store was full" : "", Kind.Counter, st(Stat.DroppedStoreFull));
    case 29: return row("midge/dropped/expired", H ? "dropped_expired_total" : "", H ? "Queued messages whose Message Expiry Interval passed" : "", Kind.Counter, st(Stat.DroppedExpired));
    case 30: return row("midge/dropped/too large", H ? "dropped_too_large_total" : "", H ? "Messages larger than a client's Maximum Packet Size" : "", Kind.Counter, st(Stat.DroppedTooLarge));
    case 31: return row("midge/dropped/size limit", H ? "dropped_size_limit_total" : "", H ? "PUBLISHes dropped: payload above message_size_limit" : "", Kind.Counter, st(Stat.DroppedSizeLimit));
    case 32: return row("midge/refused/connections", H ? "connections_refused_total" : "", H ? "Connections refused (CONNACK refusal or no slot)" : "", Kind.Counter, st(Stat.RefusedConnections));
    case 33: return row("midge/refused/publishes", H ? "denied_publishes_total" : "", H ? "PUBLISHes and wills the ACL file denied" : "", Kind.Counter, st(Stat.DeniedPublishes));
    case 34: return row("midge/refused/subscriptions", H ? "denied_subscriptions_total" : "", H ? "Subscriptions the ACL file denied" : "", Kind.Counter, st(Stat.DeniedSubscriptions));
    case 35: return row("midge/closed/protocol errors", H ? "protocol_errors_total" : "", H ? "Connections closed for a malformed or forbidden packet" : "", Kind.Counter, st(Stat.ProtocolErrors));
    case 36: return row("midge/flow/publisher holds", H ? "publisher_holds_total" : "", H ? "Times a publisher waited for a subscriber to catch up" : "", Kind.Counter, st(Stat.PublisherHolds));
    case 37: return row("midge/persistence/degraded", H ? "persistence_degraded" : "", H ? "1 while a persistence write failed and nothing is saved" : "", Kind.Gauge, PERSISTENCE && persistence != 0 && degraded ? 1 : 0);
    case 38: return row("midge/persistence/bytes", H ? "persistence_bytes_written_total" : "", H ? "Bytes written to the persistence file" : "", Kind.Counter, st(Stat.PersistenceBytes));
    case 39: return row("midge/persistence/snapshots", H ? "persistence_snapshots_total" : "", H ? "Snapshots (compactions) of the persistence file" : "", Kind.Counter, st(Stat.PersistenceSnapshots));
    case 40: return table("connections", connectionsInUse(), MAX_CONNECTIONS, false);
    case 41: return table("connections", 0, MAX_CONNECTIONS, true);
    case 42: return table("sessions", sessionsInUse(), MAX_SESSIONS, false);
    case 43: return table("sessions", 0, MAX_SESSIONS, true);
    case 44: return table("subscriptions", subscriptionsInUse(), MAX_SUBSCRIPTIONS, false);
    case 45: return table("subscriptions", 0, MAX_SUBSCRIPTIONS, true);
    case 46: return table("topic_nodes", nodesInUse(), MAX_TOPIC_NODES, false);
    case 47: return table("topic_nodes", 0, MAX_TOPIC_NODES, true);
    case 48: return table("messages", messagesInUse(), MAX_MESSAGES, false);
    case 49: return table("messages", 0, MAX_MESSAGES, true);
    case 50: return table("message_store", chunksInUse() * CHUNK_SIZE, STORE_BYTES, false);
    case 51: return table("message_store", 0, STORE_BYTES, true);
    case 52: return table("retained", retainedInUse(), MAX_RETAINED, false);
    case 53: return table("retained", 0, MAX_RETAINED, true);
    case 54: return table("deliveries", deliveriesInUse(), MAX_DELIVERIES, false);
    case 55: return table("deliveries", 0, MAX_DELIVERIES, true);
    case 56: return table("qos2_received", receivedInUse(), MAX_RECEIVED, false);
    case 57: return table("qos2_received", 0, MAX_RECEIVED, true);
    case 58: return table("share_groups", groupsInUse(), MAX_SHARE_GROUPS, false);
    case 59: return table("share_groups", 0, MAX_SHARE_GROUPS, true);
    // (each link's own state is on its notification topic, as in Mosquitto)
    case 60: return row("midge/bridges/configured", H ? "bridges" : "", H ? "Bridges (connection sections) configured" : "", Kind.Gauge, BRIDGE ? <f64>bridgeCount : 0);
    case 61: return row("midge/bridges/connected", H ? "bridges_connected" : "", H ? "Bridges whose link to the upstream broker is up" : "", Kind.Gauge, BRIDGE ? <f64>bridgesUp() : 0);
  }
  return false;
}
