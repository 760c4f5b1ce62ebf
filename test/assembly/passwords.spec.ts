// Password files as mosquitto_passwd writes them (assembly/auth/passwords.ts, read through
// configfile.ts part 3), checked with the crypto imports (node:crypto in
// as-pect.config.js, as the Node host provides them). The two lines below were written by
// Debian's mosquitto_passwd 2.0.11: alice/secret with its default ($7$, PBKDF2-SHA512,
// 101 iterations) and bob/hunter2 with -H sha512 ($6$).

import { readConfig, listenText, Part } from "../../assembly/configfile";
import { findUser, passwordMatches, userCount } from "../../assembly/auth/passwords";
import { INPUT } from "../../assembly/broker";

const ALICE = "alice:$7$101$soGyUhKrQ90SJ8kC$0a58ARyjR9M2/llPG83G9Rf3qtgolz8YGgKhNZusOaMAnJlqYzUuBcptmYyME2GyuGtHFCA2SZ/8hD7SDeumbw==";
const BOB = "bob:$6$elNQ3sBSX85RMguc$yepe6Kq6yZ+g9u1lrr95HXK6O6lPOjGuSldc2oRBB1sgAgTCx7xToU1TqcsRVd4f5gGHH8ynC2gCa/Xhr0+GgQ==";

const TEXT = memory.data(4096);

function read(name: string, text: string, part: i32): i32 {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(name), name.length, TEXT);
  const t = String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, TEXT + n);
  return readConfig(TEXT, <u32>n, TEXT + n, <u32>t, part);
}

function said(result: i32): string {
  return result == 0 ? "" : String.UTF8.decodeUnsafe(INPUT, <usize>(result < 0 ? -result : result));
}

const BYTES = memory.data(256);

/** Whether `password` is `user`'s (false for a user not in the file). */
function check(user: string, password: string): bool {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(user), user.length, BYTES);
  const u = findUser(BYTES, <u32>n);
  if (u < 0) return false;
  const p = String.UTF8.encodeUnsafe(changetype<usize>(password), password.length, BYTES);
  return passwordMatches(u, BYTES, <u32>p);
}

describe("password_file", () => {
  it("is a path the host reads (text 2), the rest of the line", () => {
    expect(said(read("m.conf", "listener 1883\npassword_file /etc/mosquitto/pass words\n", Part.Main))).toBe("");
    expect(String.UTF8.decodeUnsafe(INPUT, <usize>listenText(2))).toBe("/etc/mosquitto/pass words");
    expect(said(read("m.conf", "listener 1883\n", Part.Main))).toBe("");
    expect(listenText(2)).toBe(0);
  });

  it("takes mosquitto_passwd's $7$ and $6$ lines, comments and blank lines", () => {
    expect(said(read("pw", "# users\n\n" + ALICE + "\r\n" + BOB + "\n", Part.PasswordFile))).toBe("");
    expect(userCount).toBe(2);
    expect(check("alice", "secret")).toBe(true);
    expect(check("alice", "secreT")).toBe(false);
    expect(check("alice", "")).toBe(false);
    expect(check("bob", "hunter2")).toBe(true);
    expect(check("bob", "hunter")).toBe(false);
    expect(check("carol", "secret")).toBe(false);
  });

  it("a name given twice: the last line wins; a new file replaces the users", () => {
    expect(said(read("pw", ALICE + "\n" + BOB.replace("bob:", "alice:") + "\n", Part.PasswordFile))).toBe("");
    expect(userCount).toBe(1);
    expect(check("alice", "hunter2")).toBe(true);
    expect(check("alice", "secret")).toBe(false);
    expect(check("bob", "hunter2")).toBe(false);
  });

  it("refuses a line it cannot use, naming the file, the line and the user", () => {
    expect(said(read("pw", "\nalice\n", Part.PasswordFile))).toBe("pw:2: not a 'user:password hash' line");
    expect(said(read("pw", "alice:secret\n", Part.PasswordFile)))
      .toBe("pw:1: alice: the password is not a mosquitto_passwd hash ($7$ or $6$); mosquitto_passwd -U FILE hashes a plain-text file");
    expect(said(read("pw", "alice:$7$0$c2FsdA==$aGFzaA==\n", Part.PasswordFile)))
      .toBe("pw:1: alice: the $7$ iteration count must be a whole number from 1 to 1000000");
    expect(said(read("pw", "alice:$6$not*base64$aGFzaA==\n", Part.PasswordFile))).toBe("pw:1: alice: the salt is not base64 of 1 to 64 bytes");
    expect(said(read("pw", "alice:$6$c2FsdA==$aGFzaA==\n", Part.PasswordFile))).toBe("pw:1: alice: the hash is not base64 of a 64-byte SHA-512 digest");
    expect(said(read("pw", "a".repeat(65) + ":$6$x$y\n", Part.PasswordFile))).toBe("pw:1: a user name longer than 64 bytes");
  });

  it("holds the board's number of users (MAX_USERS: 32 on the test board)", () => {
    let text = "";
    for (let i = 0; i < 33; i++) text += "u" + i.toString() + BOB.slice(3) + "\n";
    expect(said(read("pw", text, Part.PasswordFile))).toBe("pw:33: u32: more users than this board holds (32)");
  });
});
