// The config file (-c FILE, --config FILE): Mosquitto's mosquitto.conf grammar, read by
// the host and parsed by the core (assembly/configfile.ts), so both hosts must answer a
// bad file the same way, byte for byte (status 2, `midge: FILE:LINE: KEY ...`), and a
// good one must set what it says: the listener, the limits, who may connect, logging.
// Options given on the command line override the file (--port and --host: the first
// listener's). Where Mosquitto defines the behaviour (anonymous clients with and without a
// listener, several listeners), the same file is run against the real mosquitto too.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { BROKER_KIND, HOST, PacketType, ROOT, ack5, closeAll, disconnect, freePort, parsePublish, publish5Packet, publishPacket, pubrel, rawConnect,
  rawConnect5, rawSession, rawSubscribe, settle, startBroker, startMosquittoConf, uid, which, type Broker } from "./helpers.js";

const NODE = path.join(ROOT, "dist", "midge.mjs");
const native = (board: string) => path.join(ROOT, "build", "native", `midge-${board}`);
const haveNative = existsSync(native("pi"));

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-conf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to a file in the test's directory; returns its path. */
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

interface Run { status: number | null; stdout: string; stderr: string }

function run(host: "node" | "native", args: string[], board = "pi", timeout = 10_000): Run {
  const [cmd, argv] = host === "node"
    ? [process.execPath, [NODE, ...(board === "pi" ? [] : ["--board", board]), ...args]]
    : [native(board), args];
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout, killSignal: "SIGTERM", env: { ...process.env, MIDGE_PORT: "" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Both hosts with the same arguments: their answers must be the same. */
function both(args: string[], board = "pi"): Run {
  const node = run("node", args, board);
  const nat = run("native", args, board);
  assert.deepEqual(nat, node, `the hosts differ on: ${args.join(" ")}`);
  return node;
}

const skipBoth = BROKER_KIND !== "midge" ? "compares both hosts itself (run with the Node host)"
  : !haveNative && process.env.CI !== "true" ? "no build/native/midge-pi (npm run build:native needs wasm2c and gcc)"
  : false;

describe("a bad config file, on both hosts", { skip: skipBoth }, () => {
  // [file name, its text, the message]; "{f}" stands for the file's path
  const refused: Array<[string, string, string]> = [
    ["unknown.conf", "# a comment\n\nlistener 1883\nno_such_key 1\n", "{f}:4: no_such_key is not a configuration key"],
    ["mosquitto.conf", "psk_file /etc/mosquitto/psk\n", "{f}:1: psk_file is a Mosquitto option Midge does not support yet"],
    ["protocol.conf", "protocol websockets\n", "{f}:1: protocol must follow a listener line (it sets that listener's protocol)"],
    ["protocol-value.conf", "listener 1883\nprotocol mqttsn\n", "{f}:2: protocol must be mqtt, websockets or http, not 'mqttsn'"],
    ["mosquitto.conf", "listener 1883\ncrlfile /etc/mosquitto/crl.pem\n", "{f}:2: crlfile is a Mosquitto option Midge does not support yet"],
    ["tls.conf", "listener 8883\ncertfile /etc/mosquitto/certs/server.pem\n", "{f}:2: certfile without keyfile: a TLS listener needs both (Mosquitto 2.0.11 would listen without TLS)"],
    ["noport.conf", "listener 1883\nlistener\n", "{f}:2: listener needs a port"],
    ["missing.conf", "max_keepalive\n", "{f}:1: max_keepalive needs a value"],
    ["nan.conf", "max_inflight_messages ten\n", "{f}:1: max_inflight_messages must be a whole number from 1 to 128 (0: no limit), not 'ten'"],
    ["range.conf", "max_keepalive 65536\n", "{f}:1: max_keepalive must be a whole number of seconds from 0 to 65535, not '65536'"],
    ["port.conf", "listener 70000\n", "{f}:1: listener must be a whole number from 0 to 65535, not '70000'"],
    ["bool.conf", "allow_anonymous yes\n", "{f}:1: allow_anonymous must be true or false, not 'yes'"],
    ["two.conf", "max_connections 10 20\n", "{f}:1: max_connections takes one value, not '10 20'"],
    ["dest.conf", "log_dest syslog\n", "{f}:1: log_dest syslog is a Mosquitto option Midge does not support yet"],
    ["badport.conf", "listener 1883\nlistener -1 127.0.0.1\n", "{f}:2: listener must be a whole number from 0 to 65535, not '-1'"],
    ["many.conf", Array.from({ length: 17 }, (_, i) => `listener ${2000 + i}`).join("\n") + "\n", "{f}:17: listener is one listener more than this board holds (16)"],
    ["perlistener.conf", "per_listener_settings true\nlistener 1883\nport 1884\n",
      "{f}:3: port is a second listener with per_listener_settings true: Midge applies allow_anonymous, password_file and acl_file to every listener for now"],
    ["logfiles.conf", "log_dest file /tmp/a.log\nlog_dest file /tmp/b.log\n", "{f}:2: log_dest file is given twice (one log file, as in Mosquitto)"],
    ["logfile.conf", "log_dest file\n", "{f}:1: log_dest file needs a path"],
    ["crlf.conf", "sys_interval 10\r\nsys_interval -1\r\n", "{f}:2: sys_interval must be a whole number of seconds from 0 to 65535, not '-1'"],
    // bridges (Mosquitto's connection sections)
    ["bridge.conf", "topic a/# out 1\n", "{f}:1: topic is a bridge option: it belongs after a `connection NAME` line"],
    ["bridge.conf", "connection up\naddress 127.0.0.1:1883\ntopic a/# sideways\n", "{f}:3: topic direction must be in, out or both, not 'sideways'"],
    ["bridge.conf", "connection up\naddress 127.0.0.1:1883\ntopic a/# in 3\n", "{f}:3: topic QoS must be 0, 1 or 2, not '3'"],
    ["bridge.conf", "connection up\naddress 127.0.0.1:1883\ntopic a/# in 1 local/\n", "{f}:3: topic needs both prefixes, local and remote (\"\" for none)"],
    ["bridge.conf", "connection up\naddress 127.0.0.1:1883\ntopic a/#/b\n", "{f}:3: topic 'a/#/b' with its prefixes is not a valid topic filter"],
    ["bridge.conf", "connection up\naddress 127.0.0.1:99999\n", "{f}:2: address '127.0.0.1:99999' must be HOST or HOST:PORT with a port from 1 to 65535"],
    ["bridge.conf", "connection up\ntopic a/#\n", "{f}: connection up has no address line"],
    ["bridge.conf", "connection up\naddress 127.0.0.1\n", "{f}: connection up has no topic line"],
    ["bridge.conf", "connection up\naddress h\ntopic #\nbridge_protocol_version mqttv31\n", "{f}:4: bridge_protocol_version mqttv31 is not supported by Midge's bridge: use mqttv311 or mqttv50"],
    ["bridge.conf", "connection up\naddress h\ntopic #\nstart_type lazy\n", "{f}:4: start_type lazy is not supported by Midge's bridge yet: use automatic or once"],
    ["bridge.conf", "connection up\naddress h\ntopic #\nkeepalive_interval 2\n", "{f}:4: keepalive_interval must be a whole number of seconds from 5 to 65535, not '2'"],
    ["bridge.conf", "connection up\naddress h\ntopic #\nconnection up\n", "{f}:4: connection is the name of another bridge, not 'up'"],
    ["bridge.conf", "connection up\naddress h\ntopic #\nbridge_certfile c.pem\n", "{f}: connection up has bridge_certfile without bridge_keyfile, or the other way round"],
  ];
  for (const [name, text, message] of refused) {
    test(`refused: ${text.trim().split("\n").at(-1)}`, () => {
      const f = file(name, text);
      const r = both(["-c", f]);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `midge: ${message.replace("{f}", f)}\n`);
    });
  }

  test("a file that cannot be read, or is a directory", () => {
    const missing = path.join(dir, "no-such.conf");
    assert.deepEqual(both(["--config", missing]), { status: 2, stdout: "", stderr: `midge: cannot read ${missing}: ENOENT\n` });
    assert.deepEqual(both(["-c", dir]), { status: 2, stdout: "", stderr: `midge: cannot read ${dir}: EISDIR\n` });
  });

  test("include_dir: a bad line in an included file names that file; a missing directory; no includes of includes", () => {
    const d = path.join(dir, "conf.d");
    file("conf.d/b.conf", "allow_anonymous true\n");
    file("conf.d/A.conf", "\nbogus 1\n"); // strcasecmp's order: A.conf before b.conf
    file("conf.d/c.txt", "not read\n");
    let r = both(["-c", file("inc.conf", `listener 0\ninclude_dir ${d}\n`)]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `midge: ${d}/A.conf:2: bogus is not a configuration key\n`);

    file("conf.d/A.conf", `include_dir ${d}\n`); // a loop, were it read
    r = both(["-c", path.join(dir, "inc.conf")]);
    assert.equal(r.stderr, `midge: ${d}/A.conf:1: include_dir is read in the main config file only (Mosquitto ignores it here)\n`);

    file("conf.d/A.conf", "max_keepalive 30\n");
    r = both(["-c", file("inc2.conf", `include_dir ${d}\n\nmax_keepalive x\n`)]);
    assert.equal(r.stderr, `midge: ${path.join(dir, "inc2.conf")}:3: max_keepalive must be a whole number of seconds from 0 to 65535, not 'x'\n`);

    r = both(["-c", file("inc3.conf", `include_dir ${dir}/none\n`)]);
    assert.equal(r.stderr, `midge: cannot open include_dir ${dir}/none: ENOENT\n`);
  });

  test("the mcu board's core has no config file parser (CONFIG_TEXT 0): every file refused", () => {
    const f = file("mcu.conf", "max_keepalive 30\n");
    const r = both(["-c", f], "mcu");
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `midge: ${f}: this board's core is built without the config file parser (CONFIG_TEXT 0); give options instead\n`);
  });

  test("--help and --version answer without reading the file", () => {
    assert.equal(both(["-c", path.join(dir, "no-such.conf"), "--version"]).status, 0);
  });

  test("log_dest stdout: every line on stdout; log_type error: only errors", () => {
    const f = file("stdout.conf", `listener 0 ${HOST}\nlog_dest stdout\n`);
    for (const host of ["node", "native"] as const) {
      const r = run(host, ["-c", f], "pi", 1500);
      assert.equal(r.stderr, "", host);
      assert.match(r.stdout, /notice +midge \S+ listening on 127\.0\.0\.1:\d+ \(anonymous clients refused: allow_anonymous false\)\n/, host);
      const quiet = run(host, ["-c", file("quiet.conf", `listener 0 ${HOST}\nlog_type error\n`)], "pi", 1500);
      assert.equal(quiet.stderr + quiet.stdout, "", host);
    }
  });

  test("log_dest file: lines appended to the file, beside stderr; two listeners, one line each; a file that cannot be opened: status 1", () => {
    const log = path.join(dir, "midge log.txt"); // a path with a space: the rest of the line
    writeFileSync(log, "an old line\n");
    const f = file("logfile-ok.conf", `listener 0 ${HOST}\nlistener 0 ${HOST}\nlog_dest file ${log}\nlog_dest stderr\n`);
    const lines: string[] = [];
    for (const host of ["node", "native"] as const) {
      const r = run(host, ["-c", f], "pi", 1500);
      assert.equal(r.stdout, "", host);
      assert.match(r.stderr, /notice +midge \S+ listening on 127\.0\.0\.1:\d+ \(anonymous clients refused: allow_anonymous false\)\n.*notice +listening on 127\.0\.0\.1:\d+\n/, host);
      lines.push(r.stderr);
    }
    // the file holds the old line, then every line each host wrote to stderr, then its
    // shutdown lines (which spawnSync no longer reads from stderr after its timeout's SIGTERM)
    const written = readFileSync(log, "utf8");
    assert.ok(written.startsWith(`an old line\n${lines[0]}`), written);
    assert.ok(written.includes(lines[1]), written);
    assert.equal(written.match(/notice +SIGTERM: shutting down\n/g)?.length, 2, written);
    const missing = path.join(dir, "no-such-dir", "m.log");
    assert.deepEqual(both(["-c", file("logfile-bad.conf", `listener 0 ${HOST}\nlog_dest file ${missing}\n`)]),
      { status: 1, stdout: "", stderr: `midge: cannot open log file ${missing}: ENOENT\n` });
  });
});

/** Two listeners of one broker (`second` is the same broker on its other port): a
 *  subscriber on the second gets what a publisher sends on the first, and a persistent
 *  session made on the first resumes on the second with the message queued for it. */
async function acrossListeners(first: Broker, second: Broker): Promise<unknown> {
  const sub = await rawSession(second, { clientId: uid("sub") });
  await rawSubscribe(sub.raw, 1, [["across/live", 1]]);
  const pub = await rawSession(first, { clientId: uid("pub") });
  pub.raw.write(publishPacket({ topic: "across/live", payload: "hello", qos: 1, id: 1 }));
  await pub.raw.expect(PacketType.PUBACK);
  const live = parsePublish(await sub.raw.expect(PacketType.PUBLISH));
  const id = uid("across");
  const before = await rawSession(first, { clientId: id, clean: false });
  await rawSubscribe(before.raw, 1, [["across/queued", 1]]);
  before.raw.write(disconnect());
  await settle(200);
  pub.raw.write(publishPacket({ topic: "across/queued", payload: "later", qos: 1, id: 2 }));
  await pub.raw.expect(PacketType.PUBACK);
  const after = await rawSession(second, { clientId: id, clean: false });
  const queued = parsePublish(await after.raw.expect(PacketType.PUBLISH));
  after.raw.write(disconnect());
  await rawSession(second, { clientId: id, clean: true }); // (leave no session behind)
  return { live: `${live.topic} ${live.payload}`, sessionPresent: after.sessionPresent, queued: `${queued.topic} ${queued.payload} qos ${queued.qos}` };
}
const ACROSS = { live: "across/live hello", sessionPresent: true, queued: "across/queued later qos 1" };

// The rest runs against the host under test (Node, or native with MIDGE_TEST_BROKER=native).
const skipRun = BROKER_KIND === "mosquitto" ? "midge's own config files" : false;

describe("a good config file", { skip: skipRun }, () => {
  after(closeAll);

  test("a listener: anonymous clients refused (CONNACK 5, MQTT 5: 0x87), and with no password file every client; the first line says so", async () => {
    const f = file("listener.conf", `# a listener of its own\nlistener 0 ${HOST}\nmax_keepalive 30\n`);
    const b = await startBroker({ args: ["-c", f] });
    try {
      assert.match(b.output().split("\n")[0], /listening on 127\.0\.0\.1:\d+ \(anonymous clients refused: allow_anonymous false\)$/);
      assert.equal((await rawConnect(b)).returnCode, 5);
      assert.equal((await rawConnect5(b)).connack.reasonCode, 0x87);
      assert.equal((await rawConnect(b, { username: "alice" })).returnCode, 5);
      await settle();
      assert.match(b.output(), /connection refused, CONNACK code 5 \(not authorized: no user name, and allow_anonymous is false\)/);
      assert.match(b.output(), /connection refused, CONNACK code 5 \(not authorized: allow_anonymous is false, and no password file to check the user against\)/);
    } finally {
      await closeAll();
      await b.stop();
    }
  });

  test("include_dir: allow_anonymous true from conf.d; connection_messages false; flags override the file", async () => {
    file("good.d/10-anon.conf", "allow_anonymous true\n");
    file("good.d/20-limits.conf", "max_packet_size 1000\nconnection_messages false\n");
    const f = file("good.conf", `listener 0 ${HOST}\ninclude_dir ${dir}/good.d\nmax_inflight_messages 0\nmax_keepalive 30\n`);
    const b = await startBroker({ args: ["-c", f, "--max-packet-size", "2000"] });
    try {
      assert.match(b.output().split("\n")[0], /\(anonymous clients allowed: allow_anonymous true\)$/);
      const { raw, returnCode } = await rawConnect(b);
      assert.match(b.output(), /packets up to 2000 bytes/);
      assert.equal(returnCode, 0);
      raw.destroy();
      // max_keepalive: an MQTT 5 client asking for none is told the server's
      assert.equal((await rawConnect5(b, { keepalive: 0 })).connack.props.get(0x13), 30);
      await new Promise((r) => setTimeout(r, 200));
      assert.doesNotMatch(b.output(), /connected \(|connection lost/);
    } finally {
      await closeAll();
      await b.stop();
    }
  });

  test("two listeners: each its own socket, one broker (messages and sessions shared); --port replaces the first one's port", async () => {
    const [first, second] = [await freePort(), await freePort()];
    const f = file(`two-${second}.conf`, `listener ${first} ${HOST}\nlistener ${second} ${HOST}\nallow_anonymous true\n`);
    const b = await startBroker({ args: ["-c", f] }); // with --port 0
    try {
      const listening = () => b.output().split("\n").filter((l) => / listening on /.test(l));
      for (let i = 0; i < 20 && listening().length < 2; i++) await settle(50);
      const [one, two, ...more] = listening();
      assert.deepEqual(more, []);
      assert.match(one, new RegExp(`midge \\S+ listening on 127\\.0\\.0\\.1:${b.port} \\(anonymous clients allowed`));
      assert.match(two, new RegExp(`notice +listening on 127\\.0\\.0\\.1:${second}$`));
      assert.notEqual(b.port, first);
      assert.deepEqual(await acrossListeners(b, { ...b, port: second }), ACROSS);
    } finally {
      await closeAll();
      await b.stop();
    }
  });

  test("no listener in the file: loopback only, anonymous clients allowed even if it says false (as Mosquitto)", async () => {
    const f = file("nolistener.conf", "allow_anonymous false\n");
    const b = await startBroker({ args: ["-c", f] });
    try {
      assert.match(b.output().split("\n")[0], /listening on 127\.0\.0\.1:\d+ \(loopback only: the config file has no listener; use --host 0\.0\.0\.0 to accept network clients\)$/);
      assert.equal((await rawConnect(b)).returnCode, 0);
    } finally {
      await closeAll();
      await b.stop();
    }
  });
});

// The same files, run by the real mosquitto: the answers Midge copies.
const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
const skipDiff = BROKER_KIND !== "midge" ? "run once, with the Node host" : !mosquitto ? "no mosquitto (apt-get install mosquitto)" : false;

describe("against mosquitto: who may connect", { skip: skipDiff }, () => {
  /** Mosquitto on a free port with `lines` (its listener first), then the answers. */
  async function answers(start: (conf: string) => Promise<Broker>, lines: string[]): Promise<number[]> {
    const b = await start(lines.join("\n") + "\n");
    try {
      return [
        (await rawConnect(b)).returnCode,
        (await rawConnect5(b)).connack.reasonCode,
        (await rawConnect(b, { username: "u" })).returnCode,
        (await rawConnect5(b, { username: "u" })).connack.reasonCode,
      ];
    } finally {
      await closeAll();
      await b.stop();
    }
  }
  const cases: Array<[string, string[]]> = [
    ["a listener, nothing said", []],
    ["a listener, allow_anonymous false", ["allow_anonymous false"]],
    ["a listener, allow_anonymous true", ["allow_anonymous true"]],
  ];
  for (const [what, lines] of cases) {
    test(what, async () => {
      const port = await freePort();
      const theirs = await answers((conf) => startMosquittoConf(file(`mosq-${port}.conf`, `listener ${port} ${HOST}\npersistence false\n${conf}`), port), lines);
      const ours = await answers((conf) => startBroker({ args: ["-c", file(`midge-${port}.conf`, `listener 0 ${HOST}\n${conf}`)] }), lines);
      assert.deepEqual(ours, theirs);
    });
  }
});

describe("against mosquitto: two listeners", { skip: skipDiff }, () => {
  test("the same file: both ports accept clients, one broker behind them", async () => {
    const [first, second] = [await freePort(), await freePort()];
    const conf = `listener ${first} ${HOST}\nlistener ${second} ${HOST}\nallow_anonymous true\n`;
    const theirs = await startMosquittoConf(file(`mosq-two-${first}.conf`, `${conf}persistence false\n`), first);
    try {
      assert.deepEqual(await acrossListeners(theirs, { ...theirs, port: second }), ACROSS);
    } finally {
      await closeAll();
      await theirs.stop();
    }
  });
});

describe("against mosquitto: message_size_limit", { skip: skipDiff }, () => {
  /** What a subscriber gets of payloads of 10 and 11 bytes at each QoS, and the publisher's
   *  acknowledgements (3.1.1: packet types; MQTT 5: reason codes), with a limit of 10. */
  async function outcome(b: Broker): Promise<unknown> {
    const sub = await rawSession(b, { username: "s" });
    await rawSubscribe(sub.raw, 1, [["size/#", 2]]);
    const pub = await rawSession(b, { username: "p" });
    const pub5 = (await rawConnect5(b, { username: "p5" })).raw;
    const acks: string[] = [];
    let id = 1;
    for (const qos of [0, 1, 2]) {
      for (const n of [10, 11]) {
        pub.raw.write(publishPacket({ topic: `size/${qos}/${n}`, payload: "x".repeat(n), qos, id: qos ? id : undefined }));
        if (qos === 1) acks.push(`puback ${(await pub.raw.expect(PacketType.PUBACK)).body.length}`);
        if (qos === 2) {
          await pub.raw.expect(PacketType.PUBREC);
          pub.raw.write(pubrel(id));
          await pub.raw.expect(PacketType.PUBCOMP);
          acks.push("pubrec pubcomp");
        }
        if (qos) {
          pub5.write(publish5Packet({ topic: `size/5/${qos}/${n}`, payload: "y".repeat(n), qos, id }));
          const ack = await pub5.expect(qos === 1 ? PacketType.PUBACK : PacketType.PUBREC);
          const reason = ack.body.length > 2 ? ack.body[2] : 0;
          acks.push(`v5 ${qos} ${n}: 0x${reason.toString(16)}`);
          if (qos === 2 && reason < 0x80) { // Mosquitto delivers a QoS 2 message at PUBREL
            pub5.write(ack5(PacketType.PUBREL, id));
            await pub5.expect(PacketType.PUBCOMP);
          }
        }
        id++;
      }
    }
    await settle(300);
    const got = sub.raw.unread.filter((p) => p.type === PacketType.PUBLISH).map((p) => parsePublish(p).topic.toString()).sort();
    return { acks, got };
  }
  test("payloads above the limit are dropped, the sender answered alike", async () => {
    const port = await freePort();
    const limit = "message_size_limit 10\nallow_anonymous true\n";
    const theirs = await startMosquittoConf(file(`mosq-size-${port}.conf`, `listener ${port} ${HOST}\npersistence false\n${limit}`), port);
    let expected: unknown;
    try { expected = await outcome(theirs); } finally { await closeAll(); await theirs.stop(); }
    const ours = await startBroker({ args: ["-c", file(`midge-size-${port}.conf`, `listener 0 ${HOST}\n${limit}`)] });
    try {
      assert.deepEqual(await outcome(ours), expected);
      assert.match(ours.output(), /dropped: payload above message_size_limit \(1 so far\)/);
    } finally { await closeAll(); await ours.stop(); }
  });
});

