// The `midge` command: flags, logging, one TCP listener, and a clean shutdown.

import process from "node:process";
import { setTimeout } from "node:timers";
import { parseArgs } from "node:util";
import { boards } from "midge:boards";
import { version } from "../package.json";
import { Core, Level, Setting, Stat, levelName } from "./core";
import { type TcpListener, formatAddress, listenTcp } from "./listeners/tcp";

/** EX_USAGE and EX_SOFTWARE from sysexits.h: a bad command line; a bug (a core trap). */
const EXIT_USAGE = 2;
const EXIT_SOFTWARE = 70;

const usage = `Usage: midge [options]

  --port N                  TCP port to listen on (default 1883, or $MIDGE_PORT; 0: any free port)
  --host ADDR               address to listen on (default 127.0.0.1: this machine only)
  --board NAME              board profile: ${Object.keys(boards).join(", ")} (default pi)
  --max-packet-size BYTES   largest packet accepted (default: the board's maximum)
  --max-keepalive SECONDS   longest keep-alive allowed; MQTT 5 clients asking for more (or 0)
                            are told this one (Server Keep Alive). Default: no limit
  --max-connections N       network connections at once (default and maximum: the board's)
  --connect-timeout MS      time a new connection has to send CONNECT (default 10000)
  --max-inflight N          unacknowledged QoS 1/2 messages towards one client (default: board's)
  --max-queued N            QoS 1/2 messages queued per client; more are dropped and counted
                            (default: the board's)
  --max-backlog BYTES       unsent bytes for one subscriber above which QoS 0 messages to it
                            are dropped and counted (default: the board's)
  --max-input-buffer BYTES  bytes of incomplete packets buffered for all connections together;
                            beyond it, connections in the middle of a packet are paused
                            (default 67108864)
  --stall-timeout SECONDS   a subscriber that takes no bytes and acknowledges nothing for this
                            long is stalled: publishers no longer wait for it, and what does
                            not fit its queue is dropped and counted (default 5)
  --stats-interval SECONDS  log every counter this often (also on SIGUSR2 and at shutdown)
  --verbose                 log debug lines too, one per packet
  --help                    show this help and exit
  --version                 show the version and exit
`;

interface Options {
  port: number;
  host: string;
  /** --host was not given: listening on loopback only, as Mosquitto 2 does without a config. */
  defaultHost: boolean;
  board: string;
  maxPacketSize: number;
  maxKeepAlive: number;
  statsInterval: number;
  /** Run-time limits passed to the core's `configure` (only those given). */
  limits: Array<[number, number, string]>;
  verbose: boolean;
}

function usageError(message: string): never {
  process.stderr.write(`midge: ${message}\n\n${usage}`);
  process.exit(EXIT_USAGE);
}

function integer(text: string, what: string, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value <= max)) usageError(`${what} must be a whole number from 0 to ${max}, not '${text}'`);
  return value;
}

function parseOptions(args: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        board: { type: "string" },
        "max-packet-size": { type: "string" },
        "max-keepalive": { type: "string" },
        "max-connections": { type: "string" },
        "connect-timeout": { type: "string" },
        "max-inflight": { type: "string" },
        "max-queued": { type: "string" },
        "max-backlog": { type: "string" },
        "max-input-buffer": { type: "string" },
        "stall-timeout": { type: "string" },
        "stats-interval": { type: "string" },
        verbose: { type: "boolean" },
        help: { type: "boolean" },
        version: { type: "boolean" },
      },
    }));
  } catch (error) {
    // parseArgs's messages are long and name no fix; say which argument is wrong.
    const code = (error as { code?: string }).code;
    const quoted = /'([^']*)'/.exec(String((error as Error).message))?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") usageError(`unknown option ${quoted}`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") usageError(`option ${quoted.split(" ")[0]} needs a value`);
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") usageError(`unexpected argument '${quoted}'`);
    usageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  if (values.version) {
    process.stdout.write(`midge ${version}\n`);
    process.exit(0);
  }
  const envPort = process.env.MIDGE_PORT;
  const port =
    values.port !== undefined ? integer(values.port, "--port", 65535)
    : envPort !== undefined && envPort !== "" ? integer(envPort, "MIDGE_PORT", 65535)
    : 1883;
  const board = values.board ?? "pi";
  if (!Object.hasOwn(boards, board)) {
    process.stderr.write(`midge: unknown board '${board}'; boards: ${Object.keys(boards).join(", ")}\n`);
    process.exit(EXIT_USAGE);
  }
  const maxPacketSize =
    values["max-packet-size"] !== undefined ? integer(values["max-packet-size"], "--max-packet-size", 0xffffffff) : 0;
  const maxKeepAlive =
    values["max-keepalive"] !== undefined ? integer(values["max-keepalive"], "--max-keepalive", 65535) : 0;
  const limits: Array<[number, number, string]> = [];
  const limitFlags: Array<[string, number]> = [
    ["max-connections", Setting.MaxConnections],
    ["connect-timeout", Setting.ConnectTimeout],
    ["max-inflight", Setting.MaxInflight],
    ["max-queued", Setting.MaxQueued],
    ["max-backlog", Setting.MaxBacklog],
    ["max-input-buffer", Setting.MaxInputBuffer],
  ];
  for (const [flag, key] of limitFlags) {
    const text = (values as Record<string, string | boolean | undefined>)[flag];
    if (typeof text === "string") limits.push([key, integer(text, `--${flag}`, 0xffffffff), flag]);
  }
  const stall = values["stall-timeout"];
  if (stall !== undefined) limits.push([Setting.StallTimeout, integer(stall, "--stall-timeout", 3600) * 1000, "stall-timeout"]);
  const statsInterval =
    values["stats-interval"] !== undefined ? integer(values["stats-interval"], "--stats-interval", 86400) : 0;
  return {
    statsInterval,
    maxKeepAlive,
    limits,
    port,
    host: values.host ?? "127.0.0.1",
    defaultHost: values.host === undefined,
    board,
    maxPacketSize,
    verbose: values.verbose ?? false,
  };
}

const options = parseOptions(process.argv.slice(2));
const threshold = options.verbose ? Level.Debug : Level.Info;

// Lines logged before the listener is up (the core's, while it initialises) wait, so
// that the first line is always the one saying where we listen.
let held: string[] | null = [];

function format(level: number, text: string): string {
  return `${new Date().toISOString()} ${levelName(level).padEnd(7)} ${text}\n`;
}

function log(level: number, text: string): void {
  if (level > threshold && level !== Level.Fatal) return;
  if (held !== null) held.push(format(level, text));
  else process.stderr.write(format(level, text));
}

function releaseHeld(): void {
  const lines = held ?? [];
  held = null;
  for (const line of lines) process.stderr.write(line);
}

/** A trap in the core: its state is lost, so there is nothing safe left to do. */
function fatal(error: Error): never {
  log(Level.Fatal, `core stopped (a bug in the core): ${error.message}`);
  releaseHeld();
  process.exit(EXIT_SOFTWARE);
}

/** Every counter of the core, as `name=value` pairs, in one line. */
function statsLine(core: Core): string {
  return Object.entries(Stat)
    .map(([name, id]) => `${name[0].toLowerCase()}${name.slice(1)}=${core.stat(id)}`)
    .join(" ");
}

async function main(): Promise<void> {
  let core: Core;
  try {
    core = await Core.load(boards[options.board], {
      maxPacketSize: options.maxPacketSize,
      logLevel: threshold,
      log,
      fatal,
    });
  } catch (error) {
    if (error instanceof WebAssembly.RuntimeError) fatal(error);
    log(Level.Error, `cannot start the ${options.board} core: ${(error as Error).message}`);
    releaseHeld();
    process.exit(EXIT_SOFTWARE);
  }

  if (options.maxKeepAlive > 0) core.configure(Setting.MaxKeepAlive, options.maxKeepAlive);
  for (const [key, value, flag] of options.limits) {
    const inForce = core.configure(key, value);
    if (inForce !== value) log(Level.Warning, `--${flag} ${value} is outside what the ${options.board} board allows; using ${inForce}`);
  }

  let listener: TcpListener;
  try {
    listener = await listenTcp(core, options.host, options.port, log, options.verbose);
  } catch (error) {
    log(Level.Error, `cannot listen on ${formatAddress(options.host, options.port)}: ${(error as Error).message}`);
    releaseHeld();
    process.exit(1);
  }
  const where = formatAddress(listener.host, listener.port);
  const note = options.defaultHost
    ? " (loopback only: no configuration; use --host 0.0.0.0 to accept network clients)"
    : "";
  held?.unshift(format(Level.Notice, `midge ${version} listening on ${where}${note}`));
  releaseHeld();
  log(
    Level.Info,
    `board ${options.board}: packets up to ${core.maxPacketSize} bytes, ${core.memoryPages} pages of fixed memory`,
  );
  core.startTicking();

  // Counters: on a timer, on SIGUSR2, and at shutdown.
  const logStats = () => log(Level.Notice, `stats: ${statsLine(core)}`);
  if (options.statsInterval > 0) setInterval(logStats, options.statsInterval * 1000).unref();
  process.on("SIGUSR2", logStats);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) process.exit(0); // a second Ctrl-C: do not wait
    stopping = true;
    log(Level.Notice, `${signal}: shutting down`);
    core.stopTicking();
    core.shutdown(); // MQTT 5 clients get DISCONNECT 0x8B; every socket is flushed and ended
    const gone = listener.close(); // core.closed for every connection, synchronously
    logStats();
    // Give peers a moment to see the close, but exit well within 2 s regardless.
    const exit = () => process.exit(0);
    gone.then(exit);
    setTimeout(exit, 1000);
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

await main();
