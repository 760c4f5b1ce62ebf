// Push back instead of dropping (DESIGN §5). A subscriber that is still reading but
// behind — more than the hold line of bytes unsent, or a full QoS 1/2 queue — makes
// the publishers that feed it wait: the core asks the host to stop reading them
// (`pause`) right after the packet that found the subscriber behind, and the host keeps
// their unread bytes. They are read again (`resume`) as soon as the subscriber has
// room, and at the latest when it is found not to be reading:
//
//   behind on bytes (QoS 0 and 1/2)  over the hold line for LAG_GRACE_MS without
//                                    draining: "lagging"; QoS 0 to it is then dropped
//                                    past --max-backlog, until its socket drains
//   full queue (QoS 1/2)             no byte taken and nothing acknowledged for
//                                    --stall-timeout: "stalled"; what does not fit its
//                                    queue is dropped, counted and logged, until it
//                                    takes something again
//
// So a reading subscriber loses nothing, one that stopped costs the others at most one
// grace or one stall timeout, and memory stays bounded either way.

import { hostPause, hostResume, hostBacklog, hostWake, LogLevel } from "../host";
import { now } from "../clock";
import { maxBacklog, maxQueued, stallTimeoutMs } from "../settings";
import { offlineQueueLimit } from "../bridge/link";
import { connection, connectionsHighWater, ConnState } from "../session/connections";
import { session, sessionId, logSessionName } from "../session/sessions";
import { statAdd, Stat } from "../stats";
import { logOn, logStart, logText, logBytes, logInt, logEnd } from "../log";

/** Why the host was asked not to read a connection (bits of `Connection.paused`). */
export const enum Pause {
  Hold = 1,        // a subscriber it publishes to is behind
  Budget = 2,      // waiting for room in the input budget (flow/input.ts)
  OwnReplies = 4,  // its own answers pile up unread
  Persist = 8,     // persistence_sync always: its acknowledgements wait for the disk (persist/journal.ts)
}

/** Why a subscriber holds its publishers (bits of `Connection.congestion`). */
export const enum Congestion { Backlog = 1, Queue = 2 }

/** How long a subscriber may stay over the hold line before it counts as lagging: short,
 *  because every publisher feeding it waits meanwhile (the voice profile: a slow debug
 *  reader of `hermes/#` must not stall the audio of the fast ones; 250 ms put their p99
 *  from 1.2 to 3.3 ms). A reader that keeps up drains below the line well within it. */
// @ts-ignore: decorator
@inline export const LAG_GRACE_MS: f64 = 50;
/** How often the tick looks at congested subscribers and paused connections. */
// @ts-ignore: decorator
@inline const CHECK_MS: u32 = 20;

/** Unsent bytes above which a subscriber makes its publishers wait. */
export function holdLine(): u32 { return <u32>maxBacklog >> 1; }

/** A queue at or over this many deliveries makes its publishers wait... */
// @ts-ignore: decorator
@inline function queueFullLine(): i32 { return maxQueued; }
/** ...until it is down to half: each release lets a long run of packets through, so
 *  publishers are paused and resumed rarely (each costs the host a copy of what it kept). */
// @ts-ignore: decorator
@inline function queueRoomLine(): i32 { return maxQueued >> 1; }

/** Set during one packet's fan-out when a target asked its publisher to wait. */
let holdWanted = false;
/** Connections paused with Pause.Hold (so releasing scans only when there are some). */
let heldCount = 0;

/** Ask the host to stop reading `conn` for `why`. */
export function pauseConnection(conn: i32, why: i32): void {
  const c = connection(conn);
  if ((c.paused & why) != 0) return;
  if (c.paused == 0) hostPause(conn);
  c.paused |= why;
  if (why == Pause.Hold) { c.heldAt = now; heldCount++; statAdd(Stat.PublisherHolds); }
  hostWake(CHECK_MS);
}

/** Lift one reason; the host reads `conn` again once none is left. */
export function unpauseConnection(conn: i32, why: i32): void {
  const c = connection(conn);
  if ((c.paused & why) == 0) return;
  c.paused &= ~why;
  if (why == Pause.Hold) heldCount--;
  if (c.paused == 0 && c.state != ConnState.Closing && c.state != ConnState.Free) hostResume(conn);
}

/** Every held publisher goes on; one still feeding a subscriber that is behind is held
 *  again at its next packet for it. */
export function releaseHolds(): void {
  if (heldCount == 0) return;
  for (let i = 0, n = connectionsHighWater(); i < n && heldCount > 0; i++) {
    if ((connection(i).paused & Pause.Hold) != 0) unpauseConnection(i, Pause.Hold);
  }
}

/** During fan-out, for each online target connection: is it behind, and should the
 *  publishing connection (`publisher`, -1 for none: a will, a replay) wait for it?
 *  `queued` is the target session's queue length after this delivery. */
export function noteTarget(conn: i32, publisher: i32, backlog: u32, queued: i32): void {
  const c = connection(conn);
  let why = 0;
  if (backlog > holdLine() && c.lagging == 0) why |= Congestion.Backlog;
  if (queued >= queueFullLine() && c.stalled == 0) why |= Congestion.Queue;
  if (why == 0) return;
  if (c.congestedAt == 0) {
    c.congestedAt = now;
    c.progressAt = now;
    c.lastBacklog = backlog;
    hostWake(CHECK_MS);
  }
  c.congestion |= why;
  // a publisher is not held for itself, nor while others wait for it (its acks must flow)
  if (publisher >= 0 && publisher != conn && connection(publisher).congestedAt == 0) holdWanted = true;
}

/** After each packet: did its fan-out ask its publisher to wait? Clears the request. */
export function takeHoldRequest(): bool {
  const wanted = holdWanted;
  holdWanted = false;
  return wanted;
}

/** Whether a QoS 0 message to this subscriber is dropped: only for one that stayed
 *  behind past the grace (lagging) and is over --max-backlog, never for a burst. */
export function dropsQos0(conn: i32, backlog: u32): bool {
  return backlog > <u32>maxBacklog && connection(conn).lagging != 0;
}

/** Whether a QoS 1/2 message that does not fit this session's queue is dropped rather
 *  than queued past it: offline, stalled, or twice over (the headroom for packets that
 *  were already read when the publishers were held). */
export function dropsQueued(s: i32): bool {
  const ss = session(s);
  if (ss.queued < maxQueued) return false;
  if (ss.conn < 0) return ss.queued >= offlineQueueLimit(s, maxQueued);
  return connection(ss.conn).stalled != 0 || ss.queued >= max(maxQueued * 2, offlineQueueLimit(s, maxQueued));
}

function settle(conn: i32): void {
  const c = connection(conn);
  if (c.congestion != 0 || c.congestedAt == 0) return;
  c.congestedAt = 0;
  releaseHolds();
}

/** The subscriber acknowledged something (its queue may have room again). */
export function subscriberAcked(conn: i32, queued: i32): void {
  const c = connection(conn);
  c.progressAt = now;
  c.stalled = 0;
  if ((c.congestion & Congestion.Queue) != 0 && queued <= queueRoomLine()) {
    c.congestion &= ~Congestion.Queue;
    settle(conn);
  }
}

/** The host wrote everything it had for `conn`. */
export function connectionDrained(conn: i32): void {
  const c = connection(conn);
  c.progressAt = now;
  c.lagging = 0;
  c.stalled = 0;
  c.lastBacklog = 0;
  unpauseConnection(conn, Pause.OwnReplies);
  if ((c.congestion & Congestion.Backlog) != 0) {
    c.congestion &= ~Congestion.Backlog;
    settle(conn);
  }
}

/** The connection is going away: it holds nobody, and nobody waits for it. */
export function connectionGone(conn: i32): void {
  const c = connection(conn);
  if ((c.paused & Pause.Hold) != 0) heldCount--;
  c.paused = 0;
  c.congestion = 0;
  settle(conn);
}

/** After a packet: a client whose own answers pile up unread is not read until they
 *  drain, so no client can grow the host's memory by not reading. */
export function checkOwnReplies(conn: i32): void {
  if (hostBacklog(conn) > <u32>maxBacklog) {
    statAdd(Stat.OwnReplyPauses);
    pauseConnection(conn, Pause.OwnReplies);
  }
}

function logFlow(conn: i32, what: string): void {
  if (!logOn(LogLevel.Warning)) return;
  const s = connection(conn).session;
  logStart();
  if (s >= 0) logSessionName(s);
  else { logText("client "); logInt(conn); }
  logText(" ");
  logText(what);
  logEnd(LogLevel.Warning);
}

/** From the tick: congested subscribers that have not moved, and pauses past their
 *  bound. Returns the milliseconds until it wants to look again (1000: nothing to do). */
export function flowTick(): f64 {
  let next: f64 = 1000;
  for (let i = 0, n = connectionsHighWater(); i < n; i++) {
    const c = connection(i);
    if (c.state != ConnState.Connected && c.state != ConnState.AwaitingConnect) continue;
    if (c.congestedAt > 0) {
      const backlog = hostBacklog(i);
      if (backlog < c.lastBacklog) c.progressAt = now;
      c.lastBacklog = backlog;
      if ((c.congestion & Congestion.Backlog) != 0) {
        if (backlog <= holdLine()) {
          c.congestion &= ~Congestion.Backlog;          // it caught up without draining whole
        } else if (now - c.congestedAt >= LAG_GRACE_MS && (c.bridge < 0 || now - c.progressAt >= stallTimeoutMs)) {
          // (a bridge's link is the gateway's way out: while its upstream takes bytes, however
          // slowly, the publishers feeding it wait rather than lose QoS 0 messages; it counts
          // as lagging only once it has taken nothing for the stall timeout)
          c.congestion &= ~Congestion.Backlog;
          c.lagging = 1;
          logFlow(i, "is lagging behind: QoS 0 messages beyond its backlog limit are dropped until it catches up");
        }
      }
      if ((c.congestion & Congestion.Queue) != 0 && now - c.progressAt >= stallTimeoutMs) {
        c.congestion &= ~Congestion.Queue;
        c.stalled = 1;
        statAdd(Stat.StalledSubscribers);
        logFlow(i, "stalled (took nothing for the stall timeout): publishers go on, its queue overflow is dropped");
      }
      settle(i);
      if (c.congestedAt > 0) next = min(next, <f64>CHECK_MS);
    }
    if ((c.paused & Pause.Hold) != 0) {
      // nobody holds a publisher longer than the stall timeout
      if (now - c.heldAt >= stallTimeoutMs) unpauseConnection(i, Pause.Hold);
      else next = min(next, <f64>CHECK_MS);
    }
    if ((c.paused & Pause.OwnReplies) != 0) {
      // half drained is enough: a subscriber kept busy by others may never drain whole
      if (hostBacklog(i) <= holdLine()) unpauseConnection(i, Pause.OwnReplies);
      else next = min(next, <f64>CHECK_MS);
    }
  }
  return next;
}
