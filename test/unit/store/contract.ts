/**
 * The store's contract: what every caller relies on, written once and run
 * against each implementation of `Store` (`storeContract(name, open)`). LMDB
 * runs it today (lmdb.test.ts); a replicated store must pass the same suite.
 * Time comes from a manual clock handed to `open`, so expiries, rotations and
 * `updatedAt` stamps are tested without sleeping.
 *
 * It covers, per record family: compare-and-swap writes (config versions,
 * user status, rotation), uniqueness (a directory's emails, one tunnel CA
 * per project, one secret per name), single use (emailed tokens), indexes
 * kept in step with their records (email → user, user → sessions), paging
 * and ordering, the request path's read seeing every write, the batched
 * sweep deleting exactly what is dead across many pages, and what a second
 * handle on the same data (another process) sees.
 */
import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../../src/runtime/index.js';
import {
  SWEEP_BATCH,
  type ApiKeyRecord,
  type AuditRecord,
  type EmailTokenRecord,
  type LoginEventRecord,
  type ServiceAccountRecord,
  type SessionRecord,
  type Store,
  type UserRecord,
} from '../../../src/store/index.js';

/** A fresh, empty store on `clock`; `peer()` opens a second handle on the same data. */
export interface Opened {
  store: Store;
  peer(): Store;
}

export const T0 = 1_700_000_000_000;
const H = 3_600_000;

const code = (e: unknown): unknown => (e as { code?: unknown }).code;

export function user(id: string, over: Partial<UserRecord> = {}): UserRecord {
  return { id, directory: 'demo', email: `${id}@example.com`, name: id, displayName: id, status: 'active', roles: [], permissions: [], version: 1, createdAt: T0, updatedAt: T0, lastLoginAt: null, ...over };
}

function session(id: string, userId: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return { id, principalType: 'user', userId, projectId: 'demo', createdAt: T0, lastSeenAt: T0, authTime: T0, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null, ...over };
}

function account(id: string, over: Partial<ServiceAccountRecord> = {}): ServiceAccountRecord {
  return { id, projectId: 'demo', name: id, status: 'active', roles: [], permissions: [], version: 1, createdAt: T0, updatedAt: T0, ...over };
}

function key(id: string, serviceAccountId: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return { id, serviceAccountId, projectId: 'demo', secretHash: `h-${id}`, createdAt: T0, expiresAt: null, revokedAt: null, lastUsedAt: null, assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null, ...over };
}

function event(email: string, at: number, over: Partial<LoginEventRecord> = {}): LoginEventRecord {
  return { at, type: 'login_failure', reason: 'bad_password', userId: null, directory: 'demo', email, ip: '192.0.2.1', userAgent: 'test', ...over };
}

function token(email: string, over: Partial<EmailTokenRecord> = {}): EmailTokenRecord {
  return { purpose: 'reset', projectId: 'demo', directory: 'demo', email, userId: null, rd: '/', createdAt: T0, expiresAt: T0 + H, ...over };
}

function audit(id: string, at: number, action: string): AuditRecord {
  return { id, at, actor: { type: 'cli', id: 'op', name: 'op' }, action, target: { type: 'user', id: 'u' }, projectId: 'demo', details: {}, ip: '' };
}

export function storeContract(name: string, open: (t: ExecutionContext, clock: ManualClock) => Promise<Opened>): void {
  const run = (title: string, fn: (t: ExecutionContext, s: Store, clock: ManualClock, o: Opened) => Promise<void> | void) =>
    test(`${name}: ${title}`, async (t) => {
      const clock = new ManualClock(T0);
      const o = await open(t, clock);
      await fn(t, o.store, clock, o);
    });

  run('config: versions count up from 1; applying against a stale version is refused and changes nothing', async (t, s, clock) => {
    t.is(s.config.current(), undefined);
    t.is(s.config.currentVersion(), 0);
    t.is(await s.config.apply('a: 1', { a: 1 }, 0), 1);
    clock.advance(5);
    t.is(await s.config.apply('a: 2', { a: 2 }, null), 2, 'null: no expectation');
    const err = await t.throwsAsync(s.config.apply('a: 3', { a: 3 }, 1));
    t.is(code(err), 'MEZU_CONFIG_STALE');
    t.deepEqual(s.config.current(), { version: 2, appliedAt: T0 + 5, source: 'a: 2', config: { a: 2 } });
  });

  run('users: an email is unique within a directory, any case; the index follows an email change', async (t, s, clock) => {
    await s.users.create(user('u1', { email: 'Ada@Example.com' }));
    t.is(code(await t.throwsAsync(s.users.create(user('u2', { email: 'ada@example.COM' })))), 'MEZU_USER_EXISTS');
    await s.users.create(user('u3', { email: 'ada@example.com', directory: 'org:acme' }));
    t.is(s.users.getByEmail('demo', 'ADA@example.com')?.id, 'u1');
    t.is(s.users.getByEmail('org:acme', 'ada@example.com')?.id, 'u3');
    await s.users.create(user('u4', { email: 'bob@example.com' }));
    clock.advance(1_000);
    const moved = await s.users.update('u1', { email: 'ada.l@example.com' });
    t.is(moved.version, 2, 'every change bumps the version');
    t.is(moved.updatedAt, T0 + 1_000);
    t.is(s.users.getByEmail('demo', 'ada@example.com'), undefined, 'the old address no longer finds her');
    t.is(s.users.getByEmail('demo', 'ada.l@example.com')?.id, 'u1');
    t.is(code(await t.throwsAsync(s.users.update('u1', { email: 'BOB@example.com' }))), 'MEZU_USER_EXISTS');
    t.is(s.users.get('u1')!.email, 'ada.l@example.com', 'a refused change writes nothing');
    t.is(code(await t.throwsAsync(s.users.update('nobody', { name: 'x' }))), 'MEZU_USER_NOT_FOUND');
  });

  run('users: a status change guarded by `expect` is a compare-and-swap', async (t, s) => {
    await s.users.create(user('u1'));
    t.is((await s.users.update('u1', { status: 'suspended' }, (cur) => cur.status === 'active')).status, 'suspended');
    t.is(code(await t.throwsAsync(s.users.update('u1', { status: 'suspended' }, (cur) => cur.status === 'active'))), 'MEZU_STATUS_TRANSITION');
    t.is(s.users.get('u1')!.version, 2, 'the refused change did not bump the version');
    t.is((await s.users.setStatus('u1', 'deactivated')).status, 'deactivated');
  });

  run('users: pages of a directory in email order, with a cursor and a filter; directories with their counts', async (t, s) => {
    for (const e of ['dora', 'ada', 'cleo', 'bob', 'eve']) await s.users.create(user(`u-${e}`, { email: `${e}@example.com`, status: e === 'cleo' ? 'suspended' : 'active' }));
    await s.users.create(user('x1', { directory: 'other', email: 'zed@example.com' }));
    const p1 = s.users.page('demo', null, 2, () => true);
    t.deepEqual(p1.users.map((u) => u.email), ['ada@example.com', 'bob@example.com']);
    t.true(p1.more);
    const p2 = s.users.page('demo', p1.users[1]!.email, 2, (u) => u.status === 'active');
    t.deepEqual(p2.users.map((u) => u.email), ['dora@example.com', 'eve@example.com'], 'the filter skips cleo');
    t.false(p2.more);
    t.deepEqual([...s.users.directories()].sort(), [['demo', 5], ['other', 1]]);
    t.is(s.users.list('other').length, 1);
    t.is(s.users.list(null).length, 6);
  });

  run('the request path\'s read sees every write at once, and hands out frozen records', async (t, s) => {
    await s.users.create(user('u1', { roles: ['viewer'] }));
    const a = s.users.getForRequest('u1')!;
    t.true(Object.isFrozen(a) && Object.isFrozen(a.roles));
    t.is(s.users.getForRequest('u1'), a, 'unchanged bytes: the same object');
    await s.users.update('u1', { roles: ['admin'] });
    t.deepEqual(s.users.getForRequest('u1')!.roles, ['admin']);
    await s.sessions.create('th1', session('s1', 'u1'));
    t.is(s.sessions.getForRequest('th1')!.id, 's1');
    await s.sessions.revoke('th1');
    t.is(s.sessions.getForRequest('th1'), undefined, 'a revoked session is gone for the next request');
    await s.serviceAccounts.create(account('sa1'));
    await s.serviceAccounts.addKey(key('k1', 'sa1'));
    t.is(s.serviceAccounts.getKeyForRequest('k1')!.revokedAt, null);
    await s.serviceAccounts.revokeKey('k1');
    t.is(s.serviceAccounts.getKeyForRequest('k1')!.revokedAt, T0);
    await s.serviceAccounts.setStatus('sa1', 'disabled');
    t.is(s.serviceAccounts.getForRequest('sa1')!.status, 'disabled');
  });

  run('sessions: keyed by token hash, indexed by user; revocations and refreshes never resurrect one', async (t, s) => {
    await s.sessions.create('th1', session('s1', 'u1'));
    await s.sessions.create('th2', session('s2', 'u1'));
    await s.sessions.create('th3', session('s3', 'u2'));
    t.is(s.sessions.count(), 3);
    t.is(s.sessions.findById('u1', 's2'), 'th2');
    t.deepEqual(s.sessions.listForUser('u1').map((x) => x.tokenHash).sort(), ['th1', 'th2']);
    t.true(await s.sessions.refresh('th1', { lastSeenAt: T0 + 10 }));
    t.is(s.sessions.get('th1')!.lastSeenAt, T0 + 10);
    t.true(await s.sessions.revoke('th1'));
    t.false(await s.sessions.revoke('th1'), 'revoked once');
    t.false(await s.sessions.refresh('th1', { lastSeenAt: T0 + 20 }), 'a refresh after a revoke writes nothing');
    t.is(s.sessions.get('th1'), undefined);
    t.is(s.sessions.findById('u1', 's1'), undefined, 'the index entry went with it');
    t.is(await s.sessions.revokeAllForUser('u1'), 1);
    t.deepEqual(s.sessions.listForUser('u1'), []);
    t.is(s.sessions.count(), 1);
  });

  run('sessions: the sweep deletes exactly the expired ones across many pages, with their index entries', async (t, s) => {
    const n = SWEEP_BATCH * 2 + 37;
    for (let i = 0; i < n; i++) await s.sessions.create(`th${String(i).padStart(5, '0')}`, session(`s${i}`, `u${i % 7}`, { lastSeenAt: i % 3 === 0 ? T0 - H : T0 }));
    const dead = Math.ceil(n / 3);
    t.is(await s.sessions.sweep((x) => x.lastSeenAt < T0), dead);
    t.is(s.sessions.count(), n - dead);
    t.is(s.sessions.listForUser('u0').length + s.sessions.listForUser('u1').length + s.sessions.listForUser('u2').length + s.sessions.listForUser('u3').length + s.sessions.listForUser('u4').length + s.sessions.listForUser('u5').length + s.sessions.listForUser('u6').length, n - dead);
    t.is(await s.sessions.sweep((x) => x.lastSeenAt < T0), 0, 'a second sweep finds nothing');
  });

  run('service accounts: versions, listing oldest first, a missing one is named', async (t, s, clock) => {
    await s.serviceAccounts.create(account('sa2', { createdAt: T0 + 2 }));
    await s.serviceAccounts.create(account('sa1', { createdAt: T0 + 1 }));
    await s.serviceAccounts.create(account('sa9', { projectId: 'other' }));
    t.deepEqual(s.serviceAccounts.list('demo').map((a) => a.id), ['sa1', 'sa2']);
    t.is(s.serviceAccounts.list(null).length, 3);
    clock.advance(7);
    const u = await s.serviceAccounts.update('sa1', { permissions: ['users:read'] });
    t.deepEqual([u.version, u.updatedAt, u.permissions], [2, T0 + 7, ['users:read']]);
    t.is(code(await t.throwsAsync(s.serviceAccounts.update('nope', { name: 'x' }))), 'MEZU_SERVICE_ACCOUNT_NOT_FOUND');
  });

  run('keys: revoked once; rotation marks the old key replaced and ends it at the overlap, in one step; a dead key is not rotated', async (t, s, clock) => {
    await s.serviceAccounts.create(account('sa1'));
    await s.serviceAccounts.addKey(key('k2', 'sa1', { createdAt: T0 + 2 }));
    await s.serviceAccounts.addKey(key('k1', 'sa1', { createdAt: T0 + 1, expiresAt: T0 + 10 * H }));
    t.deepEqual(s.serviceAccounts.listKeys('sa1').map((k) => k.id), ['k1', 'k2']);
    t.true(await s.serviceAccounts.rotateKey('k1', key('k3', 'sa1'), T0 + H));
    t.like(s.serviceAccounts.getKey('k1'), { replacedBy: 'k3', expiresAt: T0 + H });
    t.truthy(s.serviceAccounts.getKey('k3'));
    t.false(await s.serviceAccounts.rotateKey('k1', key('k4', 'sa1'), T0 + H), 'already replaced');
    t.is(s.serviceAccounts.getKey('k4'), undefined);
    // An overlap past the key's own expiry keeps the earlier end.
    await s.serviceAccounts.addKey(key('k5', 'sa1', { expiresAt: T0 + 30 * 60_000 }));
    t.true(await s.serviceAccounts.rotateKey('k5', key('k6', 'sa1'), T0 + H));
    t.is(s.serviceAccounts.getKey('k5')!.expiresAt, T0 + 30 * 60_000);
    // Expired by the clock, or revoked: not rotated.
    await s.serviceAccounts.addKey(key('k7', 'sa1', { expiresAt: T0 + 1_000 }));
    clock.advance(1_000);
    t.false(await s.serviceAccounts.rotateKey('k7', key('k8', 'sa1'), T0 + H));
    clock.advance(1);
    t.true(await s.serviceAccounts.revokeKey('k2'));
    t.is(s.serviceAccounts.getKey('k2')!.revokedAt, T0 + 1_001);
    t.false(await s.serviceAccounts.revokeKey('k2'), 'revoked once');
    t.false(await s.serviceAccounts.rotateKey('k2', key('k9', 'sa1'), T0 + H));
    await s.serviceAccounts.refreshKey('missing', { lastUsedAt: 1 });
    t.is(s.serviceAccounts.getKey('missing'), undefined, 'refreshing a missing key creates nothing');
  });

  run('signing keys: the newest unretired one signs; adding with retireOthers retires the rest at the clock\'s time', async (t, s, clock) => {
    const k = (kid: string, createdAt: number) => ({ kid, privateKeyPem: `-----PEM ${kid}-----`, publicX: `x-${kid}`, createdAt, retiredAt: null });
    await s.signingKeys.add(k('a', T0), false);
    await s.signingKeys.add(k('b', T0 + 1), false);
    t.is(s.signingKeys.active()!.kid, 'b');
    clock.advance(50);
    await s.signingKeys.add(k('c', T0 + 2), true);
    t.deepEqual(s.signingKeys.all().map((x) => [x.kid, x.retiredAt, x.privateKeyPem]), [['a', T0 + 50, '-----PEM a-----'], ['b', T0 + 50, '-----PEM b-----'], ['c', null, '-----PEM c-----']]);
    await s.signingKeys.remove('a');
    t.deepEqual(s.signingKeys.all().map((x) => x.kid), ['b', 'c']);
  });

  run('secrets: one value per name, the same for every caller, even when created at once', async (t, s, _clock, o) => {
    const [a, b] = await Promise.all([s.secrets.getOrCreate('csrf'), s.secrets.getOrCreate('csrf')]);
    t.is(a.length, 32);
    t.true(a.equals(b));
    t.true((await o.peer().secrets.getOrCreate('csrf')).equals(a), 'another handle gets the same one');
    t.false((await s.secrets.getOrCreate('other')).equals(a));
  });

  run('credentials: a rehash replaces the hash only while it is still the one read', async (t, s, clock) => {
    await s.credentials.set('u1', 'h1');
    clock.advance(10);
    await s.credentials.set('u1', 'h2');
    t.like(s.credentials.get('u1'), { hash: 'h2', createdAt: T0, updatedAt: T0 + 10 });
    t.false(await s.credentials.replaceIf('u1', 'h1', 'h1-rehashed'), 'changed in between: not overwritten');
    t.true(await s.credentials.replaceIf('u1', 'h2', 'h2-rehashed'));
    t.is(s.credentials.get('u1')!.hash, 'h2-rehashed');
    t.false(await s.credentials.replaceIf('nobody', 'x', 'y'));
  });

  run('login history: an email\'s events oldest first, the newest `limit`, any case; the sweep drops the old ones only', async (t, s) => {
    for (let i = 0; i < 5; i++) await s.loginHistory.add(event(i % 2 === 0 ? 'Ada@example.com' : 'ada@example.com', T0 + i));
    await s.loginHistory.add(event('bob@example.com', T0));
    t.deepEqual(s.loginHistory.list('demo', 'ADA@example.com').map((e) => e.at), [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]);
    t.deepEqual(s.loginHistory.list('demo', 'ada@example.com', 2).map((e) => e.at), [T0 + 3, T0 + 4]);
    t.deepEqual(s.loginHistory.list('other', 'ada@example.com'), []);
    t.is(await s.loginHistory.sweep(T0 + 2), 3);
    t.deepEqual(s.loginHistory.list('demo', 'ada@example.com').map((e) => e.at), [T0 + 2, T0 + 3, T0 + 4]);
  });

  run('emailed tokens: used once, even by two at once; an expired one is deleted, not returned; a user\'s die together', async (t, s) => {
    await s.emailTokens.add('t1', token('ada@example.com'));
    t.is(s.emailTokens.peek('t1')!.email, 'ada@example.com', 'peek does not use it');
    const [a, b] = await Promise.all([s.emailTokens.consume('t1', T0), s.emailTokens.consume('t1', T0)]);
    t.is([a, b].filter((x) => x !== undefined).length, 1);
    await s.emailTokens.add('t2', token('ada@example.com'));
    t.is(await s.emailTokens.consume('t2', T0 + H), undefined, 'expired at its expiresAt');
    t.is(s.emailTokens.peek('t2'), undefined);
    await s.emailTokens.add('t3', token('old@example.com', { userId: 'u1' }));
    await s.emailTokens.add('t4', token('NEW@example.com', { purpose: 'signup' }));
    await s.emailTokens.add('t5', token('new@example.com', { directory: 'other' }));
    await s.emailTokens.add('t6', token('else@example.com'));
    t.is(await s.emailTokens.removeForUser('u1', 'demo', ['new@example.com']), 2);
    t.truthy(s.emailTokens.peek('t5'), 'same address in another directory stays');
    t.is(await s.emailTokens.sweep(T0 + H), 2);
  });

  run('throttle counters: read-modify-write in one step, null deletes; the sweep keeps any that still blocks', async (t, s) => {
    const bump = (cur: { failures: number } | undefined) => ({ failures: (cur?.failures ?? 0) + 1, firstAt: T0, lastAt: T0, blockedUntil: 0, locked: false });
    await Promise.all(Array.from({ length: 10 }, () => s.throttle.update('acct:a', bump)));
    t.is(s.throttle.get('acct:a')!.failures, 10, 'no lost update');
    t.is(await s.throttle.update('acct:a', () => null), null);
    t.is(s.throttle.get('acct:a'), undefined);
    await s.throttle.update('blocked', () => ({ failures: 9, firstAt: T0, lastAt: T0, blockedUntil: T0 + H, locked: true }));
    await s.throttle.update('stale', () => ({ failures: 1, firstAt: T0 - 2 * H, lastAt: T0 - 2 * H, blockedUntil: 0, locked: false }));
    await s.throttle.update('fresh', () => ({ failures: 1, firstAt: T0, lastAt: T0, blockedUntil: 0, locked: false }));
    t.is(await s.throttle.sweep(T0, H), 1);
    t.deepEqual([s.throttle.get('blocked') !== undefined, s.throttle.get('stale') !== undefined, s.throttle.get('fresh') !== undefined], [true, false, true]);
    await s.throttle.clear('fresh');
    t.is(s.throttle.get('fresh'), undefined);
  });

  run('outbox: the newest mails, oldest first, to one address in any case; the text reads back as sent', async (t, s) => {
    for (let i = 0; i < 4; i++) await s.outbox.add({ id: `m${i}`, at: T0 + i, projectId: 'demo', to: i === 1 ? 'Bob@example.com' : 'ada@example.com', subject: `s${i}`, text: `link ${i}` });
    t.deepEqual(s.outbox.list(null, 2).map((m) => m.id), ['m2', 'm3']);
    t.deepEqual(s.outbox.list('BOB@example.com').map((m) => [m.id, m.text]), [['m1', 'link 1']]);
    t.is(await s.outbox.sweep(T0 + 2), 2);
    t.deepEqual(s.outbox.list(null).map((m) => m.id), ['m2', 'm3']);
  });

  run('audit: newest first, a page at a time by cursor, filtered', async (t, s) => {
    for (let i = 0; i < 7; i++) await s.audit.add(audit(`a${i}`, T0 + i, i % 2 === 0 ? 'user.create' : 'key.revoke'));
    const p1 = s.audit.page(null, 3, () => true);
    t.deepEqual(p1.entries.map((e) => e.id), ['a6', 'a5', 'a4']);
    const p2 = s.audit.page(p1.next, 3, () => true);
    t.deepEqual(p2.entries.map((e) => e.id), ['a3', 'a2', 'a1']);
    const p3 = s.audit.page(p2.next, 3, () => true);
    t.deepEqual([p3.entries.map((e) => e.id), p3.next], [['a0'], null]);
    t.deepEqual(s.audit.page(null, 10, (r) => r.action === 'key.revoke').entries.map((e) => e.id), ['a5', 'a3', 'a1']);
  });

  run('tunnel CAs: one per project however many enrollments race; the key only through get', async (t, s) => {
    const ca = (k: string) => ({ projectId: 'demo', cert: `cert-${k}`, key: `key-${k}`, fingerprint256: `fp-${k}`, createdAt: T0 });
    const got = await Promise.all([s.tunnelCas.putIfAbsent(ca('a')), s.tunnelCas.putIfAbsent(ca('b')), s.tunnelCas.putIfAbsent(ca('c'))]);
    t.is(new Set(got.map((g) => g.cert)).size, 1, 'every racer gets the one stored');
    t.is(s.tunnelCas.get('demo')!.key, `key-${got[0]!.cert.slice(5)}`);
    t.deepEqual(s.tunnelCas.all(), [{ projectId: 'demo', cert: got[0]!.cert, fingerprint256: got[0]!.fingerprint256, createdAt: T0 }]);
  });

  run('Warpgates and tunnel reports: the most recently renewed first; a dead key refuses its Warpgates once; stale reports are pruned', async (t, s) => {
    const wg = (id: string, projectId: string, keyId: string, renewedAt: number) => ({ id, projectId, pool: 'p', serviceAccountId: 'sa', keyId, hostname: 'h', version: '1', enrolledAt: T0, renewedAt, certSerial: '01', certExpiresAt: T0 + H, refusedAt: null });
    await s.warpgates.put(wg('w1', 'demo', 'k1', T0 + 1));
    await s.warpgates.put(wg('w2', 'demo', 'k1', T0 + 3));
    await s.warpgates.put(wg('w3', 'other', 'k2', T0 + 2));
    t.deepEqual(s.warpgates.list('demo').map((w) => w.id), ['w2', 'w1']);
    t.deepEqual(s.warpgates.list(null).map((w) => w.id), ['w2', 'w3', 'w1']);
    t.is(await s.warpgates.refuseKey('k1', T0 + 9), 2);
    t.is(await s.warpgates.refuseKey('k1', T0 + 10), 0, 'already refused');
    t.is(s.warpgates.get('w1')!.refusedAt, T0 + 9);
    await s.tunnelStatus.put({ edgeId: 'e', worker: 0, pid: 1, updatedAt: T0, tunnels: [] });
    await s.tunnelStatus.put({ edgeId: 'e', worker: 1, pid: 2, updatedAt: T0 - H, tunnels: [] });
    await s.tunnelStatus.put({ edgeId: 'e', worker: 0, pid: 1, updatedAt: T0 + 1, tunnels: [] });
    t.is(s.tunnelStatus.all().length, 2, 'one report per edge worker');
    t.is(await s.tunnelStatus.prune(T0), 1);
    t.deepEqual(s.tunnelStatus.all().map((r) => r.worker), [0]);
  });

  run('nodes: the live ones by node id, one record per node; a stopping node removes only its own instance\'s record', async (t, s) => {
    await s.nodes.put({ node: 'b', endpoint: 'b:7443', edgeId: 'e1', updatedAt: T0 });
    await s.nodes.put({ node: 'a', endpoint: 'a:7443', edgeId: 'e2', updatedAt: T0 - 5_000 });
    await s.nodes.put({ node: 'c', endpoint: 'c:7443', edgeId: 'e3', updatedAt: T0 - 31_000 });
    t.deepEqual(s.nodes.live(T0).map((n) => n.endpoint), ['a:7443', 'b:7443'], 'c missed three refreshes');
    t.deepEqual(s.nodes.live(T0, 60_000).map((n) => n.node), ['a', 'b', 'c']);
    await s.nodes.put({ node: 'b', endpoint: 'b:7444', edgeId: 'e4', updatedAt: T0 + 1 });
    t.deepEqual(s.nodes.live(T0 + 1).map((n) => n.endpoint), ['a:7443', 'b:7444'], 'a restarted node replaces its record');
    t.false(await s.nodes.remove('b', 'e1'), 'the old instance does not remove its successor');
    t.true(await s.nodes.remove('b', 'e4'));
    t.deepEqual(s.nodes.live(T0 + 1).map((n) => n.node), ['a']);
  });

  run('a second handle on the same data sees every write from the next turn on', async (t, s, _clock, o) => {
    const other = o.peer();
    await s.users.create(user('u1'));
    await s.sessions.create('th1', session('s1', 'u1'));
    await new Promise((r) => setImmediate(r));
    t.is(other.users.getForRequest('u1')!.id, 'u1');
    t.is(other.sessions.getForRequest('th1')!.id, 's1');
    await other.sessions.revoke('th1');
    await s.users.setStatus('u1', 'suspended');
    await new Promise((r) => setImmediate(r));
    t.is(s.sessions.getForRequest('th1'), undefined, 'a revocation by the other is seen here');
    t.is(other.users.getForRequest('u1')!.status, 'suspended', 'and the other way round');
  });

  run('change feed: every change that can take access away is in it, in commit order, from either handle; pruning leaves a gap a reader sees', async (t, s, clock, o) => {
    const other = o.peer();
    const start = s.changes.last();
    t.deepEqual(s.changes.since(start), { seq: start, changed: new Set() }, 'nothing new: an empty read');
    await s.users.create(user('u1'));
    await s.sessions.create('th1', session('s1', 'u1'));
    await s.sessions.create('th2', session('s2', 'u1'));
    t.is(s.changes.last(), start, 'creations take nothing away: not in the feed');
    await s.sessions.revoke('th1');
    t.false(await s.sessions.revoke('th1'), 'a second revoke changes nothing');
    await s.users.setStatus('u1', 'suspended');
    await other.sessions.revokeAllForUser('u1');
    await s.serviceAccounts.create(account('sa1'));
    await s.serviceAccounts.addKey(key('k1', 'sa1'));
    await s.serviceAccounts.addKey(key('k2', 'sa1'));
    await s.serviceAccounts.revokeKey('k1');
    await other.serviceAccounts.rotateKey('k2', key('k3', 'sa1'), T0 + H);
    await s.serviceAccounts.setStatus('sa1', 'disabled');
    await new Promise((r) => setImmediate(r));
    const r = s.changes.since(start);
    t.is(r.seq, start + 6, 'one entry per change, numbered without holes');
    t.deepEqual(r.changed, new Set(['session:th1', 'user:u1', 'key:k1', 'key:k2', 'account:sa1']));
    t.deepEqual(other.changes.since(start + 5), { seq: start + 6, changed: new Set(['account:sa1']) }, 'the other handle reads the same feed');
    // Ten minutes on, retention prunes all but the newest entry: a reader left behind sees a gap.
    clock.advance(11 * 60_000);
    t.is(await s.changes.prune(clock.now()), 5);
    t.is(s.changes.oldest(), start + 6, 'the newest entry stays: it carries the numbering on');
    t.is(s.changes.since(start).changed, 'gap');
    t.is(s.changes.since(start).seq, start + 6, 'and is moved to the newest');
    t.deepEqual(s.changes.since(start + 6).changed, new Set(), 'a reader that kept up sees no gap');
    await s.sessions.revoke('th2');
    t.deepEqual(s.changes.since(start + 6), { seq: start + 6, changed: new Set() }, 'th2 went with revokeAllForUser: nothing revoked, nothing written');
  });
}
