// For the tests that drive a core in this process through the Node host's binding
// (host/core.ts), without sockets: a link that keeps what was sent, and the few MQTT
// 3.1.1 packets they feed it, small enough to write out here.
import assert from "node:assert/strict";
import path from "node:path";
import { Core, type Link } from "../../host/core";

export class QuietLink implements Link {
  out: Uint8Array[] = [];
  send(b: Uint8Array): void {
    this.out.push(Uint8Array.from(b));
  }
  close(): void {}
  backlog(): number {
    return 0;
  }
  pause(): void {}
  resume(): void {}
  watchDrain(): void {}
  flush(): void {}
}

export const str = (s: string) => [s.length >> 8, s.length & 255, ...Buffer.from(s)];
export const packet = (first: number, body: number[]) => Uint8Array.from([first, body.length, ...body]);
export const connect = (id: string, clean: boolean) => packet(0x10, [...str("MQTT"), 4, clean ? 2 : 0, 0, 60, ...str(id)]);
export const subscribe = (filter: string, qos: number) => packet(0x82, [0, 1, ...str(filter), qos]);
export const publish = (topic: string, payload: string, qos: number, retain: boolean, id = 1) =>
  packet(0x30 | (qos << 1) | (retain ? 1 : 0), [...str(topic), ...(qos > 0 ? [id >> 8, id & 255] : []), ...Buffer.from(payload)]);
export const disconnect = () => Uint8Array.from([0xe0, 0]);

/** A fresh core with persistence in `file` (and the config `lines`), the file read back
 *  through the Node host's store service; its log lines. A trap throws out of here. */
export function restoredCore(module: WebAssembly.Module, file: string, lines = ""): { core: Core; log: string[] } {
  const log: string[] = [];
  let now = 1000;
  const core = new Core(module, {
    logLevel: 3,
    clock: () => (now += 1),
    log: (_level, line) => log.push(line),
    fatal: (error) => {
      throw error;
    },
  });
  const conf = Buffer.from(`persistence true\npersistence_location ${path.dirname(file)}\npersistence_file ${path.basename(file)}\n${lines}`);
  assert.deepEqual(core.config("persistence.conf", conf, 0), { done: true });
  core.restore(file);
  return { core, log };
}
