/**
 * One measured run: wait (bounded) for the shared machine to be quiet, warm
 * up, then drive the load while reading every component's CPU time from
 * /proc, and turn it into a RunReport. Shared by the full bench (run.ts) and
 * the CI check (ci.ts).
 */
import { delta, snapshot, systemTicks } from './cpu.js';
import { drive, percentile, MAX_REQUESTS_PER_SECOND, type LoadTarget } from './load.js';
import { paced } from './paced.js';
import type { Proc } from './processes.js';
import type { ComponentCpu, CpuReport, LatencyStats, LoadKind, RunReport, Setup } from './report.js';

/**
 * Other processes sharing the 2 cores skew every figure. Per-process ticks and
 * /proc/stat disagree by a few hundredths of a core on a quiet machine (seen:
 * −0.04 to +0.01), so more than a tenth of a core is someone else's load.
 */
export const OTHER_CORES_WARN = 0.1;

export type Groups = ReadonlyMap<string, readonly number[]>;

export interface Ctx {
  ticksPerSecond: number;
  /** Longest wait for a quiet machine before each run, seconds (0: do not wait). */
  quietWaitSeconds: number;
  problems: string[];
  warnings: string[];
  interrupted: () => boolean;
  /** Processes that must stay alive through a run. */
  procs: readonly Proc[];
}

export interface Target extends LoadTarget {
  setup: Setup;
  tunnel: 'lean' | 'node' | null;
}

export function round(n: number | null | undefined, digits: number): number | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Cores busy outside `groups` and this process over one second. */
export async function foreignLoad(groups: Groups, ticksPerSecond: number): Promise<number> {
  const sys0 = systemTicks();
  const cpu0 = snapshot(groups);
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 1_000));
  const self1 = process.cpuUsage(self0);
  const d = delta(cpu0, snapshot(groups), ticksPerSecond);
  const sys1 = systemTicks();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let ours = (self1.user + self1.system) / 1e6;
  for (const g of d.values()) ours += g.cpuSeconds;
  return ((sys1.busy - sys0.busy) / ticksPerSecond - ours) / seconds;
}

/**
 * The dev machine is shared (other engineers run test suites on the same 2
 * cores): wait, bounded, for two quiet seconds in a row before a run.
 */
export async function waitQuiet(groups: Groups, ctx: Ctx): Promise<string> {
  if (ctx.quietWaitSeconds === 0) return 'not waited for';
  const deadline = Date.now() + ctx.quietWaitSeconds * 1_000;
  let quietInARow = 0;
  let last = 0;
  while (Date.now() < deadline && !ctx.interrupted()) {
    last = await foreignLoad(groups, ctx.ticksPerSecond);
    quietInARow = last <= OTHER_CORES_WARN ? quietInARow + 1 : 0;
    if (quietInARow >= 2) return 'quiet';
  }
  return `still busy after ${ctx.quietWaitSeconds} s (${last.toFixed(2)} foreign cores)`;
}

/** CPU of every group, this process and the whole machine over `fn`. */
export async function withCpu<T>(groups: Groups, ticksPerSecond: number, fn: () => Promise<T>): Promise<{ value: T; elapsedSeconds: number; cpu: CpuWindow }> {
  const sys0 = systemTicks();
  const cpu0 = snapshot(groups);
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const elapsedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const self1 = process.cpuUsage(self0);
  const cpu1 = snapshot(groups);
  const sys1 = systemTicks();
  return {
    value,
    elapsedSeconds,
    cpu: {
      groups: delta(cpu0, cpu1, ticksPerSecond),
      benchSeconds: (self1.user + self1.system) / 1e6,
      machineBusySeconds: (sys1.busy - sys0.busy) / ticksPerSecond,
    },
  };
}

export interface CpuWindow {
  groups: ReturnType<typeof delta>;
  benchSeconds: number;
  machineBusySeconds: number;
}

/**
 * Groups that are clients, not servers (the hostile tenant's process): their
 * CPU is reported as a component but is not part of the proxy's cost.
 */
export const CLIENT_GROUPS: ReadonlySet<string> = new Set(['hostile']);

/** Per-unit CPU of each group (units: completed requests, or MiB moved). */
export function cpuReport(w: CpuWindow, units: number, elapsedSeconds: number, who: string, problems: string[]): CpuReport {
  const per = (s: number) => (units > 0 ? (s * 1e6) / units : null);
  const components: Record<string, ComponentCpu> = {};
  let accounted = w.benchSeconds;
  let proxy = 0;
  for (const [name, g] of w.groups) {
    if (g.vanished.length > 0) problems.push(`${who}: ${name} pid(s) ${g.vanished.join(', ')} vanished during the window; their CPU is missing`);
    components[name] = { cpuSeconds: round(g.cpuSeconds, 3)!, usPerUnit: round(per(g.cpuSeconds), 1), perPidSeconds: g.perPid };
    accounted += g.cpuSeconds;
    if (name !== 'origin' && !CLIENT_GROUPS.has(name)) proxy += g.cpuSeconds;
  }
  const other = w.machineBusySeconds - accounted;
  return {
    components,
    proxyUsPerUnit: round(per(proxy), 1),
    bench: { cpuSeconds: round(w.benchSeconds, 3)!, usPerUnit: round(per(w.benchSeconds), 1), perPidSeconds: { [String(process.pid)]: round(w.benchSeconds, 3)! } },
    other: { cpuSeconds: round(other, 3)!, usPerUnit: round(per(other), 1), perPidSeconds: {} },
    machineBusyCores: round(w.machineBusySeconds / elapsedSeconds, 2)!,
    foreignCores: round(other / elapsedSeconds, 2)!,
  };
}

export function latencyStats(sorted: Float64Array | null): LatencyStats {
  const s = sorted ?? new Float64Array(0);
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!;
  return {
    samples: s.length,
    p50: round(percentile(s, 50), 3),
    p90: round(percentile(s, 90), 3),
    p99: round(percentile(s, 99), 3),
    p99_9: round(percentile(s, 99.9), 3),
    mean: round(s.length > 0 ? sum / s.length : null, 3),
    max: round(s.length > 0 ? s[s.length - 1]! : null, 3),
  };
}

export interface RunOptions {
  kind: LoadKind;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  /** Offered req/s for autocannon-rate and paced runs. */
  rate?: number;
  /** autocannon `-p` for closed-loop runs (1 when absent). */
  pipelining?: number;
  /** Peak round this run belongs to (run.ts repeats the peak runs). */
  round?: number;
  /** Edge workers of the chain under test, when it is a chain. */
  workers?: number;
  /**
   * The run measures a failure mode (e.g. pipelining the edge refuses): its
   * errors, non-2xx answers and missing responses are the result, reported
   * in its own table, not problems that make the whole bench unclean.
   */
  expectFailures?: boolean;
}

/** Checks after a run: what makes its figures unusable goes to problems, what makes them doubtful to warnings. */
function check(ctx: Ctx, run: RunReport, expectFailures: boolean): void {
  for (const p of ctx.procs) if (!p.alive) ctx.problems.push(`${run.name}: ${p.name} (pid ${p.pid}) exited during the run: ${JSON.stringify(p.exit)}`);
  if (run.cpu.foreignCores > OTHER_CORES_WARN) {
    ctx.warnings.push(`${run.name}: the machine was not quiet: ${run.cpu.foreignCores.toFixed(2)} cores busy outside the benchmarked processes during the window; its CPU and latency figures are inflated`);
  }
  if (expectFailures) return;
  const r = run.requests;
  if (r.non2xx > 0) ctx.problems.push(`${run.name}: ${r.non2xx} non-2xx responses ${JSON.stringify(r.statusCounts)}`);
  if (r.errors > 0 || r.timeouts > 0) ctx.problems.push(`${run.name}: ${r.errors} errors, ${r.timeouts} timeouts ${JSON.stringify(r.errorKinds)}`);
  if (r.capped) ctx.problems.push(`${run.name}: hit the safety cap on requests; the run ended early`);
  if (r.completed === 0) ctx.problems.push(`${run.name}: no response completed`);
}

/**
 * One measured run of `t`: closed loop at `connections` (peak), autocannon
 * `overallRate`, or the pacer. Returns null when interrupted.
 */
export async function measureRun(ctx: Ctx, t: Target, groups: Groups, o: RunOptions, log: (msg: string) => void): Promise<RunReport | null> {
  const pipelining = o.pipelining ?? 1;
  log(
    `${t.label}${o.round !== undefined ? ` (round ${o.round})` : ''}: ${o.kind}${o.rate !== undefined ? ` at ${Math.round(o.rate)} req/s` : ''}, ` +
      `warm-up ${o.warmupSeconds} s, then ${o.seconds} s at ${o.connections} connections${pipelining > 1 ? ` × ${pipelining} pipelined` : ''}`,
  );
  const quiet = await waitQuiet(groups, ctx);
  if (quiet !== 'quiet' && quiet !== 'not waited for') ctx.warnings.push(`${t.name}: machine ${quiet} before the run; measured anyway`);
  if (ctx.interrupted()) return null;

  let warmup: RunReport['warmup'] = null;
  if (o.warmupSeconds > 0) {
    if (o.kind === 'paced') {
      const wu = await paced({ url: t.url, headers: t.headers, rate: o.rate!, seconds: o.warmupSeconds, connections: o.connections, timeoutMs: 10_000 });
      warmup = { seconds: o.warmupSeconds, requests: wu.completed, non2xx: wu.non2xx, errors: wu.errors + wu.timeouts };
    } else {
      const wu = await drive(t, { seconds: o.warmupSeconds, connections: o.connections, keepSamples: false, pipelining, ...(o.kind === 'autocannon-rate' ? { overallRate: o.rate! } : {}) });
      warmup = { seconds: o.warmupSeconds, requests: wu.result.requests.total, non2xx: wu.result.non2xx, errors: wu.result.errors };
    }
    if ((warmup.non2xx > 0 || warmup.errors > 0) && o.expectFailures !== true) ctx.problems.push(`${t.name}: warm-up saw ${warmup.non2xx} non-2xx and ${warmup.errors} errors`);
  }
  if (ctx.interrupted()) return null;

  const base = {
    name: t.name,
    label: t.label,
    setup: t.setup,
    tunnel: t.tunnel,
    load: { kind: o.kind, connections: o.connections, seconds: o.seconds, rate: o.rate === undefined ? null : Math.round(o.rate), pipelining },
    ...(o.round !== undefined ? { round: o.round } : {}),
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    url: t.url,
    headers: Object.keys(t.headers),
    warmup,
    vsDirect: null,
    vsNginx: null,
  };
  let run: RunReport;
  if (o.kind === 'paced') {
    const m = await withCpu(groups, ctx.ticksPerSecond, () =>
      paced({ url: t.url, headers: t.headers, rate: o.rate!, seconds: o.seconds, connections: o.connections, timeoutMs: 10_000 }),
    );
    if (ctx.interrupted()) return null;
    const p = m.value;
    run = {
      ...base,
      elapsedSeconds: round(m.elapsedSeconds, 3)!,
      requests: { completed: p.completed, ok2xx: p.ok2xx, non2xx: p.non2xx, errors: p.errors, timeouts: p.timeouts, errorKinds: p.errorKinds, statusCounts: {}, capped: false },
      reqPerSec: round(p.completed / m.elapsedSeconds, 0)!,
      latencyMs: latencyStats(p.fromScheduleMs),
      latencyFromSendMs: latencyStats(p.fromSendMs),
      autocannonLatencyMs: null,
      firstHalfShare: null,
      maxQueued: p.maxQueued,
      releaseLagP99Ms: round(p.releaseLagP99Ms, 3),
      cpu: cpuReport(m.cpu, p.completed, m.elapsedSeconds, t.name, ctx.problems),
    };
  } else {
    const m = await withCpu(groups, ctx.ticksPerSecond, () =>
      drive(t, { seconds: o.seconds, connections: o.connections, keepSamples: true, pipelining, ...(o.kind === 'autocannon-rate' ? { overallRate: o.rate! } : {}) }),
    );
    if (ctx.interrupted()) return null; // a load cut short by SIGINT is not a measurement
    const r = m.value.result;
    const statusCounts: Record<string, number> = {};
    for (const [code, s] of Object.entries(r.statusCodeStats)) statusCounts[code] = s.count;
    run = {
      ...base,
      elapsedSeconds: round(m.value.elapsedSeconds, 3)!,
      requests: {
        completed: r.requests.total,
        ok2xx: r['2xx'],
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        errorKinds: m.value.errorKinds,
        bytesRead: r.throughput.total,
        statusCounts,
        capped: m.value.capped || r.requests.total >= o.seconds * MAX_REQUESTS_PER_SECOND,
      },
      reqPerSec: round(r.requests.total / m.value.elapsedSeconds, 0)!,
      latencyMs: latencyStats(m.value.samplesMs),
      latencyFromSendMs: null,
      autocannonLatencyMs: { p50: r.latency.p50, p99: r.latency.p99, p99_9: r.latency.p99_9, max: r.latency.max },
      firstHalfShare: round(m.value.firstHalfShare, 3),
      maxQueued: null,
      releaseLagP99Ms: null,
      cpu: cpuReport(m.cpu, r.requests.total, m.value.elapsedSeconds, t.name, ctx.problems),
    };
  }
  check(ctx, run, o.expectFailures === true);
  return run;
}

/**
 * Fills vsDirect (same load kind and rate, and the same peak round when runs
 * have rounds) and vsNginx (closed loop) for every run.
 */
export function compare(runs: RunReport[]): void {
  const sub = (a: number | null, b: number | null) => (a === null || b === null ? null : round(a - b, 3));
  const div = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : round(a / b, 3));
  const nginx = runs.find((x) => x.setup === 'nginx' && x.load.kind === 'closed');
  for (const run of runs) {
    const sameLoad = (x: RunReport) => x.setup === 'direct' && x.load.kind === run.load.kind && x.load.rate === run.load.rate;
    const direct = runs.find((x) => sameLoad(x) && x.round === run.round) ?? runs.find(sameLoad);
    if (direct !== undefined && direct !== run) {
      run.vsDirect = {
        throughputRatio: div(run.reqPerSec, direct.reqPerSec),
        addedP50Ms: sub(run.latencyMs.p50, direct.latencyMs.p50),
        addedP99Ms: sub(run.latencyMs.p99, direct.latencyMs.p99),
      };
    }
    if (nginx !== undefined && run.load.kind === 'closed' && run !== nginx) {
      run.vsNginx = { throughputRatio: div(run.reqPerSec, nginx.reqPerSec), proxyCpuRatio: div(run.cpu.proxyUsPerUnit, nginx.cpu.proxyUsPerUnit) };
    }
  }
}
