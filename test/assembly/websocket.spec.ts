// RFC 6455 frame headers (assembly/ws/frames.ts): decodes each form of length, and
// rejects what §5 forbids; close frame payloads; unmasking from any payload offset.
import { decodeFrameHeader, frameOpcode, frameFin, frameLength, frameMask, unmask, closeAnswer, writeServerHeader } from "../../assembly/ws/frames";

const BUF = memory.data(64, 8);
function bytes(list: u8[]): usize {
  for (let i = 0; i < list.length; i++) store<u8>(BUF + <usize>i, list[i]);
  return BUF;
}

describe("WebSocket frame headers", () => {
  test("decodes a masked binary frame with a 7-bit length", () => {
    const p = bytes([0x82, 0x85, 1, 2, 3, 4]);
    expect(decodeFrameHeader(p, p + 6)).toBe(6);
    expect(frameOpcode).toBe(2);
    expect(frameFin).toBe(true);
    expect(frameLength).toBe(5);
    expect(frameMask).toBe(0x04030201);
  });
  test("decodes 16-bit and 64-bit lengths", () => {
    let p = bytes([0x02, 0xFE, 0x01, 0x00, 0, 0, 0, 0]);
    expect(decodeFrameHeader(p, p + 8)).toBe(8);
    expect(frameLength).toBe(256);
    expect(frameFin).toBe(false);
    p = bytes([0x80, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 9, 9, 9, 9]);
    expect(decodeFrameHeader(p, p + 14)).toBe(14);
    expect(frameLength).toBe(<u64>1 << 32);
  });
  test("waits for an incomplete header", () => {
    const p = bytes([0x82, 0xFE, 0x01]);
    expect(decodeFrameHeader(p, p + 1)).toBe(0);
    expect(decodeFrameHeader(p, p + 3)).toBe(0);
  });
  test("rejects unmasked frames, RSV bits, reserved opcodes (1002)", () => {
    let p = bytes([0x82, 0x05]);
    expect(decodeFrameHeader(p, p + 2)).toBe(-1002);
    p = bytes([0xC2, 0x85, 1, 2, 3, 4]);
    expect(decodeFrameHeader(p, p + 6)).toBe(-1002);
    p = bytes([0x83, 0x85, 1, 2, 3, 4]);
    expect(decodeFrameHeader(p, p + 6)).toBe(-1002);
  });
  test("rejects long or fragmented control frames and a 2^63 length (1002)", () => {
    let p = bytes([0x89, 0xFE, 0, 126, 1, 2, 3, 4]);
    expect(decodeFrameHeader(p, p + 8)).toBe(-1002);
    p = bytes([0x09, 0x81, 1, 2, 3, 4, 0]);
    expect(decodeFrameHeader(p, p + 7)).toBe(-1002);
    p = bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    expect(decodeFrameHeader(p, p + 14)).toBe(-1002);
  });
  test("unmasks from any payload offset", () => {
    const p = bytes([0x10 ^ 0xA1, 0x20 ^ 0xB2, 0x30 ^ 0xC3, 0x40 ^ 0xD4, 0x50 ^ 0xA1, 0x60 ^ 0xB2, 0x70 ^ 0xC3, 0x80 ^ 0xD4, 0x90 ^ 0xA1]);
    const mask: u32 = 0xD4C3B2A1;
    unmask(BUF + 32, p + 3, 6, mask, 3);
    expect(load<u8>(BUF + 32)).toBe(0x40);
    expect(load<u8>(BUF + 37)).toBe(0x90);
    unmask(BUF + 32, p, 9, mask, 0);
    expect(load<u8>(BUF + 40)).toBe(0x90);
  });
  test("close payloads: empty, a code, a 1-byte payload, a bad code, bad UTF-8", () => {
    expect(closeAnswer(BUF, 0)).toBe(1000);
    let p = bytes([0x03, 0xE8, 0x6F, 0x6B]);
    expect(closeAnswer(p, 4)).toBe(1000);
    expect(closeAnswer(p, 1)).toBe(1002);
    p = bytes([0x03, 0xED]); // 1005 may not be sent
    expect(closeAnswer(p, 2)).toBe(1002);
    p = bytes([0x03, 0xE8, 0xC3, 0x28]);
    expect(closeAnswer(p, 4)).toBe(1007);
  });
  test("server headers: 2, 4 and 10 bytes, unmasked", () => {
    expect(BUF + 20 - writeServerHeader(BUF + 20, 2, 125)).toBe(2);
    expect(BUF + 20 - writeServerHeader(BUF + 20, 2, 126)).toBe(4);
    expect(load<u8>(BUF + 17)).toBe(126);
    expect(BUF + 20 - writeServerHeader(BUF + 20, 2, 70000)).toBe(10);
    expect(load<u8>(BUF + 11)).toBe(127);
  });
});
