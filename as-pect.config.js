// as-pect 8.1 configuration (ESM: package.json has "type": "module"; as-pect loads
// this file with import() and uses its default export).
//
// Compiler options live in test/assembly/asconfig.json, passed with
// `asp --config as-pect.config.js --as-config test/assembly/asconfig.json`.
// They force the `stub` runtime: as-pect itself allocates, and the repository's own
// ./asconfig.json (not loaded here: asc reads only the --config file and what it
// extends) may name a runtime that forbids allocation.
import { createHash, pbkdf2Sync } from "node:crypto";
import "./test/assembly/reporter.js"; // install the closing-line hook before compiling

/**
 * What the core sent to the host during the current spec file, for debugging.
 * Bounded: only the last MAX_CALLS calls are kept.
 */
export const hostCalls = [];
const MAX_CALLS = 1000;
function record(call) {
  hostCalls.push(call);
  if (hostCalls.length > MAX_CALLS) hostCalls.shift();
}

const LEVELS = ["error", "warning", "notice", "info", "debug"];

export default {
  entries: ["test/assembly/**/*.spec.ts"],
  include: ["test/assembly/**/*.include.ts"],
  disclude: [/node_modules/],
  reporter: "test/assembly/reporter.js",

  async instantiate(memory, createImports, instantiate, binary) {
    hostCalls.length = 0;
    let exports = null; // set after instantiation; the imports read memory through it
    const bytes = (ptr, len) =>
      exports ? new Uint8Array(exports.memory.buffer, ptr >>> 0, len >>> 0).slice() : null;
    // The core's host imports (docs/ABI.md), as no-ops that record their calls.
    const env = {
      send(conn, ptr, len) {
        record({ fn: "send", conn, bytes: bytes(ptr, len) });
      },
      close(conn, reason) {
        record({ fn: "close", conn, reason });
      },
      backlog(conn) {
        record({ fn: "backlog", conn });
        return 0;
      },
      pause(conn) {
        record({ fn: "pause", conn });
      },
      resume(conn) {
        record({ fn: "resume", conn });
      },
      wake(ms) {
        record({ fn: "wake", ms });
      },
      // the crypto service, from node:crypto as the Node host does it
      sha512(ptr, len, out) {
        const digest = createHash("sha512").update(bytes(ptr, len)).digest();
        new Uint8Array(exports.memory.buffer, out >>> 0, 64).set(digest);
      },
      sha1(ptr, len, out) {
        const digest = createHash("sha1").update(bytes(ptr, len)).digest();
        new Uint8Array(exports.memory.buffer, out >>> 0, 20).set(digest);
      },
      pbkdf2Sha512(pwd, pwdLen, salt, saltLen, iterations, out, outLen) {
        const key = pbkdf2Sync(bytes(pwd, pwdLen), bytes(salt, saltLen), iterations >>> 0, outLen >>> 0, "sha512");
        new Uint8Array(exports.memory.buffer, out >>> 0, outLen >>> 0).set(key);
      },
      // the store service (docs/ABI.md, Persistence), recorded: specs run without a file
      persistWrite(ptr, len) {
        record({ fn: "persistWrite", bytes: bytes(ptr, len) });
      },
      persistFlush(sync) {
        record({ fn: "persistFlush", sync });
      },
      persistReplace(step) {
        record({ fn: "persistReplace", step });
        return 0;
      },
      // the network service's outbound connections (bridges), recorded
      dial(conn, ptr, len, bridge) {
        record({ fn: "dial", conn, address: Buffer.from(bytes(ptr, len)).toString(), bridge });
      },
      log(level, ptr, len) {
        const b = bytes(ptr, len);
        let text = "";
        if (b) {
          text =
            level === 9
              ? Buffer.from(b).toString("utf16le") // fatal core error: UTF-16
              : Buffer.from(b).toString("utf8");
        }
        record({ fn: "log", level, text });
        if (level === 9 || level === 0) {
          process.stderr.write(`[core ${LEVELS[level] ?? "fatal"}] ${text}\n`);
        }
      },
    };
    // Spec-only imports (test/assembly/wire.ts): what the core sent to each
    // connection since the last take, and how the core asked to close it.
    const sentTo = new Map();
    const closeReason = new Map();
    const origSend = env.send, origClose = env.close;
    let lastSent = null;
    env.send = (conn, ptr, len) => {
      origSend(conn, ptr, len);
      lastSent = bytes(ptr, len);
      const list = sentTo.get(conn) ?? [];
      list.push(lastSent);
      sentTo.set(conn, list);
    };
    // the previous send's bytes again, to another connection (a fan-out)
    env.sendAgain = (conn) => {
      record({ fn: "sendAgain", conn });
      const list = sentTo.get(conn) ?? [];
      list.push(lastSent);
      sentTo.set(conn, list);
    };
    env.close = (conn, reason) => { origClose(conn, reason); closeReason.set(conn, reason); };
    const spec = {
      takeSent(conn, ptr, cap) {
        const all = Buffer.concat(sentTo.get(conn) ?? []);
        sentTo.delete(conn);
        const n = Math.min(all.length, cap);
        new Uint8Array(exports.memory.buffer, ptr >>> 0, n).set(all.subarray(0, n));
        return n;
      },
      closedWith(conn) {
        const r = closeReason.get(conn);
        closeReason.delete(conn);
        return r === undefined ? -1 : r;
      },
    };
    const result = await instantiate(binary, createImports({ env, spec }));
    exports = result.exports;
    return result;
  },

  outputBinary: false,
};
