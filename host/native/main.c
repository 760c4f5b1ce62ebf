/*
 * midge-native: the pi (or pi-zero) core compiled ahead of time to C by wasm2c, hosted
 * by this file over Linux sockets and one epoll loop. No JavaScript, no Node.
 *
 * Why it exists: a Node socket alone costs more memory than Mosquitto's whole
 * connection, and Node's stream stack adds tens of microseconds per hop (measured in
 * bench/RESULTS.md). This host is the same ABI host as host/core.ts + host/cli.ts
 * (docs/ABI.md), in C: it owns sockets, time and buffers, and knows nothing about MQTT.
 *
 * Memory: the core's tables are reserved once in its linear memory (as everywhere).
 * Per connection the host keeps a 64-byte Link; an output buffer exists only while
 * bytes wait for a slow socket, an input tail only while a packet is incomplete.
 *
 * Build: sh host/native/build.sh [board]   (npm run build:native) -> build/native/midge-<board>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core_glue.h" /* the instance, clock, log line, core calls and vocab.h both C hosts share */

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

enum { OPEN = 0, CLOSING = 1, DRAINING = 2 }; /* CLOSING: flush, then FIN; DRAINING: wait for the peer */

/* One accepted socket, at the index of its core connection id. */
typedef struct {
  int fd;              /* -1: free */
  uint8_t state;       /* OPEN, CLOSING, DRAINING */
  uint8_t dirty;       /* on the dirty list (bytes queued or a close asked during this step) */
  uint8_t want_out;    /* EPOLLOUT registered */
  uint8_t paused;      /* the core asked not to read it (EPOLLIN removed) */
  uint8_t owed;        /* the core saw a backlog: tell it (drained) when out is empty */
  uint8_t refeed;      /* resumed with a tail to offer again: on the refeed list */
  uint32_t out_off;    /* bytes of out already written (compacted lazily: no quadratic copying) */
  uint32_t out_len;    /* bytes waiting in out, from out_off */
  uint32_t out_cap;
  uint32_t tail_len;   /* unconsumed bytes of an incomplete packet, in tail */
  uint32_t tail_cap;
  uint32_t needed;     /* the incomplete packet's whole size, when the core knows it */
  uint8_t* out;        /* NULL when nothing waits */
  uint8_t* tail;       /* NULL when no packet is incomplete */
  double deadline;     /* CLOSING, DRAINING: when to give up on the peer */
} Link;

static Link* links;
static uint32_t link_count; /* the board's connection slots */
/* Links to write at the end of this step, first come first written (a PUBLISH to a
 * subscriber before the PUBACK to its publisher); [dirty_head, dirty_n) are still to do. */
static uint32_t* dirty_ids;
static uint32_t dirty_head, dirty_n;
static uint32_t input_ptr, input_capacity;
static int epfd = -1;
/* Links the core resumed while they hold unconsumed bytes: fed again after this step. */
static uint32_t* refeed_ids;
static uint32_t refeed_n;
static int server_fd = -1;
static double accept_again_at; /* > 0: accepting is suspended (out of descriptors) until then */
static int accept_warned;      /* that was logged; cleared by the next successful accept */
/* When the core wants its next tick (now_ms() time); `wake` brings it forward. */
static double next_tick;
static volatile sig_atomic_t stopping = 0, stats_wanted = 0;

/* ---- epoll registration ---- */

static void watch(uint32_t id) {
  Link* l = &links[id];
  struct epoll_event ev;
  ev.events = (l->paused || l->state == CLOSING ? 0 : EPOLLIN) | (l->want_out ? EPOLLOUT : 0);
  ev.data.u64 = ((uint64_t)(uint32_t)l->fd << 32) | id;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, l->fd, &ev) < 0) logf_(LOG_ERROR, "connection %u: epoll_ctl: %s", id, strerror(errno));
}

static void set_want_out(uint32_t id, int on) {
  if (links[id].want_out == on) return;
  links[id].want_out = (uint8_t)on;
  watch(id);
}


/* ---- the core's imports (docs/ABI.md, module env) ---- */

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

static void set_tail(Link* l, uint32_t len);

/* Close after flushing: the loop writes what is queued, half-closes and reaps the link,
 * never from inside an import; a peer that takes nothing is dropped after CLOSE_GRACE_MS. */
static void mark_closing(uint32_t id) {
  Link* l = &links[id];
  if (l->state != OPEN) return;
  l->state = CLOSING;
  l->deadline = now_ms() + CLOSE_GRACE_MS;
  set_tail(l, 0); /* further input is ignored: an incomplete packet is let go now */
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

static u32 last_ptr, last_len;
void Z_envZ_send(struct Z_env_instance_t* e, u32 id, u32 ptr, u32 len) {
  (void)e;
  last_ptr = ptr;
  last_len = len;
  if (len == 0 || id >= link_count || links[id].fd < 0 || links[id].state != OPEN) return;
  Link* l = &links[id];
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
  (void)e;
  if (id >= link_count || links[id].fd < 0 || links[id].state != OPEN) return;
  logf_(LOG_DEBUG, "connection %u: closing (reason %u)", id, reason);
  mark_closing(id);
}

u32 Z_envZ_backlog(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id >= link_count || links[id].fd < 0) return 0;
  if (links[id].out_len > 0) links[id].owed = 1; /* the core is told when it reaches 0 */
  return links[id].out_len;
}

/* Flow control is the core's (docs/ABI.md): stop or restart reading a socket. */
void Z_envZ_pause(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id >= link_count || links[id].fd < 0 || links[id].paused) return;
  links[id].paused = 1;
  if (links[id].state == OPEN) watch(id);
}

void Z_envZ_resume(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id >= link_count || links[id].fd < 0 || !links[id].paused) return;
  Link* l = &links[id];
  l->paused = 0;
  if (l->state != OPEN) return;
  watch(id);
  if (l->tail_len > 0 && !l->refeed) { /* offered again after this step, not from inside the core */
    l->refeed = 1;
    refeed_ids[refeed_n++] = id;
  }
}

void Z_envZ_wake(struct Z_env_instance_t* e, u32 ms) {
  (void)e;
  double at = now_ms() + ms;
  if (at < next_tick) next_tick = at;
}

static void log_stats(void) {
  char line[1024];
  size_t n = 0;
  for (u32 i = 0; i < STAT_COUNT && n < sizeof line - 64; i++)
    n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%.0f", i ? " " : "", STAT_NAMES[i], core_stat(i));
  logf_(LOG_NOTICE, "stats: %s", line);
}

/* ---- connections ---- */

static void set_tail(Link* l, uint32_t len) {
  l->tail_len = len;
  if (len == 0 && l->tail != NULL) {
    free(l->tail);
    l->tail = NULL;
    l->tail_cap = 0;
    l->needed = 0;
  }
}

/* Everything queued for `id` is written: its pauses and flags that wait for that end. */
static void drained(uint32_t id) {
  Link* l = &links[id];
  set_want_out(id, 0);
  if (l->owed) {
    l->owed = 0;
    core_drained(id); /* may send (a paced replay): the link is marked dirty again */
  }
}

static void link_gone(uint32_t id) {
  Link* l = &links[id];
  close(l->fd); /* also leaves the epoll set */
  l->fd = -1;
  l->state = OPEN;
  l->paused = l->owed = 0; /* (a refeed entry left behind finds fd -1 and is skipped) */
  l->want_out = 0;
  l->out_off = l->out_len = l->out_cap = 0;
  free(l->out);
  l->out = NULL;
  set_tail(l, 0);
  core_closed(id); /* may send to others (a will): they are on the dirty list */
  if (accept_again_at > 0) accept_again_at = now_ms(); /* a descriptor is free again */
}

/* Write what is queued for `id` without blocking; 0 if the socket failed. */
static int flush_link(uint32_t id) {
  Link* l = &links[id];
  while (l->out_len > 0) {
    ssize_t n = send(l->fd, l->out + l->out_off, l->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      l->out_off += (uint32_t)n;
      l->out_len -= (uint32_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    l->out_len = 0;
    return 0;
  }
  if (l->out_len == 0) { /* all out: an idle connection holds no buffer */
    free(l->out);
    l->out = NULL;
    l->out_off = l->out_cap = 0;
  }
  return 1;
}

/* After the core asked to close and the output is written: half-close, then wait
 * (bounded) for the peer's FIN, so that the last packet (CONNACK refusal, DISCONNECT)
 * is not lost to a reset caused by unread input. */
static void start_draining(uint32_t id) {
  Link* l = &links[id];
  shutdown(l->fd, SHUT_WR);
  l->state = DRAINING;
  l->deadline = now_ms() + CLOSE_GRACE_MS;
  l->want_out = 0;
  watch(id);
}

/* Everything the core sent during this step goes out now, one write per socket, in
 * the order the core sent it. */
static void flush_dirty(void) {
  while (dirty_head < dirty_n) {
    uint32_t id = dirty_ids[dirty_head++];
    Link* l = &links[id];
    l->dirty = 0;
    if (l->fd < 0 || l->state == DRAINING) continue;
    if (l->out_len > 0 && !flush_link(id)) {
      link_gone(id); /* may mark others dirty (a will): this loop reaches them */
      continue;
    }
    if (l->state == CLOSING) {
      if (l->out_len == 0) start_draining(id);
      else {
        l->want_out = 1;
        watch(id); /* EPOLLOUT only: a closing link's input is not read */
      }
      continue;
    }
    if (l->out_len == 0) {
      drained(id);
      continue;
    }
    set_want_out(id, 1);
  }
  dirty_head = dirty_n = 0;
}

/* Accepting stops while the process is out of descriptors (or memory), instead of
 * spinning on a listener that stays readable; it resumes when a connection goes or
 * after 100 ms. */
static void suspend_accepting(int err) {
  struct epoll_event ev = {.events = 0, .data.u64 = UINT64_MAX};
  epoll_ctl(epfd, EPOLL_CTL_MOD, server_fd, &ev);
  if (!accept_warned) logf_(LOG_WARNING, "cannot accept connections: %s; retrying", strerror(err));
  accept_warned = 1;
  accept_again_at = now_ms() + 100;
}

static void resume_accepting(void) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(epfd, EPOLL_CTL_MOD, server_fd, &ev);
  accept_again_at = 0;
}

static void accept_all(void) {
  for (;;) {
    int fd = accept4(server_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) suspend_accepting(errno);
      return; /* EAGAIN: all accepted */
    }
    accept_warned = 0;
    u32 id = core_open();
    if ((int32_t)id < 0 || id >= link_count) {
      if ((int32_t)id >= 0) core_closed(id);
      logf_(LOG_DEBUG, "connection refused: no connection slot");
      close(fd); /* the core has logged why (connection limit), rate-limited */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* we batch ourselves */
    Link* l = &links[id];
    l->fd = fd;
    l->state = OPEN;
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u64 = ((uint64_t)(uint32_t)fd << 32) | id;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      logf_(LOG_ERROR, "epoll_ctl: %s", strerror(errno));
      link_gone(id);
      continue;
    }
    logf_(LOG_DEBUG, "connection %u accepted", id);
  }
}

/* Keep bytes [from, from+len) of the input window as this link's tail. */
static int keep_tail(Link* l, const uint8_t* from, uint32_t len, uint32_t needed) {
  uint32_t cap = needed > len ? needed : len;
  if (cap > l->tail_cap) {
    uint8_t* grown = realloc(l->tail, cap);
    if (grown == NULL) return 0;
    l->tail = grown;
    l->tail_cap = cap;
  }
  memmove(l->tail, from, len);
  set_tail(l, len);
  l->needed = needed;
  return 1;
}

static void feed_input(uint32_t id, uint32_t len);

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
  if (l->tail_len > 0 && l->needed > l->tail_len) {
    uint32_t want = l->needed - l->tail_len;
    n = recv(l->fd, l->tail + l->tail_len, want < READ_CHUNK ? want : READ_CHUNK, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      link_gone(id);
      return;
    }
    set_tail(l, l->tail_len + (uint32_t)n);
    if (l->tail_len < l->needed) return;
    memcpy(input, l->tail, l->tail_len);
    n = 0;
  } else {
    if (l->tail_len > 0) memcpy(input, l->tail, l->tail_len);
    uint32_t room = input_capacity - l->tail_len;
    n = recv(l->fd, input + l->tail_len, room < READ_CHUNK ? room : READ_CHUNK, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      link_gone(id);
      return;
    }
  }
  feed_input(id, l->tail_len + (uint32_t)n);
}

/* The core takes the `len` bytes in its input window; what it leaves (an incomplete
 * packet, or everything after it paused the connection) waits in the tail. */
static void feed_input(uint32_t id, uint32_t len) {
  Link* l = &links[id];
  uint8_t* input = memory_at(input_ptr);
  u32 consumed = core_feed(id, len);
  if (l->fd < 0 || l->state != OPEN) return; /* closed by the core (its tail is already let go) */
  if (consumed > len || (consumed == 0 && len == input_capacity && !l->paused)) {
    logf_(LOG_ERROR, "core bug on connection %u: consumed %u of %u bytes; closing it", id, consumed, len);
    mark_closing(id);
    return;
  }
  uint32_t rest = len - consumed;
  if (rest == 0) {
    set_tail(l, 0);
    return;
  }
  uint32_t needed = core_needed(); /* 0 when paused: offer it all again on resume */
  if (needed > input_capacity) needed = input_capacity;
  if (!keep_tail(l, input + consumed, rest, needed)) {
    logf_(LOG_ERROR, "connection %u: out of memory for a %u-byte packet; closing it", id, needed);
    mark_closing(id);
  }
}

/* Resumed links offer their kept bytes again (outside any core call). */
static void refeed_all(void) {
  for (uint32_t k = 0; k < refeed_n; k++) {
    uint32_t id = refeed_ids[k];
    Link* l = &links[id];
    l->refeed = 0;
    if (l->fd < 0 || l->state != OPEN || l->paused || l->tail_len == 0) continue;
    if (l->needed > l->tail_len) continue; /* an incomplete packet: the next read completes it */
    memcpy(memory_at(input_ptr), l->tail, l->tail_len);
    feed_input(id, l->tail_len);
    flush_dirty();
  }
  refeed_n = 0;
}

/* Links the core closed whose peer neither read its last bytes nor closed, after the
 * grace time: dropped (as the Node host destroys such a socket). */
static void reap_closing(double now) {
  for (uint32_t id = 0; id < link_count; id++)
    if (links[id].fd >= 0 && links[id].state != OPEN && now >= links[id].deadline) link_gone(id);
}

/* One readiness event of a connection. */
static void on_event(uint32_t id, uint32_t got) {
  Link* l = &links[id];
  if (got & EPOLLOUT) {
    if (!flush_link(id)) {
      link_gone(id);
      return;
    }
    if (l->out_len == 0) {
      if (l->state == CLOSING) start_draining(id);
      else if (l->state == OPEN) drained(id);
    }
  }
  if (l->fd < 0) return;
  /* a closing link is not read (EPOLLIN is off), but a peer that hung up or failed
   * will never take the rest: reported even with no events asked for */
  if (l->state == CLOSING && (got & (EPOLLHUP | EPOLLERR))) {
    link_gone(id);
    return;
  }
  if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_one(id);
}

/* ---- start-up ---- */

static void on_signal(int sig) {
  if (sig == SIGUSR2) stats_wanted = 1;
  else stopping = sig;
}

static int listen_on(const char* host, int port, char* where, size_t where_len) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(host, service, &hints, &res);
  if (rc != 0) {
    logf_(LOG_ERROR, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
    exit(1);
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
    logf_(LOG_ERROR, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    exit(1);
  }
  freeaddrinfo(res);
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr*)&bound, &bound_len);
  char ip[INET6_ADDRSTRLEN] = "?";
  int bound_port = 0;
  if (bound.ss_family == AF_INET6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&bound;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin6_port);
    snprintf(where, where_len, "[%s]:%d", ip, bound_port);
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)&bound;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin_port);
    snprintf(where, where_len, "%s:%d", ip, bound_port);
  }
  return fd;
}

/* A bad command line: the message (the core's, mostly), then the --help text. */
static void usage_error(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("midge: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n\n%s", USAGE);
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

void Z_envZ_pbkdf2Sha512(struct Z_env_instance_t* e, u32 pwd, u32 pwd_len, u32 salt, u32 salt_len, u32 iterations,
                         u32 out, u32 out_len) {
  (void)e;
  if (iterations == 0 || iterations > INT_MAX || out_len > INT_MAX ||
      !PKCS5_PBKDF2_HMAC((const char*)core_range(pwd, pwd_len), (int)pwd_len, core_range(salt, salt_len), (int)salt_len,
                         (int)iterations, EVP_sha512(), (int)out_len, core_range(out, out_len)))
    trap("pbkdf2Sha512 (libcrypto refused it)");
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

/* A whole file (malloc'd, *len bytes), or the end with the error's name (ENOENT), as
 * the Node host says it. */
static uint8_t* read_or_exit(const char* file, size_t* len) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  size_t cap = 4096, n = 0;
  uint8_t* buf = malloc(cap);
  if (fd < 0 || buf == NULL) config_error("cannot read %s: %s", file, strerrorname_np(fd < 0 ? errno : ENOMEM));
  for (;;) {
    if (n == cap && (buf = realloc(buf, cap *= 2)) == NULL) config_error("cannot read %s: ENOMEM", file);
    ssize_t got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) config_error("cannot read %s: %s", file, strerrorname_np(errno));
    if (got == 0) break;
    n += (size_t)got;
  }
  close(fd);
  *len = n;
  return buf;
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
static double next_reap, next_stats, stats_interval;

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
  if (now >= next_reap) {
    reap_closing(now);
    flush_dirty();
    next_reap = now + 250;
  }
  if (accept_again_at > 0 && now >= accept_again_at) resume_accepting();
  if (stats_wanted || (next_stats > 0 && now >= next_stats)) {
    stats_wanted = 0;
    log_stats();
    if (next_stats > 0) next_stats = now + stats_interval * 1000;
  }
  double wait = next_tick - now;
  if (next_reap - now < wait) wait = next_reap - now;
  if (accept_again_at > 0 && accept_again_at - now < wait) wait = accept_again_at - now;
  if (next_stats > 0 && next_stats - now < wait) wait = next_stats - now;
  enum { EVENTS = 256 };
  struct epoll_event events[EVENTS];
  int n = epoll_wait(epfd, events, EVENTS, wait < 0 ? 0 : (int)wait + 1);
  if (n < 0 && errno != EINTR) {
    logf_(LOG_ERROR, "epoll_wait: %s", strerror(errno));
    exit(EXIT_SOFTWARE);
  }
  for (int i = 0; i < n; i++) {
    uint64_t data = events[i].data.u64;
    if (data == UINT64_MAX) {
      accept_all();
      flush_dirty();
      continue;
    }
    uint32_t id = (uint32_t)data;
    int fd = (int)(data >> 32);
    if (id >= link_count || links[id].fd != fd) continue; /* closed earlier in this batch */
    on_event(id, events[i].events);
    flush_dirty(); /* what this read caused goes out now: latency, and one write per socket per read */
  }
  refeed_all();
}

/* Every open descriptor may be a client: as many as the board has slots (Node raises
 * its own soft limit the same way). */
static void raise_descriptor_limit(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == r.rlim_max) return;
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

int main(int argc, char** argv) {
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
  if (*board && strcmp(board, MIDGE_BOARD) != 0)
    usage_error("this binary holds the " MIDGE_BOARD " board's core; for '%s' run build/native/midge-%s", board, board);

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
    if (refused != NULL) usage_error("$MIDGE_PORT: %s", refused);
  }
  for (int i = 1; i < argc; i++) {
    const char* name = argv[i];
    int o = split_arg(argc, argv, &i, &value);
    const char* refused = core_option(name, value);
    if (refused != NULL) usage_error("%s", refused);
    if (o == OPTION_HELP) return fputs(USAGE, stdout), 0;
    if (o == OPTION_VERSION) return printf("midge %s\n", MIDGE_VERSION), 0;
  }
  /* The password file the config names (text 2), read and handed back for the core to parse. */
  if (*core_text(2)) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", core_said());
    size_t len;
    uint8_t* text = read_or_exit(path, &len);
    if (core_config(path, text, len, 3) < 0) config_error("%s", core_said());
    free(text);
  }
  char host[256], note[512];
  snprintf(host, sizeof host, "%s", core_text(0));
  snprintf(note, sizeof note, "%s", core_text(1)); /* who may connect: loopback only, anonymous clients or not */
  env.log_level = (int)core_configure(SETTING_LOG_LEVEL, -1);
  env.log_dest = (int)core_configure(SETTING_LOG_DEST, -1);
  if (env.log_dest == 1) setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time, as on stderr */
  int port = (int)core_configure(SETTING_PORT, -1);
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
  raise_descriptor_limit();

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    logf_(LOG_ERROR, "epoll_create1: %s", strerror(errno));
    return EXIT_SOFTWARE;
  }
  char where[80];
  server_fd = listen_on(host, port, where, sizeof where);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(epfd, EPOLL_CTL_ADD, server_fd, &ev);

  logf_(LOG_NOTICE, "midge %s listening on %s%s", MIDGE_VERSION, where, note);
  logf_(LOG_INFO, "board " MIDGE_BOARD " (native host, wasm2c): packets up to %u bytes, %llu pages of fixed memory, %u connection slots",
        packet_max, (unsigned long long)env.core.w2c_memory.pages, link_count);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  next_stats = stats_interval > 0 ? now_ms() + stats_interval * 1000 : 0;
  while (!stopping) loop_once();

  /* Shutdown: no new connections; MQTT 5 clients get DISCONNECT 0x8B; then up to 1 s
   * for every socket to take its last bytes and close, as the Node host allows. */
  logf_(LOG_NOTICE, "%s: shutting down", stopping == SIGINT ? "SIGINT" : "SIGTERM");
  epoll_ctl(epfd, EPOLL_CTL_DEL, server_fd, NULL);
  close(server_fd);
  accept_again_at = 0;
  stopping = 0;
  next_tick = 1e300; /* no more ticks: no wills, no expiries while going down (as the Node host) */
  core_shutdown(); /* asks to close every connection */
  flush_dirty();
  double give_up = now_ms() + 1000;
  for (;;) {
    uint32_t open_links = 0;
    for (uint32_t id = 0; id < link_count; id++) open_links += links[id].fd >= 0;
    if (open_links == 0 || now_ms() >= give_up || stopping) break; /* a second signal: do not wait */
    loop_once();
  }
  for (uint32_t id = 0; id < link_count; id++)
    if (links[id].fd >= 0) link_gone(id);
  dirty_head = dirty_n = 0;
  log_stats();
  Z_midge_free(&env.core);
  return 0;
}
