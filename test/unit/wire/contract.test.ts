import test from 'ava';
import { IdentityHeader, isProductCookie, isReservedHeader, PRODUCT_COOKIE_PREFIX, RESERVED_HEADER_PREFIX, stripProductCookies, Tunnel } from '../../../wire/contract.js';
import { SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE } from '../../../src/session/index.js';
import { CSRF_COOKIE_PLAIN, CSRF_COOKIE_SECURE } from '../../../src/login/index.js';
import { CONSOLE_SESSION_COOKIE_PLAIN, CONSOLE_SESSION_COOKIE_SECURE, CONSOLE_CSRF_COOKIE_PLAIN, CONSOLE_CSRF_COOKIE_SECURE } from '../../../src/console/server.js';

// The contract: every header whose name, lower-cased with `_` read as `-`, starts
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

// ── stripProductCookies ──

test('stripProductCookies: every mezu_ / __Host-mezu_ cookie goes, in any case; the application\'s stay in order', (t) => {
  t.is(stripProductCookies(`mezu_session=s; a=1; mezu_console_session=o; mezu_console_csrf=x; mezu_csrf=y; b=2`), 'a=1; b=2');
  t.is(stripProductCookies('__Host-mezu_console_session=o;__Host-mezu_csrf=c;c=3'), 'c=3');
  t.is(stripProductCookies('MEZU_SESSION=s; __HOST-MEZU_X=1; __Secure-mezu_y=2; d=4'), 'd=4');
  t.is(stripProductCookies('mezu_session=s'), '');
  t.is(stripProductCookies('mezu_session ; mezu_x=1'), '', 'valueless pairs and a space before the end of the name');
  // Look-alikes are the application's: only a name that starts with a product prefix is ours.
  t.is(stripProductCookies('my_mezu_pref=1; xmezu_a=2; mezu=3; mezu-x=4; __Host-app=5; a=mezu_session'), 'my_mezu_pref=1; xmezu_a=2; mezu=3; mezu-x=4; __Host-app=5; a=mezu_session');
});

test('stripProductCookies: a header without "mezu_" in it is returned as it is', (t) => {
  const h = 'a=1;b=2;  c=3';
  t.is(stripProductCookies(h), h);
  t.is(stripProductCookies(''), '');
});

/** Reference: split, trim, drop empty parts and product names (case-insensitive prefixes), join; the header as it is when nothing was dropped. */
function removeProductReference(header: string): string {
  const kept: string[] = [];
  let removed = false;
  for (const p of header.split(';')) {
    const t = p.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    const name = (eq === -1 ? t : t.slice(0, eq)).trim().toLowerCase();
    if (['mezu_', '__host-mezu_', '__secure-mezu_'].some((x) => name.startsWith(x))) {
      removed = true;
      continue;
    }
    kept.push(t);
  }
  return removed ? kept.join('; ') : header;
}

test('stripProductCookies: the same result as split/trim/filter/join on random headers', (t) => {
  const pieces = ['mezu_session', 'mezu_console_session=o', 'MEZU_CSRF', '__Host-mezu_x', '__host-MEZU_y=1', '__Secure-mezu_z', 'xmezu_', 'mezu', '_', 'a=1', 'b', '=', ';', ';', ' ', '\t', '\u00a0', '\ufeff', '\u200b', 'x'];
  let seed = 4242;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let k = 0; k < 20000; k++) {
    let h = '';
    const parts = 1 + rnd(8);
    for (let j = 0; j < parts; j++) h += pieces[rnd(pieces.length)];
    const want = removeProductReference(h);
    const got = stripProductCookies(h);
    if (got !== want) return t.fail(`stripProductCookies(${JSON.stringify(h)}) = ${JSON.stringify(got)}, reference ${JSON.stringify(want)}`);
  }
  t.pass();
});

// ── product cookies: `mezu_*`, optionally behind `__Host-` or `__Secure-`, any case ──

const productCookies = [
  'mezu_session',
  'mezu_console_session',
  'mezu_csrf',
  'mezu_',
  'mezu_anything-new',
  'MEZU_SESSION',
  'Mezu_Session',
  'mEzU_x',
  '__Host-mezu_session',
  '__Host-mezu_console_session',
  '__host-mezu_session',
  '__HOST-MEZU_SESSION',
  '__Host-Mezu_Csrf',
  '__Secure-mezu_session',
  '__secure-mezu_x',
  '__SECURE-MEZU_',
];

const otherCookies = [
  '',
  'm',
  'mezu',
  'MEZU',
  'mezu-session',
  'mezusession',
  'mezu.session',
  'xmezu_session',
  'x__Host-mezu_session',
  '_mezu_session',
  '___Host-mezu_session',
  '__Host-',
  '__Host-mezu',
  '__Host_mezu_session',
  '__Hostmezu_session',
  '__Secure-',
  '__Secure-mezu',
  '__Secure_mezu_x',
  '__Host-__Host-mezu_x',
  '__Host-__Secure-mezu_x',
  ' mezu_session',
  'session',
  '_ga',
  'm\u0435zu_session', // Cyrillic "е"
];

for (const name of productCookies) {
  test(`product cookie: ${JSON.stringify(name)}`, (t) => {
    t.true(isProductCookie(name));
  });
}
for (const name of otherCookies) {
  test(`not a product cookie: ${JSON.stringify(name)}`, (t) => {
    t.false(isProductCookie(name));
  });
}

test('the product cookie prefix is mezu_, and every cookie name the product sets carries it', (t) => {
  t.is(PRODUCT_COOKIE_PREFIX, 'mezu_');
  for (const n of ['mezu_session', '__Host-mezu_session', 'mezu_console_session', '__Host-mezu_console_session', 'mezu_csrf']) t.true(isProductCookie(n), n);
});

test('stripProductCookies: nothing to strip → the very same string (no allocation, byte for byte)', (t) => {
  for (const v of ['', 'a=1', 'a=1;b=2', ' a = 1 ;;b=2 ; ', 'q="x; y"', 'mezu=1; xmezu_a=2; __Host-mezu=3', 'v=mezu_inside_a_value', 'MEZU=1; Mezu-x=2']) {
    t.is(stripProductCookies(v), v, JSON.stringify(v));
  }
});

test('stripProductCookies: every product cookie goes, the others keep their bytes and order, re-joined with "; "', (t) => {
  t.is(stripProductCookies('mezu_session=tok'), '');
  t.is(stripProductCookies('__Host-mezu_session=tok'), '');
  t.is(stripProductCookies('a=1; mezu_session=tok; b=2'), 'a=1; b=2');
  t.is(stripProductCookies('mezu_session=tok; a=1'), 'a=1');
  t.is(stripProductCookies('a=1; mezu_session=tok'), 'a=1');
  t.is(stripProductCookies('a=1;mezu_session=tok;b=2'), 'a=1; b=2');
  t.is(stripProductCookies('a=1;  MEZU_SESSION=tok ;\tb=x=y ; ;c'), 'a=1; b=x=y; c');
  t.is(stripProductCookies('__Secure-mezu_a=1; __Host-Mezu_B=2; mezu_c=3; keep="v a l"'), 'keep="v a l"');
  t.is(stripProductCookies('mezu_a=1; mezu_b=2; __host-mezu_c=3'), '');
  t.is(stripProductCookies(' mezu_session = tok ; a=1'), 'a=1', 'spaces around the name');
  t.is(stripProductCookies('mezu_flag; a=1'), 'a=1', 'a product cookie without `=`');
  t.is(stripProductCookies('a=mezu_session; mezu_session=x'), 'a=mezu_session', 'a value that looks like a name is a value');
  t.is(stripProductCookies('_ga=GA1.1.1; theme=dark; mezu_session=tok; x__Host-mezu_session=keep'), '_ga=GA1.1.1; theme=dark; x__Host-mezu_session=keep');
});

test('stripProductCookies: what remains never contains a product cookie (random mixes)', (t) => {
  const names = [...productCookies.filter((n) => n !== ''), 'a', 'theme', '_ga', 'mezu', 'xmezu_a', '__Host-id', 'MEZU'];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 500; i++) {
    const pairs: string[] = [];
    for (let k = rnd(6); k >= 0; k--) pairs.push(`${names[rnd(names.length)]}=v${k}`);
    const seps = [';', '; ', ' ;  ', ';\t'];
    const header = pairs.reduce((acc, p, j) => (j === 0 ? p : acc + seps[rnd(seps.length)] + p), '');
    const out = stripProductCookies(header);
    const kept = out === '' ? [] : out.split('; ');
    for (const p of kept) t.false(isProductCookie(p.slice(0, p.indexOf('=')).trim()), `${header} → ${out}`);
    const expected = pairs.filter((p) => !isProductCookie(p.slice(0, p.indexOf('='))));
    if (expected.length === pairs.length) t.is(out, header);
    else t.deepEqual(kept, expected, header);
  }
});
