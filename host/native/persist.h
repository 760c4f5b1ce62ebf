/* The store service of docs/ABI.md (Persistence) in the native host: host/native/persist.c
 * appends what the core gives, writes it when the loop gets to it (and syncs it when the
 * core asks), and compacts by writing a new file and renaming it, as host/persist.ts does
 * for the Node host. The file's format and every decision are the core's; main.c lends it
 * the core (restore, restoreEnd, persisted). */
#ifndef MIDGE_PERSIST_H
#define MIDGE_PERSIST_H
#include <stdint.h>

/* The error codes of `persisted` and `persistReplace`. */
enum { STORE_OK = 0, STORE_NO_SPACE = 1, STORE_NOT_PERMITTED = 2, STORE_IO_ERROR = 3, STORE_NO_DIRECTORY = 4 };

/* The persistence file (text(5)); nothing is opened yet. */
void store_init(const char* path);
/* Hands the file to `feed` in pieces of at most `capacity` bytes, in file order; `feed`
 * returns the bytes it took, and the rest comes again, first, in the next piece. Returns
 * restoreEnd's error: 0 (also when the file does not exist), or 3 (it cannot be read). */
int store_read_back(uint32_t capacity, uint32_t (*feed)(const uint8_t* piece, uint32_t len));
/* persistWrite: a copy of these bytes, kept until the flush. */
void store_append(const uint8_t* bytes, uint32_t len);
/* persistFlush: a flush is due (calls before it merge, their `sync` or'ed). */
void store_ask_flush(int sync);
int store_flush_due(void);
/* Write what is pending now, without syncing: called before the bytes a core call sent go
   to the sockets, so that no acknowledgement leaves before its record is in the file (a
   crash of the broker alone then loses nothing). Errors wait for store_flush. */
void store_write_now(void);
/* The flush: what was appended is written to the file (and fdatasync'ed if asked).
 * Returns the error code for `persisted`; *total: the bytes appended since the start. */
int store_flush(double* total);
/* persistReplace(step): 0 or 2 begin PATH.new, 1 finish it and rename it over PATH. */
int store_replace(int step);

#endif
