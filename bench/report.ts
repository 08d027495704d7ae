/**
 * The benchmark's result shape (written as bench/results/latest.json) and its
 * markdown rendering (latest.md and stdout).
 */

export interface ComponentCpu {
  cpuSeconds: number;
  /** CPU-µs per completed request: delta CPU seconds × 1e6 / requests. */
  usPerReq: number | null;
  perPidSeconds: Record<string, number>;
}

export interface RunReport {
  name: string;
  label: string;
  url: string;
  /** Header names sent (values left out: one is the session cookie). */
  headers: string[];
  warmup: { seconds: number; requests: number; non2xx: number; errors: number } | null;
  elapsedSeconds: number;
  requests: {
    completed: number;
    sent: number;
    ok2xx: number;
    non2xx: number;
    statusCounts: Record<string, number>;
    errors: number;
    timeouts: number;
    resets: number;
    mismatches: number;
    errorKinds: Record<string, number>;
    capped: boolean;
  };
  /** Completed responses / wall-clock window (the same window as the CPU figures). */
  reqPerSec: number;
  /** autocannon's own mean of its per-second samples, for comparison. */
  autocannonMeanReqPerSec: number;
  latencyMs: {
    autocannon: { p50: number; p99: number; p99_9: number; mean: number; max: number; resolution: string };
    exact: { samples: number; p50: number | null; p99: number | null; p99_9: number | null; mean: number | null; max: number | null };
  };
  cpu: {
    origin: ComponentCpu;
    edge: ComponentCpu;
    warpgate: ComponentCpu;
    /** This process: autocannon and the bench itself. */
    bench: ComponentCpu;
    /** Machine busy time not accounted for by the above (other processes, kernel softirq not charged to them). */
    other: ComponentCpu;
    machineBusyCores: number;
  };
  /** Output lines each process wrote during the measured window. */
  logLines: Record<string, number>;
  vsDirect: {
    throughputRatio: number;
    addedP50Ms: number | null;
    addedP99Ms: number | null;
    addedP50MsAutocannon: number;
    addedP99MsAutocannon: number;
  } | null;
}

export interface BenchReport {
  date: string;
  node: string;
  cpuModel: string;
  cores: number;
  clockTicksPerSecond: number;
  command: string;
  settings: Record<string, unknown>;
  runs: RunReport[];
  problems: string[];
  warnings: string[];
  notes: string[];
  ok: boolean;
}

const dash = '–';

function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return dash;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function signed(n: number | null | undefined, digits: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return dash;
  return (n >= 0 ? '+' : '') + num(n, digits);
}

export function renderMarkdown(r: BenchReport): string {
  const s = r.settings as { durationSeconds: number; warmupSeconds: number; connections: number; workers: number };
  const out: string[] = [];
  out.push(`## Mezusphere bench — ${r.date}`);
  out.push('');
  out.push(
    `\`${r.command}\` · node ${r.node} · ${r.cpuModel} · ${r.cores} cores · ${s.connections} connections, ` +
      `${s.durationSeconds} s per run after ${s.warmupSeconds} s warm-up · ${s.workers} edge workers · node:http2 reference tunnel`,
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
  out.push('| run | req/s | × direct | p50 ms | p99 ms | p99.9 ms | +p50 ms | +p99 ms | origin µs/req | edge µs/req | Warpgate µs/req | bench (autocannon) µs/req | other µs/req | non-2xx | errors |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const run of r.runs) {
    const ex = run.latencyMs.exact;
    out.push(
      `| ${run.label} | ${num(run.reqPerSec)} | ${run.vsDirect ? num(run.vsDirect.throughputRatio, 2) : '1.00'} | ` +
        `${num(ex.p50, 2)} | ${num(ex.p99, 2)} | ${num(ex.p99_9, 2)} | ` +
        `${run.vsDirect ? signed(run.vsDirect.addedP50Ms, 2) : dash} | ${run.vsDirect ? signed(run.vsDirect.addedP99Ms, 2) : dash} | ` +
        `${num(run.cpu.origin.usPerReq, 1)} | ${num(run.cpu.edge.usPerReq, 1)} | ${num(run.cpu.warpgate.usPerReq, 1)} | ` +
        `${num(run.cpu.bench.usPerReq, 1)} | ${num(run.cpu.other.usPerReq, 1)} | ${num(run.requests.non2xx)} | ${num(run.requests.errors)} |`,
    );
  }
  out.push('');
  out.push('autocannon\'s own latency histogram (integer milliseconds; sub-ms values truncate) and counts:');
  out.push('');
  out.push('| run | requests | p50 ms | p99 ms | p99.9 ms | max ms | +p50 ms | +p99 ms | machine busy (cores) | edge/Warpgate log lines |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const run of r.runs) {
    const a = run.latencyMs.autocannon;
    out.push(
      `| ${run.name} | ${num(run.requests.completed)} | ${num(a.p50)} | ${num(a.p99)} | ${num(a.p99_9)} | ${num(a.max)} | ` +
        `${run.vsDirect ? signed(run.vsDirect.addedP50MsAutocannon, 0) : dash} | ${run.vsDirect ? signed(run.vsDirect.addedP99MsAutocannon, 0) : dash} | ` +
        `${num(run.cpu.machineBusyCores, 2)} | ${num(run.logLines.edge)}/${num(run.logLines.warpgate)} |`,
    );
  }
  out.push('');
  out.push(
    'Latency columns of the first table are exact (every 2xx response time kept as a float); "+" columns are against the direct-origin run of the same invocation. ' +
      'CPU-µs/req = (utime+stime delta from /proc/<pid>/stat over the measured window) × 1e6 / completed requests; edge = primary + workers. ' +
      '"bench" is this process (autocannon) via process.cpuUsage(); "other" is machine busy time (/proc/stat) not charged to any of those.',
  );
  out.push('');
  return out.join('\n');
}
