/*
 * What both C hosts share (host/native/main.c: Linux, epoll; boards/mcu/main.c: a
 * microcontroller's poll loop): the wasm2c-compiled core's instance, the clock, the log
 * line, the core's `log` import, and the calls into the core, each turning a trap into a
 * logged, fatal exit. Header-only: each host is one translation unit. Include it after
 * midge_core.h's directory is on the include path (build.sh does).
 */
#ifndef MIDGE_CORE_GLUE_H
#define MIDGE_CORE_GLUE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "midge_core.h"
#include "vocab.h" /* the core's vocabulary (LOG_*, STAT_*, SETTING_*, OPTIONS, USAGE), by scripts/vocab.mjs */
#include "wasm-rt-impl.h"

/* A helper a host may not use (no warning), and never inlined: the setjmp of CORE keeps a frame of its own. */
#define GLUE static __attribute__((unused, noinline))

/* EX_USAGE and EX_SOFTWARE from sysexits.h: a bad command line; a bug (a core trap). */
enum { EXIT_USAGE = 2, EXIT_SOFTWARE = 70 };

/* The core's imports receive this (wasm2c passes the "env" instance to every import). */
struct Z_env_instance_t {
  Z_midge_instance_t core;
  int log_level;
  int log_dest;   /* bits of LOG_TO_* (SETTING_LOG_DEST): stderr, stdout, log_file */
  FILE* log_file; /* log_dest file, opened for appending by the host */
};
static struct Z_env_instance_t env;

/* Milliseconds on a monotonic clock, as the ABI's `now`. */
GLUE double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

GLUE uint8_t* memory_at(uint32_t ptr) { return env.core.w2c_memory.data + ptr; }

/* The Node host's log format: ISO time, level padded to 7, text; one write per line. */
GLUE void logf_(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
GLUE void logf_(int level, const char* fmt, ...) {
  if (level > env.log_level && level != LOG_FATAL) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char line[1200];
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-7s ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   level >= 0 && level <= LOG_FATAL && LOG_LEVEL_NAMES[level] ? LOG_LEVEL_NAMES[level] : "fatal");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (env.log_dest & LOG_TO_STDERR) fwrite(line, 1, (size_t)n, stderr);
  if (env.log_dest & LOG_TO_STDOUT) fwrite(line, 1, (size_t)n, stdout);
  if ((env.log_dest & LOG_TO_FILE) && env.log_file != NULL) fwrite(line, 1, (size_t)n, env.log_file);
}

/* The core's `log` import (docs/ABI.md). Level 9: a static UTF-16 string (ASCII is all
 * it holds), right before the core traps. */
void Z_envZ_log(struct Z_env_instance_t* e, u32 level, u32 ptr, u32 len) {
  (void)e;
  const uint8_t* p = memory_at(ptr);
  if (level == LOG_FATAL) {
    char text[256];
    uint32_t n = 0;
    for (uint32_t i = 0; i + 1 < len && n < sizeof text - 1; i += 2) text[n++] = (char)p[i];
    text[n] = 0;
    logf_(LOG_FATAL, "core: %s", text);
    return;
  }
  logf_((int)level, "%.*s", (int)len, (const char*)p);
}

GLUE void trap(const char* where) {
  logf_(LOG_FATAL, "core stopped in %s (a bug in the core); exiting", where);
  exit(EXIT_SOFTWARE);
}

/* Z_midgeZ_<name>(&env.core, ...): a trap longjmps back here and is fatal (the core's state is gone). */
#define CORE(name, ...) ({ if (wasm_rt_impl_try() != 0) trap(#name); Z_midgeZ_##name(&env.core, ##__VA_ARGS__); })

GLUE u32 core_open(void) { return CORE(open, now_ms()); }
/* A socket accepted on listener k (core_text(TEXT_LISTENER + k)): the core speaks that
 * listener's protocol (WebSockets included) on it. */
GLUE u32 core_open_on(u32 listener) { return CORE(openOn, listener, now_ms()); }
GLUE void core_listening(u32 listener, u32 port) { CORE(listening, listener, port); }
GLUE u32 core_feed(u32 id, u32 len) { return CORE(feed, id, len, now_ms()); }
GLUE u32 core_needed(void) { return CORE(needed); }
GLUE void core_drained(u32 id) { CORE(drained, id, now_ms()); }
GLUE void core_closed(u32 id) { CORE(closed, id, now_ms()); }
GLUE void core_dialed(u32 id) { CORE(dialed, id, now_ms()); }
GLUE u32 core_tick(void) { return CORE(tick, now_ms()); }
GLUE void core_shutdown(void) { CORE(shutdown, now_ms()); }
GLUE f64 core_stat(u32 id) { return CORE(stat, id); }
GLUE f64 core_configure(u32 key, f64 value) { return CORE(configure, key, value); }

/* One option as the user wrote it ("--max-inflight", "10"; "" for a flag or a missing
 * value), parsed and checked by the core, which sets the setting it names (read it back
 * with core_configure(key, -1)): NULL when accepted, else the core's message (valid until
 * the next call). Both go through the input window; a value too long for it is cut there,
 * at a character boundary, as the Node host cuts it. */
GLUE const char* core_option(const char* name, const char* value) {
  static char message[512];
  u32 base = CORE(inputBuffer), cap = CORE(inputCapacity);
  size_t n = strlen(name), v = strlen(value);
  if (n > cap) n = cap;
  if (v > cap - n) {
    v = cap - n;
    while (v > 0 && ((uint8_t)value[v] & 0xC0) == 0x80) v--; /* not inside a UTF-8 sequence */
  }
  memcpy(memory_at(base), name, n);
  memcpy(memory_at(base + (u32)n), value, v);
  int32_t result = (int32_t)CORE(option, base, (u32)n, base + (u32)n, (u32)v);
  if (result >= 0) return NULL;
  snprintf(message, sizeof message, "%.*s", (int)-(int64_t)result, (const char*)memory_at(base));
  return message;
}

/* The text the core left at its input window by the last call (a message, a path),
 * NUL-terminated; valid until the next call. */
static char said_text[4096];
static u32 said_len;
GLUE const char* core_said(void) { return said_text; }
GLUE void keep_said(u32 len) {
  u32 base = CORE(inputBuffer);
  said_len = len < sizeof said_text - 1 ? len : (u32)sizeof said_text - 1;
  memcpy(said_text, memory_at(base), said_len);
  said_text[said_len] = 0;
}

/* One config file's bytes for the core (docs/ABI.md `config`): what fits in the input
 * window is written (the core refuses a larger file itself). Returns the core's answer;
 * a message or an include_dir path is then at core_said(). */
GLUE int32_t core_config(const char* name, const uint8_t* text, size_t len, int part) {
  u32 base = CORE(inputBuffer), cap = CORE(inputCapacity);
  size_t n = strlen(name);
  if (n > cap) n = cap;
  size_t fits = len < cap - n ? len : cap - n;
  memcpy(memory_at(base), name, n);
  memcpy(memory_at(base + (u32)n), text, fits);
  u32 text_len = len > 0xFFFFFFFFu ? 0xFFFFFFFFu : (u32)len;
  int32_t r = (int32_t)CORE(config, base, (u32)n, base + (u32)n, text_len, (u32)part);
  if (r != 0) keep_said(r > 0 ? (u32)r : (u32)-(int64_t)r);
  return r;
}

/* Text the core holds for the host (docs/ABI.md `text`, TEXT_* in vocab.h): the listeners,
 * the note on who may connect, the paths of the password, ACL and log files. Valid until
 * the next call. */
GLUE const char* core_text(int id) {
  keep_said(CORE(text, (u32)id));
  return said_text;
}

/* Instantiate the core (its start function runs here) and call init; returns the packet
 * limit in force, and where the input window is. */
GLUE u32 core_start(u32 max_packet, uint32_t* input_ptr, uint32_t* input_capacity) {
  env.log_dest = LOG_TO_STDERR; /* the core's default, until the host reads its setting */
  wasm_rt_init();
  Z_midge_init_module();
  if (wasm_rt_impl_try() != 0) trap("start");
  Z_midge_instantiate(&env.core, &env);
  u32 packet_max = CORE(init, max_packet, (u32)env.log_level);
  *input_ptr = CORE(inputBuffer);
  *input_capacity = CORE(inputCapacity);
  return packet_max;
}

#endif
