/**
 * The Console's traffic figures without processes: the primary's per-minute
 * ring (TrafficRecorder) from workers' cumulative replies, and the Console's
 * sum over edges (projectStats). Counters are per process, so what matters is
 * that a respawned worker, a worker that missed a round and a minute that
 * wrapped around the ring are each counted once.
 */
import test from 'ava';
import { TrafficRecorder } from '../../../src/cluster/traffic.js';
import type { TrafficReply } from '../../../src/cluster/metrics.js';
import { projectStats } from '../../../src/control/index.js';
import { DURATION_BUCKETS, bucketQuantile } from '../../../src/runtime/index.js';

const NB = DURATION_BUCKETS.length + 1;
const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);

function reply(pid: number, requests: number, opts: { e5?: number; fast?: number; denied?: number; ok?: number; failed?: number } = {}): TrafficReply {
  const duration = new Array<number>(NB).fill(0);
  duration[0] = opts.fast ?? requests;
  duration[5] = requests - (opts.fast ?? requests);
  return {
    type: 'traffic', id: 1, worker: pid % 10, pid,
    projects: [{ project: 'demo', requests, errors5xx: opts.e5 ?? 0, duration, durationSumMs: requests * 0.3, denials: opts.denied === undefined ? {} : { MEZU_LOGIN_REQUIRED: opts.denied } }],
    logins: opts.ok === undefined ? {} : { demo: [opts.ok, opts.failed ?? 0] },
  };
}

test('deltas per worker pid: a respawn starts from zero, a missed round is counted once, a dead worker forgotten', (t) => {
  const r = new TrafficRecorder('e1', T0, 5_000);
  let rec = r.add([reply(101, 10), reply(102, 4)], new Set([101, 102]), T0 + 5_000);
  t.is(rec.projects.demo!.minutes.length, 1);
  t.is(rec.projects.demo!.minutes[0]!.requests, 14);
  t.is(rec.projects.demo!.rps, 14 / 5);
  // 102 misses the round (alive, no answer); 101 grows by 5.
  rec = r.add([reply(101, 15)], new Set([101, 102]), T0 + 10_000);
  t.is(rec.projects.demo!.minutes[0]!.requests, 19);
  // 102 answers again: its growth over both rounds, once.
  rec = r.add([reply(101, 15), reply(102, 10)], new Set([101, 102]), T0 + 15_000);
  t.is(rec.projects.demo!.minutes[0]!.requests, 25);
  // 102 died and was respawned as 103 (counting from zero).
  rec = r.add([reply(101, 15), reply(103, 2)], new Set([101, 103]), T0 + 20_000);
  t.is(rec.projects.demo!.minutes[0]!.requests, 27);
  t.is(rec.projects.demo!.rps, 2 / 5);
});

test('each minute its own bucket; an hour later the slot is reused, and only the last 60 minutes are written', (t) => {
  const r = new TrafficRecorder('e1', T0, 5_000);
  let total = 0;
  for (let m = 0; m < 70; m++) {
    total += 1;
    const rec = r.add([reply(1, total, { e5: m === 69 ? 1 : 0, denied: total, ok: total, failed: 2 * total })], new Set([1]), T0 + m * 60_000 + 30_000);
    const mins = rec.projects.demo!.minutes;
    t.true(mins.length <= 60);
    if (m === 69) {
      t.is(mins.length, 60);
      t.is(mins[0]!.at, T0 + 10 * 60_000);
      t.is(mins[59]!.at, T0 + 69 * 60_000);
      t.true(mins.every((x) => x.requests === 1 && x.denials.MEZU_LOGIN_REQUIRED === 1 && x.loginSuccess === 1 && x.loginFailure === 2));
      t.is(mins[59]!.errors5xx, 1);
    }
  }
});

test('projectStats adds up edges minute by minute; quantiles from the buckets; a stopped edge adds no rate', (t) => {
  const now = T0 + 5 * 60_000 + 10_000;
  const a = new TrafficRecorder('a', now - 10_000, 5_000).add([reply(1, 100, { fast: 90, denied: 7, ok: 2, failed: 1, e5: 3 })], new Set([1]), now - 1_000);
  const b = new TrafficRecorder('b', now - 600_000, 5_000).add([reply(2, 50, { fast: 50 })], new Set([2]), now - 120_000);
  const s = projectStats([a, b], 'demo', now, { up: 1, total: 2 });
  t.is(s.edges_reporting, 1, 'b wrote two minutes ago: stopped');
  t.is(s.requests_per_second, Math.round((100 / 9) * 100) / 100);
  t.is(s.last_hour.requests, 150);
  t.is(s.last_hour.errors_5xx, 3);
  t.deepEqual(s.last_hour.denials, { MEZU_LOGIN_REQUIRED: 7 });
  t.deepEqual(s.last_hour.logins, { success: 2, failure: 1 });
  t.is(s.minutes.length, 60);
  t.is(s.minutes[59]!.requests, 100);
  t.is(s.minutes[57]!.requests, 50);
  // 140 of 150 at ≤ 0.5 ms, 10 in (10, 25] ms: p50 inside the first bucket, p99 inside (10, 25].
  t.is(s.last_hour.latency_ms.p50, Math.round(0.5 * (75 / 140) * 1000) / 1000);
  t.true(s.last_hour.latency_ms.p99! > 10 && s.last_hour.latency_ms.p99! <= 25);
  t.is(s.minutes[0]!.p50_ms, null, 'no request: no latency');
  t.deepEqual(s.warpgates, { up: 1, total: 2 });
  t.is(projectStats([a], 'nope', now, { up: 0, total: 0 }).last_hour.requests, 0);
});

test('bucketQuantile: linear within the bucket, NaN with no observation, the top bound past every bound', (t) => {
  t.true(Number.isNaN(bucketQuantile(0.5, [1, 2], [0, 0, 0])));
  t.is(bucketQuantile(0.5, [1, 2], [2, 0, 0]), 0.5);
  t.is(bucketQuantile(0.75, [1, 2], [1, 1, 0]), 1.5);
  t.is(bucketQuantile(0.99, [1, 2], [0, 0, 5]), 2);
});
