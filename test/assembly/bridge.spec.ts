// A bridge's topic mapping (assembly/bridge/topics.ts), as Mosquitto's `topic PATTERN
// DIRECTION QOS LOCAL REMOTE` means it: LOCAL + x goes upstream as REMOTE + x and back;
// the first line of the bridge that covers a topic decides; a topic no line covers in
// that direction is not mapped.

import { bridgesReset, addBridge, addBridgeTopic, Direction } from "../../assembly/bridge/bridges";
import { mapTopic, MAPPED_IN, MAPPED_OUT, mappedLen } from "../../assembly/bridge/topics";
import { text, bodyLength } from "./wire";

const NAME = memory.data(8);
const P = memory.data(64), L = memory.data(64), R = memory.data(64);

function put(at: usize, s: string): i32 { for (let i = 0; i < s.length; i++) store<u8>(at + <usize>i, <u8>s.charCodeAt(i)); return s.length; }
function line(d: Direction, pattern: string, local: string, remote: string): void {
  expect(addBridgeTopic(d, 1, P, put(P, pattern), L, put(L, local), R, put(R, remote))).toBe(true);
}
/** `topic` mapped in direction `d`, or "-" when no line covers it. */
function mapped(d: Direction, topic: string): string {
  const t = text(topic);
  if (!mapTopic(0, d, t, bodyLength())) return "-";
  const at = d == Direction.Out ? MAPPED_OUT : MAPPED_IN;
  let s = "";
  for (let i = 0; i < mappedLen; i++) s += String.fromCharCode(load<u8>(at + <usize>i));
  return s;
}

describe("bridge topics", () => {
  beforeEach(() => {
    bridgesReset();
    expect(addBridge(NAME, put(NAME, "up"))).toBe(true);
  });

  test("no prefixes: the same topic both ways, only in the line's direction", () => {
    line(Direction.Out, "sensors/#", "", "");
    line(Direction.In, "cmd/+", "", "");
    expect(mapped(Direction.Out, "sensors/a/b")).toBe("sensors/a/b");
    expect(mapped(Direction.In, "sensors/a/b")).toBe("-");
    expect(mapped(Direction.In, "cmd/on")).toBe("cmd/on");
    expect(mapped(Direction.In, "cmd/on/x")).toBe("-");
  });

  test("prefixes: LOCAL + x out as REMOTE + x, and back", () => {
    line(Direction.Both, "#", "local/", "remote/site1/");
    expect(mapped(Direction.Out, "local/a")).toBe("remote/site1/a");
    expect(mapped(Direction.In, "remote/site1/b/c")).toBe("local/b/c");
    expect(mapped(Direction.Out, "other/a")).toBe("-");
    expect(mapped(Direction.In, "remote/site2/b")).toBe("-");
  });

  test("an empty pattern: the prefixes are whole topics", () => {
    line(Direction.Out, "", "home/kitchen/temp", "sites/1/kitchen/temp");
    expect(mapped(Direction.Out, "home/kitchen/temp")).toBe("sites/1/kitchen/temp");
    expect(mapped(Direction.Out, "home/kitchen/temp/x")).toBe("-");
  });

  test("the first line that covers the topic decides", () => {
    line(Direction.Out, "a/#", "", "first/");
    line(Direction.Out, "#", "", "second/");
    expect(mapped(Direction.Out, "a/b")).toBe("first/a/b");
    expect(mapped(Direction.Out, "b")).toBe("second/b");
  });
});
