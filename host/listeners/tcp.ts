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
  private queue: Buffer[] = [];
  private queued = 0;
  private ending = false;

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    private readonly log: Log,
  ) {}

  send(bytes: Buffer): void {
    if (this.ending) return;
    // Bytes that directly follow the last queued ones in the same slab (consecutive
    // packets to this socket) extend it: one buffer, one write.
    const n = this.queue.length;
    const last = n > 0 ? this.queue[n - 1] : undefined;
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      this.queue[n - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      this.queue.push(bytes);
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

  private drainWaiters: Array<() => void> = [];

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  onDrain(fn: () => void): void {
    if (this.drainWaiters.length === 0) {
      this.socket.once("drain", () => {
        const waiters = this.drainWaiters;
        this.drainWaiters = [];
        for (const w of waiters) w();
      });
    }
    this.drainWaiters.push(fn);
  }

  close(reason: number): void {
    this.log(Level.Debug, `connection ${this.id} from ${this.peer}: closing: ${closeReasonText(reason)}`);
    this.end();
  }

  /** Write what is queued in one go (cork: one writev for many buffers). */
  flush(): void {
    if (this.queued === 0) return;
    const queue = this.queue;
    this.queue = [];
    this.queued = 0;
    if (this.socket.destroyed) return;
    if (queue.length === 1) {
      this.socket.write(queue[0]);
      return;
    }
    this.socket.cork();
    for (const bytes of queue) this.socket.write(bytes);
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

/** host:port, with IPv6 addresses in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function listenTcp(core: Core, host: string, port: number, log: Log): Promise<TcpListener> {
  const links = new Set<TcpLink>();

  const closed = (link: TcpLink) => {
    if (link.gone) return;
    link.gone = true;
    links.delete(link);
    core.closed(link.id);
  };

  const server = createServer((socket) => {
    const peer = formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0);
    const link = new TcpLink(socket, peer, log);
    link.id = core.open(link);
    if (link.id < 0) {
      // the core has logged why (connection limit), rate-limited
      log(Level.Debug, `connection from ${peer} refused: no connection slot`);
      socket.destroy();
      return;
    }
    links.add(link);
    log(Level.Debug, `connection ${link.id} from ${peer}`);
    socket.setNoDelay(true); // MQTT packets are small and latency matters; we batch ourselves
    // A plain Uint8Array view of the Buffer (no copy): the core binding needs no Buffer API.
    socket.on("data", (data: Buffer) => core.feed(link.id, new Uint8Array(data.buffer, data.byteOffset, data.length)));
    socket.on("error", (error) => log(Level.Debug, `connection ${link.id} from ${peer}: ${error.message}`));
    socket.on("close", () => closed(link)); // after "error" too, and exactly once
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
