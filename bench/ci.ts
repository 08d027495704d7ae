#!/usr/bin/env node
/**
 * `npm run bench:ci` (run by .ci/run after the tests, ~1.5 minutes): a short
 * version of the full bench that fails when a budget RATIO regresses.
 *
 * Absolute figures (µs, req/s, ms) move with the machine and with whoever
 * else is using it; ratios of two things measured in the same run mostly do
 * not. So every check divides by a reference from the same invocation:
 *
 *   edge_cpu_vs_origin      edge CPU-µs/req ÷ origin CPU-µs/req, both over the same window of the
 *                           lean protected-GET run (the origin serves those very requests behind
 *                           the Warpgate). Same window, same throughput, same machine state: on
 *                           the shared dev machine this ratio moved ±6% between repetitions where
 *                           the edge's µs/req alone moved ±8% and the direct origin's ±9%.
 *                           The edge budget of 20 µs is 1.7–2× an origin at 10–12 µs/req.
 *   warpgate_cpu_vs_origin  Warpgate CPU ÷ origin CPU, same window (budget likewise 1.7–2×).
 *   edge_public_cpu_vs_origin  the same for the public route.
 *   chain_vs_direct_rps     protected req/s through the chain ÷ direct-origin req/s.
 *   half_load_p99_vs_direct p99 at half of the chain's peak (paced, bench/paced.ts) ÷ the direct
 *                           origin's p99 at the same rate.
 *
 * Each target runs `--reps` short repetitions (default 5 × 3 s after 1 s of
 * warm-up; 2 for the paced pair), interleaved, and the best repetition
 * counts (lowest CPU, highest req/s, lowest p99): noise on a shared machine
 * only ever makes figures worse, so the best is the most repeatable. Five,
 * not three: with three the edge ratio's best still moved 3.20–3.67 between
 * clean-clone CI runs of one commit, across the 3.576 limit (and an A/B of
 * two commits, alternating, gave 3.66/3.38 against 3.50/3.20: noise, not
 * code). A
 * repetition during which other processes kept more than 0.1 core busy is
 * only used when no quiet one exists; a check that then fails is reported
 * as a WARNING and does not fail the build (the machine, not the code, is
 * the likelier cause).
 *
 * A check fails when its ratio is more than its margin worse than the value
 * recorded in bench/baseline.json. Margins come from six back-to-back runs
 * on the 2-core dev machine, partly while others were using it, at about
 * 1.5–2× the spread seen: edge and Warpgate CPU ratios spread by up to 13%
 *; the public-route CPU ratio by 22%
 * and the req/s ratio by 27% (direct req/s is capped by autocannon sharing
 * the cores) → 40%; the half-load p99 ratio, which the kernel's scheduling
 * of five busy processes on two cores dominates, by about 2× (7.6 to 15.5)
 * → 100%: it catches a tail that doubles. The baseline is the median of
 * several such runs (`--baseline-from` saved ci-latest.json copies), not
 * one; `--write-baseline` records this run's figures instead. Re-record on a
 * quiet machine and commit it with the change that moved the figures.
 *
 * Prints a table, writes bench/results/ci-latest.json, exits 1 on a
 * regression or when a run saw errors, non-2xx responses or a crashed
 * process, 2 on bad arguments.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clockTicksPerSecond } from './cpu.js';
import { stopCurrentLoad } from './load.js';
import { OTHER_CORES_WARN, compare, measureRun, round, type Ctx, type RunOptions, type Target } from './measure.js';
import type { Proc } from './processes.js';
import { num, type RunReport } from './report.js';
import { ROOT, SESSION_COOKIE, chainGroups, preflightChain, prepareData, startChain, startNodeService, stopChain, type Chain } from './stack.js';

const BASELINE_FILE = join(ROOT, 'bench', 'baseline.json');
const DEFAULT_MARGIN = 0.25;
/** Past this, the remaining repetitions are skipped (each run is bounded anyway): "about two minutes". */
const TIME_BUDGET_S = 150;

interface Settings {
  reps: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  workers: number;
  quietWaitSeconds: number;
  writeBaseline: boolean;
  /** Saved results (ci-latest.json copies) to build the baseline from, instead of running. */
  baselineFrom: string[];
}

function usage(msg: string): never {
  process.stderr.write(
    `bench:ci: ${msg}\nusage: node dist/bench/ci.js [--reps N (default 5)] [--seconds S (default 3)] [--warmup S (default 1)] ` +
      `[--connections N (default 64)] [--workers N (default 2)] [--quiet-wait S (default 0)] [--write-baseline] ` +
      `[--baseline-from FILE,FILE,… (medians of saved ci-latest.json results; no load is run)]\n`,
  );
  process.exit(2);
}

function intOption(raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) usage(`--${name} must be an integer from ${min} to ${max}; got "${raw}"`);
  return n;
}

function parseSettings(): Settings {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      options: {
        reps: { type: 'string' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        workers: { type: 'string' },
        'quiet-wait': { type: 'string' },
        'write-baseline': { type: 'boolean' },
        'baseline-from': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  return {
    reps: intOption(v.reps as string | undefined, 'reps', 5, 1, 10),
    seconds: intOption(v.seconds as string | undefined, 'seconds', 3, 1, 60),
    warmupSeconds: intOption(v.warmup as string | undefined, 'warmup', 1, 0, 30),
    connections: intOption(v.connections as string | undefined, 'connections', 64, 1, 1024),
    workers: intOption(v.workers as string | undefined, 'workers', 2, 1, 16),
    quietWaitSeconds: intOption(v['quiet-wait'] as string | undefined, 'quiet-wait', 0, 0, 120),
    writeBaseline: v['write-baseline'] === true,
    baselineFrom: typeof v['baseline-from'] === 'string' ? v['baseline-from'].split(',').filter((f) => f !== '') : [],
  };
}

type Better = 'lower' | 'higher';

interface MetricDef {
  key: string;
  label: string;
  better: Better;
  /** Allowed worsening vs the baseline, as a fraction. */
  margin: number;
  /** What the budget (docs/ARCHITECTURE.md, "Budgets") comes to as this ratio, when it has one. */
  briefEquivalent: string;
}

const METRICS: readonly MetricDef[] = [
  { key: 'edge_cpu_vs_origin', label: 'edge CPU ÷ origin CPU (protected GET, same window)', better: 'lower', margin: DEFAULT_MARGIN, briefEquivalent: '≈ 1.7–2 (20 ÷ 10–12)' },
  { key: 'warpgate_cpu_vs_origin', label: 'Warpgate CPU ÷ origin CPU (protected GET, same window)', better: 'lower', margin: DEFAULT_MARGIN, briefEquivalent: '≈ 1.7–2 (20 ÷ 10–12)' },
  // Spread 22% over six runs (the public route's ratio is the noisiest of the CPU ratios).
  { key: 'edge_public_cpu_vs_origin', label: 'edge CPU ÷ origin CPU (public GET, same window)', better: 'lower', margin: 0.4, briefEquivalent: '–' },
  // Direct req/s is limited by autocannon sharing the cores and moved 62k–74k between runs.
  { key: 'chain_vs_direct_rps', label: 'protected req/s through chain ÷ direct req/s', better: 'higher', margin: 0.4, briefEquivalent: '–' },
  // p99 on 2 shared cores moves by tens of percent between identical runs: a wider margin, so only a real step fails.
  { key: 'half_load_p99_vs_direct', label: 'p99 at half peak, chain ÷ direct (paced)', better: 'lower', margin: 1.0, briefEquivalent: '–' },
];

interface Baseline {
  recorded: string;
  command: string;
  machine: string;
  note: string;
  metrics: Record<string, { value: number; better: Better; margin: number }>;
  /** The best per-target figures the ratios came from, for reference. */
  figures: Record<string, number | null>;
}

interface Best {
  run: RunReport;
  /** True when no repetition of this target was quiet. */
  busy: boolean;
}

/** The best repetition of `name` by `score` (lower is better), preferring quiet ones. */
function best(runs: readonly RunReport[], name: string, score: (r: RunReport) => number | null): Best | null {
  const all = runs.filter((r) => r.name === name && score(r) !== null);
  if (all.length === 0) return null;
  const quiet = all.filter((r) => r.cpu.foreignCores <= OTHER_CORES_WARN);
  const pool = quiet.length > 0 ? quiet : all;
  const pick = pool.reduce((a, b) => (score(b)! < score(a)! ? b : a));
  return { run: pick, busy: quiet.length === 0 };
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return round(a / b, 3);
}

const us = (name: string) => (r: RunReport) => r.cpu.components[name]?.usPerUnit ?? null;
/** A component's CPU over the origin's, in the same window. */
const perOrigin = (name: string | 'proxy') => (r: RunReport) =>
  ratio(name === 'proxy' ? r.cpu.proxyUsPerUnit : r.cpu.components[name]?.usPerUnit, r.cpu.components.origin?.usPerUnit);

interface Measured {
  measured: Record<string, { value: number | null; from: Array<Best | null> }>;
  figures: Record<string, number | null>;
}

/** The checked ratios (from the best repetitions) and the absolute figures behind them. */
function computeMetrics(runs: readonly RunReport[]): Measured {
  const originBest = best(runs, 'direct', us('origin'));
  const directRps = best(runs, 'direct', (r) => -r.reqPerSec);
  const edgeBest = best(runs, 'lean-protected', perOrigin('edge'));
  const wgBest = best(runs, 'lean-protected', perOrigin('warpgate'));
  const pubBest = best(runs, 'lean-public', perOrigin('edge'));
  const leanProxy = best(runs, 'lean-protected', perOrigin('proxy'));
  const protRps = best(runs, 'lean-protected', (r) => -r.reqPerSec);
  const p99Direct = best(runs, 'half-direct-paced', (r) => r.latencyMs.p99);
  const p99Chain = best(runs, 'half-lean-protected-paced', (r) => r.latencyMs.p99);
  const originUs = originBest?.run.cpu.components.origin?.usPerUnit ?? null;
  const val = (b: Best | null, f: (r: RunReport) => number | null) => (b === null ? null : f(b.run));
  const measured: Record<string, { value: number | null; from: Array<Best | null> }> = {
    edge_cpu_vs_origin: { value: val(edgeBest, perOrigin('edge')), from: [edgeBest] },
    warpgate_cpu_vs_origin: { value: val(wgBest, perOrigin('warpgate')), from: [wgBest] },
    edge_public_cpu_vs_origin: { value: val(pubBest, perOrigin('edge')), from: [pubBest] },
    chain_vs_direct_rps: { value: ratio(protRps?.run.reqPerSec, directRps?.run.reqPerSec), from: [protRps, directRps] },
    half_load_p99_vs_direct: { value: ratio(p99Chain?.run.latencyMs.p99, p99Direct?.run.latencyMs.p99), from: [p99Chain, p99Direct] },
  };
  const figures: Record<string, number | null> = {
    origin_cpu_us_per_req: originUs,
    edge_cpu_us_per_req: best(runs, 'lean-protected', us('edge'))?.run.cpu.components.edge?.usPerUnit ?? null,
    warpgate_cpu_us_per_req: best(runs, 'lean-protected', us('warpgate'))?.run.cpu.components.warpgate?.usPerUnit ?? null,
    edge_public_cpu_us_per_req: best(runs, 'lean-public', us('edge'))?.run.cpu.components.edge?.usPerUnit ?? null,
    lean_proxy_cpu_us_per_req: leanProxy?.run.cpu.proxyUsPerUnit ?? null,
    direct_req_per_s: directRps?.run.reqPerSec ?? null,
    lean_protected_req_per_s: protRps?.run.reqPerSec ?? null,
    half_rate_req_per_s: p99Chain?.run.load.rate ?? null,
    half_direct_p99_ms: p99Direct?.run.latencyMs.p99 ?? null,
    half_chain_p99_ms: p99Chain?.run.latencyMs.p99 ?? null,
    half_added_p99_ms: p99Chain !== null && p99Direct !== null && p99Chain.run.latencyMs.p99 !== null && p99Direct.run.latencyMs.p99 !== null
      ? round(p99Chain.run.latencyMs.p99 - p99Direct.run.latencyMs.p99, 3)
      : null,
  };

  return { measured, figures };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return round(s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2, 3);
}

const log = (msg: string) => process.stderr.write(`bench:ci: ${msg}\n`);

/**
 * The baseline as the median, per ratio, of several saved runs: one run can
 * land high or low by its margin's worth on a shared machine; the median of
 * three to five does not.
 */
function baselineFromResults(files: readonly string[]): number {
  const per: Record<string, number[]> = {};
  const figs: Record<string, number[]> = {};
  const dates: string[] = [];
  for (const f of files) {
    const saved = JSON.parse(readFileSync(f, 'utf8')) as { date: string; runs: RunReport[] };
    const m = computeMetrics(saved.runs);
    dates.push(saved.date);
    for (const [k, x] of Object.entries(m.measured)) if (x.value !== null) (per[k] ??= []).push(x.value);
    for (const [k, x] of Object.entries(m.figures)) if (x !== null) (figs[k] ??= []).push(x);
  }
  const metrics: Baseline['metrics'] = {};
  for (const def of METRICS) {
    const v = median(per[def.key] ?? []);
    if (v === null) {
      process.stderr.write(`bench:ci: no value for ${def.key} in ${files.join(', ')}\n`);
      return 1;
    }
    metrics[def.key] = { value: v, better: def.better, margin: def.margin };
    process.stdout.write(`${def.key}: median ${v} of ${JSON.stringify(per[def.key])}\n`);
  }
  const out: Baseline = {
    recorded: new Date().toISOString(),
    command: `node dist/bench/ci.js --baseline-from ${files.join(',')}`,
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}, node ${process.version}`,
    note:
      `Median of ${files.length} bench:ci runs (${dates.join(', ')}), each the best of its repetitions. ` +
      'A check fails when its ratio is worse than value × (1 + margin) (lower-better) or value ÷ (1 + margin) (higher-better).',
    metrics,
    figures: Object.fromEntries(Object.entries(figs).map(([k, xs]) => [k, median(xs)])),
  };
  writeFileSync(BASELINE_FILE, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${BASELINE_FILE}`);
  return 0;
}

async function main(): Promise<number> {
  const settings = parseSettings();
  if (settings.baselineFrom.length > 0) return baselineFromResults(settings.baselineFrom);
  const t0 = Date.now();
  const ticksPerSecond = clockTicksPerSecond();
  const problems: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const procs: Proc[] = [];
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping the load and cleaning up`);
    stopCurrentLoad();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: Ctx = { ticksPerSecond, quietWaitSeconds: settings.quietWaitSeconds, problems, warnings, interrupted: () => interrupted, procs };
  const closed: RunOptions = { kind: 'closed', seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections };
  const overBudget = () => (Date.now() - t0) / 1000 > TIME_BUDGET_S;

  const data = mkdtempSync(join(tmpdir(), 'mezu-bench-ci-'));
  const runs: RunReport[] = [];
  let chain: Chain | null = null;
  let halfRate: number | null = null;
  try {
    const token = prepareData(data);
    const origin = await startNodeService('origin', 'dist/bench/bench-origin.js', ['--host', '127.0.0.1', '--port', '0'], procs);
    const originPid = origin.proc.pid;
    const cookie = `${SESSION_COOKIE}=${token}`;

    chain = await startChain(data, origin.port, settings.workers, procs, notes);
    let base = `http://127.0.0.1:${chain.edgePort}`;
    await preflightChain(base, token, notes, 'lean');
    let groups = chainGroups(originPid, chain);
    const direct: Target = { name: 'direct', label: 'origin direct, GET /health', url: `http://127.0.0.1:${origin.port}/health`, headers: { host: '127.0.0.1' }, setup: 'direct', tunnel: null };
    const leanPublic: Target = { name: 'lean-public', label: 'lean chain, public GET /health', url: `${base}/health`, headers: { host: '127.0.0.1' }, setup: 'chain', tunnel: 'lean' };
    const leanProtected: Target = { name: 'lean-protected', label: 'lean chain, session GET /api/v1/items', url: `${base}/api/v1/items`, headers: { host: '127.0.0.1', cookie }, setup: 'chain', tunnel: 'lean' };

    // Interleaved repetitions: a slow minute on the machine hits every target, not just one.
    for (let rep = 1; rep <= settings.reps && !interrupted; rep++) {
      if (rep > 1 && overBudget()) {
        warnings.push(`time budget of ${TIME_BUDGET_S} s reached: ${rep - 1} of ${settings.reps} repetitions of the peak runs`);
        break;
      }
      for (const t of [direct, leanPublic, leanProtected]) {
        const r = await measureRun(ctx, t, groups, closed, log);
        if (r !== null) runs.push(r);
      }
    }

    const peak = best(runs, 'lean-protected', (r) => -r.reqPerSec);
    if (peak !== null && !interrupted) {
      halfRate = Math.max(1, Math.round(peak.run.reqPerSec / 2));
      const pacedReps = Math.min(settings.reps, 2);
      for (let rep = 1; rep <= pacedReps && !interrupted && !(rep > 1 && overBudget()); rep++) {
        for (const t of [
          { ...direct, name: 'half-direct-paced' },
          { ...leanProtected, name: 'half-lean-protected-paced' },
        ]) {
          const r = await measureRun(ctx, t, groups, { ...closed, kind: 'paced', rate: halfRate }, log);
          if (r !== null) runs.push(r);
        }
      }
    }
    await stopChain(chain, procs, notes, problems);
    chain = null;

  } finally {
    if (chain !== null) await stopChain(chain, procs, notes, problems);
    for (const p of [...procs].reverse()) {
      const diedEarly = !p.alive;
      notes.push(`${p.name} (pid ${p.pid}) ${await p.stop()}`);
      if (diedEarly) problems.push(`${p.name} (pid ${p.pid}) had exited on its own before the bench stopped it: ${JSON.stringify(p.exit)}`);
    }
    rmSync(data, { recursive: true, force: true });
  }
  compare(runs);
  if (interrupted) problems.push('interrupted by a signal; the runs are incomplete');

  const { measured, figures } = computeMetrics(runs);

  // ── checks against the baseline ──
  let baseline: Baseline | null = null;
  if (existsSync(BASELINE_FILE)) {
    try {
      baseline = JSON.parse(readFileSync(BASELINE_FILE, 'utf8')) as Baseline;
    } catch (err) {
      problems.push(`bench/baseline.json is not valid JSON: ${(err as Error).message}`);
    }
  } else if (!settings.writeBaseline) {
    problems.push('bench/baseline.json is missing; record one with `npm run bench:ci -- --write-baseline` on a quiet machine');
  }
  type Status = 'ok' | 'FAIL' | 'WARN (busy machine)' | 'no baseline' | 'not measured';
  const checks = METRICS.map((m) => {
    const got = measured[m.key]!;
    const b = baseline?.metrics[m.key];
    const margin = b?.margin ?? m.margin;
    const limit = b === undefined ? null : m.better === 'lower' ? round(b.value * (1 + margin), 3) : round(b.value / (1 + margin), 3);
    const busy = got.from.some((x) => x?.busy === true);
    let status: Status;
    if (got.value === null) status = 'not measured';
    else if (b === undefined || limit === null) status = 'no baseline';
    else {
      const worse = m.better === 'lower' ? got.value > limit : got.value < limit;
      status = !worse ? 'ok' : busy ? 'WARN (busy machine)' : 'FAIL';
    }
    return { ...m, value: got.value, baseline: b?.value ?? null, margin, limit, busy, status };
  });
  for (const c of checks) {
    if (c.status === 'WARN (busy machine)') {
      warnings.push(`${c.key}: ${c.value} is worse than the limit ${c.limit}, but every repetition it came from had other processes using more than ${OTHER_CORES_WARN} core; not failing`);
    }
    if (c.status === 'not measured') problems.push(`${c.key}: not measured (a run is missing)`);
  }
  const failed = checks.filter((c) => c.status === 'FAIL');

  // ── output ──
  const lines: string[] = [];
  lines.push(`bench:ci — ${new Date().toISOString()} · node ${process.version} · ${cpus().length} cores · best of ${settings.reps} × ${settings.seconds} s per target (paced and node: ≤ 2)`);
  lines.push('');
  lines.push('| check | measured | baseline | fail beyond | margin | brief budget as ratio | status |');
  lines.push('|---|---:|---:|---:|---:|---:|---|');
  for (const c of checks) {
    lines.push(`| ${c.label} | ${num(c.value, 3)} | ${num(c.baseline, 3)} | ${c.limit === null ? '–' : (c.better === 'lower' ? '> ' : '< ') + num(c.limit, 3)} | ${Math.round(c.margin * 100)}% | ${c.briefEquivalent} | ${c.status}${c.busy && c.status === 'ok' ? ' (busy)' : ''} |`);
  }
  lines.push('');
  lines.push('| repetition | req/s | origin µs/req | edge µs/req | Warpgate µs/req | edge ÷ origin | Warpgate ÷ origin | p99 ms | foreign cores |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const c = r.cpu.components;
    const chainRun = r.setup === 'chain';
    lines.push(
      `| ${r.name}${r.load.rate !== null ? ` @${r.load.rate}/s` : ''} | ${num(r.reqPerSec)} | ${num(c.origin?.usPerUnit, 1)} | ${num(c.edge?.usPerUnit, 1)} | ` +
        `${num(c.warpgate?.usPerUnit, 1)} | ${chainRun ? num(perOrigin('edge')(r), 2) : '–'} | ${chainRun ? num(perOrigin('warpgate')(r), 2) : '–'} | ${num(r.latencyMs.p99, 3)} | ${num(r.cpu.foreignCores, 2)} |`,
    );
  }
  lines.push('');
  lines.push(
    `Absolute figures (information, not checked here; see bench/RESULTS.md for the budgets): origin ${num(figures.origin_cpu_us_per_req, 1)}, ` +
      `edge ${num(figures.edge_cpu_us_per_req, 1)} (budget ≤ 20), Warpgate ${num(figures.warpgate_cpu_us_per_req, 1)} (budget ≤ 20) CPU-µs/req; ` +
      `p99 added at half peak (${num(halfRate)} req/s) ${num(figures.half_added_p99_ms, 3)} ms (budget ≤ 1).`,
  );
  for (const w of warnings) lines.push(`WARNING: ${w}`);
  for (const p of problems) lines.push(`PROBLEM: ${p}`);
  const verdict = problems.length > 0 ? 'FAILED (problems above)' : failed.length > 0 ? `FAILED: ${failed.map((c) => c.key).join(', ')} regressed beyond the margin` : 'passed';
  lines.push(`bench:ci ${verdict} in ${Math.round((Date.now() - t0) / 1000)} s`);
  process.stdout.write(lines.join('\n') + '\n');

  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'ci-latest.json'),
    JSON.stringify({ date: new Date().toISOString(), node: process.version, cores: cpus().length, settings, checks, figures, runs, problems, warnings, notes, verdict }, null, 2) + '\n',
  );
  if (settings.writeBaseline) {
    if (problems.length > 0 || checks.some((c) => c.value === null)) {
      process.stderr.write('bench:ci: not writing a baseline from a run with problems or missing figures\n');
      return 1;
    }
    if (checks.some((c) => c.busy)) warnings.push('some figures of this baseline come from repetitions on a busy machine');
    const out: Baseline = {
      recorded: new Date().toISOString(),
      command: `node dist/bench/ci.js ${process.argv.slice(2).join(' ')}`.trim(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}, node ${process.version}`,
      note: 'Ratios from one bench:ci run (best of the repetitions). A check fails when its ratio is worse than value × (1 + margin) (lower-better) or value ÷ (1 + margin) (higher-better).',
      metrics: Object.fromEntries(checks.map((c) => [c.key, { value: c.value!, better: c.better, margin: c.margin }])),
      figures,
    };
    writeFileSync(BASELINE_FILE, JSON.stringify(out, null, 2) + '\n');
    log(`wrote ${BASELINE_FILE}`);
  }
  return problems.length > 0 || failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
