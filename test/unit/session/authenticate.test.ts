/**
 * Who is calling (src/session/authenticate.ts): a session token or a
 * service-account key → the principal, or null (log in). Every call reads the
 * store, so expiry (with the injected clock), revocation, suspension and a
 * project mismatch are seen on the very next call. The assertion minted for
 * the principal is tested in ../identity/assertions.test.ts.
 */
import test from 'ava';
import { Authenticator, IDLE_REFRESH_INTERVAL_MS, newApiKey, newSessionToken, type Principal } from '../../../src/session/index.js';
import type { UserRecord } from '../../../src/store/index.js';
import { ABSOLUTE, HOUR, IDLE, MIN, PROJECT, T0, addKey, addServiceAccount, addSession, addUser, env, sleep, until, type Env } from './records.js';

/** The verdict as the old `{ kind }` result read: null → none (log in), a Principal → ok. */
type AuthResult = { kind: 'ok'; principal: Principal } | { kind: 'none' };
const result = (p: Principal | null): AuthResult => (p === null ? { kind: 'none' } : { kind: 'ok', principal: p });

function principal(t: import('ava').ExecutionContext, r: AuthResult): Principal {
  t.is(r.kind, 'ok');
  if (r.kind !== 'ok') throw new Error('expected ok');
  return r.principal;
}

const session = (e: Env, token: string, project = PROJECT, abs = ABSOLUTE, idle = IDLE) => result(e.auth.session(token, project, abs, idle));
const apiKey = (e: Env, text: string, project = PROJECT) => result(e.auth.apiKey(text, project));


// ── sessions ──

test('valid session → ok with the principal fields and the records it was built from', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['admin', 'viewer'], permissions: ['admin:write'] });
  const s = await addSession(e, u);
  const p = principal(t, session(e, s.token));
  t.is(p.type, 'user');
  t.is(p.id, u.id);
  t.is(p.email, u.email);
  t.is(p.name, u.name);
  t.deepEqual([...p.roles], ['admin', 'viewer']);
  t.deepEqual([...p.permissions], ['admin:write']);
  // What the assertion is minted from (src/identity/assertions.ts): the session and user records, keyed by the token hash.
  t.is(p.credential, s.th, 'the store key of the session, never the token itself');
  t.is(p.session?.id, s.rec.id);
  t.deepEqual(p.session?.amr, ['pwd']);
  t.is(p.user?.id, u.id);
  t.is(p.user?.version, u.version);
  t.is(p.key, null);
  t.is(p.account, null);
  t.false('assertion' in p, 'the principal carries no assertion: it is minted after authorization');
});

test('the display name wins over the name when set', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { displayName: 'Ada L.' });
  const s = await addSession(e, u);
  const p = principal(t, session(e, s.token));
  t.is(p.name, 'Ada L.');
});

test('unknown token → none; malformed token → none', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  t.is(session(e, newSessionToken()).kind, 'none');
  t.is(session(e, '').kind, 'none');
  t.is(session(e, 'short').kind, 'none');
  t.is(session(e, s.token + 'A').kind, 'none');
  t.is(session(e, s.token.slice(1)).kind, 'none');
  t.is(session(e, s.th).kind, 'none', 'the stored hash is not a credential');
  t.is(session(e, s.token).kind, 'ok');
});

test('token for another project → none', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  t.is(session(e, s.token, 'other').kind, 'none');
  t.is(session(e, s.token, 'Demo').kind, 'none');
  t.is(session(e, s.token, '').kind, 'none');
  t.is(session(e, s.token).kind, 'ok');
});

test('a session record whose principal type is not user → none', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u, { principalType: 'service_account' });
  t.is(session(e, s.token).kind, 'none');
});

test('a session whose user does not exist → none', async (t) => {
  const e = await env(t);
  const ghost = { id: 'usr_ghost' } as UserRecord;
  const s = await addSession(e, ghost);
  t.is(session(e, s.token).kind, 'none');
});

test('absolute expiry: none from createdAt + absolute on, even while active', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u, { lastSeenAt: T0 + ABSOLUTE - MIN });
  e.clock.t = T0 + ABSOLUTE - 1;
  t.is(session(e, s.token).kind, 'ok');
  e.clock.t = T0 + ABSOLUTE;
  t.is(session(e, s.token).kind, 'none');
  e.clock.t = T0 + ABSOLUTE + HOUR;
  t.is(session(e, s.token).kind, 'none');
  // The project's own absolute lifetime is what counts.
  e.clock.t = T0 + 2 * HOUR;
  t.is(session(e, s.token, PROJECT, 2 * HOUR, IDLE).kind, 'none');
  t.is(session(e, s.token, PROJECT, 2 * HOUR + 1, IDLE).kind, 'ok');
});

test('idle expiry: none from lastSeenAt + idle on', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  e.clock.t = T0 + IDLE;
  t.is(session(e, s.token).kind, 'none');
  e.clock.t = T0 + IDLE + 5 * MIN;
  t.is(session(e, s.token).kind, 'none');
  // Expired calls write nothing: the session stays as it was.
  await sleep(30);
  t.is(e.store.sessions.get(s.th)!.lastSeenAt, T0);
  // The project's idle lifetime is what counts.
  e.clock.t = T0 + 10 * MIN;
  t.is(session(e, s.token, PROJECT, ABSOLUTE, 10 * MIN).kind, 'none');
  const s2 = await addSession(e, u);
  e.clock.t = T0 + IDLE - 1;
  t.is(session(e, s2.token).kind, 'ok');
});

test('idle refresh: after more than 60 s lastSeenAt is written, and the session lives on', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const t1 = T0 + IDLE_REFRESH_INTERVAL_MS + 1_000;
  e.clock.t = t1;
  t.is(session(e, s.token).kind, 'ok');
  await sleep(50);
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.lastSeenAt !== T0);
  t.is(rec.lastSeenAt, t1);
  // The refresh moved the idle deadline: past the original deadline, still ok.
  e.clock.t = T0 + IDLE + MIN;
  t.is(session(e, s.token).kind, 'ok');
  e.clock.t = t1 + IDLE;
  // (the call above at T0 + IDLE + MIN refreshed again; read its write first)
  await until(() => e.store.sessions.get(s.th)!, (r) => r.lastSeenAt === T0 + IDLE + MIN);
  t.is(session(e, s.token).kind, 'ok');
});

test('idle refresh: exactly 60 s triggers the write', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  e.clock.t = T0 + IDLE_REFRESH_INTERVAL_MS;
  t.is(session(e, s.token).kind, 'ok');
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.lastSeenAt !== T0);
  t.is(rec.lastSeenAt, T0 + IDLE_REFRESH_INTERVAL_MS);
});

test('idle refresh: NOT written when less than 60 s passed (no write per request)', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  e.clock.t = T0 + IDLE_REFRESH_INTERVAL_MS - 1_000;
  const p = principal(t, session(e, s.token));
  // As the front end does after authorize: the assertion is minted in the same turn and its write-back queued;
  // once it has landed, any idle refresh queued by the lookup would have too.
  e.assertions.for(p, PROJECT, e.clock.t);
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  t.not(rec.assertion, null);
  await sleep(50);
  t.is(e.store.sessions.get(s.th)!.lastSeenAt, T0);
  t.is(IDLE_REFRESH_INTERVAL_MS, 60_000);
});

test('suspended user → none on the very next call; deactivated too; reactivated → ok', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  t.is(session(e, s.token).kind, 'ok');
  await e.store.users.update(u.id, { status: 'suspended' });
  t.is(session(e, s.token).kind, 'none');
  await e.store.users.update(u.id, { status: 'deactivated' });
  t.is(session(e, s.token).kind, 'none');
  await e.store.users.update(u.id, { status: 'active' });
  t.is(session(e, s.token).kind, 'ok');
});

test('a user created suspended never authenticates', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { status: 'suspended' });
  const s = await addSession(e, u);
  t.is(session(e, s.token).kind, 'none');
});

test('revoked session → none; revokeAllForUser → none for all of them', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s1 = await addSession(e, u);
  const s2 = await addSession(e, u);
  const s3 = await addSession(e, u);
  t.is(session(e, s1.token).kind, 'ok');
  t.true(await e.store.sessions.revoke(s1.th));
  t.is(session(e, s1.token).kind, 'none');
  t.is(session(e, s2.token).kind, 'ok');
  t.is(await e.store.sessions.revokeAllForUser(u.id), 2);
  t.is(session(e, s2.token).kind, 'none');
  t.is(session(e, s3.token).kind, 'none');
});

test('a revoked session stays revoked even if a write-back races it', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  e.clock.t = T0 + 2 * MIN;
  // Queues an idle refresh (the lookup) and an assertion write-back (the mint that follows an allow).
  e.assertions.for(principal(t, session(e, s.token)), PROJECT, e.clock.t);
  await e.store.sessions.revoke(s.th);
  await sleep(50);
  t.is(e.store.sessions.get(s.th), undefined);
  t.is(session(e, s.token).kind, 'none');
});

test('role change → the next principal carries the new roles and permissions, in this worker and any other', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['viewer'], permissions: [] });
  const s = await addSession(e, u);
  const p1 = principal(t, session(e, s.token));
  t.deepEqual([...p1.roles], ['viewer']);
  await e.store.users.update(u.id, { roles: ['admin'], permissions: ['admin:write'] });
  const p2 = principal(t, session(e, s.token));
  t.deepEqual([...p2.roles], ['admin']);
  t.deepEqual([...p2.permissions], ['admin:write']);
  t.is(p2.user!.version, u.version + 1, 'built from the new user record (the assertion is re-minted on its version)');
  t.deepEqual([...p1.roles], ['viewer'], 'a principal already handed out is not changed under its request');
  // Another worker, reading only the store.
  const other = new Authenticator(e.store, e.clock);
  t.deepEqual([...principal(t, result(other.session(s.token, PROJECT, ABSOLUTE, IDLE))).roles], ['admin']);
});

test('memo: the same principal object while its records are unchanged; a new one when the store returns new records', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const p1 = principal(t, session(e, s.token));
  t.is(principal(t, session(e, s.token)), p1, 'a known session allocates no new principal');
  // A write to the session record (the idle refresh) gives the store a new record: a new principal.
  e.clock.t = T0 + IDLE_REFRESH_INTERVAL_MS;
  principal(t, session(e, s.token));
  await until(() => e.store.sessions.get(s.th)!, (r) => r.lastSeenAt !== T0);
  const p2 = principal(t, session(e, s.token));
  t.not(p2, p1);
  t.is(p2.session!.lastSeenAt, T0 + IDLE_REFRESH_INTERVAL_MS);
  // A change of the user: a new principal with the new fields.
  await e.store.users.update(u.id, { displayName: 'Renamed' });
  const p3 = principal(t, session(e, s.token));
  t.not(p3, p2);
  t.is(p3.name, 'Renamed');
  // Never a memoized principal for a credential the store no longer accepts.
  await e.store.sessions.revoke(s.th);
  t.is(session(e, s.token).kind, 'none');
  // The same for keys.
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const k1 = principal(t, apiKey(e, k.text));
  t.is(principal(t, apiKey(e, k.text)), k1);
  await e.store.serviceAccounts.update(sa.id, { roles: ['ops'] });
  const k2 = principal(t, apiKey(e, k.text));
  t.not(k2, k1);
  t.deepEqual([...k2.roles], ['ops']);
  await e.store.serviceAccounts.revokeKey(k.id);
  t.is(apiKey(e, k.text).kind, 'none');
});

// ── service-account API keys ──

test('apiKey: valid key → ok with the service-account principal and the records it was built from', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const p = principal(t, apiKey(e, k.text));
  t.is(p.type, 'service_account');
  t.is(p.id, sa.id);
  t.is(p.email, '');
  t.is(p.name, 'ci-bot');
  t.deepEqual([...p.roles], ['deployer']);
  t.deepEqual([...p.permissions], ['deploy:write']);
  t.is(p.credential, k.id);
  t.is(p.key?.id, k.id);
  t.is(p.account?.id, sa.id);
  t.is(p.session, null);
  t.is(p.user, null);
});

test('apiKey: wrong secret → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const other = newApiKey();
  t.is(apiKey(e, `mzk_${k.id}_${other.secret}`).kind, 'none');
  const flipped = k.secret.slice(0, -1) + (k.secret.endsWith('A') ? 'B' : 'A');
  t.is(apiKey(e, `mzk_${k.id}_${flipped}`).kind, 'none');
  t.is(apiKey(e, k.text).kind, 'ok');
});

test('apiKey: unknown id, malformed text → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(apiKey(e, newApiKey().text).kind, 'none');
  t.is(apiKey(e, '').kind, 'none');
  t.is(apiKey(e, k.text.slice(0, -1)).kind, 'none');
  t.is(apiKey(e, 'Bearer ' + k.text).kind, 'none');
  t.is(apiKey(e, k.secret).kind, 'none');
});

test('apiKey: revoked key → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const k2 = await addKey(e, sa);
  t.is(apiKey(e, k.text).kind, 'ok');
  t.true(await e.store.serviceAccounts.revokeKey(k.id));
  t.is(apiKey(e, k.text).kind, 'none');
  t.is(apiKey(e, k2.text).kind, 'ok', 'other keys of the account keep working (rotation)');
});

test('apiKey: expired key → none from expiresAt on', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa, { expiresAt: T0 + HOUR });
  e.clock.t = T0 + HOUR - 1;
  t.is(apiKey(e, k.text).kind, 'ok');
  e.clock.t = T0 + HOUR;
  t.is(apiKey(e, k.text).kind, 'none');
  e.clock.t = T0 + 2 * HOUR;
  t.is(apiKey(e, k.text).kind, 'none');
});

test('apiKey: disabled account → none; enabled again → ok', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(apiKey(e, k.text).kind, 'ok');
  await e.store.serviceAccounts.setStatus(sa.id, 'disabled');
  t.is(apiKey(e, k.text).kind, 'none');
  await e.store.serviceAccounts.setStatus(sa.id, 'active');
  t.is(apiKey(e, k.text).kind, 'ok');
});

test('apiKey: an account created disabled never authenticates; a key whose account is gone → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e, { status: 'disabled' });
  const k = await addKey(e, sa);
  t.is(apiKey(e, k.text).kind, 'none');
  const ghost = await addKey(e, { ...sa, id: 'sa_ghost', status: 'active' });
  t.is(apiKey(e, ghost.text).kind, 'none');
});

test('apiKey: other project → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(apiKey(e, k.text, 'other').kind, 'none');
  t.is(apiKey(e, k.text, '').kind, 'none');
  t.is(apiKey(e, k.text).kind, 'ok');
});

test('a session token is not an API key and an API key is not a session token', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(apiKey(e, s.token).kind, 'none');
  t.is(session(e, k.text).kind, 'none');
  t.is(session(e, k.secret).kind, 'none');
});
