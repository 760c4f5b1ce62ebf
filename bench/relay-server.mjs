// The load generator's ceiling: a "broker" that only frames packets (fixed header and
// Remaining Length) and forwards PUBLISH bytes unchanged to every subscriber, one write
// per subscriber per socket read. It answers CONNECT, SUBSCRIBE, PINGREQ and QoS 1
// PUBLISH with canned packets and ignores topics: whatever the generator measures through
// it is what the generator itself can drive. Prints "listening on 127.0.0.1:PORT".

import net from "node:net";

const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);
const subscribers = new Set();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let rest = null;
  socket.on("data", (chunk) => {
    let buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
    rest = null;
    let at = 0;
    let runStart = -1; // start of a run of consecutive PUBLISH packets
    const replies = [];
    const flushRun = (end) => {
      if (runStart < 0) return;
      const run = buf.subarray(runStart, end);
      for (const s of subscribers) s.write(run);
      runStart = -1;
    };
    while (at + 2 <= buf.length) {
      let len = 0, mul = 1, i = at + 1, ok = false;
      while (i < buf.length && i < at + 5) {
        const b = buf[i++];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { ok = true; break; }
      }
      if (!ok || i + len > buf.length) break;
      const type = buf[at] >> 4;
      if (type === 3) {
        if (runStart < 0) runStart = at;
        const qos = (buf[at] >> 1) & 3;
        if (qos > 0) {
          const p = i + 2 + ((buf[i] << 8) | buf[i + 1]);
          replies.push(0x40, 2, buf[p], buf[p + 1]);
        }
      } else {
        flushRun(at);
        if (type === 1) socket.write(CONNACK);
        else if (type === 8) {
          subscribers.add(socket);
          socket.write(Buffer.from([0x90, 3, buf[i], buf[i + 1], buf[i + len - 1]]));
        } else if (type === 12) socket.write(PINGRESP);
        else if (type === 14) socket.end();
      }
      at = i + len;
    }
    flushRun(at);
    if (replies.length > 0) socket.write(Buffer.from(replies));
    if (at < buf.length) rest = Buffer.from(buf.subarray(at));
  });
  const gone = () => subscribers.delete(socket);
  socket.on("close", gone);
  socket.on("error", gone);
});
server.listen(0, "127.0.0.1", () => process.stderr.write(`relay listening on 127.0.0.1:${server.address().port}\n`));
const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
