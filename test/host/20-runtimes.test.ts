// The same host bundle (dist/midge.mjs) on Node, Deno and Bun: the smoke test against
// each. Deno and Bun come from the npm packages `deno` and `bun` (devDependencies).
import { after, describe, test } from "node:test";
import path from "node:path";
import { type Broker, ROOT, startBroker, startCommand } from "./helpers.js";
import { runtimeBinary, smoke } from "./smoke.js";

const bundle = path.join(ROOT, "dist", "midge.mjs");

const runtimes: Array<[string, () => Promise<Broker>, string | false]> = [
  ["node", () => startBroker(), false],
  ...(["deno", "bun"] as const).map((name): [string, () => Promise<Broker>, string | false] => {
    const found = runtimeBinary(name);
    const args = name === "deno" ? ["run", "-A", bundle] : [bundle];
    return ["bin" in found ? name : name, () => startCommand("bin" in found ? found.bin : name, [...args, "--port", "0"]), "skip" in found ? found.skip : false];
  }),
];

for (const [name, start, skip] of runtimes) {
  describe(`dist/midge.mjs under ${name}`, { skip }, () => {
    let broker: Broker | undefined;
    after(async () => {
      await broker?.stop();
    });
    test("connect, subscribe, QoS 1 and 2 round trips, retained, will", { timeout: 30_000 }, async () => {
      broker = await start();
      await smoke(broker);
    });
  });
}
