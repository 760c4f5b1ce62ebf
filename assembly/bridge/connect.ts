// The CONNECT a bridge sends upstream (§3.1): MQTT 3.1.1 (with the bridge bit 0x80 in
// the protocol level when try_private is on, which Mosquitto and others read as "do not
// send my own messages back") or MQTT 5 (its loops are stopped by No Local instead).
// With notifications on (and not local only), the will is the notification topic with
// "0", retained, so the upstream says the link is down when it drops.

import { writerStart, writeU8, writeU16, writeU32, writeVarint, writeBinary, varintLength, flush } from "../codec/writer";
import { maxPacketSize } from "../settings";
import { INFLIGHT_IN_MAX } from "../config";
import { bridge, bridgeText, textLen, BridgeText } from "./bridges";
import { clientIdOf, clientIdLen, notificationTopicOf, notificationLen } from "./link";

const MQTT = memory.data<u8>([0x4D, 0x51, 0x54, 0x54]); // "MQTT"
const ZERO = memory.data<u8>([0x30]);                   // "0"

export function sendBridgeConnect(conn: i32, b: i32): void {
  const row = bridge(b);
  const v5 = row.protocol == 5;
  const id = clientIdOf(b), idLen = clientIdLen;
  const user = bridgeText(b, BridgeText.Username), userLen = textLen;
  const pass = bridgeText(b, BridgeText.Password), passLen = textLen;
  const will = row.notifications != 0 && row.notifyLocalOnly == 0;
  const willTopic = will ? notificationTopicOf(b) : 0, willTopicLen = will ? notificationLen : 0;
  // properties: Session Expiry (a persistent session: never), Receive Maximum, Maximum Packet Size
  const props = v5 ? (row.cleanSession != 0 ? 0 : 5) + 3 + 5 : 0;
  let len = 6 + 1 + 1 + 2 + (v5 ? varintLength(props) + props : 0) + 2 + idLen;
  if (will) len += (v5 ? 1 : 0) + 2 + willTopicLen + 2 + 1;
  if (userLen > 0) len += 2 + userLen;
  if (passLen > 0) len += 2 + passLen;
  let flags = row.cleanSession != 0 ? 0x02 : 0;
  if (will) flags |= 0x04 | (1 << 3) | 0x20; // will, QoS 1, retained
  if (userLen > 0) flags |= 0x80;
  if (passLen > 0) flags |= 0x40;
  writerStart(conn);
  writeU8(0x10);
  writeVarint(len);
  writeBinary(MQTT, 4);
  writeU8(v5 ? 5 : row.tryPrivate != 0 ? 0x84 : 4);
  writeU8(flags);
  writeU16(row.keepAlive);
  if (v5) {
    writeVarint(props);
    if (row.cleanSession == 0) { writeU8(0x11); writeU32(0xFFFFFFFF); }
    writeU8(0x21); writeU16(INFLIGHT_IN_MAX); // what handlers/publish.ts holds an MQTT 5 sender to
    writeU8(0x27); writeU32(<u32>maxPacketSize);
  }
  writeBinary(id, idLen);
  if (will) {
    if (v5) writeU8(0); // no will properties
    writeBinary(willTopic, willTopicLen);
    writeBinary(ZERO, 1);
  }
  if (userLen > 0) writeBinary(user, userLen);
  if (passLen > 0) writeBinary(pass, passLen);
  flush();
}
