#!/usr/bin/env node
/**
 * `npm run bench`: the whole chain on this machine, in one run and side by
 * side, against the budgets (docs/ARCHITECTURE.md, "Budgets").
 *
 * Starts the bench origin (uWS, ~100-byte JSON), then drives each target for a
 * bounded time after a short warm-up, on loopback only:
 *   (a) the origin directly                                  GET /health
 *   (b) edge + lean tunnel + Warpgate, public route          GET /health
 *   (c) edge + lean tunnel + Warpgate, protected, session    GET /api/v1/items
 *   (d) (c) through a second chain whose edge has one worker fewer (workers =
 *       cores − 1, the Warpgate on the core left over), its own data dir
 *   (a)–(d) run `--rounds` times (default 3), interleaved, because one round
 *       moves by ±25 % on the shared 2-core machine: every round's figures
 *       and the median of each are reported ((b) only in the first round,
 *       to keep the full run near 6 minutes)
 *   (f) half of (c)'s median peak req/s, paced (bench/paced.ts) and with autocannon
 *       `overallRate`, against (a) at the same rate: p50/p99 added; and paced
 *       at 1/8 and 1/4 of peak, to see how the added tail depends on load
 *   (g) 1 MiB uploads and 10 MiB downloads through (c)'s chain: MiB/s and
 *       peak RSS of the edge workers and the Warpgate (VmRSS every 100 ms)
 *   (h) pipelining (bench/isolation.ts): the raw client that never retries
 *       (bench/rawload.ts), C connections × D pipelined vs C×D connections × 1,
 *       through (c)'s chain and against the origin, and `autocannon -p D`
 *   (i) two tenants (bench/isolation.ts): a well-behaved client alone, beside
 *       a hostile one (bench/hostile.ts: pipelining, aborting requests to a
 *       slow path, from another loopback address), and alone again
 *   (e) nginx `auth_request` + a uWS session-checking service in front of
 *       the same origin, protected GET (skipped, with a note, without nginx)
 * then the micro-benchmarks (bench/micro.ts, tinybench) in a child process.
 * `--only` runs some of these sections and writes results/partial-latest.*
 * instead, so a partial run never replaces the full run's files.
 * For each load run: req/s, exact latency percentiles, and CPU-µs per request
 * of every component from /proc/<pid>/stat — the figure the budgets are
 * stated in, fair even though the load generator runs in this process on the
 * same cores.
 *
 * Writes bench/results/latest.json and latest.md and prints the tables. Exits
 * 1 when a run saw errors, non-2xx responses or a crashed process (budget
 * misses are reported, not failures: `npm run bench:ci` guards regressions).
 * The failures that (h) and (i) measure — answers the edge never gives to a
 * pipelining client, the well-behaved tenant's errors beside the hostile one
 * — are their results and budget lines, not such problems.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clockTicksPerSecond, processTree } from './cpu.js';
import { stopCurrentLoad, MAX_REQUESTS_PER_SECOND } from './load.js';
import { stopRawLoads } from './rawload.js';
import { pipelinedScenario, twoTenantScenario, TunnelWatch } from './isolation.js';
import { compare, cpuReport, latencyStats, measureRun, round, waitQuiet, withCpu, type Ctx, type Target } from './measure.js';
import { findNginx, freePort, nginxVersion, writeNginxConfig } from './nginx.js';
import { Proc, stopOrphans } from './processes.js';
import {
  num,
  peakSummaries,
  renderMarkdown,
  signed,
  type BenchReport,
  type BudgetLine,
  type MicroResult,
  type PipelinedReport,
  type RunReport,
  type TransferReport,
  type TwoTenantReport,
} from './report.js';
import { BENCH_EMAIL, ROOT, SESSION_COOKIE, chainGroups, preflightChain, prepareData, request, requestUntilOk, startChain, startNodeService, stopChain, type Chain } from './stack.js';
import { transfer } from './transfer.js';

const MIB = 1 << 20;
const UPLOAD_BYTES = 1 * MIB;
const DOWNLOAD_BYTES = 10 * MIB;
/**
 * Ten times the download size: if memory per in-flight request did not grow
 * with body size (a budget), the peak RSS of this run matches the 10 MiB
 * run's; a hop that buffered whole bodies would need 4 × 90 MiB more.
 */
const HUGE_DOWNLOAD_BYTES = 100 * MIB;
/** "Modest concurrency" for the large-body runs. */
const TRANSFER_CONCURRENCY = 4;
/** Bounds on large-body requests per run, whatever the duration. */
const TRANSFER_MAX_REQUESTS = 20_000;

/** The bench's sections, in the order they run; `--only` picks some. */
const SECTIONS = ['peak', 'half', 'transfers', 'pipelined', 'two-tenant', 'nginx', 'micro'] as const;
type Section = (typeof SECTIONS)[number];

interface Settings {
  durationSeconds: number;
  quietWaitSeconds: number;
  warmupSeconds: number;
  connections: number;
  workers: number;
  /** Peak rounds: (a) (c) (d) each round, (b) in the first. */
  rounds: number;
  /** Also measure a chain with workers − 1 at peak, in the same rounds. */
  workersCompare: boolean;
  quick: boolean;
  nginx: boolean;
  micro: boolean;
  sections: Section[];
  /** True when --only picked the sections (partial results, written apart). */
  partial: boolean;
  pipelineConnections: number;
  pipelineDepth: number;
  hostileAbortRate: number;
  hostileAbortAfterMs: number;
  hostileDelayMs: number;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench: ${msg}\nusage: node dist/bench/run.js [--duration S (default 10)] [--warmup S (default 2)] [--connections N (default 64)] ` +
      `[--quick (3 s runs, 1 s warm-up)] [--workers N (default 2)] [--rounds N (default 3)] [--no-workers-compare] [--quiet-wait S (default 60; 0 = do not wait)] ` +
      `[--no-nginx] [--no-micro] [--only ${SECTIONS.join(',')} (some sections; half needs peak)] ` +
      `[--pipeline-connections N (default 8)] [--pipeline-depth N (default 10)] [--hostile-abort-rate N/s (default 2000)] [--hostile-abort-after MS (default 100)] [--hostile-delay MS (default 500)]\n`,
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
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        workers: { type: 'string' },
        rounds: { type: 'string' },
        'no-workers-compare': { type: 'boolean' },
        'quiet-wait': { type: 'string' },
        quick: { type: 'boolean' },
        'no-nginx': { type: 'boolean' },
        'no-micro': { type: 'boolean' },
        only: { type: 'string' },
        'pipeline-connections': { type: 'string' },
        'pipeline-depth': { type: 'string' },
        'hostile-abort-rate': { type: 'string' },
        'hostile-abort-after': { type: 'string' },
        'hostile-delay': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  const quick = v.quick === true;
  let sections: Section[] = [...SECTIONS];
  const only = v.only as string | undefined;
  if (only !== undefined) {
    const picked = only.split(',').map((x) => x.trim()).filter((x) => x !== '');
    for (const x of picked) if (!(SECTIONS as readonly string[]).includes(x)) usage(`--only: unknown section "${x}" (sections: ${SECTIONS.join(', ')})`);
    // Half of peak is half of the peak just measured.
    if (picked.includes('half') && !picked.includes('peak')) usage('--only: half needs peak (its rate is half of the measured peak)');
    sections = SECTIONS.filter((x) => picked.includes(x));
  }
  if (v['no-nginx'] === true) sections = sections.filter((x) => x !== 'nginx');
  if (v['no-micro'] === true) sections = sections.filter((x) => x !== 'micro');
  const workers = intOption(v.workers as string | undefined, 'workers', 2, 1, 16);
  return {
    quick,
    sections,
    partial: only !== undefined,
    rounds: intOption(v.rounds as string | undefined, 'rounds', 3, 1, 10),
    workersCompare: v['no-workers-compare'] !== true && workers > 1,
    pipelineConnections: intOption(v['pipeline-connections'] as string | undefined, 'pipeline-connections', 8, 1, 256),
    pipelineDepth: intOption(v['pipeline-depth'] as string | undefined, 'pipeline-depth', 10, 2, 100),
    hostileAbortRate: intOption(v['hostile-abort-rate'] as string | undefined, 'hostile-abort-rate', 2_000, 0, 20_000),
    hostileAbortAfterMs: intOption(v['hostile-abort-after'] as string | undefined, 'hostile-abort-after', 100, 1, 10_000),
    hostileDelayMs: intOption(v['hostile-delay'] as string | undefined, 'hostile-delay', 500, 1, 60_000),
    // --duration wins over --quick when both are given.
    durationSeconds: intOption(v.duration as string | undefined, 'duration', quick ? 3 : 10, 1, 300),
    warmupSeconds: intOption(v.warmup as string | undefined, 'warmup', quick ? 1 : 2, 0, 60),
    connections: intOption(v.connections as string | undefined, 'connections', 64, 1, 1024),
    workers,
    quietWaitSeconds: intOption(v['quiet-wait'] as string | undefined, 'quiet-wait', 60, 0, 600),
    nginx: sections.includes('nginx'),
    micro: sections.includes('micro'),
  };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // Fall through.
  }
  return cpus()[0]?.model ?? 'unknown';
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** Runs bench/micro.js in a child process (fresh heap, no load generator state) and reads its JSON. */
function runMicro(data: string, problems: string[]): MicroResult[] | null {
  const out = join(data, 'micro.json');
  try {
    execFileSync(process.execPath, [join(ROOT, 'dist/bench/micro.js'), '--json-out', out], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
    return JSON.parse(readFileSync(out, 'utf8')) as MicroResult[];
  } catch (err) {
    problems.push(`micro-benchmarks failed: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

function budgets(runs: RunReport[], transfers: TransferReport[], nginxNote: string, pipelined: PipelinedReport | null, twoTenant: TwoTenantReport | null, sections: readonly Section[]): BudgetLine[] {
  const lines: BudgetLine[] = [];
  const has = (x: Section) => sections.includes(x);
  // The peak figures are medians over the rounds (report.ts peakSummaries).
  const peaks = peakSummaries(runs);
  const prot = peaks.find((p) => p.name === 'lean-protected');
  const rounds = prot === undefined ? '' : `, median of ${prot.rounds.length} round${prot.rounds.length === 1 ? '' : 's'}`;
  const edge = prot?.us.edge ?? null;
  const wg = prot?.us.warpgate ?? null;
  if (has('peak')) lines.push({ budget: 'edge CPU per protected GET', limit: '≤ 20 CPU-µs/req', measured: `${num(edge, 1)} CPU-µs/req`, value: edge, pass: edge === null ? null : edge <= 20, source: `lean-protected (peak, closed loop${rounds})` });
  if (has('peak')) lines.push({ budget: 'Warpgate CPU per protected GET (incl. origin leg)', limit: '≤ 20 CPU-µs/req', measured: `${num(wg, 1)} CPU-µs/req`, value: wg, pass: wg === null ? null : wg <= 20, source: `lean-protected (peak, closed loop${rounds})` });
  const ratio = prot?.xNginx ?? null;
  const nginxRun = runs.find((r) => r.setup === 'nginx');
  if (has('peak')) lines.push({
    budget: 'chain throughput vs nginx auth_request',
    limit: '≥ 1.5×',
    measured: nginxRun === undefined ? `not measured: ${nginxNote}` : `${num(ratio, 2)}× (${num(prot?.reqPerSec)} vs ${num(nginxRun.reqPerSec)} req/s)`,
    value: ratio,
    pass: ratio === null ? null : ratio >= 1.5,
    source: `lean-protected${rounds} vs nginx-auth-request (closed loop, same run)`,
  });
  const paced = runs.find((r) => r.name === 'half-lean-protected-paced');
  const added = paced?.vsDirect?.addedP99Ms ?? null;
  if (has('half')) lines.push({
    budget: 'p99 added by edge + tunnel + Warpgate at half of peak',
    limit: '≤ 1 ms',
    measured: paced === undefined ? 'not measured' : `${signed3(added)} ms (p99 ${num(paced.latencyMs.p99, 3)} vs direct ${num(runs.find((r) => r.name === 'half-direct-paced')?.latencyMs.p99, 3)} ms at ${num(paced.load.rate)} req/s)`,
    value: added,
    pass: added === null ? null : added <= 1,
    source: 'half-lean-protected-paced vs half-direct-paced',
  });
  // Memory per in-flight request must not grow with body size: compare each watched process's
  // peak RSS in the 100 MiB downloads with its peak in the 10 MiB downloads (same concurrency).
  const d10 = transfers.find((t) => t.name === 'download-10mib');
  const d100 = transfers.find((t) => t.name === 'download-100mib');
  if (!has('transfers')) {
    // Not run (--only): no line.
  } else if (d10 !== undefined && d100 !== undefined && d10.ok > 0 && d100.ok > 0) {
    let worst: { who: string; rise: number } = { who: '–', rise: -Infinity };
    for (const p of d100.rss) {
      if (p.component === 'origin') continue;
      const q = d10.rss.find((x) => x.pid === p.pid);
      if (q === undefined) continue;
      const rise = p.peakMiB - q.peakMiB;
      if (rise > worst.rise) worst = { who: `${p.component} pid ${p.pid}: ${num(q.peakMiB, 1)} → ${num(p.peakMiB, 1)} MiB`, rise };
    }
    const extra = ((d100.bodyBytes - d10.bodyBytes) * d100.concurrency) / MIB;
    const tolerance = extra / 10;
    lines.push({
      budget: 'memory per in-flight request does not grow with body size',
      limit: `peak RSS rise 10 → 100 MiB bodies < ${num(tolerance, 0)} MiB`,
      measured: `largest rise ${signed(worst.rise, 1)} MiB (${worst.who}); buffering whole bodies would add ~${num(extra, 0)} MiB`,
      value: round(worst.rise, 1),
      pass: Number.isFinite(worst.rise) ? worst.rise < tolerance : null,
      source: `download-10mib vs download-100mib, ${d100.concurrency} in flight, edge workers and Warpgate (tolerance: a tenth of the extra body bytes in flight)`,
    });
  } else {
    lines.push({ budget: 'memory per in-flight request does not grow with body size', limit: '–', measured: 'not measured', value: null, pass: null, source: 'download runs missing or failed' });
  }
  if (pipelined !== null) {
    const pipe = pipelined.runs.find((r) => r.name === 'pipe-chain-pipelined');
    const flat = pipelined.runs.find((r) => r.name === 'pipe-chain-unpipelined');
    const r = pipelined.chainRatio;
    const o = pipe?.outcome;
    const wrong = o === undefined ? null : o.non2xx + o.lost + o.timeouts + o.unanswered + o.misordered + o.protocolErrors;
    lines.push({
      budget: `pipelined load (-p ${pipelined.depth}) vs the same requests in flight unpipelined`,
      limit: '≥ 0.8×, every answer correct',
      measured:
        pipe === undefined || flat === undefined || o === undefined
          ? 'not measured'
          : `${num(r, 2)}× (${num(pipe.okPerSec)} vs ${num(flat.okPerSec)} 2xx/s); ${num(o.responses)} answers to ${num(o.sent)} requests, ${num(o.lost)} lost, ` +
            `${num(o.closedWithPending + o.resets)} connections closed or reset with requests outstanding, ${num(o.misordered)} misordered`,
      value: r,
      pass: r === null || wrong === null ? (pipe === undefined ? null : false) : r >= 0.8 && wrong === 0,
      source: `raw client (never retries), ${pipelined.connections} × ${pipelined.depth} vs ${pipelined.connections * pipelined.depth} × 1, protected GET through the chain`,
    });
  }
  if (twoTenant !== null) {
    const t = twoTenant;
    const got429 = (t.hostile.result?.abort?.answered['429'] ?? 0) + (t.hostile.result?.pipeline?.statusCounts['429'] ?? 0);
    lines.push({
      budget: "a well-behaved client's throughput beside a hostile one (pipelining, aborting) vs alone",
      limit: '≥ 0.5×, 0 errors, no tunnel closed',
      measured:
        `${num(t.ratio, 2)}× (${num(t.beside.okPerSec)} vs ${num(t.solo.okPerSec)} 2xx/s), ${num(t.errorsBeside)} errors, ${num(t.tunnelsClosed)} tunnels closed; ` +
        `the hostile tenant got ${num(got429)} × 429`,
      value: t.ratio,
      pass: t.ratio === null ? null : t.ratio >= 0.5 && t.errorsBeside === 0 && t.tunnelsClosed === 0,
      source: `tenant-solo vs tenant-beside, ${t.solo.connections} keep-alive connections (raw client), hostile at ${(t.hostile.options as { abortRate: number }).abortRate} aborts/s`,
    });
  }
  return lines;
}

function signed3(n: number | null): string {
  if (n === null) return '–';
  return (n >= 0 ? '+' : '') + n.toFixed(3);
}

async function main(): Promise<number> {
  const settings = parseSettings();
  const has = (x: Section) => settings.sections.includes(x);
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
    stopRawLoads();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: Ctx = { ticksPerSecond, quietWaitSeconds: settings.quietWaitSeconds, problems, warnings, interrupted: () => interrupted, procs };
  const runOpts = { seconds: settings.durationSeconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections };
  /** Runs planned and runs done, so a run that silently went missing is a problem. */
  let planned = 0;
  const measure = async (t: Target, groups: Map<string, readonly number[]>, o: Parameters<typeof measureRun>[3]): Promise<RunReport | null> => {
    planned++;
    const r = await measureRun(ctx, t, groups, o, log);
    if (r !== null) runs.push(r);
    return r;
  };

  const data = mkdtempSync(join(tmpdir(), 'mezu-bench-'));
  const runs: RunReport[] = [];
  const transfers: TransferReport[] = [];
  let pipelined: PipelinedReport | null = null;
  let twoTenant: TwoTenantReport | null = null;
  let chain: Chain | null = null;
  let fewer: Chain | null = null;
  let watch: TunnelWatch | null = null;
  let nginxProc: Proc | null = null;
  let nginxWorkers: number[] = [];
  const nginxBin = settings.nginx ? findNginx() : null;
  const nginx = { version: nginxBin === null ? null : nginxVersion(nginxBin), note: '' };
  nginx.note = !settings.nginx ? 'skipped (--no-nginx or not in --only)' : nginxBin === null ? 'skipped: nginx is not installed (apt-get install -y nginx)' : 'measured';
  let micro: MicroResult[] | null = null;
  let originPid = 0;
  try {
    log(`data dir ${data}; sections: ${settings.sections.join(', ')}`);
    const token = prepareData(data);
    const origin = await startNodeService('origin', 'dist/bench/bench-origin.js', ['--host', '127.0.0.1', '--port', '0'], procs);
    originPid = origin.proc.pid;
    const originUrl = `http://127.0.0.1:${origin.port}`;
    const cookie = `${SESSION_COOKIE}=${token}`;

    // ── lean tunnel: (a) (b) (c) (d), then (f) (g) (h) (i) against the same processes ──
    const needsChain = settings.sections.some((x) => x !== 'nginx' && x !== 'micro');
    if (needsChain) {
      chain = await startChain(data, origin.port, settings.workers, procs, notes);
      watch = new TunnelWatch([chain.edge, chain.warpgate]);
      const base = `http://127.0.0.1:${chain.edgePort}`;
      await preflightChain(base, token, notes, 'lean');
      const groups = chainGroups(originPid, chain);
      const direct: Target = { name: 'direct', label: 'origin direct, GET /health', url: `${originUrl}/health`, headers: { host: '127.0.0.1' }, setup: 'direct', tunnel: null };
      const leanPublic: Target = { name: 'lean-public', label: 'edge+lean tunnel+Warpgate, public GET /health', url: `${base}/health`, headers: { host: '127.0.0.1' }, setup: 'chain', tunnel: 'lean' };
      const leanProtected: Target = {
        name: 'lean-protected',
        label: `edge (${settings.workers} workers)+lean tunnel+Warpgate, session GET /api/v1/items`,
        url: `${base}/api/v1/items`,
        headers: { host: '127.0.0.1', cookie },
        setup: 'chain',
        tunnel: 'lean',
      };

      if (has('peak')) {
        // (d) a second chain, one worker fewer, with its own data dir (its own store, PKI and
        // session), up for the peak rounds only so its idle processes are not in other windows.
        let fewerTarget: Target | null = null;
        let fewerGroups: Map<string, readonly number[]> | null = null;
        const fewerWorkers = settings.workers - 1;
        if (settings.workersCompare) {
          const data2 = join(data, 'fewer-workers');
          mkdirSync(data2);
          const token2 = prepareData(data2);
          fewer = await startChain(data2, origin.port, fewerWorkers, procs, notes);
          const base2 = `http://127.0.0.1:${fewer.edgePort}`;
          await preflightChain(base2, token2, notes, `lean, ${fewerWorkers} worker${fewerWorkers === 1 ? '' : 's'}`);
          fewerGroups = chainGroups(originPid, fewer);
          fewerTarget = {
            name: `lean-protected-w${fewerWorkers}`,
            label: `edge (${fewerWorkers} worker${fewerWorkers === 1 ? '' : 's'})+lean tunnel+Warpgate, session GET /api/v1/items`,
            url: `${base2}/api/v1/items`,
            headers: { host: '127.0.0.1', cookie: `${SESSION_COOKIE}=${token2}` },
            setup: 'chain',
            tunnel: 'lean',
          };
        } else if (settings.workers === 1) {
          notes.push('workers comparison skipped: --workers 1 leaves no fewer workers to compare');
        }
        // Interleaved rounds: a slow minute on the shared machine hits every target, not one.
        for (let round = 1; round <= settings.rounds && !interrupted; round++) {
          // Later rounds find the processes warm: a shorter warm-up keeps the full run near 6 minutes.
          const warmupSeconds = round === 1 ? settings.warmupSeconds : Math.min(1, settings.warmupSeconds);
          const o = { kind: 'closed' as const, ...runOpts, warmupSeconds, round };
          for (const t of round === 1 ? [direct, leanPublic, leanProtected] : [direct, leanProtected]) {
            if (interrupted) break;
            await measure(t, groups, { ...o, ...(t.setup === 'chain' ? { workers: settings.workers } : {}) });
          }
          if (fewerTarget !== null && fewerGroups !== null && !interrupted) await measure(fewerTarget, fewerGroups, { ...o, workers: fewerWorkers });
        }
        if (fewer !== null) {
          await stopChain(fewer, procs, notes, problems);
          fewer = null;
        }
      }

      const peakRps = peakSummaries(runs).find((p) => p.name === 'lean-protected')?.reqPerSec ?? null;
      if (has('half') && peakRps !== null && !interrupted) {
        const rate = Math.max(1, Math.round(peakRps / 2));
        notes.push(`half of peak: ${rate} req/s = lean-protected's median ${Math.round(peakRps)} req/s ÷ 2`);
        const half = [
          { ...direct, name: 'half-direct-paced', label: 'origin direct, GET /health' },
          { ...leanProtected, name: 'half-lean-protected-paced', label: 'edge+lean tunnel+Warpgate, session GET' },
        ];
        for (const t of half) {
          if (interrupted) break;
          await measure(t, groups, { kind: 'paced', ...runOpts, rate });
        }
        // The same pair at an eighth and a quarter of peak: is the added tail a matter of load
        // (queueing, run-queue waits on 2 shared cores) or there at any rate? Shorter runs.
        for (const div of [8, 4]) {
          const r8 = Math.max(1, Math.round(peakRps / div));
          for (const t of [
            { ...direct, name: `curve-1/${div}-direct-paced`, label: `origin direct, GET /health (1/${div} of peak)` },
            { ...leanProtected, name: `curve-1/${div}-lean-protected-paced`, label: `edge+lean tunnel+Warpgate, session GET (1/${div} of peak)` },
          ]) {
            if (interrupted) break;
            await measure(t, groups, { kind: 'paced', seconds: Math.max(1, Math.ceil(settings.durationSeconds / 2)), warmupSeconds: 1, connections: settings.connections, rate: r8 });
          }
        }
        const rated = [
          { ...direct, name: 'half-direct-autocannon', label: 'origin direct, GET /health' },
          { ...leanProtected, name: 'half-lean-protected-autocannon', label: 'edge+lean tunnel+Warpgate, session GET' },
        ];
        for (const t of rated) {
          if (interrupted) break;
          await measure(t, groups, { kind: 'autocannon-rate', ...runOpts, rate });
        }
      }

      // (g) large bodies through the lean chain.
      const big = has('transfers')
        ? [
            { name: 'upload-1mib', label: 'PUT 1 MiB', direction: 'upload' as const, url: `${base}/api/v1/upload`, bytes: UPLOAD_BYTES },
            { name: 'download-10mib', label: 'GET 10 MiB', direction: 'download' as const, url: `${base}/api/v1/big?bytes=${DOWNLOAD_BYTES}`, bytes: DOWNLOAD_BYTES },
            { name: 'download-100mib', label: 'GET 100 MiB', direction: 'download' as const, url: `${base}/api/v1/big?bytes=${HUGE_DOWNLOAD_BYTES}`, bytes: HUGE_DOWNLOAD_BYTES },
          ]
        : [];
      for (const b of big) {
        if (interrupted) break;
        log(`${b.label}: ${settings.durationSeconds} s at concurrency ${TRANSFER_CONCURRENCY}`);
        const quiet = await waitQuiet(groups, ctx);
        if (quiet !== 'quiet' && quiet !== 'not waited for') warnings.push(`${b.name}: machine ${quiet} before the run; measured anyway`);
        const watchRss = new Map<string, readonly number[]>([
          ['edge worker', chain.edgeWorkers],
          ['Warpgate', chain.warpgatePids],
          ['origin', [originPid]],
        ]);
        const m = await withCpu(groups, ticksPerSecond, () =>
          transfer({
            direction: b.direction,
            url: b.url,
            headers: { host: '127.0.0.1', cookie },
            bodyBytes: b.bytes,
            concurrency: TRANSFER_CONCURRENCY,
            seconds: settings.durationSeconds,
            maxRequests: TRANSFER_MAX_REQUESTS,
            watch: watchRss,
          }),
        );
        const t = m.value;
        const mib = t.bytes / MIB;
        transfers.push({
          name: b.name,
          label: b.label,
          direction: b.direction,
          url: b.url.replace(base, ''),
          bodyBytes: b.bytes,
          concurrency: TRANSFER_CONCURRENCY,
          seconds: settings.durationSeconds,
          completed: t.completed,
          ok: t.ok,
          failed: t.failed,
          errorKinds: t.errorKinds,
          bytes: t.bytes,
          elapsedSeconds: round(t.elapsedSeconds, 3)!,
          mibPerSec: round(mib / t.elapsedSeconds, 1)!,
          latencyMs: latencyStats(t.latencySortedMs),
          inFlightBodyMiB: (TRANSFER_CONCURRENCY * b.bytes) / MIB,
          rss: t.rss,
          rssSamples: t.rssSamples,
          cpu: cpuReport(m.cpu, mib, m.elapsedSeconds, b.name, problems),
        });
        if (t.failed > 0) problems.push(`${b.name}: ${t.failed} failed transfers ${JSON.stringify(t.errorKinds)}`);
        for (const p of procs) if (!p.alive) problems.push(`${b.name}: ${p.name} (pid ${p.pid}) exited during the run`);
      }

      // (h) pipelining: shorter windows; what it shows today is a count of refusals, not a rate.
      const shortSeconds = Math.max(1, Math.ceil(settings.durationSeconds / 2));
      // A scenario that fails (e.g. the hostile process does not start) is a problem of this run;
      // the sections after it still run and the processes are still stopped.
      if (has('pipelined') && !interrupted) {
        try {
          pipelined = await pipelinedScenario(
            ctx,
            { originUrl, chainUrl: base, cookie, groups, watch },
            { connections: settings.pipelineConnections, depth: settings.pipelineDepth, seconds: shortSeconds, warmupSeconds: Math.min(1, settings.warmupSeconds) },
            log,
          );
        } catch (err) {
          problems.push(`pipelined scenario failed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      // (i) two tenants, last on this chain: whatever the hostile tenant leaves behind cannot skew another section.
      if (has('two-tenant') && !interrupted) {
        try {
          twoTenant = await twoTenantScenario(
            ctx,
            { data, chainUrl: base, cookie, groups, watch },
            { connections: settings.connections, seconds: settings.durationSeconds, warmupSeconds: settings.warmupSeconds, abortRate: settings.hostileAbortRate, abortAfterMs: settings.hostileAbortAfterMs, delayMs: settings.hostileDelayMs },
            log,
          );
        } catch (err) {
          problems.push(`two-tenant scenario failed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      watch.stop();
      watch = null;
      await stopChain(chain, procs, notes, problems);
      chain = null;
    }

    // ── (e) nginx auth_request, when installed ──
    if (nginxBin !== null && !interrupted) {
      const tokens = join(data, 'auth-tokens.txt');
      writeFileSync(tokens, `${token}\n`, { mode: 0o600 });
      const auth = await startNodeService('auth', 'dist/bench/auth-service.js', ['--tokens', tokens, '--email', BENCH_EMAIL], procs);
      const nginxPort = await freePort();
      const setup = writeNginxConfig(join(data, 'nginx'), nginxPort, origin.port, auth.port, settings.workers);
      nginxProc = new Proc('nginx', setup.args, ROOT, nginxBin);
      procs.push(nginxProc);
      const nbase = `http://127.0.0.1:${nginxPort}`;
      await requestUntilOk(`${nbase}/api/v1/items`, { host: '127.0.0.1', cookie }, 10_000);
      const echo = await request(`${nbase}/api/v1/echo`, { host: '127.0.0.1', cookie });
      if (!echo.body.includes(BENCH_EMAIL)) throw new Error(`bench: pre-flight nginx: the identity did not reach the origin: ${echo.body.slice(0, 300)}`);
      const anon = await request(`${nbase}/api/v1/items`, { host: '127.0.0.1' });
      if (anon.status !== 401) throw new Error(`bench: pre-flight nginx: GET without a cookie answered ${anon.status}, expected 401`);
      const tree = processTree(nginxProc.pid);
      nginxWorkers = tree.slice(1);
      if (nginxWorkers.length !== settings.workers) notes.push(`nginx has ${nginxWorkers.length} worker processes, expected ${settings.workers}`);
      notes.push(`pre-flight (nginx): protected 200 with the identity at the origin; without a cookie 401; master ${nginxProc.pid}, workers ${nginxWorkers.join(', ')}`);
      const ngroups = new Map<string, readonly number[]>([
        ['origin', processTree(originPid)],
        ['nginx', tree],
        ['auth', processTree(auth.proc.pid)],
      ]);
      const nginxTarget: Target = {
        name: 'nginx-auth-request',
        label: 'nginx auth_request + uWS auth service, session GET /api/v1/items',
        url: `${nbase}/api/v1/items`,
        headers: { host: '127.0.0.1', cookie },
        setup: 'nginx',
        tunnel: null,
      };
      await measure(nginxTarget, ngroups, { kind: 'closed', ...runOpts });
    } else if (nginxBin === null && settings.nginx) {
      log(`nginx comparison ${nginx.note}`);
      notes.push(`nginx comparison ${nginx.note}`);
    }
  } finally {
    log('stopping processes');
    watch?.stop();
    if (fewer !== null) await stopChain(fewer, procs, notes, problems);
    if (chain !== null) await stopChain(chain, procs, notes, problems);
    for (const p of [...procs].reverse()) {
      const diedEarly = !p.alive;
      notes.push(`${p.name} (pid ${p.pid}) ${await p.stop()}`);
      if (diedEarly) problems.push(`${p.name} (pid ${p.pid}) had exited on its own before the bench stopped it: ${JSON.stringify(p.exit)}`);
    }
    if (nginxProc !== null) notes.push(...(await stopOrphans(nginxWorkers, nginxProc.pid, 'nginx worker', ['nginx'])));
    if (settings.micro && !interrupted && existsSync(join(ROOT, 'dist/bench/micro.js'))) {
      log('micro-benchmarks (bench/micro.ts)');
      micro = runMicro(data, problems);
    }
    rmSync(data, { recursive: true, force: true });
  }

  compare(runs);
  if (interrupted) problems.push('interrupted by a signal; the runs are incomplete');
  const report: BenchReport = {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpuModel(),
    cores: cpus().length,
    clockTicksPerSecond: ticksPerSecond,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    settings: {
      ...settings,
      pipelining: 1,
      requestTimeoutSeconds: 10,
      maxRequestsPerRun: settings.durationSeconds * MAX_REQUESTS_PER_SECOND,
      transfer: { concurrency: TRANSFER_CONCURRENCY, uploadBytes: UPLOAD_BYTES, downloadBytes: [DOWNLOAD_BYTES, HUGE_DOWNLOAD_BYTES], maxRequests: TRANSFER_MAX_REQUESTS },
      warpgate: 'defaults: --conns-per-worker 2, --origin-connections 1024 (a ceiling; the pool grows while requests wait)',
      wallSeconds: Math.round((Date.now() - t0) / 1000),
    },
    sections: settings.sections,
    nginx,
    runs,
    transfers,
    pipelined,
    twoTenant,
    budgets: budgets(runs, transfers, nginx.note, pipelined, twoTenant, settings.sections),
    micro,
    problems,
    warnings,
    notes,
    ok: false,
  };
  if (runs.length !== planned && !interrupted) problems.push(`${runs.length} load runs completed, ${planned} planned`);
  if (has('transfers') && transfers.length !== 3 && !interrupted) problems.push(`${transfers.length} of 3 large-body runs completed`);
  if (has('pipelined') && pipelined === null && !interrupted && !problems.some((p) => p.startsWith('pipelined scenario failed'))) problems.push('the pipelined scenario did not complete');
  if (has('two-tenant') && twoTenant === null && !interrupted && !problems.some((p) => p.startsWith('two-tenant scenario failed'))) problems.push('the two-tenant scenario did not complete');
  report.ok = problems.length === 0;
  const md = renderMarkdown(report);
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  // A partial run (--only) never replaces the full run's files.
  const stem = settings.partial ? 'partial-latest' : 'latest';
  writeFileSync(join(dir, `${stem}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dir, `${stem}.md`), md);
  process.stdout.write(md);
  log(`wrote bench/results/${stem}.json and ${stem}.md after ${report.settings.wallSeconds} s`);
  if (report.warnings.length > 0) process.stderr.write(`\n!!! bench: WARNINGS:\n${report.warnings.map((w) => `!!!   ${w}`).join('\n')}\n`);
  if (!report.ok) {
    process.stderr.write(`\n!!! bench: PROBLEMS — these figures are not clean:\n${report.problems.map((p) => `!!!   ${p}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
