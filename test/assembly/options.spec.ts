// The option parser (assembly/options.ts): one option as text in, a setting set or a
// message out, with the default board of assembly/config.ts (in-flight window 16, 20
// connections, 64 KiB packets and backlog). Both hosts print these messages as they are.

import { option, loadRow, rowSetting, rowKind, rowDefault, Kind } from "../../assembly/options";
import { Setting, configure } from "../../assembly/settings";
import { INPUT } from "../../assembly/broker";
import { INFLIGHT_MAX, PACKET_MAX } from "../../assembly/config";

const TEXT = memory.data(512);

/** option(name, value) with both written as bytes, as a host writes them. */
function give(name: string, value: string): i32 {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(name), name.length, TEXT);
  const v = String.UTF8.encodeUnsafe(changetype<usize>(value), value.length, TEXT + n);
  return option(TEXT, <u32>n, TEXT + n, <u32>v);
}

/** The message of a refusal (`result` < 0), or "" when the option was accepted. */
function said(result: i32): string {
  return result >= 0 ? "" : String.UTF8.decodeUnsafe(INPUT, <usize>-result);
}

function heapTop(): usize {
  const p = __alloc(1);
  __free(p);
  return p;
}

describe("the option table", () => {
  // first, before any option below changes a setting
  it("starts every setting at its row's default (the one --help shows)", () => {
    let rows = 0;
    for (let i = 0; loadRow(i); i++) {
      rows++;
      if (rowSetting == 0) continue;
      const expected = rowKind == Kind.Duration ? rowDefault * 1000 : rowDefault;
      expect(configure(rowSetting, -1)).toBe(expected, `setting ${rowSetting}`);
    }
    expect(rows).toBe(18);
  });

  it("gives every setting one row", () => {
    for (let key = Setting.MaxKeepAlive; key <= Setting.StatsInterval; key++) {
      let found = 0;
      for (let i = 0; loadRow(i); i++) if (rowSetting == key) found++;
      expect(found).toBe(1, `setting ${key}`);
    }
  });

  it("clamps `configure` to the same ranges", () => {
    expect(configure(Setting.MaxInflight, 1000)).toBe(<f64>INFLIGHT_MAX);
    expect(configure(Setting.MaxInflight, 0)).toBe(1);
    expect(configure(Setting.StallTimeout, 1)).toBe(100);
    expect(configure(Setting.MaxInputBuffer, 10)).toBe(1024);
    expect(configure(Setting.MaxPacketSize, 1)).toBe(20);
    expect(configure(42, 1)).toBe(-1);
  });
});

describe("good values", () => {
  it("sets a whole number and returns the setting's key", () => {
    expect(give("--max-inflight", "10")).toBe(Setting.MaxInflight);
    expect(configure(Setting.MaxInflight, -1)).toBe(10);
    expect(give("--max-inflight", "016")).toBe(Setting.MaxInflight);
    expect(configure(Setting.MaxInflight, -1)).toBe(16);
  });

  it("takes both ends of a range", () => {
    expect(give("--port", "0")).toBe(Setting.Port);
    expect(configure(Setting.Port, -1)).toBe(0);
    expect(give("--port", "65535")).toBe(Setting.Port);
    expect(configure(Setting.Port, -1)).toBe(65535);
    expect(give("--max-inflight", "1")).toBe(Setting.MaxInflight);
    expect(give("--max-inflight", "16")).toBe(Setting.MaxInflight);
  });

  it("holds seconds of a Duration in milliseconds", () => {
    expect(give("--stall-timeout", "0.5")).toBe(Setting.StallTimeout);
    expect(configure(Setting.StallTimeout, -1)).toBe(500);
    expect(give("--stall-timeout", "2.25")).toBe(Setting.StallTimeout);
    expect(configure(Setting.StallTimeout, -1)).toBe(2250);
    expect(give("--stall-timeout", "0.1")).toBe(Setting.StallTimeout);
    expect(configure(Setting.StallTimeout, -1)).toBe(100);
    expect(give("--stall-timeout", "3600")).toBe(Setting.StallTimeout);
    expect(configure(Setting.StallTimeout, -1)).toBe(3600000);
  });

  it("sets the packet limit and the input budget", () => {
    expect(give("--max-packet-size", "1000")).toBe(Setting.MaxPacketSize);
    expect(configure(Setting.MaxPacketSize, -1)).toBe(1000);
    expect(give("--max-input-buffer", "100000000")).toBe(Setting.MaxInputBuffer);
    expect(configure(Setting.MaxInputBuffer, -1)).toBe(100000000);
    configure(Setting.MaxPacketSize, PACKET_MAX);
  });

  it("leaves the host's own options to the host (0), once checked", () => {
    expect(give("--host", "0.0.0.0")).toBe(0);
    expect(give("--board", "pi")).toBe(0);
    expect(give("--verbose", "")).toBe(0);
    expect(give("--help", "")).toBe(0);
    expect(give("--version", "")).toBe(0);
  });
});

describe("bad numbers", () => {
  it("says what a whole number must be, and quotes what it got", () => {
    expect(said(give("--max-inflight", "abc"))).toBe("--max-inflight must be a whole number from 1 to 16, not 'abc'");
    expect(said(give("--max-inflight", "-1"))).toBe("--max-inflight must be a whole number from 1 to 16, not '-1'");
    expect(said(give("--max-inflight", "1.5"))).toBe("--max-inflight must be a whole number from 1 to 16, not '1.5'");
    expect(said(give("--max-inflight", " 10"))).toBe("--max-inflight must be a whole number from 1 to 16, not ' 10'");
    expect(said(give("--max-inflight", "10 "))).toBe("--max-inflight must be a whole number from 1 to 16, not '10 '");
    expect(said(give("--max-inflight", "1e3"))).toBe("--max-inflight must be a whole number from 1 to 16, not '1e3'");
    expect(said(give("--max-inflight", "0x10"))).toBe("--max-inflight must be a whole number from 1 to 16, not '0x10'");
  });

  it("names the unit", () => {
    expect(said(give("--max-backlog", "many"))).toBe("--max-backlog must be a whole number of bytes from 1024 to 65536, not 'many'");
    expect(said(give("--connect-timeout", "1s"))).toBe("--connect-timeout must be a whole number of milliseconds from 100 to 3600000, not '1s'");
    expect(said(give("--max-keepalive", "1.5"))).toBe("--max-keepalive must be a whole number of seconds from 0 to 65535, not '1.5'");
    expect(said(give("--stall-timeout", "5s"))).toBe("--stall-timeout must be a number of seconds from 0.1 to 3600, not '5s'");
    expect(said(give("--stall-timeout", ".5"))).toBe("--stall-timeout must be a number of seconds from 0.1 to 3600, not '.5'");
    expect(said(give("--stall-timeout", "5."))).toBe("--stall-timeout must be a number of seconds from 0.1 to 3600, not '5.'");
  });

  it("escapes what is not printable ASCII in the value", () => {
    expect(said(give("--port", "\x01é"))).toBe("--port must be a whole number from 0 to 65535, not '\\x01\\xc3\\xa9'");
  });

  it("says a missing value is missing", () => {
    expect(said(give("--port", ""))).toBe("--port needs a value");
    expect(said(give("--host", ""))).toBe("--host needs a value");
  });

  it("refuses a value for a flag", () => {
    expect(said(give("--verbose", "yes"))).toBe("--verbose takes no value");
  });
});

describe("out of range", () => {
  it("refuses, with the range, and leaves the setting as it was", () => {
    give("--max-inflight", "8");
    expect(said(give("--max-inflight", "17"))).toBe("--max-inflight must be a whole number from 1 to 16, not '17'");
    expect(said(give("--max-inflight", "0"))).toBe("--max-inflight must be a whole number from 1 to 16, not '0'");
    expect(said(give("--max-inflight", "99999999999999999999999"))).toBe(
      "--max-inflight must be a whole number from 1 to 16, not '99999999999999999999999'");
    expect(configure(Setting.MaxInflight, -1)).toBe(8);
  });

  it("takes board limits from the board", () => {
    expect(said(give("--max-connections", "21"))).toBe("--max-connections must be a whole number from 1 to 20, not '21'");
    expect(said(give("--max-packet-size", "19"))).toBe("--max-packet-size must be a whole number of bytes from 20 to 65536, not '19'");
    expect(said(give("--max-input-buffer", "1023"))).toBe(
      "--max-input-buffer must be a whole number of bytes from 1024 to 4294967295, not '1023'");
  });

  it("shows a Duration's bounds in seconds", () => {
    expect(said(give("--stall-timeout", "0.05"))).toBe("--stall-timeout must be a number of seconds from 0.1 to 3600, not '0.05'");
    expect(said(give("--stall-timeout", "3600.5"))).toBe("--stall-timeout must be a number of seconds from 0.1 to 3600, not '3600.5'");
  });
});

describe("unknown options", () => {
  it("names the option as given", () => {
    expect(said(give("--no-such-option", "1"))).toBe("unknown option '--no-such-option'");
    expect(said(give("--max-inflights", "1"))).toBe("unknown option '--max-inflights'");
    expect(said(give("--max", "1"))).toBe("unknown option '--max'");
    expect(said(give("", ""))).toBe("unknown option ''");
  });

  it("wants the leading -- (a bare name is for the config file's keys)", () => {
    expect(said(give("max-inflight", "1"))).toBe("unknown option 'max-inflight'");
    expect(said(give("-max-inflight", "1"))).toBe("unknown option '-max-inflight'");
  });
});

describe("allocation", () => {
  it("parses and refuses without allocating", () => {
    const before = heapTop();
    let refused = 0;
    for (let i = 0; i < 1000; i++) {
      give("--max-inflight", "12");
      if (give("--max-inflight", "1200") < 0) refused++;
      if (give("--nope", "") < 0) refused++;
    }
    const after = heapTop();
    expect(after).toBe(before);
    expect(refused).toBe(2000);
  });
});
