/*
 * Midge with no JavaScript: the mcu core (build/midge-mcu.wasm) compiled ahead of time
 * to C by wasm2c, hosted by this file over POSIX sockets and one poll() loop. The same
 * calls exist in lwIP (ESP-IDF) and Zephyr; see README.md beside this file.
 *
 * This file is the host of docs/ABI.md in C: it owns sockets, time and output buffers,
 * and knows nothing about MQTT. Memory is fixed at start-up: the core's 64 KiB linear
 * memory (allocated by wasm-rt-impl.c) plus, per connection slot, one output buffer
 * and one buffer for the unconsumed tail of a partial packet.
 *
 *   midge-mcu [--host ADDR] [--port N] [--verbose]      (default 127.0.0.1:1883; port 0: any)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core_glue.h" /* host/native/: the instance, clock, log line and core calls both C hosts share */

/* Connection slots: the board's MAX_CONNECTIONS (build.sh passes it from boards/mcu.json). */
#ifndef MIDGE_MAX_CONNECTIONS
#define MIDGE_MAX_CONNECTIONS 16
#endif
/* Bytes queued for one peer before it is written. Must hold a whole packet plus the
 * board's BACKLOG_MAX (above which the core drops QoS 0 messages to that peer). */
#ifndef MIDGE_OUT_BUFFER
#define MIDGE_OUT_BUFFER 3072
#endif

/* One accepted socket, at the index of its core connection id. */
typedef struct {
  int fd;            /* -1: free */
  int closing;       /* the core asked to close: flush, then close */
  uint8_t paused;    /* the core asked not to read it (flow control is the core's) */
  uint8_t owed;      /* the core saw a backlog: tell it (drained) when out is empty */
  uint8_t refeed;    /* resumed with a kept tail: offer it again after this turn */
  uint32_t out_len;  /* bytes waiting in out */
  uint32_t tail_len; /* unconsumed bytes of a partial packet, in tail */
  uint8_t out[MIDGE_OUT_BUFFER];
  uint8_t* tail;     /* inputCapacity bytes, allocated once at start */
} Link;

static Link links[MIDGE_MAX_CONNECTIONS];
static uint32_t input_ptr, input_capacity;
static volatile sig_atomic_t stopping = 0;
static u32 wake_ms = 1000; /* the core's `wake`: the longest the next poll may wait */

/* ---- the core's imports (docs/ABI.md, module env) ---- */

/* Write what is queued for `id` without blocking; false if the socket failed. */
static int flush_link(uint32_t id) {
  Link* l = &links[id];
  uint32_t done = 0;
  while (done < l->out_len) {
    ssize_t n = send(l->fd, l->out + done, l->out_len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += (uint32_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    l->out_len = 0;
    return 0;
  }
  memmove(l->out, l->out + done, l->out_len - done);
  l->out_len -= done;
  return 1;
}

static u32 last_ptr, last_len;
void Z_envZ_send(struct Z_env_instance_t* e, u32 id, u32 ptr, u32 len) {
  (void)e;
  last_ptr = ptr;
  last_len = len;
  if (id >= MIDGE_MAX_CONNECTIONS || links[id].fd < 0 || links[id].closing) return;
  Link* l = &links[id];
  if (l->out_len + len > sizeof l->out) flush_link(id); /* make room if the kernel takes it */
  if (l->out_len + len > sizeof l->out) {
    /* a peer that does not read while QoS 1/2 messages wait: drop it, not the others */
    logf_(LOG_WARNING, "connection %u: output buffer full (%u bytes), closing it", id, (unsigned)sizeof l->out);
    l->closing = 1;
    l->out_len = 0;
    return;
  }
  memcpy(l->out + l->out_len, memory_at(ptr), len); /* copy now: the core reuses the memory */
  l->out_len += len;
}

/* The bytes of the previous send, to another connection (a fan-out). The core
   guarantees they are still in place, so they are simply copied again. */
void Z_envZ_sendAgain(struct Z_env_instance_t* e, u32 id) {
  Z_envZ_send(e, id, last_ptr, last_len);
}

void Z_envZ_close(struct Z_env_instance_t* e, u32 id, u32 reason) {
  (void)e;
  if (id >= MIDGE_MAX_CONNECTIONS || links[id].fd < 0) return;
  logf_(LOG_DEBUG, "connection %u: closing (reason %u)", id, reason);
  links[id].closing = 1; /* flushed and closed by the loop, which then calls closed() */
  links[id].tail_len = 0;
}

u32 Z_envZ_backlog(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id >= MIDGE_MAX_CONNECTIONS || links[id].fd < 0) return 0;
  if (links[id].out_len > 0) links[id].owed = 1;
  return links[id].out_len;
}

void Z_envZ_pause(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id < MIDGE_MAX_CONNECTIONS) links[id].paused = 1;
}

void Z_envZ_resume(struct Z_env_instance_t* e, u32 id) {
  (void)e;
  if (id >= MIDGE_MAX_CONNECTIONS || !links[id].paused) return;
  links[id].paused = 0;
  if (links[id].tail_len > 0) links[id].refeed = 1;
}

void Z_envZ_wake(struct Z_env_instance_t* e, u32 ms) {
  (void)e;
  if (ms < wake_ms) wake_ms = ms;
}

/* ---- the loop ---- */

static void link_gone(uint32_t id) {
  Link* l = &links[id];
  close(l->fd);
  l->fd = -1;
  l->closing = 0;
  l->paused = l->owed = l->refeed = 0;
  l->out_len = 0;
  l->tail_len = 0;
  core_closed(id);
}

static void accept_one(int server) {
  int fd = accept(server, NULL, NULL);
  if (fd < 0) return;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  u32 id = core_open();
  if ((int32_t)id < 0 || id >= MIDGE_MAX_CONNECTIONS) {
    if ((int32_t)id >= 0) core_closed(id);
    logf_(LOG_WARNING, "connection refused: connection table full");
    close(fd);
    return;
  }
  links[id].fd = fd;
  logf_(LOG_DEBUG, "connection %u accepted", id);
}

/* Bytes arrived on `id`: the kept tail, then straight from the socket into the core's
 * input window, fed; whatever the core did not consume is kept for next time. */
static void feed_input(uint32_t id, uint32_t len);

static void read_one(uint32_t id) {
  Link* l = &links[id];
  if (l->paused) return;
  uint8_t* input = memory_at(input_ptr);
  memcpy(input, l->tail, l->tail_len);
  ssize_t n = recv(l->fd, input + l->tail_len, input_capacity - l->tail_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    link_gone(id);
    return;
  }
  feed_input(id, l->tail_len + (uint32_t)n);
}

/* The core takes the `len` bytes in its input window; the rest (an incomplete packet,
 * or all that follows a pause) is kept for the next read or the `resume`. */
static void feed_input(uint32_t id, uint32_t len) {
  Link* l = &links[id];
  uint8_t* input = memory_at(input_ptr);
  u32 consumed = core_feed(id, len);
  if (l->closing) return;
  if (consumed > len || (consumed == 0 && len == input_capacity && !l->paused)) {
    logf_(LOG_ERROR, "core bug on connection %u: consumed %u of %u bytes; closing it", id, consumed, len);
    l->closing = 1;
    l->tail_len = 0;
    return;
  }
  l->tail_len = len - consumed;
  memcpy(l->tail, input + consumed, l->tail_len);
}

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static int listen_on(const char* host, int port) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "midge-mcu: --host must be an IPv4 address, not '%s'\n", host);
    exit(EXIT_USAGE);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(fd, 8) < 0) {
    logf_(LOG_ERROR, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    exit(1);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* acl_file = NULL;
  int port = 1883;
  env.log_level = LOG_INFO;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) host = argv[++i];
    else if (strcmp(argv[i], "--verbose") == 0) env.log_level = LOG_DEBUG;
    else if (strcmp(argv[i], "--acl-file") == 0 && i + 1 < argc) acl_file = argv[++i];
    else {
      fprintf(stderr, "usage: midge-mcu [--host ADDR] [--port N] [--acl-file FILE] [--verbose]\n");
      return EXIT_USAGE;
    }
  }

  u32 packet_max = core_start(0, &input_ptr, &input_capacity);
  /* The ACL file (docs/ABI.md `config`, part 4): read once, parsed by the core; the board
   * has no config file parser, so this is how it gets its rules. */
  if (acl_file != NULL) {
    static uint8_t text[2048];
    FILE* f = fopen(acl_file, "rb");
    if (f == NULL) {
      fprintf(stderr, "midge: cannot read %s: %s\n", acl_file, strerror(errno));
      return EXIT_USAGE;
    }
    size_t len = fread(text, 1, sizeof text, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    /* a file longer than the buffer: its real length, which the core refuses by size */
    if (core_config(acl_file, text, more ? (size_t)input_capacity + 1 : len, 4) < 0) {
      fprintf(stderr, "midge: %s\n", core_said());
      return EXIT_USAGE;
    }
  }
  for (int i = 0; i < MIDGE_MAX_CONNECTIONS; i++) {
    links[i].fd = -1;
    links[i].tail = malloc(input_capacity); /* once, at start: nothing is allocated later */
    if (links[i].tail == NULL) return EXIT_SOFTWARE;
  }

  int server = listen_on(host, port);
  struct sockaddr_in bound;
  socklen_t bound_len = sizeof bound;
  getsockname(server, (struct sockaddr*)&bound, &bound_len);
  logf_(LOG_NOTICE, "midge (mcu core, wasm2c, no JavaScript) listening on %s:%d", host, ntohs(bound.sin_port));
  logf_(LOG_INFO, "board mcu: packets up to %u bytes, %u bytes of linear memory, %d connection slots",
        packet_max, (unsigned)env.core.w2c_memory.size, MIDGE_MAX_CONNECTIONS);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct pollfd fds[MIDGE_MAX_CONNECTIONS + 1];
  uint32_t ids[MIDGE_MAX_CONNECTIONS + 1];
  u32 wait_ms = 0;
  while (!stopping) {
    /* everything the core sent during the last turn goes out now, one write per socket;
     * connections the core closed are closed once their bytes are out */
    for (uint32_t id = 0; id < MIDGE_MAX_CONNECTIONS; id++) {
      Link* l = &links[id];
      if (l->fd < 0) continue;
      if (l->refeed && !l->paused && !l->closing) { /* resumed: what was kept goes in first */
        l->refeed = 0;
        memcpy(memory_at(input_ptr), l->tail, l->tail_len);
        feed_input(id, l->tail_len);
      }
      if (l->out_len > 0 && !flush_link(id)) l->closing = 1, l->out_len = 0;
      if (l->closing && l->out_len == 0) link_gone(id);
      else if (l->out_len == 0 && l->owed) l->owed = 0, core_drained(id);
    }
    nfds_t n = 0;
    fds[n].fd = server, fds[n].events = POLLIN, ids[n++] = UINT32_MAX;
    for (uint32_t id = 0; id < MIDGE_MAX_CONNECTIONS; id++) {
      if (links[id].fd < 0) continue;
      fds[n].fd = links[id].fd;
      fds[n].events = (short)((links[id].closing || links[id].paused ? 0 : POLLIN) | (links[id].out_len > 0 ? POLLOUT : 0));
      ids[n++] = id;
    }
    if (wake_ms < wait_ms) wait_ms = wake_ms;
    wake_ms = 1000;
    int ready = poll(fds, n, (int)wait_ms);
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; ready > 0 && i < n; i++) {
      if (fds[i].revents == 0) continue;
      if (ids[i] == UINT32_MAX) accept_one(server);
      else if (links[ids[i]].fd == fds[i].fd && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) read_one(ids[i]);
    }
    wait_ms = core_tick();
    if (wait_ms < 10) wait_ms = 10;
    if (wait_ms > 1000) wait_ms = 1000;
  }

  logf_(LOG_NOTICE, "shutting down");
  for (uint32_t id = 0; id < MIDGE_MAX_CONNECTIONS; id++) {
    if (links[id].fd < 0) continue;
    flush_link(id);
    link_gone(id);
  }
  close(server);
  Z_midge_free(&env.core);
  return 0;
}
