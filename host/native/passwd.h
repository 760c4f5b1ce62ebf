/* `midge passwd` in the native host: host/native/passwd.c does the platform half (the
 * file, the prompts without echo, random bytes); main.c lends it the core. */
#ifndef MIDGE_PASSWD_H
#define MIDGE_PASSWD_H
#include <stdint.h>

/* The core's `passwd(step, len)` export (docs/ABI.md); a trap is fatal. In main.c. */
int32_t core_passwd(uint32_t step, uint32_t len);
/* Runs `midge passwd` with the arguments after `passwd`; returns the exit status.
 * `window`: the core's input window, `capacity` bytes. In passwd.c. */
int passwd_main(int argc, char** argv, uint8_t* window, uint32_t capacity);

#endif
