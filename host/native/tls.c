/* TLS listeners with OpenSSL (see tls.h). Mosquitto's semantics, as the core hands them
 * over: certfile (a chain), keyfile, cafile/capath for client certificates, require_certificate
 * (verify peer, fail without one), tls_version as the lowest version (TLS 1.2 by default),
 * ciphers (TLS 1.2 and below) and ciphers_tls1.3; no renegotiation. The messages are the
 * Node host's (host/listeners/tls.ts), word for word. Below them, the client side of a
 * bridge's connection (bridge_cafile, ...). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"
#include "vocab.h"

static SSL_CTX** contexts; /* by listener; NULL: plain */
static uint32_t context_n;
static char message[1200];

/* Field f of listener k's settings (at most 256 bytes: the core's limit), copied to `out`. */
static const char* field(uint32_t k, int f, char* out, size_t cap) {
  snprintf(out, cap, "%s", tls_core_text(TEXT_TLS + (int)k * 16 + f));
  return out;
}

static int readable(const char* key, const char* path) {
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    snprintf(message, sizeof message, "cannot read %s %s: %s", key, path, strerrorname_np(errno));
    return 0;
  }
  fclose(f);
  return 1;
}

/* An encrypted key is not asked for a passphrase: it is refused as the Node host refuses it. */
static int no_passphrase(char* buf, int size, int rw, void* u) {
  (void)buf, (void)size, (void)rw, (void)u;
  return 0;
}

/* Listener k's context; NULL with `message` set when refused, NULL with *plain for no TLS. */
static SSL_CTX* make_context(uint32_t k, int* plain) {
  char cert[300], key[300], ca[300], capath[300], ciphers[300], ciphers13[300], version[32], flags[16];
  *plain = !*field(k, TLS_FIELD_CERTFILE, cert, sizeof cert);
  if (*plain) return NULL;
  field(k, TLS_FIELD_KEYFILE, key, sizeof key);
  field(k, TLS_FIELD_CAFILE, ca, sizeof ca);
  field(k, TLS_FIELD_CAPATH, capath, sizeof capath);
  field(k, TLS_FIELD_CIPHERS, ciphers, sizeof ciphers);
  field(k, TLS_FIELD_CIPHERS13, ciphers13, sizeof ciphers13);
  field(k, TLS_FIELD_MIN_VERSION, version, sizeof version);
  int bits = atoi(field(k, TLS_FIELD_FLAGS, flags, sizeof flags));

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) return snprintf(message, sizeof message, "cannot make a TLS context: %s",
                                   ERR_reason_error_string(ERR_get_error())), NULL;
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_min_proto_version(ctx, strcmp(version, "TLSv1.3") == 0 ? TLS1_3_VERSION
                                     : strcmp(version, "TLSv1.1") == 0 ? TLS1_1_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_app_data(ctx, (void*)(intptr_t)bits); /* for tls_identity */
  EVP_PKEY* pkey = NULL;
  FILE* f = NULL;
  if (!readable("certfile", cert)) goto refused;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    snprintf(message, sizeof message, "certfile %s holds no PEM certificate", cert);
    goto refused;
  }
  if (!readable("keyfile", key)) goto refused;
  f = fopen(key, "re");
  pkey = f != NULL ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL) : NULL;
  if (f != NULL) fclose(f);
  if (pkey == NULL) {
    snprintf(message, sizeof message, "keyfile %s holds no PEM private key", key);
    goto refused;
  }
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), pkey) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
    snprintf(message, sizeof message, "keyfile %s does not match certfile %s", key, cert);
    goto refused;
  }
  if (*ca && !readable("cafile", ca)) goto refused;
  if (*capath) {
    DIR* d = opendir(capath);
    if (d == NULL) {
      snprintf(message, sizeof message, "cannot open capath %s: %s", capath, strerrorname_np(errno));
      goto refused;
    }
    closedir(d);
  }
  if ((*ca || *capath) && SSL_CTX_load_verify_locations(ctx, *ca ? ca : NULL, *capath ? capath : NULL) != 1) {
    snprintf(message, sizeof message, "cafile %s holds no PEM certificate", ca);
    goto refused;
  }
  SSL_CTX_set_verify(ctx, bits & TLS_FLAG_REQUIRE_CERTIFICATE ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                              : SSL_VERIFY_NONE, NULL);
  if (*ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
    snprintf(message, sizeof message, "ciphers '%s' names no cipher this TLS library knows", ciphers);
    goto refused;
  }
  if (*ciphers13 && SSL_CTX_set_ciphersuites(ctx, ciphers13) != 1) {
    snprintf(message, sizeof message, "ciphers_tls1.3 '%s' names no cipher this TLS library knows", ciphers13);
    goto refused;
  }
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return ctx;
refused:
  EVP_PKEY_free(pkey);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return NULL;
}

void tls_setup(uint32_t k, int reload) {
  if (k >= context_n) {
    SSL_CTX** grown = realloc(contexts, (k + 1) * sizeof *contexts);
    if (grown == NULL) exit(70);
    contexts = grown;
    while (context_n <= k) contexts[context_n++] = NULL;
  }
  int plain;
  SSL_CTX* ctx = make_context(k, &plain);
  if (ctx == NULL && !plain) {
    if (!reload) {
      fprintf(stderr, "midge: %s\n", message);
      exit(1);
    }
    tls_log(LOG_ERROR, "SIGHUP: %s; the certificates in force stay", message);
    return;
  }
  SSL_CTX_free(contexts[k]); /* sessions still open keep a reference to theirs */
  contexts[k] = ctx;
}

int tls_listener(uint32_t k) { return k < context_n && contexts[k] != NULL; }

SSL* tls_open(uint32_t k, int fd, int* failed) {
  *failed = 0;
  if (!tls_listener(k)) return NULL;
  SSL* ssl = SSL_new(contexts[k]);
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    *failed = 1;
    return NULL;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

void tls_identity(SSL* ssl, uint32_t conn) {
  int bits = (int)(intptr_t)SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  if (!(bits & (TLS_FLAG_USE_IDENTITY | TLS_FLAG_USE_SUBJECT))) return;
  char name[1024];
  size_t len = 0;
  X509* cert = SSL_get1_peer_certificate(ssl);
  X509_NAME* subject = cert != NULL ? X509_get_subject_name(cert) : NULL;
  if (subject != NULL && (bits & TLS_FLAG_USE_IDENTITY)) { /* the first CN, as Mosquitto takes it */
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    ASN1_STRING* cn = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)) : NULL;
    int n = cn != NULL ? ASN1_STRING_length(cn) : 0;
    const unsigned char* p = cn != NULL ? ASN1_STRING_get0_data(cn) : NULL;
    if (n > 0 && (size_t)n < sizeof name && memchr(p, 0, (size_t)n) == NULL) { /* no NUL inside, as Mosquitto checks */
      memcpy(name, p, (size_t)n);
      len = (size_t)n;
    }
  } else if (subject != NULL) { /* the subject as Mosquitto prints it: RFC 2253 */
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio != NULL && X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253) >= 0) {
      int n = BIO_read(bio, name, sizeof name);
      len = n > 0 ? (size_t)n : 0;
    }
    BIO_free(bio);
  }
  X509_free(cert);
  tls_core_identity(conn, name, len);
}

/* host:port of the socket's peer, for the handshake's log line; "a client" when the peer
 * is gone already (as the Node host says it). */
static const char* peer_of(SSL* ssl, char* out, size_t cap) {
  struct sockaddr_storage a;
  socklen_t n = sizeof a;
  char ip[NI_MAXHOST], port[NI_MAXSERV];
  if (getpeername(SSL_get_fd(ssl), (struct sockaddr*)&a, &n) != 0 ||
      getnameinfo((struct sockaddr*)&a, n, ip, sizeof ip, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "a client";
  snprintf(out, cap, a.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, port);
  return out;
}

ssize_t tls_recv(SSL* ssl, void* buf, size_t len, int* want_write) {
  *want_write = 0;
  ERR_clear_error();
  errno = 0;
  int n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0) return n;
  switch (SSL_get_error(ssl, n)) {
  case SSL_ERROR_WANT_READ: errno = EAGAIN; return -1;
  case SSL_ERROR_WANT_WRITE: *want_write = 1; errno = EAGAIN; return -1;
  case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify */
  case SSL_ERROR_SYSCALL:
    if (errno == 0 && SSL_is_init_finished(ssl)) return 0; /* EOF without close_notify */
    break;
  }
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  const char* why = reason != NULL ? reason : errno != 0 ? strerror(errno) : "the peer closed the connection";
  char peer[80];
  if (!SSL_is_server(ssl)) /* a bridge's: e.g. TLS 1.3's refusal of our certificate comes after the handshake */
    tls_log(LOG_NOTICE, "connection to %s: %s", (const char*)SSL_get_app_data(ssl), why);
  else if (!SSL_is_init_finished(ssl))
    tls_log(LOG_NOTICE, "TLS handshake with %s failed: %s", peer_of(ssl, peer, sizeof peer), why);
  if (errno == 0 || errno == EAGAIN) errno = EPROTO;
  return -1;
}

ssize_t tls_send(SSL* ssl, const void* buf, size_t len) {
  ERR_clear_error();
  int n = SSL_write(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0) return n;
  int e = SSL_get_error(ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return errno = EAGAIN, -1;
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  if (!SSL_is_server(ssl)) /* a bridge's (tls_recv) */
    tls_log(LOG_NOTICE, "connection to %s: %s", (const char*)SSL_get_app_data(ssl),
            reason != NULL ? reason : errno != 0 ? strerror(errno) : "the peer closed the connection");
  errno = EPIPE;
  return -1;
}

int tls_pending(SSL* ssl) { return SSL_pending(ssl) > 0; }

void tls_close(SSL* ssl) {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
  ERR_clear_error();
}

void tls_free(SSL* ssl) {
  if (ssl != NULL && !SSL_is_server(ssl)) free(SSL_get_app_data(ssl)); /* tls_connect's `where` */
  SSL_free(ssl);
}

/* ---- bridges: the client side ---- */

/* Field f of bridge b's settings, copied to `out`. */
static const char* bridge_field(int b, int f, char* out, size_t cap) {
  snprintf(out, cap, "%s", tls_core_text(TEXT_BRIDGE + b * 8 + f));
  return out;
}

/* Every certificate of every file in `dir` (as the Node host reads a capath: no hashed
 * names needed); files that hold none are skipped, as OpenSSL skips them. */
static int load_capath(SSL_CTX* ctx, const char* dir) {
  DIR* d = opendir(dir);
  if (d == NULL) return 0;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (struct dirent* e; (e = readdir(d)) != NULL;) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.') X509_STORE_load_file(store, path);
  }
  closedir(d);
  return 1;
}

SSL_CTX* tls_bridge_context(int b, int* failed) {
  char ca[300], capath[300], cert[300], key[300], insecure[8];
  *failed = 0;
  bridge_field(b, BRIDGE_FIELD_CAFILE, ca, sizeof ca);
  bridge_field(b, BRIDGE_FIELD_CAPATH, capath, sizeof capath);
  if (!*ca && !*capath) return NULL; /* plain TCP */
  bridge_field(b, BRIDGE_FIELD_CERTFILE, cert, sizeof cert);
  bridge_field(b, BRIDGE_FIELD_KEYFILE, key, sizeof key);
  bridge_field(b, BRIDGE_FIELD_INSECURE, insecure, sizeof insecure);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL) {
    snprintf(message, sizeof message, "cannot make a TLS context: %s", ERR_reason_error_string(ERR_get_error()));
    goto refused;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* the chain, always (bridge_insecure spares only the name) */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_app_data(ctx, (void*)(intptr_t)(strcmp(insecure, "1") == 0)); /* for tls_connect */
  if (*ca && !readable("bridge_cafile", ca)) goto refused;
  if (*ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
    snprintf(message, sizeof message, "bridge_cafile %s holds no PEM certificate", ca);
    goto refused;
  }
  if (*capath && !load_capath(ctx, capath)) {
    snprintf(message, sizeof message, "cannot open bridge_capath %s: %s", capath, strerrorname_np(errno));
    goto refused;
  }
  if (*cert && !readable("bridge_certfile", cert)) goto refused;
  if (*cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    snprintf(message, sizeof message, "bridge_certfile %s holds no PEM certificate", cert);
    goto refused;
  }
  if (*key && !readable("bridge_keyfile", key)) goto refused;
  if (*key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    snprintf(message, sizeof message, "bridge_keyfile %s holds no PEM private key for bridge_certfile %s", key, cert);
    goto refused;
  }
  ERR_clear_error();
  return ctx;
refused:
  tls_log(LOG_ERROR, "bridge: %s", message);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  *failed = 1;
  return NULL;
}

void tls_context_free(SSL_CTX* ctx) { SSL_CTX_free(ctx); }

SSL* tls_connect(SSL_CTX* ctx, const char* host, const char* where, int fd) {
  SSL* ssl = SSL_new(ctx);
  char* named = strdup(where);
  if (ssl == NULL || named == NULL || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    free(named);
    return NULL;
  }
  SSL_set_connect_state(ssl); /* (a client: tls_free then frees `named`) */
  SSL_set_app_data(ssl, named);
  unsigned char ip[16];
  int literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
  if (!literal) SSL_set_tlsext_host_name(ssl, host); /* SNI names a host, never an address (RFC 6066) */
  if (!SSL_CTX_get_app_data(ctx)) { /* not bridge_insecure: the certificate must name the host (or address) */
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (literal ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 : SSL_set1_host(ssl, host) != 1) {
      tls_free(ssl);
      return NULL;
    }
  }
  return ssl;
}

int tls_handshake(SSL* ssl, int* want_write, char* reason, size_t cap) {
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(ssl);
  if (r == 1) return 1;
  int e = SSL_get_error(ssl, r);
  *want_write = e == SSL_ERROR_WANT_WRITE;
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  long verified = SSL_get_verify_result(ssl);
  unsigned long error = ERR_peek_last_error();
  snprintf(reason, cap, "%s", verified != X509_V_OK ? X509_verify_cert_error_string(verified)
                              : error != 0 ? ERR_reason_error_string(error)
                              : errno != 0 ? strerror(errno) : "the peer closed the connection");
  ERR_clear_error();
  return -1;
}
