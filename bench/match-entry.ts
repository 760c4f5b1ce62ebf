// Benchmark-only entry of the core (bench/micro.mjs): the whole ABI of assembly/index.ts
// plus three probes into the PUBLISH path, so the matcher can be timed as such. Compiled
// by bench/micro.mjs into build/bench/ with larger limits than any board; never shipped.
//
//   matchOnly(len)  the trie walk alone (topics/matcher matchTopic) over the topic at
//                   inputBuffer(); returns the number of trie nodes with subscriptions
//   matchSubs(len)  the trie walk, the once-per-node filter confirmation and a walk of
//                   every subscription on the confirmed nodes (what a matcher returns);
//                   returns the number of subscriptions
//   routeOnly(len)  delivery.route for a QoS 0 PUBLISH with that topic and no payload:
//                   trie walk, confirmation, per-session target collection and delivery
//                   (nothing is sent to offline sessions); returns the sessions reached

export * from "../assembly/index";
import { INPUT } from "../assembly/broker";
import { matchTopic, matchedCount, matchedNode, node } from "../assembly/topics/matcher";
import { topicMatches } from "../assembly/topics/validate";
import { subscription, subscriptionFilter } from "../assembly/session/subscriptions";
import { route } from "../assembly/delivery/route";

export function matchOnly(len: i32): i32 {
  matchTopic(INPUT, len);
  return matchedCount;
}

export function matchSubs(len: i32): i32 {
  matchTopic(INPUT, len);
  let n = 0;
  for (let k = 0; k < matchedCount; k++) {
    let sub = node(matchedNode(k)).subs;
    const first = subscription(sub);
    if (!topicMatches(INPUT, len, subscriptionFilter(sub) + <usize>first.filterOffset, first.filterLen - first.filterOffset)) continue;
    while (sub >= 0) {
      n++;
      sub = subscription(sub).nodeNext;
    }
  }
  return n;
}

export function routeOnly(len: i32): i32 {
  return route(INPUT, len, 0, 0, INPUT, 0, 0, false, 0, -1, -1);
}
