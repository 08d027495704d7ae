import test from 'ava';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import type { AssertionClaims, Jwks } from '../../../wire/contract.js';
import { generateSigningKeyPem, jwkOf, KeySet, loadSigningKey, mintJwt, type SigningKey, type VerifyResult } from '../../../wire/index.js';

function newKey(): { key: SigningKey; jwks: Jwks } {
  const g = generateSigningKeyPem();
  return { key: loadSigningKey(g.kid, g.privateKeyPem, g.publicX), jwks: { keys: [jwkOf(g.kid, g.publicX)] } };
}

const claims: AssertionClaims = {
  iss: 'https://edge.example',
  aud: 'demo',
  sub: 'usr_1',
  typ: 'user',
  email: 'ada@example.com',
  name: 'Ada',
  amr: ['pwd'],
  auth_time: 1_700_000_000,
  roles: ['admin'],
  permissions: ['admin:write'],
  sid: 'ses_1',
  iat: 1_700_000_100,
  exp: 1_700_000_400,
};

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const parts = (tok: string): [string, string, string] => tok.split('.') as [string, string, string];
const decode = (seg: string): unknown => JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));

/** Verifies and asserts that it neither throws nor succeeds; returns the reason. */
function rejects(t: import('ava').ExecutionContext, ks: KeySet, token: string): string {
  let r: VerifyResult | undefined;
  t.notThrows(() => {
    r = ks.verify(token);
  }, JSON.stringify(token.slice(0, 80)));
  t.false(r!.ok, JSON.stringify(token.slice(0, 80)));
  return r!.ok ? '' : r!.reason;
}

const { key, jwks } = newKey();
const ks = new KeySet(jwks);
const good = mintJwt(key, claims);

test('generateSigningKeyPem gives a fresh kid and a 32-byte Ed25519 public key', (t) => {
  const a = generateSigningKeyPem();
  const b = generateSigningKeyPem();
  t.not(a.kid, b.kid);
  t.not(a.publicX, b.publicX);
  t.regex(a.kid, /^[A-Za-z0-9_-]{12}$/);
  t.is(Buffer.from(a.publicX, 'base64url').length, 32);
  t.regex(a.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
});

test('jwkOf builds the published JWK shape', (t) => {
  t.deepEqual(jwkOf('k1', 'XX'), { kty: 'OKP', crv: 'Ed25519', x: 'XX', kid: 'k1', alg: 'EdDSA', use: 'sig' });
});

test('a minted token has header {alg: EdDSA, kid, typ: JWT} and the claims verbatim', (t) => {
  const [h, p, s] = parts(good);
  t.deepEqual(decode(h), { alg: 'EdDSA', kid: key.kid, typ: 'JWT' });
  t.deepEqual(decode(p), claims);
  t.is(Buffer.from(s, 'base64url').length, 64);
  t.regex(good, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
});

test('a minted token verifies with the KeySet built from the JWKS', (t) => {
  t.is(ks.size, 1);
  const r = ks.verify(good);
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.claims, claims);
});

test('KeySet holds every usable key and skips entries that are not Ed25519 OKP', (t) => {
  const a = newKey();
  const b = newKey();
  const mixed = {
    keys: [
      ...a.jwks.keys,
      { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'ec' },
      { kty: 'OKP', crv: 'X25519', x: a.jwks.keys[0]!.x, kid: 'xdh' },
      { kty: 'OKP', crv: 'Ed25519', kid: 'no-x' },
      { kty: 'OKP', crv: 'Ed25519', x: b.jwks.keys[0]!.x },
      ...b.jwks.keys,
    ],
  } as unknown as Jwks;
  const set = new KeySet(mixed);
  t.is(set.size, 2);
  t.true(set.verify(mintJwt(a.key, claims)).ok);
  t.true(set.verify(mintJwt(b.key, claims)).ok);
  t.is(new KeySet({ keys: [] }).size, 0);
});

test('an empty KeySet rejects a good token', (t) => {
  t.is(rejects(t, new KeySet({ keys: [] }), good), 'unknown kid');
});

test('tampered payload fails (signature no longer matches)', (t) => {
  const [h, , s] = parts(good);
  for (const change of [{ roles: ['admin', 'root'] }, { sub: 'usr_2' }, { aud: 'other' }, { exp: claims.exp + 3600 }]) {
    t.is(rejects(t, ks, `${h}.${b64({ ...claims, ...change })}.${s}`), 'bad signature');
  }
  // Same JSON, different spacing: still a different signed input.
  t.is(rejects(t, ks, `${h}.${b64(JSON.stringify(claims, null, 1))}.${s}`), 'bad signature');
});

test('tampered signature fails', (t) => {
  const [h, p, s] = parts(good);
  const sig = Buffer.from(s, 'base64url');
  for (const i of [0, 1, 31, 32, 63]) {
    const bad = Buffer.from(sig);
    bad[i] = bad[i]! ^ 0x01;
    t.is(rejects(t, ks, `${h}.${p}.${bad.toString('base64url')}`), 'bad signature');
  }
  t.is(rejects(t, ks, `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`), 'bad signature');
  // Wrong length: truncated, extended.
  t.is(rejects(t, ks, `${h}.${p}.${sig.subarray(0, 63).toString('base64url')}`), 'bad signature');
  t.is(rejects(t, ks, `${h}.${p}.${Buffer.concat([sig, Buffer.from([0])]).toString('base64url')}`), 'bad signature');
  // Signature of another token.
  const other = mintJwt(key, { ...claims, sub: 'usr_2' });
  t.is(rejects(t, ks, `${h}.${p}.${parts(other)[2]}`), 'bad signature');
});

test('header swapped for another kid of the same set fails', (t) => {
  const second = newKey();
  const set = new KeySet({ keys: [...jwks.keys, ...second.jwks.keys] });
  const [, p, s] = parts(good);
  t.is(rejects(t, set, `${b64({ alg: 'EdDSA', kid: second.key.kid, typ: 'JWT' })}.${p}.${s}`), 'bad signature');
});

test('unknown kid fails; a token signed by a foreign key claiming a known kid fails', (t) => {
  const foreign = newKey();
  t.is(rejects(t, ks, mintJwt(foreign.key, claims)), 'unknown kid');
  // The foreign key signs but puts our kid in the header.
  const impostor = loadSigningKey(key.kid, foreign.key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 'x');
  t.is(rejects(t, ks, mintJwt(impostor, claims)), 'bad signature');
});

test('alg none is rejected (with and without a signature segment)', (t) => {
  const p = b64(claims);
  for (const alg of ['none', 'None', 'NONE']) {
    const h = b64({ alg, kid: key.kid, typ: 'JWT' });
    rejects(t, ks, `${h}.${p}.`);
    t.is(rejects(t, ks, `${h}.${p}.AAAA`), 'bad header');
    // The original signature, reused under a header that no longer names EdDSA.
    t.is(rejects(t, ks, `${h}.${p}.${parts(good)[2]}`), 'bad header');
  }
});

test('HS256 (algorithm confusion: HMAC keyed with the public key) is rejected', (t) => {
  const h = b64({ alg: 'HS256', kid: key.kid, typ: 'JWT' });
  const p = b64(claims);
  for (const secret of [key.publicX, Buffer.from(key.publicX, 'base64url'), JSON.stringify(jwks.keys[0])]) {
    const mac = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
    t.is(rejects(t, ks, `${h}.${p}.${mac}`), 'bad header');
  }
});

test('other algorithms and header shapes are rejected', (t) => {
  const p = b64(claims);
  const s = parts(good)[2];
  const headers: unknown[] = [
    { alg: 'eddsa', kid: key.kid },
    { alg: 'ES256', kid: key.kid },
    { alg: 'RS256', kid: key.kid },
    { alg: 'EdDSA' },
    { alg: 'EdDSA', kid: 7 },
    { alg: 'EdDSA', kid: null },
    { kid: key.kid },
    { alg: ['EdDSA'], kid: key.kid },
    null,
    'EdDSA',
    42,
    [],
    true,
  ];
  for (const hv of headers) t.is(rejects(t, ks, `${b64(JSON.stringify(hv))}.${p}.${s}`), 'bad header', JSON.stringify(hv));
});

test('malformed tokens fail with ok:false and never throw', (t) => {
  const [h, p, s] = parts(good);
  const malformed = [
    '',
    '.',
    '..',
    '...',
    'abc',
    h,
    `${h}.${p}`,
    `${h}.${p}.${s}.`,
    `${h}.${p}.${s}.${s}`,
    `.${p}.${s}`,
    `${h}..${s}`,
    `${h}.${p}.`,
    `${h}.${p}..`,
    `.${h}.${p}.${s}`,
    `${h}.${p}.${s}.extra`,
    `!!!!.${p}.${s}`,
    `${h}.!!!!.${s}`,
    `${b64('not json')}.${p}.${s}`,
    `${h}.${b64('not json')}.${s}`,
    `${h}.${b64('{"sub":')}.${s}`,
    `${b64('{')}.${p}.${s}`,
    `${h}.${Buffer.from([0xff, 0xfe, 0x00]).toString('base64url')}.${s}`,
    `${h}.${p}.%%%%`,
    ' ' + good,
    good.replace('.', ' . '),
  ];
  for (const tok of malformed) rejects(t, ks, tok);
  t.is(rejects(t, ks, `${h}.${p}`), 'malformed');
  t.is(rejects(t, ks, `${h}.${p}.${s}.${s}`), 'malformed');
  t.is(rejects(t, ks, `${h}..${s}`), 'malformed');
  t.is(rejects(t, ks, `.${p}.${s}`), 'malformed');
  t.is(rejects(t, ks, `${h}.${p}.`), 'malformed');
  t.is(rejects(t, ks, `${h}.${b64('not json')}.${s}`), 'malformed');
});

test('a correctly signed token whose claims lack the required fields is rejected', (t) => {
  const bad: unknown[] = [
    { ...claims, sub: undefined },
    { ...claims, sub: 1 },
    { ...claims, exp: '1700000400' },
    { ...claims, iat: undefined },
    { ...claims, aud: ['demo'] },
    null,
    'a string',
  ];
  for (const c of bad) {
    const tok = mintJwt(key, c as AssertionClaims);
    t.is(rejects(t, ks, tok), 'bad claims', JSON.stringify(c));
  }
});

test('a raw Ed25519 signature over a hand-built EdDSA token verifies (interop: no hidden framing)', (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  const input = `${b64({ alg: 'EdDSA', kid: 'hand' })}.${b64(claims)}`;
  const tok = `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  const r = new KeySet({ keys: [jwkOf('hand', x)] }).verify(tok);
  t.true(r.ok);
});

// The signature segment is decoded with Node's lenient base64url decoder, which
// skips characters outside the alphabet, accepts `+`/`/`/`=` as well, and
// ignores the unused low bits of the last character. So one signed assertion
// has many textual spellings that all verify: a token that is not canonical
// base64url (RFC 7515 §2, RFC 4648 §3.5) passes, and anything keyed on the
// token text (the Warpgate's verification cache, a future deny-list of
// assertions) can be sidestepped by respelling the same token.
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
test('a signature segment that is not canonical base64url is rejected', (t) => {
  const [h, p, s] = parts(good);
  // 64 bytes → 86 chars; the last char carries 2 bits and 4 unused ones: flip an unused one.
  const last = B64URL.indexOf(s[s.length - 1]!);
  const respelled = s.slice(0, -1) + B64URL[last ^ 1]!;
  t.false(ks.verify(`${h}.${p}.${respelled}`).ok, 'non-zero padding bits');
  t.false(ks.verify(`${h}.${p}.${s.slice(0, 10)}*${s.slice(10)}`).ok, 'a character outside the alphabet');
  t.false(ks.verify(`${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}=`).ok, 'standard base64 alphabet and padding');
});
