// Midge on a JavaScript runtime without WebAssembly (Espruino, or `node --jitless`).
// The mcu core, turned into plain JavaScript over one 64 KiB ArrayBuffer by binaryen's
// wasm2js, hosted with only the part of `net` Espruino has: createServer, listen,
// socket.on('data' | 'close' | 'error'), socket.write, socket.end.
//
// Written as ES5 (var, function, no classes, no Buffer, no TextDecoder) so that one
// script runs on Espruino and on Node alike. Usage on Node:
//   node --jitless dist/midge-mcu-espruino.cjs [--port N]   (default 1883, or $MIDGE_PORT; 0: any)
// On Espruino: upload the script; it listens on port 1883.

import * as core from "midge:core";
import { bind } from "./env.js";

var net = require("net");

// Espruino's Math may lack these; wasm2js output uses them.
if (!Math.imul) {
  Math.imul = function (a, b) {
    var ah = (a >>> 16) & 0xffff, al = a & 0xffff, bh = (b >>> 16) & 0xffff, bl = b & 0xffff;
    return (al * bl + (((ah * bl + al * bh) << 16) >>> 0)) | 0;
  };
}
if (!Math.clz32) {
  Math.clz32 = function (x) {
    x = x >>> 0;
    if (x === 0) return 32;
    var n = 0;
    while ((x & 0x80000000) === 0) { x = x << 1; n++; }
    return n;
  };
}

var LEVELS = ["error", "warning", "notice", "info", "debug"];
var isNode = typeof process !== "undefined" && process.versions && process.versions.node;
var espruino = typeof E !== "undefined" && typeof E.toString === "function";

var mem = new Uint8Array(core.memory.buffer);
var conns = []; // id -> { socket, queue: [Uint8Array], queued, pending: Uint8Array|null, closing }
var flushTimer = null;

function now() {
  return Date.now();
}

function text(ptr, len) {
  // UTF-8 log text: printable ASCII as is (the core escapes client bytes), the rest as '?'
  var s = "";
  for (var i = 0; i < len; i++) {
    var c = mem[ptr + i];
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
  }
  return s;
}

function logLine(level, line) {
  var name = LEVELS[level] || (level === 9 ? "fatal" : "level" + level);
  if (isNode) process.stderr.write(new Date().toISOString() + " " + name + " " + line + "\n");
  else console.log(name + " " + line);
}

function flushAll() {
  flushTimer = null;
  for (var id = 0; id < conns.length; id++) {
    var c = conns[id];
    if (!c || c.queued === 0) continue;
    var out = new Uint8Array(c.queued);
    var at = 0;
    for (var k = 0; k < c.queue.length; k++) {
      out.set(c.queue[k], at);
      at += c.queue[k].length;
    }
    c.queue = [];
    c.queued = 0;
    c.socket.write(espruino ? E.toString(out) : out);
    if (c.closing) c.socket.end();
    else if (c.owed) {
      c.owed = false;
      core.drained(id, now());
    }
  }
}

var lastSent = null;

function queueBytes(id, bytes) {
  var c = conns[id];
  if (!c || c.closing) return;
  c.queue.push(bytes);
  c.queued += bytes.length;
  if (flushTimer === null) flushTimer = setTimeout(flushAll, 0);
}

bind({
  send: function (id, ptr, len) {
    lastSent = new Uint8Array(mem.subarray(ptr, ptr + len)); // a copy: the core reuses the memory at once
    queueBytes(id, lastSent);
  },
  // the previous send's bytes again, to another connection (a fan-out): no new copy
  sendAgain: function (id) {
    if (lastSent !== null) queueBytes(id, lastSent);
  },
  close: function (id, reason) {
    var c = conns[id];
    if (!c || c.closing) return;
    c.closing = true;
    c.pending = null;
    if (c.queued === 0) c.socket.end();
    else if (flushTimer === null) flushTimer = setTimeout(flushAll, 0);
  },
  backlog: function (id) {
    var c = conns[id];
    if (!c) return 0;
    if (c.queued > 0) c.owed = true; // told (drained) once it is written
    return c.queued;
  },
  // flow control is the core's: stop and restart reading a socket
  pause: function (id) {
    var c = conns[id];
    if (!c || c.paused) return;
    c.paused = true;
    if (c.socket.pause) c.socket.pause();
  },
  resume: function (id) {
    var c = conns[id];
    if (!c || !c.paused) return;
    c.paused = false;
    if (c.socket.resume) c.socket.resume();
    if (c.pending) setTimeout(function () { received(id, EMPTY); }, 0); // what was kept goes in first
  },
  wake: function (ms) {
    scheduleTick(ms);
  },
  log: function (level, ptr, len) {
    logLine(level, level === 9 ? "(core trap)" : text(ptr, len));
  },
});

core.init(0, 3);
var input = core.inputBuffer();
var capacity = core.inputCapacity();

/** Received bytes (a Uint8Array on Node, a binary String on Espruino) for connection `id`. */
function received(id, data) {
  var c = conns[id];
  if (!c || c.closing) return;
  var n = data.length;
  if (c.paused) { // kept until the core resumes it
    if (n > 0) c.pending = concatBytes(c.pending, data);
    return;
  }
  var bytes = new Uint8Array((c.pending ? c.pending.length : 0) + n);
  var at = 0;
  if (c.pending) {
    bytes.set(c.pending, 0);
    at = c.pending.length;
  }
  if (typeof data === "string") for (var i = 0; i < n; i++) bytes[at + i] = data.charCodeAt(i);
  else bytes.set(data, at);
  c.pending = null;
  var offset = 0;
  while (offset < bytes.length) {
    var len = Math.min(capacity, bytes.length - offset);
    mem.set(bytes.subarray(offset, offset + len), input);
    var consumed = core.feed(id, len, now()) >>> 0;
    if (c.closing) return;
    offset += consumed;
    if (c.paused) { // the core stopped reading it: keep the rest for its resume
      if (offset < bytes.length) c.pending = new Uint8Array(bytes.subarray(offset));
      return;
    }
    if (consumed < len) {
      if (consumed === 0 && len === capacity) return hostClose(id, "a full input window held no whole packet");
      if (offset + (len - consumed) < bytes.length) continue;
      c.pending = new Uint8Array(bytes.subarray(offset)); // an incomplete packet: wait for the rest
      return;
    }
  }
}

var EMPTY = new Uint8Array(0);

/** `a` (or null) followed by `data` (a Uint8Array, or a binary String on Espruino). */
function concatBytes(a, data) {
  var n = data.length;
  var out = new Uint8Array((a ? a.length : 0) + n);
  if (a) out.set(a, 0);
  var at = a ? a.length : 0;
  if (typeof data === "string") for (var i = 0; i < n; i++) out[at + i] = data.charCodeAt(i);
  else out.set(data, at);
  return out;
}

function hostClose(id, why) {
  logLine(0, "connection " + id + ": " + why);
  var c = conns[id];
  c.closing = true;
  c.socket.end();
}

function gone(id, c) {
  if (conns[id] !== c) return;
  conns[id] = undefined;
  core.closed(id, now());
}

var server = net.createServer(function (socket) {
  var id = core.open(now());
  if (id < 0) {
    logLine(1, "connection refused: connection table full");
    socket.end();
    return;
  }
  var c = { socket: socket, queue: [], queued: 0, pending: null, closing: false, paused: false, owed: false };
  conns[id] = c;
  socket.on("data", function (data) {
    received(id, data);
  });
  socket.on("close", function () {
    gone(id, c);
  });
  socket.on("error", function () {});
});

var tickTimer = null;
var tickDue = 0;

function tick() {
  tickTimer = null;
  var next = core.tick(now()) >>> 0;
  scheduleTick(Math.min(Math.max(next, 10), 1000));
}

/** Tick within `ms` (the core's `wake` may bring the next tick forward). */
function scheduleTick(ms) {
  var due = now() + ms;
  if (tickTimer !== null) {
    if (tickDue <= due) return;
    clearTimeout(tickTimer);
  }
  tickDue = due;
  tickTimer = setTimeout(tick, ms);
}

var port = 1883;
if (isNode) {
  var args = process.argv.slice(2);
  var arg = args[0] === "--port" ? args[1] : args[0] || process.env.MIDGE_PORT;
  if (arg) port = Number(arg);
}
function listening() {
  var bound = server.address ? server.address() : null; // Node: the port actually bound (port 0)
  var what = typeof WebAssembly === "undefined" ? "no WebAssembly" : "WebAssembly present, unused";
  logLine(2, "midge (mcu core, wasm2js, " + what + ") listening on 127.0.0.1:" + (bound ? bound.port : port));
}

// Node binds the loopback address only; Espruino's listen takes the port alone and
// ignores the rest (its network is the board's).
if (isNode) server.listen(port, "127.0.0.1", listening);
else {
  server.listen(port);
  listening();
}
tick();
