// The load generator's MQTT 3.1.1 side: packets encoded once up front, a framer over
// raw socket bytes, and a client that batches its writes. Just enough MQTT to drive a
// broker hard without becoming the bottleneck (no mqtt.js, no per-packet objects).

import { connect as tlsConnect } from "node:tls";
import net from "node:net";

export const HOST = "127.0.0.1";

/** Packet types (high nibble of the first byte). */
export const T = { CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBSCRIBE: 8, SUBACK: 9, PINGREQ: 12, PINGRESP: 13, DISCONNECT: 14 };

/** Remaining Length as MQTT's variable-length integer. */
function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function packet(first, body) {
  return Buffer.concat([Buffer.from([first, ...varint(body.length)]), body]);
}

function str(s) {
  const b = Buffer.from(s, "utf8");
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

export function connectPacket(clientId, keepAlive = 0, clean = true, username = undefined, password = undefined) {
  const flags = (clean ? 0x02 : 0) | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  const head = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, keepAlive >> 8, keepAlive & 0xff]);
  const login = [...(username !== undefined ? [str(username)] : []), ...(password !== undefined ? [str(password)] : [])];
  return packet(0x10, Buffer.concat([head, str(clientId), ...login]));
}

export function subscribePacket(pid, filter, qos) {
  return packet(0x82, Buffer.concat([Buffer.from([pid >> 8, pid & 0xff]), str(filter), Buffer.from([qos])]));
}

export function pubackPacket(pid) {
  return Buffer.from([0x40, 2, pid >> 8, pid & 0xff]);
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT = Buffer.from([0xe0, 0]);

/**
 * A PUBLISH template: the whole packet with a zero packet id (QoS > 0) and the payload
 * (`size` bytes, at least 16). `payloadAt` is where the payload starts, `pidAt` where the
 * packet id goes. The generator copies it and patches a stamp into the payload:
 * bytes 0-3 the sender's index, 4-7 a sequence number, 8-15 a send time (f64 ms).
 */
export function publishTemplate(topic, size, qos, retain = false) {
  const t = str(topic);
  const payload = Buffer.alloc(Math.max(size, 16), 0x61);
  const body = Buffer.concat([t, qos > 0 ? Buffer.from([0, 0]) : Buffer.alloc(0), payload]);
  const bytes = packet(0x30 | (qos << 1) | (retain ? 1 : 0), body);
  const headLen = bytes.length - body.length;
  return { bytes, payloadAt: headLen + t.length + (qos > 0 ? 2 : 0), pidAt: qos > 0 ? headLen + t.length : -1, qos };
}

/**
 * Copy `n` stamped messages of `tpl` into one buffer. `next` gives, for message i, the
 * sequence number and packet id; the stamp's time is `now`.
 */
export function stampBatch(tpl, n, sender, firstSeq, firstPid, now) {
  const len = tpl.bytes.length;
  const out = Buffer.allocUnsafe(len * n);
  let pid = firstPid;
  for (let i = 0; i < n; i++) {
    const at = i * len;
    tpl.bytes.copy(out, at);
    const p = at + tpl.payloadAt;
    out.writeUInt32BE(sender, p);
    out.writeUInt32BE((firstSeq + i) >>> 0, p + 4);
    out.writeDoubleBE(now, p + 8);
    if (tpl.qos > 0) {
      out.writeUInt16BE(pid, at + tpl.pidAt);
      pid = pid === 65535 ? 1 : pid + 1;
    }
  }
  return out;
}

/**
 * A raw MQTT client over one socket. `onPublish(buf, payloadAt, payloadEnd, qos, pid)` is
 * called for every PUBLISH received (the buffer is only valid during the call); PUBACKs
 * for QoS 1 deliveries are sent automatically, batched per socket read.
 */
export class RawClient {
  constructor(port, id, { onPublish = null, keepAlive = 0, username = undefined, password = undefined, tls = undefined, clean = true } = {}) {
    this.clean = clean; // false: a persistent session (MQTT 3.1.1 clean session 0)
    this.port = port;
    this.tls = tls; // node:tls connect options (a CA), or undefined for plain TCP
    this.username = username;
    this.password = password;
    this.id = id;
    this.onPublish = onPublish;
    this.keepAlive = keepAlive;
    this.socket = null;
    this.rest = null;
    this.waiters = new Map(); // packet type -> [resolve]
    this.pubacks = 0; // PUBACKs received (for our QoS 1 publishes)
    this.received = 0; // PUBLISH packets received
    this.closed = false;
    this.onPuback = null;
    this.onClose = null;
    this.ackScratch = Buffer.allocUnsafe(4 * 4096);
  }

  /** Connect, CONNECT, and resolve on CONNACK 0; reject on refusal, close or timeout. */
  connect(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const socket = this.tls ? tlsConnect({ host: HOST, port: this.port, servername: "localhost", ...this.tls }) : net.connect({ host: HOST, port: this.port });
      this.socket = socket;
      socket.setNoDelay(true);
      const timer = setTimeout(() => fail(new Error(`${this.id}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
      const fail = (e) => {
        clearTimeout(timer);
        this.closed = true;
        socket.destroy();
        reject(e);
      };
      socket.once(this.tls ? "secureConnect" : "connect", () => socket.write(connectPacket(this.id, this.keepAlive, this.clean, this.username, this.password)));
      socket.on("error", (e) => { if (!this.closed) fail(e); });
      socket.on("close", () => {
        if (!this.closed) fail(new Error(`${this.id}: connection closed before CONNACK`));
        this.closed = true;
        if (this.onClose) this.onClose();
      });
      socket.on("data", (d) => this.data(d));
      this.wait(T.CONNACK).then((buf) => {
        clearTimeout(timer);
        if (buf[3] !== 0) fail(new Error(`${this.id}: CONNACK ${buf[3]}`));
        else resolve(this);
      });
    });
  }

  /** Resolve with the next packet of `type` (its bytes, valid during the call only: copied). */
  wait(type) {
    return new Promise((resolve) => {
      const list = this.waiters.get(type) ?? [];
      list.push(resolve);
      this.waiters.set(type, list);
    });
  }

  async subscribe(filter, qos = 0, pid = 1) {
    const suback = this.wait(T.SUBACK);
    this.socket.write(subscribePacket(pid, filter, qos));
    const buf = await suback;
    if (buf[buf.length - 1] === 0x80) throw new Error(`${this.id}: SUBACK refused ${filter}`);
  }

  /** A round trip: everything sent before it has been handled by the broker. */
  async ping() {
    const p = this.wait(T.PINGRESP);
    this.socket.write(PINGREQ);
    await p;
  }

  write(buf) {
    return this.socket.write(buf);
  }

  data(chunk) {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let at = 0;
    let acks = 0;
    const end = buf.length;
    while (at < end) {
      // fixed header: type byte, then 1-4 bytes of Remaining Length
      if (at + 2 > end) break;
      let len = 0;
      let mul = 1;
      let i = at + 1;
      let ok = false;
      while (i < end && i < at + 5) {
        const b = buf[i++];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { ok = true; break; }
      }
      if (!ok || i + len > end) break;
      const first = buf[at];
      const type = first >> 4;
      const bodyEnd = i + len;
      if (type === T.PUBLISH) {
        const qos = (first >> 1) & 3;
        const topicLen = (buf[i] << 8) | buf[i + 1];
        let p = i + 2 + topicLen;
        let pid = 0;
        if (qos > 0) {
          pid = (buf[p] << 8) | buf[p + 1];
          p += 2;
          if (acks * 4 + 4 > this.ackScratch.length) {
            this.socket.write(Buffer.from(this.ackScratch.subarray(0, acks * 4)));
            acks = 0;
          }
          const a = acks * 4;
          this.ackScratch[a] = 0x40;
          this.ackScratch[a + 1] = 2;
          this.ackScratch[a + 2] = pid >> 8;
          this.ackScratch[a + 3] = pid & 0xff;
          acks++;
        }
        this.received++;
        if (this.onPublish !== null) this.onPublish(buf, p, bodyEnd, qos, pid);
      } else if (type === T.PUBACK) {
        this.pubacks++;
        if (this.onPuback !== null) this.onPuback();
      } else {
        const list = this.waiters.get(type);
        if (list !== undefined && list.length > 0) list.shift()(Buffer.from(buf.subarray(at, bodyEnd)));
      }
      at = bodyEnd;
    }
    if (acks > 0) this.socket.write(Buffer.from(this.ackScratch.subarray(0, acks * 4)));
    if (at < end) this.rest = Buffer.from(buf.subarray(at));
  }

  /** Close without a TIME_WAIT on our side (RST), so many runs do not exhaust ports. */
  kill() {
    this.closed = true;
    if (this.socket !== null && !this.socket.destroyed) {
      if (!this.tls && typeof this.socket.resetAndDestroy === "function" && this.socket.readyState === "open") this.socket.resetAndDestroy(); // (not on a TLS socket)
      else this.socket.destroy();
    }
  }

  /** DISCONNECT, then close. */
  end() {
    this.closed = true;
    if (this.socket !== null && !this.socket.destroyed) this.socket.end(DISCONNECT);
  }
}
