// Password files (the config's password_file) as mosquitto_passwd writes them: the host
// reads the file, the core parses it and checks each CONNECT's user name and password
// with the host's crypto service (node:crypto in the Node host, OpenSSL's libcrypto in
// the native host). The same file, made by the real mosquitto_passwd, is run against the
// real mosquitto: every answer must be the same (Mosquitto 2 answers a wrong password
// with CONNACK 5, MQTT 5: 0x87, as it answers a client not allowed in).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { BROKER_KIND, HOST, ROOT, closeAll, freePort, rawConnect, rawConnect5, startBroker, startMosquittoConf, which, type Broker } from "./helpers.js";

const passwd = which("mosquitto_passwd") ?? (existsSync("/usr/bin/mosquitto_passwd") ? "/usr/bin/mosquitto_passwd" : null);
const mosquitto = which("mosquitto") ?? (existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null);
const skip = BROKER_KIND === "mosquitto" ? "midge's own config files" : !passwd || !mosquitto ? "no mosquitto (apt-get install mosquitto)" : false;

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-passwd-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** alice/secret ($7$, mosquitto_passwd's default) and bob/hunter2 ($6$), by mosquitto_passwd. */
function passwordFile(): string {
  const p = path.join(dir, "passwd");
  const run = (args: string[]) => {
    const r = spawnSync(passwd!, args, { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  };
  run(["-c", "-b", p, "alice", "secret"]);
  run(["-H", "sha512", "-b", p, "bob", "hunter2"]);
  // mosquitto started as root reads it as the user mosquitto
  chmodSync(dir, 0o755);
  chmodSync(p, 0o644);
  return p;
}

// [user, password] (undefined: not sent)
const logins: Array<[string | undefined, string | undefined]> = [
  ["alice", "secret"], ["alice", "wrong"], ["alice", undefined], ["bob", "hunter2"], ["bob", "hunter3"],
  ["carol", "x"], [undefined, undefined],
];

/** Each login's CONNACK code in MQTT 3.1.1 and MQTT 5. */
async function answers(b: Broker): Promise<string[]> {
  const out: string[] = [];
  for (const [username, password] of logins) {
    const v4 = (await rawConnect(b, { username, password })).returnCode;
    const v5 = (await rawConnect5(b, { username, password })).connack.reasonCode;
    out.push(`${username ?? "-"}/${password ?? "-"}: ${v4} 0x${v5.toString(16)}`);
  }
  await closeAll();
  return out;
}


describe("a password file made by mosquitto_passwd, against mosquitto", { skip }, () => {
  const pw = skip ? "" : passwordFile();
  for (const [what, extra] of [["allow_anonymous false (the default with a listener)", ""], ["allow_anonymous true", "allow_anonymous true\n"]]) {
    test(what, async () => {
      const port = await freePort();
      const theirs = await startMosquittoConf(file(`mosq-${port}.conf`, `listener ${port} ${HOST}\npersistence false\npassword_file ${pw}\n${extra}`), port);
      let expected: string[];
      try { expected = await answers(theirs); } finally { await theirs.stop(); }
      const ours = await startBroker({ args: ["-c", file(`midge-${port}.conf`, `listener 0 ${HOST}\npassword_file ${pw}\n${extra}`)] });
      try {
        assert.deepEqual(await answers(ours), expected);
        if (extra === "") assert.match(ours.output(), /\(not authorized: wrong or missing password\)/);
      } finally {
        await closeAll();
        await ours.stop();
      }
    });
  }
});

// Both hosts answer a bad password file the same way (status 2, file, line and user).
const NODE = path.join(ROOT, "dist", "midge.mjs");
const NATIVE = path.join(ROOT, "build", "native", "midge-pi");
const skipBoth = BROKER_KIND !== "midge" ? "compares both hosts itself (run with the Node host)"
  : !existsSync(NATIVE) && process.env.CI !== "true" ? "no build/native/midge-pi" : false;

describe("a bad password file, on both hosts", { skip: skipBoth }, () => {
  function both(args: string[]) {
    const run = (cmd: string, argv: string[]) => {
      const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 10_000, env: { ...process.env, MIDGE_PORT: "" } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const node = run(process.execPath, [NODE, ...args]);
    assert.deepEqual(run(NATIVE, args), node);
    return node;
  }
  const cases: Array<[string, string]> = [
    ["alice:secret\n", "{p}:1: alice: the password is not a mosquitto_passwd hash ($7$ or $6$); mosquitto_passwd -U FILE hashes a plain-text file"],
    ["# ok\nbob:$6$c2FsdA==$aGFzaA==\n", "{p}:2: bob: the hash is not base64 of a 64-byte SHA-512 digest"],
    ["nocolon\n", "{p}:1: not a 'user:password hash' line"],
  ];
  for (const [text, message] of cases) {
    test(`refused: ${text.trim().split("\n").at(-1)}`, () => {
      const p = file(`bad-${cases.findIndex((c) => c[0] === text)}`, text);
      const r = both(["-c", file("bad.conf", `listener 0 ${HOST}\npassword_file ${p}\n`)]);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `midge: ${message.replace("{p}", p)}\n`);
    });
  }
  test("a password file that cannot be read", () => {
    const missing = path.join(dir, "missing");
    const r = both(["-c", file("missing.conf", `listener 0 ${HOST}\npassword_file ${missing}\n`)]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `midge: cannot read ${missing}: ENOENT\n`);
  });
});
