/**
 * The benchmark's result shapes (bench/results/*.json) and the markdown
 * rendering of the full run (latest.md and stdout).
 */

export interface ComponentCpu {
  cpuSeconds: number;
  /** CPU-µs per unit (per completed request, or per MiB for transfers). */
  usPerUnit: number | null;
  perPidSeconds: Record<string, number>;
}

export interface CpuReport {
  /** Server-side components of this setup: origin, edge, warpgate | nginx, auth. */
  components: Record<string, ComponentCpu>;
  /** All server-side components but the origin: edge + Warpgate, or nginx + auth service. */
  proxyUsPerUnit: number | null;
  /** This process (the load generator) via process.cpuUsage(). */
  bench: ComponentCpu;
  /** Machine busy time (/proc/stat) charged to none of the above: other users' processes, unattributed softirq. */
  other: ComponentCpu;
  machineBusyCores: number;
  /** `other` in cores: how busy the machine was with someone else's work during the window. */
  foreignCores: number;
}

export interface LatencyStats {
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p99_9: number | null;
  mean: number | null;
  max: number | null;
}

export type Setup = 'direct' | 'chain' | 'nginx';
export type LoadKind = 'closed' | 'autocannon-rate' | 'paced';

export interface RunReport {
  name: string;
  label: string;
  setup: Setup;
  tunnel: 'lean' | 'node' | null;
  load: { kind: LoadKind; connections: number; seconds: number; rate: number | null };
  url: string;
  /** Header names sent (values left out: one is the session cookie). */
  headers: string[];
  warmup: { seconds: number; requests: number; non2xx: number; errors: number } | null;
  elapsedSeconds: number;
  requests: {
    completed: number;
    ok2xx: number;
    non2xx: number;
    errors: number;
    timeouts: number;
    errorKinds: Record<string, number>;
    statusCounts: Record<string, number>;
    capped: boolean;
  };
  /** Completed responses / wall-clock window (the same window as the CPU figures). */
  reqPerSec: number;
  /**
   * Exact latency of 2xx responses in ms. Closed-loop and autocannon-rate runs:
   * from the request's write (autocannon's definition). Paced runs: from the
   * scheduled send time (wrk2's, coordinated omission included).
   */
  latencyMs: LatencyStats;
  /** Paced runs only: from the request's actual write. */
  latencyFromSendMs: LatencyStats | null;
  /** autocannon's own histogram (integer ms), when autocannon drove the run. */
  autocannonLatencyMs: { p50: number; p99: number; p99_9: number; max: number } | null;
  /** See LoadOutcome.firstHalfShare (autocannon runs). */
  firstHalfShare: number | null;
  /** Paced runs: most requests waiting for a free connection, and p99 of the pacer's own lateness. */
  maxQueued: number | null;
  releaseLagP99Ms: number | null;
  cpu: CpuReport;
  vsDirect: { throughputRatio: number | null; addedP50Ms: number | null; addedP99Ms: number | null } | null;
  vsNginx: { throughputRatio: number | null; proxyCpuRatio: number | null } | null;
}

export interface RssPeak {
  component: string;
  pid: number;
  baselineMiB: number;
  peakMiB: number;
  growthMiB: number;
}

export interface TransferReport {
  name: string;
  label: string;
  direction: 'upload' | 'download';
  url: string;
  bodyBytes: number;
  concurrency: number;
  seconds: number;
  completed: number;
  ok: number;
  failed: number;
  errorKinds: Record<string, number>;
  /** Body bytes moved (request bodies for uploads, response bodies for downloads). */
  bytes: number;
  elapsedSeconds: number;
  mibPerSec: number;
  latencyMs: LatencyStats;
  /** Body bytes in flight at most (concurrency × body size), MiB: what unbounded buffering would add. */
  inFlightBodyMiB: number;
  rss: RssPeak[];
  rssSamples: number;
  /** CPU-µs per MiB moved, per component. */
  cpu: CpuReport;
}

export interface BudgetLine {
  budget: string;
  limit: string;
  measured: string;
  value: number | null;
  pass: boolean | null;
  source: string;
}

export interface MicroResult {
  name: string;
  nsPerOp: number | null;
  opsPerSec: number | null;
  rme: number | null;
  samples: number;
  note: string | null;
}

export interface BenchReport {
  date: string;
  node: string;
  cpuModel: string;
  cores: number;
  clockTicksPerSecond: number;
  command: string;
  settings: Record<string, unknown>;
  nginx: { version: string | null; note: string };
  runs: RunReport[];
  transfers: TransferReport[];
  budgets: BudgetLine[];
  micro: MicroResult[] | null;
  problems: string[];
  warnings: string[];
  notes: string[];
  ok: boolean;
}

const dash = '–';

export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return dash;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function signed(n: number | null | undefined, digits: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return dash;
  return (n >= 0 ? '+' : '') + num(n, digits);
}

function comp(run: RunReport, name: string): string {
  return num(run.cpu.components[name]?.usPerUnit, 1);
}

export function passText(pass: boolean | null): string {
  return pass === null ? 'NOT MEASURED' : pass ? '**PASS**' : '**FAIL**';
}

export function renderMarkdown(r: BenchReport): string {
  const s = r.settings as { durationSeconds: number; warmupSeconds: number; connections: number; workers: number };
  const out: string[] = [];
  out.push(`## Mezusphere bench — ${r.date}`);
  out.push('');
  out.push(
    `\`${r.command}\` · node ${r.node} · ${r.cpuModel} · ${r.cores} cores · ${s.connections} connections, ` +
      `${s.durationSeconds} s per run after ${s.warmupSeconds} s warm-up · ${s.workers} edge workers · ${r.nginx.version ?? 'no nginx'}`,
  );
  out.push('');
  if (!r.ok) {
    out.push('**PROBLEMS — these figures are not clean:**');
    out.push('');
    for (const p of r.problems) out.push(`- ⚠ ${p}`);
    out.push('');
  }
  if (r.warnings.length > 0) {
    out.push('**WARNINGS:**');
    out.push('');
    for (const w of r.warnings) out.push(`- ⚠ ${w}`);
    out.push('');
  }

  out.push('### Budgets (BRIEF §4)');
  out.push('');
  out.push('| budget | limit | measured | result | from |');
  out.push('|---|---:|---:|---|---|');
  for (const b of r.budgets) out.push(`| ${b.budget} | ${b.limit} | ${b.measured} | ${passText(b.pass)} | ${b.source} |`);
  out.push('');

  const closed = r.runs.filter((x) => x.load.kind === 'closed');
  out.push('### Peak load (closed loop, autocannon)');
  out.push('');
  out.push(
    '| run | req/s | × direct | × nginx auth | p50 ms | p99 ms | +p99 ms | origin µs/req | edge or nginx µs/req | Warpgate or auth µs/req | proxy total µs/req | load gen µs/req | other µs/req | foreign cores | non-2xx | errors |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const run of closed) {
    const front = run.setup === 'nginx' ? comp(run, 'nginx') : run.setup === 'chain' ? comp(run, 'edge') : dash;
    const back = run.setup === 'nginx' ? comp(run, 'auth') : run.setup === 'chain' ? comp(run, 'warpgate') : dash;
    out.push(
      `| ${run.label} | ${num(run.reqPerSec)} | ${run.vsDirect ? num(run.vsDirect.throughputRatio, 2) : '1.00'} | ` +
        `${run.vsNginx ? num(run.vsNginx.throughputRatio, 2) : dash} | ${num(run.latencyMs.p50, 2)} | ${num(run.latencyMs.p99, 2)} | ` +
        `${run.vsDirect ? signed(run.vsDirect.addedP99Ms, 2) : dash} | ${comp(run, 'origin')} | ${front} | ${back} | ` +
        `${run.setup === 'direct' ? dash : num(run.cpu.proxyUsPerUnit, 1)} | ${num(run.cpu.bench.usPerUnit, 1)} | ${num(run.cpu.other.usPerUnit, 1)} | ` +
        `${num(run.cpu.foreignCores, 2)} | ${num(run.requests.non2xx)} | ${num(run.requests.errors)} |`,
    );
  }
  out.push('');

  const half = r.runs.filter((x) => x.load.kind !== 'closed');
  if (half.length > 0) {
    out.push('### Half of peak load (and the paced curve at 1/8 and 1/4 of peak)');
    out.push('');
    out.push(
      '| run | load | offered req/s | served req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | +p50 ms | +p99 ms | p99 from write ms | share in 1st half-second | edge µs/req | Warpgate µs/req | foreign cores | errors |',
    );
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const run of half) {
      out.push(
        `| ${run.label} | ${run.load.kind} | ${num(run.load.rate)} | ${num(run.reqPerSec)} | ${num(run.latencyMs.p50, 3)} | ${num(run.latencyMs.p90, 3)} | ` +
          `${num(run.latencyMs.p99, 3)} | ${num(run.latencyMs.p99_9, 3)} | ${run.vsDirect ? signed(run.vsDirect.addedP50Ms, 3) : dash} | ` +
          `${run.vsDirect ? signed(run.vsDirect.addedP99Ms, 3) : dash} | ${num(run.latencyFromSendMs?.p99, 3)} | ${num(run.firstHalfShare, 2)} | ` +
          `${comp(run, 'edge')} | ${comp(run, 'warpgate')} | ${num(run.cpu.foreignCores, 2)} | ${num(run.requests.errors + run.requests.timeouts + run.requests.non2xx)} |`,
      );
    }
    out.push('');
    out.push(
      '"paced" latencies are from each request\'s scheduled time (bench/paced.ts, coordinated omission included); "p99 from write" excludes waiting for a free connection. ' +
        '"autocannon-rate" is autocannon `overallRate` (latency from write); "share in 1st half-second" near 1.00 means its load arrived in bursts (see bench/paced.ts). ' +
        '"+" columns are against the direct-origin run of the same kind at the same rate.',
    );
    out.push('');
  }

  if (r.transfers.length > 0) {
    out.push('### Large bodies through edge + lean tunnel + Warpgate (protected route)');
    out.push('');
    out.push('| run | body | concurrency | requests ok | MiB/s | p50 ms | p99 ms | in-flight body MiB | peak RSS growth MiB (baseline → peak) | edge µs/MiB | Warpgate µs/MiB | failed |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
    for (const t of r.transfers) {
      const rss = t.rss.map((p) => `${p.component} ${num(p.growthMiB, 1)} (${num(p.baselineMiB, 0)} → ${num(p.peakMiB, 0)})`).join('; ');
      out.push(
        `| ${t.label} | ${num(t.bodyBytes / 1048576, 0)} MiB | ${t.concurrency} | ${num(t.ok)} | ${num(t.mibPerSec, 1)} | ${num(t.latencyMs.p50, 1)} | ${num(t.latencyMs.p99, 1)} | ` +
          `${num(t.inFlightBodyMiB, 0)} | ${rss} | ${num(t.cpu.components.edge?.usPerUnit, 0)} | ${num(t.cpu.components.warpgate?.usPerUnit, 0)} | ${num(t.failed)} |`,
      );
    }
    out.push('');
    out.push('RSS is VmRSS from /proc/<pid>/status sampled every 100 ms during the run; baseline is the sample just before it.');
    out.push('');
  }

  if (r.micro !== null && r.micro.length > 0) {
    out.push('### Micro-benchmarks (tinybench, bench/micro.ts)');
    out.push('');
    out.push(renderMicro(r.micro));
    out.push('');
  }

  out.push(
    'CPU-µs/req = (utime+stime delta from /proc/<pid>/stat over the measured window) × 1e6 / completed requests; edge = primary + workers, nginx = master + workers. ' +
      '"load gen" is this process (autocannon or the pacer) via process.cpuUsage(); "other" is machine busy time (/proc/stat) not charged to any of those; ' +
      '"foreign cores" is that in cores (someone else\'s load on the shared machine).',
  );
  out.push('');
  return out.join('\n');
}

export function renderMicro(micro: readonly MicroResult[]): string {
  const out: string[] = [];
  out.push('| benchmark | ns/op | ops/s | ±% | samples | note |');
  out.push('|---|---:|---:|---:|---:|---|');
  for (const m of micro) out.push(`| ${m.name} | ${num(m.nsPerOp, 0)} | ${num(m.opsPerSec, 0)} | ${num(m.rme, 1)} | ${num(m.samples)} | ${m.note ?? ''} |`);
  return out.join('\n');
}
