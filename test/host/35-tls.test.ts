// TLS listeners (Mosquitto's certfile, keyfile, cafile, require_certificate,
// use_identity_as_username, use_subject_as_username, tls_version): certificates made here
// with openssl (a CA, a server certificate for 127.0.0.1 and localhost, client
// certificates, an expired server certificate, a second unrelated CA), driven by
// mosquitto_pub/mosquitto_sub and the mqtt client over mqtts://. The client-certificate
// scenarios run against the real mosquitto with the same config and files too, and must
// give the same outcomes (a differential test, as 28-passwords and 33-acl).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { IClientOptions } from "mqtt";
import { BROKER_KIND, HOST, ROOT, closeAll, connect, freePort, settle, sleep, startBroker, startMosquittoConf, subscribe, withTimeout, type Broker } from "./helpers.js";

const mosquitto = existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null;
const clients = spawnSync("mosquitto_pub", ["--help"]).error === undefined;
const openssl = spawnSync("openssl", ["version"]).status === 0;
const skip = BROKER_KIND === "mosquitto" ? "midge's own listeners" : !clients || !openssl ? "no mosquitto-clients or openssl" : false;

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-tls-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);
const file = (name: string, text: string) => {
  writeFileSync(at(name), text);
  chmodSync(at(name), 0o644);
  return at(name);
};

function sh(args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A key and a certificate `name` for `subject`, signed by CA `ca` (self-signed: a CA). */
function certificate(name: string, subject: string, ca: string | null, days = "2", ext: string[] = []): void {
  if (ca === null) {
    sh(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", days, "-subj", subject]);
    return;
  }
  sh(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  sh(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", days, ...ext]);
}

if (!skip) {
  certificate("ca", "/CN=Midge Test CA", null);
  certificate("ca2", "/CN=Unrelated CA", null);
  file("san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  certificate("server", "/CN=localhost", "ca", "2", ["-extfile", "san.ext"]);
  certificate("server2", "/CN=localhost", "ca2", "2", ["-extfile", "san.ext"]);
  certificate("expired", "/CN=localhost", "ca", "-1", ["-extfile", "san.ext"]);
  certificate("sensor1", "/C=DE/O=Midge/CN=sensor1", "ca");
  certificate("observer", "/O=Midge/CN=observer", "ca");
  certificate("stranger", "/CN=sensor1", "ca2"); // the right name from the wrong CA
  chmodSync(dir, 0o755); // mosquitto started as root reads the files as the user mosquitto
  for (const f of ["ca", "ca2", "server", "server2", "expired", "sensor1", "observer", "stranger"]) {
    chmodSync(at(`${f}.key`), 0o644);
    chmodSync(at(`${f}.crt`), 0o644);
  }
}

/** A command's exit status and output (stdout, then stderr). */
function run(cmd: string, args: string[], ms = 8000): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), ms);
    p.once("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}

const tlsArgs = (b: Broker, ca: string, cert?: string) =>
  ["-h", b.host, "-p", String(b.port), "--cafile", at(`${ca}.crt`), ...(cert ? ["--cert", at(`${cert}.crt`), "--key", at(`${cert}.key`)] : [])];

/** mosquitto_pub once: 0 when the broker took the message. */
const pub = (b: Broker, ca: string, cert: string | undefined, topic: string, qos = 1, extra: string[] = []) =>
  run("mosquitto_pub", [...tlsArgs(b, ca, cert), "-t", topic, "-m", `m:${topic}`, "-q", String(qos), ...extra]);

/** A mosquitto_sub on `filter` while `during` runs: the lines it printed ("topic payload"). */
async function subDuring(b: Broker, ca: string, cert: string | undefined, filter: string, during: () => Promise<unknown>, qos = 1): Promise<string[]> {
  const sub = run("mosquitto_sub", [...tlsArgs(b, ca, cert), "-t", filter, "-q", String(qos), "-v", "-W", "4"], 10_000);
  await sleep(800);
  await during();
  const r = await sub;
  return r.out.split("\n").filter((l) => l !== "" && !l.startsWith("Timed out")).sort();
}

const listener = (port: number, lines: string[]) => `listener ${port} ${HOST}\n${lines.join("\n")}\n`;
const serverFiles = (name = "server") => [`certfile ${at(`${name}.crt`)}`, `keyfile ${at(`${name}.key`)}`];

async function midge(conf: string): Promise<Broker> {
  return startBroker({ args: ["-c", file(`midge-${Math.random().toString(36).slice(2)}.conf`, conf)] });
}

describe("TLS listeners", { skip }, () => {
  test("mosquitto_pub and mosquitto_sub with --cafile: QoS 0, 1 and 2 round trips", async () => {
    const b = await midge(listener(0, [...serverFiles(), "allow_anonymous true"]));
    try {
      assert.match(b.output(), /listening on 127\.0\.0\.1:\d+ \(TLS\)/);
      for (const qos of [0, 1, 2]) {
        const got = await subDuring(b, "ca", undefined, "t/#", async () => {
          const r = await pub(b, "ca", undefined, `t/${qos}`, qos);
          assert.equal(r.status, 0, r.out);
        }, qos);
        assert.deepEqual(got, [`t/${qos} m:t/${qos}`]);
      }
      // a large message: many TLS records, several reads
      const big = "x".repeat(200_000);
      const got = await subDuring(b, "ca", undefined, "big", async () => {
        const r = await run("mosquitto_pub", [...tlsArgs(b, "ca"), "-t", "big", "-f", file("big.txt", big), "-q", "1"]);
        assert.equal(r.status, 0, r.out);
      });
      assert.deepEqual(got, [`big ${big}`]);
    } finally {
      await b.stop();
    }
  });

  test("a wrong CA and a plain TCP client are refused, and the failed handshakes logged", async () => {
    const b = await midge(listener(0, [...serverFiles(), "allow_anonymous true"]));
    try {
      const wrong = await pub(b, "ca2", undefined, "t");
      assert.notEqual(wrong.status, 0, wrong.out);
      const plain = await run("mosquitto_pub", ["-h", b.host, "-p", String(b.port), "-t", "t", "-m", "x"]);
      assert.notEqual(plain.status, 0, plain.out);
      await settle(300);
      // (the Node host may no longer know the address of a peer that hung up: "a client")
      const failed = b.output().match(/TLS handshake with (127\.0\.0\.1:\d+|a client) failed: .+/g) ?? [];
      assert.ok(failed.length >= 2, b.output());
      assert.ok(failed.some((l) => /wrong version number/.test(l)), failed.join("\n"));
      b.assertAlive();
    } finally {
      await b.stop();
    }
  });

  test("an expired server certificate is refused by the client, and the handshake logged", async () => {
    const b = await midge(listener(0, [...serverFiles("expired"), "allow_anonymous true"]));
    try {
      const r = await pub(b, "ca", undefined, "t");
      assert.notEqual(r.status, 0, r.out);
      await settle(300);
      assert.match(b.output(), /TLS handshake with .* failed: .*certificate expired/);
    } finally {
      await b.stop();
    }
  });

  test("the mqtt client over mqtts:// with MQTT 5, and tls_version tlsv1.3", async () => {
    const b = await midge(listener(0, [...serverFiles(), "tls_version tlsv1.3", "allow_anonymous true"]));
    try {
      const tls = { protocol: "mqtts" as const, ca: readFileSync(at("ca.crt")), servername: "localhost" };
      const s = await connect(b, { ...tls, protocolVersion: 5 });
      await subscribe(s, "m5/#", 2);
      const p = await connect(b, { ...tls, protocolVersion: 5 });
      await p.client.publishAsync("m5/a", "five", { qos: 2, properties: { userProperties: { k: "v" } } });
      const m = await s.inbox.waitTopic("m5/a");
      assert.equal(m.payload.toString(), "five");
      assert.deepEqual({ ...m.properties?.userProperties }, { k: "v" });
      assert.equal((s.client.stream as unknown as { getProtocol(): string }).getProtocol(), "TLSv1.3");
      await closeAll();
      // TLS 1.2 only: refused by a tlsv1.3 listener
      await assert.rejects(connect(b, { ...tls, maxVersion: "TLSv1.2" } as IClientOptions));
    } finally {
      await closeAll();
      await b.stop();
    }
  });

  test("SIGHUP reloads the certificates for new connections", async () => {
    const cert = file("reload.crt", readFileSync(at("server.crt"), "utf8"));
    const key = file("reload.key", readFileSync(at("server.key"), "utf8"));
    const b = await midge(listener(0, [`certfile ${cert}`, `keyfile ${key}`, "allow_anonymous true"]));
    try {
      assert.equal((await pub(b, "ca", undefined, "t")).status, 0);
      copyFileSync(at("server2.crt"), cert);
      copyFileSync(at("server2.key"), key);
      b.proc.kill("SIGHUP");
      await settle(500);
      assert.equal((await pub(b, "ca2", undefined, "t")).status, 0, b.output());
      assert.notEqual((await pub(b, "ca", undefined, "t")).status, 0);
      // a broken key on SIGHUP: logged, the certificates in force stay
      writeFileSync(key, "not a key\n");
      b.proc.kill("SIGHUP");
      await settle(500);
      assert.match(b.output(), /SIGHUP: keyfile .*reload\.key holds no PEM private key; the certificates in force stay/);
      assert.equal((await pub(b, "ca2", undefined, "t")).status, 0, b.output());
    } finally {
      await b.stop();
    }
  });
});

describe("TLS files that stop the start", { skip }, () => {
  const start = (conf: string) => {
    const bin = BROKER_KIND === "native" ? [path.join(ROOT, "build", "native", "midge-pi")] : [process.execPath, path.join(ROOT, "dist", "midge.mjs")];
    const r = spawnSync(bin[0], [...bin.slice(1), "-c", file("start.conf", conf)], { encoding: "utf8", timeout: 10_000 });
    return { status: r.status, err: r.stderr };
  };
  test("a missing certificate, a key that does not match, a keyfile without certfile", () => {
    assert.deepEqual(start(listener(0, [`certfile ${at("nope.crt")}`, `keyfile ${at("server.key")}`])),
      { status: 1, err: `midge: cannot read certfile ${at("nope.crt")}: ENOENT\n` });
    assert.deepEqual(start(listener(0, [`certfile ${at("server.crt")}`, `keyfile ${at("sensor1.key")}`])),
      { status: 1, err: `midge: keyfile ${at("sensor1.key")} does not match certfile ${at("server.crt")}\n` });
    assert.deepEqual(start(listener(0, [`certfile ${at("server.crt")}`, `keyfile ${at("san.ext")}`])),
      { status: 1, err: `midge: keyfile ${at("san.ext")} holds no PEM private key\n` });
    assert.deepEqual(start(listener(0, ["allow_anonymous true", `keyfile ${at("server.key")}`])),
      { status: 2, err: `midge: ${at("start.conf")}:3: keyfile without certfile: a TLS listener needs both (Mosquitto 2.0.11 would listen without TLS)\n` });
    assert.equal(start(listener(0, [...serverFiles(), "tls_version tlsv1.9"])).status, 2);
  });
});

// ---- client certificates: the same outcomes as the real mosquitto ----

const ACL = "user sensor1\ntopic readwrite sensors/sensor1/#\n\nuser observer\ntopic read #\n";

/** require_certificate: who gets through the handshake, and whose message arrives. */
async function requireCertificate(b: Broker): Promise<string[]> {
  const out: string[] = [];
  const got = await subDuring(b, "ca", "observer", "#", async () => {
    for (const who of [undefined, "sensor1", "stranger"]) {
      const r = await pub(b, "ca", who, `from/${who ?? "nobody"}`);
      out.push(`${who ?? "no certificate"}: ${r.status === 0 ? "published" : "refused"}`);
    }
  });
  return [...out, ...got];
}

/** use_identity_as_username with an ACL: the CN's own topics only; the CONNECT's user name is ignored. */
async function identityAcl(b: Broker): Promise<string[]> {
  const out: string[] = [];
  const got = await subDuring(b, "ca", "observer", "#", async () => {
    for (const topic of ["sensors/sensor1/t", "sensors/other/t", "elsewhere"]) {
      const r = await pub(b, "ca", "sensor1", topic, 1, ["-u", "observer", "-P", "wrong"]);
      out.push(`sensor1 -> ${topic}: ${r.status}`);
    }
  });
  return [...out, ...got];
}

/** use_subject_as_username: the subject in RFC 2253 form is the user name. */
async function subjectAcl(b: Broker): Promise<string[]> {
  return subDuring(b, "ca", "observer", "#", async () => {
    await pub(b, "ca", "sensor1", "subject/ok");
    await pub(b, "ca", "sensor1", "subject/no");
  });
}

const diffConfs: Array<[string, (b: Broker) => Promise<string[]>, (port: number) => string]> = [
  ["require_certificate true: a client certificate signed by cafile, and nothing else, gets through", requireCertificate,
    (port) => listener(port, [...serverFiles(), `cafile ${at("ca.crt")}`, "require_certificate true", "allow_anonymous true"])],
  ["use_identity_as_username true with acl_file: the CN is the user name", identityAcl,
    (port) => listener(port, [...serverFiles(), `cafile ${at("ca.crt")}`, "require_certificate true", "use_identity_as_username true",
      `acl_file ${file("identity.acl", ACL)}`])],
  ["use_subject_as_username true with acl_file: the RFC 2253 subject is the user name", subjectAcl,
    (port) => listener(port, [...serverFiles(), `cafile ${at("ca.crt")}`, "require_certificate true", "use_subject_as_username true",
      `acl_file ${file("subject.acl", "user CN=sensor1,O=Midge,C=DE\ntopic write subject/ok\n\nuser CN=observer,O=Midge\ntopic read #\n")}`])],
];

describe("client certificates, against mosquitto", { skip: skip || (!mosquitto ? "no mosquitto" : false) }, () => {
  for (const [what, scenario, conf] of diffConfs) {
    test(what, async () => {
      const port = await freePort();
      const theirs = await startMosquittoConf(file(`mosq-${port}.conf`, `${conf(port)}persistence false\n`), port);
      let expected: string[];
      try {
        expected = await withTimeout(scenario(theirs), 30_000, "mosquitto scenario");
      } finally {
        await theirs.stop();
      }
      const ours = await midge(conf(0));
      try {
        assert.deepEqual(await withTimeout(scenario(ours), 30_000, "midge scenario"), expected);
        ours.assertAlive();
      } finally {
        await ours.stop();
      }
    });
  }
});
