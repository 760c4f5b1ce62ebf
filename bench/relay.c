/*
 * The latency floor: bench/relay-server.mjs in C. A "broker" that only frames packets
 * and forwards PUBLISH bytes unchanged to every subscriber, one epoll loop, one write
 * per subscriber per read. It answers CONNECT, SUBSCRIBE, PINGREQ and QoS 1 PUBLISH
 * with canned packets and ignores topics. Whatever latency the generator measures
 * through it is the kernel's and the generator's: no broker can do better here.
 * Built by bench/run.mjs with `cc -O2 bench/relay.c`; prints "listening on 127.0.0.1:PORT".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define BUF (1 << 20)

static uint8_t* rest[MAX_FD]; /* unconsumed bytes of a partial packet, per socket */
static uint32_t rest_len[MAX_FD];
static uint8_t subscribed[MAX_FD];
static int subs[MAX_FD], nsubs;

/* Blocking-ish write of everything (loopback, the generator reads fast). */
static void put(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) p += w, n -= (size_t)w;
    else if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    else return;
  }
}

static void drop(int fd) {
  if (subscribed[fd]) {
    for (int i = 0; i < nsubs; i++)
      if (subs[i] == fd) subs[i] = subs[--nsubs];
    subscribed[fd] = 0;
  }
  free(rest[fd]);
  rest[fd] = NULL;
  rest_len[fd] = 0;
  close(fd);
}

static uint8_t buf[BUF + 8], replies[BUF];

static void on_read(int fd) {
  uint32_t have = rest_len[fd];
  if (have) memcpy(buf, rest[fd], have);
  ssize_t n = recv(fd, buf + have, BUF - have, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return drop(fd);
  size_t len = have + (size_t)n, at = 0, nrep = 0;
  long run = -1;
#define FLUSH_RUN(end)                                                             \
  do {                                                                             \
    if (run >= 0)                                                                  \
      for (int s = 0; s < nsubs; s++) put(subs[s], buf + run, (size_t)(end) - (size_t)run); \
    run = -1;                                                                      \
  } while (0)
  while (at + 2 <= len) {
    size_t i = at + 1, rl = 0, mul = 1;
    int ok = 0;
    while (i < len && i < at + 5) {
      uint8_t b = buf[i++];
      rl += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) { ok = 1; break; }
    }
    if (!ok || i + rl > len) break;
    int type = buf[at] >> 4;
    if (type == 3) {
      if (run < 0) run = (long)at;
      if ((buf[at] >> 1) & 3) {
        size_t p = i + 2 + (size_t)((buf[i] << 8) | buf[i + 1]);
        replies[nrep++] = 0x40, replies[nrep++] = 2, replies[nrep++] = buf[p], replies[nrep++] = buf[p + 1];
      }
    } else {
      FLUSH_RUN(at);
      if (type == 1) put(fd, (const uint8_t*)"\x20\x02\x00\x00", 4);
      else if (type == 8) {
        if (!subscribed[fd]) subscribed[fd] = 1, subs[nsubs++] = fd;
        uint8_t ack[5] = {0x90, 3, buf[i], buf[i + 1], buf[i + rl - 1]};
        put(fd, ack, 5);
      } else if (type == 12) put(fd, (const uint8_t*)"\xd0\x00", 2);
      else if (type == 14) return drop(fd);
    }
    at = i + rl;
  }
  FLUSH_RUN(at);
  if (nrep) put(fd, replies, nrep);
  rest_len[fd] = (uint32_t)(len - at);
  if (rest_len[fd]) {
    rest[fd] = realloc(rest[fd], rest_len[fd]);
    memcpy(rest[fd], buf + at, rest_len[fd]);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int srv = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(srv, (struct sockaddr*)&a, sizeof a) < 0 || listen(srv, 1024) < 0) return perror("relay"), 1;
  getsockname(srv, (struct sockaddr*)&a, &al);
  fprintf(stderr, "relay-c listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = srv}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd != srv) {
        on_read(fd);
        continue;
      }
      int c;
      while ((c = accept4(srv, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        if (c >= MAX_FD) { close(c); continue; }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
      }
    }
  }
}
