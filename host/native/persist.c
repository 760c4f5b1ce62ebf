/*
 * The persistence file (see persist.h): POSIX calls only. What the core appends waits in
 * one growable buffer until main.c's loop flushes it, after the core call and before the
 * next epoll_wait; a compaction (persistReplace) is done at once. The error codes are
 * host/persist.ts's: 1 no space, 2 not permitted, 3 anything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist.h"

/* A buffer larger than this (a snapshot's) is freed once written rather than kept. */
#define PENDING_KEEP (1u << 20)

static char path[PATH_MAX], new_path[PATH_MAX + 8], old_path[PATH_MAX + 8], directory[PATH_MAX];
static int file = -1;      /* the file appended to (-1: none yet) */
static int next_file = -1; /* PATH.new between persistReplace(0) and (1) */
static int keep_old;       /* persistReplace(2): PATH becomes PATH.old rather than being replaced */
static uint8_t* pending;   /* appended, not yet written */
static size_t pending_len, pending_cap;
static int lost;           /* an append found no memory: the next flush or replace fails */
static uint64_t total;     /* bytes the core appended since the start: what `persisted` reports */
static int flush_due, flush_sync;

static int error_code(int e) {
  if (e == ENOSPC || e == EDQUOT) return STORE_NO_SPACE;
  if (e == EROFS || e == EACCES || e == EPERM) return STORE_NOT_PERMITTED;
  if (e == ENOENT || e == ENOTDIR) return STORE_NO_DIRECTORY;
  return STORE_IO_ERROR;
}

void store_init(const char* file_path) {
  snprintf(path, sizeof path, "%s", file_path);
  snprintf(new_path, sizeof new_path, "%s.new", path);
  snprintf(old_path, sizeof old_path, "%s.old", path);
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  snprintf(directory, sizeof directory, "%s", dirname(copy));
}

int store_read_back(uint32_t capacity, uint32_t (*feed)(const uint8_t* piece, uint32_t len)) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? STORE_OK : STORE_IO_ERROR;
  uint8_t* window = malloc(capacity > 0 ? capacity : 1);
  uint32_t kept = 0; /* bytes at the start of `window` the core has not taken yet */
  int error = window == NULL ? STORE_IO_ERROR : STORE_OK;
  while (error == STORE_OK) {
    ssize_t n = read(fd, window + kept, capacity - kept); /* (0 once the core leaves a whole window: the end) */
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = STORE_IO_ERROR;
    if (n <= 0) break;
    uint32_t len = kept + (uint32_t)n;
    uint32_t taken = feed(window, len);
    if (taken > len) taken = len;
    kept = len - taken;
    memmove(window, window + taken, kept);
  }
  free(window);
  close(fd);
  return error;
}

void store_append(const uint8_t* bytes, uint32_t len) {
  total += len;
  if (lost) return;
  if (pending_len + len > pending_cap) {
    size_t cap = pending_cap ? pending_cap : 4096;
    while (cap < pending_len + len) cap *= 2;
    uint8_t* grown = realloc(pending, cap);
    if (grown == NULL) {
      lost = 1; /* what is pending can no longer be written whole */
      return;
    }
    pending = grown;
    pending_cap = cap;
  }
  memcpy(pending + pending_len, bytes, len); /* a copy: the core reuses its memory */
  pending_len += len;
}

static void drop_pending(void) {
  pending_len = 0;
  lost = 0;
  if (pending_cap > PENDING_KEEP) {
    free(pending);
    pending = NULL;
    pending_cap = 0;
  }
}

void store_ask_flush(int sync) {
  flush_due = 1;
  flush_sync |= sync != 0;
}

int store_flush_due(void) { return flush_due; }

/* All of `len` bytes, or -1 with errno. */
static int write_all(int fd, const uint8_t* bytes, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, bytes, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return -1;
    }
    bytes += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_error; /* a store_write_now that failed: reported by the next flush */

void store_write_now(void) {
  if (pending_len == 0 || file < 0 || lost || write_error) return;
  if (write_all(file, pending, pending_len) < 0) write_error = error_code(errno);
  drop_pending();
}

int store_flush(double* total_out) {
  int sync = flush_sync, error = write_error;
  flush_due = flush_sync = 0;
  write_error = 0;
  if (error == STORE_OK && (file < 0 || lost)) error = STORE_IO_ERROR;
  else if (error == STORE_OK && (write_all(file, pending, pending_len) < 0 || (sync && fdatasync(file) < 0))) error = error_code(errno);
  drop_pending();
  *total_out = (double)total;
  return error;
}

/* A rename is durable once its directory is synced. */
static int sync_directory(void) {
  int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

/* A compaction failed: PATH.new goes, the current file stays. */
static int replace_failed(int e) {
  drop_pending();
  if (next_file >= 0) close(next_file);
  next_file = -1;
  unlink(new_path);
  return error_code(e);
}

int store_replace(int step) {
  if (step != 1) {
    drop_pending(); /* the new file supersedes what was not written yet */
    if (next_file >= 0) close(next_file);
    next_file = open(new_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (next_file < 0) return replace_failed(errno);
    keep_old = step == 2;
    return STORE_OK;
  }
  if (next_file < 0) return replace_failed(EBADF); /* no step 0 before */
  if (lost) return replace_failed(ENOMEM);
  if (write_all(next_file, pending, pending_len) < 0 || fdatasync(next_file) < 0 ||
      (keep_old && rename(path, old_path) < 0) || rename(new_path, path) < 0)
    return replace_failed(errno);
  drop_pending();
  if (file >= 0) close(file);
  file = next_file; /* PATH is the new file now, whatever the directory sync says */
  next_file = -1;
  return sync_directory() < 0 ? error_code(errno) : STORE_OK;
}
