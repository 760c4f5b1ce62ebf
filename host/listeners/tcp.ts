// Plain TCP (MQTT's port 1883): turns each accepted socket into a core connection id
// and bytes, and writes back what the core sends, one write per core call (Core flushes).
// With TLS settings (tls.ts), the same over node:tls: a socket becomes a connection once
// its handshake is done, and the core is given its certificate's name first.

import { Buffer } from "node:buffer";
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { type ConnectionOptions, connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { setTimeout } from "node:timers";
import { type Core, type Link, type Log, Level, closeReasonText } from "../core";
import { TlsFlag } from "../generated/vocab";
import { type TlsSettings, handshakeReason, identityOf } from "./tls";

/** How long a socket we closed may wait for its peer to close before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export interface TcpListener {
  /** The address and port actually bound (port 0 asks the system for a free one). */
  readonly host: string;
  readonly port: number;
  /** Stop accepting, close every connection (telling the core), resolve when all are gone. */
  close(): Promise<void>;
  /** A TLS listener: new connections use these certificates (SIGHUP). */
  reload(tls: TlsSettings): void;
}

class TcpLink implements Link {
  id = -1;
  gone = false; // Core.closed has been called (exactly once)
  /** Buffers waiting for `flush`; null when none (most connections, most of the time). */
  private queue: Buffer[] | null = null;
  private queued = 0;
  private ending = false;
  /** The core waits for this socket's backlog to reach zero (`Core.drained`). */
  private owed = false;
  /** Write callback while a drain is owed: made once, for sockets the core watches. */
  private afterWrite: ((error?: Error | null) => void) | null = null;

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
    const last = queue.at(-1);
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      queue[queue.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      queue.push(bytes);
    }
    this.queued += bytes.length;
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

  watchDrain(): void {
    if (this.owed) return;
    this.owed = true;
    this.afterWrite ??= () => {
      if (!this.owed || this.gone) return;
      if (this.queued > 0 || this.socket.writableLength > 0) return; // a later write's callback comes
      this.owed = false;
      this.core.drained(this.id);
    };
    // Nothing queued to carry the callback: an empty write does, after what is pending.
    if (this.queued === 0 && !this.socket.destroyed) this.socket.write(EMPTY, this.afterWrite);
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
    const last = queue.length - 1;
    if (last > 0) this.socket.cork();
    for (let i = 0; i < last; i++) this.socket.write(queue[i]);
    this.socket.write(queue[last], done);
    if (last > 0) this.socket.uncork();
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

/** `debug`: log a line per connection event (the peer address costs memory: looked up only then).
 *  `listener`: its index among the core's listeners (text(16 + listener)), told to the core;
 *  `tls`: its TLS settings (host/listeners/tls.ts), null for plain TCP. */
export async function listenTcp(core: Core, host: string, port: number, log: Log, debug = false, listener = 0,
  tls: TlsSettings | null = null): Promise<TcpListener> {
  const links = new Set<TcpLink>();
  /** The socket of `link` is gone: the core is told, exactly once. */
  const closed = (link: TcpLink) => {
    if (link.gone) return;
    link.gone = true;
    links.delete(link);
    core.closed(link.id);
  };

  // One set of handlers for every socket (`this` is the socket; its link hangs off it):
  // three closures and their context per connection cost ~300 bytes of heap.
  function onData(this: Socket, data: Buffer): void {
    // a plain Uint8Array view of the Buffer (no copy): the core binding needs no Buffer API
    core.feed((this as LinkedSocket)[LINK].id, new Uint8Array(data.buffer, data.byteOffset, data.length));
  }
  function onError(this: Socket, error: Error): void {
    const link = (this as LinkedSocket)[LINK];
    if (debug) log(Level.Debug, `connection ${link.id} from ${link.peer}: ${error.message}`);
  }
  function onClose(this: Socket): void {
    closed((this as LinkedSocket)[LINK]); // after "error" too
  }

  const onSocket = (socket: Socket) => {
    const link = new TcpLink(socket, core, log, debug);
    link.id = core.open(link, listener);
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
    if (tls !== null && (tls.flags & (TlsFlag.UseIdentity | TlsFlag.UseSubject)) !== 0) {
      core.identity(link.id, identityOf(socket as TLSSocket, tls.flags)); // before its first bytes
    }
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  };
  const server = tls === null ? createServer(onSocket) : createTlsServer(tls.options, onSocket);
  if (tls !== null) {
    server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
      // (node:tls may have let the socket go already: its address is then unknown)
      const peer = socket.remoteAddress === undefined ? "a client" : formatAddress(socket.remoteAddress, socket.remotePort ?? 0);
      log(Level.Notice, `TLS handshake with ${peer} failed: ${handshakeReason(error)}`);
    });
  }

  server.listen({ host, port });
  await once(server, "listening"); // or throws the "error" (address in use...)
  server.on("error", (error) => log(Level.Error, `listener ${formatAddress(host, port)}: ${error.message}`));
  const bound = server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    reload: (settings) => {
      if (tls !== null) (server as ReturnType<typeof createTlsServer>).setSecureContext(settings.options);
    },
    close: () => {
      const gone = new Promise<void>((done) => server.close(() => done()));
      for (const link of [...links]) {
        link.end();
        closed(link);
      }
      return gone;
    },
  };
}

/** A bridge's outbound connection (docs/ABI.md `dial`): a socket to `host`:`port` (TLS when
 *  `tls` is given), its link for the core's connection `id`; `core.dialed` once it is
 *  connected, `core.closed` when it fails or ends. Every decision (when, where, again) is the core's. */
export function dialTcp(core: Core, log: Log, debug: boolean, id: number, host: string, port: number,
  tls: ConnectionOptions | null): Link {
  const socket = tls === null ? connect({ host, port }) : tlsConnect({ ...tls, host, port });
  const link = new TcpLink(socket, core, log, debug);
  link.id = id;
  socket.setNoDelay(true);
  socket.once(tls === null ? "connect" : "secureConnect", () => {
    if (debug) log(Level.Debug, `connection ${id} to ${formatAddress(host, port)}: connected`);
    core.dialed(id);
  });
  socket.on("data", (data: Buffer) => core.feed(id, new Uint8Array(data.buffer, data.byteOffset, data.length)));
  socket.on("error", (error: Error) => {
    log(Level.Notice, `connection to ${formatAddress(host, port)}: ${error.message}`);
  });
  socket.on("close", () => {
    if (link.gone) return;
    link.gone = true;
    core.closed(id);
  });
  return link;
}
