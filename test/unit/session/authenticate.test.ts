import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AssertionClaims } from '../../../wire/contract.js';
import { Signer } from '../../../src/identity/index.js';
import { KeySet } from '../../../wire/index.js';
import {
  Authenticator,
  hashToken,
  IDLE_REFRESH_INTERVAL_MS,
  newApiKey,
  newSessionToken,
  type AuthResult,
  type Principal,
} from '../../../src/session/index.js';
import { openStore, type ApiKeyRecord, type ServiceAccountRecord, type SessionRecord, type Store, type UserRecord } from '../../../src/store/index.js';

const ISSUER = 'https://edge.test';
const PROJECT = 'demo';
const T0 = 1_700_000_000_000;
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const ABSOLUTE = 24 * HOUR;
const IDLE = 30 * MIN;

interface Env {
  store: Store;
  signer: Signer;
  clock: { t: number; now(): number };
  auth: Authenticator;
}

async function env(t: ExecutionContext): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-auth-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  return { store, signer, clock, auth: new Authenticator(store, signer, clock) };
}

let seq = 0;
async function addUser(e: Env, over: Partial<UserRecord> = {}): Promise<UserRecord> {
  seq++;
  const u: UserRecord = {
    id: `usr_${seq}`,
    directory: PROJECT,
    email: `user${seq}@example.com`,
    name: `User ${seq}`,
    displayName: '',
    status: 'active',
    roles: ['viewer'],
    permissions: ['reports:read'],
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    lastLoginAt: null,
    ...over,
  };
  await e.store.users.create(u);
  return u;
}

async function addSession(e: Env, u: UserRecord, over: Partial<SessionRecord> = {}): Promise<{ token: string; th: string; rec: SessionRecord }> {
  const token = newSessionToken();
  const rec: SessionRecord = {
    id: `ses_${++seq}`,
    principalType: 'user',
    userId: u.id,
    projectId: PROJECT,
    createdAt: T0,
    lastSeenAt: T0,
    authTime: T0,
    amr: ['pwd'],
    assertion: null,
    assertionExp: 0,
    assertionUserVersion: 0,
    assertionKid: null,
    ...over,
  };
  await e.store.sessions.create(hashToken(token), rec);
  return { token, th: hashToken(token), rec };
}

async function addServiceAccount(e: Env, over: Partial<ServiceAccountRecord> = {}): Promise<ServiceAccountRecord> {
  const sa: ServiceAccountRecord = {
    id: `sa_${++seq}`,
    projectId: PROJECT,
    name: 'ci-bot',
    status: 'active',
    roles: ['deployer'],
    permissions: ['deploy:write'],
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
  await e.store.serviceAccounts.create(sa);
  return sa;
}

async function addKey(e: Env, sa: ServiceAccountRecord, over: Partial<ApiKeyRecord> = {}): Promise<{ text: string; id: string; secret: string }> {
  const k = newApiKey();
  await e.store.serviceAccounts.addKey({
    id: k.id,
    serviceAccountId: sa.id,
    projectId: sa.projectId,
    secretHash: hashToken(k.secret),
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    assertion: null,
    assertionExp: 0,
    assertionUserVersion: 0,
    assertionKid: null,
    ...over,
  });
  return k;
}

function principal(t: ExecutionContext, r: AuthResult): Principal {
  t.is(r.kind, 'ok');
  if (r.kind !== 'ok') throw new Error('expected ok');
  return r.principal;
}

function claimsOf(t: ExecutionContext, e: Env, token: string): AssertionClaims {
  const v = new KeySet(e.signer.jwks()).verify(token);
  t.true(v.ok, 'assertion verifies with the published JWKS');
  if (!v.ok) throw new Error(v.reason);
  return v.claims;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits (up to ~3 s) for a fire-and-forget write-back to land. */
async function until<T>(read: () => T, ok: (v: T) => boolean): Promise<T> {
  let v = read();
  for (let i = 0; i < 300 && !ok(v); i++) {
    await sleep(10);
    v = read();
  }
  return v;
}

const session = (e: Env, token: string, project = PROJECT, abs = ABSOLUTE, idle = IDLE) => e.auth.session(token, project, abs, idle);

// ── sessions ──

test('valid session → ok with the principal fields and a verifiable assertion', async (t) => {
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
  const c = claimsOf(t, e, p.assertion);
  t.is(c.iss, ISSUER);
  t.is(c.aud, PROJECT);
  t.is(c.sub, u.id);
  t.is(c.typ, 'user');
  t.is(c.email, u.email);
  t.is(c.name, u.name);
  t.is(c.sid, s.rec.id);
  t.deepEqual(c.amr, ['pwd']);
  t.is(c.auth_time, Math.floor(T0 / 1000));
  t.deepEqual(c.roles, ['admin', 'viewer']);
  t.deepEqual(c.permissions, ['admin:write']);
  t.is(c.iat, Math.floor(T0 / 1000));
  t.true(c.exp - c.iat <= 300);
});

test('the display name wins over the name when set', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { displayName: 'Ada L.' });
  const s = await addSession(e, u);
  const p = principal(t, session(e, s.token));
  t.is(p.name, 'Ada L.');
  t.is(claimsOf(t, e, p.assertion).name, 'Ada L.');
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
  t.is(session(e, s.token, PROJECT).kind, 'ok');
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
  t.is(session(e, s.token).kind, 'ok');
  // The assertion write-back is queued in the same turn; once it has landed, any idle refresh would have too.
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  t.not(rec.assertion, null);
  await sleep(50);
  t.is(e.store.sessions.get(s.th)!.lastSeenAt, T0);
  t.is(IDLE_REFRESH_INTERVAL_MS, 60_000);
});

test('the assertion is cached: same token within its life, re-minted when less than 60 s are left', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const a1 = principal(t, session(e, s.token)).assertion;
  e.clock.t = T0 + 10 * SEC;
  const a2 = principal(t, session(e, s.token)).assertion;
  t.is(a2, a1, 'no re-mint while fresh (Ed25519 is deterministic, so a re-mint would change iat)');
  // Written back to the session record for the other workers.
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  t.is(rec.assertion, a1);
  t.is(rec.assertionKid, e.signer.activeKid);
  t.is(rec.assertionUserVersion, u.version);
  t.is(rec.assertionExp, claimsOf(t, e, a1).exp * 1000);
  // Another worker (a fresh Authenticator) serves the cached assertion from the store.
  const other = new Authenticator(e.store, e.signer, e.clock);
  t.is(principal(t, other.session(s.token, PROJECT, ABSOLUTE, IDLE)).assertion, a1);
  // Near expiry: a new one with a later iat.
  const exp = claimsOf(t, e, a1).exp * 1000;
  e.clock.t = exp - 60 * SEC;
  const a3 = principal(t, session(e, s.token)).assertion;
  t.not(a3, a1);
  const c3 = claimsOf(t, e, a3);
  t.is(c3.iat, Math.floor(e.clock.t / 1000));
  t.true(c3.exp * 1000 - e.clock.t > 60 * SEC, 'a forwarded assertion has more than a minute left');
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
  t.is(session(e, s.token).kind, 'ok'); // queues an idle refresh and an assertion write-back
  await e.store.sessions.revoke(s.th);
  await sleep(50);
  t.is(e.store.sessions.get(s.th), undefined);
  t.is(session(e, s.token).kind, 'none');
});

test('role change → a re-minted assertion carrying the new roles and permissions', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['viewer'], permissions: [] });
  const s = await addSession(e, u);
  const p1 = principal(t, session(e, s.token));
  t.deepEqual(claimsOf(t, e, p1.assertion).roles, ['viewer']);
  await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  await e.store.users.update(u.id, { roles: ['admin'], permissions: ['admin:write'] });
  const p2 = principal(t, session(e, s.token));
  t.deepEqual([...p2.roles], ['admin']);
  t.deepEqual([...p2.permissions], ['admin:write']);
  t.not(p2.assertion, p1.assertion);
  const c2 = claimsOf(t, e, p2.assertion);
  t.deepEqual(c2.roles, ['admin']);
  t.deepEqual(c2.permissions, ['admin:write']);
  // Another worker, reading only the store, must not serve the stale cached assertion either.
  const other = new Authenticator(e.store, e.signer, e.clock);
  t.deepEqual(claimsOf(t, e, principal(t, other.session(s.token, PROJECT, ABSOLUTE, IDLE)).assertion).roles, ['admin']);
});

test('role change is seen even before the first assertion was written back', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['viewer'] });
  const s = await addSession(e, u);
  principal(t, session(e, s.token));
  await e.store.users.update(u.id, { roles: ['editor'] });
  t.deepEqual(claimsOf(t, e, principal(t, session(e, s.token)).assertion).roles, ['editor']);
});

test('signing key rotation → the session assertion is re-minted with the new kid', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const a1 = principal(t, session(e, s.token)).assertion;
  const kid1 = e.signer.activeKid;
  const kid2 = await Signer.rotate(e.store.signingKeys);
  e.signer.reload();
  t.not(kid2, kid1);
  const a2 = principal(t, session(e, s.token)).assertion;
  t.not(a2, a1);
  const header = JSON.parse(Buffer.from(a2.split('.')[0]!, 'base64url').toString()) as { kid: string };
  t.is(header.kid, kid2);
  claimsOf(t, e, a2);
  claimsOf(t, e, a1); // still published during the overlap
});

test('no signing key: the check throws MEZU_SIGNING_KEY_MISSING rather than answering ok without an assertion', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-auth-nokey-'));
  const keyless = openStore(empty);
  t.teardown(async () => {
    await keyless.close();
    fs.rmSync(empty, { recursive: true, force: true });
  });
  const signer = new Signer(keyless.signingKeys, ISSUER);
  signer.reload();
  const auth = new Authenticator(e.store, signer, e.clock);
  const err = t.throws(() => auth.session(s.token, PROJECT, ABSOLUTE, IDLE));
  t.is((err as { code?: string }).code, 'MEZU_SIGNING_KEY_MISSING');
});

// ── service-account API keys ──

test('apiKey: valid key → ok with the service-account principal and a verifiable assertion', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const p = principal(t, e.auth.apiKey(k.text, PROJECT));
  t.is(p.type, 'service_account');
  t.is(p.id, sa.id);
  t.is(p.email, '');
  t.is(p.name, 'ci-bot');
  t.deepEqual([...p.roles], ['deployer']);
  t.deepEqual([...p.permissions], ['deploy:write']);
  const c = claimsOf(t, e, p.assertion);
  t.is(c.iss, ISSUER);
  t.is(c.aud, PROJECT);
  t.is(c.typ, 'service_account');
  t.is(c.sub, sa.id);
  t.is(c.sid, k.id);
  t.deepEqual(c.amr, ['key']);
  t.deepEqual(c.roles, ['deployer']);
  t.true(c.exp - c.iat <= 300);
  // Assertion and lastUsedAt are written back to the key record.
  const rec = await until(() => e.store.serviceAccounts.getKey(k.id)!, (r) => r.assertion !== null);
  t.is(rec.assertion, p.assertion);
  t.is(rec.lastUsedAt, T0);
  // Cached while fresh.
  e.clock.t = T0 + 10 * SEC;
  t.is(principal(t, e.auth.apiKey(k.text, PROJECT)).assertion, p.assertion);
});

test('apiKey: wrong secret → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const other = newApiKey();
  t.is(e.auth.apiKey(`mzk_${k.id}_${other.secret}`, PROJECT).kind, 'none');
  const flipped = k.secret.slice(0, -1) + (k.secret.endsWith('A') ? 'B' : 'A');
  t.is(e.auth.apiKey(`mzk_${k.id}_${flipped}`, PROJECT).kind, 'none');
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
});

test('apiKey: unknown id, malformed text → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(e.auth.apiKey(newApiKey().text, PROJECT).kind, 'none');
  t.is(e.auth.apiKey('', PROJECT).kind, 'none');
  t.is(e.auth.apiKey(k.text.slice(0, -1), PROJECT).kind, 'none');
  t.is(e.auth.apiKey('Bearer ' + k.text, PROJECT).kind, 'none');
  t.is(e.auth.apiKey(k.secret, PROJECT).kind, 'none');
});

test('apiKey: revoked key → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const k2 = await addKey(e, sa);
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
  t.true(await e.store.serviceAccounts.revokeKey(k.id));
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'none');
  t.is(e.auth.apiKey(k2.text, PROJECT).kind, 'ok', 'other keys of the account keep working (rotation)');
});

test('apiKey: expired key → none from expiresAt on', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa, { expiresAt: T0 + HOUR });
  e.clock.t = T0 + HOUR - 1;
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
  e.clock.t = T0 + HOUR;
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'none');
  e.clock.t = T0 + 2 * HOUR;
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'none');
});

test('apiKey: disabled account → none; enabled again → ok', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
  await e.store.serviceAccounts.setStatus(sa.id, 'disabled');
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'none');
  await e.store.serviceAccounts.setStatus(sa.id, 'active');
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
});

test('apiKey: an account created disabled never authenticates; a key whose account is gone → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e, { status: 'disabled' });
  const k = await addKey(e, sa);
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'none');
  const ghost = await addKey(e, { ...sa, id: 'sa_ghost', status: 'active' });
  t.is(e.auth.apiKey(ghost.text, PROJECT).kind, 'none');
});

test('apiKey: other project → none', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(e.auth.apiKey(k.text, 'other').kind, 'none');
  t.is(e.auth.apiKey(k.text, '').kind, 'none');
  t.is(e.auth.apiKey(k.text, PROJECT).kind, 'ok');
});

test('a session token is not an API key and an API key is not a session token', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  t.is(e.auth.apiKey(s.token, PROJECT).kind, 'none');
  t.is(session(e, k.text).kind, 'none');
  t.is(session(e, k.secret).kind, 'none');
});
