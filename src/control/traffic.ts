/**
 * A project's traffic over the last hour, as the Console's overview and
 * `GET /api/v1/projects/{id}/stats` show it: every edge's record in the store
 * (src/store/traffic.ts, written by each edge primary from its workers'
 * counters) added up minute by minute. Latency quantiles are estimated from
 * the request-duration histogram's buckets the way Prometheus's
 * histogram_quantile does (linear within a bucket), so they are as fine as the
 * buckets: 0.5, 1, 2.5, 5, 10 ms…
 */
import type { TrafficMinute, TrafficRecord } from '../store/index.js';
import { DURATION_BUCKETS, bucketQuantile } from '../runtime/index.js';

const MINUTE_MS = 60_000;
/** Minutes shown: the last hour, the current minute included. */
export const STATS_MINUTES = 60;
/** A record not rewritten for this many of its intervals is an edge that stopped: its rate no longer counts. */
const FRESH_INTERVALS = 3;

export interface MinuteStats {
  at: string;
  requests: number;
  errors_5xx: number;
  p50_ms: number | null;
  p99_ms: number | null;
  denials: number;
  logins_success: number;
  logins_failure: number;
}

export interface ProjectStats {
  project: string;
  generated_at: string;
  /** Edges whose figures are current (they wrote within three of their intervals). */
  edges_reporting: number;
  /** The newest figures' time, or null when no edge has reported any. */
  updated_at: string | null;
  requests_per_second: number;
  last_hour: {
    requests: number;
    errors_5xx: number;
    latency_ms: { p50: number | null; p99: number | null };
    denials: Record<string, number>;
    denials_total: number;
    logins: { success: number; failure: number };
  };
  warpgates: { up: number; total: number };
  /** One entry per minute of the last hour, oldest first (60). */
  minutes: MinuteStats[];
}

const ms = (s: number): number | null => (Number.isNaN(s) ? null : Math.round(s * 1000 * 1000) / 1000);

export function projectStats(records: readonly TrafficRecord[], project: string, now: number, warpgates: { up: number; total: number }): ProjectStats {
  const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const first = current - (STATS_MINUTES - 1) * MINUTE_MS;
  const nb = DURATION_BUCKETS.length + 1;
  const byMinute: TrafficMinute[] = [];
  for (let i = 0; i < STATS_MINUTES; i++) byMinute.push({ at: first + i * MINUTE_MS, requests: 0, errors5xx: 0, duration: new Array<number>(nb).fill(0), durationSumMs: 0, denials: {}, loginSuccess: 0, loginFailure: 0 });
  let rps = 0;
  let reporting = 0;
  let updated: number | null = null;
  for (const r of records) {
    const p = r.projects[project];
    if (r.updatedAt >= now - FRESH_INTERVALS * r.everyMs) {
      reporting++;
      rps += p?.rps ?? 0;
    }
    if (p === undefined) continue;
    if (updated === null || r.updatedAt > updated) updated = r.updatedAt;
    for (const m of p.minutes) {
      const i = (m.at - first) / MINUTE_MS;
      if (i < 0 || i >= STATS_MINUTES || !Number.isInteger(i)) continue;
      const t = byMinute[i]!;
      t.requests += m.requests;
      t.errors5xx += m.errors5xx;
      t.durationSumMs += m.durationSumMs;
      for (let b = 0; b < nb; b++) t.duration[b]! += m.duration[b] ?? 0;
      for (const [reason, n] of Object.entries(m.denials)) t.denials[reason] = (t.denials[reason] ?? 0) + n;
      t.loginSuccess += m.loginSuccess;
      t.loginFailure += m.loginFailure;
    }
  }
  const hour = new Array<number>(nb).fill(0);
  const denials: Record<string, number> = {};
  let requests = 0;
  let errors = 0;
  let ok = 0;
  let failed = 0;
  const minutes: MinuteStats[] = byMinute.map((m) => {
    requests += m.requests;
    errors += m.errors5xx;
    ok += m.loginSuccess;
    failed += m.loginFailure;
    for (let b = 0; b < nb; b++) hour[b]! += m.duration[b]!;
    let d = 0;
    for (const [reason, n] of Object.entries(m.denials)) {
      denials[reason] = (denials[reason] ?? 0) + n;
      d += n;
    }
    return {
      at: new Date(m.at).toISOString(),
      requests: m.requests,
      errors_5xx: m.errors5xx,
      p50_ms: ms(bucketQuantile(0.5, DURATION_BUCKETS, m.duration)),
      p99_ms: ms(bucketQuantile(0.99, DURATION_BUCKETS, m.duration)),
      denials: d,
      logins_success: m.loginSuccess,
      logins_failure: m.loginFailure,
    };
  });
  const sorted = Object.fromEntries(Object.entries(denials).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return {
    project,
    generated_at: new Date(now).toISOString(),
    edges_reporting: reporting,
    updated_at: updated === null ? null : new Date(updated).toISOString(),
    requests_per_second: Math.round(rps * 100) / 100,
    last_hour: {
      requests,
      errors_5xx: errors,
      latency_ms: { p50: ms(bucketQuantile(0.5, DURATION_BUCKETS, hour)), p99: ms(bucketQuantile(0.99, DURATION_BUCKETS, hour)) },
      denials: sorted,
      denials_total: Object.values(denials).reduce((a, b) => a + b, 0),
      logins: { success: ok, failure: failed },
    },
    warpgates,
    minutes,
  };
}
