// The integration smoke test every runtime and board must pass (issue 7): connect,
// subscribe, QoS 1 and QoS 2 round trips, a retained message, a will. Small on purpose:
// the full suites (01-09) run against the Node host; this proves the same broker
// behaviour wherever the core runs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import path from "node:path";
import { type Broker, ROOT, connect, publish, subscribe, uid } from "./helpers.js";

export async function smoke(b: Broker): Promise<void> {
  const t = uid("smoke");
  const sub = await connect(b);
  assert.equal(sub.connack.returnCode, 0);
  assert.deepEqual(await subscribe(sub, { [`${t}/q/#`]: 2, [`${t}/will`]: 1 }), [2, 1]);

  const pub = await connect(b);
  await publish(pub, `${t}/q/1`, "one", { qos: 1 }); // resolves on PUBACK
  await publish(pub, `${t}/q/2`, "two", { qos: 2 }); // resolves on PUBCOMP
  const got = await sub.inbox.wait(2);
  assert.deepEqual(
    got.map((m) => [m.topic, m.payload.toString(), m.qos]),
    [[`${t}/q/1`, "one", 1], [`${t}/q/2`, "two", 2]],
  );

  await publish(pub, `${t}/kept`, "kept", { qos: 1, retain: true });
  const late = await connect(b);
  await subscribe(late, `${t}/kept`, 1);
  const [kept] = await late.inbox.wait(1);
  assert.equal(kept.payload.toString(), "kept");
  assert.equal(kept.retain, true);
  await publish(pub, `${t}/kept`, "", { qos: 1, retain: true }); // clear it: small boards have few slots

  const dying = await connect(b, { will: { topic: `${t}/will`, payload: Buffer.from("gone"), qos: 1, retain: false } });
  dying.destroy(); // no DISCONNECT: the will is published
  const will = await sub.inbox.waitTopic(`${t}/will`);
  assert.equal(will.payload.toString(), "gone");

  await Promise.all([sub.end(), pub.end(), late.end()]);
  b.assertAlive();
}

/**
 * The executable of an npm package that carries a runtime's binary (devDependencies
 * `deno`, `bun`), or why it cannot run here. With install scripts run, the package's
 * own bin is the binary; with them blocked, the binary is still in the platform
 * package (@deno/linux-x64-glibc, @oven/bun-linux-x64, ...), so look there too.
 */
export function runtimeBinary(name: "deno" | "bun"): { bin: string } | { skip: string } {
  const require = createRequire(path.join(ROOT, "package.json"));
  const arch = process.arch === "x64" ? "x64" : process.arch === "arm64" ? (name === "bun" ? "aarch64" : "arm64") : process.arch;
  const candidates =
    name === "deno"
      ? [`@deno/${process.platform}-${arch}-glibc/deno`, `@deno/${process.platform}-${arch}/deno`, "deno/deno"]
      : [`@oven/bun-${process.platform}-${arch}/bin/bun`, `@oven/bun-${process.platform}-${arch}-baseline/bin/bun`, "bun/bin/bun.exe"];
  const tried: string[] = [];
  for (const c of candidates) {
    let file: string;
    try {
      file = require.resolve(c);
    } catch {
      continue;
    }
    if (!existsSync(file)) continue;
    const r = spawnSync(file, ["--version"], { encoding: "utf8", timeout: 20_000 });
    if (r.status === 0) return { bin: file };
    tried.push(`${c}: ${(r.stderr || r.stdout || String(r.error)).trim().split("\n")[0]}`);
  }
  return { skip: `${name} is not runnable here (npm install installs the devDependency)${tried.length ? `: ${tried.join("; ")}` : ""}` };
}
