// The `$SYS/broker/...` topics, as Mosquitto 2 publishes them (names, text formats, the
// 1/5/15-minute load averages): every `sys_interval` seconds (0: never), retained, QoS 2 (as Mosquitto),
// each only when its value changed since it was last published; the version once. They
// go through the ordinary retained store and fan-out, so the `$` rule [MQTT-4.7.2-1] and
// the ACL file apply to them as to any topic. Not written to the persistence file.

import { SYS } from "../config";
import { now } from "../clock";
import { sysInterval } from "../settings";
import { VERSION } from "../version";
import { storeMessage, holdMessage, releaseMessage } from "../store/messages";
import { setRetained } from "../store/retained";
import { route } from "../delivery/route";
import { statAdd, Stat } from "../stats";
import { logStart, logText, logInt, logTakeInto } from "../log";
import { metric, sysName, promName, label, kind, value, Kind, LOADS, loadSource, loadName, noteStart } from "./metrics";

/** Mosquitto publishes $SYS at QoS 2 (a subscriber gets it at the QoS it asked for). */
// @ts-ignore: decorator
@inline const SYS_QOS: i32 = 2;

/** True while a $SYS message is published (persist/journal.ts leaves it out of the file). */
export let sysPublishing = false;

const TOPIC = memory.data(SYS ? 96 : 8, 8);
const VALUE = memory.data(SYS ? 48 : 8, 8);
// the last value published of each row (NaN: never), and of each load average
// @ts-ignore: decorator
@inline const ROWS = 64;
const LAST = memory.data(SYS ? (ROWS + LOADS * 3) * 8 : 8, 8);
const NOW = memory.data(SYS ? ROWS * 8 : 8, 8);
const LOAD = memory.data(SYS ? LOADS * 4 * 8 : 8, 8); // per source: 1, 5, 15 min averages, the count at the last update
let nextAt: f64 = -1;
let lastAt: f64 = 0;

export function sysInit(): void {
  if (!SYS) return;
  for (let i = 0; i < ROWS + LOADS * 3; i++) store<f64>(LAST + (<usize>i << 3), NaN);
  memory.fill(LOAD, 0, LOADS * 4 * 8);
}

/** The `$SYS` topics published so far (each is one retained message). */
export function sysTopicCount(): i32 {
  if (!SYS || nextAt < 0) return 0;
  let n = 1; // the version
  for (let i = 0; i < ROWS + LOADS * 3; i++) if (!isNaN(load<f64>(LAST + (<usize>i << 3)))) n++;
  return n;
}

/** From the clock: publish when due; the ms until the next time. */
export function sysTick(): f64 {
  if (!SYS) return 1000;
  noteStart(now);
  if (sysInterval == 0) return 1000;
  if (nextAt < 0) { nextAt = now; lastAt = now; }
  if (now < nextAt) return nextAt - now;
  const first = lastAt == now;
  const elapsed = (now - lastAt) / 1000;
  lastAt = now;
  nextAt = now + <f64>sysInterval * 1000;
  sysPublishing = true;
  if (first) {
    logStart(); logText("midge version "); logText(VERSION);
    publish("version");
  }
  // every value first, then the messages: one update is one moment (publishing the first
  // rows would otherwise move the counters of the later ones)
  for (let i = 0; i < ROWS && metric(i); i++) store<f64>(NOW + (<usize>i << 3), value);
  if (!first && elapsed > 0) { averages(elapsed); publishLoads(); }
  for (let i = 0; i < ROWS && metric(i); i++) {
    if (sysName.length == 0 || kind == Kind.Text) continue;
    const v = load<f64>(NOW + (<usize>i << 3));
    if (load<f64>(LAST + (<usize>i << 3)) == v) continue; // unchanged
    store<f64>(LAST + (<usize>i << 3), v);
    const isTable = label.length > 0;
    logStart(); logInt(<i64>v);
    if (i == 0) logText(" seconds");
    if (isTable) {
      const n = logTakeInto(VALUE, 48);
      logStart(); logText(sysName); logText(label); logText(promName == "table_size" ? "/size" : "/used");
      publishTopic(n);
    } else publish(sysName);
  }
  sysPublishing = false;
  return <f64>sysInterval * 1000;
}

/** Mosquitto's load averages: the rate per minute over the last interval, smoothed with
 *  exp(-interval / 1, 5, 15 min); every count taken before anything is published. */
function averages(elapsed: f64): void {
  for (let k = 0; k < LOADS; k++) {
    const p = LOAD + (<usize>k << 5);
    const count = loadSource(k);
    const rate = (count - load<f64>(p, 24)) * 60 / elapsed;
    store<f64>(p, count, 24);
    for (let w = 0; w < 3; w++) {
      const minutes: f64 = w == 0 ? 1 : w == 1 ? 5 : 15;
      const e = Math.exp(-elapsed / (60 * minutes));
      store<f64>(p + (<usize>w << 3), rate + e * (load<f64>(p + (<usize>w << 3)) - rate));
    }
  }
}

/** The averages that changed (at two decimals), as "%.2f". */
function publishLoads(): void {
  for (let k = 0; k < LOADS; k++) {
    for (let w = 0; w < 3; w++) {
      const shown = Math.round(load<f64>(LOAD + (<usize>k << 5) + (<usize>w << 3)) * 100);
      const lp = LAST + (<usize>(ROWS + k * 3 + w) << 3);
      if (load<f64>(lp) == shown) continue;
      store<f64>(lp, shown);
      logStart(); logInt(<i64>(shown / 100)); logText("."); const c = <i64>shown % 100; if (c < 10) logText("0"); logInt(c);
      const n = logTakeInto(VALUE, 48);
      logStart(); logText("load/"); logText(loadName(k)); logText(w == 0 ? "/1min" : w == 1 ? "/5min" : "/15min");
      publishTopic(n);
    }
  }
}

/** The value built in the log buffer, to `$SYS/broker/` + `name`. */
function publish(name: string): void {
  const n = logTakeInto(VALUE, 48);
  logStart(); logText(name);
  publishTopic(n);
}

/** The topic suffix in the log buffer, with the `n`-byte value at VALUE. */
function publishTopic(n: i32): void {
  const prefix = "$SYS/broker/";
  for (let i = 0; i < prefix.length; i++) store<u8>(TOPIC + <usize>i, <u8>prefix.charCodeAt(i));
  const t = prefix.length + logTakeInto(TOPIC + <usize>prefix.length, 96 - prefix.length);
  const m = storeMessage(TOPIC, t, 0, 0, VALUE, n, SYS_QOS, 1, 0);
  if (m < 0) { statAdd(Stat.DroppedStoreFull); return; }
  holdMessage(m);
  setRetained(TOPIC, t, m);
  route(TOPIC, t, 0, 0, VALUE, n, SYS_QOS, true, 0, m, -1);
  releaseMessage(m);
}
