/**
 * Continuous authorization (src/authorize/live.ts): the registry of open
 * WebSockets and streamed responses, and the tick that ends them once their
 * access is gone. What must hold, because a stream left open after its
 * session was revoked is an access-control hole:
 *
 * - a stream past its deadline (session lifetimes, key expiry) is re-checked
 *   and ended with 1008 MEZU_ACCESS_REVOKED, audited and counted; before its
 *   deadline it costs no store read;
 * - a WebSocket silent for its route's `idle_timeout` is closed with 1001
 *   MEZU_WEBSOCKET_IDLE (not an access decision: not audited);
 * - the change feed makes exactly the streams it names re-checked, and
 *   'all' (a lost position) or a feed that cannot be read re-checks every
 *   one; a re-check that throws ends its stream (fail closed);
 * - a new config judges every stream again by the rule that now matches it.
 *
 * The streams, the Authenticator's `recheck` (with the real one's lifetime
 * rules) and the clock are fakes; the config is compiled from YAML by the
 * real src/config, so routes match as they do at the edge.
 */
import test from 'ava';
import { LiveRegistry, feedPoll, type ChangePoll, type LiveStream } from '../../../src/authorize/index.js';
import type { ChangeSource } from '../../../src/authorize/live.js';
import { compileConfig, parseConfigYaml, type CompiledConfig } from '../../../src/config/index.js';
import type { ErrorCode } from '../../../src/errors/index.js';
import { Principal, type Authenticator } from '../../../src/session/index.js';
import type { ApiKeyRecord, ServiceAccountRecord, SessionRecord, UserRecord } from '../../../src/store/index.js';

const T0 = 1_700_000_000_000;
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
/** The project's session lifetimes in the config below. */
const ABSOLUTE = 24 * HOUR;
const IDLE = 30 * MIN;
/** `idle_timeout` of /ws/* below. */
const WS_IDLE = 1 * MIN;

// ── config ──

const ROUTES_V1 = `
      - { path: /ws/*,     auth: required, principals: [user, service_account], idle_timeout: 1m }
      - { path: /admin/*,  auth: required, roles: [admin] }
      - { path: /public/*, auth: public }
      - { path: /events,   auth: required, principals: [user, service_account] }`;

function config(routes: string, version = 1, withDemo = true): CompiledConfig {
  const demo = `
  - id: demo
    hosts: [demo.example]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    routes:${routes}`;
  const yaml = `projects:${withDemo ? demo : ''}
  - id: other
    hosts: [other.example]
    upstream: other
`;
  const r = parseConfigYaml(yaml);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return compileConfig(r.config, version);
}

/** ROUTES_V1 with one edit; throws when `from` is not in it (a silent no-op would make a test vacuous). */
function routesWith(from: string, to: string): string {
  if (!ROUTES_V1.includes(from)) throw new Error(`not in ROUTES_V1: ${from}`);
  return ROUTES_V1.replace(from, to);
}

// ── principals ──

let seq = 0;

function userPrincipal(o: { roles?: string[]; createdAt?: number; lastSeenAt?: number; status?: UserRecord['status'] } = {}): Principal {
  const n = ++seq;
  const u: UserRecord = { id: `usr_${n}`, directory: 'demo', email: `u${n}@example.com`, name: `U${n}`, displayName: '', status: o.status ?? 'active', roles: o.roles ?? [], permissions: [], version: 1, createdAt: T0, updatedAt: T0, lastLoginAt: T0 };
  const s: SessionRecord = { id: `ses_${n}`, principalType: 'user', userId: u.id, projectId: 'demo', createdAt: o.createdAt ?? T0, lastSeenAt: o.lastSeenAt ?? T0, authTime: T0, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null };
  return new Principal(`th_${n}`, s, u, null, null);
}

/** The same credential, session and user, seen again with a later lastSeenAt (what a store read after an idle refresh returns). */
function seenAt(p: Principal, lastSeenAt: number): Principal {
  return new Principal(p.credential, { ...p.session!, lastSeenAt }, p.user, null, null);
}

function keyPrincipal(o: { expiresAt?: number | null; roles?: string[] } = {}): Principal {
  const n = ++seq;
  const a: ServiceAccountRecord = { id: `sa_${n}`, projectId: 'demo', name: `bot${n}`, status: 'active', roles: o.roles ?? [], permissions: [], version: 1, createdAt: T0, updatedAt: T0 };
  const k: ApiKeyRecord = { id: `key_${n}`, serviceAccountId: a.id, projectId: 'demo', secretHash: 'h', createdAt: T0, expiresAt: o.expiresAt ?? null, revokedAt: null, lastUsedAt: null, assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null };
  return new Principal(k.id, null, null, k, a);
}

// ── fakes ──

/** An open stream: records how it was ended; like the front end's, it leaves the registry when ended. */
class FakeStream implements LiveStream {
  livePrev: LiveStream | null = null;
  liveNext: LiveStream | null = null;
  liveDeadline = 0;
  principal: Principal | null;
  readonly liveProject: string;
  readonly liveMethod: string;
  readonly liveKey: string;
  readonly isWebSocket: boolean;
  activeAt: number;
  lastMessageAt: number;
  liveIdleMs: number;
  readonly liveRequestId: string;
  readonly liveClient: string;
  readonly revoked: [ErrorCode, number][] = [];
  registry: LiveRegistry | null = null;

  /** `idleMs`: the idle_timeout the front end read from the rule at the handshake (default /ws/*'s, 1 min). */
  constructor(o: { principal: Principal | null; ws?: boolean; key?: string; project?: string; method?: string; at?: number; client?: string; idleMs?: number }) {
    this.principal = o.principal;
    this.isWebSocket = o.ws ?? true;
    this.liveKey = o.key ?? (this.isWebSocket ? '/ws/chat' : '/events');
    this.liveProject = o.project ?? 'demo';
    this.liveMethod = o.method ?? 'GET';
    this.activeAt = o.at ?? T0;
    this.lastMessageAt = o.at ?? T0;
    this.liveIdleMs = this.isWebSocket ? (o.idleMs ?? WS_IDLE) : Infinity;
    this.liveRequestId = `req_${++seq}`;
    this.liveClient = o.client ?? '192.0.2.1';
  }

  revoke(code: ErrorCode, closeCode: number): void {
    this.revoked.push([code, closeCode]);
    // The front end's close handler removes the stream (EdgeSocket.finish): a second remove, mid-tick.
    this.registry?.remove(this);
  }
}

interface RecheckCall {
  credential: string;
  projectId: string;
  absoluteMs: number;
  idleMs: number;
  activeAt: number;
}

/**
 * Authenticator.recheck with the real one's rules (src/session/authenticate.ts)
 * over in-memory state: a credential in `gone` was revoked (or its user or
 * account suspended); lifetimes are checked against the clock; `fresh` is what
 * the store would return now for a credential.
 */
class FakeAuth {
  readonly calls: RecheckCall[] = [];
  readonly gone = new Set<string>();
  readonly failing = new Set<string>();
  readonly fresh = new Map<string, Principal>();
  constructor(private readonly now: () => number) {}

  recheck(p: Principal, projectId: string, absoluteMs: number, idleMs: number, activeAt: number): Principal | null {
    this.calls.push({ credential: p.credential, projectId, absoluteMs, idleMs, activeAt });
    if (this.failing.has(p.credential)) throw new Error('store read failed');
    if (this.gone.has(p.credential)) return null;
    const now = this.now();
    const q = this.fresh.get(p.credential) ?? p;
    if (q.key !== null) return q.key.expiresAt !== null && now >= q.key.expiresAt ? null : q;
    const s = q.session!;
    if (now >= s.createdAt + absoluteMs || now >= Math.max(s.lastSeenAt, activeAt) + idleMs) return null;
    return q;
  }

  rechecked(): string[] {
    return this.calls.map((c) => c.credential);
  }
}

function harness(cfg: CompiledConfig | null = config(ROUTES_V1)) {
  const clock = { t: T0 };
  const auth = new FakeAuth(() => clock.t);
  const audits: [LiveStream, string][] = [];
  const logs: string[] = [];
  const h = {
    clock,
    auth,
    audits,
    logs,
    cfg,
    /** What the next poll returns (then null again); an Error is thrown. */
    next: null as ReadonlySet<string> | 'all' | null | Error,
    polls: 0,
    reg: null as unknown as LiveRegistry,
    add(...streams: FakeStream[]): void {
      for (const s of streams) {
        s.registry = h.reg;
        h.reg.add(s);
      }
    },
    /** One tick at `at`, the feed returning `changed`. */
    tickAt(at: number, changed: ReadonlySet<string> | 'all' | null | Error = null): void {
      clock.t = at;
      h.next = changed;
      h.reg.tick();
    },
  };
  const poll: ChangePoll = () => {
    h.polls++;
    const r = h.next;
    h.next = null;
    if (r instanceof Error) throw r;
    return r;
  };
  h.reg = new LiveRegistry({
    auth: auth as unknown as Authenticator,
    config: () => h.cfg,
    poll,
    now: () => clock.t,
    audit: (s, reason) => audits.push([s, reason]),
    log: (m) => logs.push(m),
  });
  return h;
}

const REVOKED: [ErrorCode, number] = ['MEZU_ACCESS_REVOKED', 1008];
const IDLE_CLOSE: [ErrorCode, number] = ['MEZU_WEBSOCKET_IDLE', 1001];

/** The open WebSockets, by request id, sorted. */
function openSockets(reg: LiveRegistry): string[] {
  const out: string[] = [];
  reg.forEachWebSocket((s) => out.push(s.liveRequestId));
  return out.sort();
}

// ── add, remove, max_sockets counts ──

test('add and remove: size counts open streams; removing one twice, or one never added, changes nothing', (t) => {
  const h = harness();
  const [a, b, c] = [new FakeStream({ principal: userPrincipal() }), new FakeStream({ principal: userPrincipal() }), new FakeStream({ principal: userPrincipal() })];
  h.add(a, b, c);
  t.is(h.reg.size, 3);
  t.deepEqual(openSockets(h.reg), [a, b, c].map((s) => s.liveRequestId).sort());

  h.reg.remove(b); // the middle of the list
  t.is(h.reg.size, 2);
  h.reg.remove(b);
  t.is(h.reg.size, 2, 'a second remove is harmless');
  h.reg.remove(new FakeStream({ principal: null }));
  t.is(h.reg.size, 2, 'removing a stream never added is harmless');
  t.deepEqual(openSockets(h.reg), [a, c].map((s) => s.liveRequestId).sort());

  h.reg.remove(c); // the head (added last)
  h.reg.remove(a); // the tail
  t.is(h.reg.size, 0);
  t.deepEqual(openSockets(h.reg), []);
  h.reg.remove(a);
  h.reg.remove(c);
  t.is(h.reg.size, 0, 'removing from an empty registry is harmless');

  // A stream removed earlier, removed again after others were added, leaves them alone.
  const d = new FakeStream({ principal: userPrincipal() });
  h.add(d);
  h.reg.remove(a);
  t.is(h.reg.size, 1);
  t.deepEqual(openSockets(h.reg), [d.liveRequestId]);
  // And a removed stream can be added again.
  h.add(a);
  t.deepEqual(openSockets(h.reg), [a, d].map((s) => s.liveRequestId).sort());
});

test('add and remove: the list stays whole, every open stream is still reached by a tick', (t) => {
  const h = harness();
  const streams = Array.from({ length: 6 }, () => new FakeStream({ principal: userPrincipal() }));
  h.add(...streams);
  for (const i of [0, 3, 5]) h.reg.remove(streams[i]!);
  h.tickAt(T0 + SEC, 'all');
  t.deepEqual(h.auth.rechecked().sort(), [1, 2, 4].map((i) => streams[i]!.principal!.credential).sort());
});

test('max_sockets counts: per rule and per session, key or client address; a close gives the place back', (t) => {
  const h = harness();
  const chat = 'demo:/ws/*';
  const other = 'demo:/other/*';
  h.reg.socketOpened(chat, 'alice');
  h.reg.socketOpened(chat, 'alice');
  h.reg.socketOpened(other, 'alice');
  h.reg.socketOpened('other:/ws/*', 'alice');
  h.reg.socketOpened(chat, '198.51.100.7');
  t.is(h.reg.socketsOn(chat, 'alice'), 2, 'two paths under one prefix rule count together');
  t.is(h.reg.socketsOn(other, 'alice'), 1, 'another rule has its own count');
  t.is(h.reg.socketsOn('other:/ws/*', 'alice'), 1, 'the same path in another project is another rule');
  t.is(h.reg.socketsOn(chat, 'bob'), 0);
  t.is(h.reg.socketsOn(chat, '198.51.100.7'), 1, 'a public socket counts by client address');
  h.reg.socketClosed(chat, 'alice');
  t.is(h.reg.socketsOn(chat, 'alice'), 1);
  h.reg.socketClosed(chat, 'alice');
  h.reg.socketClosed(chat, 'alice'); // one close too many is harmless
  t.is(h.reg.socketsOn(chat, 'alice'), 0);
  h.reg.socketOpened(chat, 'alice');
  t.is(h.reg.socketsOn(chat, 'alice'), 1, 'and counting starts again from zero');
});

// ── tick: deadlines ──

test('tick: before its deadline a stream costs no re-check; at it (the session\'s idle end) it is re-checked and ended with 1008, audited and counted', (t) => {
  const h = harness();
  const p = userPrincipal(); // session idle end: T0 + 30 min; absolute: T0 + 24 h
  const s = new FakeStream({ principal: p, ws: false });
  h.add(s);
  h.tickAt(T0 + IDLE - 1);
  t.deepEqual(h.auth.calls, [], 'expiry is a comparison, not a store read');
  t.deepEqual(s.revoked, []);

  h.tickAt(T0 + IDLE);
  t.deepEqual(h.auth.calls, [{ credential: p.credential, projectId: 'demo', absoluteMs: ABSOLUTE, idleMs: IDLE, activeAt: T0 }]);
  t.deepEqual(s.revoked, [REVOKED]);
  t.deepEqual(h.audits, [[s, 'session ended']]);
  t.is(h.reg.ended.get('session ended'), 1);
  t.is(h.reg.size, 0);
  t.true(h.logs.some((l) => l.includes(s.liveRequestId)), 'the end is logged');

  h.tickAt(T0 + IDLE + SEC);
  t.is(s.revoked.length, 1, 'ended once');
  t.is(h.auth.calls.length, 1);
});

test('tick: the session\'s absolute end ends a stream that was active all along', (t) => {
  const h = harness();
  const p = userPrincipal({ createdAt: T0 - ABSOLUTE + 10 * MIN }); // absolute end: T0 + 10 min
  const s = new FakeStream({ principal: p, ws: false });
  h.add(s);
  h.tickAt(T0 + 10 * MIN - 1);
  t.deepEqual(s.revoked, []);
  h.tickAt(T0 + 10 * MIN);
  t.deepEqual(s.revoked, [REVOKED]);
  t.deepEqual(h.audits.map((a) => a[1]), ['session ended']);
});

test('tick: a key\'s expiry ends its stream; a key that never expires is never re-checked for it', (t) => {
  const h = harness();
  const expiring = new FakeStream({ principal: keyPrincipal({ expiresAt: T0 + HOUR }), ws: false });
  const forever = new FakeStream({ principal: keyPrincipal({ expiresAt: null }), ws: false });
  h.add(expiring, forever);
  h.tickAt(T0 + HOUR - 1);
  t.deepEqual(h.auth.calls, []);
  h.tickAt(T0 + HOUR);
  t.deepEqual(expiring.revoked, [REVOKED]);
  t.deepEqual(h.audits, [[expiring, 'key or account no longer valid']]);
  t.is(h.reg.ended.get('key or account no longer valid'), 1);
  h.tickAt(T0 + 1000 * HOUR);
  t.deepEqual(forever.revoked, []);
  t.deepEqual(h.auth.rechecked(), [expiring.principal!.credential]);
});

test('tick: a re-check that finds the session still alive keeps the stream, takes the principal read then and moves the deadline', (t) => {
  const h = harness();
  const p = userPrincipal();
  const s = new FakeStream({ principal: p, ws: false });
  h.add(s);
  // At 10 min the session's user changed (feed): the store now says lastSeenAt = T0 + 10 min.
  const later = seenAt(p, T0 + 10 * MIN);
  h.auth.fresh.set(p.credential, later);
  h.tickAt(T0 + 10 * MIN, new Set([`user:${p.user!.id}`]));
  t.is(s.principal, later, 'the principal read by the re-check replaces the old one');
  t.deepEqual(s.revoked, []);
  // The old deadline (T0 + 30 min) is gone: no re-check there. The new one is T0 + 40 min.
  h.tickAt(T0 + IDLE);
  t.is(h.auth.calls.length, 1);
  t.deepEqual(s.revoked, []);
  h.tickAt(T0 + 40 * MIN);
  t.is(h.auth.calls.length, 2);
  t.deepEqual(s.revoked, [REVOKED]);
});

test('tick: a WebSocket\'s client activity counts towards the session\'s idle lifetime', (t) => {
  const h = harness();
  const p = userPrincipal();
  const s = new FakeStream({ principal: p });
  h.add(s);
  // Client messages at T0 + 20 min. The store's lastSeenAt stays T0 (its write-back has not landed):
  // only the activity the registry hands to recheck keeps the session alive.
  s.activeAt = s.lastMessageAt = T0 + 20 * MIN;
  h.tickAt(T0 + 20 * MIN);
  s.lastMessageAt = T0 + IDLE; // messages either way keep the WebSocket out of its idle_timeout
  h.tickAt(T0 + IDLE);
  t.deepEqual(s.revoked, [], 'alive past the session\'s idle end counted from its last request');
  t.true(h.auth.calls.length > 0 && h.auth.calls.every((c) => c.activeAt === T0 + 20 * MIN), 'rechecked with the client\'s activity');
  s.lastMessageAt = T0 + 50 * MIN - 1;
  h.tickAt(T0 + 50 * MIN - 1);
  t.deepEqual(s.revoked, []);
  s.lastMessageAt = T0 + 50 * MIN;
  h.tickAt(T0 + 50 * MIN);
  t.deepEqual(s.revoked, [REVOKED], 'ended 30 min after its last client activity');
});

test('tick: the deadline counts client activity the store has not seen yet: no re-check at the stored idle end', (t) => {
  const h = harness();
  const p = userPrincipal(); // stored lastSeenAt T0: the session's idle end as stored is T0 + 30 min
  const s = new FakeStream({ principal: p, at: T0 + 30 * SEC }); // opened (active) 30 s later: under the refresh interval
  h.add(s);
  s.lastMessageAt = T0 + IDLE;
  h.tickAt(T0 + IDLE);
  t.deepEqual(h.auth.calls, [], 'the deadline is T0 + 30 s + 30 min');
  s.lastMessageAt = T0 + IDLE + 30 * SEC;
  h.tickAt(T0 + IDLE + 30 * SEC);
  t.deepEqual(s.revoked, [REVOKED]);
});

test('tick: a WebSocket active for a minute past the session\'s stored lastSeenAt is re-checked (the idle refresh is written back)', (t) => {
  const h = harness();
  const p = userPrincipal();
  const s = new FakeStream({ principal: p });
  h.add(s);
  s.activeAt = s.lastMessageAt = T0 + 59 * SEC;
  h.tickAt(T0 + 59 * SEC);
  t.deepEqual(h.auth.calls, [], '59 s: not yet');
  s.activeAt = s.lastMessageAt = T0 + 60 * SEC;
  h.tickAt(T0 + 60 * SEC);
  t.deepEqual(h.auth.calls.map((c) => c.activeAt), [T0 + 60 * SEC], 'rechecked with the activity to write back');
  t.deepEqual(s.revoked, []);
});

// ── tick: idle WebSockets ──

test('tick: a WebSocket silent for its route\'s idle_timeout is closed with 1001 MEZU_WEBSOCKET_IDLE, not audited, counted as idle', (t) => {
  const h = harness();
  const silent = new FakeStream({ principal: userPrincipal() });
  const chatty = new FakeStream({ principal: userPrincipal() });
  const response = new FakeStream({ principal: userPrincipal(), ws: false, key: '/ws/chat' }); // idle_timeout is for WebSockets only
  h.add(silent, chatty, response);
  h.tickAt(T0 + WS_IDLE - 1);
  t.deepEqual(silent.revoked, [], 'a millisecond short of idle_timeout');
  chatty.lastMessageAt = T0 + 30 * SEC;
  h.tickAt(T0 + WS_IDLE);
  t.deepEqual(silent.revoked, [IDLE_CLOSE]);
  t.deepEqual(chatty.revoked, [], 'a message in the last minute keeps it open');
  t.deepEqual(response.revoked, []);
  t.deepEqual(h.audits, [], 'an idle close is not an access decision');
  t.is(h.reg.ended.get('idle'), 1);
  t.deepEqual(h.auth.calls, [], 'no store read for it either');
  t.deepEqual(openSockets(h.reg), [chatty.liveRequestId]);
});

test('tick: idle_timeout is the one the stream carries from the rule that last judged it; a new config\'s rule replaces it', (t) => {
  const h = harness();
  const ws = new FakeStream({ principal: userPrincipal() }); // opened under /ws/*: idle_timeout 1 min
  const other = new FakeStream({ principal: userPrincipal(), key: '/events', idleMs: 5 * MIN }); // the default rule's 5 min
  h.add(ws, other);
  h.cfg = config(routesWith('idle_timeout: 1m', 'idle_timeout: 2m'), 2);
  h.reg.configChanged();
  t.is(ws.liveIdleMs, 2 * MIN, 'the rule that matches it now');
  t.is(other.liveIdleMs, 5 * MIN);
  h.tickAt(T0 + 2 * MIN - 1);
  t.deepEqual(ws.revoked, [], 'the old 1 min no longer applies');
  h.tickAt(T0 + 2 * MIN);
  t.deepEqual(ws.revoked, [IDLE_CLOSE]);
  t.deepEqual(other.revoked, []);
  h.tickAt(T0 + 5 * MIN);
  t.deepEqual(other.revoked, [IDLE_CLOSE]);
});

// ── tick: the change feed ──

test('tick: only the streams the change feed names are re-checked; a stream of another session is untouched', (t) => {
  const h = harness();
  const alice = userPrincipal();
  const bob = userPrincipal();
  const key = keyPrincipal();
  const sa = new FakeStream({ principal: alice, ws: false });
  const sb = new FakeStream({ principal: bob, ws: false });
  const sk = new FakeStream({ principal: key, ws: false });
  const anon = new FakeStream({ principal: null, ws: false, key: '/public/feed' });
  h.add(sa, sb, sk, anon);

  h.auth.gone.add(alice.credential); // Alice's session was revoked
  h.tickAt(T0 + SEC, new Set([`session:${alice.credential}`]));
  t.deepEqual(h.auth.rechecked(), [alice.credential], 'recheck was not called for Bob, the key or the public stream');
  t.deepEqual(sa.revoked, [REVOKED]);
  t.deepEqual(h.audits, [[sa, 'session ended']]);
  t.deepEqual(sb.revoked, []);
  t.deepEqual(sk.revoked, []);

  h.auth.calls.length = 0;
  h.tickAt(T0 + 2 * SEC, new Set([`user:${bob.user!.id}`]));
  t.deepEqual(h.auth.rechecked(), [bob.credential], 'a user change names the user\'s sessions');

  h.auth.calls.length = 0;
  h.tickAt(T0 + 3 * SEC, new Set([`key:${key.key!.id}`]));
  t.deepEqual(h.auth.rechecked(), [key.credential]);
  h.auth.calls.length = 0;
  h.tickAt(T0 + 4 * SEC, new Set([`account:${key.account!.id}`]));
  t.deepEqual(h.auth.rechecked(), [key.credential], 'an account change names its keys');

  h.auth.calls.length = 0;
  // Ids of the wrong kind, or of nobody here, name nothing.
  h.tickAt(T0 + 5 * SEC, new Set([`user:${bob.credential}`, `session:${bob.user!.id}`, `session:${key.credential}`, `account:${bob.user!.id}`, 'session:th_nobody']));
  t.deepEqual(h.auth.calls, []);
  t.deepEqual([sb.revoked, sk.revoked, anon.revoked], [[], [], []]);
  t.is(h.reg.size, 3);
});

test('tick: \'all\' (the feed\'s position was lost) re-checks every stream', (t) => {
  const h = harness();
  const ps = [userPrincipal(), userPrincipal(), keyPrincipal()];
  const streams = ps.map((p, i) => new FakeStream({ principal: p, ws: i === 0 }));
  h.add(...streams);
  h.auth.gone.add(ps[1]!.credential);
  h.tickAt(T0 + SEC, 'all');
  t.deepEqual(h.auth.rechecked().sort(), ps.map((p) => p.credential).sort());
  t.deepEqual(streams.map((s) => s.revoked), [[], [REVOKED], []]);
  t.is(h.reg.size, 2);
});

test('tick: a change feed that cannot be read re-checks every stream (fail closed), and says so', (t) => {
  const h = harness();
  const ps = [userPrincipal(), userPrincipal()];
  const streams = ps.map((p) => new FakeStream({ principal: p, ws: false }));
  h.add(...streams);
  h.auth.gone.add(ps[0]!.credential);
  h.tickAt(T0 + SEC, new Error('feed unreadable'));
  t.deepEqual(h.auth.rechecked().sort(), ps.map((p) => p.credential).sort());
  t.deepEqual(streams.map((s) => s.revoked), [[REVOKED], []]);
  t.true(h.logs.some((l) => l.includes('feed unreadable')), h.logs.join('\n'));
  // The next tick reads the feed again; nothing changed: no re-check.
  h.auth.calls.length = 0;
  h.tickAt(T0 + 2 * SEC);
  t.deepEqual(h.auth.calls, []);
});

test('tick: a re-check that throws ends that stream (fail closed); the others are still re-checked', (t) => {
  const h = harness();
  const ps = [userPrincipal(), userPrincipal(), userPrincipal()];
  const streams = ps.map((p) => new FakeStream({ principal: p, ws: false }));
  h.add(...streams);
  h.auth.failing.add(ps[1]!.credential);
  h.tickAt(T0 + SEC, 'all');
  t.is(h.auth.calls.length, 3, 'every stream was re-checked');
  t.deepEqual(streams.map((s) => s.revoked), [[], [REVOKED], []]);
  t.deepEqual(h.audits, [[streams[1]!, 'internal error']]);
  t.is(h.reg.ended.get('internal error'), 1);
  t.true(h.logs.some((l) => l.includes('store read failed')));
});

test('tick: without a config nothing is judged, but the feed is still read so its position stays current', (t) => {
  const h = harness(null);
  const s = new FakeStream({ principal: userPrincipal(), ws: true });
  h.add(s);
  h.tickAt(T0 + 1000 * HOUR, 'all');
  t.is(h.polls, 1);
  t.deepEqual(s.revoked, []);
  t.deepEqual(h.auth.calls, []);
  // Nothing open: the feed is read too, and a feed error there is not fatal.
  const e = harness();
  e.tickAt(T0 + SEC, new Error('feed down'));
  t.is(e.polls, 1);
  e.tickAt(T0 + 2 * SEC);
  t.is(e.polls, 2);
});

test('tick: the ended metric counts each reason', (t) => {
  const h = harness();
  const streams = [userPrincipal(), userPrincipal(), keyPrincipal()].map((p) => new FakeStream({ principal: p, ws: false }));
  const idle = new FakeStream({ principal: userPrincipal() });
  h.add(...streams, idle);
  for (const s of streams) h.auth.gone.add(s.principal!.credential);
  h.tickAt(T0 + WS_IDLE, 'all');
  t.deepEqual([...h.reg.ended].sort(), [
    ['idle', 1],
    ['key or account no longer valid', 1],
    ['session ended', 2],
  ]);
  t.is(h.reg.size, 0);
});

// ── configChanged ──

test('configChanged: a stream whose route is now deny is ended with 1008', (t) => {
  const h = harness();
  const ws = new FakeStream({ principal: userPrincipal() });
  const resp = new FakeStream({ principal: userPrincipal(), ws: false, key: '/ws/chat' });
  const elsewhere = new FakeStream({ principal: userPrincipal(), ws: false, key: '/events' });
  h.add(ws, resp, elsewhere);
  h.cfg = config(routesWith('{ path: /ws/*,     auth: required, principals: [user, service_account], idle_timeout: 1m }', '{ path: /ws/*, auth: deny }'), 2);
  h.reg.configChanged();
  t.deepEqual(ws.revoked, [REVOKED]);
  t.deepEqual(resp.revoked, [REVOKED]);
  t.deepEqual(elsewhere.revoked, []);
  t.is(h.audits.length, 2);
  t.true(h.audits.every((a) => a[1] === 'route denied'));
  t.true(h.audits.some((a) => a[0] === ws) && h.audits.some((a) => a[0] === resp), 'each audited once');
  t.is(h.reg.ended.get('route denied'), 2);
});

test('configChanged: websocket: false ends the route\'s WebSockets, not its streamed responses', (t) => {
  const h = harness();
  const ws = new FakeStream({ principal: userPrincipal() });
  const resp = new FakeStream({ principal: userPrincipal(), ws: false, key: '/ws/chat' });
  h.add(ws, resp);
  h.cfg = config(routesWith('idle_timeout: 1m', 'idle_timeout: 1m, websocket: false'), 2);
  h.reg.configChanged();
  t.deepEqual(ws.revoked, [REVOKED]);
  t.deepEqual(h.audits, [[ws, 'websockets disabled on the route']]);
  t.deepEqual(resp.revoked, []);
  t.is(h.reg.size, 1);
});

test('configChanged: a route that now requires a role ends the streams of principals without it, keeps the others', (t) => {
  const h = harness();
  const admin = new FakeStream({ principal: userPrincipal({ roles: ['admin'] }) });
  const viewer = new FakeStream({ principal: userPrincipal({ roles: ['viewer'] }) });
  const bot = new FakeStream({ principal: keyPrincipal({ roles: ['deployer'] }) });
  h.add(admin, viewer, bot);
  h.cfg = config(routesWith('principals: [user, service_account], idle_timeout: 1m', 'principals: [user, service_account], idle_timeout: 1m, roles: [admin]'), 2);
  h.reg.configChanged();
  t.deepEqual(admin.revoked, []);
  t.deepEqual(viewer.revoked, [REVOKED]);
  t.deepEqual(bot.revoked, [REVOKED]);
  t.deepEqual(h.audits.map((a) => a[1]), ['no longer allowed on the route', 'no longer allowed on the route']);
  t.deepEqual(h.auth.rechecked().sort(), [admin, viewer, bot].map((s) => s.principal!.credential).sort(), 'judged on the principal read now');
});

test('tick: a role taken from the user in the store ends the stream on the next re-check', (t) => {
  const h = harness(config(routesWith('idle_timeout: 1m', 'idle_timeout: 1m, roles: [admin]'), 1));
  const p = userPrincipal({ roles: ['admin'] });
  const s = new FakeStream({ principal: p });
  h.add(s);
  // The store now has the user without the role (a user change in the feed).
  h.auth.fresh.set(p.credential, new Principal(p.credential, p.session, { ...p.user!, roles: [] }, null, null));
  h.tickAt(T0 + SEC, new Set([`user:${p.user!.id}`]));
  t.deepEqual(s.revoked, [REVOKED]);
  t.deepEqual(h.audits.map((a) => a[1]), ['no longer allowed on the route']);
});

test('configChanged: a route narrowed to service accounts ends users\' streams', (t) => {
  const h = harness();
  const user = new FakeStream({ principal: userPrincipal() });
  const bot = new FakeStream({ principal: keyPrincipal() });
  h.add(user, bot);
  h.cfg = config(routesWith('principals: [user, service_account], idle_timeout', 'principals: [service_account], idle_timeout'), 2);
  h.reg.configChanged();
  t.deepEqual(user.revoked, [REVOKED]);
  t.deepEqual(bot.revoked, []);
});

test('configChanged: the project removed ends every stream of it; another project\'s streams stay', (t) => {
  const h = harness();
  const ws = new FakeStream({ principal: userPrincipal() });
  const anon = new FakeStream({ principal: null, key: '/public/ws' });
  const other = new FakeStream({ principal: userPrincipal(), project: 'other', ws: false, key: '/anything' });
  h.add(ws, anon, other);
  h.cfg = config(ROUTES_V1, 2, false);
  h.reg.configChanged();
  t.deepEqual(ws.revoked, [REVOKED]);
  t.deepEqual(anon.revoked, [REVOKED], 'a public stream of the removed project too');
  t.deepEqual(other.revoked, []);
  t.deepEqual(h.audits.map((a) => a[1]), ['project removed', 'project removed']);
  t.is(h.reg.ended.get('project removed'), 2);
  t.is(h.reg.size, 1);
});

test('configChanged: a stream of another project is judged by its own project\'s rules, untouched by this one\'s change', (t) => {
  const h = harness();
  const p = userPrincipal();
  const other = new FakeStream({ principal: p, project: 'other', ws: false, key: '/ws/chat' });
  h.add(other);
  // demo's /ws/* becomes deny; `other` has no such rule (its default: required).
  h.cfg = config(routesWith('{ path: /ws/*,     auth: required, principals: [user, service_account], idle_timeout: 1m }', '{ path: /ws/*, auth: deny }'), 2);
  h.reg.configChanged();
  t.deepEqual(other.revoked, []);
  t.deepEqual(h.auth.calls.map((c) => c.projectId), ['other'], 're-checked for its own project');
});

test('configChanged: a public route\'s streams survive (with or without a principal) and are never re-checked against the store', (t) => {
  const h = harness();
  const anon = new FakeStream({ principal: null, key: '/public/ws' });
  const signedIn = new FakeStream({ principal: userPrincipal(), key: '/public/ws' });
  h.add(anon, signedIn);
  h.cfg = config(ROUTES_V1, 2);
  h.reg.configChanged();
  t.deepEqual(anon.revoked, []);
  t.deepEqual(signedIn.revoked, []);
  t.deepEqual(h.auth.calls, []);
  t.is(anon.liveDeadline, Infinity);
  t.is(signedIn.liveDeadline, Infinity, 'nothing on a public route expires');
  // Even far past the session's lifetimes (messages keep the sockets out of idle_timeout).
  anon.lastMessageAt = signedIn.lastMessageAt = T0 + 1000 * HOUR;
  h.tickAt(T0 + 1000 * HOUR);
  t.deepEqual([anon.revoked, signedIn.revoked], [[], []]);
});

test('configChanged: a public route made required ends its streams that have no principal', (t) => {
  const h = harness();
  const anon = new FakeStream({ principal: null, key: '/public/ws' });
  h.add(anon);
  h.cfg = config(routesWith('{ path: /public/*, auth: public }', '{ path: /public/*, auth: required }'), 2);
  h.reg.configChanged();
  t.deepEqual(anon.revoked, [REVOKED]);
  t.deepEqual(h.audits, [[anon, 'route now requires sign-in']]);
});

test('configChanged: an unchanged config ends nothing; no config at all does nothing', (t) => {
  const h = harness();
  const streams = [new FakeStream({ principal: userPrincipal() }), new FakeStream({ principal: keyPrincipal(), ws: false }), new FakeStream({ principal: null, key: '/public/x' })];
  h.add(...streams);
  h.cfg = config(ROUTES_V1, 2);
  h.reg.configChanged();
  t.deepEqual(streams.map((s) => s.revoked), [[], [], []]);
  t.is(h.auth.calls.length, 2, 'the two with a principal were re-checked');
  h.cfg = null;
  h.reg.configChanged();
  t.is(h.auth.calls.length, 2);
  t.is(h.reg.size, 3);
});

// ── feedPoll ──

class FakeFeed implements ChangeSource {
  readonly asked: number[] = [];
  readonly answers: { seq: number; changed: Set<string> | 'gap' }[] = [];
  constructor(private readonly lastSeq: number) {}
  last(): number {
    return this.lastSeq;
  }
  since(after: number): { seq: number; changed: Set<string> | 'gap' } {
    this.asked.push(after);
    const a = this.answers.shift();
    if (a === undefined) throw new Error('unexpected read');
    return a;
  }
}

test('feedPoll: starts at the feed\'s last entry, so only changes after it are reported', (t) => {
  const feed = new FakeFeed(42);
  const poll = feedPoll(feed);
  t.deepEqual(feed.asked, [], 'nothing read until polled');
  feed.answers.push({ seq: 42, changed: new Set() });
  poll();
  t.deepEqual(feed.asked, [42]);
});

test('feedPoll: no change → null; a change → the set of what changed; the position moves on each time', (t) => {
  const feed = new FakeFeed(7);
  const poll = feedPoll(feed);
  feed.answers.push({ seq: 7, changed: new Set() }, { seq: 9, changed: new Set(['session:th_1', 'user:usr_2']) }, { seq: 9, changed: new Set() }, { seq: 10, changed: new Set(['key:k']) });
  t.is(poll(), null);
  const changed = poll();
  t.true(changed instanceof Set);
  t.deepEqual([...(changed as ReadonlySet<string>)].sort(), ['session:th_1', 'user:usr_2']);
  t.is(poll(), null);
  t.deepEqual([...(poll() as ReadonlySet<string>)], ['key:k']);
  t.deepEqual(feed.asked, [7, 7, 9, 9]);
});

test('feedPoll: a gap (entries pruned before they were read) → \'all\', and reading goes on from the new position', (t) => {
  const feed = new FakeFeed(3);
  const poll = feedPoll(feed);
  feed.answers.push({ seq: 5000, changed: 'gap' }, { seq: 5000, changed: new Set() });
  t.is(poll(), 'all');
  t.is(poll(), null);
  t.deepEqual(feed.asked, [3, 5000]);
});

// ── step-up ──

/** The same session, its last TOTP use at `at` (what the store holds after a step-up). */
function withOtpAt(p: Principal, at: number): Principal {
  return new Principal(p.credential, { ...p.session!, factorTimes: { otp: at } }, p.user, null, null);
}

test('tick: a route\'s step_up max_age ends the stream when the factor\'s use grows older than it (1008, audited); a fresh step-up seen at the re-check keeps it', (t) => {
  const h = harness(config(routesWith('- { path: /ws/*,     auth: required, principals: [user, service_account], idle_timeout: 1m }', '- { path: /ws/*,     auth: required, principals: [user], step_up: { max_age: 10m, factors: [totp] } }')));
  const used = withOtpAt(userPrincipal(), T0);
  const again = withOtpAt(userPrincipal(), T0);
  // Streamed responses on the route (a WebSocket's idle_timeout would end b first at 19 min).
  const a = new FakeStream({ principal: used, ws: false, key: '/ws/feed' });
  const b = new FakeStream({ principal: again, ws: false, key: '/ws/feed' });
  h.add(a, b);
  h.tickAt(T0 + 10 * MIN - 1);
  t.deepEqual(h.auth.calls, [], 'the max_age end is a comparison, not a store read');
  // b's user steps up again (on another tab): the store now has a later TOTP use for its session.
  h.auth.fresh.set(again.credential, withOtpAt(again, T0 + 9 * MIN));
  h.tickAt(T0 + 10 * MIN + 1);
  t.deepEqual(a.revoked, [REVOKED]);
  t.deepEqual(h.audits.map(([s, why]) => [s.liveRequestId, why]), [[a.liveRequestId, 'step-up no longer fresh']]);
  t.deepEqual(b.revoked, [], 'a fresh step-up read at the re-check keeps the stream');
  h.tickAt(T0 + 19 * MIN + 1);
  t.deepEqual(b.revoked, [REVOKED], 'until that one is too old');
});

test('configChanged: a step_up rule added to the route ends the streams of sessions without a fresh factor, keeps the others', (t) => {
  const h = harness();
  const none = userPrincipal();
  const fresh = withOtpAt(userPrincipal(), T0);
  const a = new FakeStream({ principal: none });
  const b = new FakeStream({ principal: fresh });
  h.add(a, b);
  h.cfg = config(routesWith('principals: [user, service_account], idle_timeout: 1m }', 'principals: [user], idle_timeout: 1m, step_up: { max_age: 10m, factors: [totp] } }'), 2);
  h.reg.configChanged();
  t.deepEqual(a.revoked, [REVOKED]);
  t.deepEqual(b.revoked, []);
});
