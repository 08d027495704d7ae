/**
 * Text output of the loadtest: numbers, the latency histogram (one bar per
 * percentile, its length proportional to the latency), the summary tables and
 * the progress line. Pure functions of a report, so they are tested without a
 * run.
 */

/** 41020 → "41,020"; fractions to `digits` places. */
export function formatCount(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A latency given in µs, with three significant digits: "87 µs", "0.412 ms", "41.2 ms", "1.23 s". */
export function formatLatency(us: number | null): string {
  if (us === null) return '–';
  if (us < 100) return `${Math.round(us)} µs`;
  const ms = us / 1000;
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Bytes in binary units: "512 B", "1.5 KiB", "2.40 MiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** Seconds for progress and headers: "2 s", "1.5 s", "90 s". */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `value / scale × width` cells, in eighths of a cell; at least a sliver for any value > 0. */
export function bar(value: number, scale: number, width: number): string {
  if (!(value > 0) || !(scale > 0)) return '';
  const eighths = Math.max(1, Math.round((Math.min(value, scale) / scale) * width * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8]!;
}

/**
 * Columns padded to their widest cell. `align` has one letter per column, `l`
 * or `r`; by default the first column is left-aligned and the others (numbers)
 * right-aligned.
 */
export function table(rows: string[][], opts: { indent?: string; gap?: string; align?: string } = {}): string[] {
  const { indent = '  ', gap = '   ', align = 'l' } = opts;
  const widths: number[] = [];
  // Length in code points: "µ" and the block characters are one column each.
  const len = (c: string) => [...c].length;
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, len(c))));
  const pad = (c: string, i: number) => {
    const fill = ' '.repeat(widths[i]! - len(c));
    return (align[i] ?? 'r') === 'l' ? c + fill : fill + c;
  };
  return rows.map((r) => (indent + r.map(pad).join(gap)).trimEnd());
}

export interface PercentileRow {
  label: string;
  /** µs, or null when nothing was recorded. */
  us: number | null;
}

/** One row per percentile; bars share the scale of the largest value shown (the max), so the tail is visible. */
export function renderHistogram(rows: PercentileRow[], width = 40): string[] {
  const scale = Math.max(0, ...rows.map((r) => r.us ?? 0));
  return table(rows.map((r) => [r.label, formatLatency(r.us), r.us === null ? '' : bar(r.us, scale, width)]), { gap: '  ', align: 'lrl' });
}

/** The report as the run produced it; `LoadtestReport` in index.ts is this plus the target and credential. */
export interface Stats {
  elapsedMs: number;
  responses: number;
  ok2xx: number;
  non2xx: number;
  /** Connection errors (timeouts not included). */
  errors: number;
  timeouts: number;
  byStatus: Record<string, number>;
  bytes: number;
  reqPerSec: { avg: number | null; p50: number | null; p99: number | null; samples: number };
  latencyUs: { min: number | null; avg: number | null; p10: number | null; p25: number | null; p50: number | null; p75: number | null; p90: number | null; p99: number | null; p99_9: number | null; max: number | null };
}

/** What each frequent failure status most likely means when the edge answers a loadtest. */
const STATUS_HINTS: Record<string, string> = {
  '401': 'the edge did not accept the credential: is the URL host served by that project, the session or key valid, the cookie name right for the edge scheme (--https-cookie)?',
  '403': 'the principal lacks what the route requires (--roles/--permissions), or the route is closed',
  '404': 'no such path at the origin (or a reserved /_mezu/ path)',
  '421': 'no project serves this Host; set it with --header "Host: NAME"',
  '429': 'throttled',
  '502': 'no Warpgate is connected for the project, or the origin failed',
  '503': 'the edge is draining or failed closed (see its log)',
  '504': 'the Warpgate or the origin did not answer in time',
};

export function statusHint(status: string): string | null {
  return STATUS_HINTS[status] ?? null;
}

export function renderStats(s: Stats): string[] {
  const l = s.latencyUs;
  const lines: string[] = [];
  lines.push(`Latency histogram (${formatCount(s.responses)} responses; bar length ∝ latency)`);
  lines.push(
    ...renderHistogram([
      { label: 'min', us: l.min },
      { label: 'p10', us: l.p10 },
      { label: 'p25', us: l.p25 },
      { label: 'p50', us: l.p50 },
      { label: 'p75', us: l.p75 },
      { label: 'p90', us: l.p90 },
      { label: 'p99', us: l.p99 },
      { label: 'p99.9', us: l.p99_9 },
      { label: 'max', us: l.max },
    ]),
  );
  lines.push('');
  const rps = (n: number | null) => (n === null ? '–' : formatCount(n, n < 100 ? 1 : 0));
  lines.push(
    ...table([
      ['', 'avg', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      ['Latency', formatLatency(l.avg), formatLatency(l.p50), formatLatency(l.p90), formatLatency(l.p99), formatLatency(l.p99_9), formatLatency(l.max)],
      ['Req/s', rps(s.reqPerSec.avg), rps(s.reqPerSec.p50), '', rps(s.reqPerSec.p99), '', ''],
    ]),
  );
  lines.push('');
  const secs = s.elapsedMs / 1000;
  const status = Object.entries(s.byStatus).sort(([a], [b]) => a.localeCompare(b)).map(([c, n]) => `${c} ×${formatCount(n)}`).join(', ');
  lines.push(
    ...table([
      ['Throughput', `${formatBytes(secs > 0 ? s.bytes / secs : 0)}/s (${formatBytes(s.bytes)} in ${secs.toFixed(2)} s)`],
      ['Responses', `2xx ${formatCount(s.ok2xx)}   non-2xx ${formatCount(s.non2xx)}   errors ${formatCount(s.errors)}   timeouts ${formatCount(s.timeouts)}`],
      ['Status', status === '' ? '–' : status],
    ], { align: 'll' }),
  );
  if (s.reqPerSec.samples === 0 && s.responses > 0) lines.push('  (req/s p50/p99 need at least one whole second of run; avg is over the run)');
  return lines;
}

export interface Progress {
  elapsedMs: number;
  /** The planned duration (timed runs) or null (amount runs). */
  plannedMs: number | null;
  amount: number | null;
  responses: number;
  /** Responses per second since the previous progress report. */
  currentRate: number;
  ok2xx: number;
  non2xx: number;
  /** Errors and timeouts. */
  errors: number;
}

export function renderProgress(p: Progress): string {
  const time = p.plannedMs === null ? formatSeconds(Math.floor(p.elapsedMs / 1000) * 1000) : `${formatSeconds(Math.min(Math.floor(p.elapsedMs / 1000) * 1000, p.plannedMs))}/${formatSeconds(p.plannedMs)}`;
  const done = p.amount === null ? `${formatCount(p.responses)} responses` : `${formatCount(p.responses)}/${formatCount(p.amount)} responses`;
  return `loadtest: ${time}  ${done}  ${formatCount(p.currentRate)} req/s  2xx ${formatCount(p.ok2xx)}  non-2xx ${formatCount(p.non2xx)}  errors ${formatCount(p.errors)}`;
}
