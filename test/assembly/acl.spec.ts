// ACL files (assembly/auth/acl.ts, read through configfile.ts part 4): the grammar, the
// decision for a topic (deny first, then the client's section, then the patterns), and
// what a subscription filter can reach, which rests on two filter relations: whether two
// filters share a topic, and whether one covers every topic of the other.

import { readConfig, Part } from "../../assembly/configfile";
import { aclAllows, aclReach, aclBind, filtersMeet, filterCovers, Access, Reach, aclRuleCount, aclSectionCount } from "../../assembly/auth/acl";
import { INPUT, brokerInit } from "../../assembly/broker";
import { connection } from "../../assembly/session/connections";
import { connected } from "./wire";

const TEXT = memory.data(4096);
const A = memory.data(256);
const B = memory.data(256);

function read(text: string): string {
  const name = "acl";
  const n = String.UTF8.encodeUnsafe(changetype<usize>(name), name.length, TEXT);
  const t = String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, TEXT + n);
  const r = readConfig(TEXT, <u32>n, TEXT + n, <u32>t, Part.AclFile);
  return r == 0 ? "" : String.UTF8.decodeUnsafe(INPUT, <usize>(r < 0 ? -r : r));
}

function meet(a: string, b: string): bool {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(a), a.length, A);
  const m = String.UTF8.encodeUnsafe(changetype<usize>(b), b.length, B);
  return filtersMeet(A, <i32>n, B, <i32>m);
}

function covers(a: string, b: string): bool {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(a), a.length, A);
  const m = String.UTF8.encodeUnsafe(changetype<usize>(b), b.length, B);
  return filterCovers(A, <i32>n, B, <i32>m);
}

/** A connected session with client id `id` and user name `user` ("" : none). */
function client(id: string, user: string): i32 {
  const conn = connected(id);
  const s = connection(conn).session;
  const n = String.UTF8.encodeUnsafe(changetype<usize>(user), user.length, A);
  aclBind(s, A, <i32>n, user.length > 0);
  return s;
}

function may(s: i32, topic: string, access: i32): bool {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(topic), topic.length, B);
  return aclAllows(s, B, <i32>n, access);
}

function reach(s: i32, filter: string): i32 {
  const n = String.UTF8.encodeUnsafe(changetype<usize>(filter), filter.length, B);
  return aclReach(s, B, <i32>n);
}

describe("two filters", () => {
  it("meet when some topic matches both", () => {
    expect(meet("a/b", "a/b")).toBe(true);
    expect(meet("a/+", "a/b")).toBe(true);
    expect(meet("a/#", "a")).toBe(true);          // '#' matches the parent level
    expect(meet("a", "a/#")).toBe(true);
    expect(meet("+/+", "a/#")).toBe(true);
    expect(meet("a/b", "a/c")).toBe(false);
    expect(meet("a/+", "a")).toBe(false);
    expect(meet("a/+/c", "a/b")).toBe(false);
    expect(meet("#", "$SYS/x")).toBe(false);      // [MQTT-4.7.2-1]
    expect(meet("+/x", "$SYS/x")).toBe(false);
    expect(meet("$SYS/#", "$SYS/broker/load")).toBe(true);
    expect(meet("a//b", "a/+/b")).toBe(true);     // an empty level is a level
  });

  it("cover when every topic of the second matches the first", () => {
    expect(covers("#", "a/b/c")).toBe(true);
    expect(covers("#", "+/#")).toBe(true);
    expect(covers("a/#", "a")).toBe(true);
    expect(covers("a/#", "a/+/c")).toBe(true);
    expect(covers("a/+", "a/b")).toBe(true);
    expect(covers("a/+", "a/+")).toBe(true);
    expect(covers("a/+", "a/#")).toBe(false);     // a/b/c, and a itself
    expect(covers("a/b", "a/+")).toBe(false);
    expect(covers("a", "a/#")).toBe(false);
    expect(covers("a/+/c", "a/b")).toBe(false);
    expect(covers("#", "$SYS/#")).toBe(false);    // a leading wildcard never reaches '$'
    expect(covers("$SYS/#", "$SYS/broker/+")).toBe(true);
  });
});

describe("an ACL file", () => {
  beforeEach(() => { brokerInit(0, 0); });

  it("is read line by line: user sections, topic and pattern rules, comments", () => {
    expect(read("# anonymous\ntopic read public/#\n\n  user alice \ntopic home/#\nuser bob\ntopic write x\nuser alice\ntopic deny home/locks/#\npattern read c/%c/#\n")).toBe("");
    expect(aclRuleCount()).toBe(5);
    expect(aclSectionCount()).toBe(2);             // alice's second section continues her first
  });

  it("refuses a bad line with its number, and keeps the rules in force", () => {
    expect(read("user admin\ntopic readwrite #\n")).toBe("");
    expect(read("topic read a\nfrobnicate x\n")).toBe("acl:2: not a user, topic or pattern line: 'frobnicate x'");
    expect(read("topic read\n")).toBe("acl:1: no topic: 'topic read'");
    expect(read("user\n")).toBe("acl:1: user needs a name: 'user'");
    expect(read("topic a/b#\n")).toBe("acl:1: not a valid topic filter: 'topic a/b#'");
    expect(aclRuleCount()).toBe(1);
    const admin = client("adm", "admin");
    expect(may(admin, "any/thing", Access.Write)).toBe(true);
  });

  it("decides: deny first, then the client's section, then the patterns, else no", () => {
    expect(read("topic read public/#\ntopic deny public/secret\nuser alice\ntopic readwrite home/#\ntopic deny home/locks/#\nuser bob\ntopic read home/+/temp\npattern readwrite clients/%c/#\npattern read users/%u/inbox\n")).toBe("");
    const anon = client("anon", "");
    const alice = client("al", "alice");
    const bob = client("bo", "bob");
    const carol = client("ca", "carol");            // no section: the patterns only
    expect(may(anon, "public/news", Access.Read)).toBe(true);
    expect(may(anon, "public/news", Access.Write)).toBe(false);
    expect(may(anon, "public/secret", Access.Read)).toBe(false);
    expect(may(anon, "clients/anon/x", Access.Write)).toBe(true);
    expect(may(anon, "users//inbox", Access.Read)).toBe(false); // %u: no user name, no rule
    expect(may(alice, "home/kitchen/temp", Access.Write)).toBe(true);
    expect(may(alice, "home/locks/front", Access.Read)).toBe(false);
    expect(may(alice, "public/news", Access.Read)).toBe(false); // anonymous lines are not hers
    expect(may(alice, "users/alice/inbox", Access.Read)).toBe(true);
    expect(may(bob, "home/kitchen/temp", Access.Read)).toBe(true);
    expect(may(bob, "home/kitchen/temp", Access.Write)).toBe(false);
    expect(may(carol, "users/carol/inbox", Access.Read)).toBe(true);
    expect(may(carol, "users/bob/inbox", Access.Read)).toBe(false);
  });

  it("gives no pattern to a client id or user name with a wildcard, or with a '/' it would put in a topic", () => {
    expect(read("user admin\ntopic read #\npattern readwrite clients/%c/#\n")).toBe("");
    const plus = client("x+y", "");
    const slash = client("a/b", "");
    const plain = client("a", "");
    expect(may(plus, "clients/x+y/s", Access.Write)).toBe(false);
    expect(may(slash, "clients/a/b/s", Access.Write)).toBe(false);
    expect(may(plain, "clients/a/s", Access.Write)).toBe(true);
  });

  it("says what a subscription reaches: all (no check per delivery), some, or nothing", () => {
    expect(read("topic read public/#\ntopic deny public/secret\nuser alice\ntopic readwrite home/#\ntopic read $SYS/#\npattern read clients/%c/#\n")).toBe("");
    const anon = client("anon", "");
    const alice = client("al", "alice");
    expect(reach(anon, "public/news")).toBe(Reach.All);
    expect(reach(anon, "public/+/x")).toBe(Reach.All);
    expect(reach(anon, "public/#")).toBe(Reach.Some);     // public/secret is denied
    expect(reach(anon, "public/secret")).toBe(Reach.Nothing);
    expect(reach(anon, "#")).toBe(Reach.Some);
    expect(reach(anon, "home/#")).toBe(Reach.Nothing);
    expect(reach(anon, "clients/anon/#")).toBe(Reach.All);
    expect(reach(alice, "home/#")).toBe(Reach.All);
    expect(reach(alice, "$SYS/broker/#")).toBe(Reach.All);
    expect(reach(alice, "#")).toBe(Reach.Some);
    expect(reach(alice, "public/#")).toBe(Reach.Nothing);
  });
});
