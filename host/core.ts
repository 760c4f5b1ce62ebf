// The binding between the host and the core: the only file that knows docs/ABI.md.
// Listeners hand it connections and bytes; it hands them back bytes to send and
// connections to close. It never looks inside a packet.

import { Buffer } from "node:buffer";
import { createHash, pbkdf2Sync } from "node:crypto";
import { setImmediate, setTimeout, clearTimeout } from "node:timers";

import { CloseReason, LogLevel, Setting, Stat, closeReasonTexts, logLevelNames, statNames, tableNames } from "./generated/vocab";

// The core's vocabulary, generated from its sources (scripts/vocab.mjs), for the
// listeners, the command line and the tests.
export { CloseReason, Setting, Stat, statNames, tableNames };

/** Log levels of the ABI's `log` import (and of the host's own lines). */
export const Level = LogLevel;
export function levelName(level: number): string {
  return logLevelNames[level] ?? `level${level}`;
}

/** Where log lines go: the host's and the core's alike. */
export type Log = (level: number, text: string) => void;

/** The host's own reason to close a connection (a core bug it caught), beside the core's. */
const HOST_ERROR = -1;
export function closeReasonText(reason: number): string {
  if (reason === HOST_ERROR) return "host error";
  return closeReasonTexts[reason] ?? `close reason ${reason}`;
}

/** A listener's side of one connection: what the core may ask of its socket. */
export interface Link {
  /** Queue bytes for the peer. `bytes` is a copy that is never modified, which the
   *  callee may keep (the same Buffer may be given to several links). */
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
  /** Write what was sent so far now, rather than at the end of the event-loop turn. */
  flush(): void;
}

export interface CoreOptions {
  /** Largest packet accepted, bytes; 0 or absent means the board's maximum. (Options
   *  given as text, the command line's, go through `Core.option` instead.) */
  maxPacketSize?: number;
  /** Most detailed level the caller prints (default info): the core does not even
   *  build lines above it. */
  logLevel?: number;
  log: Log;
  /** The core trapped (a bug in it): its state is gone, so this must not return. */
  fatal: (error: Error) => never;
  /** Monotonic milliseconds; `performance.now()` unless a test wants its own clock. */
  clock?: () => number;
}

/** The exports of docs/ABI.md, as JavaScript sees them. */
interface Exports {
  memory: WebAssembly.Memory;
  init(maxPacketSize: number, logLevel: number): number;
  inputBuffer(): number;
  inputCapacity(): number;
  open(now: number): number;
  feed(conn: number, len: number, now: number): number;
  needed(): number;
  closed(conn: number, now: number): void;
  drained(conn: number, now: number): void;
  tick(now: number): number;
  stat(id: number): number;
  configure(key: number, value: number): number;
  option(name: number, nameLength: number, value: number, valueLength: number): number;
  config(name: number, nameLength: number, text: number, textLength: number, part: number): number;
  text(id: number): number;
  shutdown(now: number): void;
  budget(id: number): number;
}

const exportNames = ["init", "configure", "option", "config", "text", "inputBuffer", "inputCapacity", "open", "feed", "needed", "drained",
  "closed", "tick", "shutdown", "stat", "budget"];
// `persist` is in DESIGN.md §5 but not yet in docs/ABI.md; accepted so a core that
// declares it still links (the records are dropped until host/persist.ts exists).
const importNames = ["send", "sendAgain", "close", "backlog", "pause", "resume", "wake", "log", "sha512", "pbkdf2Sha512", "persist"];

/** What is wrong with a module as a core for this host: empty when it fits the ABI. */
export function checkAbi(module: WebAssembly.Module): string[] {
  const problems: string[] = [];
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  if (exports.get("memory") !== "memory") problems.push("no exported memory");
  for (const name of exportNames) {
    if (exports.get(name) !== "function") problems.push(`no exported function ${name}`);
  }
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module !== "env" || !importNames.includes(i.name) || i.kind !== "function") {
      problems.push(`imports ${i.module}.${i.name} (${i.kind}), which the host does not provide`);
    }
  }
  return problems;
}

/** Per-connection state: who owns it, and received bytes not yet consumed. */
class Connection {
  /** Unconsumed bytes, oldest first; concatenated only when they are fed. */
  chunks: Uint8Array[] | null = null;
  buffered = 0;
  /** Size of the incomplete packet at the head of `chunks` (0: unknown yet). */
  needed = 0;
  /** The core (or the host) asked to close: further bytes are dropped. */
  closing = false;
  /** The core asked not to read it (`pause`) and has not yet asked `resume`. */
  paused = false;
  constructor(readonly link: Link) {}
}

/** Output is copied out of the core into slabs of this size (see onSend). */
const SLAB_SIZE = 64 * 1024;

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();
const utf16 = new TextDecoder("utf-16le");

export class Core {
  private readonly x: Exports;
  private readonly conns: (Connection | undefined)[] = [];
  private readonly log: Log;
  private readonly fatal: (error: Error) => never;
  private readonly now: () => number;
  private readonly capacity: number;
  private input: Uint8Array;
  private memory: Uint8Array;
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  private slabUsed = 0;
  private lastSent: Buffer | null = null;
  /** Connections that were sent something during the current `feed` (flushed after it). */
  private touched = new Set<Connection>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the pending tick timer fires (performance.now() time), 0: none. */
  private tickDue = 0;
  private ticking = false;

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
    const env = {
      send: (conn: number, ptr: number, len: number) => this.onSend(conn, ptr, len),
      sendAgain: (conn: number) => this.onSendAgain(conn),
      close: (conn: number, reason: number) => this.onClose(conn, reason),
      backlog: (conn: number) => this.onBacklog(conn),
      pause: (conn: number) => this.onPause(conn),
      resume: (conn: number) => this.onResume(conn),
      wake: (ms: number) => this.onWake(ms),
      log: (level: number, ptr: number, len: number) => this.onLog(level, ptr, len),
      sha512: (ptr: number, len: number, out: number) => this.onSha512(ptr, len, out),
      pbkdf2Sha512: (pwd: number, pwdLen: number, salt: number, saltLen: number, iterations: number, out: number, outLen: number) =>
        this.onPbkdf2Sha512(pwd, pwdLen, salt, saltLen, iterations, out, outLen),
      persist: () => {},
    };
    // A trap here (in the start function or in init) is thrown to the caller: nothing
    // is running yet, so there is nothing to stop.
    this.x = new WebAssembly.Instance(module, { env }).exports as unknown as Exports;
    this.x.init(options.maxPacketSize ?? 0, options.logLevel ?? Level.Info);
    this.capacity = this.x.inputCapacity() >>> 0;
    this.input = new Uint8Array(this.x.memory.buffer, this.x.inputBuffer() >>> 0, this.capacity);
    this.memory = new Uint8Array(this.x.memory.buffer);
  }

  /** The core instance's raw exports, for harnesses that look inside it (the fuzzer
   *  calls the probe exports of its test build). Calling `feed` or `closed` through
   *  them behind this binding's back would break its bookkeeping: read, don't drive. */
  get rawExports(): Readonly<Record<string, unknown>> {
    return this.x as unknown as Record<string, unknown>;
  }

  /** The packet size limit in force. */
  get maxPacketSize(): number {
    return this.configure(Setting.MaxPacketSize, -1);
  }

  /**
   * One option as the user wrote it (`"--max-inflight"`, `"10"`; `""` for a flag or a
   * missing value), parsed and checked by the core, which sets the setting it names
   * (read it back with `configure(key, -1)`). Returns null when accepted, or the core's
   * message saying what is wrong. A value longer than the input window is cut there
   * (the core then refuses it: no option takes one that long).
   */
  option(name: string, value: string): string | null {
    const input = this.inputView();
    const n = encoder.encodeInto(name, input).written;
    const v = encoder.encodeInto(value, input.subarray(n)).written;
    const base = this.x.inputBuffer() >>> 0;
    let result: number;
    try {
      result = this.x.option(base, n, base + n, v);
    } catch (error) {
      this.crash(error);
    }
    return result >= 0 ? null : utf8.decode(input.subarray(0, -result));
  }

  /**
   * One config file's bytes, named `name` in the core's messages; `part` 0 the main file,
   * 1 a file of its include_dir, 2 the main file again after it (docs/ABI.md, `config`).
   * Returns `{ done: true }` when read, `{ includeDir }` at an include_dir line of the main
   * file, or `{ refused }` with the core's message. What does not fit in the input window
   * is not written (the core says the file is too large for the board).
   */
  config(name: string, text: Uint8Array, part: number): { done: true } | { includeDir: string } | { refused: string } {
    const input = this.inputView();
    const n = encoder.encodeInto(name, input).written;
    const fits = Math.min(text.length, input.length - n);
    input.set(text.subarray(0, fits), n);
    const base = this.x.inputBuffer() >>> 0;
    let result: number;
    try {
      result = this.x.config(base, n, base + n, text.length, part);
    } catch (error) {
      this.crash(error);
    }
    if (result === 0) return { done: true };
    const said = utf8.decode(input.subarray(0, Math.abs(result)));
    return result > 0 ? { includeDir: said } : { refused: said };
  }

  /** Text the core holds for the host: 0 the address to listen on, 1 the note on who may connect. */
  text(id: number): string {
    let n: number;
    try {
      n = this.x.text(id);
    } catch (error) {
      this.crash(error);
    }
    return utf8.decode(this.inputView().subarray(0, n));
  }

  /** Pages of linear memory the core occupies (fixed: it never grows). */
  get memoryPages(): number {
    return this.x.memory.buffer.byteLength / 65536;
  }

  /** A new connection owned by `link`: its id, or -1 when every slot is taken. */
  open(link: Link): number {
    let id: number;
    try {
      id = this.x.open(this.now());
    } catch (error) {
      this.crash(error);
    }
    if (id >= 0) this.conns[id] = new Connection(link);
    return id;
  }

  /**
   * Bytes received on `id`. Whole packets go to the core now; an incomplete one is
   * kept and offered again, prefixed, once enough bytes have arrived. While the core
   * has paused the connection, everything received is kept for its `resume`.
   */
  feed(id: number, bytes: Uint8Array): void {
    this.feedBytes(id, bytes);
    // Everything one read produced goes out now, one write per socket: waiting for
    // the end of the turn would only add latency (a read is already a batch).
    for (const c of this.touched) if (!c.closing) c.link.flush();
    this.touched.clear();
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
    const data = chunks.length === 1 ? chunks[0] : concat(chunks, conn.buffered);
    conn.chunks = null;
    conn.buffered = 0;
    conn.needed = 0;
    this.touched.clear();
    try {
      let offset = 0;
      while (offset < data.length) {
        const length = Math.min(this.capacity, data.length - offset);
        const end = offset + length;
        this.inputView().set(data.subarray(offset, end));
        const consumed = this.x.feed(id, length, this.now()) >>> 0;
        if (conn.closing) return; // the core closed it: it ignores the rest anyway
        if (consumed > length) return this.hostError(id, `feed consumed ${consumed} of ${length} bytes`);
        offset += consumed;
        if (offset === data.length) return;
        if (!conn.paused) {
          if (offset === end) continue;
          // An incomplete packet is left. The core must refuse a packet larger than its
          // window from the fixed header, so a full window without one is its bug.
          if (consumed === 0 && length === this.capacity) {
            return this.hostError(id, `a full input window (${length} bytes) held no whole packet`);
          }
          if (end < data.length) continue; // more of that packet was beyond the window
        }
        // Keep the rest (an incomplete packet, or all that follows a pause) for the next
        // bytes or the `resume`; copy it so that a few bytes do not keep a large received
        // buffer alive (`new Uint8Array(view)` copies; `Buffer#slice` would not).
        const tail = offset === 0 ? data : new Uint8Array(data.subarray(offset));
        conn.chunks = [tail];
        conn.buffered = tail.length;
        conn.needed = conn.paused ? 0 : Math.min(this.x.needed() >>> 0, this.capacity);
        return;
      }
    } catch (error) {
      this.crash(error);
    }
  }

  /** Everything sent to `id` has been written to the network (its link's `watchDrain`). */
  drained(id: number): void {
    if (this.conns[id] === undefined) return;
    try {
      this.x.drained(id, this.now());
    } catch (error) {
      this.crash(error);
    }
    for (const c of this.touched) if (!c.closing) c.link.flush();
    this.touched.clear();
  }

  /** The socket of `id` is gone; the id may be reused by the core. Safe to repeat. */
  closed(id: number): void {
    const conn = this.conns[id];
    if (conn === undefined) return;
    this.conns[id] = undefined;
    try {
      this.x.closed(id, this.now());
    } catch (error) {
      this.crash(error);
    }
  }

  /** A run-time setting (see `Setting`), clamped to its range; the value in force, -1 if unknown. */
  configure(key: number, value: number): number {
    try {
      return this.x.configure(key, value);
    } catch (error) {
      this.crash(error);
    }
  }

  /** Bytes of linear memory of each fixed table, by name. */
  budget(): Map<string, number> {
    const out = new Map<string, number>();
    for (let id = 0; ; id++) {
      const bytes = this.x.budget(id);
      if (bytes < 0) break;
      out.set(tableNames[id] ?? `table ${id}`, bytes);
    }
    return out;
  }

  /** Close every connection as the server goes down (MQTT 5 clients are told why). */
  shutdown(): void {
    try {
      this.x.shutdown(this.now());
    } catch (error) {
      this.crash(error);
    }
  }

  /** Keep-alive and CONNECT timeouts: returns the milliseconds until the next tick. */
  tick(): number {
    let next: number;
    try {
      next = this.x.tick(this.now()) >>> 0;
    } catch (error) {
      this.crash(error);
    }
    for (const c of this.touched) if (!c.closing) c.link.flush();
    this.touched.clear();
    return next;
  }

  /** A counter (see `Stat`). */
  stat(id: number): number {
    try {
      return this.x.stat(id);
    } catch (error) {
      this.crash(error);
    }
  }

  /** Call `tick` whenever the core asks, at most once per 10 ms and at least once a second. */
  startTicking(): void {
    this.stopTicking();
    this.ticking = true;
    this.runTick();
  }

  private runTick = (): void => {
    this.timer = undefined;
    this.schedule(Math.min(Math.max(this.tick(), 10), 1000));
  };

  private schedule(delay: number): void {
    if (!this.ticking) return;
    const due = performance.now() + delay;
    if (this.timer !== undefined) {
      if (this.tickDue <= due) return;
      clearTimeout(this.timer);
    }
    this.tickDue = due;
    this.timer = setTimeout(this.runTick, delay);
    this.timer.unref(); // the listeners keep the process alive, not the clock
  }

  stopTicking(): void {
    this.ticking = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  // ---- imports: the core calls these in the middle of feed/tick/closed ----
  // A JavaScript exception must never unwind through the core (it would leave its
  // tables half-updated), so each import catches and logs what a listener throws.

  private onSend(id: number, ptr: number, len: number): void {
    const conn = this.conns[id];
    if (conn === undefined) return this.log(Level.Error, `core sent ${len} bytes to unknown connection ${id}`);
    // Copy now (the core reuses this memory as soon as we return) into the current
    // slab: no allocation per packet, and consecutive sends to one socket end up
    // contiguous, so the listener can write them as one buffer. A slab region is
    // never reused; a full slab is simply replaced (the old one lives on while
    // sockets still hold parts of it).
    len >>>= 0;
    ptr >>>= 0;
    let bytes: Buffer;
    if (len > SLAB_SIZE >>> 2) {
      bytes = Buffer.allocUnsafe(len);
      bytes.set(this.memoryView().subarray(ptr, ptr + len));
    } else {
      if (this.slabUsed + len > SLAB_SIZE) {
        this.slab = Buffer.allocUnsafe(SLAB_SIZE);
        this.slabUsed = 0;
      }
      this.slab.set(this.memoryView().subarray(ptr, ptr + len), this.slabUsed);
      bytes = this.slab.subarray(this.slabUsed, this.slabUsed + len);
      this.slabUsed += len;
    }
    this.lastSent = bytes;
    if (conn.closing) return;
    this.touched.add(conn);
    try {
      conn.link.send(bytes);
    } catch (error) {
      this.log(Level.Error, `sending on connection ${id}: ${String(error)}`);
    }
  }

  /** The same bytes as the previous send, to another connection (a fan-out). */
  private onSendAgain(id: number): void {
    const conn = this.conns[id];
    if (conn === undefined || conn.closing || this.lastSent === null) return;
    this.touched.add(conn);
    try {
      conn.link.send(this.lastSent);
    } catch (error) {
      this.log(Level.Error, `sending on connection ${id}: ${String(error)}`);
    }
  }

  /** The whole linear memory as bytes; re-made if the buffer changed (it never grows). */
  private memoryView(): Uint8Array {
    if (this.memory.buffer !== this.x.memory.buffer) this.memory = new Uint8Array(this.x.memory.buffer);
    return this.memory;
  }

  private onClose(id: number, reason: number): void {
    const conn = this.conns[id];
    if (conn === undefined) return this.log(Level.Error, `core closed unknown connection ${id}`);
    if (conn.closing) return;
    conn.closing = true;
    conn.chunks = null;
    conn.buffered = 0;
    try {
      conn.link.close(reason);
    } catch (error) {
      this.log(Level.Error, `closing connection ${id}: ${String(error)}`);
    }
  }

  private onBacklog(id: number): number {
    const conn = this.conns[id];
    if (conn === undefined) return 0;
    try {
      const bytes = conn.link.backlog();
      if (bytes > 0) conn.link.watchDrain();
      return bytes;
    } catch {
      return 0;
    }
  }

  private onPause(id: number): void {
    const conn = this.conns[id];
    if (conn === undefined || conn.closing || conn.paused) return;
    conn.paused = true;
    conn.link.pause();
  }

  /** Read it again, and offer what was kept for it once the core call has returned. */
  private onResume(id: number): void {
    const conn = this.conns[id];
    if (conn === undefined || conn.closing || !conn.paused) return;
    conn.paused = false;
    conn.link.resume();
    if (conn.chunks !== null) {
      setImmediate(() => {
        if (this.conns[id] === conn) this.feed(id, EMPTY);
      });
    }
  }

  private onWake(ms: number): void {
    this.schedule(Math.max(ms >>> 0, 1));
  }

  private onLog(level: number, ptr: number, len: number): void {
    const bytes = new Uint8Array(this.x.memory.buffer, ptr >>> 0, len >>> 0);
    // Fatal messages are AssemblyScript string literals, hence UTF-16; the trap follows.
    const text = level === Level.Fatal ? utf16.decode(bytes) : utf8.decode(bytes);
    try {
      this.log(level, text);
    } catch {
      // nowhere left to report it
    }
  }

  // The crypto service: digests the core asks for (a password check), from node:crypto.
  // Out-of-range pointers are a core bug: RangeError, caught by the core call's wrapper.

  private onSha512(ptr: number, len: number, out: number): void {
    const digest = createHash("sha512").update(this.bytesAt(ptr, len)).digest();
    this.memory.set(digest, out >>> 0);
  }

  private onPbkdf2Sha512(pwd: number, pwdLen: number, salt: number, saltLen: number, iterations: number, out: number, outLen: number): void {
    const key = pbkdf2Sync(this.bytesAt(pwd, pwdLen), this.bytesAt(salt, saltLen), iterations >>> 0, outLen >>> 0, "sha512");
    this.memory.set(key, out >>> 0);
  }

  private bytesAt(ptr: number, len: number): Uint8Array {
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > this.memory.length) throw new RangeError(`core asked for bytes ${ptr}+${len} outside its memory`);
    return this.memory.subarray(ptr, ptr + len);
  }

  // ---- helpers ----

  /** The input window; re-made if the memory's buffer changed (it never grows: defensive). */
  private inputView(): Uint8Array {
    if (this.input.buffer !== this.x.memory.buffer) {
      this.input = new Uint8Array(this.x.memory.buffer, this.x.inputBuffer() >>> 0, this.capacity);
    }
    return this.input;
  }

  /** A host-side inconsistency on one connection: close it, keep the broker running. */
  private hostError(id: number, what: string): void {
    this.log(Level.Error, `core bug on connection ${id}: ${what}; closing it`);
    this.onClose(id, HOST_ERROR);
  }

  /** A trap is a bug in the core and leaves it unusable: report and stop. */
  private crash(error: unknown): never {
    if (!(error instanceof WebAssembly.RuntimeError)) throw error;
    this.stopTicking();
    return this.fatal(error);
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
