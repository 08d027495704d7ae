import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ASSERTION_MAX_TTL_S } from '../../../wire/contract.js';
import { RETIRED_KEY_OVERLAP_MS, Signer, type PrincipalIdentity } from '../../../src/identity/index.js';
import { generateSigningKeyPem, KeySet } from '../../../wire/index.js';
import { openStore, type Store } from '../../../src/store/index.js';

const ISSUER = 'https://edge.test';

function tmpStore(t: ExecutionContext): Store {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-signer-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

const alice: PrincipalIdentity = {
  type: 'user',
  id: 'usr_alice',
  email: 'alice@example.com',
  name: 'Alice',
  roles: ['admin'],
  permissions: ['admin:write', 'reports:read'],
  amr: ['pwd'],
  authTime: 1_700_000_000_123,
  sid: 'ses_1',
};

test('ensureKey creates exactly one key, and only when the store has none', async (t) => {
  const store = tmpStore(t);
  t.is(store.signingKeys.all().length, 0);
  t.is(store.signingKeys.active(), undefined);
  await Signer.ensureKey(store.signingKeys);
  const first = store.signingKeys.active();
  t.truthy(first);
  t.is(first!.retiredAt, null);
  await Signer.ensureKey(store.signingKeys);
  t.is(store.signingKeys.all().length, 1);
  t.is(store.signingKeys.active()!.kid, first!.kid);
});

test('reload picks the active key up, and reports whether anything changed', async (t) => {
  const store = tmpStore(t);
  const signer = new Signer(store.signingKeys, ISSUER);
  t.is(signer.activeKid, null);
  t.deepEqual(signer.jwks(), { keys: [] });
  t.is(signer.jwksJson(), '{"keys":[]}');
  await Signer.ensureKey(store.signingKeys);
  t.true(signer.reload());
  t.false(signer.reload());
  const kid = store.signingKeys.active()!.kid;
  t.is(signer.activeKid, kid);
  t.is(signer.jwks().keys.length, 1);
  t.deepEqual(signer.jwks().keys[0], { kty: 'OKP', crv: 'Ed25519', x: store.signingKeys.active()!.publicX, kid, alg: 'EdDSA', use: 'sig' });
  t.deepEqual(JSON.parse(signer.jwksJson()), signer.jwks());
});

test('mint without any key throws MEZU_SIGNING_KEY_MISSING (the caller denies)', (t) => {
  const store = tmpStore(t);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const err = t.throws(() => signer.mint('demo', alice, Date.now()));
  t.is((err as { code?: string }).code, 'MEZU_SIGNING_KEY_MISSING');
  t.is((err as { status?: number }).status, 503);
});

test('mint: claims carry iss, aud = project, sub, typ and the principal; lifetime ≤ 5 minutes; verifies with the JWKS', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const now = 1_700_000_123_456;
  const r = signer.mint('demo', alice, now);
  t.is(r.kid, signer.activeKid!);
  const v = new KeySet(signer.jwks()).verify(r.token);
  t.true(v.ok);
  if (!v.ok) return;
  const c = v.claims;
  t.is(c.iss, ISSUER);
  t.is(c.aud, 'demo');
  t.is(c.sub, 'usr_alice');
  t.is(c.typ, 'user');
  t.is(c.email, 'alice@example.com');
  t.is(c.name, 'Alice');
  t.deepEqual(c.amr, ['pwd']);
  t.deepEqual(c.roles, ['admin']);
  t.deepEqual(c.permissions, ['admin:write', 'reports:read']);
  t.is(c.sid, 'ses_1');
  t.is(c.iat, Math.floor(now / 1000));
  t.is(c.auth_time, Math.floor(alice.authTime / 1000));
  t.true(c.exp > c.iat);
  t.true(c.exp - c.iat <= 300);
  t.true(c.exp - c.iat <= ASSERTION_MAX_TTL_S);
  t.is(r.exp, c.exp * 1000);
  const header = JSON.parse(Buffer.from(r.token.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
  t.deepEqual(header, { alg: 'EdDSA', kid: signer.activeKid, typ: 'JWT' });
});

test('mint: service-account principal and a different project', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const r = signer.mint('other', { ...alice, type: 'service_account', id: 'sa_1', email: '', amr: ['key'] }, Date.now());
  const v = new KeySet(signer.jwks()).verify(r.token);
  t.true(v.ok);
  if (!v.ok) return;
  t.is(v.claims.aud, 'other');
  t.is(v.claims.typ, 'service_account');
  t.is(v.claims.sub, 'sa_1');
  t.deepEqual(v.claims.amr, ['key']);
});

test('two signers over the same store (two workers) sign with the same key and publish the same JWKS', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const a = new Signer(store.signingKeys, ISSUER);
  const b = new Signer(store.signingKeys, ISSUER);
  a.reload();
  b.reload();
  t.is(a.activeKid, b.activeKid);
  t.is(a.jwksJson(), b.jwksJson());
  t.true(new KeySet(b.jwks()).verify(a.mint('demo', alice, Date.now()).token).ok);
});

test('rotate: a new active kid; the old one stays in the JWKS; an assertion minted before rotation still verifies', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const oldKid = signer.activeKid!;
  const before = signer.mint('demo', alice, Date.now());
  t.is(before.kid, oldKid);

  const newKid = await Signer.rotate(store.signingKeys);
  t.not(newKid, oldKid);
  t.is(store.signingKeys.active()!.kid, newKid);
  const oldRec = store.signingKeys.all().find((k) => k.kid === oldKid);
  t.truthy(oldRec);
  t.not(oldRec!.retiredAt, null);

  t.true(signer.reload());
  t.is(signer.activeKid, newKid);
  const kids = signer.jwks().keys.map((k) => k.kid).sort();
  t.deepEqual(kids, [oldKid, newKid].sort());

  const set = new KeySet(signer.jwks());
  t.true(set.verify(before.token).ok, 'pre-rotation assertion verifies with the new JWKS');
  const after = signer.mint('demo', alice, Date.now());
  t.is(after.kid, newKid);
  t.true(set.verify(after.token).ok);
  // A verifier that only knew the old JWKS does not accept the new key (the edge must hand out the new JWKS).
  t.false(new KeySet({ keys: signer.jwks().keys.filter((k) => k.kid === oldKid) }).verify(after.token).ok);
});

test('rotating twice keeps both retired keys published during the overlap; exactly one key is active', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const k1 = store.signingKeys.active()!.kid;
  const k2 = await Signer.rotate(store.signingKeys);
  const k3 = await Signer.rotate(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  t.is(signer.activeKid, k3);
  t.deepEqual(signer.jwks().keys.map((k) => k.kid).sort(), [k1, k2, k3].sort());
  t.is(store.signingKeys.all().filter((k) => k.retiredAt === null).length, 1);
});

test('a retired key leaves the JWKS once the overlap is over', async (t) => {
  const store = tmpStore(t);
  await Signer.ensureKey(store.signingKeys);
  const oldKid = store.signingKeys.active()!.kid;
  const newKid = await Signer.rotate(store.signingKeys);
  const retiredAt = store.signingKeys.all().find((k) => k.kid === oldKid)!.retiredAt!;
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload(retiredAt + RETIRED_KEY_OVERLAP_MS);
  t.deepEqual(signer.jwks().keys.map((k) => k.kid).sort(), [oldKid, newKid].sort(), 'still published at the overlap boundary');
  t.true(signer.reload(retiredAt + RETIRED_KEY_OVERLAP_MS + 1));
  t.deepEqual(signer.jwks().keys.map((k) => k.kid), [newKid]);
  t.is(signer.activeKid, newKid);
});

test('rotate removes keys retired longer ago than the overlap', async (t) => {
  const store = tmpStore(t);
  const ancient = generateSigningKeyPem();
  const now = Date.now();
  await store.signingKeys.add({ kid: ancient.kid, privateKeyPem: ancient.privateKeyPem, publicX: ancient.publicX, createdAt: now - 2 * RETIRED_KEY_OVERLAP_MS, retiredAt: now - RETIRED_KEY_OVERLAP_MS - 60_000 }, false);
  await Signer.ensureKey(store.signingKeys);
  const current = store.signingKeys.active()!.kid;
  const next = await Signer.rotate(store.signingKeys);
  const kids = store.signingKeys.all().map((k) => k.kid);
  t.false(kids.includes(ancient.kid));
  t.true(kids.includes(current));
  t.true(kids.includes(next));
});
