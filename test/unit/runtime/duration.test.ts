import test from 'ava';
import { parseDuration } from '../../../src/runtime/index.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

const valid: [string | number, number][] = [
  ['30s', 30 * S],
  ['30m', 30 * M],
  ['24h', 24 * H],
  ['7d', 7 * D],
  ['1h30m', H + 30 * M],
  ['1d12h', D + 12 * H],
  ['1d2h3m4s', D + 2 * H + 3 * M + 4 * S],
  ['0s', 0],
  ['90', 90 * S],
  [90, 90 * S],
  [0, 0],
  [1.5, 1500],
];

const invalid: unknown[] = [
  '',
  ' ',
  'abc',
  '30 m',
  ' 30m',
  '30m ',
  '30M',
  '1H',
  '30x',
  '1.5h',
  '-5m',
  '30m1h', // units out of order
  '1m30m', // repeated unit
  'h',
  '1h30',
  '99999999999999999d', // too many digits
  '9999999999999d', // beyond Number.MAX_SAFE_INTEGER ms
  -1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.MAX_VALUE,
  null,
  undefined,
  {},
  [],
  true,
];

for (const [input, ms] of valid) {
  test(`parseDuration(${JSON.stringify(input)}) = ${ms}`, (t) => {
    t.is(parseDuration(input), ms);
  });
}

test('invalid durations return null without throwing', (t) => {
  for (const input of invalid) {
    t.is(parseDuration(input as string), null, `${String(input)} should be invalid`);
  }
});

test('a string of digits means seconds, like a bare number', (t) => {
  t.is(parseDuration('30'), parseDuration(30));
});
