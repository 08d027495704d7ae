/**
 * Latency histogram at microsecond resolution. autocannon's own latency
 * histogram records whole milliseconds (values truncate), which says nothing on
 * loopback where a proxied request takes a few hundred µs; so the loadtest
 * records each response's time (autocannon measures it with hrtime) here.
 *
 * Log-linear buckets, the layout of HdrHistogram with 128 sub-buckets: values
 * below 256 µs are exact, above that a bucket spans at most 1/128 of its value,
 * so a reported percentile is at most 0.8 % above the true one (it reports the
 * bucket's upper bound, as HdrHistogram reports the highest equivalent value,
 * and never more than the exact maximum). Memory is fixed: 3 200 counters cover
 * up to 2^31 µs (35 minutes); larger values are clamped, the exact max is kept.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
const EXACT = SUB * 2; // values 0..255 get one bucket each
const MAX_VALUE = 0x7fffffff; // µs; autocannon times a request out after 10 s anyway
const BUCKETS = EXACT + (32 - SUB_BITS - 1 - 1) * SUB; // shifts 1..23 above the exact range

/** Bucket index of a non-negative integer number of µs (≤ MAX_VALUE). */
export function bucketOf(us: number): number {
  if (us < EXACT) return us;
  const shift = 32 - Math.clz32(us) - (SUB_BITS + 1); // ≥ 1: keep the top 8 bits
  return EXACT + (shift - 1) * SUB + ((us >>> shift) - SUB);
}

/** Largest value (µs) that falls into bucket `i`. */
export function bucketUpper(i: number): number {
  if (i < EXACT) return i;
  const shift = Math.floor((i - EXACT) / SUB) + 1;
  const top = ((i - EXACT) % SUB) + SUB;
  return (top + 1) * 2 ** shift - 1;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  /** µs; 0 while empty. */
  min = 0;
  max = 0;
  private sum = 0;

  /** Records one latency given in milliseconds (fractions kept down to 1 µs). */
  recordMs(ms: number): void {
    if (!(ms >= 0)) return; // NaN or negative: a clock glitch, not a latency
    const us = Math.min(Math.round(ms * 1000), MAX_VALUE);
    this.counts[bucketOf(us)]! += 1;
    if (this.count === 0 || us < this.min) this.min = us;
    if (us > this.max) this.max = us;
    this.count++;
    this.sum += us;
  }

  /** Mean in µs, or null while empty. */
  mean(): number | null {
    return this.count === 0 ? null : this.sum / this.count;
  }

  /**
   * Value (µs) at percentile `p` (0–100) by nearest rank: the smallest
   * recorded value such that at least p % of the values are ≤ it. p 0 is the
   * min, p 100 the max; null while empty.
   */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    if (p <= 0) return this.min;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.max(this.min, Math.min(bucketUpper(i), this.max));
    }
    return this.max;
  }
}
