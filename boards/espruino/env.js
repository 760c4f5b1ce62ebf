// The core's imports (docs/ABI.md, module `env`) for the wasm2js build. wasm2js output
// binds its imports when the script loads, before the host exists, so these forward to
// whatever host.js installs with `bind`.
var target = null;

export function bind(host) {
  target = host;
}

export function send(conn, ptr, len) {
  target.send(conn, ptr, len);
}

export function sendAgain(conn) {
  target.sendAgain(conn);
}

export function close(conn, reason) {
  target.close(conn, reason);
}

export function backlog(conn) {
  return target.backlog(conn);
}

export function pause(conn) {
  target.pause(conn);
}

export function resume(conn) {
  target.resume(conn);
}

export function wake(ms) {
  target.wake(ms);
}

export function log(level, ptr, len) {
  target.log(level, ptr, len);
}

/** `persist` is in DESIGN.md §5; the core may declare it before docs/ABI.md does. */
export function persist() {}
