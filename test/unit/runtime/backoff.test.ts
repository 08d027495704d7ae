/**
 * The one backoff: full jitter (uniform below a doubling, capped ceiling), a
 * floor, and the count starting over after a success or a long healthy run.
 * Driven by the manual clock: no test sleeps through a delay.
 */
import test from 'ava';
import { Backoff, fullJitter, ManualClock } from '../../../src/runtime/index.js';

test('full jitter: uniform in [0, min(cap, base·2^attempt))', (t) => {
  t.is(fullJitter(0, 100, 10_000, () => 0.999999), 99);
  t.is(fullJitter(3, 100, 10_000, () => 0.5), 400);
  t.is(fullJitter(10, 100, 10_000, () => 0.999999), 9_999, 'capped');
  t.is(fullJitter(1_000, 100, 10_000, () => 0.999999), 9_999, 'huge attempt counts do not overflow');
  t.is(fullJitter(5, 100, 10_000, () => 0), 0);
});

test('next() doubles the ceiling per failure up to the cap; reset() starts over', (t) => {
  const b = new Backoff({ baseMs: 100, capMs: 1_000 }, new ManualClock(0, () => 0.999999));
  t.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [99, 199, 399, 799, 999, 999]);
  t.is(b.failures, 6);
  b.reset();
  t.is(b.failures, 0);
  t.is(b.next(), 99);
});

test('the floor holds however small the draw', (t) => {
  const b = new Backoff({ baseMs: 1_000, capMs: 60_000, floorMs: 500 }, new ManualClock(0, () => 0));
  t.deepEqual([b.next(), b.next(), b.next()], [500, 500, 500]);
  t.is(b.delay(7), 500, 'delay(n) follows the same policy without counting');
  t.is(b.failures, 3);
});

test('a run that stayed healthy longer than healthyAfterMs starts the count over; a short one does not', (t) => {
  const clock = new ManualClock(0, () => 0.999999);
  const b = new Backoff({ baseMs: 100, capMs: 5_000, floorMs: 100, healthyAfterMs: 30_000 }, clock);
  b.started();
  clock.advance(1_000);
  t.is(b.next(), 100, 'first failure');
  b.started();
  clock.advance(1_000);
  t.is(b.next(), 199, 'a crash loop grows');
  b.started();
  clock.advance(30_000);
  t.is(b.next(), 399, 'exactly the healthy period is not longer than it');
  b.started();
  clock.advance(30_001);
  t.is(b.next(), 100, 'healthy for longer: back to the first delay');
  t.is(b.next(), 199, 'a failure with no run in between still counts');
});

test('draws are spread: many clients failing together do not retry in step', (t) => {
  let seed = 7;
  const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const clock = new ManualClock(0, lcg);
  const delays = Array.from({ length: 1_000 }, () => new Backoff({ baseMs: 100, capMs: 10_000 }, clock).delay(4));
  t.true(delays.every((d) => d >= 0 && d < 1_600));
  const buckets = new Array<number>(4).fill(0);
  for (const d of delays) buckets[Math.floor(d / 400)]!++;
  t.true(buckets.every((n) => n > 180 && n < 320), `roughly uniform over [0, 1600): ${buckets.join(', ')}`);
});
