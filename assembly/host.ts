// The functions the host provides (module `env`), declared once. See docs/ABI.md.

/** Queue `len` bytes at `ptr` for connection `conn`; the host copies them before returning. */
// @ts-ignore: decorator
@external("env", "send") export declare function hostSend(conn: i32, ptr: usize, len: u32): void;
/** Queue for `conn` the very bytes of the previous `send` call (to another connection):
 *  the host copies a PUBLISH fanned out to many subscribers once, not once each. */
// @ts-ignore: decorator
@external("env", "sendAgain") export declare function hostSendAgain(conn: i32): void;
/** Close `conn` after flushing what was sent; `reason` is a CloseReason. */
// @ts-ignore: decorator
@external("env", "close") export declare function hostClose(conn: i32, reason: i32): void;
/** Bytes sent to `conn` that the host has not yet written to the network. */
// @ts-ignore: decorator
@external("env", "backlog") export declare function hostBacklog(conn: i32): u32;
/** Stop reading `conn`'s socket: the core will take no more bytes from it until `resume`.
 *  The host keeps what it already read (the unconsumed bytes of the last `feed`). */
// @ts-ignore: decorator
@external("env", "pause") export declare function hostPause(conn: i32): void;
/** Read `conn` again, and offer the bytes kept for it (after this call returns). */
// @ts-ignore: decorator
@external("env", "resume") export declare function hostResume(conn: i32): void;
/** Call `tick` within `ms` milliseconds (sooner than it last asked). */
// @ts-ignore: decorator
@external("env", "wake") export declare function hostWake(ms: u32): void;
/** Crypto service: the SHA-512 digest of `len` bytes at `ptr`, 64 bytes written at `out`. */
// @ts-ignore: decorator
@external("env", "sha512") export declare function hostSha512(ptr: usize, len: u32, out: usize): void;
/** Crypto service: the SHA-1 digest of `len` bytes at `ptr`, 20 bytes written at `out`
 *  (the WebSocket handshake's Sec-WebSocket-Accept; imported only where WEBSOCKETS is 1). */
// @ts-ignore: decorator
@external("env", "sha1") export declare function hostSha1(ptr: usize, len: u32, out: usize): void;
/** Crypto service: PBKDF2-HMAC-SHA512 of the password at `pwd` with the salt at `salt`,
 *  `iterations` rounds, `outLen` bytes written at `out`. */
// @ts-ignore: decorator
@external("env", "pbkdf2Sha512") export declare function hostPbkdf2Sha512(pwd: usize, pwdLen: u32, salt: usize, saltLen: u32,
                                                                            iterations: u32, out: usize, outLen: u32): void;
/** Persistence service: append `len` bytes at `ptr` to the file being written (docs/ABI.md). */
// @ts-ignore: decorator
@external("env", "persistWrite") export declare function hostPersistWrite(ptr: usize, len: u32): void;
/** Persistence service: write what was appended after this call (and sync it, `sync` 1), then call `persisted`. */
// @ts-ignore: decorator
@external("env", "persistFlush") export declare function hostPersistFlush(sync: i32): void;
/** Persistence service: compaction. 0 (2: keeping the old file as PATH.old) begin a new file,
 *  1 sync it and rename it over the file; 0, or an error code as `persisted` has them. */
// @ts-ignore: decorator
@external("env", "persistReplace") export declare function hostPersistReplace(step: i32): i32;
/** Network service (bridges): open an outbound TCP connection for `conn` to the address
 *  "HOST PORT" (`len` bytes at `ptr`), with TLS when bridge `bridge`'s text (text(Text.Bridge
 *  + bridge * 8 + field)) names a CA; then call `dialed(conn)`, or `closed(conn)` if it fails. */
// @ts-ignore: decorator
@external("env", "dial") export declare function hostDial(conn: i32, ptr: usize, len: u32, bridge: i32): void;
/** A UTF-8 log line (level 9: fatal, UTF-16). */
// @ts-ignore: decorator
@external("env", "log") export declare function hostLog(level: i32, ptr: usize, len: u32): void;

// Why the core asks the host to close a connection. The comment after each reason is
// how logs say it: scripts/vocab.mjs hands these to the hosts (host/generated/).
export const enum CloseReason {
  Normal = 0,                  // client sent DISCONNECT
  ProtocolError = 1,           // protocol error
  Malformed = 2,               // malformed packet
  KeepAliveTimeout = 3,        // keep-alive timeout
  TakenOver = 4,               // session taken over by a new connection
  PacketTooLarge = 5,          // packet too large
  ConnectTimeout = 6,          // no CONNECT in time
  Refused = 7,                 // connection refused in CONNACK
  ServerShutdown = 8,          // server shutting down
  QueueFull = 9,               // outgoing queue full
  TopicAliasInvalid = 10,      // invalid topic alias
  ReceiveMaximumExceeded = 11, // receive maximum exceeded
  NotAuthorized = 12,          // not authorized (its user left the password file)
  RetainNotSupported = 13,     // retained message refused (retain_available false)
  WebSocketClosed = 14,        // WebSocket closed by the client (close frame, no DISCONNECT)
  WebSocketError = 15,         // WebSocket protocol error (a bad upgrade or frame)
  HttpServed = 16,             // HTTP request answered (/metrics, the status page)
  /** Not sent to the host: the host itself reported the socket gone (`closed`). */
  Lost = -1,
}

// The levels of the `log` import; a host prints each by its name in lower case.
export const enum LogLevel { Error = 0, Warning = 1, Notice = 2, Info = 3, Debug = 4, Fatal = 9 }

/** Routed here by `--use abort=assembly/host/coreAbort`: a trap in the core is a bug,
 *  so say where it happened (the message is a static UTF-16 string) and stop. */
export function coreAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  if (message !== null) hostLog(LogLevel.Fatal, changetype<usize>(message), <u32>message.length << 1);
  if (fileName !== null) hostLog(LogLevel.Fatal, changetype<usize>(fileName), <u32>fileName.length << 1);
  unreachable();
}
