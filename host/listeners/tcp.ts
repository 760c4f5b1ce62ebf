// Plain TCP (MQTT's port 1883): turns each accepted socket into a core connection id
// and bytes, and writes back what the core sends, batched per event-loop turn.

import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import { setImmediate, setTimeout } from "node:timers";
import { type Core, type Link, type Log, Level, closeReasonText } from "../core";

/** How long a socket we closed may wait for its peer to close before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export interface TcpListener {
  /** The address and port actually bound (port 0 asks the system for a free one). */
  readonly host: string;
  readonly port: number;
  /** Stop accepting, close every connection (telling the core), resolve when all are gone. */
  close(): Promise<void>;
}

// Output batching: everything the core sends during one turn of the event loop (a
// publish fanned out to many subscribers, several replies to one read) is queued, and
// one setImmediate per turn writes each dirty socket once. setImmediate rather than a
// microtask: it runs after every socket read of this turn, so it batches across them.
const dirty = new Set<TcpLink>();
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  for (const link of dirty) link.flush();
  dirty.clear();
}

class TcpLink implements Link {
  id = -1;
  /** Core.closed has been called for this connection (exactly once). */
  gone = false;
  /** Buffers waiting for the end of the turn; null when none (most connections, most of the time). */
  private queue: Buffer[] | null = null;
  private queued = 0;
  private ending = false;

  constructor(
    readonly socket: Socket,
    private readonly core: Core,
    private readonly log: Log,
    private readonly debug: boolean,
  ) {}

  /** host:port of the peer, made only when a line is logged (reading remoteAddress
   *  caches an object and two strings on the socket: ~150 bytes per idle connection). */
  get peer(): string {
    return formatAddress(this.socket.remoteAddress ?? "?", this.socket.remotePort ?? 0);
  }

  send(bytes: Buffer): void {
    if (this.ending) return;
    // Bytes that directly follow the last queued ones in the same slab (consecutive
    // packets to this socket) extend it: one buffer, one write.
    const queue = (this.queue ??= []);
    const n = queue.length;
    const last = n > 0 ? queue[n - 1] : undefined;
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      queue[n - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      queue.push(bytes);
    }
    this.queued += bytes.length;
    dirty.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  backlog(): number {
    return this.socket.writableLength + this.queued;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  /** The core waits for this socket's backlog to reach zero (`Core.drained`). */
  private owed = false;
  /** Write callback while a drain is owed: made once, for sockets the core watches. */
  private afterWrite: ((error?: Error | null) => void) | null = null;

  watchDrain(): void {
    if (this.owed) return;
    this.owed = true;
    this.afterWrite ??= () => this.wrote();
    // Nothing queued to carry the callback: an empty write does, after what is pending.
    if (this.queued === 0 && !this.socket.destroyed) this.socket.write(EMPTY, this.afterWrite);
  }

  private wrote(): void {
    if (!this.owed || this.gone) return;
    if (this.queued > 0 || this.socket.writableLength > 0) return; // a later write's callback comes
    this.owed = false;
    this.core.drained(this.id);
  }

  close(reason: number): void {
    if (this.debug) this.log(Level.Debug, `connection ${this.id} from ${this.peer}: closing: ${closeReasonText(reason)}`);
    this.end();
  }

  /** Write what is queued in one go (cork: one writev for many buffers). */
  flush(): void {
    const queue = this.queue;
    if (this.queued === 0 || queue === null) return;
    this.queue = null;
    this.queued = 0;
    if (this.socket.destroyed) return;
    const done = this.owed ? (this.afterWrite ?? undefined) : undefined;
    if (queue.length === 1) {
      this.socket.write(queue[0], done);
      return;
    }
    this.socket.cork();
    const last = queue.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(queue[i]);
    this.socket.write(queue[last], done);
    this.socket.uncork();
  }

  /** Flush, half-close, and destroy if the peer has not closed within the grace time. */
  end(): void {
    if (this.ending) return;
    this.flush();
    this.ending = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }
}

const EMPTY = Buffer.alloc(0);
const LINK = Symbol("link");
type LinkedSocket = Socket & { [LINK]: TcpLink };

/** host:port, with IPv6 addresses in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `debug`: build the per-connection debug lines (they cost memory per connection: the
 *  peer address is looked up only for them). */
export function listenTcp(core: Core, host: string, port: number, log: Log, debug = false): Promise<TcpListener> {
  const links = new Set<TcpLink>();

  const closed = (link: TcpLink) => {
    if (link.gone) return;
    link.gone = true;
    links.delete(link);
    core.closed(link.id);
  };

  // One set of handlers for every socket (`this` is the socket; its link hangs off it):
  // three closures and their context per connection cost ~300 bytes of heap.
  function onData(this: Socket, data: Buffer): void {
    const link = (this as LinkedSocket)[LINK];
    core.feed(link.id, new Uint8Array(data.buffer, data.byteOffset, data.length));
  }
  function onError(this: Socket, error: Error): void {
    const link = (this as LinkedSocket)[LINK];
    if (debug) log(Level.Debug, `connection ${link.id} from ${link.peer}: ${error.message}`);
  }
  function onClose(this: Socket): void {
    closed((this as LinkedSocket)[LINK]); // after "error" too, and exactly once
  }

  const server = createServer((socket) => {
    const link = new TcpLink(socket, core, log, debug);
    link.id = core.open(link);
    if (link.id < 0) {
      // the core has logged why (connection limit), rate-limited
      if (debug) log(Level.Debug, `connection from ${link.peer} refused: no connection slot`);
      socket.destroy();
      return;
    }
    links.add(link);
    if (debug) log(Level.Debug, `connection ${link.id} from ${link.peer}`);
    socket.setNoDelay(true); // MQTT packets are small and latency matters; we batch ourselves
    (socket as LinkedSocket)[LINK] = link;
    // A plain Uint8Array view of the Buffer (no copy): the core binding needs no Buffer API.
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      server.on("error", (error) => log(Level.Error, `listener ${formatAddress(host, port)}: ${error.message}`));
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address : { address: host, port };
      resolve({
        host: bound.address,
        port: bound.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const link of [...links]) {
              link.end();
              closed(link);
            }
          }),
      });
    });
  });
}
