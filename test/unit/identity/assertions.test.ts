/**
 * The assertion forwarded with an allowed request (src/identity/assertions.ts):
 * minted per session or API key, never per request. Cached on the session
 * or key record (written back for the other workers) and in a per-worker memo
 * that bridges the write-back; reused while minted for the principal's
 * current version, with the active signing key, and with more than 60 s of
 * life left. Principals come from the real Authenticator over a real store
 * (../session/records.ts), as on the request path.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Assertions, Signer } from '../../../src/identity/index.js';
import { Authenticator, type Principal } from '../../../src/session/index.js';
import { openStore } from '../../../src/store/index.js';
import { ABSOLUTE, IDLE, ISSUER, PROJECT, SEC, T0, addKey, addServiceAccount, addSession, addUser, claimsOf, env, sleep, until, type Env } from '../session/records.js';

function sessionPrincipal(t: ExecutionContext, e: Env, token: string, auth: Authenticator = e.auth): Principal {
  const p = auth.session(token, PROJECT, ABSOLUTE, IDLE);
  t.not(p, null, 'the session authenticates');
  return p!;
}
function keyPrincipal(t: ExecutionContext, e: Env, text: string): Principal {
  const p = e.auth.apiKey(text, PROJECT);
  t.not(p, null, 'the key authenticates');
  return p!;
}
/** Lookup then mint, as the front end does for an allowed request. */
const sessionAssertion = (t: ExecutionContext, e: Env, token: string, a: Assertions = e.assertions, auth: Authenticator = e.auth) => a.for(sessionPrincipal(t, e, token, auth), PROJECT, e.clock.t);
const keyAssertion = (t: ExecutionContext, e: Env, text: string) => e.assertions.for(keyPrincipal(t, e, text), PROJECT, e.clock.t);

/** Counts the signatures a signer makes. */
function countMints(signer: Signer): { n: number } {
  const count = { n: 0 };
  const mint = signer.mint.bind(signer);
  signer.mint = (...args: Parameters<Signer['mint']>) => {
    count.n++;
    return mint(...args);
  };
  return count;
}

// ── sessions ──

test('a session → a verifiable assertion carrying the principal, the session and the project', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['admin', 'viewer'], permissions: ['admin:write'] });
  const s = await addSession(e, u);
  const c = claimsOf(t, e, sessionAssertion(t, e, s.token));
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
  t.is(claimsOf(t, e, sessionAssertion(t, e, s.token)).name, 'Ada L.');
});

test('the assertion is cached: same token within its life, written back, re-minted when less than 60 s are left', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const a1 = sessionAssertion(t, e, s.token);
  e.clock.t = T0 + 10 * SEC;
  const a2 = sessionAssertion(t, e, s.token);
  t.is(a2, a1, 'no re-mint while fresh (Ed25519 is deterministic, so a re-mint would change iat)');
  // Written back to the session record for the other workers.
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  t.is(rec.assertion, a1);
  t.is(rec.assertionKid, e.signer.activeKid);
  t.is(rec.assertionUserVersion, u.version);
  t.is(rec.assertionExp, claimsOf(t, e, a1).exp * 1000);
  // Another worker (a fresh Authenticator and Assertions, no memo) serves the cached assertion from the store.
  const mints = countMints(e.signer);
  t.is(sessionAssertion(t, e, s.token, new Assertions(e.store, e.signer), new Authenticator(e.store, e.clock)), a1);
  t.is(mints.n, 0, 'served from the record: no signature');
  // Near expiry: a new one with a later iat.
  const exp = claimsOf(t, e, a1).exp * 1000;
  e.clock.t = exp - 60 * SEC;
  const a3 = sessionAssertion(t, e, s.token);
  t.not(a3, a1);
  t.is(mints.n, 1);
  const c3 = claimsOf(t, e, a3);
  t.is(c3.iat, Math.floor(e.clock.t / 1000));
  t.true(c3.exp * 1000 - e.clock.t > 60 * SEC, 'a forwarded assertion has more than a minute left');
  // 61 s left is still fresh enough.
  e.clock.t = c3.exp * 1000 - 61 * SEC;
  t.is(sessionAssertion(t, e, s.token), a3);
});

test('memo: before the write-back lands, a second request reuses the assertion minted for the first (one signature)', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const mints = countMints(e.signer);
  // Same turn: the record still has no assertion.
  const a1 = sessionAssertion(t, e, s.token);
  t.is(e.store.sessions.get(s.th)!.assertion, null, 'not written back yet');
  const a2 = sessionAssertion(t, e, s.token);
  t.is(a2, a1);
  t.is(mints.n, 1);
  // The memo is per worker: another worker, with the write-back still pending, mints its own.
  const other = new Assertions(e.store, e.signer);
  t.is(typeof sessionAssertion(t, e, s.token, other), 'string');
  t.is(mints.n, 2);
});

test('role change → a re-minted assertion carrying the new roles and permissions, in this worker and any other', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['viewer'], permissions: [] });
  const s = await addSession(e, u);
  const a1 = sessionAssertion(t, e, s.token);
  t.deepEqual(claimsOf(t, e, a1).roles, ['viewer']);
  await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  await e.store.users.update(u.id, { roles: ['admin'], permissions: ['admin:write'] });
  const a2 = sessionAssertion(t, e, s.token);
  t.not(a2, a1);
  const c2 = claimsOf(t, e, a2);
  t.deepEqual(c2.roles, ['admin']);
  t.deepEqual(c2.permissions, ['admin:write']);
  // Another worker, reading only the store, must not serve the stale cached assertion either.
  const other = sessionAssertion(t, e, s.token, new Assertions(e.store, e.signer), new Authenticator(e.store, e.clock));
  t.deepEqual(claimsOf(t, e, other).roles, ['admin']);
  // The re-minted one is written back with the new version.
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertionUserVersion === u.version + 1);
  t.is(rec.assertionUserVersion, u.version + 1);
});

test('role change is seen even before the first assertion was written back (the memo is checked against the version)', async (t) => {
  const e = await env(t);
  const u = await addUser(e, { roles: ['viewer'] });
  const s = await addSession(e, u);
  sessionAssertion(t, e, s.token);
  await e.store.users.update(u.id, { roles: ['editor'] });
  t.deepEqual(claimsOf(t, e, sessionAssertion(t, e, s.token)).roles, ['editor']);
});

test('signing key rotation → the session assertion is re-minted with the new kid', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const a1 = sessionAssertion(t, e, s.token);
  await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  const kid1 = e.signer.activeKid;
  const kid2 = await Signer.rotate(e.store.signingKeys);
  e.signer.reload();
  t.not(kid2, kid1);
  const a2 = sessionAssertion(t, e, s.token);
  t.not(a2, a1);
  const header = JSON.parse(Buffer.from(a2.split('.')[0]!, 'base64url').toString()) as { kid: string };
  t.is(header.kid, kid2);
  claimsOf(t, e, a2);
  claimsOf(t, e, a1); // still published during the overlap
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertionKid === kid2);
  t.is(rec.assertion, a2);
});

test('another issuer (a node of a replicated cluster run with its own): the record\'s assertion is not reused; each node keeps its own in its memo, the record is written only when one mints', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u);
  const a1 = sessionAssertion(t, e, s.token);
  const rec = await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion !== null);
  t.is(rec.assertionIss, ISSUER, 'the issuer is kept with the cached assertion');
  // Node B: same replicated store and signing keys, another issuer.
  const signerB = new Signer(e.store.signingKeys, 'http://localhost:9090');
  signerB.reload();
  const mintsB = countMints(signerB);
  const nodeB = new Assertions(e.store, signerB);
  const b1 = sessionAssertion(t, e, s.token, nodeB);
  t.not(b1, a1, "A's assertion is not forwarded by B (B's Warpgate tunnel expects B's issuer)");
  t.is(claimsOf(t, e, b1).iss, 'http://localhost:9090');
  t.is(mintsB.n, 1);
  await until(() => e.store.sessions.get(s.th)!, (r) => r.assertion === b1);
  // Both nodes now serve their own from their memos: no signature, no write that undoes the other's.
  const mintsA = countMints(e.signer);
  t.is(sessionAssertion(t, e, s.token), a1);
  t.is(sessionAssertion(t, e, s.token, nodeB), b1);
  t.is(mintsA.n + mintsB.n - 1, 0);
  await sleep(30);
  t.is(e.store.sessions.get(s.th)!.assertion, b1);
});

test('no signing key: minting throws MEZU_SIGNING_KEY_MISSING (the front end denies) and nothing is written back', async (t) => {
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
  const assertions = new Assertions(e.store, signer);
  const p = sessionPrincipal(t, e, s.token);
  const err = t.throws(() => assertions.for(p, PROJECT, e.clock.t));
  t.is((err as { code?: string }).code, 'MEZU_SIGNING_KEY_MISSING');
  await sleep(30);
  t.is(e.store.sessions.get(s.th)!.assertion, null);
});

test('an assertion cached on the record under a key that is no longer active is not served', async (t) => {
  const e = await env(t);
  const u = await addUser(e);
  const s = await addSession(e, u, { assertion: 'stale.cached.token', assertionExp: T0 + 300 * SEC, assertionUserVersion: 1, assertionKid: 'kid-retired' });
  const a = sessionAssertion(t, e, s.token);
  t.not(a, 'stale.cached.token');
  claimsOf(t, e, a);
  // The same record under the active kid and the current version is served as it is.
  const s2 = await addSession(e, u, { assertion: 'cached.under.active', assertionExp: T0 + 300 * SEC, assertionUserVersion: u.version, assertionKid: e.signer.activeKid });
  t.is(sessionAssertion(t, e, s2.token), 'cached.under.active');
  // …but not under an older user version.
  const s3 = await addSession(e, u, { assertion: 'cached.old.version', assertionExp: T0 + 300 * SEC, assertionUserVersion: u.version - 1, assertionKid: e.signer.activeKid });
  t.not(sessionAssertion(t, e, s3.token), 'cached.old.version');
});

// ── service-account API keys ──

test('apiKey: a verifiable assertion for the service account, written back with lastUsedAt, cached while fresh', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const a = keyAssertion(t, e, k.text);
  const c = claimsOf(t, e, a);
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
  t.is(rec.assertion, a);
  t.is(rec.lastUsedAt, T0);
  t.is(rec.assertionKid, e.signer.activeKid);
  t.is(rec.assertionUserVersion, sa.version);
  // Cached while fresh.
  e.clock.t = T0 + 10 * SEC;
  t.is(keyAssertion(t, e, k.text), a);
});

test('apiKey: an account change (roles) re-mints the assertion; a key rotation of the signer too', async (t) => {
  const e = await env(t);
  const sa = await addServiceAccount(e);
  const k = await addKey(e, sa);
  const a1 = keyAssertion(t, e, k.text);
  await until(() => e.store.serviceAccounts.getKey(k.id)!, (r) => r.assertion !== null);
  await e.store.serviceAccounts.update(sa.id, { roles: ['ops'] });
  const a2 = keyAssertion(t, e, k.text);
  t.not(a2, a1);
  t.deepEqual(claimsOf(t, e, a2).roles, ['ops']);
  await until(() => e.store.serviceAccounts.getKey(k.id)!, (r) => r.assertion === a2);
  const kid2 = await Signer.rotate(e.store.signingKeys);
  e.signer.reload();
  const a3 = keyAssertion(t, e, k.text);
  t.not(a3, a2);
  t.is((JSON.parse(Buffer.from(a3.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid, kid2);
  // Near expiry: re-minted.
  const exp = claimsOf(t, e, a3).exp * 1000;
  e.clock.t = exp - 60 * SEC;
  t.not(keyAssertion(t, e, k.text), a3);
});
