// The `midge` command: flags, logging, a TCP listener per configured listener, and a clean shutdown.

import { openSync, readFileSync, readdirSync, writeSync } from "node:fs";
import process from "node:process";
import { setTimeout } from "node:timers";
import { boards } from "midge:boards";
import { version } from "../package.json";
import { Core, Level, Setting, statNames } from "./core";
import { LogTo, Option, Text, logLevelNames, options as optionTable, usage } from "./generated/vocab";
import { type TcpListener, dialTcp, formatAddress, listenTcp } from "./listeners/tcp";
import { type TlsSettings, bridgeTlsOptions, tlsSettings } from "./listeners/tls";
import { passwd } from "./passwd";

/** EX_USAGE and EX_SOFTWARE from sysexits.h: a bad command line; a bug (a core trap). */
const EXIT_USAGE = 2;
const EXIT_SOFTWARE = 70;

function usageError(message: string): never {
  process.stderr.write(`midge: ${message}\n\n${usage}`);
  process.exit(EXIT_USAGE);
}

// The command line as [name, value] pairs in order, split by the option table: an option
// that takes a value takes the next argument ("" when there is none: the core then says it
// needs one); any other argument stands alone, and the core says whether it is an option.
// host/native/main.c splits it the same way.
type Given = [name: string, value: string];
const args = process.argv.slice(2);
// `midge passwd ...`: mosquitto_passwd, with the default board's core (host/passwd.ts).
if (args[0] === "passwd") {
  await passwd(await Core.load(boards.pi, {
    log: () => {},
    fatal: (e) => { process.stderr.write(`midge: core stopped (a bug in the core): ${e.message}\n`); process.exit(EXIT_SOFTWARE); },
  }), args.slice(1));
}
const given: Given[] = [];
for (let i = 0; i < args.length; i++) {
  const takesValue = optionTable.find((o) => o.name === args[i] || o.short === args[i])?.value != null;
  given.push([args[i], takesValue ? (args[++i] ?? "") : ""]);
}
const isOption = (g: Given, option: number) => g[0] === optionTable[option].name || g[0] === optionTable[option].short;
/** The value of the last `option` given (the last one wins, as in the core), or undefined. */
const lastValue = (option: number) => given.filter((g) => isOption(g, option)).pop()?.[1];

// The board and the log level, which the core is started with; every option (these too)
// is then checked by the core's parser, in order.
const board = lastValue(Option.Board) || "pi"; // "" is the core's to refuse
if (!Object.hasOwn(boards, board)) usageError(`unknown board '${board}'; boards: ${Object.keys(boards).join(", ")}`);
let threshold: number = lastValue(Option.Verbose) !== undefined ? Level.Debug : Level.Info;
let logTo: number = LogTo.Stderr; // log_dest: bits of LogTo
let logFile = -1; // the descriptor of log_dest file, opened for appending

function log(level: number, text: string): void {
  if (level > threshold && level !== Level.Fatal) return;
  const name = logLevelNames[level] ?? `level${level}`;
  const line = `${new Date().toISOString()} ${name.padEnd(7)} ${text}\n`;
  if (logTo & LogTo.Stderr) process.stderr.write(line);
  if (logTo & LogTo.Stdout) process.stdout.write(line);
  if (logTo & LogTo.File && logFile >= 0) writeSync(logFile, line);
}

function exitWith(status: number, level: number, text: string): never {
  log(level, text);
  process.exit(status);
}

/** A config file that cannot be read, or a line of it the core refuses: status 2, as for a
 *  bad command line (without the --help text). host/native/main.c says the same. */
function configError(message: string): never {
  process.stderr.write(`midge: ${message}\n`);
  process.exit(EXIT_USAGE);
}

/** A file's bytes, or the end with the error's code (ENOENT), as the native host says it. */
function readOrExit(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (error) {
    configError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
}

/** The config file, handed to the core (which parses it: `config` in docs/ABI.md), with the
 *  `*.conf` files of its include_dir in Mosquitto's (strcasecmp) order, then the rest of it. */
function readConfig(core: Core, file: string): void {
  const main = readOrExit(file);
  let said = core.config(file, main, 0);
  while ("includeDir" in said) {
    const dir = said.includeDir;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      configError(`cannot open include_dir ${dir}: ${(error as NodeJS.ErrnoException).code}`);
    }
    const caseless = (a: string, b: string) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0);
    for (const name of names.filter((n) => n.length > 5 && n.endsWith(".conf")).sort(caseless)) {
      const included = core.config(`${dir}/${name}`, readOrExit(`${dir}/${name}`), 1);
      if ("refused" in included) configError(included.refused);
    }
    said = core.config(file, main, 2);
  }
  if ("refused" in said) configError(said.refused);
}

/** A trap in the core: its state is lost, so there is nothing safe left to do. */
function fatal(error: Error): never {
  exitWith(EXIT_SOFTWARE, Level.Fatal, `core stopped (a bug in the core): ${error.message}`);
}

let core: Core;
try {
  core = await Core.load(boards[board], { logLevel: threshold, log, fatal });
} catch (error) {
  if (error instanceof WebAssembly.RuntimeError) fatal(error);
  exitWith(EXIT_SOFTWARE, Level.Error, `cannot start the ${board} core: ${(error as Error).message}`);
}

// The config file first (unless the command line asks only for --help or --version), then
// every option through the core's parser, in order ($MIDGE_PORT first, so --port wins):
// options override the file. The host acts on its own ones.
const configFile = lastValue(Option.Config);
if (configFile && !given.some((g) => isOption(g, Option.Help) || isOption(g, Option.Version))) readConfig(core, configFile);
const envPort = process.env.MIDGE_PORT;
if (envPort !== undefined && envPort !== "") {
  const refused = core.option(optionTable[Option.Port].name, envPort);
  if (refused !== null) usageError(`$MIDGE_PORT: ${refused}`);
}
for (const g of given) {
  const refused = core.option(g[0], g[1]);
  if (refused !== null) usageError(refused);
  if (isOption(g, Option.Help) || isOption(g, Option.Version)) {
    process.stdout.write(isOption(g, Option.Help) ? usage : `midge ${version}\n`);
    process.exit(0);
  }
}
// The password file (text 2, part 3) and the ACL file (text 3, part 4) the config names,
// read and handed to the core; at start a failure ends the broker, on SIGHUP it is logged
// and the core keeps the rules it had (it checks a whole file before it loads it).
const ruleFiles = [core.text(Text.PasswordFile), core.text(Text.AclFile)];
function readRuleFiles(reload: boolean): void {
  ruleFiles.forEach((file, k) => {
    if (file === "") return;
    let said: string | undefined;
    try {
      const result = core.config(file, readFileSync(file), 3 + k);
      if ("refused" in result) said = result.refused;
    } catch (error) {
      said = `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`;
    }
    if (said === undefined) return;
    if (!reload) configError(said);
    log(Level.Error, `SIGHUP: ${said}; the rules in force stay`);
  });
}
readRuleFiles(false);
const note = core.text(Text.Note); // who may connect: loopback only, anonymous clients or not
threshold = core.configure(Setting.LogLevel, -1);
logTo = core.configure(Setting.LogDest, -1);
const logPath = core.text(Text.LogFile);
if (logTo & LogTo.File) {
  try {
    logFile = openSync(logPath, "a");
  } catch (error) {
    process.stderr.write(`midge: cannot open log file ${logPath}: ${(error as NodeJS.ErrnoException).code}\n`);
    process.exit(1);
  }
}
const statsInterval = core.configure(Setting.StatsInterval, -1);
// A signal while the broker starts (no client yet): write what the core asked, then go.
const stopEarly = () => {
  core.flushStore();
  process.exit(0);
};
process.on("SIGINT", stopEarly);
process.on("SIGTERM", stopEarly);

// Persistence: the file is read back before any client can connect (as Mosquitto does).
const persistenceFile = core.text(Text.PersistenceFile);
if (persistenceFile !== "") core.restore(persistenceFile);

// Every listener the core holds ("PORT ADDRESS" or "PORT ADDRESS websockets"; the first is
// --port's and --host's), each its own socket into the one core, which it tells the
// listener of each connection (WebSockets are the core's), and its line (the first with
// the version and the note). A TLS listener's certificates and keys are read and checked
// first: one that cannot be read or does not match stops the start (status 1,
// host/native/tls.c says the same).
const listeners: TcpListener[] = [];
for (let k = 0, said = core.text(Text.Listener); said !== ""; said = core.text(Text.Listener + ++k)) {
  const [portText, host, protocol = ""] = said.split(" ");
  const port = Number(portText);
  let tls: TlsSettings | null;
  try {
    tls = tlsSettings(core, k);
  } catch (error) {
    process.stderr.write(`midge: ${(error as Error).message}\n`);
    process.exit(1);
  }
  let l: TcpListener;
  try {
    l = await listenTcp(core, host, port, log, threshold >= Level.Debug, k, tls);
  } catch (error) {
    exitWith(1, Level.Error, `cannot listen on ${formatAddress(host, port)}: ${(error as Error).message}`);
  }
  listeners.push(l);
  core.listening(k, l.port);
  const kind = [...(tls ? ["TLS"] : []), ...(protocol ? [protocol] : [])].join(", ");
  log(Level.Notice, `${k === 0 ? `midge ${version} ` : ""}listening on ${formatAddress(l.host, l.port)}${kind ? ` (${kind})` : ""}${k === 0 ? note : ""}`);
}
log(Level.Info, `board ${board}: packets up to ${core.maxPacketSize} bytes, ${core.memoryPages} pages of fixed memory`);
// Bridges: the core says when and where to connect (docs/ABI.md `dial`)
core.dialer = (id, host, port, bridge) => {
  let tls = null;
  try {
    tls = bridgeTlsOptions(core, bridge);
  } catch (error) {
    log(Level.Error, `bridge: ${(error as Error).message}`);
    tls = { ca: [], host: "", rejectUnauthorized: true }; // fails the handshake: the core tries again later
  }
  return dialTcp(core, log, threshold >= Level.Debug, id, host, port, tls);
};
core.startTicking();

// Counters: on a timer, on SIGUSR2, and at shutdown.
const logStats = () => log(Level.Notice, `stats: ${statNames.map((name, id) => `${name}=${core.stat(id)}`).join(" ")}`);
if (statsInterval > 0) setInterval(logStats, statsInterval * 1000).unref();
process.on("SIGUSR2", logStats);
process.on("SIGHUP", () => {
  log(Level.Notice, "SIGHUP: reading the password and ACL files again");
  readRuleFiles(true);
  listeners.forEach((l, k) => { // certificates: for new connections; a failure keeps those in force
    try {
      const tls = tlsSettings(core, k);
      if (tls !== null) l.reload(tls);
    } catch (error) {
      log(Level.Error, `SIGHUP: ${(error as Error).message}; the certificates in force stay`);
    }
  });
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) process.exit(0); // a second Ctrl-C: do not wait
  stopping = true;
  log(Level.Notice, `${signal}: shutting down`);
  core.stopTicking();
  core.shutdown(); // MQTT 5 clients get DISCONNECT 0x8B; every socket is flushed and ended
  core.flushStore(); // the records the core asked to sync at shutdown
  const gone = Promise.all(listeners.map((l) => l.close())); // core.closed for every connection, synchronously
  logStats();
  // Give peers a moment to see the close, but exit well within 2 s regardless.
  const exit = () => process.exit(0);
  gone.then(exit);
  setTimeout(exit, 1000);
}
process.off("SIGINT", stopEarly);
process.off("SIGTERM", stopEarly);
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));
