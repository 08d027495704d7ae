import test from 'ava';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, SerializedHead, isIdempotent, serializeHead } from '../../../../warpgate/origin/request-head.js';

function ok(r: SerializedHead | string): SerializedHead {
  if (typeof r === 'string') throw new Error(`unexpected refusal: ${r}`);
  return r;
}

test('GET: one head, host kept, no framing fields', (t) => {
  const h = ok(serializeHead({ method: 'GET', path: '/a?b=c', headers: ['host', 'app.test', 'accept', '*/*'], hasBody: false }, '127.0.0.1:3000'));
  t.is(h.text, 'GET /a?b=c HTTP/1.1\r\nhost: app.test\r\naccept: */*\r\n\r\n');
  t.is(h.bodyMode, BODY_NONE);
});

test('host is added from the origin when the caller gave none', (t) => {
  const h = ok(serializeHead({ method: 'GET', path: '/', headers: [], hasBody: false }, '127.0.0.1:3000'));
  t.is(h.text, 'GET / HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\r\n');
});

test('body with a known length keeps Content-Length; without one it is chunked', (t) => {
  const a = ok(serializeHead({ method: 'POST', path: '/u', headers: ['content-length', '11', 'host', 'h'], hasBody: true }, 'x'));
  t.is(a.text, 'POST /u HTTP/1.1\r\nhost: h\r\ncontent-length: 11\r\n\r\n');
  t.is(a.bodyMode, BODY_LENGTH);
  t.is(a.contentLength, 11);
  const b = ok(serializeHead({ method: 'POST', path: '/u', headers: ['host', 'h', 'transfer-encoding', 'chunked'], hasBody: true }, 'x'));
  t.is(b.text, 'POST /u HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n');
  t.is(b.bodyMode, BODY_CHUNKED);
});

test('POST/PUT/PATCH without a body say content-length: 0; GET does not', (t) => {
  for (const m of ['POST', 'PUT', 'PATCH']) {
    t.regex(ok(serializeHead({ method: m, path: '/', headers: ['host', 'h', 'content-length', '5'], hasBody: false }, 'x')).text, /\r\ncontent-length: 0\r\n\r\n$/);
  }
  t.notRegex(ok(serializeHead({ method: 'GET', path: '/', headers: ['host', 'h'], hasBody: false }, 'x')).text, /content-length/);
});

test('hop-by-hop and expect fields from the caller are dropped, in any case', (t) => {
  const h = ok(
    serializeHead(
      {
        method: 'GET',
        path: '/',
        headers: ['Host', 'h', 'Connection', 'close', 'keep-alive', '1', 'Proxy-Connection', 'x', 'TE', 'trailers', 'Upgrade', 'websocket', 'Transfer-Encoding', 'chunked', 'Expect', '100-continue', 'x-keep', 'yes'],
        hasBody: false,
      },
      'x',
    ),
  );
  t.is(h.text, 'GET / HTTP/1.1\r\nHost: h\r\nx-keep: yes\r\n\r\n');
});

// Request splitting: a CR/LF in a value or a non-token name would let whoever
// controls that header write a second request onto a shared origin connection.
const REFUSED: Array<[string, { method: string; path: string; headers: string[]; hasBody: boolean }, RegExp]> = [
  ['CRLF in a value', { method: 'GET', path: '/', headers: ['x-a', 'b\r\nGET /admin HTTP/1.1'], hasBody: false }, /invalid value for header x-a/],
  ['bare LF in a value', { method: 'GET', path: '/', headers: ['x-a', 'b\nc'], hasBody: false }, /invalid value/],
  ['bare CR in a value', { method: 'GET', path: '/', headers: ['x-a', 'b\rc'], hasBody: false }, /invalid value/],
  ['NUL in a value', { method: 'GET', path: '/', headers: ['x-a', 'b\0c'], hasBody: false }, /invalid value/],
  ['a char above U+00FF (its latin1 low byte is LF)', { method: 'GET', path: '/', headers: ['x-a', 'b\u010a\u010dc'], hasBody: false }, /invalid value/],
  ['a space before a name (obs-fold)', { method: 'GET', path: '/', headers: ['x-a', 'b', ' x-mezu-user-id', 'evil'], hasBody: false }, /invalid header name/],
  ['a colon in a name', { method: 'GET', path: '/', headers: ['x-a: y', 'b'], hasBody: false }, /invalid header name/],
  ['an empty name', { method: 'GET', path: '/', headers: ['', 'b'], hasBody: false }, /invalid header name/],
  ['a space in the path', { method: 'GET', path: '/a b', headers: [], hasBody: false }, /invalid request target/],
  ['CRLF in the path', { method: 'GET', path: '/a\r\nX: y', headers: [], hasBody: false }, /invalid request target/],
  ['an absolute-form path', { method: 'GET', path: 'http://evil/', headers: [], hasBody: false }, /invalid request target/],
  ['a bad method', { method: 'G T', path: '/', headers: [], hasBody: false }, /invalid method/],
  ['CONNECT', { method: 'CONNECT', path: '/', headers: [], hasBody: false }, /CONNECT/],
  ['two host fields', { method: 'GET', path: '/', headers: ['host', 'a', 'Host', 'b'], hasBody: false }, /more than one host/],
  ['a bad content-length', { method: 'POST', path: '/', headers: ['content-length', '1e3'], hasBody: true }, /invalid content-length/],
  ['conflicting content-length', { method: 'POST', path: '/', headers: ['content-length', '1', 'content-length', '2'], hasBody: true }, /conflicting content-length/],
  ['odd header list', { method: 'GET', path: '/', headers: ['x-a'], hasBody: false }, /pairs/],
];

for (const [name, head, reason] of REFUSED) {
  test(`refuses ${name}`, (t) => {
    const r = serializeHead(head, 'x');
    t.is(typeof r, 'string');
    t.regex(r as string, reason);
  });
}

test('OPTIONS * is allowed', (t) => {
  t.is(ok(serializeHead({ method: 'OPTIONS', path: '*', headers: ['host', 'h'], hasBody: false }, 'x')).text, 'OPTIONS * HTTP/1.1\r\nhost: h\r\n\r\n');
});

test('other control characters and obs-text pass through as latin1', (t) => {
  t.is(typeof serializeHead({ method: 'GET', path: '/', headers: ['x-a', 'caf\xe9\t\x01'], hasBody: false }, 'x'), 'object');
});

test('only idempotent methods are replayable (RFC 9110 §9.2.2)', (t) => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) t.true(isIdempotent(m), m);
  for (const m of ['POST', 'PATCH', 'CONNECT', 'get']) t.false(isIdempotent(m), m);
});
