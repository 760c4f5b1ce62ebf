// The store service of docs/ABI.md (Persistence) on Node's fs: append what the core
// gives, write it once per event-loop turn (and sync it when the core asks), compact by
// writing a new file and renaming it. The file's format and every decision are the core's.

import { closeSync, fdatasyncSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { setImmediate } from "node:timers";

/** The error codes of `persisted` and `persistReplace`: 1 no space, 2 not permitted, 3 other, 4 no such directory. */
function errorCode(error: unknown): number {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return 1;
  if (code === "EROFS" || code === "EACCES" || code === "EPERM") return 2;
  if (code === "ENOENT" || code === "ENOTDIR") return 4;
  return 3;
}

export class PersistFile {
  private fd = -1;        // the file appended to (-1: none yet, or a failed write)
  private next = -1;      // PATH.new between persistReplace(0) and (1)
  private keepOld = false;
  /** What the core appended since the last flush: copied into one growing buffer (a
   *  record is a few dozen bytes; an allocation each would cost more than the copy). */
  private pending = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private total = 0;      // bytes the core passed in all: what `persisted` reports
  private flushing = false;
  private error = 0;      // a writeNow that failed: reported by the flush
  private sync = false;

  constructor(readonly file: string, private readonly done: (bytes: number, error: number) => void) {}

  /** Hand the file to the core piece by piece (`feed` returns the bytes it took), then `end`. */
  readBack(capacity: number, feed: (piece: Uint8Array) => number, end: (error: number) => void): void {
    let fd: number;
    try {
      fd = openSync(this.file, "r");
    } catch (error) {
      return end((error as NodeJS.ErrnoException).code === "ENOENT" ? 0 : 3);
    }
    const window = Buffer.allocUnsafe(capacity);
    let kept = 0; // bytes at the start of `window` the core has not taken yet
    try {
      for (;;) {
        const n = readSync(fd, window, kept, capacity - kept, null);
        if (n === 0) break;
        const taken = feed(window.subarray(0, kept + n));
        kept = kept + n - taken;
        window.copy(window, 0, taken, taken + kept);
      }
    } catch {
      closeSync(fd);
      return end(3);
    }
    closeSync(fd);
    end(0);
  }

  write(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.pending.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.pending.length * 2, this.used + bytes.length));
      this.pending.copy(bigger, 0, 0, this.used);
      this.pending = bigger;
    }
    this.pending.set(bytes, this.used); // a copy: the core reuses its memory
    this.used += bytes.length;
    this.total += bytes.length;
  }

  /** Write what is pending to `fd`; nothing is pending afterwards, written or not. */
  private writePending(fd: number): void {
    const n = this.used;
    this.used = 0;
    for (let at = 0; at < n; ) at += writeSync(fd, this.pending, at, n - at);
  }

  /** After the current core call, before the next wait for events. */
  flush(sync: boolean): void {
    this.sync ||= sync;
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flushNow());
  }

  /** Write what is pending now, without syncing: before the bytes a core call sent go to
   *  the sockets, so that no acknowledgement leaves before its record is in the file (a
   *  crash of the broker alone then loses nothing). An error waits for the flush. */
  writeNow(): void {
    if (this.used === 0 || this.fd < 0 || this.error !== 0) return;
    try {
      this.writePending(this.fd);
    } catch (e) {
      this.error = errorCode(e);
      this.used = 0;
    }
  }

  /** Write (and sync) what is pending now; at shutdown too. */
  flushNow(): void {
    if (!this.flushing) return;
    this.flushing = false;
    const sync = this.sync;
    this.sync = false;
    let error = this.error;
    this.error = 0;
    try {
      if (error !== 0) throw Object.assign(new Error("write failed"), { code: "EIO" });
      if (this.fd < 0) throw Object.assign(new Error("no file"), { code: "EIO" });
      this.writePending(this.fd);
      if (sync) fdatasyncSync(this.fd);
    } catch (e) {
      if (error === 0) error = errorCode(e);
    }
    this.used = 0;
    this.done(this.total, error);
  }

  /** persistReplace: 0 or 2 begin PATH.new, 1 finish it and rename it over PATH. */
  replace(step: number): number {
    try {
      if (step !== 1) {
        this.used = 0; // the new file supersedes what was not written yet
        if (this.next >= 0) closeSync(this.next);
        this.next = openSync(`${this.file}.new`, "w");
        this.keepOld = step === 2;
        return 0;
      }
      const fd = this.next;
      this.next = -1;
      this.writePending(fd);
      fdatasyncSync(fd);
      if (this.keepOld) renameSync(this.file, `${this.file}.old`);
      renameSync(`${this.file}.new`, this.file);
      if (this.fd >= 0) closeSync(this.fd);
      this.fd = fd; // renamed: appends go to it now, whatever the directory's sync says
      syncDirectory(path.dirname(this.file));
      return 0;
    } catch (error) {
      this.used = 0;
      if (this.next >= 0) closeSync(this.next);
      this.next = -1;
      rmSync(`${this.file}.new`, { force: true });
      return errorCode(error);
    }
  }
}

/** A rename is durable once its directory is synced. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
