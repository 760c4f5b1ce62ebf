// The subscription matcher: a trie over topic levels, in fixed pools.
//
// Each node is one level of one or more filters. A node's ordinary children are
// found through one shared open-addressing table keyed by (parent node, 64-bit hash
// of the level's bytes); its `+` and `#` children hang directly off the node. Level
// bytes are not stored in the trie: every subscription keeps its whole filter, and a
// candidate found through the trie is confirmed with `topicMatches` before delivery,
// so a hash collision can never deliver a message to the wrong subscriber.
//
//   TopicNode row                              child table (CHILD_SLOTS × i32)
//   ┌──────┬────────┬──────┬──────────┬──────┐ ┌─────┬─────┬─────┬─────┐
//   │ link │ parent │ key  │ children │ subs │ │ n+1 │  0  │ n+1 │ ... │  0 = empty
//   ├──────┼────────┼──────┴──────────┴──────┤ └─────┴─────┴─────┴─────┘
//   │ plus │ hash   │ kind                   │  slot = mix(parent, key) & mask,
//   └──────┴────────┴────────────────────────┘  linear probing, backward-shift delete

import { MAX_TOPIC_NODES } from "../config";
import { Pool, poolDescriptor, poolInit, poolAlloc, poolFree } from "../memory/pool";

// @ts-ignore: decorator
@unmanaged @final export class TopicNode {
  link: i32;      // pool free-list link
  parent: i32;    // -1 for the root
  key: u64;       // hash of this level's bytes (ordinary nodes)
  children: i32;  // ordinary children in the child table
  subs: i32;      // first subscription whose filter ends here, -1 if none
  plus: i32;      // the `+` child, -1 if none
  hash: i32;      // the `#` child, -1 if none
  kind: i32;      // NodeKind
}

const enum NodeKind { Root = 0, Level = 1, Plus = 2, Hash = 3 }

const nodes: Pool = poolDescriptor();
const NODE_BASE = memory.data(MAX_TOPIC_NODES * offsetof<TopicNode>(), 8);

/** Child table slots: a power of two at least twice the node count. */
// (the next power of two of 2 × MAX_TOPIC_NODES, by smearing the top bit down)
// @ts-ignore: decorator
@inline const S0: i32 = MAX_TOPIC_NODES * 2 - 1;
// @ts-ignore: decorator
@inline const S1: i32 = S0 | (S0 >> 1);
// @ts-ignore: decorator
@inline const S2: i32 = S1 | (S1 >> 2);
// @ts-ignore: decorator
@inline const S3: i32 = S2 | (S2 >> 4);
// @ts-ignore: decorator
@inline const S4: i32 = S3 | (S3 >> 8);
// @ts-ignore: decorator
@inline const CHILD_SLOTS: i32 = (S4 | (S4 >> 16)) + 1;
// @ts-ignore: decorator
@inline const CHILD_MASK: i32 = CHILD_SLOTS - 1;
const CHILD_TABLE = memory.data(CHILD_SLOTS * 4, 8);

export const ROOT: i32 = 0;

// @ts-ignore: decorator
@inline export function node(i: i32): TopicNode {
  return changetype<TopicNode>(NODE_BASE + <usize>i * offsetof<TopicNode>());
}

export function matcherInit(): void {
  poolInit(nodes, NODE_BASE, offsetof<TopicNode>(), MAX_TOPIC_NODES);
  memory.fill(CHILD_TABLE, 0, <usize>CHILD_SLOTS * 4);
  const root = newNode(-1, 0, NodeKind.Root);
  assert(root == ROOT);
}

export function nodesInUse(): i32 { return nodes.used; }
export function trieBytes(): i32 {
  return MAX_TOPIC_NODES * offsetof<TopicNode>() + CHILD_SLOTS * 4 + MAX_TOPIC_NODES * 4;
}

/** FNV-1a, 64 bits, over one topic level. */
export function levelHash(ptr: usize, len: i32): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < len; i++) {
    h ^= <u64>load<u8>(ptr + <usize>i);
    h *= 0x100000001b3;
  }
  return h ^ <u64>len;
}

// @ts-ignore: decorator
@inline function slotOf(parent: i32, key: u64): i32 {
  let h = key ^ (<u64>parent * 0x9E3779B97F4A7C15);
  h ^= h >> 29;
  return <i32>h & CHILD_MASK;
}

// @ts-ignore: decorator
@inline function slotAt(s: i32): usize { return CHILD_TABLE + (<usize>s << 2); }

/** The ordinary child of `parent` whose level hashes to `key`, or -1. */
function findChild(parent: i32, key: u64): i32 {
  let s = slotOf(parent, key);
  while (true) {
    const v = load<i32>(slotAt(s));
    if (v == 0) return -1;
    const n = node(v - 1);
    if (n.parent == parent && n.key == key) return v - 1;
    s = (s + 1) & CHILD_MASK;
  }
  return -1;
}

function newNode(parent: i32, key: u64, kind: i32): i32 {
  const i = poolAlloc(nodes);
  if (i < 0) return -1;
  const n = node(i);
  n.parent = parent; n.key = key; n.children = 0; n.subs = -1;
  n.plus = -1; n.hash = -1; n.kind = kind;
  return i;
}

/** The child of `parent` for one filter level, created if missing; -1 when the node
 *  pool is full. */
function childFor(parent: i32, ptr: usize, len: i32): i32 {
  const p = node(parent);
  if (len == 1 && load<u8>(ptr) == 0x2B) {
    if (p.plus < 0) p.plus = newNode(parent, 0, NodeKind.Plus);
    return p.plus;
  }
  if (len == 1 && load<u8>(ptr) == 0x23) {
    if (p.hash < 0) p.hash = newNode(parent, 0, NodeKind.Hash);
    return p.hash;
  }
  const key = levelHash(ptr, len);
  const found = findChild(parent, key);
  if (found >= 0) return found;
  const c = newNode(parent, key, NodeKind.Level);
  if (c < 0) return -1;
  let s = slotOf(parent, key);
  while (load<i32>(slotAt(s)) != 0) s = (s + 1) & CHILD_MASK;
  store<i32>(slotAt(s), c + 1);
  p.children++;
  return c;
}

/** The node a whole filter ends at, creating the path; -1 when the pool is full
 *  (any nodes created on the way are pruned again). */
export function nodeForFilter(ptr: usize, len: i32, create: bool): i32 {
  let n = ROOT;
  let start = 0;
  for (let i = 0; i <= len; i++) {
    if (i < len && load<u8>(ptr + <usize>i) != 0x2F) continue;
    const lp = ptr + <usize>start, ll = i - start;
    let c: i32;
    if (create) {
      c = childFor(n, lp, ll);
      if (c < 0) { prune(n); return -1; }
    } else {
      const p = node(n);
      if (ll == 1 && load<u8>(lp) == 0x2B) c = p.plus;
      else if (ll == 1 && load<u8>(lp) == 0x23) c = p.hash;
      else c = findChild(n, levelHash(lp, ll));
      if (c < 0) return -1;
    }
    n = c;
    start = i + 1;
  }
  return n;
}

/** Remove nodes that hold no subscription and have no children, from `i` upwards. */
export function prune(i: i32): void {
  while (i != ROOT) {
    const n = node(i);
    if (n.subs >= 0 || n.children > 0 || n.plus >= 0 || n.hash >= 0) return;
    const parent = n.parent;
    const p = node(parent);
    if (n.kind == NodeKind.Plus) p.plus = -1;
    else if (n.kind == NodeKind.Hash) p.hash = -1;
    else { removeChildSlot(parent, n.key, i); p.children--; }
    poolFree(nodes, i);
    i = parent;
  }
}

function removeChildSlot(parent: i32, key: u64, index: i32): void {
  let s = slotOf(parent, key);
  while (load<i32>(slotAt(s)) != index + 1) s = (s + 1) & CHILD_MASK;
  // backward-shift deletion keeps every probe chain unbroken
  let hole = s;
  let j = (s + 1) & CHILD_MASK;
  while (true) {
    const v = load<i32>(slotAt(j));
    if (v == 0) break;
    const n = node(v - 1);
    const home = slotOf(n.parent, n.key);
    // move v into the hole if its home slot is not cyclically in (hole, j]
    const inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!inRange) { store<i32>(slotAt(hole), v); hole = j; }
    j = (j + 1) & CHILD_MASK;
  }
  store<i32>(slotAt(hole), 0);
}

// Matching collects every node whose subscriptions match the topic into a static
// list (a node is reached at most once per topic, so MAX_TOPIC_NODES bounds it).
const MATCHED = memory.data(MAX_TOPIC_NODES * 4, 8);
export let matchedCount: i32 = 0;

// @ts-ignore: decorator
@inline export function matchedNode(i: i32): i32 { return load<i32>(MATCHED + (<usize>i << 2)); }

function visit(n: i32): void {
  if (node(n).subs < 0) return;
  store<i32>(MATCHED + (<usize>matchedCount << 2), n);
  matchedCount++;
}

/** Find the nodes holding subscriptions that match a topic name. */
export function matchTopic(topic: usize, len: i32): void {
  matchedCount = 0;
  const dollar = len > 0 && load<u8>(topic) == 0x24;
  matchLevel(ROOT, topic, topic + <usize>len, dollar);
}

function matchLevel(n: i32, p: usize, stop: usize, noWildcards: bool): void {
  // find the end of the level and hash it in one pass (the same FNV-1a as levelHash)
  let q = p;
  let h: u64 = 0xcbf29ce484222325;
  while (q < stop) {
    const c = load<u8>(q);
    if (c == 0x2F) break;
    h ^= <u64>c;
    h *= 0x100000001b3;
    q++;
  }
  h ^= <u64>(q - p);
  const cur = node(n);
  if (!noWildcards) {
    // [MQTT-4.7.2-1] wildcards at the first level never match a `$` topic
    if (cur.hash >= 0) visit(cur.hash);
    if (cur.plus >= 0) descend(cur.plus, q, stop);
  }
  if (cur.children > 0) {
    const c = findChild(n, h);
    if (c >= 0) descend(c, q, stop);
  }
}

function descend(c: i32, q: usize, stop: usize): void {
  if (q == stop) {
    visit(c);
    const h = node(c).hash;
    if (h >= 0) visit(h); // "a/#" also matches "a"
  } else {
    matchLevel(c, q + 1, stop, false);
  }
}
