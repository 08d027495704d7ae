import test from 'ava';
import { bar, formatBytes, formatCount, formatLatency, formatSeconds, renderHistogram, renderProgress, renderStats, statusHint, table, type Stats } from '../../../src/loadtest/format.js';

test('formatLatency: three significant digits, unit by size; null is a dash', (t) => {
  t.is(formatLatency(null), '–');
  t.is(formatLatency(0), '0 µs');
  t.is(formatLatency(87), '87 µs');
  t.is(formatLatency(412), '0.412 ms');
  t.is(formatLatency(4_120), '4.12 ms');
  t.is(formatLatency(41_200), '41.2 ms');
  t.is(formatLatency(412_000), '412 ms');
  t.is(formatLatency(1_234_000), '1.23 s');
});

test('formatBytes, formatCount, formatSeconds', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(1536), '1.50 KiB');
  t.is(formatBytes(2.4 * 1024 * 1024), '2.40 MiB');
  t.is(formatBytes(150 * 1024 * 1024), '150 MiB');
  t.is(formatCount(41020), '41,020');
  t.is(formatCount(12.345, 1), '12.3');
  t.is(formatSeconds(2000), '2 s');
  t.is(formatSeconds(1500), '1.5 s');
});

test('bar: proportional in eighths of a cell, a sliver for any positive value, capped at the width', (t) => {
  t.is(bar(10, 10, 4), '████');
  t.is(bar(5, 10, 4), '██');
  t.is(bar(1, 16, 4), '▎'); // 1/16 of 4 cells = 2 eighths
  t.is(bar(0.0001, 10, 4), '▏');
  t.is(bar(0, 10, 4), '');
  t.is(bar(20, 10, 4), '████');
  t.is(bar(5, 0, 4), '');
});

test('table: columns padded by code points; first left-aligned, numbers right-aligned unless told', (t) => {
  t.deepEqual(table([['a', '1', 'µs'], ['bbb', '22', 'x']]), ['  a      1   µs', '  bbb   22    x']);
  t.deepEqual(table([['k', 'v'], ['key', 'value']], { align: 'll', gap: ' ', indent: '' }), ['k   v', 'key value']);
});

test('renderHistogram: one row per percentile, bars scaled to the largest value', (t) => {
  const lines = renderHistogram([{ label: 'p50', us: 500 }, { label: 'max', us: 2000 }, { label: 'p99', us: null }], 8);
  t.is(lines.length, 3);
  t.true(lines[0]!.endsWith('██'), lines[0]);
  t.true(lines[1]!.endsWith('████████'), lines[1]);
  t.true(lines[0]!.includes('0.500 ms'));
  t.true(lines[2]!.includes('–'));
  t.false(lines[2]!.includes('█'));
});

const stats = (over: Partial<Stats> = {}): Stats => ({
  elapsedMs: 2000,
  responses: 8000,
  ok2xx: 8000,
  non2xx: 0,
  errors: 0,
  timeouts: 0,
  byStatus: { '200': 8000 },
  bytes: 2 * 1024 * 1024,
  reqPerSec: { avg: 4000, p50: 3990, p99: 4100, samples: 2 },
  latencyUs: { min: 150, avg: 480, p10: 200, p25: 300, p50: 412, p75: 520, p90: 803, p99: 2100, p99_9: 3000, max: 18_200 },
  ...over,
});

test('renderStats: histogram, latency and req/s table, throughput and response counts', (t) => {
  const text = renderStats(stats()).join('\n');
  t.regex(text, /Latency histogram \(8,000 responses/);
  for (const row of ['min', 'p10', 'p25', 'p50', 'p75', 'p90', 'p99', 'p99.9', 'max']) t.regex(text, new RegExp(`^  ${row.replace('.', '\\.')}\\s`, 'm'), row);
  t.regex(text, /Latency\s+0\.480 ms\s+0\.412 ms\s+0\.803 ms\s+2\.10 ms\s+3\.00 ms\s+18\.2 ms/);
  t.regex(text, /Req\/s\s+4,000\s+3,990\s+4,100/);
  t.regex(text, /Throughput\s+1\.00 MiB\/s \(2\.00 MiB in 2\.00 s\)/);
  t.regex(text, /Responses\s+2xx 8,000\s+non-2xx 0\s+errors 0\s+timeouts 0/);
  t.regex(text, /Status\s+200 ×8,000/);
});

test('renderStats: nothing recorded shows dashes, and a sub-second run says why req/s percentiles are missing', (t) => {
  const none = renderStats(stats({ responses: 0, ok2xx: 0, byStatus: {}, bytes: 0, reqPerSec: { avg: null, p50: null, p99: null, samples: 0 }, latencyUs: { min: null, avg: null, p10: null, p25: null, p50: null, p75: null, p90: null, p99: null, p99_9: null, max: null } })).join('\n');
  t.regex(none, /Latency\s+–\s+–/);
  t.regex(none, /Status\s+–/);
  const short = renderStats(stats({ elapsedMs: 300, reqPerSec: { avg: 166.7, p50: null, p99: null, samples: 0 } })).join('\n');
  t.regex(short, /Req\/s\s+167\s+–\s+–/);
  t.regex(short, /need at least one whole second/);
});

test('renderProgress: timed and amount runs', (t) => {
  t.is(
    renderProgress({ elapsedMs: 3400, plannedMs: 10_000, amount: null, responses: 12_345, currentRate: 4100.4, ok2xx: 12_300, non2xx: 45, errors: 0 }),
    'loadtest: 3 s/10 s  12,345 responses  4,100 req/s  2xx 12,300  non-2xx 45  errors 0',
  );
  t.is(
    renderProgress({ elapsedMs: 1200, plannedMs: null, amount: 5000, responses: 1200, currentRate: 1000, ok2xx: 1200, non2xx: 0, errors: 2 }),
    'loadtest: 1 s  1,200/5,000 responses  1,000 req/s  2xx 1,200  non-2xx 0  errors 2',
  );
  // The clock never shows more than the planned duration (autocannon ends at its next tick).
  t.true(renderProgress({ elapsedMs: 10_900, plannedMs: 10_000, amount: null, responses: 1, currentRate: 1, ok2xx: 1, non2xx: 0, errors: 0 }).startsWith('loadtest: 10 s/10 s'));
});

test('statusHint: the statuses an edge answers a misconfigured loadtest with', (t) => {
  t.regex(statusHint('401')!, /credential/);
  t.regex(statusHint('421')!, /Host/);
  t.is(statusHint('200'), null);
  t.is(statusHint('418'), null);
});
