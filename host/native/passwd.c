/*
 * `midge passwd ...`: the platform half of mosquitto_passwd, as host/passwd.ts does it
 * for the Node host. The core reads the command line, says what to do and makes the new
 * file (docs/ABI.md, `passwd`); this file reads the file, asks for the password without
 * echo (termios), hands in random bytes (OpenSSL's RAND_bytes) and writes the result
 * next to the file, then renames it over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "passwd.h"
#include "vocab.h" /* PASSWD_STEP_*, PASSWD_TODO_*, PASSWD_INPUT_RANDOM_BYTES */

static uint8_t* window;
static uint32_t capacity;

/* The end: `text` to stdout (status 0: the usage text) or stderr, with a line end. */
static void __attribute__((noreturn)) finish(int status, const void* text, size_t len) {
  FILE* to = status == 0 ? stdout : stderr;
  fwrite(text, 1, len, to);
  if (len == 0 || ((const char*)text)[len - 1] != '\n') fputc('\n', to);
  exit(status);
}

/* A file error: status 1, as mosquitto_passwd's; the errno's name, as the Node host says it. */
static void __attribute__((noreturn)) file_error(const char* what, const char* file) {
  char text[4200];
  int n = snprintf(text, sizeof text, "Error: cannot %s %s: %s", what, file, strerrorname_np(errno));
  finish(1, text, n < (int)sizeof text ? (size_t)n : sizeof text - 1);
}

/* One step of the core, its input (`len` bytes) already in the window as far as it fits;
 * a refusal ends the process with the core's message and status. */
static uint32_t step(uint32_t which, size_t len) {
  int32_t r = core_passwd(which, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
  if (r >= 0) return (uint32_t)r;
  uint32_t a = (uint32_t)-(int64_t)r;
  finish((int)(a >> 24), window, a & 0xFFFFFF);
}

/* `len` bytes into the window at `at`, as far as they fit. */
static void put(size_t at, const void* bytes, size_t len) {
  if (at < capacity) memcpy(window + at, bytes, len < capacity - at ? len : capacity - at);
}

static struct termios saved;
static int echo_off;

static void restore_echo(void) {
  if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  echo_off = 0;
}

static void on_interrupt(int sig) {
  restore_echo();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* One line from stdin (malloc'd, without its line end), without echo on a terminal; NULL
 * at the end of the input before anything was typed. */
static char* read_secret(size_t* len) {
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
    struct termios quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  char* line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  restore_echo();
  if (n < 0) return free(line), NULL;
  if (n > 0 && line[n - 1] == '\n') n--;
  if (n > 0 && line[n - 1] == '\r') n--;
  *len = (size_t)n;
  return line;
}

int passwd_main(int argc, char** argv, uint8_t* window_, uint32_t capacity_) {
  window = window_;
  capacity = capacity_;
  /* the arguments, each ended by a NUL byte */
  size_t n = 0;
  for (int i = 0; i < argc; i++) {
    put(n, argv[i], strlen(argv[i]) + 1);
    n += strlen(argv[i]) + 1;
  }
  uint32_t plan = step(PASSWD_STEP_ARGS, n);
  char* file = strndup((const char*)window, plan & 0xFFFFFF);
  uint32_t todo = plan >> 24;

  uint8_t* old = NULL;
  size_t old_len = 0;
  mode_t mode = 0600;
  if (!(todo & PASSWD_TODO_CREATE)) {
    FILE* f = fopen(file, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) < 0) file_error("read", file);
    mode = st.st_mode & 07777;
    old = malloc((size_t)st.st_size + 1);
    if (old == NULL) file_error("read", file);
    old_len = fread(old, 1, (size_t)st.st_size, f);
    if (ferror(f)) file_error("read", file);
    fclose(f);
  }

  if (todo & PASSWD_TODO_ASK) {
    char* entries = NULL;
    size_t got = 0;
    for (uint32_t which = 0; which < 2; which++) {
      uint32_t p = step(PASSWD_STEP_PROMPT, which); /* len: which prompt */
      fwrite(window, 1, p, stdout);
      fflush(stdout);
      size_t len = 0;
      char* line = read_secret(&len);
      fputc('\n', stdout);
      if (line == NULL) break;
      if ((entries = realloc(entries, got + len + 1)) == NULL) finish(1, "Error: out of memory", 20);
      memcpy(entries + got, line, len);
      entries[got + len] = 0;
      got += len + 1;
      free(line);
    }
    fflush(stdout);
    put(0, entries, got);
    step(PASSWD_STEP_ENTRIES, got);
    free(entries);
  }

  if (RAND_bytes(window, PASSWD_INPUT_RANDOM_BYTES) != 1) finish(1, "Error: no random bytes (RAND_bytes)", 35);
  put(PASSWD_INPUT_RANDOM_BYTES, old, old_len);
  uint32_t len = step(PASSWD_STEP_EDIT, PASSWD_INPUT_RANDOM_BYTES + old_len);

  /* next to the file, then renamed over it: a reader sees the old file or the new one */
  char* d = strdup(file);
  char* b = strdup(file);
  char temp[4200];
  snprintf(temp, sizeof temp, "%s/.%s.%d.tmp", dirname(d), basename(b), (int)getpid());
  int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) file_error("write", file);
  for (uint32_t done = 0; done < len;) {
    ssize_t w = write(fd, window + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (uint32_t)w;
  }
  int failed = fchmod(fd, mode) < 0 || fsync(fd) < 0 || lseek(fd, 0, SEEK_CUR) != (off_t)len;
  if (close(fd) < 0 || failed || rename(temp, file) < 0) {
    int e = errno;
    unlink(temp);
    errno = e;
    file_error("write", file);
  }
  return 0;
}
