/*
 * midge-native: a board's core compiled ahead of time to C by wasm2c, on Linux sockets and
 * one epoll loop; why and how: host/native/README.md. The same ABI host (docs/ABI.md) as
 * host/core.ts + host/cli.ts: it owns sockets, time and buffers, and knows nothing about MQTT.
 * Build: sh host/native/build.sh [board]   (npm run build:native) -> build/native/midge-<board>
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_glue.h" /* the instance, clock, log line, core calls and vocab.h both C hosts share */
#include "passwd.h"     /* midge passwd: host/native/passwd.c */
#include "persist.h"    /* the persistence file: host/native/persist.c */
#include "tls.h"        /* TLS listeners with OpenSSL: host/native/tls.c */

#ifndef MIDGE_VERSION
#define MIDGE_VERSION "0.0.0"
#endif
#ifndef MIDGE_BOARD
#define MIDGE_BOARD "pi"
#endif

/* A socket we closed waits this long for its peer's FIN before it is dropped (as the Node host). */
#define CLOSE_GRACE_MS 2000
/* Bytes read from one socket per readiness event: fairness between connections. */
#define READ_CHUNK (256u << 10)

/* CLOSING: flush, then FIN; DRAINING: wait for the peer; DIALING: an outbound connection
 * not yet connected (or in its TLS handshake): only its Dial is looked at. */
enum { OPEN = 0, CLOSING = 1, DRAINING = 2, DIALING = 3 };

/* One socket (accepted, or dialed for a bridge), at the index of its core connection id. */
typedef struct {
  int fd;                             /* -1: free */
  uint8_t state;                      /* OPEN, CLOSING, DRAINING, DIALING */
  uint8_t dirty;                      /* on the dirty list (bytes queued or a close asked during this step) */
  uint8_t want_out;                   /* EPOLLOUT registered */
  uint8_t paused;                     /* the core asked not to read it (EPOLLIN removed) */
  uint8_t owed;                       /* the core saw a backlog: tell it (drained) when out is empty */
  uint8_t refeed;                     /* resumed with a tail (or TLS bytes) to offer again: on the refeed list */
  uint8_t tls_ready;                  /* TLS: handshake done, identity given */
  uint8_t tls_rw;                     /* TLS: a read waits for the socket to be writable */
  uint32_t out_off, out_len, out_cap; /* out[out_off, +out_len) waits (compacted lazily: no quadratic copying) */
  uint32_t tail_len, tail_cap;        /* unconsumed bytes of an incomplete packet, in tail */
  uint32_t needed;                    /* the incomplete packet's whole size, when the core knows it */
  uint8_t* out;                       /* NULL when nothing waits: one exists only while a socket is slow */
  uint8_t* tail;                      /* NULL when no packet is incomplete */
  double deadline;                    /* CLOSING, DRAINING: when to give up on the peer */
  SSL* ssl;                           /* a TLS listener's connection (tls.c); NULL: plain TCP */
} Link; /* 72 bytes per connection slot */

static Link* links;
static uint32_t link_count; /* the board's connection slots */
/* Links to write at the end of this step, first come first written (a PUBLISH to a
 * subscriber before the PUBACK to its publisher); [dirty_head, dirty_n) are still to do. */
static uint32_t* dirty_ids;
static uint32_t dirty_head, dirty_n;
/* Links the core resumed while they hold unconsumed bytes: fed again after this step. */
static uint32_t* refeed_ids;
static uint32_t refeed_n;
static uint32_t input_ptr, input_capacity;
static int epfd = -1;
static int* listen_fds; /* one socket per listener the core holds; epoll data UINT64_MAX - k */
static uint32_t listen_n;
static double accept_again_at; /* > 0: accepting is suspended (out of descriptors) until then */
static int accept_warned;      /* that was logged; cleared by the next successful accept */
static double next_tick;       /* when the core wants its next tick (now_ms() time); `wake` brings it forward */
static double next_reap, next_stats, stats_interval;
static volatile sig_atomic_t stopping = 0, stats_wanted = 0, reload_wanted = 0;

/* An outbound connection the core asked for (`dial`), from the request until the core is
 * told `dialed` or `closed`. Few at a time (one per bridge): a list, searched. */
typedef struct {
  uint32_t id;                           /* the core's connection id */
  int bridge;                            /* whose TLS settings: text(TEXT_BRIDGE + bridge * 8 + field) */
  uint8_t started;                       /* 0: asked during a core call, started after it (run_dials) */
  uint8_t abandoned;                     /* the core closed it first: closed after the call (run_dials) */
  char host[256], port[8];               /* "HOST PORT" as the core gave it */
  char where[300];                       /* host:port for the log, as the Node host writes it */
  struct addrinfo *addresses, *trying;   /* resolved; the one being tried (then the next ones) */
  int error;                             /* why the last address tried failed (errno), */
  char failed_at[NI_MAXHOST + 8];        /* and which it was ("ip:port") */
  SSL_CTX* tls;                          /* the bridge's TLS client context; NULL: plain TCP */
} Dial;
static Dial* dials;
static uint32_t dial_n, dial_cap;

static Dial* dial_of(uint32_t id) {
  for (uint32_t k = 0; k < dial_n; k++)
    if (dials[k].id == id) return &dials[k];
  return NULL;
}

/* ---- links ---- */

/* Register (EPOLL_CTL_ADD) or update `id` in the epoll set: input unless paused or closing,
 * output while bytes wait. */
static int watch_op(uint32_t id, int op) {
  Link* l = &links[id];
  struct epoll_event ev;
  ev.events = (l->paused || l->state == CLOSING ? 0 : EPOLLIN) | (l->want_out ? EPOLLOUT : 0);
  ev.data.u64 = ((uint64_t)(uint32_t)l->fd << 32) | id;
  int rc = epoll_ctl(epfd, op, l->fd, &ev);
  if (rc < 0) logf_(LOG_ERROR, "connection %u: epoll_ctl: %s", id, strerror(errno));
  return rc;
}

static void watch(uint32_t id) { watch_op(id, EPOLL_CTL_MOD); }

static void set_want_out(uint32_t id, int on) {
  if (links[id].want_out == on) return;
  links[id].want_out = (uint8_t)on;
  watch(id);
}

/* Put `id` on the list of links to write at the end of this step (once). */
static void mark_dirty(uint32_t id) {
  Link* l = &links[id];
  if (l->dirty) return;
  l->dirty = 1;
  if (dirty_n == link_count && dirty_head > 0) { /* links done this step make room */
    memmove(dirty_ids, dirty_ids + dirty_head, (dirty_n - dirty_head) * sizeof *dirty_ids);
    dirty_n -= dirty_head;
    dirty_head = 0;
  }
  dirty_ids[dirty_n++] = id; /* the unwritten entries are distinct links: at most link_count */
}

/* An incomplete packet is let go (or was fed). */
static void drop_tail(Link* l) {
  free(l->tail);
  l->tail = NULL;
  l->tail_len = l->tail_cap = l->needed = 0;
}

/* Close after flushing: the loop writes what is queued, half-closes and reaps the link,
 * never from inside an import; a peer that takes nothing is dropped after CLOSE_GRACE_MS. */
static void mark_closing(uint32_t id) {
  Link* l = &links[id];
  if (l->state != OPEN) return;
  l->state = CLOSING;
  l->deadline = now_ms() + CLOSE_GRACE_MS;
  drop_tail(l); /* further input is ignored */
  mark_dirty(id);
}

/* Room for `more` bytes after what waits in out (compacting first, growing if need be). */
static int ensure_out(Link* l, uint32_t more) {
  uint64_t want = (uint64_t)l->out_len + more;
  if (l->out_off > 0 && (uint64_t)l->out_off + want > l->out_cap) {
    memmove(l->out, l->out + l->out_off, l->out_len);
    l->out_off = 0;
  }
  if ((uint64_t)l->out_off + want <= l->out_cap) return 1;
  uint64_t cap = l->out_cap ? l->out_cap : 1024;
  while (cap < want) cap *= 2;
  if (cap > UINT32_MAX) return 0;
  uint8_t* grown = realloc(l->out, (size_t)cap);
  if (grown == NULL) return 0;
  l->out = grown;
  l->out_cap = (uint32_t)cap;
  return 1;
}

/* ---- the core's imports (docs/ABI.md, module env) ---- */
/* wasm2c hands every import its env instance, which is the global `env` here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* The link of connection `id`, or NULL when its socket is gone (or the id is not one). */
static Link* live(u32 id) { return id < link_count && links[id].fd >= 0 ? &links[id] : NULL; }

static u32 last_ptr, last_len;
void Z_envZ_send(struct Z_env_instance_t* e, u32 id, u32 ptr, u32 len) {
  last_ptr = ptr;
  last_len = len;
  Link* l = live(id);
  if (len == 0 || l == NULL || l->state != OPEN) return;
  if (!ensure_out(l, len)) {
    logf_(LOG_ERROR, "connection %u: out of memory for %u bytes of output; closing it", id, len);
    mark_closing(id);
    return;
  }
  memcpy(l->out + l->out_off + l->out_len, memory_at(ptr), len); /* copy now: the core reuses the memory */
  l->out_len += len;
  mark_dirty(id);
}

/* The bytes of the previous send, to another connection (a fan-out). The core
   guarantees they are still in place, so they are simply copied again. */
void Z_envZ_sendAgain(struct Z_env_instance_t* e, u32 id) { Z_envZ_send(e, id, last_ptr, last_len); }

void Z_envZ_close(struct Z_env_instance_t* e, u32 id, u32 reason) {
  Dial* d = dial_of(id);
  if (d != NULL) { /* before it is connected (the core's dial timeout): closed once the call returns */
    logf_(LOG_DEBUG, "connection %u to %s: closing before connected (reason %u)", id, d->where, reason);
    d->abandoned = 1;
    return;
  }
  Link* l = live(id);
  if (l == NULL || l->state != OPEN) return;
  logf_(LOG_DEBUG, "connection %u: closing (reason %u)", id, reason);
  mark_closing(id);
}

u32 Z_envZ_backlog(struct Z_env_instance_t* e, u32 id) {
  Link* l = live(id);
  if (l == NULL) return 0;
  if (l->out_len > 0) l->owed = 1; /* the core is told when it reaches 0 */
  return l->out_len;
}

/* Flow control is the core's (docs/ABI.md): stop or restart reading a socket. */
void Z_envZ_pause(struct Z_env_instance_t* e, u32 id) {
  Link* l = live(id);
  if (l == NULL || l->paused) return;
  l->paused = 1;
  if (l->state == OPEN) watch(id);
}

void Z_envZ_resume(struct Z_env_instance_t* e, u32 id) {
  Link* l = live(id);
  if (l == NULL || !l->paused) return;
  l->paused = 0;
  if (l->state != OPEN) return;
  watch(id);
  if ((l->tail_len > 0 || (l->ssl && tls_pending(l->ssl))) && !l->refeed) { /* offered again after this step, not from inside the core */
    l->refeed = 1;
    refeed_ids[refeed_n++] = id;
  }
}

/* A bridge's outbound connection (docs/ABI.md `dial`): recorded here, started after the
 * core's call returns (run_dials: the TLS settings are the core's text, and nothing may call
 * into the core from inside an import). Where, when and how often are the core's. */
void Z_envZ_dial(struct Z_env_instance_t* e, u32 id, u32 ptr, u32 len, u32 bridge) {
  if (id >= link_count || links[id].fd >= 0 || dial_of(id) != NULL) { /* a core bug */
    logf_(LOG_ERROR, "connection %u: dial refused: the id is in use", id);
    return;
  }
  if (dial_n == dial_cap) {
    Dial* grown = realloc(dials, (dial_cap + 4) * sizeof *dials);
    if (grown == NULL) trap("dial (out of memory)");
    dials = grown;
    dial_cap += 4;
  }
  Dial* d = &dials[dial_n++];
  memset(d, 0, sizeof *d);
  d->id = id;
  d->bridge = (int)bridge;
  const char* address = (const char*)memory_at(ptr); /* "HOST PORT" */
  uint32_t space = len;
  while (space > 0 && address[space - 1] != ' ') space--;
  int host_len = space > 0 ? (int)space - 1 : (int)len;
  snprintf(d->host, sizeof d->host, "%.*s", host_len, address);
  snprintf(d->port, sizeof d->port, "%.*s", space > 0 ? (int)(len - space) : 0, address + space);
  snprintf(d->where, sizeof d->where, strchr(d->host, ':') ? "[%s]:%s" : "%s:%s", d->host, d->port);
}

void Z_envZ_wake(struct Z_env_instance_t* e, u32 ms) {
  double at = now_ms() + ms;
  if (at < next_tick) next_tick = at;
}

#pragma GCC diagnostic pop

/* ---- writing ---- */

static void link_gone(uint32_t id) {
  Link* l = &links[id];
  tls_free(l->ssl);
  l->ssl = NULL;
  l->tls_ready = l->tls_rw = 0;
  close(l->fd); /* also leaves the epoll set */
  l->fd = -1;
  l->state = OPEN;
  l->paused = l->owed = 0; /* (a refeed entry left behind finds fd -1 and is skipped) */
  l->want_out = 0;
  l->out_off = l->out_len = l->out_cap = 0;
  free(l->out);
  l->out = NULL;
  drop_tail(l);
  core_closed(id); /* may send to others (a will): they are on the dirty list */
  if (accept_again_at > 0) accept_again_at = now_ms(); /* a descriptor is free again */
}

/* Write what is queued for `id` without blocking. Then an open link with nothing left is
 * drained (the core is told if it waits for that), one with bytes left waits for EPOLLOUT.
 * A closing link with nothing left half-closes, then waits (bounded) for the peer's FIN, so
 * that the last packet (CONNACK refusal, DISCONNECT) is not lost to a reset caused by unread
 * input; with bytes left it waits for EPOLLOUT only (its input is no longer read). */
static void write_out(uint32_t id) {
  Link* l = &links[id];
  while (l->out_len > 0) {
    ssize_t n = l->ssl ? tls_send(l->ssl, l->out + l->out_off, l->out_len)
                       : send(l->fd, l->out + l->out_off, l->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      link_gone(id);
      return;
    }
    l->out_off += (uint32_t)n;
    l->out_len -= (uint32_t)n;
  }
  if (l->out_len == 0) { /* all out: an idle connection holds no buffer */
    free(l->out);
    l->out = NULL;
    l->out_off = l->out_cap = 0;
  }
  if (l->state == CLOSING && l->out_len == 0) {
    if (l->ssl) tls_close(l->ssl);
    shutdown(l->fd, SHUT_WR);
    l->state = DRAINING;
    l->deadline = now_ms() + CLOSE_GRACE_MS;
    l->want_out = 0;
    watch(id);
  } else if (l->state == CLOSING) {
    l->want_out = 1;
    watch(id);
  } else if (l->state == OPEN && l->out_len > 0) {
    set_want_out(id, 1);
  } else if (l->state == OPEN) {
    set_want_out(id, 0);
    if (l->owed) {
      l->owed = 0;
      core_drained(id); /* may send (a paced replay): the link is marked dirty again */
    }
  }
}

/* Everything the core sent during this step goes out now, one write per socket, in
 * the order the core sent it. A link that fails may send to others (a will): this loop
 * reaches them. */
static void flush_dirty(void) {
  if (dirty_head < dirty_n) store_write_now(); /* records before the answers they stand for */
  while (dirty_head < dirty_n) {
    uint32_t id = dirty_ids[dirty_head++];
    links[id].dirty = 0;
    if (links[id].fd >= 0 && links[id].state != DRAINING) write_out(id);
  }
  dirty_head = dirty_n = 0;
}

/* ---- accepting and reading ---- */

/* Accepting stops while the process is out of descriptors (or memory), instead of
 * spinning on a listener that stays readable; it resumes when a connection goes or
 * after 100 ms. */
static void set_accepting(int on) {
  for (uint32_t k = 0; k < listen_n; k++) {
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u64 = UINT64_MAX - k};
    epoll_ctl(epfd, EPOLL_CTL_MOD, listen_fds[k], &ev);
  }
  accept_again_at = on ? 0 : now_ms() + 100;
}

static void accept_all(uint32_t k) {
  int server_fd = listen_fds[k];
  for (;;) {
    int fd = accept4(server_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        if (!accept_warned) logf_(LOG_WARNING, "cannot accept connections: %s; retrying", strerror(errno));
        accept_warned = 1;
        set_accepting(0);
      }
      return; /* EAGAIN: all accepted */
    }
    accept_warned = 0;
    u32 id = core_open_on(k);
    if ((int32_t)id < 0 || id >= link_count) {
      if ((int32_t)id >= 0) core_closed(id);
      logf_(LOG_DEBUG, "connection refused: no connection slot");
      close(fd); /* the core has logged why (connection limit), rate-limited */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* we batch ourselves */
    links[id].fd = fd;
    links[id].state = OPEN;
    int failed;
    links[id].ssl = tls_open(k, fd, &failed); /* the handshake goes on in the first reads */
    if (failed || watch_op(id, EPOLL_CTL_ADD) < 0) link_gone(id);
    else logf_(LOG_DEBUG, "connection %u accepted", id);
  }
}

/* ---- dialing (bridges) ---- */

/* The dial is done with: its addresses and context go, and it leaves the list. */
static void dial_forget(Dial* d) {
  freeaddrinfo(d->addresses);
  tls_context_free(d->tls);
  *d = dials[--dial_n];
}

/* The dial ends without a connection: its socket goes (if it has one) and the core is
 * told (closed), exactly once. Never from inside a core call. */
static void dial_fail(Dial* d) {
  uint32_t id = d->id;
  dial_forget(d);
  if (links[id].fd >= 0) link_gone(id);
  else core_closed(id);
}

/* Connected, and for TLS the handshake done: from now on the link is like an accepted one. */
static void dial_done(Dial* d) {
  uint32_t id = d->id;
  logf_(LOG_DEBUG, "connection %u to %s: connected", id, d->where);
  dial_forget(d);
  Link* l = &links[id];
  l->state = OPEN;
  l->tls_ready = 1; /* (no identity for the core: the certificate is the server's) */
  l->want_out = 0;
  watch(id);
  core_dialed(id);
}

/* d->trying failed with `error`: noted for the log line, and the next address is up. */
static void dial_failed_at(Dial* d, int error) {
  char ip[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  getnameinfo(d->trying->ai_addr, d->trying->ai_addrlen, ip, sizeof ip, port, sizeof port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(d->failed_at, sizeof d->failed_at, "%s:%s", ip, port);
  d->error = error;
  d->trying = d->trying->ai_next;
}

/* A non-blocking connect to d->trying, or to the addresses after it: 1 when one is under
 * way (the link is DIALING, waiting to be writable), 0 when none is left (logged as the
 * Node host says it: "connect ECONNREFUSED 127.0.0.1:1883"). */
static int dial_next(Dial* d) {
  Link* l = &links[d->id];
  while (d->trying != NULL) {
    struct addrinfo* a = d->trying;
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0 && (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS)) {
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      l->fd = fd;
      l->state = DIALING;
      l->want_out = 1; /* writable: connected, or failed */
      if (watch_op(d->id, EPOLL_CTL_ADD) == 0) return 1;
      l->fd = -1;
    }
    int error = errno;
    if (fd >= 0) close(fd);
    dial_failed_at(d, error);
  }
  l->state = OPEN;
  l->want_out = 0;
  logf_(LOG_NOTICE, "connection to %s: connect %s %s", d->where, strerrorname_np(d->error), d->failed_at);
  return 0;
}

/* Start d (resolve, the TLS files, connect): 0 when it failed at once (logged). */
static int dial_start(Dial* d) {
  d->started = 1;
  int failed;
  d->tls = tls_bridge_context(d->bridge, &failed); /* logs a file it cannot use */
  if (failed) return 0;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  int rc = getaddrinfo(d->host, d->port, &hints, &d->addresses); /* (a name may block briefly) */
  if (rc != 0) {
    logf_(LOG_NOTICE, "connection to %s: getaddrinfo %s %s", d->where,
          rc == EAI_NONAME ? "ENOTFOUND" : gai_strerror(rc), d->host);
    d->addresses = NULL;
    return 0;
  }
  d->trying = d->addresses;
  return dial_next(d);
}

/* After a core call: start the dials it asked for, and report those it gave up (closed).
 * Reporting may make the core dial again: the list is gone through until nothing is left. */
static void run_dials(void) {
  for (uint32_t k = 0; k < dial_n;) {
    Dial* d = &dials[k];
    if (d->abandoned || (!d->started && !dial_start(d))) dial_fail(d); /* (the last entry moves to k) */
    else k++;
    flush_dirty();
  }
}

/* A DIALING link is writable (connected, or failed), or its TLS handshake can go on. */
static void dial_step(uint32_t id) {
  Dial* d = dial_of(id);
  Link* l = &links[id];
  if (d == NULL) return; /* (cannot happen: a DIALING link has its Dial) */
  if (l->ssl == NULL) { /* the TCP connect */
    int error = 0;
    socklen_t n = sizeof error;
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &error, &n) < 0) error = errno;
    if (error != 0) { /* the next address, if any */
      close(l->fd); /* (also leaves the epoll set) */
      l->fd = -1;
      dial_failed_at(d, error);
      if (dial_next(d) == 0) dial_fail(d);
      return;
    }
    if (d->tls == NULL) return dial_done(d);
    l->ssl = tls_connect(d->tls, d->host, d->where, l->fd);
    if (l->ssl == NULL) {
      logf_(LOG_NOTICE, "connection to %s: out of memory for TLS", d->where);
      return dial_fail(d);
    }
  }
  int want_write = 0;
  char reason[256];
  int r = tls_handshake(l->ssl, &want_write, reason, sizeof reason);
  if (r > 0) return dial_done(d);
  if (r == 0) return set_want_out(id, want_write);
  logf_(LOG_NOTICE, "connection to %s: %s", d->where, reason);
  dial_fail(d);
}

/* The core takes the link's tail and the `fresh` bytes read after it into its input window;
 * what it leaves (an incomplete packet, or all that follows a pause) waits in the tail. */
static void feed_input(uint32_t id, uint32_t fresh) {
  Link* l = &links[id];
  if (l->tail_len > 0) memcpy(memory_at(input_ptr), l->tail, l->tail_len);
  uint32_t len = l->tail_len + fresh;
  u32 consumed = core_feed(id, len);
  if (l->fd < 0 || l->state != OPEN) return; /* closed by the core (its tail is already let go) */
  if (consumed > len || (consumed == 0 && len == input_capacity && !l->paused)) {
    logf_(LOG_ERROR, "core bug on connection %u: consumed %u of %u bytes; closing it", id, consumed, len);
    mark_closing(id);
    return;
  }
  uint32_t rest = len - consumed;
  if (rest == 0) {
    drop_tail(l);
    return;
  }
  uint32_t needed = core_needed(); /* 0 when paused: offer it all again on resume */
  if (needed > input_capacity) needed = input_capacity;
  uint32_t cap = needed > rest ? needed : rest;
  if (cap > l->tail_cap) {
    uint8_t* grown = realloc(l->tail, cap);
    if (grown == NULL) {
      logf_(LOG_ERROR, "connection %u: out of memory for a %u-byte packet; closing it", id, needed);
      mark_closing(id);
      return;
    }
    l->tail = grown;
    l->tail_cap = cap;
  }
  memmove(l->tail, memory_at(input_ptr) + consumed, rest);
  l->tail_len = rest;
  l->needed = needed;
}

/* Bytes arrived on `id`. Usually straight from the socket into the core's input window,
 * fed, done. An incomplete packet's bytes wait in the link's tail; once the core has
 * said how big that packet is, reads go to the tail until it is whole. */
static void read_one(uint32_t id) {
  Link* l = &links[id];
  uint8_t* input = memory_at(input_ptr);
  ssize_t n;
  if (l->state == DRAINING) { /* discard until the peer closes */
    char sink[4096];
    n = recv(l->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) link_gone(id);
    return;
  }
  if (l->state != OPEN || l->paused) return; /* (an event from before the pause) */
  int to_tail = l->tail_len > 0 && l->needed > l->tail_len;
  uint32_t room = to_tail ? l->needed - l->tail_len : input_capacity - l->tail_len;
  uint8_t* into = (to_tail ? l->tail : input) + l->tail_len;
  int want_write = 0;
  n = l->ssl ? tls_recv(l->ssl, into, room < READ_CHUNK ? room : READ_CHUNK, &want_write)
             : recv(l->fd, into, room < READ_CHUNK ? room : READ_CHUNK, MSG_DONTWAIT);
  if (want_write) l->tls_rw = 1, set_want_out(id, 1); /* (a handshake message the socket did not take) */
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    link_gone(id);
    return;
  }
  if (l->ssl && !l->tls_ready) { /* the handshake is done: the certificate's name first, */
    l->tls_ready = 1;              /* through the input window (the bytes just read wait aside) */
    uint8_t* aside = malloc((size_t)n);
    if (aside == NULL) return link_gone(id);
    memcpy(aside, into, (size_t)n);
    tls_identity(l->ssl, id);
    memcpy(into, aside, (size_t)n);
    free(aside);
  }
  if (l->ssl && tls_pending(l->ssl) && !l->refeed) { /* decrypted bytes epoll cannot see */
    l->refeed = 1;
    refeed_ids[refeed_n++] = id;
  }
  if (to_tail) {
    l->tail_len += (uint32_t)n;
    if (l->tail_len < l->needed) return;
    n = 0;
  }
  feed_input(id, (uint32_t)n);
}

/* Resumed links offer their kept bytes again (outside any core call). */
static void refeed_all(void) {
  for (uint32_t k = 0; k < refeed_n; k++) {
    uint32_t id = refeed_ids[k];
    Link* l = &links[id];
    l->refeed = 0;
    if (l->fd < 0 || l->state != OPEN || l->paused) continue;
    if (l->tail_len > 0 && l->needed <= l->tail_len) feed_input(id, 0); /* (incomplete: the next read completes it) */
    else if (l->ssl && tls_pending(l->ssl)) read_one(id);
    flush_dirty();
  }
  refeed_n = 0;
}

/* One readiness event of a connection. */
static void on_event(uint32_t id, uint32_t got) {
  Link* l = &links[id];
  if (l->state == DIALING) return dial_step(id);
  if (got & EPOLLOUT) write_out(id);
  if (l->fd < 0) return;
  if ((got & EPOLLOUT) && l->tls_rw) got |= EPOLLIN, l->tls_rw = 0; /* the read that waited */
  /* a closing link is not read (EPOLLIN is off), but a peer that hung up or failed
   * will never take the rest: reported even with no events asked for */
  if (l->state == CLOSING && (got & (EPOLLHUP | EPOLLERR))) link_gone(id);
  else if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_one(id);
}

/* ---- start-up and the loop ---- */

static void on_signal(int sig) {
  if (sig == SIGUSR2) stats_wanted = 1;
  else if (sig == SIGHUP) reload_wanted = 1;
  else stopping = sig;
}

static void log_stats(void) {
  char line[1024];
  size_t n = 0;
  for (u32 i = 0; i < STAT_COUNT && n < sizeof line - 64; i++)
    n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%.0f", i ? " " : "", STAT_NAMES[i], core_stat(i));
  logf_(LOG_NOTICE, "stats: %s", line);
}

/* A listening socket on host:port, and where it is bound (as "ip:port", "[ip6]:port"). */
static int listen_on(const char* host, int port, char* where, size_t where_len, int* port_out) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo* res = NULL;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(host, service, &hints, &res), one = 1;
  int fd = rc == 0 ? socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
    logf_(LOG_ERROR, "cannot listen on %s:%d: %s", host, port, rc != 0 ? gai_strerror(rc) : strerror(errno));
    exit(1);
  }
  freeaddrinfo(res);
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  char ip[NI_MAXHOST] = "?", bound_port[NI_MAXSERV] = "0";
  getsockname(fd, (struct sockaddr*)&bound, &bound_len);
  getnameinfo((struct sockaddr*)&bound, bound_len, ip, sizeof ip, bound_port, sizeof bound_port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(where, where_len, bound.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, bound_port);
  *port_out = atoi(bound_port);
  return fd;
}

/* A bad command line: the message (the core's, mostly), then the --help text. */
static void __attribute__((noreturn)) usage_error(const char* prefix, const char* message) {
  fprintf(stderr, "midge: %s%s\n\n%s", prefix, message, USAGE);
  exit(EXIT_USAGE);
}

/* argv[*i] as an option of the table (its index, or -1) and its value: the next argument
 * when the option takes one ("" when none is left), else "". Advances *i past the value.
 * host/cli.ts splits the command line the same way. */
static int split_arg(int argc, char** argv, int* i, const char** value) {
  int o = OPTION_COUNT - 1;
  while (o >= 0 && strcmp(argv[*i], OPTIONS[o].name) != 0 &&
         (OPTIONS[o].short_name == NULL || strcmp(argv[*i], OPTIONS[o].short_name) != 0)) o--;
  *value = "";
  if (o >= 0 && OPTIONS[o].value != NULL) *value = *i + 1 < argc ? argv[++*i] : "";
  return o;
}

/* The crypto service (docs/ABI.md): digests the core asks for, a password check's, from
 * OpenSSL's libcrypto. A range outside the core's memory is a core bug, hence fatal. */
static uint8_t* core_range(u32 ptr, u32 len) {
  if ((uint64_t)ptr + len > env.core.w2c_memory.size) trap("a crypto import (bytes outside the core's memory)");
  return memory_at(ptr);
}

void Z_envZ_sha512(struct Z_env_instance_t* e, u32 ptr, u32 len, u32 out) {
  (void)e;
  core_range(out, SHA512_DIGEST_LENGTH);
  SHA512(core_range(ptr, len), len, memory_at(out));
}

void Z_envZ_sha1(struct Z_env_instance_t* e, u32 ptr, u32 len, u32 out) {
  (void)e;
  core_range(out, SHA_DIGEST_LENGTH);
  SHA1(core_range(ptr, len), len, memory_at(out));
}

void Z_envZ_pbkdf2Sha512(struct Z_env_instance_t* e, u32 pwd, u32 pwd_len, u32 salt, u32 salt_len, u32 iterations,
                         u32 out, u32 out_len) {
  (void)e;
  if (iterations == 0 || iterations > INT_MAX || out_len > INT_MAX ||
      !PKCS5_PBKDF2_HMAC((const char*)core_range(pwd, pwd_len), (int)pwd_len, core_range(salt, salt_len), (int)salt_len,
                         (int)iterations, EVP_sha512(), (int)out_len, core_range(out, out_len)))
    trap("pbkdf2Sha512 (libcrypto refused it)");
}

/* The store service (docs/ABI.md, Persistence; the file is persist.c's): the core appends
 * records and asks for a flush during any call; the loop does it before it waits again
 * (flush_store), and a compaction at once. */
void Z_envZ_persistWrite(struct Z_env_instance_t* e, u32 ptr, u32 len) {
  (void)e;
  store_append(core_range(ptr, len), len);
}

void Z_envZ_persistFlush(struct Z_env_instance_t* e, u32 sync) {
  (void)e;
  store_ask_flush((int)sync);
}

u32 Z_envZ_persistReplace(struct Z_env_instance_t* e, u32 step) {
  (void)e;
  return (u32)store_replace((int)step);
}

/* Milliseconds since 1970, as the ABI's `wall`. */
static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The flush the core asked for, then `persisted`: acknowledgements that waited for the
 * disk go out. */
static void flush_store(void) {
  if (!store_flush_due()) return;
  double bytes;
  int error = store_flush(&bytes);
  CORE(persisted, now_ms(), bytes, (u32)error);
  flush_dirty();
}

/* One piece of the file for `restore`, through the input window. */
static uint32_t restore_piece(const uint8_t* piece, uint32_t len) {
  memcpy(memory_at(input_ptr), piece, len);
  return CORE(restore, len, now_ms(), wall_ms());
}

/* At start (text(5) names the file): read it back into the core, which then writes a
 * fresh snapshot; records follow while the broker runs. */
static void restore_store(void) {
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s", core_text(TEXT_PERSISTENCE_FILE));
  if (!*file) return; /* persistence off */
  store_init(file);
  int error = store_read_back(input_capacity, restore_piece);
  CORE(restoreEnd, now_ms(), wall_ms(), (u32)error);
}

/* A config file that cannot be read, or a line of it the core refuses: status 2, as for
 * a bad command line (without the --help text). host/cli.ts says the same. */
static void config_error(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void config_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("midge: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(EXIT_USAGE);
}

/* A whole file (malloc'd, *len bytes), or NULL with errno set. */
static uint8_t* read_file(const char* file, size_t* len) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t* buf = malloc(cap);
  for (;;) {
    uint8_t* grown = n == cap ? realloc(buf, cap *= 2) : buf;
    if (grown == NULL) { free(buf); close(fd); errno = ENOMEM; return NULL; }
    buf = grown;
    ssize_t got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { int e = errno; free(buf); close(fd); errno = e; return NULL; }
    if (got == 0) break;
    n += (size_t)got;
  }
  close(fd);
  *len = n;
  return buf;
}

/* A whole file, or the end with the error's name (ENOENT), as the Node host says it. */
static uint8_t* read_or_exit(const char* file, size_t* len) {
  uint8_t* buf = read_file(file, len);
  if (buf == NULL) config_error("cannot read %s: %s", file, strerrorname_np(errno));
  return buf;
}

/* The password file (text 2, part 3) and the ACL file (text 3, part 4) the config names,
 * read and handed to the core; at start a failure ends the broker, on SIGHUP it is logged
 * and the core keeps the rules it had (it checks a whole file before it loads it). */
static char rule_files[2][PATH_MAX];
static void read_rule_files(int reload) {
  for (int k = 0; k < 2; k++) {
    const char* path = rule_files[k];
    if (!*path) continue;
    size_t len;
    uint8_t* text = read_file(path, &len);
    const char* said = NULL;
    if (text == NULL) said = strerrorname_np(errno);
    else if (core_config(path, text, len, 3 + k) < 0) said = core_said();
    free(text);
    if (said == NULL) continue;
    if (!reload && text == NULL) config_error("cannot read %s: %s", path, said);
    if (!reload) config_error("%s", said);
    if (text == NULL) logf_(LOG_ERROR, "SIGHUP: cannot read %s: %s; the rules in force stay", path, said);
    else logf_(LOG_ERROR, "SIGHUP: %s; the rules in force stay", said);
  }
}

/* strcasecmp's order, which Mosquitto sorts an include_dir's files in. */
static int caseless(const void* a, const void* b) { return strcasecmp(*(char* const*)a, *(char* const*)b); }

/* The config file, handed to the core (which parses it, docs/ABI.md `config`), with the
 * files of its include_dir: the directory's *.conf files in Mosquitto's order, then the
 * rest of the main file. */
static void read_config(const char* file) {
  size_t main_len;
  uint8_t* main_text = read_or_exit(file, &main_len);
  char dir[PATH_MAX];
  int r = core_config(file, main_text, main_len, 0);
  while (r > 0) {
    snprintf(dir, sizeof dir, "%s", core_said());
    DIR* d = opendir(dir);
    if (d == NULL) config_error("cannot open include_dir %s: %s", dir, strerrorname_np(errno));
    char** names = NULL;
    size_t count = 0;
    for (struct dirent* e; (e = readdir(d)) != NULL;) {
      size_t n = strlen(e->d_name);
      if (n <= 5 || strcmp(e->d_name + n - 5, ".conf") != 0) continue;
      if ((names = realloc(names, (count + 1) * sizeof *names)) == NULL) config_error("include_dir %s: ENOMEM", dir);
      names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, caseless);
    for (size_t i = 0; i < count; i++) {
      char path[2 * PATH_MAX + 2];
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      size_t len;
      uint8_t* text = read_or_exit(path, &len);
      if (core_config(path, text, len, 1) < 0) config_error("%s", core_said());
      free(text);
      free(names[i]);
    }
    free(names);
    r = core_config(file, main_text, main_len, 2);
  }
  if (r < 0) config_error("%s", core_said());
  free(main_text);
}

/* The main loop's step: what is due on the clock, then one epoll_wait and its events. */
static void loop_once(void) {
  double now = now_ms();
  if (now >= next_tick) {
    next_tick = now + 1000; /* before the call: a `wake` during it brings this forward */
    u32 ms = core_tick();
    if (ms < 10) ms = 10;
    if (now + ms < next_tick) next_tick = now + ms;
    flush_dirty();
  }
  refeed_all();
  if (now >= next_reap) { /* links the core closed whose peer neither took its last bytes nor closed */
    for (uint32_t id = 0; id < link_count; id++)
      if (links[id].fd >= 0 && (links[id].state == CLOSING || links[id].state == DRAINING) && now >= links[id].deadline)
        link_gone(id);
    flush_dirty();
    next_reap = now + 250;
  }
  if (accept_again_at > 0 && now >= accept_again_at) set_accepting(1);
  if (stats_wanted || (next_stats > 0 && now >= next_stats)) {
    stats_wanted = 0;
    log_stats();
    if (next_stats > 0) next_stats = now + stats_interval * 1000;
  }
  if (reload_wanted) {
    reload_wanted = 0;
    logf_(LOG_NOTICE, "SIGHUP: reading the password and ACL files again");
    read_rule_files(1);
    for (uint32_t k = 0; k < listen_n; k++) tls_setup(k, 1); /* certificates, for new connections */
    flush_dirty();
  }
  run_dials(); /* the outbound connections the core asked for (or gave up) during this turn */
  flush_store(); /* what the core wrote during this turn, before waiting */
  double wait = store_flush_due() ? 0 : next_tick - now;
  if (next_reap - now < wait) wait = next_reap - now;
  if (accept_again_at > 0 && accept_again_at - now < wait) wait = accept_again_at - now;
  if (next_stats > 0 && next_stats - now < wait) wait = next_stats - now;
  struct epoll_event events[256];
  int n = epoll_wait(epfd, events, 256, wait < 0 ? 0 : (int)wait + 1);
  if (n < 0 && errno != EINTR) {
    logf_(LOG_ERROR, "epoll_wait: %s", strerror(errno));
    exit(EXIT_SOFTWARE);
  }
  for (int i = 0; i < n; i++) {
    uint64_t data = events[i].data.u64;
    uint32_t id = (uint32_t)data;
    if (data > UINT64_MAX - listen_n) accept_all((uint32_t)(UINT64_MAX - data));
    else if (id < link_count && links[id].fd == (int)(data >> 32)) on_event(id, events[i].events);
    /* (else: closed earlier in this batch) */
    flush_dirty(); /* what this event caused goes out now: latency, and one write per socket per read */
  }
  refeed_all();
}

static uint32_t open_links(void) {
  uint32_t n = 0;
  for (uint32_t id = 0; id < link_count; id++) n += links[id].fd >= 0;
  return n;
}

int32_t core_passwd(uint32_t step, uint32_t len) { return (int32_t)CORE(passwd, step, len); }

/* What tls.c borrows: the core's text and identity, and the log. */
const char* tls_core_text(int id) { return core_text(id); }
void tls_core_identity(uint32_t conn, const char* name, size_t len) {
  memcpy(memory_at(input_ptr), name, len < input_capacity ? len : input_capacity);
  CORE(identity, conn, input_ptr, len > UINT32_MAX ? UINT32_MAX : (u32)len);
}
void tls_log(int level, const char* fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  logf_(level, "%s", text);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "passwd") == 0) { /* mosquitto_passwd, with this board's core */
    core_start(0, &input_ptr, &input_capacity);
    return passwd_main(argc - 2, argv + 2, memory_at(input_ptr), input_capacity);
  }
  /* The board and the log level, which the core is started with; every option (these
   * too) is then checked by the core's parser, in order, as the Node host does. */
  const char* board = "";
  const char* value;
  env.log_level = LOG_INFO;
  for (int i = 1; i < argc; i++) {
    int o = split_arg(argc, argv, &i, &value);
    if (o == OPTION_BOARD) board = value;
    if (o == OPTION_VERBOSE) env.log_level = LOG_DEBUG;
  }
  /* one binary per board: --board may name only this one ("" is the core's to refuse) */
  if (*board && strcmp(board, MIDGE_BOARD) != 0) {
    fprintf(stderr, "midge: this binary holds the " MIDGE_BOARD " board's core; for '%s' run "
            "build/native/midge-%s\n\n%s", board, board, USAGE);
    return EXIT_USAGE;
  }

  core_start(0, &input_ptr, &input_capacity);
  /* The config file first (unless the command line asks only for --help or --version),
   * then every option through the core's parser, in order ($MIDGE_PORT first, so --port
   * wins): options override the file. */
  const char* config_file = NULL;
  int answers_only = 0;
  for (int i = 1; i < argc; i++) {
    int o = split_arg(argc, argv, &i, &value);
    if (o == OPTION_CONFIG) config_file = value;
    if (o == OPTION_HELP || o == OPTION_VERSION) answers_only = 1;
  }
  if (config_file != NULL && *config_file && !answers_only) read_config(config_file);
  const char* env_port = getenv("MIDGE_PORT"); /* first, so that --port wins */
  if (env_port != NULL && *env_port) {
    const char* refused = core_option(OPTIONS[OPTION_PORT].name, env_port);
    if (refused != NULL) usage_error("$MIDGE_PORT: ", refused);
  }
  for (int i = 1; i < argc; i++) {
    const char* name = argv[i];
    int o = split_arg(argc, argv, &i, &value);
    const char* refused = core_option(name, value);
    if (refused != NULL) usage_error("", refused);
    if (o == OPTION_HELP) return fputs(USAGE, stdout), 0;
    if (o == OPTION_VERSION) return printf("midge %s\n", MIDGE_VERSION), 0;
  }
  snprintf(rule_files[0], PATH_MAX, "%s", core_text(TEXT_PASSWORD_FILE));
  snprintf(rule_files[1], PATH_MAX, "%s", core_text(TEXT_ACL_FILE));
  read_rule_files(0);
  char note[512];
  snprintf(note, sizeof note, "%s", core_text(TEXT_NOTE)); /* who may connect: loopback only, anonymous clients or not */
  env.log_level = (int)core_configure(SETTING_LOG_LEVEL, -1);
  env.log_dest = (int)core_configure(SETTING_LOG_DEST, -1);
  if (env.log_dest & LOG_TO_STDOUT) setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time, as on stderr */
  if ((env.log_dest & LOG_TO_FILE) && (env.log_file = fopen(core_text(TEXT_LOG_FILE), "ae")) == NULL) {
    fprintf(stderr, "midge: cannot open log file %s: %s\n", core_said(), strerrorname_np(errno));
    return 1;
  }
  if (env.log_file != NULL) setvbuf(env.log_file, NULL, _IOLBF, 0);
  stats_interval = core_configure(SETTING_STATS_INTERVAL, -1);
  u32 packet_max = (u32)core_configure(SETTING_MAX_PACKET_SIZE, -1);
  /* Slots: the board's connection table (a --max-connections below it is the core's to enforce). */
  double max_connections = core_configure(SETTING_MAX_CONNECTIONS, -1);
  link_count = (uint32_t)core_configure(SETTING_MAX_CONNECTIONS, 4294967295.0); /* clamped: the board's */
  core_configure(SETTING_MAX_CONNECTIONS, max_connections);
  /* calloc: zeroed pages are only touched (resident) as connections use them */
  links = calloc(link_count, sizeof *links);
  dirty_ids = calloc((size_t)link_count + 1, sizeof *dirty_ids);
  refeed_ids = calloc((size_t)link_count + 1, sizeof *refeed_ids);
  if (links == NULL || dirty_ids == NULL || refeed_ids == NULL) return EXIT_SOFTWARE;
  for (uint32_t i = 0; i < link_count; i++) links[i].fd = -1;
  /* every descriptor may be a client: as many as the board has slots (Node raises its soft limit too) */
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }

  restore_store(); /* the persistence file, before any client can connect (as Mosquitto does) */

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    logf_(LOG_ERROR, "epoll_create1: %s", strerror(errno));
    return EXIT_SOFTWARE;
  }
  /* Every listener the core holds ("PORT ADDRESS" or "PORT ADDRESS websockets"; the first is
   * --port's and --host's), each its own socket into the one core (which is told the listener
   * of each connection: WebSockets are the core's), and its line (the first with the version
   * and the note). */
  for (const char* said; *(said = core_text(TEXT_LISTENER + (int)listen_n)); listen_n++) {
    if ((listen_fds = realloc(listen_fds, (listen_n + 1) * sizeof *listen_fds)) == NULL) return EXIT_SOFTWARE;
    char where[80], address[300];
    const char* protocol = "";
    int port = atoi(said);
    snprintf(address, sizeof address, "%s", strchr(said, ' ') + 1); /* (said is reused by the next core_text) */
    char* space = strchr(address, ' ');
    if (space != NULL) { *space = 0; protocol = space + 1; }
    tls_setup(listen_n, 0); /* a TLS listener's files first: one that is wrong ends the start */
    int bound_port = port;
    listen_fds[listen_n] = listen_on(address, port, where, sizeof where, &bound_port);
    core_listening(listen_n, (u32)bound_port); /* the core's logs and pages then say the real port */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX - listen_n};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fds[listen_n], &ev);
    int tls = tls_listener(listen_n);
    logf_(LOG_NOTICE, "%slistening on %s%s%s%s%s%s", listen_n ? "" : "midge " MIDGE_VERSION " ", where,
          tls || *protocol ? " (" : "", tls ? (*protocol ? "TLS, " : "TLS") : "", protocol, tls || *protocol ? ")" : "",
          listen_n ? "" : note);
  }
  logf_(LOG_INFO, "board " MIDGE_BOARD " (native host, wasm2c): packets up to %u bytes, %llu pages of fixed memory, "
        "%u connection slots", packet_max, (unsigned long long)env.core.w2c_memory.pages, link_count);

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  next_stats = stats_interval > 0 ? now_ms() + stats_interval * 1000 : 0;
  while (!stopping) loop_once();

  /* Shutdown: no new connections; MQTT 5 clients get DISCONNECT 0x8B; then up to 1 s
   * for every socket to take its last bytes and close, as the Node host allows. */
  logf_(LOG_NOTICE, "%s: shutting down", stopping == SIGINT ? "SIGINT" : "SIGTERM");
  for (uint32_t k = 0; k < listen_n; k++) close(listen_fds[k]); /* (also leaves the epoll set) */
  accept_again_at = 0;
  stopping = 0;
  next_tick = 1e300; /* no more ticks: no wills, no expiries while going down (as the Node host) */
  core_shutdown(); /* asks to close every connection */
  run_dials();      /* those not yet connected: closed */
  flush_dirty();
  flush_store(); /* the records the core asked to sync at shutdown */
  double give_up = now_ms() + 1000;
  while (open_links() > 0 && now_ms() < give_up && !stopping) loop_once(); /* a second signal: do not wait */
  for (uint32_t id = 0; id < link_count; id++)
    if (links[id].fd >= 0) link_gone(id);
  flush_store(); /* sessions that went offline with their connections */
  dirty_head = dirty_n = 0;
  log_stats();
  Z_midge_free(&env.core);
  return 0;
}
