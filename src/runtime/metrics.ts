/**
 * Prometheus metrics, the parts every process shares (the Warpgate included):
 * the text exposition format 0.0.4, snapshots that merge by summing, the
 * histogram layout, per-process figures (event-loop delay, heap) and the
 * listener that serves them.
 *
 * Why not prom-client: its objects are what a scrape reads, so counting on the
 * request path would go through them (a label lookup per increment). Here the
 * request path counts into preallocated typed arrays (src/front/metrics.ts)
 * and only a scrape builds label text; this file is the scrape side, a few
 * dozen lines of the format instead of a dependency.
 *
 * A snapshot is a list of families, each with its samples as
 * `[suffix+labels, value]` pairs (`_bucket{project="demo",le="0.005"}`):
 * snapshots of several processes merge by adding the values of equal keys,
 * which is right for counters, for histograms (bucket by bucket) and for the
 * gauges that are edge-wide totals (open streams, tunnels). Per-process
 * gauges carry a `process` label, so they never add up with another's.
 */
import * as http from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Family {
  name: string;
  help: string;
  type: MetricType;
  /** `[suffix + label text, value]`; suffix `''` for counters and gauges, `_bucket`/`_sum`/`_count` for histograms. */
  samples: Array<[string, number]>;
}

/** The content type of the text format (Prometheus, version 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds (seconds) of every duration histogram: 0.5 ms to 60 s, the request path's sub-millisecond range resolved. */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A label value escaped for the text format: backslash, double quote and line feed. */
export function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** `{a="x",b="y"}` from pairs (`''` when there are none). */
export function labels(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/** A number as the format spells it. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * The samples of one histogram series: `counts` holds the observations per
 * bucket, not cumulated (`counts[i]` for `bounds[i]`, the last one past every
 * bound), so the request path adds one to one cell; cumulated here.
 */
export function histogramSamples(out: Array<[string, number]>, labelPairs: ReadonlyArray<readonly [string, string]>, bounds: readonly number[], counts: ArrayLike<number>, offset: number, sum: number): void {
  let acc = 0;
  for (let i = 0; i < bounds.length; i++) {
    acc += counts[offset + i]!;
    out.push([`_bucket${labels([...labelPairs, ['le', num(bounds[i]!)]])}`, acc]);
  }
  acc += counts[offset + bounds.length]!;
  out.push([`_bucket${labels([...labelPairs, ['le', '+Inf']])}`, acc]);
  out.push([`_sum${labels(labelPairs)}`, sum]);
  out.push([`_count${labels(labelPairs)}`, acc]);
}

/**
 * The `q` quantile (0–1) of observations counted per bucket (`counts[i]` for
 * `bounds[i]`, the last past every bound; not cumulated), estimated the way
 * Prometheus's histogram_quantile does: linear within the bucket it falls in,
 * from 0 for the first; one in the +Inf bucket reads as the highest bound.
 * NaN when there are no observations.
 */
export function bucketQuantile(q: number, bounds: readonly number[], counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return NaN;
  const rank = q * total;
  let acc = 0;
  for (let i = 0; i < bounds.length; i++) {
    const c = counts[i] ?? 0;
    if (c > 0 && acc + c >= rank) {
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      return lo + (bounds[i]! - lo) * ((rank - acc) / c);
    }
    acc += c;
  }
  return bounds[bounds.length - 1]!;
}

/** Snapshots of several processes as one: families by name in first-seen order, equal sample keys added. */
export function mergeSnapshots(snapshots: ReadonlyArray<readonly Family[]>): Family[] {
  const byName = new Map<string, { f: Family; at: Map<string, number> }>();
  const out: Family[] = [];
  for (const snap of snapshots) {
    for (const f of snap) {
      let m = byName.get(f.name);
      if (m === undefined) {
        m = { f: { name: f.name, help: f.help, type: f.type, samples: [] }, at: new Map() };
        byName.set(f.name, m);
        out.push(m.f);
      }
      for (const [k, v] of f.samples) {
        const i = m.at.get(k);
        if (i === undefined) {
          m.at.set(k, m.f.samples.length);
          m.f.samples.push([k, v]);
        } else m.f.samples[i]![1] += v;
      }
    }
  }
  return out;
}

/** The text exposition format (0.0.4): HELP, TYPE, then one line per sample. */
export function renderText(families: readonly Family[]): string {
  let s = '';
  for (const f of families) {
    s += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${f.name} ${f.type}\n`;
    for (const [k, v] of f.samples) s += `${f.name}${k} ${num(v)}\n`;
  }
  return s;
}

/**
 * Event-loop delay and heap of this process, labelled `process` (e.g.
 * `edge-worker-0`, `edge-primary`, `warpgate`). The delay is sampled by
 * node's own histogram (perf_hooks, every 20 ms, off the JS thread's work)
 * and reset at each scrape, so the figures cover the time since the last one.
 */
export class ProcessMetrics {
  private readonly delay: IntervalHistogram;

  constructor(
    private readonly prefix: string,
    private readonly process: string,
  ) {
    this.delay = monitorEventLoopDelay({ resolution: 20 });
    this.delay.enable();
  }

  families(): Family[] {
    const l = labels([['process', this.process]]);
    const d = this.delay;
    // ns → s; a histogram with no sample yet reports NaN-free zeros.
    const s = (ns: number) => (Number.isFinite(ns) && d.count > 0 ? ns / 1e9 : 0);
    const out: Family[] = [
      { name: `${this.prefix}_event_loop_delay_seconds`, help: 'Event-loop delay since the previous scrape (perf_hooks, 20 ms resolution), by quantile.', type: 'gauge', samples: [
        [labels([['process', this.process], ['quantile', '0.5']]), s(d.percentile(50))],
        [labels([['process', this.process], ['quantile', '0.99']]), s(d.percentile(99))],
        [labels([['process', this.process], ['quantile', '1']]), s(d.max)],
      ] },
    ];
    d.reset();
    const mem = process.memoryUsage();
    out.push(
      { name: `${this.prefix}_heap_used_bytes`, help: 'V8 heap in use.', type: 'gauge', samples: [[l, mem.heapUsed]] },
      { name: `${this.prefix}_heap_total_bytes`, help: 'V8 heap reserved.', type: 'gauge', samples: [[l, mem.heapTotal]] },
      { name: `${this.prefix}_resident_memory_bytes`, help: 'Resident set size.', type: 'gauge', samples: [[l, mem.rss]] },
    );
    return out;
  }

  stop(): void {
    this.delay.disable();
  }
}

export interface MetricsListener {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * The metrics listener: a plain node:http server (it is not the request
 * path), `GET /metrics` answered with `collect()`'s text, anything else 404.
 * Bind it to loopback unless something in front of it guards it: the figures
 * name projects, rules and pools.
 */
export function serveMetrics(host: string, port: number, collect: () => Promise<string>, log: (m: string) => void): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found; metrics are at /metrics\n');
      return;
    }
    collect().then(
      (text) => {
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        log(`metrics: a scrape failed: ${err.message}`);
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      const p = typeof a === 'object' && a !== null ? a.port : port;
      const h = host.includes(':') ? `[${host}]` : host;
      resolve({ port: p, url: `http://${h}:${p}/metrics`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
