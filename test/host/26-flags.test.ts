// One command line, one parser: the Node host (dist/midge.mjs) and the native host
// (build/native/midge-<board>) hand every option to the core's parser (assembly/options.ts)
// and print its answer, so the same arguments must give the same exit status, the same
// stderr and the same --help, byte for byte. Out-of-range values are refused (status 2,
// the range in the message), never clamped. README's Options section is that --help.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { CloseReason, Setting, usage } from "../../host/generated/vocab";
import { BROKER_KIND, ROOT, closeAll, rawSession, startCommand, type Broker } from "./helpers.js";

const NODE = path.join(ROOT, "dist", "midge.mjs");
const native = (board: string) => path.join(ROOT, "build", "native", `midge-${board}`);
const version = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;

// Both hosts are compared in the Node run; the native run of the suites adds nothing here.
const skip = BROKER_KIND !== "midge" ? "compares both hosts itself (run with the Node host)"
  : !existsSync(native("pi")) && process.env.CI !== "true" ? "no build/native/midge-pi (npm run build:native needs wasm2c and gcc)"
  : false;

interface Run { status: number | null; stdout: string; stderr: string }

/** One host with `args`, on `board` (Node: --board first; native: that board's binary). */
function run(host: "node" | "native", args: string[], board = "pi", env: Record<string, string> = {}): Run {
  const [cmd, argv] = host === "node"
    ? [process.execPath, [NODE, ...(board === "pi" ? [] : ["--board", board]), ...args]]
    : [native(board), args];
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 10_000, env: { ...process.env, MIDGE_PORT: "", ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Both hosts with the same arguments: their answers must be the same. */
function both(args: string[], board = "pi", env: Record<string, string> = {}): Run {
  const node = run("node", args, board, env);
  const nat = run("native", args, board, env);
  assert.deepEqual(nat, node, `the hosts differ on: ${args.join(" ")}`);
  return node;
}

describe("the command line, on both hosts", { skip }, () => {
  test("--help: one text, the generated one, on stdout with status 0", () => {
    const r = both(["--help"]);
    assert.equal(r.status, 0);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, usage);
    // every option of the table is in it, with its value word
    assert.match(r.stdout, /--stall-timeout SECONDS/);
    assert.match(r.stdout, /--max-input-buffer BYTES/);
    // the mcu board's binary says the same
    assert.equal(both(["--help"], "mcu").stdout, usage);
  });

  test("--version: the same line", () => {
    const r = both(["--version"]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `midge ${version}\n`);
  });

  test("README's Options section is the --help text", () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("\n## Options\n"));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
    assert.equal(block, usage);
  });

  test("docs/ABI.md lists the core's settings and close reasons by their names", () => {
    const abi = readFileSync(path.join(ROOT, "docs", "ABI.md"), "utf8");
    for (const [name, key] of Object.entries(Setting)) assert.ok(abi.includes(`| ${key} | \`${name}\` |`), `Setting ${name} = ${key}`);
    for (const [name, value] of Object.entries(CloseReason)) {
      if (value >= 0) assert.ok(abi.includes(`| ${value} | \`${name}\` |`), `CloseReason ${name} = ${value}`);
    }
  });

  // [arguments, the message], on the pi board unless a third element names another
  const refused: Array<[string[], string, string?]> = [
    [["--no-such-flag"], "unknown option '--no-such-flag'"],
    [["stray"], "unknown option 'stray'"],
    [["-p", "1883"], "unknown option '-p'"],
    [["--port=1883"], "unknown option '--port=1883'"],
    [["--max-inflight", "ten"], "--max-inflight must be a whole number from 1 to 128, not 'ten'"],
    [["--max-inflight", "1000"], "--max-inflight must be a whole number from 1 to 128, not '1000'"],
    [["--max-inflight", "0"], "--max-inflight must be a whole number from 1 to 128, not '0'"],
    [["--max-inflight", "5"], "--max-inflight must be a whole number from 1 to 4, not '5'", "mcu"],
    [["--max-inflight"], "--max-inflight needs a value"],
    [["--max-inflight", ""], "--max-inflight needs a value"],
    [["--port", "65536"], "--port must be a whole number from 0 to 65535, not '65536'"],
    [["--port", "-1"], "--port must be a whole number from 0 to 65535, not '-1'"],
    [["--port", "--verbose"], "--port must be a whole number from 0 to 65535, not '--verbose'"],
    [["--host"], "--host needs a value"],
    [["--max-packet-size", "19"], "--max-packet-size must be a whole number of bytes from 20 to 2097152, not '19'"],
    [["--max-packet-size", "2097153"], "--max-packet-size must be a whole number of bytes from 20 to 2097152, not '2097153'"],
    [["--max-packet-size", "1025"], "--max-packet-size must be a whole number of bytes from 20 to 1024, not '1025'", "mcu"],
    [["--max-keepalive", "65536"], "--max-keepalive must be a whole number of seconds from 0 to 65535, not '65536'"],
    [["--max-connections", "4161"], "--max-connections must be a whole number from 1 to 4160, not '4161'"],
    [["--connect-timeout", "99"], "--connect-timeout must be a whole number of milliseconds from 100 to 3600000, not '99'"],
    [["--max-queued", "1001"], "--max-queued must be a whole number from 1 to 1000, not '1001'"],
    [["--max-backlog", "1023"], "--max-backlog must be a whole number of bytes from 1024 to 1048576, not '1023'"],
    [["--max-input-buffer", "1023"], "--max-input-buffer must be a whole number of bytes from 1024 to 4294967295, not '1023'"],
    [["--stall-timeout", "0.05"], "--stall-timeout must be a number of seconds from 0.1 to 3600, not '0.05'"],
    [["--stall-timeout", "5s"], "--stall-timeout must be a number of seconds from 0.1 to 3600, not '5s'"],
    [["--stats-interval", "86401"], "--stats-interval must be a whole number of seconds from 0 to 86400, not '86401'"],
    [["--verbose", "--max-queued", "x"], "--max-queued must be a whole number from 1 to 1000, not 'x'"],
    [["--max-inflight", "10", "--bogus"], "unknown option '--bogus'"], // the first bad one, left to right
    [["--bogus", "--help"], "unknown option '--bogus'"],
    [["--port", "é"], "--port must be a whole number from 0 to 65535, not '\\xc3\\xa9'"],
  ];
  for (const [args, message, board = "pi"] of refused) {
    test(`refused (${board}): ${args.join(" ") || "(nothing)"}`, () => {
      const r = both(args, board);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `midge: ${message}\n\n${usage}`);
    });
  }

  test("a bad $MIDGE_PORT is refused the same way, even beside --port", () => {
    const r = both(["--port", "0"], "pi", { MIDGE_PORT: "x" });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `midge: $MIDGE_PORT: --port must be a whole number from 0 to 65535, not 'x'\n\n${usage}`);
  });

  test("--help before a bad option wins (left to right)", () => {
    const r = both(["--help", "--bogus"]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, usage);
  });

  // arguments both hosts accept; the packet limit in force shows in the start-up line
  const accepted: Array<[string[], number, string?]> = [
    [[], 2097152],
    [["--max-packet-size", "1000", "--max-inflight", "1", "--max-queued", "1000", "--max-connections", "4160",
      "--connect-timeout", "100", "--max-keepalive", "65535", "--max-backlog", "1024", "--max-input-buffer", "1024",
      "--stall-timeout", "0.5", "--stats-interval", "86400", "--host", "127.0.0.1"], 1000],
    [["--max-packet-size", "20", "--max-packet-size", "4096"], 4096], // the last one wins
    [["--stall-timeout", "3600", "--max-input-buffer", "4294967295", "--verbose"], 2097152],
    [["--max-inflight", "4", "--max-packet-size", "1024"], 1024, "mcu"],
  ];
  for (const [args, packet, board = "pi"] of accepted) {
    test(`accepted (${board}): ${args.join(" ") || "(nothing)"}`, async () => {
      const started: Broker[] = [];
      try {
        started.push(await startCommand(process.execPath, [NODE, "--port", "0", ...(board === "pi" ? [] : ["--board", board]), ...args]));
        started.push(await startCommand(native(board), ["--port", "0", ...args]));
        for (const b of started) {
          const { returnCode } = await rawSession(b);
          assert.equal(returnCode, 0);
          assert.match(b.output(), new RegExp(`board ${board}\\b.*: packets up to ${packet} bytes`));
          assert.doesNotMatch(b.output(), /warning/);
        }
      } finally {
        await closeAll();
        for (const b of started) await b.stop();
      }
    });
  }
});
