import test from 'ava';
import {
  API_KEY_PREFIX,
  findCookie,
  hashToken,
  isTokenSyntax,
  newApiKey,
  newId,
  newSessionToken,
  parseApiKey,
  secretMatches,
  SESSION_COOKIE_PLAIN,
  SESSION_COOKIE_SECURE,
} from '../../../src/session/index.js';

const N = SESSION_COOKIE_PLAIN;
const TOKEN = 'A'.repeat(43);

test('cookie names follow the brief', (t) => {
  t.is(SESSION_COOKIE_SECURE, '__Host-mezu_session');
  t.is(SESSION_COOKIE_PLAIN, 'mezu_session');
});

// ── findCookie ──

test('findCookie: absent → empty string', (t) => {
  t.is(findCookie('', N), '');
  t.is(findCookie('a=1', N), '');
  t.is(findCookie('a=1; b=2', N), '');
  t.is(findCookie(N, N), '', 'name without = is not a pair');
  t.is(findCookie(`${N}; a=1`, N), '');
  t.is(findCookie(';;; ;', N), '');
});

test('findCookie: present alone, first, middle, last', (t) => {
  t.is(findCookie(`${N}=v1`, N), 'v1');
  t.is(findCookie(`${N}=v1; a=1; b=2`, N), 'v1');
  t.is(findCookie(`a=1; ${N}=v1; b=2`, N), 'v1');
  t.is(findCookie(`a=1; b=2; ${N}=v1`, N), 'v1');
  t.is(findCookie(`a=1;${N}=v1;b=2`, N), 'v1', 'no space after ;');
});

test('findCookie: leading spaces and semicolons are skipped; the value is trimmed', (t) => {
  t.is(findCookie(`   ${N}=v1`, N), 'v1');
  t.is(findCookie(`;  ; ${N}=v1`, N), 'v1');
  t.is(findCookie(`a=1;    ${N}=v1   ; b=2`, N), 'v1');
  t.is(findCookie(`${N}=  v1  `, N), 'v1');
});

test('findCookie: the value may contain `=` (base64 padding) and is cut at `;`', (t) => {
  t.is(findCookie(`${N}=ab==; a=1`, N), 'ab==');
  t.is(findCookie(`a=x=y; ${N}=v`, N), 'v');
});

test('findCookie: an empty value reads as absent', (t) => {
  t.is(findCookie(`${N}=`, N), '');
  t.is(findCookie(`${N}=; a=1`, N), '');
});

test('findCookie: duplicates with the same value are fine', (t) => {
  t.is(findCookie(`${N}=v1; ${N}=v1`, N), 'v1');
  t.is(findCookie(`${N}=v1; a=1; ${N}=v1; ${N}=v1`, N), 'v1');
});

test('findCookie: duplicates with different values → "" (ambiguous, cookie tossing)', (t) => {
  // A sibling subdomain can set `mezu_session` for the parent domain; the
  // browser then sends both, in an order the attacker can influence.
  t.is(findCookie(`${N}=v1; ${N}=v2`, N), '');
  t.is(findCookie(`${N}=v1; a=1; ${N}=v2`, N), '');
  t.is(findCookie(`${N}=v1; ${N}=v1; ${N}=v2`, N), '');
  t.is(findCookie(`${N}=v2; ${N}=v1; ${N}=v1`, N), '');
  t.is(findCookie(`${N}=v1; ${N}=`, N), '', 'a later empty duplicate also makes it ambiguous');
});

test('findCookie: a name that is a suffix or prefix of another name does not match', (t) => {
  t.is(findCookie(`x${N}=evil`, N), '');
  t.is(findCookie(`x${N}=evil; a=1`, N), '');
  t.is(findCookie(`${N}x=evil`, N), '');
  t.is(findCookie(`__Host-${N}=evil`, N), '');
  t.is(findCookie(`x${N}=evil; ${N}=good`, N), 'good');
  t.is(findCookie(`${N}=good; x${N}=evil`, N), 'good');
  t.is(findCookie(`${N}_old=evil; ${N}=good; ${N}2=evil`, N), 'good');
  t.is(findCookie(`${N}=good`, SESSION_COOKIE_SECURE), '');
  t.is(findCookie(`${SESSION_COOKIE_SECURE}=good`, SESSION_COOKIE_SECURE), 'good');
  t.is(findCookie(`a=${N}=evil`, N), '', 'name inside another cookie value');
});

test('findCookie: case matters (cookie names are case-sensitive)', (t) => {
  t.is(findCookie(`MEZU_SESSION=v1`, N), '');
  t.is(findCookie(`Mezu_Session=v1; ${N}=v2`, N), 'v2');
});

test('findCookie: a space before `=` is not the cookie', (t) => {
  t.is(findCookie(`${N} =v1`, N), '');
});

// ── tokens and ids ──

test('newSessionToken: 43 base64url chars (256 bits), distinct every time', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const tok = newSessionToken();
    t.is(tok.length, 43);
    t.regex(tok, /^[A-Za-z0-9_-]{43}$/);
    t.is(Buffer.from(tok, 'base64url').length, 32);
    t.true(isTokenSyntax(tok));
    seen.add(tok);
  }
  t.is(seen.size, 200);
});

test('isTokenSyntax: only 43 base64url chars', (t) => {
  t.true(isTokenSyntax(TOKEN));
  t.true(isTokenSyntax('-_' + 'a'.repeat(41)));
  t.false(isTokenSyntax(''));
  t.false(isTokenSyntax('A'.repeat(42)));
  t.false(isTokenSyntax('A'.repeat(44)));
  t.false(isTokenSyntax('A'.repeat(42) + '='));
  t.false(isTokenSyntax('A'.repeat(42) + '+'));
  t.false(isTokenSyntax('A'.repeat(42) + '/'));
  t.false(isTokenSyntax('A'.repeat(42) + ' '));
  t.false(isTokenSyntax('A'.repeat(42) + '\u00e9'));
});

test('hashToken: deterministic, not the token, differs per token, 32-byte SHA-256', (t) => {
  const a = newSessionToken();
  const b = newSessionToken();
  t.is(hashToken(a), hashToken(a));
  t.not(hashToken(a), a);
  t.not(hashToken(a), hashToken(b));
  t.false(hashToken(a).includes(a));
  t.is(Buffer.from(hashToken(a), 'base64url').length, 32);
  // Known answer: SHA-256("abc").
  t.is(Buffer.from(hashToken('abc'), 'base64url').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('newId: prefix + 16 random base64url chars', (t) => {
  const a = newId('ses_');
  const b = newId('ses_');
  t.regex(a, /^ses_[A-Za-z0-9_-]{16}$/);
  t.not(a, b);
});

// ── API keys ──

test('newApiKey / parseApiKey round trip', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const k = newApiKey();
    t.is(k.text, `${API_KEY_PREFIX}${k.id}_${k.secret}`);
    t.is(k.id.length, 16);
    t.is(k.secret.length, 43);
    t.is(k.text.length, 64);
    // Ids and secrets can themselves contain `_`: the split is by position.
    t.deepEqual(parseApiKey(k.text), { id: k.id, secret: k.secret });
    seen.add(k.id);
    seen.add(k.secret);
  }
  t.is(seen.size, 400);
});

test('parseApiKey: ids and secrets that contain `_` and `-` parse by position', (t) => {
  const id = '_-_-abcdEFGH_-12';
  const secret = '_'.repeat(10) + '-'.repeat(10) + 'a'.repeat(23);
  t.deepEqual(parseApiKey(`mzk_${id}_${secret}`), { id, secret });
});

test('parseApiKey rejections', (t) => {
  const k = newApiKey();
  const id = 'abcdefghijklmnop';
  const secret = 'S'.repeat(43);
  const rejected = [
    '',
    'mzk_',
    k.text.slice(0, -1),
    k.text + 'A',
    ` ${k.text}`.slice(0, 64),
    `${k.text} `,
    `Bearer ${k.text}`,
    `MZK_${id}_${secret}`,
    `mzx_${id}_${secret}`,
    `mzk-${id}_${secret}`,
    `mzk_${id}-${secret}`,
    `mzk_${id}.${secret}`,
    `mzk_${id.slice(0, 15)}_${secret}A`, // separator at the wrong place
    `mzk_${id}A_${secret.slice(1)}`,
    `mzk_${id.slice(0, 15)}+_${secret}`,
    `mzk_${id.slice(0, 15)}=_${secret}`,
    `mzk_${id.slice(0, 15)}/_${secret}`,
    `mzk_${id}_${secret.slice(0, 42)}+`,
    `mzk_${id}_${secret.slice(0, 42)}=`,
    `mzk_${id}_${secret.slice(0, 42)} `,
    `mzk_${id}_${secret.slice(0, 42)}\u00e9`,
    `mzk_${id.slice(0, 15)} _${secret}`,
  ];
  for (const text of rejected) t.is(parseApiKey(text), null, JSON.stringify(text));
  t.deepEqual(parseApiKey(`mzk_${id}_${secret}`), { id, secret });
});

test('secretMatches: only the secret whose hash is stored matches', (t) => {
  const k = newApiKey();
  const stored = hashToken(k.secret);
  t.true(secretMatches(k.secret, stored));
  t.false(secretMatches(newApiKey().secret, stored));
  t.false(secretMatches(k.secret.slice(0, 42) + (k.secret.endsWith('A') ? 'B' : 'A'), stored));
  t.false(secretMatches('', stored));
  t.false(secretMatches(k.secret, ''));
  t.false(secretMatches(k.secret, stored.slice(0, -1)), 'truncated hash');
  t.false(secretMatches(k.secret, stored + 'A'), 'longer hash');
  t.false(secretMatches(k.secret, k.secret), 'the plain secret stored as if it were the hash');
  t.false(secretMatches(stored, stored), 'the hash presented as the secret');
});
