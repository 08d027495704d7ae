/**
 * The Prometheus text format and the merge of snapshots (src/runtime/metrics.ts).
 */
import test from 'ava';
import { DURATION_BUCKETS, escapeLabel, histogramSamples, labels, mergeSnapshots, renderText, ProcessMetrics, type Family } from '../../../src/runtime/index.js';

test('label values are escaped: backslash, quote, line feed', (t) => {
  t.is(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  t.is(labels([['rule', 'demo:/api/v1/*'], ['x', '"']]), '{rule="demo:/api/v1/*",x="\\""}');
  t.is(labels([]), '');
});

test('renderText: HELP, TYPE, one line per sample, +Inf spelled as the format wants', (t) => {
  const f: Family[] = [
    { name: 'mezu_x_total', help: 'X.\nsecond line', type: 'counter', samples: [['{a="1"}', 3], ['{a="2"}', 0.5]] },
    { name: 'mezu_g', help: 'G.', type: 'gauge', samples: [['', Infinity]] },
  ];
  t.is(renderText(f), '# HELP mezu_x_total X.\\nsecond line\n# TYPE mezu_x_total counter\nmezu_x_total{a="1"} 3\nmezu_x_total{a="2"} 0.5\n# HELP mezu_g G.\n# TYPE mezu_g gauge\nmezu_g +Inf\n');
});

test('histogramSamples cumulates per-bucket counts; +Inf and _count are the total', (t) => {
  const counts = new Float64Array(DURATION_BUCKETS.length + 1);
  counts[0] = 2;
  counts[3] = 1;
  counts[DURATION_BUCKETS.length] = 4; // past every bound
  const out: Array<[string, number]> = [];
  histogramSamples(out, [['project', 'demo']], DURATION_BUCKETS, counts, 0, 1.25);
  const values = out.filter(([k]) => k.startsWith('_bucket')).map(([, v]) => v);
  t.is(values.length, DURATION_BUCKETS.length + 1);
  for (let i = 1; i < values.length; i++) t.true(values[i]! >= values[i - 1]!);
  t.deepEqual(out[0], ['_bucket{project="demo",le="0.0005"}', 2]);
  t.deepEqual(out[DURATION_BUCKETS.length], ['_bucket{project="demo",le="+Inf"}', 7]);
  t.deepEqual(out.at(-2), ['_sum{project="demo"}', 1.25]);
  t.deepEqual(out.at(-1), ['_count{project="demo"}', 7]);
});

test('mergeSnapshots adds equal series, keeps others apart, keeps first-seen order', (t) => {
  const w0: Family[] = [
    { name: 'a_total', help: 'A.', type: 'counter', samples: [['{p="x"}', 1], ['{p="y"}', 2]] },
    { name: 'h', help: 'H.', type: 'histogram', samples: [['_bucket{le="1"}', 1], ['_bucket{le="+Inf"}', 2], ['_sum', 0.5], ['_count', 2]] },
    { name: 'heap', help: 'Heap.', type: 'gauge', samples: [['{process="w0"}', 100]] },
  ];
  const w1: Family[] = [
    { name: 'a_total', help: 'A.', type: 'counter', samples: [['{p="y"}', 5], ['{p="z"}', 1]] },
    { name: 'h', help: 'H.', type: 'histogram', samples: [['_bucket{le="1"}', 3], ['_bucket{le="+Inf"}', 3], ['_sum', 0.25], ['_count', 3]] },
    { name: 'heap', help: 'Heap.', type: 'gauge', samples: [['{process="w1"}', 200]] },
    { name: 'only1', help: 'O.', type: 'gauge', samples: [] },
  ];
  const m = mergeSnapshots([w0, w1]);
  t.deepEqual(m.map((f) => f.name), ['a_total', 'h', 'heap', 'only1']);
  t.deepEqual(m[0]!.samples, [['{p="x"}', 1], ['{p="y"}', 7], ['{p="z"}', 1]]);
  t.deepEqual(m[1]!.samples, [['_bucket{le="1"}', 4], ['_bucket{le="+Inf"}', 5], ['_sum', 0.75], ['_count', 5]]);
  t.deepEqual(m[2]!.samples, [['{process="w0"}', 100], ['{process="w1"}', 200]]);
  // The inputs are not changed (a worker's snapshot may be merged again).
  t.deepEqual(w0[0]!.samples, [['{p="x"}', 1], ['{p="y"}', 2]]);
});

test('ProcessMetrics: event-loop delay quantiles, heap and RSS, labelled by process', (t) => {
  const p = new ProcessMetrics('mezu_edge', 'edge-worker-0');
  try {
    const text = renderText(p.families());
    t.regex(text, /^mezu_edge_event_loop_delay_seconds\{process="edge-worker-0",quantile="0.99"\} [0-9.e-]+$/m);
    t.regex(text, /^mezu_edge_heap_used_bytes\{process="edge-worker-0"\} \d+$/m);
    t.regex(text, /^mezu_edge_resident_memory_bytes\{process="edge-worker-0"\} \d+$/m);
    t.notRegex(text, /NaN/);
  } finally {
    p.stop();
  }
});
