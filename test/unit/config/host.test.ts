import test from 'ava';
import { normalizeHost, parseConfigHost } from '../../../src/config/index.js';

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

// One length rule for both: a name is at most 253 characters (RFC 1035 §2.3.4's 255 octets on the wire), and a
// Host header adds at most `:65535` and a trailing dot. parseConfigHost is the only check of a configured host.
const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

test('the longest name: 253 characters in a config, and in a Host header with a port and a trailing dot', (t) => {
  t.is(name253.length, 253);
  t.deepEqual(parseConfigHost(name253), { host: name253 });
  t.deepEqual(parseConfigHost(`${name253}.`), { host: name253 }, 'a trailing dot is not part of the name');
  t.regex((parseConfigHost(`${name253}e`) as { problem: string }).problem, /not a valid host name/, '254 characters: refused');
  t.is(normalizeHost(`${name253}.:65535`), name253, 'the longest Host header, 260 characters, matches the longest configured name');
  t.is(normalizeHost(`${name253}e.:65535`), null, 'one character more: malformed');
});

test('parseConfigHost: labels of at most 63 characters, no leading or trailing "-", IPv6 literals in brackets', (t) => {
  t.deepEqual(parseConfigHost('App.Example.COM.'), { host: 'app.example.com' });
  t.deepEqual(parseConfigHost(`${'a'.repeat(63)}.example`), { host: `${'a'.repeat(63)}.example` });
  t.true('problem' in parseConfigHost(`${'a'.repeat(64)}.example`));
  t.true('problem' in parseConfigHost('-app.example'));
  t.true('problem' in parseConfigHost('app-.example'));
  t.true('problem' in parseConfigHost('app..example'));
  t.deepEqual(parseConfigHost('[::1]'), { host: '[::1]' });
  t.regex((parseConfigHost('[::1]:443') as { problem: string }).problem, /must not contain a port/);
  t.regex((parseConfigHost('app.example:443') as { problem: string }).problem, /must not contain a port/);
  t.regex((parseConfigHost('*.example') as { problem: string }).problem, /wildcards/);
});
