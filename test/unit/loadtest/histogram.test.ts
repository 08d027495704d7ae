import test from 'ava';
import { bucketOf, bucketUpper, LatencyHistogram } from '../../../src/loadtest/histogram.js';

/** Seeded PRNG (mulberry32): failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank percentile of sorted values (the definition the histogram approximates). */
function exact(sorted: number[], p: number): number {
  if (p <= 0) return sorted[0]!;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

test('buckets: exact below 256 µs, then at most 1/128 wide, contiguous and increasing', (t) => {
  for (let v = 0; v < 256; v++) {
    t.is(bucketOf(v), v);
    t.is(bucketUpper(v), v);
  }
  let prevUpper = 255;
  for (let i = 256; i < 3200; i++) {
    const upper = bucketUpper(i);
    const lower = prevUpper + 1;
    // Contiguous: bucket i starts right after bucket i-1 ends, and both ends map back to i.
    t.is(bucketOf(lower), i, `lower end of bucket ${i}`);
    if (upper <= 0x7fffffff) t.is(bucketOf(upper), i, `upper end of bucket ${i}`);
    t.true((upper - lower + 1) / lower <= 1 / 128, `bucket ${i} [${lower}, ${upper}] too wide`);
    prevUpper = upper;
  }
  t.is(bucketOf(0x7fffffff), 3199, 'the largest trackable value is in the last bucket');
});

test('an empty histogram reports null, not zero', (t) => {
  const h = new LatencyHistogram();
  t.is(h.count, 0);
  t.is(h.percentile(50), null);
  t.is(h.percentile(0), null);
  t.is(h.mean(), null);
});

test('records milliseconds at µs resolution; min, max and mean are exact', (t) => {
  const h = new LatencyHistogram();
  h.recordMs(0.0414); // 41.4 µs → 41
  h.recordMs(0.0416); // → 42
  h.recordMs(12.3456); // 12 346 µs
  t.is(h.count, 3);
  t.is(h.min, 41);
  t.is(h.max, 12_346);
  t.is(h.percentile(0), 41);
  t.is(h.percentile(100), 12_346);
  t.is(h.percentile(50), 42);
  t.is(h.mean(), (41 + 42 + 12_346) / 3);
});

test('NaN and negative times are ignored; absurd ones are clamped but the max stays honest', (t) => {
  const h = new LatencyHistogram();
  h.recordMs(Number.NaN);
  h.recordMs(-1);
  t.is(h.count, 0);
  h.recordMs(1e12);
  t.is(h.count, 1);
  t.is(h.max, 0x7fffffff);
  t.is(h.percentile(99), 0x7fffffff);
});

test('percentiles: exact for small values (nearest rank)', (t) => {
  const h = new LatencyHistogram();
  const values: number[] = [];
  for (let v = 1; v <= 200; v++) {
    values.push(v);
    h.recordMs(v / 1000);
  }
  for (const p of [1, 10, 25, 50, 75, 90, 99, 99.9]) t.is(h.percentile(p), exact(values, p), `p${p}`);
});

test('percentiles on a long-tailed distribution: never below the true value, at most 1/128 above', (t) => {
  const rnd = prng(7);
  const h = new LatencyHistogram();
  const us: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    // Log-normal-ish: mostly ~300 µs, a tail out to hundreds of ms.
    const v = Math.round(Math.exp(5.7 + 1.2 * Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd())));
    us.push(v);
    h.recordMs(v / 1000);
  }
  us.sort((a, b) => a - b);
  for (const p of [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100]) {
    const want = exact(us, p);
    const got = h.percentile(p)!;
    t.true(got >= want, `p${p}: ${got} < true ${want}`);
    t.true(got - want <= want / 128, `p${p}: ${got} more than 1/128 above true ${want}`);
  }
});

test('a single value is every percentile', (t) => {
  const h = new LatencyHistogram();
  h.recordMs(3.3333);
  for (const p of [0, 50, 99.9, 100]) t.is(h.percentile(p), 3333);
});
