import test from 'ava';
import { isForwardableQuery, normalizePath, routeKey } from '../../../src/route/index.js';

/** [input, normalized path]: what rules are matched against and what is forwarded. */
const accepted: [string, string][] = [
  ['/', '/'],
  ['/a', '/a'],
  ['/a/b', '/a/b'],
  ['/a/b/', '/a/b/'],
  ['/api/v1/users', '/api/v1/users'],
  ['/a.b/c.d', '/a.b/c.d'],
  ['/.well-known/jwks.json', '/.well-known/jwks.json'],
  ['/a/...', '/a/...'],
  ['/a/.b', '/a/.b'],
  ['/a/..b', '/a/..b'],
  // Repeated slashes merge.
  ['//a///b', '/a/b'],
  ['//', '/'],
  ['/a//', '/a/'],
  // Dot-segments (RFC 3986 §5.2.4); a path ending in one names a directory.
  ['/a/./b', '/a/b'],
  ['/./a', '/a'],
  ['/.', '/'],
  ['/a/b/.', '/a/b/'],
  ['/a/b/./', '/a/b/'],
  ['/a/..', '/'],
  ['/a/../', '/'],
  ['/a/b/..', '/a/'],
  ['/a/b/../c', '/a/c'],
  ['/a/b/../../c/./d/', '/c/d/'],
  ['/a/.//b', '/a/b'],
  // Escaped dots are dots: escapes are decoded before segments are read.
  ['/a/%2e%2e/b', '/b'],
  ['/a/%2E./b', '/b'],
  ['/a/.%2e/b', '/b'],
  ['/a/%2e/b', '/a/b'],
  ['/a/b/%2e%2E', '/a/'],
  // Unreserved escapes decode; every other escape stays, with upper-case hex.
  ['/%41%42', '/AB'],
  ['/%7e%2D%5f%30', '/~-_0'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  ['/caf%C3%A9', '/caf%C3%A9'],
  ['/a%20b', '/a%20b'],
  ['/a%3fb', '/a%3Fb'],
  ['/a%23b', '/a%23b'],
  ['/100%25', '/100%25'],
  ['/%252e%252e/x', '/%252e%252e/x'], // decoded once only: `%25` stays `%25`
  // Escaped bytes that form strict UTF-8 stay escaped (upper-case hex).
  ['/%e6%97%a5%e6%9c%ac', '/%E6%97%A5%E6%9C%AC'],
  ['/stra%C3%9Fe', '/stra%C3%9Fe'], // ß: its full upper case is "SS", not a simple mapping
  ['/%F0%9F%98%80', '/%F0%9F%98%80'],
  // Printable ASCII other than the rejected characters passes unchanged.
  ["/a:b@c!$&'()*+,=~", "/a:b@c!$&'()*+,=~"],
  ['/a"b<c>{d}|^`[e]', '/a"b<c>{d}|^`[e]'],
];

/** [input, a word the reason must contain] */
const rejected: [string, string][] = [
  ['', 'start with'],
  ['a/b', 'start with'],
  ['*', 'start with'],
  ['http://x/a', 'start with'],
  // Traversal above the root.
  ['/..', 'root'],
  ['/../a', 'root'],
  ['/a/../..', 'root'],
  ['/a/../../b', 'root'],
  ['/%2e%2e', 'root'],
  ['/a/%2E%2E/%2e%2e/etc/passwd', 'root'],
  // `;`: servlet containers drop `;params` (and would traverse with `..;`), other origins keep them.
  ['/docs/..;/admin', ';'],
  ['/..;/admin', ';'],
  ['/docs/.;x/', ';'],
  ['/a/%2e%2e;x/b', ';'],
  ['/a/..;', ';'],
  ['/a;b=c/d', ';'],
  ['/admin;jsessionid=1', ';'],
  ['/a%3bb', '%3B'],
  ['/a%3B/b', '%3B'],
  // Overlong, surrogate, truncated and out-of-range UTF-8 in escapes.
  ['/docs/%c0%ae%c0%ae/admin', 'UTF-8'],
  ['/%c0%af', 'UTF-8'],
  ['/%e0%80%af', 'UTF-8'],
  ['/%f0%80%80%af', 'UTF-8'],
  ['/%ed%a0%80', 'UTF-8'],
  ['/%f4%90%80%80', 'UTF-8'],
  ['/%c3', 'UTF-8'],
  ['/%c3x', 'UTF-8'],
  ['/%e6%97', 'UTF-8'],
  ['/%80', 'UTF-8'],
  ['/%ff', 'UTF-8'],
  // Characters that NFKC, simple case mapping or a best-fit code page turn into ASCII.
  ['/%ef%bc%8e%ef%bc%8e/admin', 'ASCII'], // full-width ．．
  ['/docs%EF%BC%8Fadmin', 'ASCII'], // full-width ／
  ['/%EF%BC%A1dmin', 'ASCII'], // full-width Ａ
  ['/%E2%84%AAey', 'ASCII'], // Kelvin sign → k
  ['/%C5%BFecret', 'ASCII'], // long s → S
  ['/adm%C4%B1n', 'ASCII'], // dotless ı → I
  ['/%C4%B0d', 'ASCII'], // İ → i + combining dot
  ['/a%C2%A0b', 'ASCII'], // NBSP → space
  ['/a%EF%AC%81b', 'ASCII'], // ﬁ ligature → fi
  ['/a%E2%88%95b', 'ASCII'], // ∕ division slash (best fit: /)
  ['/a%C2%A5b', 'ASCII'], // ¥ (best fit in code page 932: \)
  ['/a%E2%80%A5b', 'ASCII'], // ‥ two-dot leader → ..
  // Escaped separators: the app would see a different path structure.
  ['/a%2fb', '%2F'],
  ['/a%2Fb', '%2F'],
  ['/a%5Cb', '%5C'],
  ['/a%5cb', '%5C'],
  // Literal characters that must never be in a path.
  ['/a\\b', 'backslash'],
  ['/a\\..\\b', 'backslash'],
  ['/a\u0000b', 'control'],
  ['/a\nb', 'control'],
  ['/a\rb', 'control'],
  ['/a\tb', 'control'],
  ['/a\u007fb', 'control'],
  ['/a b', 'space'],
  ['/a#b', '#'],
  ['/a?b', '?'],
  ['/caf\u00e9', 'non-ASCII'],
  ['/\u2215etc', 'non-ASCII'],
  // Encoded control characters.
  ['/%00', 'control'],
  ['/a%0ab', 'control'],
  ['/a%0D%0Ab', 'control'],
  ['/a%1f', 'control'],
  ['/a%7F', 'control'],
  // Malformed escapes.
  ['/a%', 'malformed'],
  ['/a%4', 'malformed'],
  ['/a%zz', 'malformed'],
  ['/a%4g', 'malformed'],
  ['/a%%41', 'malformed'],
  ['/%2', 'malformed'],
];

/** The match key of a normalized path: ASCII letters lower-cased outside escapes, one trailing slash dropped. */
function keyOf(path: string): string {
  const k = path.replace(/%[0-9A-F]{2}|[A-Z]/g, (m) => (m.length === 1 ? m.toLowerCase() : m));
  return k.length > 1 && k.endsWith('/') ? k.slice(0, -1) : k;
}

for (const [input, expected] of accepted) {
  test(`normalizes ${JSON.stringify(input)} → ${JSON.stringify(expected)}`, (t) => {
    t.deepEqual(normalizePath(input), { ok: true, path: expected, key: keyOf(expected) });
  });
}

test('the match key folds ASCII case and one trailing slash, never escapes', (t) => {
  const cases: [string, string, string][] = [
    ['/ADMIN/Panel', '/ADMIN/Panel', '/admin/panel'],
    ['/admin/', '/admin/', '/admin'],
    ['/Admin//', '/Admin/', '/admin'],
    ['/', '/', '/'],
    ['//', '/', '/'],
    ['/A/%2e%2e/B/', '/B/', '/b'],
    ['/Caf%C3%A9/%3F', '/Caf%C3%A9/%3F', '/caf%C3%A9/%3F'],
    ['/x%41', '/xA', '/xa'],
    ['/api/v1', '/api/v1', '/api/v1'],
  ];
  for (const [input, path, key] of cases) t.deepEqual(normalizePath(input), { ok: true, path, key }, input);
});

test('routeKey folds rule paths the same way as requests', (t) => {
  t.is(routeKey('/API/V1/*'), '/api/v1/*');
  t.is(routeKey('/*'), '/*');
  t.is(routeKey('/Health/'), '/health');
  t.is(routeKey('/'), '/');
  t.is(routeKey('/a%C3%A9'), '/a%C3%A9');
});

test('a query is forwardable when it is printable ASCII without "#"', (t) => {
  for (const q of ['a=1', 'a=1&b=%20x', "x=/..;/!$&'()*+,;=:@?/", 'q=%23']) t.true(isForwardableQuery(q), q);
  for (const q of ['a=1#frag', 'a b', 'a=\u00e9', 'a=\u0001', 'a=\u007f', 'a=\tb']) t.false(isForwardableQuery(q), JSON.stringify(q));
});

for (const [input, word] of rejected) {
  test(`rejects ${JSON.stringify(input)}`, (t) => {
    const r = normalizePath(input);
    t.false(r.ok);
    if (!r.ok) t.true(r.reason.includes(word), `reason ${JSON.stringify(r.reason)} should mention ${word}`);
  });
}

test('table sizes stay meaningful', (t) => {
  t.true(accepted.length + rejected.length >= 40);
});

test('output is a fixed point: normalizing a normalized path changes nothing', (t) => {
  for (const [, expected] of accepted) {
    t.deepEqual(normalizePath(expected), { ok: true, path: expected, key: keyOf(expected) }, expected);
  }
});

test('fast path returns the very same string', (t) => {
  // Build the input at run time so identity is not just string interning.
  const raw = ['', 'api', 'v1', `users${Date.now() % 10}`].join('/');
  const r = normalizePath(raw);
  t.true(r.ok);
  if (r.ok) {
    t.is(r.path, raw);
    t.is(r.key, raw);
  }
});

test('rejections are stable prebuilt values', (t) => {
  // The hot path must not allocate on the reject side either.
  t.is(normalizePath('/..'), normalizePath('/a/../..'));
  t.is(normalizePath('/a%2f'), normalizePath('/b%2F'));
});

test('every byte above 0x7E is rejected, every printable byte except the listed ones passes', (t) => {
  const refused = new Set(['\\', ' ', '#', '?', '%', ';']);
  for (let c = 0x20; c <= 0xff; c++) {
    const ch = String.fromCharCode(c);
    const r = normalizePath(`/x${ch}y`);
    if (c > 0x7e || refused.has(ch)) t.false(r.ok, `0x${c.toString(16)} must be refused`);
    else t.true(r.ok, `0x${c.toString(16)} must pass`);
  }
});

test('every encoded control character is rejected, every other escape is kept or decoded', (t) => {
  for (let v = 0; v <= 0xff; v++) {
    const hex = v.toString(16).padStart(2, '0');
    const r = normalizePath(`/x%${hex}y`);
    if (v < 0x20 || v === 0x7f || v === 0x2f || v === 0x5c || v === 0x3b || v >= 0x80) {
      t.false(r.ok, `%${hex} must be refused`);
      continue;
    }
    t.true(r.ok, `%${hex} must pass`);
    if (!r.ok) continue;
    const ch = String.fromCharCode(v);
    const unreserved = /^[A-Za-z0-9\-._~]$/.test(ch);
    t.is(r.path, unreserved ? `/x${ch}y` : `/x%${hex.toUpperCase()}y`, `%${hex}`);
  }
});

test('random paths: every accepted result is a fixed point without //, dot-segments or lower-case escapes', (t) => {
  // Seeded xorshift so a failure is reproducible.
  let seed = 0x9e3779b9;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pieces = ['/', '/', 'a', 'b', '.', '..', '%2e', '%2E', '%41', '%c3', ';', ';x', '%', '%2f', '~', '//'];
  let acceptedCount = 0;
  for (let i = 0; i < 5000; i++) {
    let p = '/';
    const n = 1 + rand(8);
    for (let j = 0; j < n; j++) p += pieces[rand(pieces.length)];
    const r = normalizePath(p);
    if (!r.ok) continue;
    acceptedCount++;
    t.false(r.path.includes(';'), p);
    const out = r.path;
    t.true(out.startsWith('/'), p);
    t.false(out.includes('//'), `${p} → ${out}`);
    t.false(/\/\.\.?(\/|;|$)/.test(out), `${p} → ${out} still has a dot-segment`);
    t.false(/%[0-9A-F]?[a-f]/.test(out), `${p} → ${out} has lower-case hex`);
    t.false(/%(2E|41|7E)/i.test(out), `${p} → ${out} kept an unreserved escape`);
    const again = normalizePath(out);
    t.deepEqual(again, { ok: true, path: out, key: keyOf(out) }, `${p} → ${out} is not a fixed point`);
  }
  t.true(acceptedCount > 500, `only ${acceptedCount} random paths were accepted`);
});
