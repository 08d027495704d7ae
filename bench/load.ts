/**
 * One bounded load against 127.0.0.1 with autocannon, plus latency samples
 * kept at full resolution: autocannon 8 records latency into an integer-
 * millisecond histogram (1.4 ms is stored as 1), too coarse for a chain whose
 * latency budget is "≤ 1 ms added", so every 2xx response time is also kept
 * here as a float and percentiles are taken exactly.
 */
import autocannon from 'autocannon';

export interface LoadTarget {
  name: string;
  label: string;
  url: string;
  headers: Record<string, string>;
}

export interface DriveOptions {
  seconds: number;
  connections: number;
  /** Keep every 2xx response time (exact percentiles). */
  keepSamples: boolean;
  /** autocannon's `overallRate` (req/s across all connections); see bench/paced.ts for why it is bursty. */
  overallRate?: number;
  /** Requests outstanding per connection (autocannon `-p`); 1 when absent. */
  pipelining?: number;
}

export interface LoadOutcome {
  result: autocannon.Result;
  /** Wall-clock seconds from starting autocannon to its result. */
  elapsedSeconds: number;
  /** Sorted 2xx response times in ms, or null when not recorded. */
  samplesMs: Float64Array | null;
  /** Distinct error messages with counts. */
  errorKinds: Record<string, number>;
  /** True when the safety cap on the request count ended the run early. */
  capped: boolean;
  /**
   * Share of responses that completed in the first half of each 1 s window
   * since the start: 0.5 for an even load, near 1 when a rate-limited load
   * arrives in bursts. Null when samples were not kept.
   */
  firstHalfShare: number | null;
}

/**
 * A ceiling on responses per run, far above what 2 cores can serve (the bare
 * uWS origin does ~80k req/s), so it never shapes a normal run
 * but bounds the count even if the duration timer misbehaved.
 */
export const MAX_REQUESTS_PER_SECOND = 500_000;

/** Enough for 10 s at 1M req/s; beyond it samples stop (flagged), counts continue. */
const MAX_SAMPLES = 10_000_000;

let current: autocannon.Instance | null = null;

/** Stop the load in flight, if any (used on SIGINT so cleanup runs promptly). */
export function stopCurrentLoad(): void {
  current?.stop();
}

export async function drive(target: LoadTarget, o: DriveOptions): Promise<LoadOutcome> {
  const { seconds, connections, keepSamples } = o;
  const u = new URL(target.url);
  if (u.hostname !== '127.0.0.1') throw new Error(`bench: refusing to load ${target.url}: only 127.0.0.1 is a target`);
  const cap = Math.ceil(seconds * MAX_REQUESTS_PER_SECOND);
  let samples = keepSamples ? new Float64Array(1 << 20) : null;
  let n = 0;
  let firstHalf = 0;
  let responses = 0;
  const errorKinds: Record<string, number> = {};
  const started = process.hrtime.bigint();
  const inst = autocannon({
    url: target.url,
    method: 'GET',
    headers: target.headers,
    connections,
    pipelining: o.pipelining ?? 1,
    duration: seconds,
    timeout: 10,
    maxOverallRequests: cap,
    ...(o.overallRate !== undefined ? { overallRate: o.overallRate } : {}),
  });
  current = inst;
  if (samples !== null) {
    inst.on('response', (_client, status, _bytes, ms) => {
      responses++;
      if (Number(process.hrtime.bigint() - started) % 1e9 < 5e8) firstHalf++;
      if (status < 200 || status > 299 || samples === null) return;
      if (n === samples.length) {
        if (n >= MAX_SAMPLES) return;
        const bigger = new Float64Array(Math.min(n * 2, MAX_SAMPLES));
        bigger.set(samples);
        samples = bigger;
      }
      samples[n++] = ms;
    });
  }
  inst.on('reqError', (err) => {
    const k = err.message || String(err);
    errorKinds[k] = (errorKinds[k] ?? 0) + 1;
  });
  try {
    const result = await inst;
    const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const sorted = samples === null ? null : samples.slice(0, n).sort();
    return {
      result,
      elapsedSeconds,
      samplesMs: sorted,
      errorKinds,
      capped: result.requests.total >= cap,
      firstHalfShare: keepSamples && responses > 0 ? firstHalf / responses : null,
    };
  } finally {
    current = null;
  }
}

/** Nearest-rank percentile of sorted samples (ms), or null when there are none. */
export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
