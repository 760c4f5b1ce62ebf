// The memory budget of a board, read from the compiler itself: a small asc transform
// (MemoryMap) records, before optimisation, every static region of linear memory (each
// `memory.data` under the name of the constant that holds its address), the end of
// the static data and the shadow stack. So the table is exact and follows the core as
// it changes; a region that TABLES does not know yet still shows, under its own name.
// Used by scripts/build.mjs (which prints the table and writes build/budget.json).

import * as asc from "assemblyscript/asc";

const PAGE = 65536;

/** Compiler options a board may set (asc's names): the shadow stack the custom runtime
 *  gets (asc gives any custom runtime 32 KiB unless told), where static data starts
 *  (asc's default 1024 at -O2 and above; 8 saves a kilobyte), optimisation, features. */
export const COMPILER_OPTIONS = ["stackSize", "memoryBase", "optimizeLevel", "shrinkLevel", "disable"];

export function compilerArgs(board) {
  return Object.entries(board.compiler ?? {}).flatMap(([key, value]) => [`--${key}`, String(value)]);
}

/** The memory map of the running compile (set by MemoryMap.afterCompile). */
let lastMemoryMap;

/** asc transform: before optimisation every `memory.data` is still its own segment and
 *  the immutable global holding its address still has its source name. */
class MemoryMap {
  afterCompile(module) {
    const b = this.binaryen;
    const byAddress = new Map();
    const globals = {};
    for (let i = 0, n = module.getNumGlobals(); i < n; i++) {
      const g = b.getGlobalInfo(module.getGlobalByIndex(i));
      const init = g.init ? b.getExpressionInfo(g.init) : null;
      if (init?.id !== b.ConstId || typeof init.value !== "number") continue;
      globals[g.name] = init.value;
      if (!g.mutable && g.name.startsWith("assembly/") && !byAddress.has(init.value)) byAddress.set(init.value, g.name.slice("assembly/".length));
    }
    const regions = [];
    for (let i = 0, n = module.getNumMemorySegments(); i < n; i++) {
      const seg = module.getMemorySegmentInfo(String(i));
      regions.push({ name: byAddress.get(seg.offset) ?? null, offset: seg.offset, bytes: seg.data.byteLength });
    }
    lastMemoryMap = {
      regions,
      dataStart: regions.length > 0 ? Math.min(...regions.map((r) => r.offset)) : 0,
      dataEnd: globals["~lib/memory/__data_end"] ?? 0,
      heapBase: globals["~lib/memory/__heap_base"] ?? 0,
    };
  }
}

/** asc with `args`: its error, its diagnostics, and the memory map (when it compiled). */
export async function compile(args) {
  lastMemoryMap = undefined;
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main(args, { stdout: asc.createMemoryStream(), stderr, transforms: [MemoryMap] });
  return { error, output: stderr.toString(), memory: error ? undefined : lastMemoryMap };
}

/** Static regions by source name (assembly/<file>/<CONST>): what they are and the limit
 *  their size follows. A region missing here still shows, under its own name. */
const TABLES = {
  "session/connections/CONNECTION_BASE": ["connections", "MAX_CONNECTIONS"],
  "session/sessions/SESSION_BASE": ["sessions", "MAX_SESSIONS"],
  "delivery/TARGETS": ["fan-out targets", "MAX_SESSIONS"],
  "session/subscriptions/SUB_BASE": ["subscriptions", "MAX_SUBSCRIPTIONS"],
  "topics/shared/MEMBER_BASE": ["share group members", "MAX_SUBSCRIPTIONS"],
  "topics/shared/GROUP_BASE": ["share groups", "MAX_SHARE_GROUPS"],
  "topics/matcher/NODE_BASE": ["topic trie nodes", "MAX_TOPIC_NODES"],
  "topics/matcher/CHILD_TABLE": ["topic trie child slots", "MAX_TOPIC_NODES"],
  "topics/matcher/MATCHED": ["matcher scratch", "MAX_TOPIC_NODES"],
  "session/queue/DELIVERY_BASE": ["QoS 1/2 deliveries", "MAX_DELIVERIES"],
  "store/messages/MESSAGE_BASE": ["stored messages", "MAX_MESSAGES"],
  "store/messages/CHUNK_BASE": ["message store chunks", "STORE_BYTES"],
  "store/retained/RETAINED_BASE": ["retained", "MAX_RETAINED"],
  "broker/INPUT": ["input window", "PACKET_MAX"],
  "codec/writer/OUT_AREA": ["output buffer", "PACKET_MAX"],
  "ws/input/SCRATCH": ["WebSocket packet scratch", "PACKET_MAX"],
  "ws/state/WS_BASE": ["WebSocket state", "MAX_CONNECTIONS"],
  "handlers/subscribe/TOPIC_SCRATCH": ["topic scratch (subscribe)", "PACKET_MAX"],
  "session/lifecycle/TOPIC_SCRATCH": ["topic scratch (wills)", "PACKET_MAX"],
  "session/aliases/IN_BASE": ["topic aliases, inbound (MQTT 5)", "MAX_CONNECTIONS"],
  "session/aliases/OUT_BASE": ["topic aliases, outbound (MQTT 5)", "MAX_CONNECTIONS"],
  "delivery/MATCH_ID": ["fan-out: subscription ids", "MAX_SUBSCRIPTIONS"],
  "delivery/MATCH_NEXT": ["fan-out: match chain", "MAX_SUBSCRIPTIONS"],
  "delivery/IDS": ["fan-out: ids scratch", "MAX_SUBSCRIPTIONS"],
  "memory/scratch/ROUTE_TOPIC": ["topic scratch (routing)", "PACKET_MAX"],
  "memory/scratch/SEND_TOPIC": ["topic scratch (sending)", "PACKET_MAX"],
  "log/LOG": ["log line", null],
  "stats/COUNTERS": ["counters", null],
};

/** Regions below this many bytes that TABLES does not name (pool descriptors, protocol
 *  names) are not tables: they count with the strings. */
const SMALL = 256;

/** Bytes per table, and per client / subscription / topic node, from a board's memory map. */
export function budgetOf(board) {
  const m = board.memory;
  if (!m) return null;
  const tables = new Map();
  let unnamed = 0;
  for (const r of m.regions) {
    if (r.name === null) {
      unnamed += r.bytes;
      continue;
    }
    // pool descriptors and small constants (not tables) count with the unnamed data
    if (!(r.name in TABLES) && r.bytes < SMALL) {
      unnamed += r.bytes;
      continue;
    }
    const [label, limit] = TABLES[r.name] ?? [r.name, null];
    const t = tables.get(label) ?? { label, limit, bytes: 0 };
    t.bytes += r.bytes;
    tables.set(label, t);
  }
  const order = Object.values(TABLES).map(([label]) => label);
  const rank = (t) => (order.includes(t.label) ? order.indexOf(t.label) : order.length);
  const sorted = [...tables.values()].sort((a, b) => rank(a) - rank(b));
  const named = sorted.reduce((n, t) => n + t.bytes, 0);
  // alignment gaps between regions count with the unnamed data (pool descriptors, strings)
  const other = m.dataEnd - m.dataStart - named;
  const per = (limit) =>
    [...tables.values()].filter((t) => t.limit === limit).reduce((n, t) => n + t.bytes, 0) / (board.limits[limit] || 1);
  return {
    tables: sorted,
    other,
    unnamed,
    stack: m.heapBase - m.dataEnd,
    reserved: m.dataStart,
    staticBytes: m.heapBase,
    perClient: per("MAX_SESSIONS") + per("MAX_CONNECTIONS"),
    perConnection: per("MAX_CONNECTIONS"),
    perSession: per("MAX_SESSIONS"),
    perSubscription: per("MAX_SUBSCRIPTIONS"),
    perTopicNode: per("MAX_TOPIC_NODES"),
  };
}

export function budgetRecord(board) {
  const { memory, ...rest } = board;
  return { ...rest, budget: budgetOf(board), dataEnd: memory?.dataEnd, heapBase: memory?.heapBase };
}

/** One table, boards as columns: bytes of linear memory per table, per client and per
 *  subscription, the pages and the .wasm, then the limits each profile was built with. */
export function printBudget(boards) {
  const budgets = boards.map(budgetOf);
  const labels = [];
  for (const b of budgets) for (const t of b?.tables ?? []) if (!labels.some((l) => l.label === t.label)) labels.push(t);
  const cell = (i, f) => (budgets[i] === null ? "-" : f(budgets[i]));
  const row = (name, f) => [name, ...boards.map((_, i) => cell(i, f))];
  const keys = [...new Set(boards.flatMap((b) => Object.keys(b.limits)))];
  const rows = [
    ["bytes of linear memory", ...boards.map((b) => b.name)],
    ...labels.map((l) => row(`  ${l.label}${l.limit ? ` (${l.limit})` : ""}`, (b) => size(b.tables.find((t) => t.label === l.label)?.bytes ?? 0))),
    row("  pool descriptors, strings, constants, alignment", (b) => size(b.other)),
    row("  shadow stack (compiler.stackSize)", (b) => size(b.stack)),
    row("  unused below memoryBase", (b) => size(b.reserved)),
    row("  total static", (b) => size(b.staticBytes)),
    ["  free in the last page", ...boards.map((b, i) => cell(i, (x) => size(b.pages * PAGE - x.staticBytes)))],
    ["pages used / max", ...boards.map((b) => `${b.pages} / ${b.maxPages}`)],
    ["linear memory, bytes", ...boards.map((b) => size(b.pages * PAGE))],
    [".wasm", ...boards.map((b) => (b.wasmBytes === undefined ? "-" : kib(b.wasmBytes)))],
    row("per client (session + its connection)", (b) => size(Math.round(b.perClient))),
    row("per subscription (trie nodes apart)", (b) => size(Math.round(b.perSubscription))),
    row("per topic trie node", (b) => size(Math.round(b.perTopicNode))),
    ...keys.map((k) => [k, ...boards.map((b) => (k in b.limits ? size(b.limits[k]) : "-"))]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows) console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
}

function size(n) {
  return n.toLocaleString("en-US");
}

function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}
