import test from 'ava';
import { IdentityHeader, isProductCookie, isReservedHeader, RESERVED_HEADER_PREFIX, Tunnel } from '../../../src/contract/index.js';
import { SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE } from '../../../src/session/index.js';
import { CSRF_COOKIE_PLAIN, CSRF_COOKIE_SECURE } from '../../../src/login/index.js';
import { CONSOLE_SESSION_COOKIE_PLAIN, CONSOLE_SESSION_COOKIE_SECURE, CONSOLE_CSRF_COOKIE_PLAIN, CONSOLE_CSRF_COOKIE_SECURE } from '../../../src/console/server.js';

// Brief §3: every header whose name, lower-cased with `_` read as `-`, starts
// with `x-mezu-` is reserved. A CGI/WSGI origin folds `_` and `-` into the same
// variable, so `X_Mezu_User_Id` would impersonate `X-Mezu-User-Id` if it slipped through.

const reserved = [
  'x-mezu-',
  'X-MEZU-',
  'x-MeZu-',
  'X-Mezu-User-Id',
  'x-mezu-user-id',
  'X-MEZU-USER-ID',
  'x_mezu_user_id',
  'X_MEZU_USER_ID',
  'X_MEZU-roles',
  'x-mezu_roles',
  'x_mezu-roles',
  'X-mezu_Assertion',
  'x_MeZu_',
  'X_mEzU-',
  'x-mezu--',
  'x-mezu-x',
  'x-mezu-project',
  'x-mezu-assertion',
  'x-mezu-request-id',
  'x-mezu-' + 'a'.repeat(500),
];

const notReserved = [
  '',
  'x',
  'x-',
  'x-mez',
  'x-mezu',
  'X-MEZU',
  'x_mezu',
  'x-mezux',
  'x-mezuxy',
  'x-mezu.user',
  'x-mez-',
  'x-mez-user-id',
  'x-mezz-user',
  'mezu-x',
  'mezu-user-id',
  'xx-mezu-',
  'xx-mezu-user-id',
  ' x-mezu-user-id',
  '-x-mezu-user-id',
  'y-mezu-user-id',
  'x--mezu-',
  'x mezu-',
  'x-mezu user',
  'x-m\u0435zu-user', // Cyrillic "е" in place of "e"
  'x\u2010mezu-user', // Unicode hyphen
  'x-mezu\u2010user',
  'x-mezu:',
  'x-forwarded-for',
  'authorization',
  'cookie',
  'content-type',
];

for (const name of reserved) {
  test(`reserved: ${JSON.stringify(name.length > 40 ? name.slice(0, 40) + '…' : name)}`, (t) => {
    t.true(isReservedHeader(name));
  });
}

for (const name of notReserved) {
  test(`not reserved: ${JSON.stringify(name)}`, (t) => {
    t.false(isReservedHeader(name));
  });
}

test('every case and separator spelling of every identity header is reserved', (t) => {
  const names = [...Object.values(IdentityHeader), Tunnel.projectHeader];
  for (const canonical of names) {
    // All 2^k combinations of `-`/`_` for the k dashes, in three casings.
    const dashes = [...canonical].flatMap((c, i) => (c === '-' ? [i] : []));
    for (let mask = 0; mask < 1 << dashes.length; mask++) {
      const chars = [...canonical];
      dashes.forEach((pos, bit) => {
        if (mask & (1 << bit)) chars[pos] = '_';
      });
      const spelled = chars.join('');
      for (const v of [spelled, spelled.toUpperCase(), spelled.replace(/(^|[-_])([a-z])/g, (_m, s: string, c: string) => s + c.toUpperCase())]) {
        t.true(isReservedHeader(v), v);
      }
    }
  }
});

test('every single-character mutation of the prefix itself is not reserved unless it is a case or `_` variant', (t) => {
  const prefix = RESERVED_HEADER_PREFIX;
  t.is(prefix, 'x-mezu-');
  for (let i = 0; i < prefix.length; i++) {
    for (let code = 0x20; code < 0x7f; code++) {
      const ch = String.fromCharCode(code);
      const name = prefix.slice(0, i) + ch + prefix.slice(i + 1) + 'user-id';
      const folded = ch === '_' ? '-' : ch.toLowerCase();
      t.is(isReservedHeader(name), folded === prefix[i], JSON.stringify(name));
    }
  }
});

test('the answer does not depend on what follows the prefix', (t) => {
  for (const tail of ['', 'a', 'user-id', '\u00e9', '\u0000', '_', '-', ' ', '=value']) {
    t.true(isReservedHeader('X_Mezu-' + tail));
    t.false(isReservedHeader('X_Mezx-' + tail));
  }
});

// Every cookie the product sets is stripped before forwarding by one predicate: each name it sets must
// be one the predicate knows, or a new cookie would reach applications (as the Console's once did).
test('isProductCookie: every cookie name the product sets, and only names with a product prefix', (t) => {
  for (const name of [SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE, CSRF_COOKIE_PLAIN, CSRF_COOKIE_SECURE, CONSOLE_SESSION_COOKIE_PLAIN, CONSOLE_SESSION_COOKIE_SECURE, CONSOLE_CSRF_COOKIE_PLAIN, CONSOLE_CSRF_COOKIE_SECURE]) {
    t.true(isProductCookie(name), name);
  }
  for (const name of ['mezu_', 'MEZU_Anything', '__host-mezu_x', '__Secure-mezu_x']) t.true(isProductCookie(name), name);
  for (const name of ['', 'mezu', 'mezu-session', 'xmezu_session', 'my_mezu_pref', '__Host-session', '__Host-mezu', ' mezu_session']) t.false(isProductCookie(name), name);
  // A slice of a longer string, read in place.
  t.true(isProductCookie('a=1; mezu_csrf=x', 5, 14));
  t.false(isProductCookie('a=1; mezu_csrf=x', 0, 3));
});
