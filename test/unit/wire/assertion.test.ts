import test from 'ava';
import { ASSERTION_CLOCK_SKEW_S, ASSERTION_MAX_TTL_S, type AssertionClaims, type Jwks } from '../../../wire/contract.js';
import { generateSigningKeyPem, jwkOf, loadSigningKey, mintJwt, type SigningKey } from '../../../wire/index.js';
import { AssertionVerifier } from '../../../wire/assertion.js';

const ISSUER = 'https://edge.test';
const T0 = 1_700_000_000_000;
const IAT = Math.floor(T0 / 1000);

function newKey(): { key: SigningKey; jwks: Jwks } {
  const g = generateSigningKeyPem();
  return { key: loadSigningKey(g.kid, g.privateKeyPem, g.publicX), jwks: { keys: [jwkOf(g.kid, g.publicX)] } };
}

function claims(over: Partial<AssertionClaims> = {}): AssertionClaims {
  return {
    iss: ISSUER,
    aud: 'demo',
    sub: 'usr_1',
    typ: 'user',
    email: 'a@example.com',
    name: 'A',
    amr: ['pwd'],
    auth_time: IAT,
    roles: ['admin'],
    permissions: [],
    sid: 'ses_1',
    iat: IAT,
    exp: IAT + ASSERTION_MAX_TTL_S,
    ...over,
  };
}

function setup(projects = ['demo', 'other']) {
  const k = newKey();
  const clock = { t: T0 };
  const v = new AssertionVerifier(() => clock.t);
  v.update(k.jwks, ISSUER, projects);
  return { ...k, clock, v };
}

test('not ready before any keys; ready after update', (t) => {
  const v = new AssertionVerifier(() => T0);
  t.false(v.ready);
  t.false(v.verify(mintJwt(newKey().key, claims()), 'demo').ok);
  v.update(newKey().jwks, ISSUER, ['demo']);
  t.true(v.ready);
  v.update({ keys: [] }, ISSUER, ['demo']);
  t.false(v.ready);
});

test('valid token → ok with its claims', (t) => {
  const { key, v } = setup();
  const c = claims();
  const r = v.verify(mintJwt(key, c), 'demo');
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.claims, c);
});

test('second verification of the same token (cached) → ok with the same claims', (t) => {
  const { key, v, clock } = setup();
  const tok = mintJwt(key, claims());
  const r1 = v.verify(tok, 'demo');
  clock.t = T0 + 60_000;
  const r2 = v.verify(tok, 'demo');
  t.true(r1.ok);
  t.true(r2.ok);
  if (r1.ok && r2.ok) t.deepEqual(r2.claims, r1.claims);
});

test('expired: ok up to exp + skew, not ok from exp + 30 s on, cached or not', (t) => {
  const { key, v, clock } = setup();
  t.is(ASSERTION_CLOCK_SKEW_S, 30);
  const c = claims();
  const cached = mintJwt(key, c);
  t.true(v.verify(cached, 'demo').ok); // now in the cache
  const fresh = mintJwt(key, claims({ sid: 'ses_2' })); // never verified before
  const expMs = c.exp * 1000;

  clock.t = expMs + 29_999;
  t.true(v.verify(cached, 'demo').ok, 'within the skew');
  clock.t = expMs + 30_000;
  const r1 = v.verify(cached, 'demo');
  t.false(r1.ok);
  if (!r1.ok) t.is(r1.reason, 'expired');
  clock.t = expMs + 31_000;
  t.false(v.verify(cached, 'demo').ok);
  const r2 = v.verify(fresh, 'demo');
  t.false(r2.ok);
  if (!r2.ok) t.is(r2.reason, 'expired');
  // And it stays refused later on.
  clock.t = expMs + 10 * 60_000;
  t.false(v.verify(cached, 'demo').ok);
});

test('audience mismatch with the request’s project → not ok (cached or not)', (t) => {
  const { key, v } = setup(['demo', 'other']);
  const tok = mintJwt(key, claims({ aud: 'demo' }));
  const r = v.verify(tok, 'other');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'audience mismatch');
  t.true(v.verify(tok, 'demo').ok);
  // Now cached: the audience is still compared with each request's project.
  t.false(v.verify(tok, 'other').ok);
  t.false(v.verify(tok, '').ok);
  t.false(v.verify(tok, 'Demo').ok);
  t.true(v.verify(tok, 'demo').ok);
});

test('audience not among the projects given to update() → not ok, even when it equals the request’s project', (t) => {
  const { key, v } = setup(['demo']);
  const tok = mintJwt(key, claims({ aud: 'elsewhere' }));
  const r = v.verify(tok, 'elsewhere');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'audience not served here');
});

test('update() narrowing the projects refuses a token that was cached as valid', (t) => {
  const { key, jwks, v } = setup(['demo', 'other']);
  const tok = mintJwt(key, claims({ aud: 'other' }));
  t.true(v.verify(tok, 'other').ok);
  v.update(jwks, ISSUER, ['demo']);
  const r = v.verify(tok, 'other');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'audience not served here');
});

test('wrong issuer → not ok; update() with a new issuer refuses tokens of the old one', (t) => {
  const { key, jwks, v } = setup();
  for (const iss of ['https://evil.test', '', 'https://edge.test/', 'HTTPS://EDGE.TEST']) {
    const r = v.verify(mintJwt(key, claims({ iss })), 'demo');
    t.false(r.ok, iss);
    if (!r.ok) t.is(r.reason, 'wrong issuer');
  }
  const tok = mintJwt(key, claims());
  t.true(v.verify(tok, 'demo').ok);
  v.update(jwks, 'https://edge2.test', ['demo', 'other']);
  t.false(v.verify(tok, 'demo').ok);
});

test('after update() with a JWKS lacking the key → not ok, even for a token verified (cached) before', (t) => {
  const { key, v } = setup();
  const tok = mintJwt(key, claims());
  t.true(v.verify(tok, 'demo').ok);
  const other = newKey();
  v.update(other.jwks, ISSUER, ['demo', 'other']);
  const r = v.verify(tok, 'demo');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'unknown kid');
  t.true(v.verify(mintJwt(other.key, claims()), 'demo').ok);
});

test('rotation overlap: a JWKS with the old and the new key accepts both', (t) => {
  const { key, jwks, v } = setup();
  const next = newKey();
  v.update({ keys: [...jwks.keys, ...next.jwks.keys] }, ISSUER, ['demo']);
  t.true(v.verify(mintJwt(key, claims()), 'demo').ok);
  t.true(v.verify(mintJwt(next.key, claims()), 'demo').ok);
});

test('a token signed by a key not in the JWKS → not ok', (t) => {
  const { v } = setup();
  t.false(v.verify(mintJwt(newKey().key, claims()), 'demo').ok);
});

test('a lifetime longer than 5 minutes → not ok', (t) => {
  const { key, v } = setup();
  t.true(v.verify(mintJwt(key, claims({ exp: IAT + ASSERTION_MAX_TTL_S })), 'demo').ok);
  const r = v.verify(mintJwt(key, claims({ exp: IAT + ASSERTION_MAX_TTL_S + 1 })), 'demo');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'lifetime too long');
});

test('issued in the future beyond the skew → not ok; within the skew → ok', (t) => {
  const { key, v } = setup();
  t.true(v.verify(mintJwt(key, claims({ iat: IAT + 30, exp: IAT + 30 + 300 })), 'demo').ok);
  const r = v.verify(mintJwt(key, claims({ iat: IAT + 31, exp: IAT + 31 + 300 })), 'demo');
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'issued in the future');
});

test('malformed and tampered tokens → not ok, never a throw', (t) => {
  const { key, v } = setup();
  const tok = mintJwt(key, claims());
  const [h, p, s] = tok.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify(claims({ roles: ['root'] }))).toString('base64url');
  for (const bad of ['', 'a', 'a.b', 'a.b.c', `${h}.${p}`, `${h}.${forged}.${s}`, `${h}.${p}.${s}.${s}`, `${h}.${p}.`]) {
    t.notThrows(() => t.false(v.verify(bad, 'demo').ok, bad.slice(0, 40)));
  }
});

test('a refused token is not cached as valid (the same token stays refused)', (t) => {
  const { key, v } = setup(['demo']);
  const tok = mintJwt(key, claims({ aud: 'other' }));
  t.false(v.verify(tok, 'other').ok);
  t.false(v.verify(tok, 'other').ok);
  t.false(v.verify(tok, 'demo').ok);
});

test('update() with identical material keeps working (no spurious reset)', (t) => {
  const { key, jwks, v } = setup(['demo']);
  const tok = mintJwt(key, claims());
  t.true(v.verify(tok, 'demo').ok);
  v.update(jwks, ISSUER, ['demo']);
  t.true(v.verify(tok, 'demo').ok);
});

test('second factors: optional acr and step_up_time become x-mezu-auth-acr and x-mezu-step-up-time; an assertion without them (an older edge) has neither', (t) => {
  const { key, v } = setup();
  const withMfa = v.verify(mintJwt(key, claims({ amr: ['pwd', 'otp'], acr: 'mfa', step_up_time: IAT - 5 })), 'demo');
  if (!withMfa.ok) throw new Error(withMfa.reason);
  const h = new Map<string, string>();
  for (let i = 0; i < withMfa.identity.length; i += 2) h.set(withMfa.identity[i]!, withMfa.identity[i + 1]!);
  t.is(h.get('x-mezu-auth-method'), 'pwd,otp');
  t.is(h.get('x-mezu-auth-acr'), 'mfa');
  t.is(h.get('x-mezu-step-up-time'), String(IAT - 5));
  t.true(withMfa.lines.includes('x-mezu-auth-acr: mfa\r\n'));
  const old = v.verify(mintJwt(key, claims()), 'demo');
  if (!old.ok) throw new Error(old.reason);
  t.false(old.identity.includes('x-mezu-auth-acr'));
  t.false(old.identity.includes('x-mezu-step-up-time'));
  // A value that is not a header-safe string is encoded, never passed raw.
  const odd = v.verify(mintJwt(key, claims({ acr: 'm\r\nx: y' })), 'demo');
  if (!odd.ok) throw new Error(odd.reason);
  t.false(odd.lines.includes('\r\nx: y'));
});
