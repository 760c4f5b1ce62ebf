#!/usr/bin/env node
// The core's vocabulary for the hosts, read from the core's own sources, so that no host
// keeps a copy of it (DESIGN §3): the counters (Stat, assembly/stats.ts), the settings
// (Setting, LogTo and Text, assembly/settings.ts), close reasons and log levels (assembly/host.ts), the
// fixed tables (Table, assembly/budget.ts) and the option table with its help texts
// (assembly/options.ts), from which the one --help text is made. Writes
//
//   host/generated/vocab.ts   for the Node host (host/core.ts, host/cli.ts) and the tests
//   host/generated/vocab.h    for the C hosts (host/native/main.c, boards/mcu/main.c)
//
// Neither is committed (host/generated/ is ignored): `npm run build`, `npm run typecheck`,
// the test bundler, the fuzzer and the C build scripts run this first, so what the hosts
// compile against is never older than the core.
//
//   node scripts/vocab.mjs [--root DIR]   (DIR: another copy of the sources, as the
//                                          fuzzer's --rev makes; default: this repository)

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const rootArg = process.argv.indexOf("--root");
const root = rootArg >= 0 ? path.resolve(process.argv[rootArg + 1]) : repo;

/** Help texts are wrapped to this width, after a 28-column option column. */
const WIDTH = 100;
const COLUMN = 28;

// ---- reading the core ----

function read(file) {
  return readFileSync(path.join(root, file), "utf8");
}

function fail(message) {
  console.error(`vocab: ${message}`);
  process.exit(1);
}

/**
 * The members of `export const enum <name>` in `file`, in order: name, value and the text
 * of the `//` comment after it on its line (the only member there) or of a `/** *\/`
 * comment right above it.
 */
function parseEnum(file, name) {
  const text = read(file);
  const head = `export const enum ${name} {`;
  const start = text.indexOf(head);
  if (start < 0) fail(`${file}: no '${head}'`);
  const end = text.indexOf("}", start + head.length);
  const members = [];
  let doc = "";
  for (const line of text.slice(start + head.length, end).split("\n")) {
    const code = line.replace(/\/\/.*$/, "").replace(/\/\*\*.*?\*\//g, "");
    const comment = /\/\/\s*(.*?)\s*$/.exec(line)?.[1] ?? "";
    const docHere = /\/\*\*\s*(.*?)\s*\*\//.exec(line)?.[1];
    const found = [...code.matchAll(/([A-Za-z_]\w*)\s*=\s*(-?\d+)/g)];
    if (found.length === 0) {
      if (docHere !== undefined) doc = docHere;
      if (code.trim() !== "" && code.trim() !== ",") fail(`${file}: enum ${name}: cannot read '${line.trim()}'`);
      continue;
    }
    for (const m of found) members.push({ name: m[1], value: Number(m[2]), text: found.length === 1 ? comment || doc : doc });
    doc = "";
  }
  if (members.length === 0) fail(`${file}: enum ${name} has no members`);
  return members;
}

/** The rows of the option table (assembly/options.ts: `case N: return row(...)` lines,
 *  each followed by its help text in `//` lines), and the words of `Kind`. */
function parseOptions() {
  const file = "assembly/options.ts";
  const words = new Map();
  for (const k of parseEnum(file, "Kind")) {
    const word = /^([A-Z]+):/.exec(k.text)?.[1] ?? null;
    if (k.name !== "Flag" && word === null) fail(`${file}: Kind.${k.name} needs a value word ("N: ...") in its comment`);
    words.set(k.name, word);
  }
  const lines = read(file).split("\n");
  const rows = [];
  let current = null;
  for (const line of lines) {
    const m = /^\s*case (\d+): return row\((.*)\);\s*$/.exec(line);
    if (m) {
      const args = m[2].split(",").map((a) => a.trim());
      if (args.length !== 6 && args.length !== 7) fail(`${file}: row ${m[1]} needs 6 values (and maybe a one-letter form): ${line.trim()}`);
      const [nameText, setting, kind, min, max, initial, shortText] = args;
      const short = shortText === undefined ? null : /^"([a-z])"$/.exec(shortText)?.[1];
      if (short === undefined) fail(`${file}: row ${m[1]}: the one-letter form must be a lower-case "letter"`);
      const name = /^"([a-z][a-z0-9-]*)"$/.exec(nameText)?.[1];
      if (name === undefined) fail(`${file}: row ${m[1]}: the name must be a lower-case "literal"`);
      if (Number(m[1]) !== rows.length) fail(`${file}: row ${name} is numbered ${m[1]}, expected ${rows.length}`);
      const kindName = /^Kind\.(\w+)$/.exec(kind)?.[1];
      if (!words.has(kindName)) fail(`${file}: row ${name}: unknown kind ${kind}`);
      current = { name, short, setting: /^Setting\.(\w+)$/.exec(setting)?.[1] ?? null, kind: kindName, min, max, initial, help: [] };
      rows.push(current);
      continue;
    }
    const comment = /^\s*\/\/\s?(.*)$/.exec(line);
    if (current !== null && comment) {
      current.help.push(comment[1].trim());
      continue;
    }
    current = null;
  }
  if (rows.length === 0) fail(`${file}: no option rows`);
  for (const r of rows) {
    if (r.help.length === 0) fail(`${file}: option --${r.name} has no help text (// lines under its row)`);
    r.help = r.help.join(" ");
    r.value = words.get(r.kind);
  }
  return rows;
}

/** The board limits (config.ts constants that a board profile sets), for "the board's". */
function boardConstants() {
  return new Set([...read("assembly/config.ts").matchAll(/export const (\w+)\s*:\s*\w+\s*=\s*isDefined\(BOARD_/g)].map((m) => m[1]));
}

/** A row's default as --help shows it: a number in the user's unit, or "the board's". */
function renderDefault(row, board) {
  const e = row.initial;
  if (/^[\d\s.*+()-]+$/.test(e)) return String(Function(`return (${e});`)());
  if (board.has(e)) return "the board's";
  fail(`assembly/options.ts: --${row.name}: cannot show the default '${e}' (a number, or a board limit of config.ts)`);
}

const boards = readdirSync(path.join(repo, "boards")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();

// ---- the usage text ----

/** A space that `wrap` does not break at: "(default 1883)" stays on one line. */
const NBSP = "\u00a0";

function wrap(text, width) {
  const lines = [];
  let line = "";
  for (const word of text.split(/ +/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.map((l) => l.replaceAll(NBSP, " "));
}

function usageText(rows, board) {
  const out = ["Usage: midge [options]      (node dist/midge.mjs, or the native host build/native/midge-<board>)", ""];
  for (const r of rows) {
    let help = r.help.replaceAll("{boards}", boards.join(", "));
    const numeric = r.kind !== "Flag" && r.kind !== "Address" && r.kind !== "Name" && r.kind !== "File";
    if (numeric) {
      const shown = renderDefault(r, board);
      help += ` ${(shown === "the board's" ? "(default: the board's)" : `(default ${shown})`).replaceAll(" ", NBSP)}`;
    }
    const head = `  ${r.short ? `-${r.short}, ` : ""}--${r.name}${r.value ? ` ${r.value}` : ""}`;
    const body = wrap(help, WIDTH - COLUMN);
    out.push(head.length < COLUMN ? head.padEnd(COLUMN) + body[0] : head);
    for (const l of head.length < COLUMN ? body.slice(1) : body) out.push(" ".repeat(COLUMN) + l);
  }
  return out.join("\n") + "\n";
}

// ---- names in each language ----

const camel = (s) => s[0].toLowerCase() + s.slice(1);
const pascal = (flag) => flag.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("");
const upperSnake = (s) => s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/-/g, "_").toUpperCase();
const cString = (s) => JSON.stringify(s); // ASCII only: JSON escapes are C escapes

const stat = parseEnum("assembly/stats.ts", "Stat");
const setting = parseEnum("assembly/settings.ts", "Setting");
const logTo = parseEnum("assembly/settings.ts", "LogTo");
const textId = parseEnum("assembly/settings.ts", "Text");
const tlsField = parseEnum("assembly/settings.ts", "TlsField");
const tlsFlag = parseEnum("assembly/settings.ts", "TlsFlag");
const bridgeField = parseEnum("assembly/settings.ts", "BridgeField");
const closeReason = parseEnum("assembly/host.ts", "CloseReason");
const logLevel = parseEnum("assembly/host.ts", "LogLevel");
const table = parseEnum("assembly/budget.ts", "Table");
const passwdEnums = ["PasswdStep", "PasswdTodo", "PasswdInput"].map((name) => [name, parseEnum("assembly/auth/passwd.ts", name)]);
const rows = parseOptions();
const board = boardConstants();

const coreVersion = /VERSION = "([^"]+)"/.exec(read("assembly/version.ts"))?.[1];
const packageVersion = JSON.parse(read("package.json")).version;
if (coreVersion !== packageVersion) fail(`assembly/version.ts says ${coreVersion}, package.json ${packageVersion}: keep them the same`);

const statCount = stat.find((m) => m.name === "COUNT")?.value;
const stats = stat.filter((m) => m.name !== "COUNT");
if (statCount !== stats.length) fail(`assembly/stats.ts: Stat.COUNT is ${statCount}, but there are ${stats.length} counters`);
stats.forEach((m, i) => m.value === i || fail(`assembly/stats.ts: Stat.${m.name} is ${m.value}, expected ${i}`));
const tables = table.filter((m) => m.name !== "COUNT");
tables.forEach((m, i) => (m.value === i && m.text) || fail(`assembly/budget.ts: Table.${m.name} must be ${i} and have its name in a comment`));
const reasons = closeReason.filter((m) => m.value >= 0);
reasons.forEach((m, i) => (m.value === i && m.text) || fail(`assembly/host.ts: CloseReason.${m.name} must be ${i} and have its text in a comment`));
for (const r of rows) {
  if (r.setting !== null && !setting.some((s) => s.name === r.setting)) fail(`assembly/options.ts: --${r.name}: no Setting.${r.setting}`);
}
const usage = usageText(rows, board);
if (!/^[\x20-\x7e\n]*$/.test(usage)) fail("the usage text must be printable ASCII");

// ---- host/generated/vocab.ts ----

const constObject = (members) => `{\n${members.map((m) => `  ${m.name}: ${m.value},${m.text ? ` // ${m.text}` : ""}`).join("\n")}\n} as const`;

const ts = `// Generated by scripts/vocab.mjs from the core's sources (assembly/); do not edit.

/** Counters readable with \`stat(id)\` (assembly/stats.ts \`Stat\`). */
export const Stat = ${constObject(stats)};
/** Each counter's name in log lines, by id. */
export const statNames: readonly string[] = ${JSON.stringify(stats.map((m) => camel(m.name)))};

/** Settings of \`configure\` and \`option\` (assembly/settings.ts \`Setting\`). */
export const Setting = ${constObject(setting)};
/** Bits of the LogDest setting: where log lines go (assembly/settings.ts \`LogTo\`). */
export const LogTo = ${constObject(logTo)};
/** What \`text(id)\` answers (assembly/settings.ts \`Text\`). */
export const Text = ${constObject(textId)};
/** The fields of a listener's TLS settings, and its flags (assembly/settings.ts \`TlsField\`, \`TlsFlag\`). */
export const TlsField = ${constObject(tlsField)};
export const TlsFlag = ${constObject(tlsFlag)};
/** The fields of a bridge's TLS settings (assembly/settings.ts \`BridgeField\`): text(Text.Bridge + b * 8 + field). */
export const BridgeField = ${constObject(bridgeField)};

/** Why the core closes a connection (assembly/host.ts \`CloseReason\`). */
export const CloseReason = ${constObject(closeReason)};
/** How a log line says each close reason, by value. */
export const closeReasonTexts: readonly string[] = ${JSON.stringify(reasons.map((m) => m.text))};

/** Levels of the \`log\` import (assembly/host.ts \`LogLevel\`). */
export const LogLevel = ${constObject(logLevel)};
/** Each level's name in log lines. */
export const logLevelNames: Readonly<Record<number, string>> = {${logLevel.map((m) => ` ${m.value}: ${JSON.stringify(m.name.toLowerCase())}`).join(",")} };

/** The tables whose sizes \`budget(id)\` reports, by id (assembly/budget.ts \`Table\`). */
export const tableNames: readonly string[] = ${JSON.stringify(tables.map((m) => m.text))};

/** \`midge passwd\`'s steps, what the host must do, and what it hands in (assembly/auth/passwd.ts). */
${passwdEnums.map(([name, members]) => `export const ${name} = ${constObject(members)};`).join("\n")}

/** The options (assembly/options.ts), in --help order: \`Option.X\` is the index of option X. */
export const Option = {\n${rows.map((r, i) => `  ${pascal(r.name)}: ${i},`).join("\n")}\n} as const;
/** Each option's name as written, its one-letter form (null: none) and the word for its
 *  value (null: a flag, which takes none). */
export const options: readonly { readonly name: string; readonly short: string | null; readonly value: string | null }[] = [
${rows.map((r) => `  { name: ${JSON.stringify(`--${r.name}`)}, short: ${JSON.stringify(r.short ? `-${r.short}` : null)}, value: ${JSON.stringify(r.value)} },`).join("\n")}
];

/** The --help text, the same for every host. */
export const usage = ${JSON.stringify(usage)};
`;

// ---- host/generated/vocab.h ----

const cEnum = (prefix, members) => `enum {\n${members.map((m) => `  ${prefix}${upperSnake(m.name)} = ${m.value},`).join("\n")}\n};`;
const cStrings = (name, list) => `static const char* const ${name}[] __attribute__((unused)) = {\n${list.map((s) => `  ${cString(s)},`).join("\n")}\n};`;

const h = `/* Generated by scripts/vocab.mjs from the core's sources (assembly/); do not edit. */
#ifndef MIDGE_VOCAB_H
#define MIDGE_VOCAB_H

/* Counters readable with stat(id) (assembly/stats.ts Stat), and their names in log lines. */
${cEnum("STAT_", stat)}
${cStrings("STAT_NAMES", stats.map((m) => camel(m.name)))}

/* Settings of configure and option (assembly/settings.ts Setting). */
${cEnum("SETTING_", setting)}
/* Bits of the LogDest setting (assembly/settings.ts LogTo), and what text(id) answers (Text). */
${cEnum("LOG_TO_", logTo)}
${cEnum("TEXT_", textId)}
/* The fields of a listener's TLS settings (TlsField), and its flags (TlsFlag). */
${cEnum("TLS_FIELD_", tlsField)}
${cEnum("TLS_FLAG_", tlsFlag)}
/* The fields of a bridge's TLS settings: text(TEXT_BRIDGE + b * 8 + field). */
${cEnum("BRIDGE_FIELD_", bridgeField)}

/* Why the core closes a connection (assembly/host.ts CloseReason), and how logs say it. */
${cEnum("CLOSE_", closeReason)}
${cStrings("CLOSE_REASON_TEXTS", reasons.map((m) => m.text))}

/* Levels of the log import (assembly/host.ts LogLevel), and their names. */
${cEnum("LOG_", logLevel)}
static const char* const LOG_LEVEL_NAMES[] __attribute__((unused)) = {${logLevel.map((m) => ` [${m.value}] = ${cString(m.name.toLowerCase())}`).join(",")} };

/* The tables whose sizes budget(id) reports (assembly/budget.ts Table). */
${cStrings("TABLE_NAMES", tables.map((m) => m.text))}

/* midge passwd's steps, what the host must do, and what it hands in (assembly/auth/passwd.ts). */
${passwdEnums.map(([name, members]) => cEnum(`${upperSnake(name)}_`, members)).join("\n")}

/* The options (assembly/options.ts), in --help order: each one's name as written, its
 * one-letter form (NULL: none) and the word for its value (NULL: a flag, which takes none). */
enum {
${rows.map((r, i) => `  OPTION_${upperSnake(r.name)} = ${i},`).join("\n")}
  OPTION_COUNT = ${rows.length}
};
static const struct { const char* name; const char* short_name; const char* value; } OPTIONS[] __attribute__((unused)) = {
${rows.map((r) => `  {${cString(`--${r.name}`)}, ${r.short ? cString(`-${r.short}`) : "NULL"}, ${r.value ? cString(r.value) : "NULL"}},`).join("\n")}
};

/* The --help text, the same for every host. */
static const char USAGE[] __attribute__((unused)) =
${usage.split("\n").slice(0, -1).map((l) => `    ${cString(l + "\n")}`).join("\n")};

#endif
`;

const out = path.join(root, "host", "generated");
mkdirSync(out, { recursive: true });
writeIfChanged(path.join(out, "vocab.ts"), ts);
// The status page the core serves (assembly/http/serve.ts): assembly/http/status.html as an
// AssemblyScript string, ASCII only (the core sends each character as one byte).
const page = read("assembly/http/status.html");
if (/[^\x00-\x7f]/.test(page)) fail("assembly/http/status.html must be ASCII (write other characters as &#NNNN;)");
writeIfChanged(path.join(root, "assembly/http/page.ts"),
  `// Generated by scripts/vocab.mjs from status.html: edit that file, not this one.\n` +
  `// (A function, not a constant: a board without HTTP then carries none of it.)\n` +
  `export function page(): string { return ${JSON.stringify(page)}; }\n`);
writeIfChanged(path.join(out, "vocab.h"), h);

/** Unchanged output keeps its time stamp, so nothing rebuilds for it. */
function writeIfChanged(file, text) {
  let old = null;
  try {
    old = readFileSync(file, "utf8");
  } catch {
    // first time
  }
  if (old !== text) writeFileSync(file, text);
}
