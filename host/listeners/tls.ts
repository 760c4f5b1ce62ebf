// TLS (MQTT's port 8883) with node:tls: a listener's settings as the core parsed them
// (text(Text.Tls + k * 16 + field), docs/ABI.md), its files read and checked at start
// and on SIGHUP, and the user name a client certificate gives. The TLS itself is
// node:tls's (OpenSSL inside Node); the core sees only the bytes inside. host/native/tls.c
// does the same with OpenSSL and says the same messages.

import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { type ConnectionOptions, DEFAULT_CIPHERS, type SecureVersion, type TLSSocket, type TlsOptions, createSecureContext } from "node:tls";
import type { Core } from "../core";
import { BridgeField, Text, TlsField, TlsFlag } from "../generated/vocab";

export interface TlsSettings {
  /** For tls.createServer (and setSecureContext on SIGHUP: the same files read again). */
  readonly options: TlsOptions;
  /** TlsFlag bits: which name, if any, the core is given with `identity`. */
  readonly flags: number;
}

/** A file's bytes, or an Error naming the key, the file and the errno's name. */
function readOrThrow(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${key} ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
}

const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/**
 * Listener k's TLS settings, its files read and checked; null for a listener without TLS.
 * Throws an Error whose message names the file: unreadable, not PEM, a key that does not
 * match the certificate, a cipher list that names nothing (the host stops the start, or
 * on SIGHUP keeps the certificates in force).
 */
export function tlsSettings(core: Core, k: number): TlsSettings | null {
  const field = (f: number) => core.text(Text.Tls + k * 16 + f);
  const certfile = field(TlsField.Certfile);
  if (certfile === "") return null;
  const keyfile = field(TlsField.Keyfile), cafile = field(TlsField.Cafile), capath = field(TlsField.Capath);
  const flags = Number(field(TlsField.Flags));

  const cert = readOrThrow("certfile", certfile);
  let x509: X509Certificate;
  try {
    if (!cert.toString("latin1").includes(PEM_CERTIFICATE)) throw new Error();
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`certfile ${certfile} holds no PEM certificate`);
  }
  const key = readOrThrow("keyfile", keyfile);
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch {
    throw new Error(`keyfile ${keyfile} holds no PEM private key`);
  }
  if (!x509.checkPrivateKey(keyObject)) throw new Error(`keyfile ${keyfile} does not match certfile ${certfile}`);

  const ca: Buffer[] = [];
  if (cafile !== "") {
    const bytes = readOrThrow("cafile", cafile);
    if (!bytes.toString("latin1").includes(PEM_CERTIFICATE)) throw new Error(`cafile ${cafile} holds no PEM certificate`);
    ca.push(bytes);
  }
  if (capath !== "") {
    let names: string[];
    try {
      names = readdirSync(capath);
    } catch (error) {
      throw new Error(`cannot open capath ${capath}: ${(error as NodeJS.ErrnoException).code}`);
    }
    for (const name of names.sort()) { // OpenSSL looks certificates up by hash; Node takes them all
      try {
        const bytes = readFileSync(`${capath}/${name}`);
        if (bytes.toString("latin1").includes(PEM_CERTIFICATE)) ca.push(bytes);
      } catch {
        // a subdirectory or an unreadable file: OpenSSL skips it too
      }
    }
  }

  // node:tls takes both cipher lists in one: TLS 1.3 suites (TLS_...) and the others; a list
  // given for one version leaves the other's default, as OpenSSL does
  const defaults = DEFAULT_CIPHERS.split(":");
  const ciphers12 = field(TlsField.Ciphers) || defaults.filter((c) => !c.startsWith("TLS_")).join(":");
  const ciphers13 = field(TlsField.Ciphers13) || defaults.filter((c) => c.startsWith("TLS_")).join(":");
  const options: TlsOptions = {
    cert,
    key,
    ca: ca.length > 0 ? ca : undefined,
    ciphers: `${ciphers13}:${ciphers12}`,
    minVersion: field(TlsField.MinVersion) as SecureVersion,
    requestCert: (flags & TlsFlag.RequireCertificate) !== 0,
    rejectUnauthorized: true, // with requestCert: a client without a certificate signed by ca fails the handshake
  };
  try {
    createSecureContext(options);
  } catch {
    // which list names nothing: each alone beside the other's default (as tls.c says it)
    const which = field(TlsField.Ciphers) !== "" && !works(`${defaults.filter((c) => c.startsWith("TLS_")).join(":")}:${ciphers12}`)
      ? ["ciphers", ciphers12] : ["ciphers_tls1.3", ciphers13];
    throw new Error(`${which[0]} '${which[1]}' names no cipher this TLS library knows`);
  }
  return { options, flags };
}

function works(ciphers: string): boolean {
  try {
    createSecureContext({ ciphers });
    return true;
  } catch {
    return false;
  }
}

/** The user name `socket`'s client certificate gives (use_identity_as_username: the first
 *  CN; use_subject_as_username: the subject in RFC 2253 form, as Mosquitto prints it);
 *  "" when it sent none. */
export function identityOf(socket: TLSSocket, flags: number): string {
  if (flags & TlsFlag.UseIdentity) {
    const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
    return (Array.isArray(cn) ? cn[0] : cn) ?? "";
  }
  // Node prints the subject one attribute a line, in the certificate's order; RFC 2253
  // is the reverse, comma-separated
  const subject = socket.getPeerX509Certificate()?.subject;
  return subject === undefined ? "" : subject.split("\n").reverse().join(",");
}

/** Why a handshake failed, short: OpenSSL's reason ("wrong version number"), as the native host logs it. */
export function handshakeReason(error: Error): string {
  const reason = (error as Error & { reason?: string }).reason;
  return reason ?? error.message;
}

/** Bridge b's TLS client settings (text(Text.Bridge + b * 8 + field)), its files read now;
 *  null for a plain TCP bridge. A file that cannot be read throws, naming it (logged by the
 *  dialer: the link then fails and the core tries again later). */
export function bridgeTlsOptions(core: Core, b: number): ConnectionOptions | null {
  const field = (f: number) => core.text(Text.Bridge + b * 8 + f);
  const cafile = field(BridgeField.Cafile), capath = field(BridgeField.Capath);
  if (cafile === "" && capath === "") return null;
  const ca: Buffer[] = [];
  if (cafile !== "") ca.push(readOrThrow("bridge_cafile", cafile));
  if (capath !== "") {
    for (const name of readdirSync(capath).sort()) {
      try {
        const bytes = readFileSync(`${capath}/${name}`);
        if (bytes.toString("latin1").includes(PEM_CERTIFICATE)) ca.push(bytes);
      } catch {
        // as OpenSSL: skipped
      }
    }
  }
  const certfile = field(BridgeField.Certfile), keyfile = field(BridgeField.Keyfile);
  const insecure = field(BridgeField.Insecure) === "1";
  return {
    ca,
    cert: certfile !== "" ? readOrThrow("bridge_certfile", certfile) : undefined,
    key: keyfile !== "" ? readOrThrow("bridge_keyfile", keyfile) : undefined,
    rejectUnauthorized: true,
    // bridge_insecure: the chain is still checked, the host name is not (as in Mosquitto)
    checkServerIdentity: insecure ? () => undefined : undefined,
  };
}
