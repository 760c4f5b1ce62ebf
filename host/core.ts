// The binding between the host and the core: the only file that knows docs/ABI.md.
// Listeners hand it connections and bytes; it hands them back bytes to send and
// connections to close. It never looks inside a packet.

import { Buffer } from "node:buffer";
import { createHash, pbkdf2Sync } from "node:crypto";
import { setImmediate, setTimeout, clearTimeout } from "node:timers";

import { CloseReason, LogLevel, Setting, Stat, closeReasonTexts, statNames } from "./generated/vocab";
import { PersistFile } from "./persist";

// The core's vocabulary (scripts/vocab.mjs writes it from the core's sources), for the rest of the host;
// `Level`: the log levels of the ABI's `log` import, and of the host's own lines.
export { CloseReason, LogLevel as Level, Setting, Stat, statNames };

/** Where log lines go: the host's and the core's alike. */
export type Log = (level: number, text: string) => void;

/** The host's own reason to close a connection (a core bug it caught), beside the core's. */
const HOST_ERROR = -1;
export function closeReasonText(reason: number): string {
  return reason === HOST_ERROR ? "host error" : (closeReasonTexts[reason] ?? `close reason ${reason}`);
}

/** A listener's side of one connection: what the core may ask of its socket. */
export interface Link {
  /** Queue bytes for the peer: a copy that is never modified, which the callee may keep
   *  (the same Buffer may be given to several links). */
  send(bytes: Buffer): void;
  /** Flush what was sent, then close; the listener calls `Core.closed` once it is gone. */
  close(reason: number): void;
  /** Bytes sent but not yet written to the network. */
  backlog(): number;
  /** Stop / restart reading from this peer (the core decides when: flow control). */
  pause(): void;
  resume(): void;
  /** The core saw a non-zero backlog: call `Core.drained` once it is zero again. */
  watchDrain(): void;
  /** Write what was sent: called after every core call that sent to this peer. */
  flush(): void;
}

/** What a host gives the binding (settings go through `Core.option` and `Core.configure`). */
export interface CoreOptions {
  /** Most detailed level the caller prints (default info): the core does not build lines above it. */
  logLevel?: number;
  log: Log;
  /** The core trapped (a bug in it): its state is gone, so this must not return. */
  fatal: (error: Error) => never;
  /** Monotonic milliseconds; `performance.now()` unless a test wants its own clock. */
  clock?: () => number;
}

const exportNames = ["init", "configure", "option", "config", "text", "inputBuffer", "inputCapacity", "open", "openOn", "feed",
  "needed", "drained", "closed", "tick", "shutdown", "stat", "budget", "passwd", "identity", "restore", "restoreEnd", "persisted", "listening",
  "dialed"] as const;
/** The exports of docs/ABI.md (the signatures are there): the memory, and functions of numbers. */
type Exports = { memory: WebAssembly.Memory } & Record<(typeof exportNames)[number], (...args: number[]) => number>;

const importNames = ["send", "sendAgain", "close", "backlog", "pause", "resume", "wake", "log", "sha512", "pbkdf2Sha512",
  "sha1", "persistWrite", "persistFlush", "persistReplace", "dial"];

/** What is wrong with a module as a core for this host: empty when it fits the ABI. */
export function checkAbi(module: WebAssembly.Module): string[] {
  const problems: string[] = [];
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  if (exports.get("memory") !== "memory") problems.push("no exported memory");
  for (const name of exportNames) if (exports.get(name) !== "function") problems.push(`no exported function ${name}`);
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module !== "env" || !importNames.includes(i.name) || i.kind !== "function") {
      problems.push(`imports ${i.module}.${i.name} (${i.kind}), which the host does not provide`);
    }
  }
  return problems;
}

/** `raw`'s functions, each handing what it throws (a trap: a bug in the core) to `crash`. */
function guard(raw: Exports, crash: (error: unknown) => never): Exports {
  const guarded: Record<string, unknown> = { memory: raw.memory };
  for (const name of exportNames) {
    const call = raw[name];
    guarded[name] = (...args: number[]) => {
      try {
        return call(...args);
      } catch (error) {
        return crash(error);
      }
    };
  }
  return guarded as unknown as Exports;
}

/** Per-connection state: who owns it, and received bytes not yet consumed. */
class Connection {
  chunks: Uint8Array[] | null = null; // unconsumed bytes, oldest first; concatenated only when fed
  buffered = 0;
  needed = 0; // size of the incomplete packet at the head of `chunks` (0: unknown yet)
  closing = false; // the core (or the host) asked to close: further bytes are dropped
  paused = false; // between the core's `pause` and its `resume`
  constructor(readonly link: Link) {}
}

/** Output is copied out of the core into slabs of this size (see `send` below). */
const SLAB_SIZE = 64 * 1024;

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();
const utf16 = new TextDecoder("utf-16le");

export class Core {
  private readonly raw: Exports;
  /** The exports every call goes through: a trap in any of them is fatal (`crash`). */
  private readonly x: Exports;
  private readonly conns: (Connection | undefined)[] = [];
  private readonly log: Log;
  private readonly fatal: (error: Error) => never;
  private readonly now: () => number;
  private readonly capacity: number;
  private readonly inputBase: number;
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  private slabUsed = 0;
  private lastSent: Buffer | null = null;
  /** Connections that were sent something during the current core call (flushed after it:
   *  all one call sends to a socket, a publish fanned out or the replies to one read, is one write). */
  private touched = new Set<Connection>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the pending tick timer fires (performance.now() time), 0: none. */
  private tickDue = 0;
  private ticking = false;
  /** The persistence file (docs/ABI.md, Persistence), once `restore` opened it. */
  private store: PersistFile | null = null;

  /** Compile `wasm` (one board's core), check it against the ABI, and instantiate it. */
  static async load(wasm: Uint8Array<ArrayBuffer>, options: CoreOptions): Promise<Core> {
    return new Core(await WebAssembly.compile(wasm), options);
  }

  constructor(module: WebAssembly.Module, options: CoreOptions) {
    const problems = checkAbi(module);
    if (problems.length > 0) throw new Error(`not a Midge core: ${problems.join("; ")}`);
    this.log = options.log;
    this.fatal = options.fatal;
    this.now = options.clock ?? (() => performance.now());
    // A trap here (in the start function or in init) is thrown to the caller: nothing
    // is running yet, so there is nothing to stop.
    this.raw = new WebAssembly.Instance(module, { env: this.env }).exports as unknown as Exports;
    this.raw.init(0, options.logLevel ?? LogLevel.Info); // 0: the board's packet size limit
    this.capacity = this.raw.inputCapacity() >>> 0;
    this.inputBase = this.raw.inputBuffer() >>> 0;
    this.x = guard(this.raw, (error) => this.crash(error));
  }

  /** The raw exports, for harnesses that look inside the core (the fuzzer's probes):
   *  read, don't drive (a `feed` behind this binding's back breaks its bookkeeping). */
  get rawExports(): Readonly<Record<string, unknown>> {
    return this.raw as unknown as Record<string, unknown>;
  }

  /** The packet size limit in force. */
  get maxPacketSize(): number {
    return this.configure(Setting.MaxPacketSize, -1);
  }

  /** Pages of linear memory the core occupies (fixed: it never grows). */
  get memoryPages(): number {
    return this.raw.memory.buffer.byteLength / 65536;
  }

  /** One option as the user wrote it (`"--max-inflight"`, `"10"`; `""` for a flag or a missing
   *  value), set by the core's parser: null when accepted, else the core's message. A value
   *  longer than the input window is cut there (the core then refuses it: none is that long). */
  option(name: string, value: string): string | null {
    const input = this.bytes(this.inputBase, this.capacity);
    const n = encoder.encodeInto(name, input).written;
    const v = encoder.encodeInto(value, input.subarray(n)).written;
    const result = this.x.option(this.inputBase, n, this.inputBase + n, v);
    return result >= 0 ? null : utf8.decode(input.subarray(0, -result));
  }

  /** One config file's bytes, named `name` in the core's messages; `part` 0 the main file,
   *  1 a file of its include_dir, 2 the main file again after it (docs/ABI.md, `config`).
   *  `{ done }` when read, `{ includeDir }` at an include_dir line of the main file, or
   *  `{ refused }` with the core's message. What does not fit in the input window is not
   *  written (the core says the file is too large for the board). */
  config(name: string, text: Uint8Array, part: number): { done: true } | { includeDir: string } | { refused: string } {
    const input = this.bytes(this.inputBase, this.capacity);
    const n = encoder.encodeInto(name, input).written;
    input.set(text.subarray(0, Math.min(text.length, input.length - n)), n);
    const result = this.x.config(this.inputBase, n, this.inputBase + n, text.length, part);
    if (result === 0) return { done: true };
    const said = utf8.decode(input.subarray(0, Math.abs(result)));
    return result > 0 ? { includeDir: said } : { refused: said };
  }

  /** One step of `midge passwd` (docs/ABI.md, `passwd`): `input` is written to the input
   *  window (what does not fit is not written: the core refuses it). `{ value, text }`:
   *  the answer's top byte and the n bytes the core left in the window; `{ refused, status }`:
   *  its message and the exit status. */
  passwd(step: number, input: Uint8Array): { value: number; text: Uint8Array } | { refused: string; status: number } {
    const window = this.bytes(this.inputBase, this.capacity);
    window.set(input.subarray(0, Math.min(input.length, window.length)));
    const answer = this.x.passwd(step, input.length);
    const n = Math.abs(answer) & 0xffffff;
    if (answer < 0) return { refused: utf8.decode(window.subarray(0, n)), status: -answer >>> 24 };
    return { value: answer >>> 24, text: window.slice(0, n) };
  }

  /** Text the core holds for the host (`Text` in generated/vocab.ts: the listeners, the note
   *  on who may connect, the paths of the password, ACL and log files). */
  text(id: number): string {
    return utf8.decode(this.bytes(this.inputBase, this.x.text(id)));
  }

  /** Persistence (`text(5)` names the file): read it back into the core, which then
   *  writes a fresh snapshot; records follow while the broker runs. */
  restore(file: string): void {
    const store = (this.store = new PersistFile(file, (bytes, error) => {
      this.x.persisted(this.now(), bytes, error);
      this.flushTouched(); // acknowledgements that waited for the disk
    }));
    store.readBack(
      this.capacity,
      (piece) => {
        this.bytes(this.inputBase, piece.length).set(piece);
        return this.x.restore(piece.length, this.now(), Date.now()) >>> 0;
      },
      (error) => this.x.restoreEnd(this.now(), Date.now(), error),
    );
  }

  /** Write what the core asked to be written (at shutdown). */
  flushStore(): void {
    this.store?.flushNow();
  }

  /** Listener `k` is bound to `port` (the core's logs and pages then say the real one). */
  listening(k: number, port: number): void {
    this.x.listening(k, port);
  }

  /** A new connection owned by `link`, accepted on listener `listener` (text(16 + listener)):
   *  its id, or -1 when every slot is taken. */
  open(link: Link, listener = 0): number {
    const id = this.x.openOn(listener, this.now());
    if (id >= 0) this.conns[id] = new Connection(link);
    return id;
  }

  /** The user name connection `id`'s TLS client certificate gives (its CN, or its subject;
   *  "" when it has none), before its first bytes: docs/ABI.md `identity`. */
  identity(id: number, name: string): void {
    const bytes = encoder.encode(name);
    const n = Math.min(bytes.length, this.capacity); // a longer one is refused by its length alone
    this.bytes(this.inputBase, n).set(bytes.subarray(0, n));
    this.x.identity(id, this.inputBase, bytes.length);
  }

  /** Bytes received on `id`. Whole packets go to the core now; an incomplete one is kept and
   *  offered again, prefixed, once enough bytes have arrived; while paused, all is kept. */
  feed(id: number, bytes: Uint8Array): void {
    this.feedBytes(id, bytes);
    this.flushTouched();
  }

  private feedBytes(id: number, bytes: Uint8Array): void {
    const conn = this.conns[id];
    if (conn === undefined || conn.closing) return;
    if (bytes.length > 0) {
      (conn.chunks ??= []).push(bytes);
      conn.buffered += bytes.length;
    }
    // The core already said how big the pending packet is: re-offering it before it is
    // whole would only make the core parse the same fixed header again.
    if (conn.chunks === null || conn.paused || conn.buffered < conn.needed) return;
    const chunks = conn.chunks;
    conn.chunks = null;
    conn.buffered = 0;
    conn.needed = 0;
    // Chunk by chunk, as read: only an incomplete packet at the end of one is joined
    // with the next one (joining everything kept would copy it again at every resume).
    let data = chunks[0];
    let next = 1;
    for (;;) {
      const offset = this.feedChunk(id, conn, data);
      if (offset < 0 || conn.closing) return;
      if (offset === data.length && next < chunks.length) {
        data = chunks[next++];
        continue;
      }
      if (offset === data.length) return;
      const rest = data.subarray(offset);
      if (!conn.paused && next < chunks.length) {
        data = new Uint8Array(rest.length + chunks[next].length);
        data.set(rest);
        data.set(chunks[next++], rest.length);
        continue;
      }
      // Keep the rest (an incomplete packet, or all that follows a pause) for the next
      // bytes or the `resume`. A small rest is copied, so that a few bytes do not keep
      // a large received buffer alive (`new Uint8Array(view)` copies).
      const kept = [conn.paused || offset === 0 ? rest : new Uint8Array(rest), ...chunks.slice(next)];
      conn.chunks = kept;
      conn.buffered = kept.reduce((n, c) => n + c.length, 0);
      conn.needed = conn.paused ? 0 : Math.min(this.x.needed() >>> 0, this.capacity);
      return;
    }
  }

  /** Feeds `data` window by window; returns how many bytes the core consumed (it stops at
   *  an incomplete packet or a pause), or -1 when the core broke the ABI. */
  private feedChunk(id: number, conn: Connection, data: Uint8Array): number {
    let offset = 0;
    while (offset < data.length) {
      const length = Math.min(this.capacity, data.length - offset);
      const end = offset + length;
      this.bytes(this.inputBase, length).set(data.subarray(offset, end));
      const consumed = this.x.feed(id, length, this.now()) >>> 0;
      if (conn.closing) return offset; // the core closed it: it ignores the rest anyway
      if (consumed > length) return this.hostError(id, `feed consumed ${consumed} of ${length} bytes`), -1;
      offset += consumed;
      if (conn.paused) return offset;
      if (offset === end) continue;
      // An incomplete packet is left. The core must refuse a packet larger than its
      // window from the fixed header, so a full window without one is its bug.
      if (consumed === 0 && length === this.capacity) {
        return this.hostError(id, `a full input window (${length} bytes) held no whole packet`), -1;
      }
      if (end < data.length) continue; // more of that packet was beyond the window
      return offset;
    }
    return offset;
  }

  /** Everything sent to `id` has been written to the network (its link's `watchDrain`). */
  drained(id: number): void {
    if (this.conns[id] === undefined) return;
    this.x.drained(id, this.now());
    this.flushTouched();
  }

  /** Outbound connections (a bridge's `dial`): the host opens a socket to `host`:`port`
   *  (with TLS as text(Text.Bridge + bridge * 8 + field) says) and returns its link; once
   *  connected it calls `dialed`, and `closed` when it fails or ends. Set before ticking. */
  dialer: ((id: number, host: string, port: number, bridge: number) => Link) | null = null;

  /** The outbound connection `id` is connected (docs/ABI.md `dialed`). */
  dialed(id: number): void {
    if (this.conns[id] === undefined) return;
    this.x.dialed(id, this.now());
    this.flushTouched();
  }

  /** The socket of `id` is gone; the id may be reused by the core. Safe to repeat. */
  closed(id: number): void {
    if (this.conns[id] === undefined) return;
    this.conns[id] = undefined;
    this.x.closed(id, this.now());
    this.flushTouched();
  }

  /** A run-time setting (see `Setting`), clamped to its range; the value in force, -1 if unknown. */
  configure(key: number, value: number): number {
    return this.x.configure(key, value);
  }

  /** Close every connection as the server goes down (MQTT 5 clients are told why). */
  shutdown(): void {
    this.x.shutdown(this.now());
    this.flushTouched();
  }

  /** Keep-alive and CONNECT timeouts: returns the milliseconds until the next tick. */
  tick(): number {
    const next = this.x.tick(this.now()) >>> 0;
    this.flushTouched();
    return next;
  }

  /** A counter (see `Stat`). */
  stat(id: number): number {
    return this.x.stat(id);
  }

  /** Call `tick` when the core asks (or sooner, when it says `wake`), at most once per 10 ms and
   *  at least once a second. */
  startTicking(): void {
    this.stopTicking();
    this.ticking = true;
    this.runTick();
  }

  stopTicking(): void {
    this.ticking = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private runTick = (): void => {
    this.timer = undefined;
    this.schedule(Math.min(Math.max(this.tick(), 10), 1000));
  };

  /** The next tick in `delay` ms, unless one is due sooner. */
  private schedule(delay: number): void {
    const due = performance.now() + delay;
    if (!this.ticking || (this.timer !== undefined && this.tickDue <= due)) return;
    clearTimeout(this.timer);
    this.tickDue = due;
    this.timer = setTimeout(this.runTick, delay).unref(); // the listeners keep the process alive, not the clock
  }

  /** What the last core call sent goes out now: waiting for the end of the event-loop turn
   *  would only add latency (a read is already a batch). */
  private flushTouched(): void {
    if (this.touched.size > 0) this.store?.writeNow(); // records before the answers they stand for
    for (const c of this.touched) if (!c.closing) c.link.flush();
    this.touched.clear();
  }

  // ---- the imports of docs/ABI.md (module `env`), called in the middle of a core call ----
  // A JavaScript exception must never unwind through the core (it would leave its
  // tables half-updated), so each import catches and logs what a listener throws.
  private readonly env = {
    send: (id: number, ptr: number, len: number): void => {
      const conn = this.conns[id];
      if (conn === undefined) return this.log(LogLevel.Error, `core sent ${len} bytes to unknown connection ${id}`);
      // Copy now (the core reuses this memory as soon as we return) into the current
      // slab: no allocation per packet, and consecutive sends to one socket end up
      // contiguous, so the listener can write them as one buffer. A full slab is replaced,
      // never reused: sockets may still hold parts of it.
      len >>>= 0;
      ptr >>>= 0;
      const bytes = this.bytes(ptr, len);
      if (len > SLAB_SIZE >>> 2) {
        this.lastSent = Buffer.from(bytes); // a copy
      } else {
        if (this.slabUsed + len > SLAB_SIZE) {
          this.slab = Buffer.allocUnsafe(SLAB_SIZE);
          this.slabUsed = 0;
        }
        this.slab.set(bytes, this.slabUsed);
        this.lastSent = this.slab.subarray(this.slabUsed, this.slabUsed + len);
        this.slabUsed += len;
      }
      this.sendTo(id, conn, this.lastSent);
    },

    /** The same bytes as the previous send, to another connection (a fan-out). */
    sendAgain: (id: number): void => {
      const conn = this.conns[id];
      if (conn !== undefined && this.lastSent !== null) this.sendTo(id, conn, this.lastSent);
    },

    close: (id: number, reason: number): void => {
      const conn = this.conns[id];
      if (conn === undefined) return this.log(LogLevel.Error, `core closed unknown connection ${id}`);
      if (conn.closing) return;
      conn.closing = true;
      conn.chunks = null;
      conn.buffered = 0;
      this.store?.writeNow(); // a close writes what was sent at once: records first
      try {
        conn.link.close(reason);
      } catch (error) {
        this.log(LogLevel.Error, `closing connection ${id}: ${String(error)}`);
      }
    },

    backlog: (id: number): number => {
      const conn = this.conns[id];
      if (conn === undefined) return 0;
      try {
        const bytes = conn.link.backlog();
        if (bytes > 0) conn.link.watchDrain();
        return bytes;
      } catch {
        return 0;
      }
    },

    pause: (id: number): void => this.setPaused(id, true),
    resume: (id: number): void => this.setPaused(id, false),
    wake: (ms: number): void => this.schedule(Math.max(ms >>> 0, 1)),

    dial: (id: number, ptr: number, len: number, bridge: number): void => {
      const [host, port] = utf8.decode(this.bytes(ptr >>> 0, len >>> 0)).split(" ");
      const dialer = this.dialer;
      if (dialer === null) { // a host without outbound connections: it fails, later (never inside a core call)
        this.conns[id] = new Connection({ send() {}, close() {}, backlog: () => 0, pause() {}, resume() {}, watchDrain() {}, flush() {} });
        setImmediate(() => this.closed(id));
        return;
      }
      this.conns[id] = new Connection(dialer(id, host, Number(port), bridge));
    },

    log: (level: number, ptr: number, len: number): void => {
      const bytes = this.bytes(ptr >>> 0, len >>> 0);
      // Fatal messages are AssemblyScript string literals, hence UTF-16; the trap follows.
      const text = level === LogLevel.Fatal ? utf16.decode(bytes) : utf8.decode(bytes);
      try {
        this.log(level, text);
      } catch {
        // nowhere left to report it
      }
    },

    // The crypto service: digests the core asks for (a password check), from node:crypto.
    sha512: (ptr: number, len: number, out: number): void => {
      this.bytes(out >>> 0, 64).set(createHash("sha512").update(this.bytes(ptr >>> 0, len >>> 0)).digest());
    },
    sha1: (ptr: number, len: number, out: number): void => {
      this.bytes(out >>> 0, 20).set(createHash("sha1").update(this.bytes(ptr >>> 0, len >>> 0)).digest());
    },
    pbkdf2Sha512: (pwd: number, pwdLen: number, salt: number, saltLen: number, rounds: number, out: number,
                   outLen: number): void => {
      const key = pbkdf2Sync(this.bytes(pwd >>> 0, pwdLen >>> 0), this.bytes(salt >>> 0, saltLen >>> 0), rounds >>> 0,
        outLen >>> 0, "sha512");
      this.bytes(out >>> 0, outLen >>> 0).set(key);
    },

    // The store service (host/persist.ts): append, flush after this call, compact.
    persistWrite: (ptr: number, len: number): void => this.store?.write(this.bytes(ptr >>> 0, len >>> 0)),
    persistFlush: (sync: number): void => this.store?.flush(sync !== 0),
    persistReplace: (step: number): number => this.store?.replace(step) ?? 3,
  };

  /** Flow control (the core's): stop reading `id`, or read it again and offer what was kept
   *  for it once the core call has returned. */
  private setPaused(id: number, paused: boolean): void {
    const conn = this.conns[id];
    if (conn === undefined || conn.closing || conn.paused === paused) return;
    conn.paused = paused;
    if (paused) return conn.link.pause();
    conn.link.resume();
    if (conn.chunks === null) return;
    setImmediate(() => {
      if (this.conns[id] === conn) this.feed(id, EMPTY);
    });
  }

  private sendTo(id: number, conn: Connection, bytes: Buffer): void {
    if (conn.closing) return;
    this.touched.add(conn);
    try {
      conn.link.send(bytes);
    } catch (error) {
      this.log(LogLevel.Error, `sending on connection ${id}: ${String(error)}`);
    }
  }

  /** `len` bytes of linear memory at `ptr`. */
  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.raw.memory.buffer, ptr, len);
  }

  /** A host-side inconsistency on one connection: close it, keep the broker running. */
  private hostError(id: number, what: string): void {
    this.log(LogLevel.Error, `core bug on connection ${id}: ${what}; closing it`);
    this.env.close(id, HOST_ERROR);
  }

  /** A trap is a bug in the core and leaves it unusable: report and stop. */
  private crash(error: unknown): never {
    if (!(error instanceof WebAssembly.RuntimeError)) throw error;
    this.stopTicking();
    return this.fatal(error);
  }
}
