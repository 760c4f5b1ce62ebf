/* TLS in the native host: host/native/tls.c does the platform half with OpenSSL (libssl):
 * a context per TLS listener from the files the core names (text(Text.Tls + k * 16 + field),
 * docs/ABI.md), non-blocking reads and writes for main.c's epoll loop, the certificate's
 * name for the core's `identity`; and the client side of a bridge's outbound connection
 * (text(Text.Bridge + b * 8 + field)). The core never sees TLS, only the bytes. */
#ifndef MIDGE_TLS_H
#define MIDGE_TLS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

/* Lent by main.c: the core's text(id) (valid until the next call), its identity(conn, name,
 * len) export, and a log line (LOG_* levels of vocab.h). */
const char* tls_core_text(int id);
void tls_core_identity(uint32_t conn, const char* name, size_t len);
void tls_log(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads listener k's TLS settings from the core and builds its context (none for a plain
 * listener). A file that cannot be read, is not PEM, or a key that does not match ends the
 * start (`midge: MESSAGE` on stderr, status 1, as the Node host); on `reload` (SIGHUP) it is
 * logged and the context in force stays (new connections get the new one). */
void tls_setup(uint32_t k, int reload);
/* Whether listener k is TLS. */
int tls_listener(uint32_t k);
/* A server-side TLS session on a socket accepted by listener k; NULL for a plain listener
 * (and when out of memory: *failed is then set). */
SSL* tls_open(uint32_t k, int fd, int* failed);
/* After the handshake, before the first feed: the core's `identity` for connection `conn`
 * if its listener takes the user name from the client certificate. */
void tls_identity(SSL* ssl, uint32_t conn);
/* As recv and send: bytes moved, 0 when the peer closed, -1 with errno (EAGAIN: try again
 * once the socket is readable, or writable when *want_write is set). A failed handshake
 * is logged here, and any failed read of a client session (tls_connect). */
ssize_t tls_recv(SSL* ssl, void* buf, size_t len, int* want_write);
ssize_t tls_send(SSL* ssl, const void* buf, size_t len);
/* Decrypted bytes waiting inside OpenSSL (epoll does not see them). */
int tls_pending(SSL* ssl);
/* Send close_notify (without waiting for the peer's), then free. */
void tls_close(SSL* ssl);
void tls_free(SSL* ssl);

/* Bridge b's client context, its files read now (each dial: a file fixed on disk is used by
 * the next attempt); NULL for a plain TCP bridge (no cafile, no capath), NULL with *failed
 * set when a file cannot be read or holds nothing usable (logged: `bridge: MESSAGE`, as the
 * Node host says it). The peer's chain is always verified; its name too unless insecure. */
SSL_CTX* tls_bridge_context(int b, int* failed);
void tls_context_free(SSL_CTX* ctx);
/* A client session to `host` (its name for SNI and the certificate check; an address is
 * checked against the certificate's addresses) on connected socket fd; NULL when out of
 * memory. `where` (host:port) names it in the log line of a failure after the handshake
 * (tls_recv), as in the handshake's: `connection to WHERE: REASON`. */
SSL* tls_connect(SSL_CTX* ctx, const char* host, const char* where, int fd);
/* Drives the client handshake: 1 done; 0 again once the socket is readable (writable when
 * *want_write); -1 failed, why in `reason` (the certificate check that failed, or OpenSSL's
 * reason, in OpenSSL's words). */
int tls_handshake(SSL* ssl, int* want_write, char* reason, size_t cap);

#endif
