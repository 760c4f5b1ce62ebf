// `midge passwd ...`: the platform half of mosquitto_passwd. The core reads the command
// line, says what to do and makes the new file (docs/ABI.md, `passwd`); this file reads
// the file, asks for the password without echo, hands in random bytes and writes the
// result next to the file, then renames it over. host/native/passwd.c does the same in C.

import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import type { Core } from "./core";
import { PasswdInput, PasswdStep, PasswdTodo } from "./generated/vocab";

const encoder = new TextEncoder();

function exit(status: number, message: string): never {
  (status === 0 ? process.stdout : process.stderr).write(message.endsWith("\n") ? message : `${message}\n`);
  process.exit(status);
}

/** A file error: status 1, as mosquitto_passwd's; the errno's name, as the rest of the host says it. */
function fileError(what: string, file: string, error: unknown): never {
  exit(1, `Error: cannot ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
}

/** Runs `midge passwd` with `args` (what follows `passwd`), and exits. */
export async function passwd(core: Core, args: string[]): Promise<never> {
  const step = (n: number, input: Uint8Array) => {
    const said = core.passwd(n, input);
    if ("refused" in said) exit(said.status, said.refused);
    return said;
  };
  const plan = step(PasswdStep.Args, encoder.encode(args.map((a) => `${a}\0`).join("")));
  const file = new TextDecoder().decode(plan.text);
  let old: Uint8Array = new Uint8Array(0);
  let mode = 0o600;
  if (!(plan.value & PasswdTodo.Create)) {
    try {
      old = readFileSync(file);
      mode = statSync(file).mode & 0o7777;
    } catch (error) {
      fileError("read", file, error);
    }
  }
  if (plan.value & PasswdTodo.Ask) {
    const entries: Uint8Array[] = [];
    const input = new StdinReader();
    for (const which of [0, 1]) {
      process.stdout.write(step(PasswdStep.Prompt, new Uint8Array(which)).text); // len: which prompt
      const entry = await input.line();
      process.stdout.write("\n");
      if (entry === null) break;
      entries.push(entry, new Uint8Array(1)); // each ended by a NUL byte
    }
    input.close();
    step(PasswdStep.Entries, Buffer.concat(entries));
  }
  const text = step(PasswdStep.Edit, Buffer.concat([randomBytes(PasswdInput.RandomBytes), old])).text;
  // next to the file, then renamed over it: a reader sees the old file or the new one
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temp, "wx", mode);
    try {
      chmodSync(temp, mode); // the umask aside
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    try { unlinkSync(temp); } catch { /* not made */ }
    fileError("write", file, error);
  }
  process.exit(0);
}

/** Lines from stdin as bytes: on a terminal in raw mode, without echo (Enter ends a line,
 *  Backspace erases, Ctrl-C stops, Ctrl-D on an empty line is the end); from a pipe or
 *  a file, up to each '\n' (a '\r' before it dropped). */
class StdinReader {
  private readonly tty = process.stdin.isTTY === true;
  private queue: number[] = [];
  private ended = false;
  private wake: (() => void) | null = null;

  constructor() {
    if (this.tty) process.stdin.setRawMode(true);
    process.stdin.on("data", (chunk: Buffer) => { this.queue.push(...chunk); this.wake?.(); });
    process.stdin.on("end", () => { this.ended = true; this.wake?.(); });
  }

  /** The next line, or null at the end of the input before anything was typed. */
  async line(): Promise<Uint8Array | null> {
    const bytes: number[] = [];
    for (;;) {
      while (this.queue.length === 0) {
        if (this.ended) return bytes.length > 0 ? Uint8Array.from(bytes) : null;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      const c = this.queue.shift()!;
      if (c === 0x0a || (this.tty && c === 0x0d)) break;
      if (this.tty && c === 0x03) {
        this.close();
        exit(130, "");
      }
      if (this.tty && c === 0x04 && bytes.length === 0) return null;
      if (this.tty && (c === 0x7f || c === 0x08)) {
        while (bytes.length > 0 && (bytes.pop()! & 0xc0) === 0x80); // a whole UTF-8 character
        continue;
      }
      bytes.push(c);
    }
    if (!this.tty && bytes.at(-1) === 0x0d) bytes.pop();
    return Uint8Array.from(bytes);
  }

  close(): void {
    if (this.tty) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}
