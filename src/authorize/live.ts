/**
 * Continuous authorization: every open WebSocket and every forwarded request
 * whose response is still streaming (SSE, a long download, a long poll) stays
 * tied to the session or key that opened it, and is ended within a second once
 * that access is gone — the session revoked or expired (absolute or idle, a
 * WebSocket's client messages counting as activity), its user suspended or
 * deactivated, its key revoked or expired, its account disabled, or a config
 * or role change that makes its route deny it now. A WebSocket gets close code
 * 1008 with the error code as the reason, a streamed response a reset tunnel
 * stream and a closed client connection; each end is audited and counted.
 *
 * No timer per stream. One registry per edge worker keeps the open streams in
 * an intrusive list (two pointer writes to add or remove one, no allocation:
 * every forwarded request passes through it), and one `tick` every
 * TICK_MS does the rest:
 * - the store's change feed (src/store/changes.ts) says which sessions, users,
 *   keys and accounts changed since the last tick — usually nothing, a single
 *   cursor seek — and only the streams they name are re-checked (a lost
 *   position re-checks all);
 * - each stream carries the instant its access next ends by itself (the
 *   session's absolute and idle ends, the key's expiry, a step-up rule's
 *   max_age since the factor was used), so expiry needs a
 *   comparison per stream, not a store read;
 * - a WebSocket's `idle_timeout` is a comparison too.
 * A new config version re-checks every stream against its route as the new
 * config matches it (`configChanged`).
 *
 * Re-checking reads the store exactly as a request would (Authenticator
 * `recheck`): there is no cache that could keep a revoked session alive.
 */
import type { Log } from '../runtime/index.js';
import type { CompiledConfig } from '../config/index.js';
import type { ErrorCode } from '../errors/index.js';
import { IDLE_REFRESH_INTERVAL_MS, type Authenticator, type Principal } from '../session/index.js';
import { authorize, Decision } from './index.js';
import { stepUpEndsAt } from './step-up.js';

/** How often the registry polls the change feed and checks deadlines: the bound on how late an end is noticed, less a tick. */
export const LIVE_TICK_MS = 250;
/** `liveDeadline` of a stream no tick has seen yet. */
const UNKNOWN_DEADLINE = -1;

/** One open stream, as the registry sees it. EdgeRequest and the front end's WebSocket implement it. */
export interface LiveStream {
  livePrev: LiveStream | null;
  liveNext: LiveStream | null;
  /** Who opened it (null on a public route); replaced by each re-check with the principal read then. */
  principal: Principal | null;
  readonly liveProject: string;
  readonly liveMethod: string;
  /** The route match key (normalized path, folded) the stream was authorized on. */
  readonly liveKey: string;
  /** When its access next ends by itself (session or key lifetime); Infinity when nothing expires. */
  liveDeadline: number;
  /** Last client activity (a WebSocket's client messages): counts towards the session's idle lifetime. */
  activeAt: number;
  /** A WebSocket: `idle_timeout` and `websocket: false` apply. */
  readonly isWebSocket: boolean;
  /** Last message either way (WebSockets; `idle_timeout`). */
  lastMessageAt: number;
  /** A WebSocket's `idle_timeout` under the rule it was last judged by; Infinity for a response. */
  liveIdleMs: number;
  readonly liveRequestId: string;
  readonly liveClient: string;
  /** Ends the stream: a WebSocket closes with `closeCode` and `code` as the reason; a response is reset. */
  revoke(code: ErrorCode, closeCode: number): void;
}

/** What changed since the last poll: the kinds' ids (`session:…`, `user:…`, `key:…`, `account:…`), or 'all' when the position was lost. */
export type ChangePoll = () => ReadonlySet<string> | 'all' | null;

/** The store's change feed as the registry reads it (src/store/changes.ts). */
export interface ChangeSource {
  last(): number;
  since(after: number): { seq: number; changed: Set<string> | 'gap' };
}

/** A ChangePoll over the change feed, starting from now: only changes after this call are reported. */
export function feedPoll(feed: ChangeSource): ChangePoll {
  let at = feed.last();
  return () => {
    const r = feed.since(at);
    at = r.seq;
    if (r.changed === 'gap') return 'all';
    return r.changed.size === 0 ? null : r.changed;
  };
}

export interface LiveDeps {
  auth: Authenticator;
  config(): CompiledConfig | null;
  /** The change feed; null checks only deadlines and config changes. */
  poll: ChangePoll | null;
  now(): number;
  /** An access ended: audit it (fire-and-forget; a failed write is logged). */
  audit(s: LiveStream, reason: string): void;
  log: Log;
}

export class LiveRegistry {
  private head: LiveStream | null = null;
  /** Streams open now. */
  size = 0;
  /** Streams ended by continuous authorization since start, by reason (the metric). */
  readonly ended = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: LiveDeps) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), LIVE_TICK_MS);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Registers an open stream: every forwarded request passes here, so this is
   * four pointer writes and nothing else. Its deadline (from its principal's
   * lifetimes) is worked out by the first tick that finds it still open
   * (UNKNOWN_DEADLINE), which most requests never see.
   */
  add(s: LiveStream): void {
    s.liveDeadline = UNKNOWN_DEADLINE;
    s.livePrev = null;
    s.liveNext = this.head;
    if (this.head !== null) this.head.livePrev = s;
    this.head = s;
    this.size++;
  }

  remove(s: LiveStream): void {
    const prev = s.livePrev;
    const next: LiveStream | null = s.liveNext;
    if (prev === null) {
      if (this.head !== s) return; // not registered
      this.head = next;
    } else prev.liveNext = next;
    if (next !== null) next.livePrev = prev;
    s.livePrev = null;
    s.liveNext = null;
    this.size--;
  }

  /**
   * Open WebSockets per rule and per session, key or (on a public rule)
   * client address: `max_sockets`. Kept apart from the list, so a handshake
   * costs a map lookup, not a walk of every open stream.
   */
  private readonly sockets = new Map<string, number>();

  /** How many WebSockets `who` holds open on `rule` (the rule's name, which names its project). */
  socketsOn(rule: string, who: string): number {
    return this.sockets.get(socketKey(rule, who)) ?? 0;
  }
  socketOpened(rule: string, who: string): void {
    const k = socketKey(rule, who);
    this.sockets.set(k, (this.sockets.get(k) ?? 0) + 1);
  }
  socketClosed(rule: string, who: string): void {
    const k = socketKey(rule, who);
    const n = this.sockets.get(k) ?? 0;
    if (n <= 1) this.sockets.delete(k);
    else this.sockets.set(k, n - 1);
  }

  /** The change feed, deadlines and idle WebSockets. */
  tick(): void {
    const cfg = this.deps.config();
    if (cfg === null || this.head === null) {
      try {
        this.deps.poll?.(); // keep the feed position current
      } catch {
        // Nothing open to re-check; the next tick with open streams reads the feed again.
      }
      return;
    }
    let changed: ReadonlySet<string> | 'all' | null = null;
    try {
      changed = this.deps.poll?.() ?? null;
    } catch (err) {
      // Fail closed: a feed that cannot be read re-checks everything (the store is read directly).
      this.deps.log(`live: the change feed could not be read (${(err as Error).message}); re-checking every open stream`, { level: 'error' });
      changed = 'all';
    }
    const now = this.deps.now();
    const all = changed === 'all';
    const ids = changed === null || changed === 'all' ? null : byKind(changed);
    for (let s: LiveStream | null = this.head; s !== null; ) {
      const next: LiveStream | null = s.liveNext;
      if (s.liveDeadline === UNKNOWN_DEADLINE) s.liveDeadline = deadlineOf(s, cfg);
      if (now - s.lastMessageAt >= s.liveIdleMs) {
        this.end(s, 'MEZU_WEBSOCKET_IDLE', 1001, 'idle');
      } else if (all || now >= s.liveDeadline || (ids !== null && names(s, ids)) || needsIdleRefresh(s)) {
        this.recheck(s, cfg);
      }
      s = next;
    }
  }

  /** A new config is being served: every open stream is judged again by the rule that now matches it. */
  configChanged(): void {
    const cfg = this.deps.config();
    if (cfg === null) return;
    for (let s: LiveStream | null = this.head; s !== null; ) {
      const next: LiveStream | null = s.liveNext;
      this.recheck(s, cfg);
      s = next;
    }
  }

  /** The worker's figures for its status report (every few seconds: one walk of the list). */
  stats(): { open: number; websockets: number; ended: Record<string, number> } {
    let websockets = 0;
    for (let s: LiveStream | null = this.head; s !== null; s = s.liveNext) if (s.isWebSocket) websockets++;
    return { open: this.size, websockets, ended: Object.fromEntries(this.ended) };
  }

  /** Every open WebSocket, e.g. to close them when the worker drains. */
  forEachWebSocket(fn: (s: LiveStream) => void): void {
    for (let s: LiveStream | null = this.head; s !== null; ) {
      const next: LiveStream | null = s.liveNext;
      if (s.isWebSocket) fn(s);
      s = next;
    }
  }

  private recheck(s: LiveStream, cfg: CompiledConfig): void {
    let reason: string | null;
    try {
      reason = this.judge(s, cfg);
    } catch (err) {
      // Fail closed: an access that cannot be confirmed ends.
      this.deps.log(`live: re-check of ${s.liveRequestId} failed (${(err as Error).message}); ending it`, { level: 'error', request_id: s.liveRequestId });
      reason = 'internal error';
    }
    if (reason !== null) this.end(s, 'MEZU_ACCESS_REVOKED', 1008, reason);
  }

  /** null while the stream may stay open (its principal and deadline refreshed), else why it must end. */
  private judge(s: LiveStream, cfg: CompiledConfig): string | null {
    const project = cfg.projects.get(s.liveProject);
    if (project === undefined) return 'project removed';
    const policy = project.match(s.liveMethod, s.liveKey);
    if (policy.auth === 'deny') return 'route denied';
    if (s.isWebSocket) {
      if (!policy.websocket) return 'websockets disabled on the route';
      s.liveIdleMs = policy.idleTimeoutMs; // the rule that matches it now
    }
    if (policy.auth === 'public') {
      s.liveDeadline = Infinity;
      return null;
    }
    const was = s.principal;
    if (was === null) return 'route now requires sign-in';
    const p = this.deps.auth.recheck(was, project.id, project.sessionAbsoluteMs, project.sessionIdleMs, s.activeAt);
    if (p === null) return was.key !== null ? 'key or account no longer valid' : 'session ended';
    if (authorize(policy, p) !== Decision.Allow) return 'no longer allowed on the route';
    // A route's step_up: the factor must still be within max_age (a step-up does not reach an open
    // socket; the client steps up and reconnects). `device: known` was checked at the handshake, which
    // carried the device cookie; a device does not stop being known with time.
    const su = policy.stepUp;
    if (su !== null && (p.session === null || this.deps.now() > stepUpEndsAt(su, p.session))) return 'step-up no longer fresh';
    s.principal = p;
    s.liveDeadline = deadlineOf(s, cfg);
    return null;
  }

  private end(s: LiveStream, code: ErrorCode, closeCode: number, reason: string): void {
    this.remove(s);
    this.ended.set(reason, (this.ended.get(reason) ?? 0) + 1);
    if (code === 'MEZU_ACCESS_REVOKED') {
      this.deps.log(`live: ended ${s.isWebSocket ? 'WebSocket' : 'streamed response'} ${s.liveRequestId} (${reason})`, { level: 'info', request_id: s.liveRequestId, reason });
      this.deps.audit(s, reason);
    }
    s.revoke(code, closeCode);
  }
}

/** Whether `changed` names the stream's session, user, key or account. */
function names(s: LiveStream, ids: ChangedIds): boolean {
  const p = s.principal;
  if (p === null) return false;
  if (p.key !== null) return ids.key.has(p.key.id) || ids.account.has(p.account!.id);
  return ids.session.has(p.credential) || ids.user.has(p.user!.id);
}

const socketKey = (rule: string, who: string): string => `${rule}\u0000${who}`;

/** The feed's `kind:id` entries split by kind once per tick, so the walk builds no string per stream. */
interface ChangedIds {
  session: Set<string>;
  user: Set<string>;
  key: Set<string>;
  account: Set<string>;
}

function byKind(changed: ReadonlySet<string>): ChangedIds {
  const ids: ChangedIds = { session: new Set(), user: new Set(), key: new Set(), account: new Set() };
  for (const c of changed) {
    const i = c.indexOf(':');
    const kind = c.slice(0, i);
    if (kind === 'session' || kind === 'user' || kind === 'key' || kind === 'account') ids[kind].add(c.slice(i + 1));
  }
  return ids;
}

/** A WebSocket whose client has been active for a minute past the session's stored lastSeenAt: write it back (Authenticator.recheck). */
function needsIdleRefresh(s: LiveStream): boolean {
  const session = s.principal?.session;
  return session !== null && session !== undefined && s.activeAt - session.lastSeenAt >= IDLE_REFRESH_INTERVAL_MS;
}

/** When the stream's access ends by itself: the session's absolute or idle end, the key's expiry, the route's step-up max_age. */
function deadlineOf(s: LiveStream, cfg: CompiledConfig): number {
  const p = s.principal;
  if (p === null) return Infinity;
  if (p.key !== null) return p.key.expiresAt ?? Infinity;
  const project = cfg.projects.get(s.liveProject);
  const session = p.session!;
  if (project === undefined) return 0;
  const end = Math.min(session.createdAt + project.sessionAbsoluteMs, Math.max(session.lastSeenAt, s.activeAt) + project.sessionIdleMs);
  // A step-up rule's max_age ends it too (one route match, only when a deadline is worked out).
  const su = project.match(s.liveMethod, s.liveKey).stepUp;
  return su === null ? end : Math.min(end, stepUpEndsAt(su, session));
}
