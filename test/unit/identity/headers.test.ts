import test from 'ava';
import { copyForwardableHeaders, stripReserved } from '../../../src/identity/index.js';

/** Runs copyForwardableHeaders over [name, value] pairs and returns the pairs it kept. */
function copy(pairs: Array<[string, string]>, out: string[] = []): Array<[string, string]> {
  copyForwardableHeaders(
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
    out,
  );
  assertEven(out);
  const kept: Array<[string, string]> = [];
  for (let i = 0; i < out.length; i += 2) kept.push([out[i]!, out[i + 1]!]);
  return kept;
}
function assertEven(out: string[]): void {
  if (out.length % 2 !== 0) throw new Error('copyForwardableHeaders produced an odd-length list');
}

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'http2-settings',
  // uWS already answered `100 Continue`; the tunnel carries the body as it comes.
  'expect',
];

test('ordinary headers are copied as name, value pairs in order', (t) => {
  const kept = copy([
    ['accept', 'text/html'],
    ['user-agent', 'ava'],
    ['content-type', 'application/json'],
    ['authorization', 'Bearer abc'],
    ['cookie', 'a=1'],
  ]);
  t.deepEqual(kept, [
    ['accept', 'text/html'],
    ['user-agent', 'ava'],
    ['content-type', 'application/json'],
    ['authorization', 'Bearer abc'],
    ['cookie', 'a=1'],
  ]);
});

test('appends to `out` without clearing what is already there', (t) => {
  const out = ['x-pre', '1'];
  copyForwardableHeaders(['accept'], ['*/*'], out);
  t.deepEqual(out, ['x-pre', '1', 'accept', '*/*']);
});

test('no headers: nothing copied', (t) => {
  t.deepEqual(copy([]), []);
});

test('duplicates of ordinary headers are all kept, in order', (t) => {
  const kept = copy([
    ['x-dup', 'one'],
    ['accept', '*/*'],
    ['x-dup', 'two'],
    ['cookie', 'a=1'],
    ['x-dup', 'three'],
    ['cookie', 'b=2'],
  ]);
  t.deepEqual(kept, [
    ['x-dup', 'one'],
    ['accept', '*/*'],
    ['x-dup', 'two'],
    ['cookie', 'a=1'],
    ['x-dup', 'three'],
    ['cookie', 'b=2'],
  ]);
});

for (const name of HOP_BY_HOP) {
  test(`hop-by-hop / HTTP/2-forbidden header is dropped: ${name}`, (t) => {
    const kept = copy([
      ['accept', '*/*'],
      [name, name === 'connection' ? 'close' : 'v'],
      ['x-after', '1'],
    ]);
    t.deepEqual(kept, [
      ['accept', '*/*'],
      ['x-after', '1'],
    ]);
  });
}

test('every reserved spelling is dropped; lookalikes are kept', (t) => {
  // uWS lower-cases names, but `_` survives: both separators must be caught.
  const kept = copy([
    ['x-mezu-user-id', 'forged'],
    ['x_mezu_user_id', 'forged'],
    ['x_mezu-roles', 'admin'],
    ['x-mezu_roles', 'admin'],
    ['x-mezu-assertion', 'forged.jwt.sig'],
    ['x-mezu-project', 'other'],
    ['x-mezu-request-id', 'r'],
    ['x-mezu-', 'empty-suffix'],
    ['x-mezux', 'keep1'],
    ['x-mez-user', 'keep2'],
    ['mezu-user-id', 'keep3'],
    ['xx-mezu-user-id', 'keep4'],
    ['x-mezu', 'keep5'],
  ]);
  t.deepEqual(kept, [
    ['x-mezux', 'keep1'],
    ['x-mez-user', 'keep2'],
    ['mezu-user-id', 'keep3'],
    ['xx-mezu-user-id', 'keep4'],
    ['x-mezu', 'keep5'],
  ]);
});

test('a header named in Connection is dropped (Connection: x-foo, keep-alive)', (t) => {
  const kept = copy([
    ['connection', 'x-foo, keep-alive'],
    ['x-foo', 'secret'],
    ['keep-alive', 'timeout=5'],
    ['x-bar', 'kept'],
  ]);
  t.deepEqual(kept, [['x-bar', 'kept']]);
});

test('Connection tokens are matched case-insensitively and with surrounding whitespace', (t) => {
  const kept = copy([
    ['x-foo', '1'],
    ['x-baz', '2'],
    ['x-qux', '3'],
    ['connection', '  X-Foo ,X-BAZ\t,, '],
  ]);
  t.deepEqual(kept, [['x-qux', '3']]);
});

test('a header named in Connection is dropped even when it comes before Connection, and every copy of it', (t) => {
  const kept = copy([
    ['x-foo', 'a'],
    ['accept', '*/*'],
    ['x-foo', 'b'],
    ['connection', 'x-foo'],
  ]);
  t.deepEqual(kept, [['accept', '*/*']]);
});

test('tokens from several Connection headers are all honoured', (t) => {
  const kept = copy([
    ['connection', 'x-one'],
    ['x-one', '1'],
    ['connection', 'x-two'],
    ['x-two', '2'],
    ['x-three', '3'],
  ]);
  t.deepEqual(kept, [['x-three', '3']]);
});

test('Connection can name an ordinary end-to-end header, and it is dropped (RFC 9110 §7.6.1)', (t) => {
  const kept = copy([
    ['connection', 'cookie, authorization'],
    ['cookie', 'a=1'],
    ['authorization', 'Bearer x'],
    ['accept', '*/*'],
  ]);
  t.deepEqual(kept, [['accept', '*/*']]);
});

test('a Connection token that names no present header changes nothing else', (t) => {
  const kept = copy([
    ['connection', 'close, x-absent'],
    ['accept', '*/*'],
    ['x-foo', '1'],
  ]);
  t.deepEqual(kept, [
    ['accept', '*/*'],
    ['x-foo', '1'],
  ]);
});

test('an empty Connection value drops nothing besides itself', (t) => {
  const kept = copy([
    ['connection', ''],
    ['x-foo', '1'],
  ]);
  t.deepEqual(kept, [['x-foo', '1']]);
});

test('Connection naming a reserved header cannot resurrect it, and a prefix of a name does not match', (t) => {
  const kept = copy([
    ['connection', 'x-fo'],
    ['x-foo', '1'],
    ['x-mezu-user-id', 'forged'],
  ]);
  t.deepEqual(kept, [['x-foo', '1']]);
});

test('values are copied verbatim (no trimming, no joining)', (t) => {
  const kept = copy([
    ['x-a', '  spaced  '],
    ['x-b', ''],
    ['x-c', 'a, b, c'],
  ]);
  t.deepEqual(kept, [
    ['x-a', '  spaced  '],
    ['x-b', ''],
    ['x-c', 'a, b, c'],
  ]);
});

test('stripReserved removes every reserved spelling in place and counts them', (t) => {
  const h: Record<string, unknown> = {
    'X-Mezu-User-Id': 'forged',
    x_mezu_user_id: 'forged',
    'X_MEZU-roles': 'admin',
    'x-MeZu-': '1',
    'x-mezu-assertion': 'a.b.c',
    'x-mezux': 'keep',
    'x-mez-': 'keep',
    'mezu-x': 'keep',
    'xx-mezu-': 'keep',
    host: 'example.com',
    accept: ['a', 'b'],
  };
  const n = stripReserved(h);
  t.is(n, 5);
  t.deepEqual(h, {
    'x-mezux': 'keep',
    'x-mez-': 'keep',
    'mezu-x': 'keep',
    'xx-mezu-': 'keep',
    host: 'example.com',
    accept: ['a', 'b'],
  });
});

test('stripReserved on an object with nothing reserved returns 0 and changes nothing', (t) => {
  const h: Record<string, unknown> = { a: '1', 'x-forwarded-for': '1.2.3.4' };
  t.is(stripReserved(h), 0);
  t.deepEqual(h, { a: '1', 'x-forwarded-for': '1.2.3.4' });
  t.is(stripReserved({}), 0);
});
