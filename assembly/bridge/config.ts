// The bridge keys of the config file, as Mosquitto reads them: `connection NAME` opens a
// section, and the bridge keys after it set that bridge (bridges.ts). configfile.ts
// splits the line and calls bridgeKey with the key's BridgeKey.

import { BRIDGE, MAX_BRIDGES, CLIENT_ID_MAX, FILTER_MAX, MAX_DELIVERIES } from "../config";
import { words, wordAt, wordLen, wordIs, restAt, restLen, logWhere, refuseLine, refuseValue, refuseExtra } from "../configfile";
import { refuse, parseNumber } from "../options";
import { BridgeField } from "../settings";
import { logStart, logText, logBytes, logInt } from "../log";
import { validTopicFilter } from "../topics/validate";
import { bridge, bridgeCount, bridgesReset, addBridge, setBridgeText, bridgeText, bridgeTextLen, addBridgeTopic,
         BridgeText, Direction, textLen } from "./bridges";

export const enum BridgeKey {
  Connection = 0, Address = 1, Topic = 2, CleanSession = 3, ClientId = 4, Username = 5, Password = 6,
  Protocol = 7, TryPrivate = 8, Notifications = 9, NotifyLocalOnly = 10, NotificationTopic = 11,
  KeepAlive = 12, RestartTimeout = 13, StartType = 14, RoundRobin = 15, Cafile = 16, Capath = 17,
  Certfile = 18, Keyfile = 19, Insecure = 20, LocalClientId = 21, OutgoingRetain = 22, MaxQueued = 23,
  AttemptUnsubscribe = 24, LocalUsername = 25,
}

export function bridgeConfigReset(): void { if (BRIDGE) bridgesReset(); }

/** The current line, a bridge key: 0 when applied, -n when refused. */
export function bridgeKey(k: i32): i32 {
  if (!BRIDGE) return refuseLine("is a bridge option: this board's core is built without bridges (BRIDGE 0)");
  if (k == BridgeKey.Connection) {
    if (words > 2) return refuseExtra();
    for (let i = 0; i < bridgeCount; i++) {
      const p = bridgeText(i, BridgeText.Name);
      if (textLen == <i32>wordLen(1) && memory.compare(p, wordAt(1), <usize>textLen) == 0) return refuseValue("is the name of another bridge");
    }
    if (wordLen(1) > 64) return refuseValue("must be a name of at most 64 bytes");
    if (!addBridge(wordAt(1), wordLen(1))) {
      logStart(); logWhere(); logText(" is one bridge more than this board holds ("); logInt(MAX_BRIDGES); logText(") or its texts do not fit");
      return refuse();
    }
    return 0;
  }
  if (bridgeCount == 0) return refuseLine("is a bridge option: it belongs after a `connection NAME` line");
  const b = bridgeCount - 1;
  const row = bridge(b);
  switch (k) {
    case BridgeKey.Address: return setAddresses(b);
    case BridgeKey.Topic: return setTopic();
    case BridgeKey.ClientId: return setText(b, BridgeText.ClientId, CLIENT_ID_MAX);
    case BridgeKey.LocalClientId: return setText(b, BridgeText.LocalClientId, CLIENT_ID_MAX);
    case BridgeKey.LocalUsername: return 0; // the ACL file does not apply to a bridge
    case BridgeKey.Username: return setText(b, BridgeText.Username, 1024);
    case BridgeKey.Password: return setText(b, BridgeText.Password, 1024);
    case BridgeKey.NotificationTopic: {
      if (words > 2) return refuseExtra();
      return setText(b, BridgeText.NotificationTopic, FILTER_MAX);
    }
    case BridgeKey.Cafile: return setText(b, BridgeText.Cafile, 255);
    case BridgeKey.Capath: return setText(b, BridgeText.Capath, 255);
    case BridgeKey.Certfile: return setText(b, BridgeText.Certfile, 255);
    case BridgeKey.Keyfile: return setText(b, BridgeText.Keyfile, 255);
    case BridgeKey.Protocol: {
      if (words > 2) return refuseExtra();
      if (wordIs(1, "mqttv311")) row.protocol = 4;
      else if (wordIs(1, "mqttv50")) row.protocol = 5;
      else if (wordIs(1, "mqttv31")) return refuseLine("mqttv31 is not supported by Midge's bridge: use mqttv311 or mqttv50");
      else return refuseValue("must be mqttv311 or mqttv50");
      return 0;
    }
    case BridgeKey.StartType: {
      if (words > 2) return refuseExtra();
      if (wordIs(1, "automatic")) row.once = 0;
      else if (wordIs(1, "once")) row.once = 1;
      else if (wordIs(1, "lazy")) return refuseLine("lazy is not supported by Midge's bridge yet: use automatic or once");
      else return refuseValue("must be automatic, lazy or once");
      return 0;
    }
    case BridgeKey.KeepAlive: {
      if (words > 2) return refuseExtra();
      const v = parseNumber(wordAt(1), wordLen(1), false);
      if (!(v >= 5 && v <= 65535)) return refuseValue("must be a whole number of seconds from 5 to 65535");
      row.keepAlive = <i32>v;
      return 0;
    }
    case BridgeKey.MaxQueued: {
      if (words > 2) return refuseExtra();
      const v = parseNumber(wordAt(1), wordLen(1), false);
      if (!(v >= 0 && v <= MAX_DELIVERIES)) {
        logStart(); logWhere(); logText(" must be a whole number from 0 to "); logInt(MAX_DELIVERIES);
        logText(" (the board's deliveries; 0: the default), not '"); logBytes(wordAt(1), <i32>wordLen(1)); logText("'");
        return refuse();
      }
      row.maxQueued = <i32>v;
      return 0;
    }
    case BridgeKey.RestartTimeout: {
      if (words > 3) return refuseLine("takes a base and a cap in seconds, no more");
      const base = parseNumber(wordAt(1), wordLen(1), false);
      if (!(base >= 1 && base <= 86400)) return refuseValue("must be a whole number of seconds from 1 to 86400");
      let cap = 0.0;
      if (words == 3) {
        cap = parseNumber(wordAt(2), wordLen(2), false);
        if (!(cap >= base && cap <= 86400)) { logStart(); logWhere(); logText(" cap must be a whole number of seconds from the base to 86400"); return refuse(); }
      }
      row.restartBase = <i32>base;
      row.restartCap = <i32>cap;
      return 0;
    }
  }
  // the rest are true or false
  if (words > 2) return refuseExtra();
  let v = -1;
  if (wordIs(1, "true")) v = 1;
  else if (wordIs(1, "false")) v = 0;
  if (v < 0) return refuseValue("must be true or false");
  switch (k) {
    case BridgeKey.CleanSession: row.cleanSession = v; break;
    case BridgeKey.TryPrivate: row.tryPrivate = v; break;
    case BridgeKey.Notifications: row.notifications = v; break;
    case BridgeKey.NotifyLocalOnly: row.notifyLocalOnly = v; break;
    case BridgeKey.RoundRobin: row.roundRobin = v; break;
    case BridgeKey.Insecure: row.insecure = v; break;
    case BridgeKey.OutgoingRetain: row.outgoingRetain = v; break;
    // (Midge never leaves an upstream subscription behind for an `out` topic: nothing to undo)
    case BridgeKey.AttemptUnsubscribe: break;
  }
  return 0;
}

/** A text key: the rest of the line (a password may hold spaces). */
function setText(b: i32, t: BridgeText, max: i32): i32 {
  if (restLen > <u32>max) {
    logStart(); logWhere(); logText(" must be at most "); logInt(max); logText(" bytes");
    return refuse();
  }
  if (!setBridgeText(b, t, restAt, <i32>restLen)) return refuseLine("does not fit: the bridges' texts are more than this board holds (BRIDGE_TEXT_BYTES)");
  return 0;
}

/** `address HOST[:PORT] ...`: each checked; kept as the line's text. */
function setAddresses(b: i32): i32 {
  let n = 0;
  let at = restAt;
  const end = restAt + <usize>restLen;
  while (at < end) {
    while (at < end && (load<u8>(at) == 0x20 || load<u8>(at) == 0x09)) at++;
    if (at == end) break;
    const start = at;
    let colon: usize = 0;
    while (at < end && load<u8>(at) != 0x20 && load<u8>(at) != 0x09) { if (load<u8>(at) == 0x3A) colon = at; at++; }
    if (colon != 0) {
      const port = parseNumber(colon + 1, <u32>(at - colon - 1), false);
      if (colon == start || !(port >= 1 && port <= 65535)) {
        logStart(); logWhere(); logText(" '"); logBytes(start, <i32>(at - start));
        logText("' must be HOST or HOST:PORT with a port from 1 to 65535");
        return refuse();
      }
    }
    if (at - start > 255) return refuseLine("names an address longer than 255 bytes");
    n++;
  }
  if (n == 0) return refuseLine("needs an address");
  if (n > 8) return refuseLine("takes at most 8 addresses");
  bridge(b).addressCount = n;
  return setText(b, BridgeText.Addresses, 65535);
}

/** `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]` (`""`: empty). */
function setTopic(): i32 {
  if (words > 6) return refuseLine("takes a pattern, a direction, a QoS and two prefixes, no more");
  let direction = Direction.Out;
  if (words >= 3) {
    if (wordIs(2, "out")) direction = Direction.Out;
    else if (wordIs(2, "in")) direction = Direction.In;
    else if (wordIs(2, "both")) direction = Direction.Both;
    else { logStart(); logWhere(); logText(" direction must be in, out or both, not '"); logBytes(wordAt(2), <i32>wordLen(2)); logText("'"); return refuse(); }
  }
  let qos = 0;
  if (words >= 4) {
    const v = parseNumber(wordAt(3), wordLen(3), false);
    if (!(v >= 0 && v <= 2)) { logStart(); logWhere(); logText(" QoS must be 0, 1 or 2, not '"); logBytes(wordAt(3), <i32>wordLen(3)); logText("'"); return refuse(); }
    qos = <i32>v;
  }
  if (words == 5) return refuseLine("needs both prefixes, local and remote (\"\" for none)");
  const pattern = wordAt(1), patternLen = quoted(1);
  const local = words == 6 ? wordAt(4) : 0, localLen = words == 6 ? quoted(4) : 0;
  const remote = words == 6 ? wordAt(5) : 0, remoteLen = words == 6 ? quoted(5) : 0;
  if (patternLen == 0 && localLen == 0 && remoteLen == 0) return refuseLine("needs a pattern or prefixes");
  if (<i32>(patternLen + max(localLen, remoteLen)) > FILTER_MAX) {
    logStart(); logWhere(); logText(" is longer than this board's topic filters ("); logInt(FILTER_MAX); logText(" bytes) with its prefixes");
    return refuse();
  }
  // the filters the two sides subscribe with: each prefix, then the pattern
  if (!validWith(local, localLen, pattern, patternLen) || !validWith(remote, remoteLen, pattern, patternLen)) {
    logStart(); logWhere(); logText(" '"); logBytes(pattern, patternLen); logText("' with its prefixes is not a valid topic filter");
    return refuse();
  }
  if (!addBridgeTopic(direction, qos, pattern, patternLen, local, localLen, remote, remoteLen)) {
    return refuseLine("is one topic line more than this board holds (MAX_BRIDGE_TOPICS) or its texts do not fit");
  }
  return 0;
}

/** Word `w`'s length, 0 for `""` (Mosquitto's empty pattern or prefix). */
function quoted(w: i32): i32 {
  return wordLen(w) == 2 && load<u16>(wordAt(w)) == 0x2222 ? 0 : <i32>wordLen(w);
}

const FILTER = memory.data(FILTER_MAX * 2 + 8, 8);
function validWith(prefix: usize, prefixLen: i32, pattern: usize, patternLen: i32): bool {
  if (prefixLen + patternLen == 0) return false;
  memory.copy(FILTER, prefix, <usize>prefixLen);
  memory.copy(FILTER + <usize>prefixLen, pattern, <usize>patternLen);
  return validTopicFilter(FILTER, prefixLen + patternLen);
}

/** text(Text.Bridge + id): field id % 8 (BridgeField) of bridge id / 8, into the log line being built. */
export function bridgeTlsText(id: i32): void {
  const b = id >> 3, f = id & 7;
  if (b >= bridgeCount) return;
  switch (f) {
    case BridgeField.Cafile: { const p = bridgeText(b, BridgeText.Cafile); logBytes(p, textLen); break; }
    case BridgeField.Capath: { const p = bridgeText(b, BridgeText.Capath); logBytes(p, textLen); break; }
    case BridgeField.Certfile: { const p = bridgeText(b, BridgeText.Certfile); logBytes(p, textLen); break; }
    case BridgeField.Keyfile: { const p = bridgeText(b, BridgeText.Keyfile); logBytes(p, textLen); break; }
    case BridgeField.Insecure: logText(bridge(b).insecure != 0 ? "1" : "0"); break;
  }
}

/** After the main file: every bridge has an address and a topic. 0, or -n when refused. */
export function bridgeConfigCheck(fileName: usize, fileNameLen: u32): i32 {
  if (!BRIDGE) return 0;
  for (let b = 0; b < bridgeCount; b++) {
    const certs = (bridgeTextLen(b, BridgeText.Certfile) > 0 ? 1 : 0) + (bridgeTextLen(b, BridgeText.Keyfile) > 0 ? 1 : 0);
    const tls = bridgeTextLen(b, BridgeText.Cafile) > 0 || bridgeTextLen(b, BridgeText.Capath) > 0;
    const missing = bridgeTextLen(b, BridgeText.Addresses) == 0 ? "no address line" : bridge(b).topicCount == 0 ? "no topic line"
      : certs == 1 ? "bridge_certfile without bridge_keyfile, or the other way round"
      : (certs == 2 || bridge(b).insecure != 0) && !tls ? "TLS settings without bridge_cafile or bridge_capath (which turn TLS on)" : "";
    if (missing.length == 0) continue;
    logStart(); logBytes(fileName, <i32>fileNameLen); logText(": connection ");
    const name = bridgeText(b, BridgeText.Name);
    logBytes(name, textLen); logText(" has "); logText(missing);
    return refuse();
  }
  return 0;
}
