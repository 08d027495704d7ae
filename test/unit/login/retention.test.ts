/**
 * Retention sweeps on a real LMDB store (src/login/retention.ts): what is
 * dead is deleted, what a request could still use is kept, and the sweep never
 * undoes a concurrent write.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore, type Store, type SessionRecord, type ThrottleRecord } from '../../../src/store/index.js';
import { parseConfigYaml, compileConfig, type CompiledConfig } from '../../../src/config/index.js';
import { sweepExpired, sessionExpired, longestThrottleWindow, DEFAULT_HISTORY_MS, ORPHAN_SESSION_MS, OUTBOX_MS } from '../../../src/login/retention.js';
import { CONSOLE_PROJECT, CONSOLE_SESSION_ABSOLUTE_MS, CONSOLE_SESSION_IDLE_MS } from '../../../src/control/index.js';

const H = 3600_000;
const YAML = `
projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    session: { absolute: 24h, idle: 1h }
    login:
      throttle: { account: { window: 2h } }
  - id: short
    hosts: [short.localhost]
    upstream: demo
    session: { absolute: 2h, idle: 10m }
`;

function config(): CompiledConfig {
  const v = parseConfigYaml(YAML);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return compileConfig(v.config, 1);
}

async function env(t: ExecutionContext): Promise<Store> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-retention-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

let n = 0;
function session(projectId: string, createdAt: number, lastSeenAt: number, userId = 'u1'): SessionRecord {
  return { id: `s${n++}`, principalType: 'user', userId, projectId, createdAt, lastSeenAt, authTime: createdAt, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null };
}

test('sessionExpired: project lifetimes, the Console\'s fixed ones, and orphans of a removed project', (t) => {
  const cfg = config();
  const now = 1_000 * H;
  t.false(sessionExpired(cfg, session('demo', now - 23 * H, now - 59 * 60_000), now));
  t.true(sessionExpired(cfg, session('demo', now - 24 * H, now - 60_000), now), 'absolute');
  t.true(sessionExpired(cfg, session('demo', now - 2 * H, now - H), now), 'idle');
  t.true(sessionExpired(cfg, session('short', now - 30 * 60_000, now - 10 * 60_000), now), 'the project\'s own idle');
  t.false(sessionExpired(cfg, session(CONSOLE_PROJECT, now - CONSOLE_SESSION_ABSOLUTE_MS + 1, now - CONSOLE_SESSION_IDLE_MS + 1), now));
  t.true(sessionExpired(cfg, session(CONSOLE_PROJECT, now - CONSOLE_SESSION_ABSOLUTE_MS, now), now));
  // A project the config no longer has: kept for a month after last use, even past every configured lifetime.
  t.false(sessionExpired(cfg, session('gone', now - 10 * 24 * H, now - ORPHAN_SESSION_MS + 1), now));
  t.true(sessionExpired(cfg, session('gone', now - 40 * 24 * H, now - ORPHAN_SESSION_MS), now));
  // No config loaded yet: only orphan rules apply, so nothing recent is deleted.
  t.false(sessionExpired(null, session('demo', now - 30 * 24 * H + 1, now - 24 * H), now));
});

test('longestThrottleWindow: the longest configured window, never below the defaults, 24 h with no config', (t) => {
  t.is(longestThrottleWindow(config()), 2 * H);
  t.is(longestThrottleWindow(null), 24 * H);
  const v = parseConfigYaml('projects:\n  - { id: a, hosts: [a.localhost], upstream: a, login: { throttle: { account: { window: 1m }, ip: { window: 1m } } } }\n');
  if (!v.ok) return t.fail(JSON.stringify(v.problems));
  t.is(longestThrottleWindow(compileConfig(v.config, 1)), 15 * 60_000, 'the Console login keeps its default window');
});

test('sweepExpired deletes dead sessions with their per-user index, and keeps live ones', async (t) => {
  const store = await env(t);
  const cfg = config();
  const now = Date.now();
  const live = session('demo', now - H, now - 60_000, 'alice');
  const idle = session('demo', now - 3 * H, now - 2 * H, 'alice');
  const old = session('short', now - 3 * H, now - 60_000, 'bob');
  const console = session(CONSOLE_PROJECT, now - H, now - 60_000, 'owner');
  await store.sessions.create('h-live', live);
  await store.sessions.create('h-idle', idle);
  await store.sessions.create('h-old', old);
  await store.sessions.create('h-console', console);
  const r = await sweepExpired(store, cfg, now);
  t.is(r.sessions, 2);
  t.truthy(store.sessions.get('h-live'));
  t.truthy(store.sessions.get('h-console'));
  t.is(store.sessions.get('h-idle'), undefined);
  t.is(store.sessions.get('h-old'), undefined);
  t.deepEqual(store.sessions.listForUser('alice').map((x) => x.tokenHash), ['h-live']);
  t.deepEqual(store.sessions.listForUser('bob'), []);
  t.is(store.sessions.findById('alice', idle.id), undefined, 'the index entry went with the session');
  t.is((await sweepExpired(store, cfg, now)).sessions, 0, 'a second pass finds nothing');
});

test('sweepExpired re-checks each record: a session refreshed after the scan saw it is kept', async (t) => {
  const store = await env(t);
  const now = Date.now();
  await store.sessions.create('h', session('demo', now - 2 * H, now - 2 * H));
  // The predicate runs once in the scan and again in the delete transaction; refresh in between.
  let calls = 0;
  const deleted = await store.sessions.sweep((s) => {
    calls++;
    if (calls === 1) void store.sessions.refresh('h', { lastSeenAt: now });
    return now >= s.lastSeenAt + H;
  });
  t.true(calls >= 2);
  t.is(deleted, 0);
  t.is(store.sessions.get('h')!.lastSeenAt, now);
});

test('sweepExpired handles more records than one batch', async (t) => {
  const store = await env(t);
  const now = Date.now();
  for (let i = 0; i < 1_234; i++) await store.sessions.create(`dead-${i}`, session('demo', now - 30 * H, now - 30 * H, `u${i % 7}`));
  for (let i = 0; i < 10; i++) await store.sessions.create(`live-${i}`, session('demo', now - H, now));
  const r = await sweepExpired(store, config(), now);
  t.is(r.sessions, 1_234);
  t.is(store.sessions.count(), 10);
});

test('throttle counters: deleted only when the next attempt would start over anyway', async (t) => {
  const store = await env(t);
  const cfg = config(); // longest window 2 h
  const now = Date.now();
  const rec = (r: Partial<ThrottleRecord>): ThrottleRecord => ({ failures: 3, firstAt: now - 3 * H, lastAt: now - 3 * H, blockedUntil: 0, locked: false, ...r });
  const cases: Array<[string, ThrottleRecord, boolean]> = [
    ['acct:stale', rec({}), true],
    ['acct:recent', rec({ lastAt: now - H }), false],
    ['acct:delayed', rec({ lastAt: now - 3 * H, blockedUntil: now + 1_000 }), false],
    ['acct:locked', rec({ lastAt: now - 60_000, blockedUntil: now + 60_000, locked: true }), false],
    ['acct:lock-lifted', rec({ lastAt: now - 60_000, blockedUntil: now - 1, locked: true }), true],
    ['ip:stale', rec({ lastAt: now - 2 * H - 1 }), true],
  ];
  for (const [k, r] of cases) await store.throttle.update(k, () => r);
  const r = await sweepExpired(store, cfg, now);
  t.is(r.throttle, cases.filter((c) => c[2]).length);
  for (const [k, , gone] of cases) t.is(store.throttle.get(k) === undefined, gone, k);
});

test('login history older than the retention is deleted; newer events stay, in order', async (t) => {
  const store = await env(t);
  const now = Date.now();
  const ev = (at: number, email: string) => ({ at, type: 'login_failure' as const, reason: 'unknown_user', userId: null, directory: 'demo', email, ip: '127.0.0.1', userAgent: 'test' });
  await store.loginHistory.add(ev(now - DEFAULT_HISTORY_MS - 1, 'a@example.com'));
  await store.loginHistory.add(ev(now - DEFAULT_HISTORY_MS + 60_000, 'a@example.com'));
  await store.loginHistory.add(ev(now - 60_000, 'a@example.com'));
  await store.loginHistory.add(ev(now - DEFAULT_HISTORY_MS - H, 'random-1@example.com'));
  const r = await sweepExpired(store, config(), now);
  t.is(r.history, 2);
  t.deepEqual(store.loginHistory.list('demo', 'a@example.com').map((e) => e.at), [now - DEFAULT_HISTORY_MS + 60_000, now - 60_000]);
  t.deepEqual(store.loginHistory.list('demo', 'random-1@example.com'), []);
  t.is((await sweepExpired(store, config(), now, { historyMs: 30_000 })).history, 2, 'a shorter retention when asked');
});

test('expired emailed tokens are deleted; live ones stay', async (t) => {
  const store = await env(t);
  const now = Date.now();
  await store.emailTokens.add('dead', { purpose: 'reset', directory: 'demo', email: 'a@example.com', userId: 'u1', projectId: 'demo', rd: '/', createdAt: now - H, expiresAt: now - 1 });
  await store.emailTokens.add('live', { purpose: 'reset', directory: 'demo', email: 'a@example.com', userId: 'u1', projectId: 'demo', rd: '/', createdAt: now, expiresAt: now + H });
  t.is((await sweepExpired(store, config(), now)).tokens, 1);
  t.is(store.emailTokens.peek('dead'), undefined);
  t.truthy(store.emailTokens.peek('live'));
});

test('development outbox mail older than a day is deleted (its links are dead by then); newer mail stays', async (t) => {
  const store = await env(t);
  const now = Date.now();
  const mail = (id: string, at: number) => ({ id, at, projectId: 'demo', to: 'a@example.com', subject: 'Reset', text: `https://localhost/_mezu/reset?token=${id}` });
  await store.outbox.add(mail('old', now - OUTBOX_MS - 1));
  await store.outbox.add(mail('new', now - OUTBOX_MS + 60_000));
  t.is((await sweepExpired(store, config(), now)).outbox, 1);
  t.deepEqual(store.outbox.list(null).map((m) => m.id), ['new']);
});
