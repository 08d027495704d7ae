import test from 'ava';
import { normalizeHost } from '../../../src/config/index.js';

const cases: [string, string | null][] = [
  ['localhost', 'localhost'],
  ['app.example.com', 'app.example.com'],
  ['App.Example.COM', 'app.example.com'],
  ['app.example.com:8443', 'app.example.com'],
  ['app.example.com.', 'app.example.com'],
  ['app.example.com.:443', 'app.example.com'],
  ['APP.example.com.:80', 'app.example.com'],
  ['my_svc-1.internal', 'my_svc-1.internal'],
  ['127.0.0.1', '127.0.0.1'],
  ['127.0.0.1:3000', '127.0.0.1'],
  ['[::1]', '[::1]'],
  ['[::1]:8080', '[::1]'],
  ['[2001:DB8::1]:443', '[2001:db8::1]'],
  ['[::ffff:127.0.0.1]', '[::ffff:127.0.0.1]'],
  // Malformed → null.
  ['', null],
  ['.', null],
  [':80', null],
  ['app.example.com..', 'app.example.com.'], // only one trailing dot is stripped
  ['app example.com', null],
  [' app.example.com', null],
  ['app.example.com\r', null],
  ['app\u0000.example.com', null],
  ['user@app.example.com', null],
  ['app.example.com/evil', null],
  ['app.example.com\\evil', null],
  ['app.example.com:', null],
  ['app.example.com:abc', null],
  ['app.example.com:123456', null],
  ['app.example.com:65536', null],
  ['app.example.com:80:80', null],
  ['app.%65xample.com', null],
  ['caf\u00e9.example', null],
  ['[::1', null],
  ['[]', null],
  ['[::1]x', null],
  ['[::1]:', null],
  ['[::g]', null],
  ['[::1]:99999', null],
  ['a'.repeat(300), null],
];

for (const [input, expected] of cases) {
  test(`normalizeHost(${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}) = ${JSON.stringify(expected)}`, (t) => {
    t.is(normalizeHost(input), expected);
  });
}

test('port 65535 is accepted, the upper bound', (t) => {
  t.is(normalizeHost('a.example:65535'), 'a.example');
});

test('does not throw on non-string input', (t) => {
  t.is(normalizeHost(undefined as unknown as string), null);
  t.is(normalizeHost(42 as unknown as string), null);
});
