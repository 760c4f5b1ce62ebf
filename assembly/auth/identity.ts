// The user name a TLS client certificate gives (use_identity_as_username: its CN;
// use_subject_as_username: its subject). The host's TLS library reads the certificate
// and calls `identity` (index.ts) after the handshake, before the first `feed`; CONNECT
// (handlers/connect.ts) then uses that name instead of the CONNECT's own user name and
// password, as Mosquitto 2 does: no password is checked, and a client without a
// certificate (or one without a CN) is refused as having bad credentials.
//
//   IDENTITIES: MAX_CONNECTIONS rows of IDENTITY_ROW bytes (none on a board without the parser)
//   +---------+-------------------------------+
//   | len i32 | name, IDENTITY_MAX bytes      |   len: Identity.None, Identity.Missing or the name's length
//   +---------+-------------------------------+

import { CONFIG_TEXT, MAX_CONNECTIONS } from "../config";

/** A user name from a certificate, at most this long (an RFC 2253 subject can be long). */
// @ts-ignore: decorator
@inline export const IDENTITY_MAX: i32 = 256;
// @ts-ignore: decorator
@inline const IDENTITY_ROW: i32 = 4 + IDENTITY_MAX;
const IDENTITIES = memory.data(CONFIG_TEXT ? MAX_CONNECTIONS * IDENTITY_ROW : 4, 4);

export const enum Identity {
  None = -1,     // not a connection of a use_identity/use_subject listener: CONNECT as usual
  Missing = -2,  // it should have one, but the client sent no certificate (or one without a CN)
}

// @ts-ignore: decorator
@inline function rowAt(conn: i32): usize { return IDENTITIES + <usize>(conn * IDENTITY_ROW); }

/** A new connection has no identity until the host gives one. */
export function identityClear(conn: i32): void {
  if (CONFIG_TEXT) store<i32>(rowAt(conn), Identity.None);
}

/** The host's `identity` call: `len` bytes at `ptr`, 0 for none. Returns 0, or -1 when
 *  the board has no TLS or the name is longer than IDENTITY_MAX (the client is then refused). */
export function setIdentity(conn: i32, ptr: usize, len: u32): i32 {
  if (!CONFIG_TEXT) return -1;
  const row = rowAt(conn);
  if (len == 0 || len > <u32>IDENTITY_MAX) {
    store<i32>(row, Identity.Missing);
    return len == 0 ? 0 : -1;
  }
  memory.copy(row + 4, ptr, len);
  store<i32>(row, <i32>len);
  return 0;
}

/** The connection's identity: its length (≥ 1), or Identity.None or Identity.Missing. */
export function identityLen(conn: i32): i32 {
  return CONFIG_TEXT ? load<i32>(rowAt(conn)) : Identity.None;
}

export function identityAt(conn: i32): usize { return rowAt(conn) + 4; }
