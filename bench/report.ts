/**
 * The benchmark's result shapes (bench/results/*.json) and the markdown
 * rendering of the full run (latest.md and stdout).
 */
import type { HostileResult } from './hostile.js';
import type { RawLoadOutcome } from './rawload.js';

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
  load: { kind: LoadKind; connections: number; seconds: number; rate: number | null; pipelining?: number };
  /** Peak round (run.ts repeats the peak runs; figures vary by ±25 % between rounds on 2 shared cores). */
  round?: number;
  /** Edge workers of the chain, for chain runs of the workers comparison. */
  workers?: number;
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
    /** Bytes read by autocannon (its `throughput.total`), when it drove the run. */
    bytesRead?: number;
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

/** Tunnel closes seen in the edge's and the Warpgate's log lines during a window (bench/isolation.ts TunnelWatch). */
export interface TunnelCloses {
  /** Warpgate: "tunnel to edge worker N closed" (not drained for a certificate rotation). */
  warpgate: number;
  /** Edge: "connection to a warpgate … closed". */
  edge: number;
  /** Lines naming ENHANCE_YOUR_CALM or "too many" (the HTTP/2 flood guards). */
  calm: number;
  /** The first few such lines, verbatim. */
  lines: string[];
}

/** One run of bench/rawload.ts (the client that never retries). */
export interface RawRunReport {
  name: string;
  label: string;
  setup: Setup;
  /** Path requested (each request adds ?n=SEQ when the order is checked). */
  url: string;
  localAddress: string;
  connections: number;
  /** Requests outstanding per connection: 1, or the pipelining depth. */
  depth: number;
  inFlight: number;
  seconds: number;
  warmup: { seconds: number; requests: number; non2xx: number; errors: number } | null;
  elapsedSeconds: number;
  /** Complete answers (any status) / window. */
  reqPerSec: number;
  /** 2xx answers / window: the throughput compared between runs. */
  okPerSec: number;
  outcome: Omit<RawLoadOutcome, 'latencyMs' | 'elapsedSeconds'>;
  /** 2xx latency from the request's write, ms. */
  latencyMs: LatencyStats;
  cpu: CpuReport;
  tunnels: TunnelCloses;
}

export interface PipelinedReport {
  connections: number;
  depth: number;
  seconds: number;
  /** Raw client: direct unpipelined and pipelined, chain unpipelined and pipelined. */
  runs: RawRunReport[];
  /** autocannon -c connections -p depth through the chain (it re-sends on closed connections). */
  autocannon: RunReport | null;
  autocannonTunnels: TunnelCloses | null;
  /** 2xx/s pipelined ÷ unpipelined, same requests in flight (budget: ≥ 0.8 through the chain). */
  chainRatio: number | null;
  directRatio: number | null;
}

export interface TwoTenantReport {
  hostile: {
    options: Record<string, unknown>;
    result: HostileResult | null;
    cpuSeconds: number | null;
    cores: number | null;
  };
  solo: RawRunReport;
  beside: RawRunReport;
  after: RawRunReport | null;
  /** Well-behaved 2xx/s beside the hostile tenant ÷ alone (budget: ≥ 0.5). */
  ratio: number | null;
  /** Everything the well-behaved tenant got beside the hostile one that was not a correct 2xx (must be 0). */
  errorsBeside: number;
  /** Tunnels closed during the hostile window and the one after it (must be 0). */
  tunnelsClosed: number;
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
  /** Sections of the bench that ran (`--only` runs a subset). */
  sections: string[];
  nginx: { version: string | null; note: string };
  runs: RunReport[];
  transfers: TransferReport[];
  pipelined: PipelinedReport | null;
  twoTenant: TwoTenantReport | null;
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

function comp(run: { cpu: CpuReport }, name: string): string {
  return num(run.cpu.components[name]?.usPerUnit, 1);
}

export function passText(pass: boolean | null): string {
  return pass === null ? 'NOT MEASURED' : pass ? '**PASS**' : '**FAIL**';
}

export function median(xs: ReadonlyArray<number | null | undefined>): number | null {
  const v = xs.filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** The CPU figures every load table shows, per unit, by process. */
const SPLIT = ['origin', 'edge', 'warpgate', 'nginx', 'auth', 'proxy', 'loadgen', 'other'] as const;
type SplitKey = (typeof SPLIT)[number];

function split(cpu: CpuReport, k: SplitKey): number | null {
  if (k === 'proxy') return cpu.proxyUsPerUnit;
  if (k === 'loadgen') return cpu.bench.usPerUnit;
  if (k === 'other') return cpu.other.usPerUnit;
  return cpu.components[k]?.usPerUnit ?? null;
}

/**
 * One peak target over its rounds: each figure is the median of that figure
 * over the rounds (not the figures of one "median round"), because single
 * rounds vary by ±25 % on the shared 2-core machine.
 */
export interface PeakSummary {
  name: string;
  label: string;
  setup: Setup;
  workers: number | null;
  rounds: RunReport[];
  reqPerSec: number | null;
  p50: number | null;
  p99: number | null;
  xDirect: number | null;
  xNginx: number | null;
  addedP99: number | null;
  us: Record<SplitKey, number | null>;
  foreignCores: number | null;
  non2xx: number;
  errors: number;
}

/** Closed-loop, unpipelined runs grouped by target, in the order they first ran. */
export function peakSummaries(runs: readonly RunReport[]): PeakSummary[] {
  const closed = runs.filter((x) => x.load.kind === 'closed' && (x.load.pipelining ?? 1) === 1);
  const names = [...new Set(closed.map((x) => x.name))];
  return names.map((name) => {
    const rs = closed.filter((x) => x.name === name);
    const first = rs[0]!;
    const us = {} as Record<SplitKey, number | null>;
    for (const k of SPLIT) us[k] = median(rs.map((x) => split(x.cpu, k)));
    return {
      name,
      label: first.label,
      setup: first.setup,
      workers: first.workers ?? null,
      rounds: rs,
      reqPerSec: median(rs.map((x) => x.reqPerSec)),
      p50: median(rs.map((x) => x.latencyMs.p50)),
      p99: median(rs.map((x) => x.latencyMs.p99)),
      xDirect: first.setup === 'direct' ? 1 : median(rs.map((x) => x.vsDirect?.throughputRatio)),
      xNginx: median(rs.map((x) => x.vsNginx?.throughputRatio)),
      addedP99: median(rs.map((x) => x.vsDirect?.addedP99Ms)),
      us,
      foreignCores: median(rs.map((x) => x.cpu.foreignCores)),
      non2xx: rs.reduce((a, x) => a + x.requests.non2xx, 0),
      errors: rs.reduce((a, x) => a + x.requests.errors, 0),
    };
  });
}

/** Median of `f` over a target's rounds, with each round's value: "12.3 (11.0 / 12.3 / 15.1)". */
function withRounds(rs: readonly RunReport[], f: (r: RunReport) => number | null | undefined, digits: number): string {
  const m = median(rs.map(f));
  if (rs.length <= 1) return num(m, digits);
  return `${num(m, digits)} (${rs.map((x) => num(f(x), digits)).join(' / ')})`;
}

function cores(c: ComponentCpu | undefined, seconds: number): string {
  return c === undefined || seconds <= 0 ? dash : num(c.cpuSeconds / seconds, 2);
}

function tunnelText(t: TunnelCloses | null | undefined): string {
  if (t === null || t === undefined) return dash;
  return `${t.warpgate} / ${t.edge}${t.calm > 0 ? ` (${t.calm} flood-guard lines)` : ''}`;
}

function statusText(counts: Record<string, number>): string {
  const e = Object.entries(counts);
  return e.length === 0 ? 'none' : e.map(([k, v]) => `${k}: ${num(v)}`).join(', ');
}

export function renderMarkdown(r: BenchReport): string {
  const s = r.settings as { durationSeconds: number; warmupSeconds: number; connections: number; workers: number; rounds: number };
  const out: string[] = [];
  out.push(`## Mezusphere bench — ${r.date}`);
  out.push('');
  out.push(
    `\`${r.command}\` · node ${r.node} · ${r.cpuModel} · ${r.cores} cores · ${s.connections} connections, ` +
      `${s.durationSeconds} s per run after ${s.warmupSeconds} s warm-up · ${s.rounds} peak rounds · ${s.workers} edge workers · ${r.nginx.version ?? 'no nginx'} · sections: ${r.sections.join(', ')}`,
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

  out.push('### Budgets (the performance budgets in bench/RESULTS.md)');
  out.push('');
  out.push('| budget | limit | measured | result | from |');
  out.push('|---|---:|---:|---|---|');
  for (const b of r.budgets) out.push(`| ${b.budget} | ${b.limit} | ${b.measured} | ${passText(b.pass)} | ${b.source} |`);
  out.push('');

  const peaks = peakSummaries(r.runs);
  if (peaks.length > 0) {
    out.push(`### Peak load (closed loop, autocannon): median of the rounds`);
    out.push('');
    out.push(
      '| run | rounds | req/s | × direct | × nginx auth | p50 ms | p99 ms | +p99 ms | origin µs/req | edge or nginx µs/req | Warpgate or auth µs/req | proxy total µs/req | load gen µs/req | other µs/req | foreign cores | non-2xx | errors |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of peaks) {
      const front = p.setup === 'nginx' ? p.us.nginx : p.setup === 'chain' ? p.us.edge : null;
      const back = p.setup === 'nginx' ? p.us.auth : p.setup === 'chain' ? p.us.warpgate : null;
      out.push(
        `| ${p.label} | ${p.rounds.length} | ${num(p.reqPerSec)} | ${num(p.xDirect, 2)} | ${num(p.xNginx, 2)} | ${num(p.p50, 2)} | ${num(p.p99, 2)} | ` +
          `${p.setup === 'direct' ? dash : signed(p.addedP99, 2)} | ${num(p.us.origin, 1)} | ${num(front, 1)} | ${num(back, 1)} | ` +
          `${p.setup === 'direct' ? dash : num(p.us.proxy, 1)} | ${num(p.us.loadgen, 1)} | ${num(p.us.other, 1)} | ${num(p.foreignCores, 2)} | ${num(p.non2xx)} | ${num(p.errors)} |`,
      );
    }
    out.push('');
    out.push('Each figure is the median of that figure over the rounds (each round runs every target once, interleaved), not one round\'s row; "× direct" and "+p99" compare each round with that round\'s direct run.');
    out.push('');

    const multi = peaks.filter((p) => p.rounds.length > 1 || p.rounds.some((x) => x.round !== undefined));
    if (multi.length > 0) {
      out.push('### Peak rounds: CPU-µs per request by process, each round and the median');
      out.push('');
      out.push('| run | round | req/s | p99 ms | origin | edge (primary + workers) | Warpgate | proxy total | load gen (this process) | other | foreign cores |');
      out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const p of multi) {
        for (const x of p.rounds) {
          out.push(
            `| ${p.label} | ${x.round ?? dash} | ${num(x.reqPerSec)} | ${num(x.latencyMs.p99, 2)} | ${comp(x, 'origin')} | ${comp(x, 'edge')} | ${comp(x, 'warpgate')} | ` +
              `${x.setup === 'direct' ? dash : num(x.cpu.proxyUsPerUnit, 1)} | ${num(x.cpu.bench.usPerUnit, 1)} | ${num(x.cpu.other.usPerUnit, 1)} | ${num(x.cpu.foreignCores, 2)} |`,
          );
        }
        if (p.rounds.length > 1) {
          out.push(
            `| **${p.label}** | **median** | **${num(p.reqPerSec)}** | **${num(p.p99, 2)}** | **${num(p.us.origin, 1)}** | **${num(p.us.edge, 1)}** | **${num(p.us.warpgate, 1)}** | ` +
              `**${p.setup === 'direct' ? dash : num(p.us.proxy, 1)}** | **${num(p.us.loadgen, 1)}** | **${num(p.us.other, 1)}** | **${num(p.foreignCores, 2)}** |`,
          );
        }
      }
      out.push('');
    }

    const chains = peaks.filter((p) => p.setup === 'chain' && p.name.startsWith('lean-protected') && p.workers !== null);
    if (chains.length >= 2) {
      const [a, b] = chains;
      const w = (n: number | null) => `${n} worker${n === 1 ? '' : 's'}`;
      out.push(`### Edge workers: ${a!.workers} vs ${b!.workers} (protected GET at peak, same rounds)`);
      out.push('');
      out.push(`| figure | ${w(a!.workers)}: median (each round) | ${w(b!.workers)}: median (each round) | ${b!.workers} ÷ ${a!.workers} (medians) |`);
      out.push('|---|---:|---:|---:|');
      const row = (label: string, f: (x: RunReport) => number | null | undefined, digits: number) => {
        const ma = median(a!.rounds.map(f));
        const mb = median(b!.rounds.map(f));
        out.push(`| ${label} | ${withRounds(a!.rounds, f, digits)} | ${withRounds(b!.rounds, f, digits)} | ${ma === null || mb === null || ma === 0 ? dash : num(mb / ma, 2)} |`);
      };
      row('req/s', (x) => x.reqPerSec, 0);
      row('p50 ms', (x) => x.latencyMs.p50, 2);
      row('p99 ms', (x) => x.latencyMs.p99, 2);
      row('edge CPU-µs/req (primary + workers)', (x) => x.cpu.components.edge?.usPerUnit, 1);
      row('Warpgate CPU-µs/req', (x) => x.cpu.components.warpgate?.usPerUnit, 1);
      row('origin CPU-µs/req', (x) => x.cpu.components.origin?.usPerUnit, 1);
      row('edge + Warpgate CPU-µs/req', (x) => x.cpu.proxyUsPerUnit, 1);
      row('load gen CPU-µs/req', (x) => x.cpu.bench.usPerUnit, 1);
      row('other CPU-µs/req', (x) => x.cpu.other.usPerUnit, 1);
      row('machine busy, cores', (x) => x.cpu.machineBusyCores, 2);
      out.push('');
      out.push(
        `${w(b!.workers)} (one fewer than ${w(a!.workers)}) leaves a core to the Warpgate (and to the origin and the load generator, which share the machine here); nothing is pinned, the kernel places the processes. ` +
          'Both chains are up during the rounds, each with its own Warpgate and data dir; the idle one counts in "other".',
      );
      out.push('');
    }
  }

  const half = r.runs.filter((x) => x.load.kind !== 'closed');
  if (half.length > 0) {
    out.push('### Half of peak load (and the paced curve at 1/8 and 1/4 of peak)');
    out.push('');
    out.push(
      '| run | load | offered req/s | served req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | +p50 ms | +p99 ms | p99 from write ms | share in 1st half-second | origin µs/req | edge µs/req | Warpgate µs/req | load gen µs/req | foreign cores | errors |',
    );
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const run of half) {
      out.push(
        `| ${run.label} | ${run.load.kind} | ${num(run.load.rate)} | ${num(run.reqPerSec)} | ${num(run.latencyMs.p50, 3)} | ${num(run.latencyMs.p90, 3)} | ` +
          `${num(run.latencyMs.p99, 3)} | ${num(run.latencyMs.p99_9, 3)} | ${run.vsDirect ? signed(run.vsDirect.addedP50Ms, 3) : dash} | ` +
          `${run.vsDirect ? signed(run.vsDirect.addedP99Ms, 3) : dash} | ${num(run.latencyFromSendMs?.p99, 3)} | ${num(run.firstHalfShare, 2)} | ` +
          `${comp(run, 'origin')} | ${comp(run, 'edge')} | ${comp(run, 'warpgate')} | ${num(run.cpu.bench.usPerUnit, 1)} | ${num(run.cpu.foreignCores, 2)} | ${num(run.requests.errors + run.requests.timeouts + run.requests.non2xx)} |`,
      );
    }
    out.push('');
    out.push(
      '"paced" latencies are from each request\'s scheduled time (bench/paced.ts, coordinated omission included); "p99 from write" excludes waiting for a free connection. ' +
        '"autocannon-rate" is autocannon `overallRate` (latency from write); "share in 1st half-second" near 1.00 means its load arrived in bursts (see bench/paced.ts). ' +
        '"+" columns are against the direct-origin run of the same kind at the same rate. At a fixed rate the load generator\'s and the idle processes\' CPU per request rise as the rate falls.',
    );
    out.push('');
  }

  if (r.transfers.length > 0) {
    out.push('### Large bodies through edge + lean tunnel + Warpgate (protected route)');
    out.push('');
    out.push('| run | body | concurrency | requests ok | MiB/s | p50 ms | p99 ms | in-flight body MiB | peak RSS growth MiB (baseline → peak) | origin µs/MiB | edge µs/MiB | Warpgate µs/MiB | load gen µs/MiB | failed |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|');
    for (const t of r.transfers) {
      const rss = t.rss.map((p) => `${p.component} ${num(p.growthMiB, 1)} (${num(p.baselineMiB, 0)} → ${num(p.peakMiB, 0)})`).join('; ');
      out.push(
        `| ${t.label} | ${num(t.bodyBytes / 1048576, 0)} MiB | ${t.concurrency} | ${num(t.ok)} | ${num(t.mibPerSec, 1)} | ${num(t.latencyMs.p50, 1)} | ${num(t.latencyMs.p99, 1)} | ` +
          `${num(t.inFlightBodyMiB, 0)} | ${rss} | ${num(t.cpu.components.origin?.usPerUnit, 0)} | ${num(t.cpu.components.edge?.usPerUnit, 0)} | ${num(t.cpu.components.warpgate?.usPerUnit, 0)} | ` +
          `${num(t.cpu.bench.usPerUnit, 0)} | ${num(t.failed)} |`,
      );
    }
    out.push('');
    out.push('RSS is VmRSS from /proc/<pid>/status sampled every 100 ms during the run; baseline is the sample just before it.');
    out.push('');
  }

  if (r.pipelined !== null) renderPipelined(out, r.pipelined);
  if (r.twoTenant !== null) renderTwoTenant(out, r.twoTenant);

  if (r.micro !== null && r.micro.length > 0) {
    out.push('### Micro-benchmarks (tinybench, bench/micro.ts)');
    out.push('');
    out.push(renderMicro(r.micro));
    out.push('');
  }

  out.push(
    'CPU-µs/req = (utime+stime delta from /proc/<pid>/stat over the measured window) × 1e6 / completed requests; edge = primary + workers, nginx = master + workers. ' +
      '"load gen" is this process (autocannon, the pacer or the raw client, all in-process) via process.cpuUsage() (getrusage: the same utime+stime of all its threads as /proc/self/stat, at µs resolution); ' +
      '"other" is machine busy time (/proc/stat) not charged to any of those; "foreign cores" is that in cores (someone else\'s load on the shared machine).',
  );
  out.push('');
  return out.join('\n');
}

/** Everything a raw run counted that is not a 2xx answer, in words. */
export function badText(r: RawRunReport): string {
  const o = r.outcome;
  const parts: string[] = [];
  const add = (n: number, what: string) => {
    if (n > 0) parts.push(`${n} ${what}`);
  };
  add(o.non2xx, `non-2xx ${JSON.stringify(Object.fromEntries(Object.entries(o.statusCounts).filter(([k]) => !k.startsWith('2'))))}`);
  add(o.lost, 'lost (connection closed or reset under them)');
  add(o.timeouts, 'timed out');
  add(o.unanswered, 'unanswered at the end');
  add(o.misordered, 'misordered');
  add(o.protocolErrors, 'protocol errors');
  add(o.connectErrors, 'connect errors');
  add(o.resets, 'connections reset');
  add(o.closedWithPending, 'connections closed with requests outstanding');
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function rawRow(x: RawRunReport, vs: RawRunReport | undefined): string {
  const o = x.outcome;
  const ratio = vs === undefined || vs.okPerSec === 0 ? dash : num(x.okPerSec / vs.okPerSec, 2);
  return (
    `| ${x.label} | ${x.inFlight} | ${num(x.okPerSec)} | ${ratio} | ${num(o.sent)} | ${num(o.responses)} | ${num(o.lost)} | ${num(o.closedWithPending)} | ${num(o.resets)} | ` +
    `${num(o.misordered)} | ${num(o.timeouts + o.unanswered)} | ${num(o.connects)} | ${num(x.latencyMs.p99, 2)} | ${comp(x, 'origin')} | ${comp(x, 'edge')} | ${comp(x, 'warpgate')} | ` +
    `${num(x.cpu.bench.usPerUnit, 1)} | ${cores(x.cpu.components.edge, x.elapsedSeconds)} | ${tunnelText(x.tunnels)} |`
  );
}

function renderPipelined(out: string[], p: PipelinedReport): void {
  out.push(`### Pipelining: ${p.connections} connections × ${p.depth} pipelined vs ${p.connections * p.depth} connections × 1 (${p.seconds} s each)`);
  out.push('');
  out.push(
    '| run | in flight | 2xx/s | × unpipelined | requests written | answers | lost | conns closed with requests outstanding | conns reset | misordered | timed out | connections opened | p99 ms | origin µs/req | edge µs/req | Warpgate µs/req | load gen µs/req | edge cores | tunnels closed (Warpgate / edge) |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const by = (n: string) => p.runs.find((x) => x.name === n);
  for (const x of p.runs) {
    const ref = x.depth > 1 ? by(x.setup === 'direct' ? 'pipe-direct-unpipelined' : 'pipe-chain-unpipelined') : undefined;
    out.push(rawRow(x, ref));
  }
  out.push('');
  const ac = p.autocannon;
  if (ac !== null) {
    out.push(
      `autocannon -c ${p.connections} -p ${p.depth} through the chain, as an operator would run it: ${num(ac.requests.completed)} answers (${num(ac.reqPerSec)}/s; ${statusText(ac.requests.statusCounts)}), ` +
        `${num(ac.requests.errors)} errors, ${num(ac.requests.timeouts)} timeouts, ${num(ac.requests.bytesRead)} bytes read in ${num(ac.elapsedSeconds, 1)} s; ` +
        `edge ${cores(ac.cpu.components.edge, ac.elapsedSeconds)} cores busy; tunnels closed (Warpgate / edge) ${tunnelText(p.autocannonTunnels)}. ` +
        'autocannon re-sends the requests of a connection closed under it, so its count shows no lost requests; the raw client above never re-sends and counts them.',
    );
    out.push('');
  }
  out.push(
    'Raw client (bench/rawload.ts): each connection keeps its requests outstanding (written back to back when pipelined), each request to …/seq?n=i whose answer must carry x-bench-seq: i ("misordered" otherwise). ' +
      'A request whose connection closes or resets before its answer is "lost" and never re-sent; a replacement connection (at most 1,000 per second) carries new requests only. ' +
      '"× unpipelined" is 2xx/s against the same target with the same requests in flight on one-request connections. µs/req divide by answers (– when there were none); "edge cores" is the edge\'s CPU over the window, whatever it served.',
  );
  out.push('');
}

function renderTwoTenant(out: string[], t: TwoTenantReport): void {
  const h = t.hostile.options as { localAddress: string; abortRate: number; delayMs: number; abortAfterMs: number; abortConcurrency: number; pipelineConnections: number; pipelineDepth: number; pipelineConnectsPerSecond: number };
  out.push(`### Two tenants: a well-behaved client alone, beside a hostile one, and alone again`);
  out.push('');
  out.push(
    '| window | 2xx/s | × alone | p50 ms | p99 ms | not a correct 2xx | tunnels closed (Warpgate / edge) | origin µs/req | edge µs/req | Warpgate µs/req | load gen µs/req | edge cores | Warpgate cores | hostile cores | foreign cores |',
  );
  out.push('|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of [t.solo, t.beside, t.after]) {
    if (x === null) continue;
    out.push(
      `| ${x.label} (${num(x.elapsedSeconds, 1)} s) | ${num(x.okPerSec)} | ${t.solo.okPerSec === 0 ? dash : num(x.okPerSec / t.solo.okPerSec, 2)} | ${num(x.latencyMs.p50, 2)} | ${num(x.latencyMs.p99, 2)} | ` +
        `${badText(x)} | ${tunnelText(x.tunnels)} | ${comp(x, 'origin')} | ${comp(x, 'edge')} | ${comp(x, 'warpgate')} | ${num(x.cpu.bench.usPerUnit, 1)} | ` +
        `${cores(x.cpu.components.edge, x.elapsedSeconds)} | ${cores(x.cpu.components.warpgate, x.elapsedSeconds)} | ${cores(x.cpu.components.hostile, x.elapsedSeconds)} | ${num(x.cpu.foreignCores, 2)} |`,
    );
  }
  out.push('');
  const res = t.hostile.result;
  out.push(
    `Hostile tenant (bench/hostile.ts, its own process, from ${h.localAddress}, its own session): ` +
      `(a) ${h.pipelineConnections} connections × ${h.pipelineDepth} pipelined GETs, replaced when closed (≤ ${h.pipelineConnectsPerSecond}/s); ` +
      `(b) GET /api/v1/slow?delay=${h.delayMs} reset (TCP RST) 1–${h.abortAfterMs} ms after it was written, ≤ ${h.abortRate}/s, ≤ ${h.abortConcurrency} open.`,
  );
  out.push('');
  if (res === null) {
    out.push('The hostile tenant gave no result (see the problems above).');
  } else {
    out.push('| hostile part | requests written | answers by status | 429 (per-client cap) | aborted by it | lost / closed by the edge | connections | written per second |');
    out.push('|---|---:|---|---:|---:|---|---:|---:|');
    const pl = res.pipeline;
    if (pl !== null) {
      out.push(
        `| (a) pipelining | ${num(pl.sent)} | ${statusText(pl.statusCounts)} | ${num(pl.statusCounts['429'] ?? 0)} | – | ${num(pl.lost)} lost; ${num(pl.closedWithPending)} closed, ${num(pl.resets)} reset with requests outstanding | ${num(pl.connects)} | ${num(pl.sent / (res.options.seconds || 1))} |`,
      );
    }
    const ab = res.abort;
    if (ab !== null) {
      out.push(
        `| (b) slow path, aborted | ${num(ab.started)} | ${statusText(ab.answered)} | ${num(ab.answered['429'] ?? 0)} | ${num(ab.aborted)} | ${num(ab.closedByServer)} closed by the edge before an answer; ${num(ab.connectErrors)} connect errors | ${num(ab.started + ab.connectErrors)} (≤ ${num(ab.maxOpen)} open at once) | ${num(ab.started / (ab.elapsedSeconds || 1))} |`,
      );
    }
    if (res.startedLateMs > 0) out.push(`\nThe hostile process started its load ${res.startedLateMs} ms late.`);
  }
  out.push('');
  const lines = [...t.beside.tunnels.lines, ...(t.after?.tunnels.lines ?? [])];
  if (lines.length > 0) {
    out.push('Tunnel lines logged during the hostile window and after it (first ones):');
    out.push('');
    for (const l of lines.slice(0, 5)) out.push(`    ${l}`);
    out.push('');
  }
  out.push(
    `× alone = 2xx/s ÷ the first window's. µs/req divide each process's CPU by the well-behaved tenant's answers, so beside the hostile one they include the work its requests cause; "cores" is each process's CPU over the window. ` +
      `On this 2-core machine the hostile tenant's own process and the edge's and the Warpgate's work for it compete for the same cores as the well-behaved tenant: the ratio measures that cost as well as fairness. ` +
      `The Warpgate drains an aborted request's answer for up to 1 s to keep its origin connection, so about rate × min(delay, 1 s) origin connections are busy with abandoned requests.`,
  );
  out.push('');
  out.push(
    `The well-behaved client is bench/rawload.ts (closed loop, keep-alive, one request outstanding per connection, each to …/seq?n=i and checked, never re-sent); ` +
      `"not a correct 2xx" counts non-2xx answers, lost, timed-out, unanswered and misordered requests and closed or reset connections. ` +
      `Tunnel closes are counted from the Warpgate's "tunnel to edge worker N closed" and the edge's "connection to a warpgate … closed" log lines.`,
  );
  out.push('');
}

export function renderMicro(micro: readonly MicroResult[]): string {
  const out: string[] = [];
  out.push('| benchmark | ns/op | ops/s | ±% | samples | note |');
  out.push('|---|---:|---:|---:|---:|---|');
  for (const m of micro) out.push(`| ${m.name} | ${num(m.nsPerOp, 0)} | ${num(m.opsPerSec, 0)} | ${num(m.rme, 1)} | ${num(m.samples)} | ${m.note ?? ''} |`);
  return out.join('\n');
}
