// For the tests that drive a core in this process through the Node host's binding
// (host/core.ts), without sockets: a link that keeps what was sent, and the few MQTT
// 3.1.1 packets they feed it, small enough to write out here.
import type { Link } from "../../host/core";

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
