// ACL files (the config's acl_file) in Mosquitto's grammar. The same config, password file
// (made by the real mosquitto_passwd) and ACL file are given to the real mosquitto and to
// Midge: a matrix of clients (anonymous, users, a user without a section, a client id with
// a wildcard) gives the same deliveries to wildcard subscribers (retained and live), the
// same PUBLISH outcomes (MQTT 5 reason codes, what an observer sees) and the same wills.
// Intended differences, checked on Midge alone: a SUBSCRIBE whose filter can reach no
// topic the client may read is refused (SUBACK 0x80, MQTT 5 0x87; Mosquitto 2.0 grants it
// and delivers nothing), and a '/' in a client id or user name that a pattern puts in a
// topic gets nothing from the patterns (Mosquitto 2.0.11 lets client "a/b" into
// clients/a/b/#, client a's levels).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { IClientOptions } from "mqtt";
import { BROKER_KIND, HOST, closeAll, connect, freePort, settle, startBroker, startMosquittoConf, subscribe, withTimeout, type Broker, type TestClient } from "./helpers.js";

const passwd = existsSync("/usr/bin/mosquitto_passwd") ? "/usr/bin/mosquitto_passwd" : null;
const mosquitto = existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : null;
const skip = BROKER_KIND === "mosquitto" ? "midge's own config files" : !passwd || !mosquitto ? "no mosquitto (apt-get install mosquitto)" : false;

const dir = mkdtempSync(path.join(os.tmpdir(), "midge-acl-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, 0o644);
  return p;
};

const ACL = `# clients without a user name
topic read public/#
topic deny public/secret

user alice
topic readwrite home/#
topic deny home/locks/#
topic read $SYS/#

user bob
topic read home/+/temperature
topic write home/bob/#

user admin
topic readwrite #

pattern readwrite clients/%c/#
pattern read users/%u/inbox
`;

/** alice/secret, bob/hunter2, carol/x (no section), admin/root, by mosquitto_passwd. */
function passwordFile(): string {
  const p = path.join(dir, "passwd");
  for (const [i, [u, pw]] of [["alice", "secret"], ["bob", "hunter2"], ["carol", "x"], ["admin", "root"]].entries()) {
    const r = spawnSync(passwd!, [...(i === 0 ? ["-c"] : []), "-b", p, u, pw], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  chmodSync(dir, 0o755); // mosquitto started as root reads it as the user mosquitto
  chmodSync(p, 0o644);
  return p;
}

const TOPICS = [
  "public/news", "public/secret", "home/kitchen/temperature", "home/locks/front", "home/bob/light",
  "clients/anon-1/status", "clients/alice-1/status", "clients/bob-1/status", "users/alice/inbox",
  "users/bob/inbox", "other/thing",
];

type Who = { name: string; opts: IClientOptions };
const WHO: Who[] = [
  { name: "anonymous", opts: { clientId: "anon-1" } },
  { name: "alice", opts: { clientId: "alice-1", username: "alice", password: "secret" } },
  { name: "bob", opts: { clientId: "bob-1", username: "bob", password: "hunter2" } },
  { name: "carol (no section)", opts: { clientId: "carol-1", username: "carol", password: "x" } },
  { name: "client id with +", opts: { clientId: "x+y" } },
];

const admin = (b: Broker, extra: IClientOptions = {}) =>
  connect(b, { clientId: "admin-1", username: "admin", password: "root", protocolVersion: 5, ...extra });

/** What each client receives through `#`, retained then live, in both protocol versions. */
async function deliveries(b: Broker): Promise<string[]> {
  const out: string[] = [];
  const pub = await admin(b);
  for (const t of TOPICS) await pub.client.publishAsync(t, `r:${t}`, { qos: 1, retain: true });
  for (const v of [4, 5] as const) {
    for (const who of WHO) {
      const c = await connect(b, { ...who.opts, protocolVersion: v });
      await subscribe(c, "#", 1).catch(() => []);
      await settle(300);
      for (const t of TOPICS) await pub.client.publishAsync(t, `l:${t}`, { qos: 1 });
      await pub.client.publishAsync("clients/admin-1/done", "x", { qos: 1 }); // not readable by them: a pause
      await settle(300);
      const got = c.inbox.messages.map((m) => `${m.payload.toString()}${m.retain ? " (retained)" : ""}`).sort();
      out.push(`v${v} ${who.name}: ${got.join(", ")}`);
      await c.end();
    }
  }
  for (const t of TOPICS) await pub.client.publishAsync(t, "", { qos: 1, retain: true });
  await pub.end();
  return out;
}

/** Each client publishes QoS 1 to each topic: its MQTT 5 reason code, and whether the
 *  admin (subscribed to #) gets the message. */
async function publishes(b: Broker): Promise<string[]> {
  const out: string[] = [];
  const observer = await admin(b, { clientId: "observer" });
  await subscribe(observer, "#", 1);
  for (const v of [4, 5] as const) {
    for (const who of WHO) {
      const c = await connect(b, { ...who.opts, protocolVersion: v });
      const codes: string[] = [];
      for (const t of TOPICS) {
        const packet = await withTimeout(c.client.publishAsync(t, `${v}:${who.name}`, { qos: 1 }).catch((e: { code?: number }) => ({ reasonCode: e.code })), 5000, `PUBACK ${t}`);
        codes.push(v === 5 ? `${t}=${(packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0}` : t);
      }
      await c.end();
      await settle(200);
      const seen = observer.inbox.messages.filter((m) => m.payload.toString() === `${v}:${who.name}`).map((m) => m.topic).sort();
      out.push(`v${v} ${who.name}: acks ${codes.join(" ")}; delivered ${seen.join(" ")}`);
    }
  }
  await observer.end();
  return out;
}

/** Each client connects with a will on each of a few topics and is cut off. */
async function wills(b: Broker): Promise<string[]> {
  const observer = await admin(b, { clientId: "observer" });
  await subscribe(observer, "#", 1);
  const out: string[] = [];
  for (const who of WHO) {
    for (const t of ["public/news", "home/kitchen/temperature", "home/bob/light", "clients/anon-1/will", "clients/alice-1/will", "users/bob/inbox"]) {
      const c: TestClient = await connect(b, { ...who.opts, will: { topic: t, payload: Buffer.from(`will:${who.name}`), qos: 1, retain: false } });
      out.push(`${who.name} will on ${t}: CONNACK ${c.connack.returnCode}`);
      c.destroy();
      await settle(150);
    }
  }
  await settle(200);
  for (const m of observer.inbox.messages) out.push(`${m.payload.toString()} published on ${m.topic}`);
  await observer.end();
  return out;
}

const config = (port: number, pw: string, acl: string) =>
  `listener ${port} ${HOST}\nallow_anonymous true\npassword_file ${pw}\nacl_file ${acl}\n`;

describe("an ACL file, against mosquitto", { skip }, () => {
  const pw = skip ? "" : passwordFile();
  const acl = skip ? "" : file("acl", ACL);
  for (const [what, scenario] of [["deliveries to # subscribers, retained and live", deliveries], ["PUBLISH", publishes], ["wills", wills]] as const) {
    test(what, async () => {
      const port = await freePort();
      const theirs = await startMosquittoConf(file(`mosq-${port}.conf`, `${config(port, pw, acl)}persistence false\n`), port);
      let expected: string[];
      try { expected = await scenario(theirs); } finally { await closeAll(); await theirs.stop(); }
      const ours = await startBroker({ args: ["-c", file(`midge-${port}.conf`, config(0, pw, acl))] });
      try {
        assert.deepEqual(await scenario(ours), expected);
      } finally {
        await closeAll();
        await ours.stop();
      }
    });
  }
});

describe("an ACL file: what Midge does beyond Mosquitto 2.0", { skip: BROKER_KIND === "mosquitto" ? "midge only" : false }, () => {
  const pw = BROKER_KIND === "mosquitto" || !passwd ? "" : passwordFile();
  test("[MQTT-3.9.3-1] a filter that can reach no readable topic is refused: SUBACK 0x80, MQTT 5 0x87", { skip: pw === "" ? "no mosquitto_passwd" : false }, async () => {
    const b = await startBroker({ args: ["-c", file("sub.conf", config(0, pw, file("sub.acl", ACL)))] });
    try {
      const cases: Array<[Who, string, number]> = [
        [WHO[0], "home/#", 0x80], [WHO[0], "public/#", 1], [WHO[0], "public/secret", 0x80], [WHO[0], "#", 1],
        [WHO[1], "home/locks/#", 0x80], [WHO[1], "home/locks/+", 0x80], [WHO[1], "home/+/temperature", 1],
        [WHO[1], "$SYS/#", 1], [WHO[2], "home/#", 1], [WHO[2], "home/kitchen/light", 0x80],
        [WHO[3], "users/carol/inbox", 1], [WHO[3], "users/alice/inbox", 0x80], [WHO[4], "clients/#", 0x80], [WHO[4], "public/+", 1],
      ];
      for (const v of [4, 5] as const) {
        for (const [who, filter, code] of cases) {
          const c = await connect(b, { ...who.opts, protocolVersion: v });
          // (the mqtt client rejects a SUBACK with a failure code: the codes are in the packet)
          const granted = await withTimeout(c.client.subscribeAsync({ [filter]: { qos: 1 } })
            .then((g) => g.map((x) => x.qos), (e: { packet?: { granted: number[] }; code?: number }) => e.packet?.granted ?? [e.code ?? -1]), 5000, "SUBACK");
          const want = code === 1 ? 1 : v === 5 ? 0x87 : 0x80;
          assert.equal(granted[0], want, `v${v} ${who.name} ${filter}`);
          await c.end();
        }
      }
    } finally {
      await closeAll();
      await b.stop();
    }
  });

  test("a '/' in a client id does not let a pattern reach another client's levels", async () => {
    const b = await startBroker({ args: ["-c", file("slash.conf", `listener 0 ${HOST}\nallow_anonymous true\nacl_file ${file("slash.acl", "user admin\ntopic read #\npattern readwrite clients/%c/#\n")}\n`)] });
    try {
      const observer = await connect(b, { clientId: "obs", username: "admin", protocolVersion: 5 });
      await subscribe(observer, "#", 1);
      const sneaky = await connect(b, { clientId: "a/b", protocolVersion: 5 });
      const denied = await sneaky.client.publishAsync("clients/a/b/x", "no", { qos: 1 }).catch((e: { code?: number }) => ({ reasonCode: e.code }));
      assert.equal((denied as { reasonCode?: number }).reasonCode, 0x87);
      const plain = await connect(b, { clientId: "a", protocolVersion: 5 });
      await plain.client.publishAsync("clients/a/x", "yes", { qos: 1 });
      await observer.inbox.waitTopic("clients/a/x");
      assert.deepEqual(observer.inbox.messages.map((m) => m.topic), ["clients/a/x"]);
    } finally {
      await closeAll();
      await b.stop();
    }
  });
});

describe("an ACL file reloaded on SIGHUP", { skip: BROKER_KIND === "mosquitto" ? "midge only" : false }, () => {
  test("new rules apply to connected clients at once; a broken file keeps the rules in force", async () => {
    const acl = file("reload.acl", "user admin\ntopic readwrite #\npattern read clients/%c/#\n");
    const b = await startBroker({ args: ["-c", file("reload.conf", `listener 0 ${HOST}\nallow_anonymous true\nacl_file ${acl}\n`)] });
    try {
      const pub = await connect(b, { clientId: "pub", username: "admin", protocolVersion: 5 });
      const sub = await connect(b, { clientId: "s1", protocolVersion: 5 });
      await subscribe(sub, "#", 1); // reaches clients/s1/# only, for now
      const round = async (tag: string) => {
        for (const t of ["clients/s1/a", "news/a"]) await pub.client.publishAsync(t, tag, { qos: 1 });
        await pub.client.publishAsync("clients/s1/end", tag, { qos: 1 });
        await sub.inbox.until((ms) => ms.some((m) => m.topic === "clients/s1/end" && m.payload.toString() === tag), 5000, `end of ${tag}`);
        return sub.inbox.messages.filter((m) => m.payload.toString() === tag && m.topic !== "clients/s1/end").map((m) => m.topic);
      };
      assert.deepEqual(await round("before"), ["clients/s1/a"]);
      writeFileSync(acl, "topic read news/#\nuser admin\ntopic readwrite #\npattern read clients/%c/#\n");
      b.proc.kill("SIGHUP");
      await withTimeout((async () => { while (!/ACL file .*: 3 rules/.test(b.output())) await settle(50); })(), 5000, "the reload");
      assert.deepEqual(await round("after"), ["clients/s1/a", "news/a"]);
      writeFileSync(acl, "user admin\ntopic readwrite #\nbogus line\n");
      b.proc.kill("SIGHUP");
      await withTimeout((async () => { while (!/SIGHUP: .*:3: not a user, topic or pattern line: 'bogus line'; the rules in force stay/.test(b.output())) await settle(50); })(), 5000, "the refused reload");
      assert.deepEqual(await round("kept"), ["clients/s1/a", "news/a"]);
    } finally {
      await closeAll();
      await b.stop();
    }
  });
});

describe("a bad ACL file: file, line and what is wrong; status 2", { skip: BROKER_KIND === "mosquitto" ? "midge only" : false }, () => {
  const cases: Array<[string, string]> = [
    ["topic read public/#\nbogus\n", "{p}:2: not a user, topic or pattern line: 'bogus'"],
    ["user\n", "{p}:1: user needs a name: 'user'"],
    ["# c\n\ntopic read\n", "{p}:3: no topic: 'topic read'"],
    ["pattern write a/#/b\n", "{p}:1: not a valid topic filter: 'pattern write a/#/b'"],
    ["topic readwrite a+/b\n", "{p}:1: not a valid topic filter: 'topic readwrite a+/b'"],
  ];
  cases.forEach(([text, message], i) => {
    test(`refused: ${text.trim().split("\n").at(-1)}`, async () => {
      const p = file(`bad-${i}.acl`, text);
      const b = await startBroker({ args: ["-c", file(`bad-${i}.conf`, `listener 0 ${HOST}\nacl_file ${p}\n`)] }).catch((e: Error) => e);
      assert.ok(b instanceof Error, "the broker must not start");
      assert.match(b.message, /exited early \(code 2,/);
      assert.match(b.message, new RegExp(`midge: ${message.replace("{p}", p).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    });
  });
  test("an ACL file that cannot be read", async () => {
    const missing = path.join(dir, "missing.acl");
    const b = await startBroker({ args: ["-c", file("missing.conf", `listener 0 ${HOST}\nacl_file ${missing}\n`)] }).catch((e: Error) => e);
    assert.ok(b instanceof Error);
    assert.match(b.message, new RegExp(`midge: cannot read ${missing}: ENOENT`));
  });
});

describe("a password file reloaded on SIGHUP", { skip: BROKER_KIND === "mosquitto" || !passwd ? "midge only, with mosquitto_passwd" : false }, () => {
  test("a user taken out is disconnected (MQTT 5: 0x87) and refused; the others stay; a broken file keeps the users", async () => {
    const pw = passwordFile();
    const b = await startBroker({ args: ["-c", file("pwreload.conf", `listener 0 ${HOST}\npassword_file ${pw}\n`)] });
    try {
      const alice = await connect(b, { clientId: "a1", username: "alice", password: "secret", protocolVersion: 5 });
      const bob = await connect(b, { clientId: "b1", username: "bob", password: "hunter2", protocolVersion: 5 });
      let bobReason = -1;
      bob.client.on("disconnect", (p: { reasonCode?: number }) => { bobReason = p.reasonCode ?? -1; });
      const r = spawnSync(passwd!, ["-D", pw, "bob"], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      b.proc.kill("SIGHUP");
      await withTimeout(bob.closed, 5000, "bob's disconnection");
      assert.equal(bobReason, 0x87);
      assert.equal(alice.isClosed(), false);
      const again = await connect(b, { clientId: "b2", username: "bob", password: "hunter2", protocolVersion: 5 }).catch((e: { code?: number }) => e);
      assert.equal((again as { code?: number }).code, 0x87);
      writeFileSync(pw, "alice:not a hash\n");
      b.proc.kill("SIGHUP");
      await withTimeout((async () => { while (!/SIGHUP: .*:1: alice: the password is not a mosquitto_passwd hash/.test(b.output())) await settle(50); })(), 5000, "the refused reload");
      const stillAlice = await connect(b, { clientId: "a2", username: "alice", password: "secret", protocolVersion: 5 });
      assert.equal(stillAlice.connack.reasonCode, 0);
      assert.equal(alice.isClosed(), false);
    } finally {
      await closeAll();
      await b.stop();
    }
  });
});
