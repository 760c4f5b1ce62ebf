// `midge passwd`: Mosquitto's mosquitto_passwd, decided by the core (assembly/auth/passwd.ts)
// and run by each host (host/passwd.ts, host/native/passwd.c). Files it makes or edits
// must be read by the real mosquitto and by Midge alike (CONNACK 0 for the right password,
// 5 for a wrong one), including files mosquitto_passwd made; every error gives a message,
// a non-zero status (mosquitto_passwd's, run with the same arguments) and leaves the file
// as it was. Each host runs the same table; both must say the same thing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { BROKER_KIND, HOST, ROOT, closeAll, freePort, rawConnect, startBroker, startMosquittoConf, which } from "./helpers.js";

const mosquittoPasswd = which("mosquitto_passwd") ?? (existsSync("/usr/bin/mosquitto_passwd") ? "/usr/bin/mosquitto_passwd" : null);
const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
const skip = BROKER_KIND === "mosquitto" ? "midge's own command" : !mosquittoPasswd || !mosquitto ? "no mosquitto (apt-get install mosquitto)" : false;

const NODE = path.join(ROOT, "dist", "midge.mjs");
const NATIVE = path.join(ROOT, "build", "native", "midge-pi");
const hosts: Array<"node" | "native"> = existsSync(NATIVE) || process.env.CI === "true" ? ["node", "native"] : ["node"];

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-passwd-cmd-"));
chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user mosquitto
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run { status: number | null; stdout: string; stderr: string }

/** `midge passwd ARGS` on `host`, with `input` on stdin (a pipe: not a terminal). */
function midgePasswd(host: "node" | "native", args: string[], input = ""): Run {
  const [cmd, argv] = host === "node" ? [process.execPath, [NODE, "passwd", ...args]] : [NATIVE, ["passwd", ...args]];
  const r = spawnSync(cmd, argv, { encoding: "utf8", input, timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run): void {
  assert.equal(r.status, 0, `status ${r.status}: ${r.stderr}`);
}

function theirPasswd(args: string[], input = ""): Run {
  const r = spawnSync(mosquittoPasswd!, args, { encoding: "utf8", input, timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let fileCount = 0;
/** A new path in the test's directory (the file is not made). */
const fresh = (name: string) => path.join(dir, `${name}-${++fileCount}`);

// [user, password, CONNACK return code expected]
type Login = [string, string, number];

/** Each login's CONNACK return code (MQTT 3.1.1) from the real mosquitto and from Midge
 *  (the host under test: BROKER_KIND), both with `file` as their password_file. */
async function check(file: string, logins: Login[]): Promise<void> {
  chmodSync(file, 0o644); // for mosquitto's own user
  const expected = logins.map(([u, p, code]) => `${u}/${p}: ${code}`);
  const answers = async (b: Parameters<typeof rawConnect>[0]) => {
    const out: string[] = [];
    for (const [username, password] of logins) out.push(`${username}/${password}: ${(await rawConnect(b, { username, password })).returnCode}`);
    await closeAll();
    return out;
  };
  const port = await freePort();
  const conf = path.join(dir, `mosq-${port}.conf`);
  writeFileSync(conf, `listener ${port} ${HOST}\npersistence false\npassword_file ${file}\n`);
  const theirs = await startMosquittoConf(conf, port);
  try {
    assert.deepEqual(await answers(theirs), expected, "mosquitto");
  } finally {
    await closeAll();
    await theirs.stop();
  }
  const ours = await startBroker({ args: ["-c", writeConf(`listener 0 ${HOST}\npassword_file ${file}\n`)] });
  try {
    assert.deepEqual(await answers(ours), expected, "midge");
  } finally {
    await closeAll();
    await ours.stop();
  }
}

function writeConf(text: string): string {
  const p = fresh("midge.conf");
  writeFileSync(p, text);
  return p;
}

const users = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => l.split(":")[0]);
const PBKDF2 = /^[^:]+:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/;
const SHA512 = /^[^:]+:\$6\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/;
const line = (file: string, user: string) => readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${user}:`)) ?? "";
const noTempFiles = () => assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);

for (const host of hosts) {
  describe(`midge passwd (${host} host)`, { skip }, () => {
    test("-c -b, add, -H sha512, replace: mosquitto and Midge accept the file", async () => {
      const f = fresh("made");
      ok(midgePasswd(host, ["-c", "-b", f, "alice", "secret"]));
      assert.equal(statSync(f).mode & 0o777, 0o600, "a new file is 0600");
      assert.match(line(f, "alice"), PBKDF2);
      ok(midgePasswd(host, ["-b", f, "bob", "hunter2"]));
      ok(midgePasswd(host, ["-H", "sha512", "-b", f, "carol", "pw6"]));
      assert.match(line(f, "carol"), SHA512);
      writeFileSync(f, `# users\n${readFileSync(f, "utf8")}\n`); // a comment and a blank line, kept
      ok(midgePasswd(host, ["-H", "sha512-pbkdf2", "-b", f, "alice", "changed"]));
      assert.deepEqual(users(f), ["# users", "alice", "bob", "carol"], "replaced in place, the rest kept in order");
      assert.match(readFileSync(f, "utf8"), /^# users\n/);
      noTempFiles();
      await check(f, [["alice", "changed", 0], ["alice", "secret", 5], ["bob", "hunter2", 0], ["bob", "x", 5], ["carol", "pw6", 0],
        ["carol", "pw7", 5]]);
    });

    test("-D deletes a user, the others stay", async () => {
      const f = fresh("delete");
      ok(midgePasswd(host, ["-c", "-b", f, "alice", "secret"]));
      ok(midgePasswd(host, ["-b", f, "bob", "hunter2"]));
      ok(midgePasswd(host, ["-b", f, "carol", "x"]));
      const kept = line(f, "carol");
      ok(midgePasswd(host, ["-D", f, "bob"]));
      assert.deepEqual(users(f), ["alice", "carol"]);
      assert.equal(line(f, "carol"), kept);
      await check(f, [["alice", "secret", 0], ["bob", "hunter2", 5], ["carol", "x", 0]]);
    });

    test("-U hashes plain-text lines; hashed lines and comments are kept", async () => {
      const f = fresh("update");
      theirPasswd(["-c", "-b", f, "hashed", "already"]);
      const hashed = line(f, "hashed");
      writeFileSync(f, `# plain\ndave:plain1\n${hashed}\n\nerin:plain:2\r\n`);
      ok(midgePasswd(host, ["-U", f]));
      const text = readFileSync(f, "utf8");
      assert.match(text, /^# plain\ndave:\$7\$[^\n]*\nhashed:[^\n]*\n\nerin:\$7\$[^\n]*\r\n$/);
      assert.equal(line(f, "hashed"), hashed);
      await check(f, [["dave", "plain1", 0], ["erin", "plain:2", 0], ["hashed", "already", 0], ["dave", "x", 5]]);
    });

    test("a file mosquitto_passwd made, edited by midge passwd", async () => {
      const f = fresh("theirs");
      ok(theirPasswd(["-c", "-b", f, "alice", "secret"]));
      ok(theirPasswd(["-H", "sha512", "-b", f, "bob", "hunter2"]));
      ok(theirPasswd(["-b", f, "carol", "gone"]));
      const alice = line(f, "alice");
      ok(midgePasswd(host, ["-b", f, "bob", "hunter3"])); // replaced ($7$ now)
      ok(midgePasswd(host, ["-H", "sha512", "-b", f, "frank", "f1"]));
      ok(midgePasswd(host, ["-D", f, "carol"]));
      assert.deepEqual(users(f), ["alice", "bob", "frank"]);
      assert.equal(line(f, "alice"), alice, "untouched lines are kept byte for byte");
      assert.match(line(f, "bob"), PBKDF2);
      // and mosquitto_passwd can go on editing it
      ok(theirPasswd(["-b", f, "gina", "g1"]));
      await check(f, [["alice", "secret", 0], ["bob", "hunter2", 5], ["bob", "hunter3", 0], ["frank", "f1", 0], ["carol", "gone", 5],
        ["gina", "g1", 0]]);
    });

    test("the password asked twice (stdin not a terminal: read as lines, as mosquitto_passwd reads it)", async () => {
      const f = fresh("asked");
      const r = midgePasswd(host, ["-c", f, "hank"], "h1\nh1\n");
      ok(r);
      assert.equal(r.stdout, "Password: \nReenter password: \n");
      ok(midgePasswd(host, [f, "ivy"], "i1\r\ni1\r\n"));
      const before = readFileSync(f, "utf8");
      for (const [input, message] of [["a\nb\n", "Error: Passwords do not match."], ["", "Error: Empty password."],
        ["\n\n", "Error: Empty password."], ["abc", "Error: Empty password."]]) {
        const ours = midgePasswd(host, [f, "jack"], input);
        const theirs = theirPasswd([f, "jack"], input);
        assert.equal(ours.status, theirs.status, `${JSON.stringify(input)}: ${ours.stderr}`);
        assert.notEqual(ours.status, 0);
        assert.equal(ours.stderr, `${message}\n`);
        assert.equal(readFileSync(f, "utf8"), before, "unchanged");
      }
      await check(f, [["hank", "h1", 0], ["ivy", "i1", 0], ["ivy", "i1\r", 5], ["jack", "a", 5]]);
    });

    test("errors: a message, mosquitto_passwd's status, and the file unchanged", () => {
      const f = fresh("errors");
      ok(midgePasswd(host, ["-c", "-b", f, "alice", "secret"]));
      const before = readFileSync(f);
      const missing = path.join(dir, "missing");
      const cases: Array<[string[], RegExp]> = [
        [["-b", missing, "u", "p"], /^Error: cannot read .*missing: ENOENT\n$/],
        [[missing, "u"], /^Error: cannot read .*missing: ENOENT\n$/],
        [["-D", f, "nobody"], /^Warning: User nobody not found in password file\.\n$/],
        [["-b", f, "u"], /^Error: wrong number of arguments\.\n\nUsage: midge passwd /],
        [["-b", f, "u", "p", "extra"], /^Error: wrong number of arguments\.\n\nUsage: midge passwd /],
        [[f], /^Error: wrong number of arguments\./],
        [[], /^Error: wrong number of arguments\./],
        [["-x", f, "u"], /^Error: Unknown option '-x'\.\n\nUsage: midge passwd /],
        [["-H", "md5", "-b", f, "u", "p"], /^Error: Unknown hash type 'md5'/],
        [["-c", "-D", f, "u"], /^Error: -c and -D cannot be used together\.\n$/],
        [["-D", "-b", f, "u", "p"], /^Error: -b and -D cannot be used together\.\n$/],
        [["-D", "-U", f], /^Error: -D and -U cannot be used together\.\n$/],
        [["-c", f], /^Error: -c argument given but password file or username missing\.\n$/],
        [["-c", "-b", f, "u"], /^Error: -c argument given but password file, username, or password missing\.\n$/],
        [["-D", f], /^Error: -D argument given but password file or username missing\.\n$/],
        [["-U"], /^Error: -U argument given but password file missing\.\n$/],
        [["-b", f, "a:b", "p"], /^Error: Username must not contain the ':' character\.\n$/],
      ];
      for (const [args, message] of cases) {
        const ours = midgePasswd(host, args);
        assert.match(ours.stderr, message, args.join(" "));
        assert.notEqual(ours.status, 0, args.join(" "));
        const copy = fresh("theirs-copy");
        copyFileSync(f, copy);
        const theirs = theirPasswd(args.map((a) => (a === f ? copy : a)));
        assert.equal(ours.status, theirs.status, `${args.join(" ")}: mosquitto_passwd says ${theirs.status}`);
        assert.deepEqual(readFileSync(f), before, `${args.join(" ")} left the file as it was`);
        assert.ok(!existsSync(missing), "no file made without -c");
      }
      noTempFiles();
      // -U refuses a line that is not user:password, and changes nothing
      const g = fresh("corrupt");
      writeFileSync(g, "a:b\nnot a user line\n");
      const r = midgePasswd(host, ["-U", g]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^Error: Corrupt password file at line 2/);
      assert.equal(readFileSync(g, "utf8"), "a:b\nnot a user line\n");
    });

    test("--help: the usage text on stdout, status 0", () => {
      const r = midgePasswd(host, ["--help"]);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /^Usage: midge passwd \[-H sha512 \| -H sha512-pbkdf2\] \[-c \| -D\] FILE USER\n/);
    });
  });
}

describe("midge passwd: both hosts say the same", { skip: skip || (hosts.length < 2 ? "no build/native/midge-pi" : false) }, () => {
  test("messages and statuses", () => {
    const f = fresh("same");
    ok(midgePasswd("node", ["-c", "-b", f, "alice", "secret"]));
    for (const args of [["-D", f, "nobody"], ["-x"], ["-b", f, "u"], ["--help"], ["-H", "sha1", f, "u"], ["-b", path.join(dir, "nope"), "u", "p"]]) {
      assert.deepEqual(midgePasswd("native", args), midgePasswd("node", args), args.join(" "));
    }
    for (const input of ["a\nb\n", "x\nx\n"]) {
      const g = fresh("same-asked");
      assert.deepEqual(midgePasswd("native", ["-c", g, "u"], input).stdout, midgePasswd("node", ["-c", g, "u"], input).stdout);
    }
  });
});
