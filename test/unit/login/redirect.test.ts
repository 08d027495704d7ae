import test from 'ava';
import { safeReturnPath } from '../../../src/login/index.js';

// Browsers read `//host` and `/\host` as another host (WHATWG URL: `\` is `/` in special schemes) and drop
// tabs and newlines inside URLs; any of these in `rd` would make the login page an open redirect.
const refused = [
  '', '//evil.example', '///evil.example', '/\\evil.example', '\\/evil.example', '\\\\evil.example',
  'https://evil.example', 'http:evil.example', 'javascript:alert(1)', 'data:text/html,x', 'evil.example', 'evil.example/path',
  '%2F%2Fevil.example', '/%2F%2Fevil.example', '/%2fevil.example', '/%5Cevil.example', '/%5cevil.example', '/%09/evil.example',
  '/\r\nLocation: x', '/%0d%0aSet-Cookie:a=b', '/a\tb', '/a b', '/\u0000', '/caf\u00e9', '/%E0%A4%A', '/x%',
  '/_mezu/login', '/_mezu', '/%5Fmezu/logout', 'x'.repeat(10),
  '/' + 'a'.repeat(5000),
];
for (const rd of refused) {
  test(`refused → /: ${JSON.stringify(rd).slice(0, 40)}`, (t) => {
    t.is(safeReturnPath(rd), '/');
  });
}

const kept = ['/', '/api/v1/items', '/api/v1/items?a=1&b=2', '/docs/a%20b', '/a/b/c#frag', '/search?q=%2F%2F', '/x;y=1', '/_mezu-not-reserved'];
for (const rd of kept) {
  test(`kept: ${rd}`, (t) => {
    t.is(safeReturnPath(rd), rd);
  });
}

test('null and undefined → /', (t) => {
  t.is(safeReturnPath(null), '/');
  t.is(safeReturnPath(undefined), '/');
});
