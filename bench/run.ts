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
 *   (f) half of (c)'s peak req/s, paced (bench/paced.ts) and with autocannon
 *       `overallRate`, against (a) at the same rate: p50/p99 added; and paced
 *       at 1/8 and 1/4 of peak, to see how the added tail depends on load
 *   (g) 1 MiB uploads and 10 MiB downloads through (c)'s chain: MiB/s and
 *       peak RSS of the edge workers and the Warpgate (VmRSS every 100 ms)
 *   (e) nginx `auth_request` + a uWS session-checking service in front of
 *       the same origin, protected GET (skipped, with a note, without nginx)
 * then the micro-benchmarks (bench/micro.ts, tinybench) in a child process.
 * For each load run: req/s, exact latency percentiles, and CPU-µs per request
 * of every component from /proc/<pid>/stat — the figure the budgets are
 * stated in, fair even though the load generator runs in this process on the
 * same cores.
 *
 * Writes bench/results/latest.json and latest.md and prints the tables. Exits
 * 1 when a run saw errors, non-2xx responses or a crashed process (budget
 * misses are reported, not failures: `npm run bench:ci` guards regressions).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clockTicksPerSecond, processTree } from './cpu.js';
import { stopCurrentLoad, MAX_REQUESTS_PER_SECOND } from './load.js';
import { compare, cpuReport, latencyStats, measureRun, round, waitQuiet, withCpu, type Ctx, type Target } from './measure.js';
import { findNginx, freePort, nginxVersion, writeNginxConfig } from './nginx.js';
import { Proc, stopOrphans } from './processes.js';
import { num, renderMarkdown, signed, type BenchReport, type BudgetLine, type MicroResult, type RunReport, type TransferReport } from './report.js';
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

interface Settings {
  durationSeconds: number;
  quietWaitSeconds: number;
  warmupSeconds: number;
  connections: number;
  workers: number;
  quick: boolean;
  nginx: boolean;
  micro: boolean;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench: ${msg}\nusage: node dist/bench/run.js [--duration S (default 10)] [--warmup S (default 2)] [--connections N (default 64)] ` +
      `[--quick (3 s runs, 1 s warm-up)] [--workers N (default 2)] [--quiet-wait S (default 60; 0 = do not wait)] [--no-nginx] [--no-micro]\n`,
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
        'quiet-wait': { type: 'string' },
        quick: { type: 'boolean' },
        'no-nginx': { type: 'boolean' },
        'no-micro': { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  const quick = v.quick === true;
  return {
    quick,
    // --duration wins over --quick when both are given.
    durationSeconds: intOption(v.duration as string | undefined, 'duration', quick ? 3 : 10, 1, 300),
    warmupSeconds: intOption(v.warmup as string | undefined, 'warmup', quick ? 1 : 2, 0, 60),
    connections: intOption(v.connections as string | undefined, 'connections', 64, 1, 1024),
    workers: intOption(v.workers as string | undefined, 'workers', 2, 1, 16),
    quietWaitSeconds: intOption(v['quiet-wait'] as string | undefined, 'quiet-wait', 60, 0, 600),
    nginx: v['no-nginx'] !== true,
    micro: v['no-micro'] !== true,
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

function budgets(runs: RunReport[], transfers: TransferReport[], nginxNote: string): BudgetLine[] {
  const lines: BudgetLine[] = [];
  const prot = runs.find((r) => r.name === 'lean-protected');
  const edge = prot?.cpu.components.edge?.usPerUnit ?? null;
  const wg = prot?.cpu.components.warpgate?.usPerUnit ?? null;
  lines.push({ budget: 'edge CPU per protected GET', limit: '≤ 20 CPU-µs/req', measured: `${num(edge, 1)} CPU-µs/req`, value: edge, pass: edge === null ? null : edge <= 20, source: 'lean-protected (peak, closed loop)' });
  lines.push({ budget: 'Warpgate CPU per protected GET (incl. origin leg)', limit: '≤ 20 CPU-µs/req', measured: `${num(wg, 1)} CPU-µs/req`, value: wg, pass: wg === null ? null : wg <= 20, source: 'lean-protected (peak, closed loop)' });
  const ratio = prot?.vsNginx?.throughputRatio ?? null;
  const nginxRun = runs.find((r) => r.setup === 'nginx');
  lines.push({
    budget: 'chain throughput vs nginx auth_request',
    limit: '≥ 1.5×',
    measured: nginxRun === undefined ? `not measured: ${nginxNote}` : `${num(ratio, 2)}× (${num(prot?.reqPerSec)} vs ${num(nginxRun.reqPerSec)} req/s)`,
    value: ratio,
    pass: ratio === null ? null : ratio >= 1.5,
    source: 'lean-protected vs nginx-auth-request (closed loop, same run)',
  });
  const paced = runs.find((r) => r.name === 'half-lean-protected-paced');
  const added = paced?.vsDirect?.addedP99Ms ?? null;
  lines.push({
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
  if (d10 !== undefined && d100 !== undefined && d10.ok > 0 && d100.ok > 0) {
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
  return lines;
}

function signed3(n: number | null): string {
  if (n === null) return '–';
  return (n >= 0 ? '+' : '') + n.toFixed(3);
}

async function main(): Promise<number> {
  const settings = parseSettings();
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
  const runOpts = { seconds: settings.durationSeconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections };

  const data = mkdtempSync(join(tmpdir(), 'mezu-bench-'));
  const runs: RunReport[] = [];
  const transfers: TransferReport[] = [];
  let chain: Chain | null = null;
  let nginxProc: Proc | null = null;
  let nginxWorkers: number[] = [];
  const nginxBin = settings.nginx ? findNginx() : null;
  const nginx = { version: nginxBin === null ? null : nginxVersion(nginxBin), note: '' };
  nginx.note = !settings.nginx ? 'skipped (--no-nginx)' : nginxBin === null ? 'skipped: nginx is not installed (apt-get install -y nginx)' : 'measured';
  let micro: MicroResult[] | null = null;
  let originPid = 0;
  try {
    log(`data dir ${data}`);
    const token = prepareData(data);
    const origin = await startNodeService('origin', 'dist/bench/bench-origin.js', ['--host', '127.0.0.1', '--port', '0'], procs);
    originPid = origin.proc.pid;
    const originUrl = `http://127.0.0.1:${origin.port}`;
    const cookie = `${SESSION_COOKIE}=${token}`;

    // ── lean tunnel: (a) (b) (c), then (f) and (g) against the same processes ──
    chain = await startChain(data, origin.port, settings.workers, procs, notes);
    let base = `http://127.0.0.1:${chain.edgePort}`;
    await preflightChain(base, token, notes, 'lean');
    let groups = chainGroups(originPid, chain);
    const direct: Target = { name: 'direct', label: 'origin direct, GET /health', url: `${originUrl}/health`, headers: { host: '127.0.0.1' }, setup: 'direct', tunnel: null };
    const leanPublic: Target = { name: 'lean-public', label: 'edge+lean tunnel+Warpgate, public GET /health', url: `${base}/health`, headers: { host: '127.0.0.1' }, setup: 'chain', tunnel: 'lean' };
    const leanProtected: Target = {
      name: 'lean-protected',
      label: 'edge+lean tunnel+Warpgate, session GET /api/v1/items',
      url: `${base}/api/v1/items`,
      headers: { host: '127.0.0.1', cookie },
      setup: 'chain',
      tunnel: 'lean',
    };
    for (const t of [direct, leanPublic, leanProtected]) {
      const r = await measureRun(ctx, t, groups, { kind: 'closed', ...runOpts }, log);
      if (r === null) break;
      runs.push(r);
    }

    const peak = runs.find((r) => r.name === 'lean-protected');
    if (peak !== undefined && !interrupted) {
      const rate = Math.max(1, Math.round(peak.reqPerSec / 2));
      notes.push(`half of peak: ${rate} req/s = lean-protected's ${peak.reqPerSec} req/s ÷ 2`);
      const half = [
        { ...direct, name: 'half-direct-paced', label: 'origin direct, GET /health' },
        { ...leanProtected, name: 'half-lean-protected-paced', label: 'edge+lean tunnel+Warpgate, session GET' },
      ];
      for (const t of half) {
        if (interrupted) break;
        const r = await measureRun(ctx, t, groups, { kind: 'paced', ...runOpts, rate }, log);
        if (r !== null) runs.push(r);
      }
      // The same pair at an eighth and a quarter of peak: is the added tail a matter of load
      // (queueing, run-queue waits on 2 shared cores) or there at any rate? Shorter runs.
      for (const div of [8, 4]) {
        const r8 = Math.max(1, Math.round(peak.reqPerSec / div));
        for (const t of [
          { ...direct, name: `curve-1/${div}-direct-paced`, label: `origin direct, GET /health (1/${div} of peak)` },
          { ...leanProtected, name: `curve-1/${div}-lean-protected-paced`, label: `edge+lean tunnel+Warpgate, session GET (1/${div} of peak)` },
        ]) {
          if (interrupted) break;
          const r = await measureRun(ctx, t, groups, { kind: 'paced', seconds: Math.max(1, Math.ceil(settings.durationSeconds / 2)), warmupSeconds: 1, connections: settings.connections, rate: r8 }, log);
          if (r !== null) runs.push(r);
        }
      }
      const rated = [
        { ...direct, name: 'half-direct-autocannon', label: 'origin direct, GET /health' },
        { ...leanProtected, name: 'half-lean-protected-autocannon', label: 'edge+lean tunnel+Warpgate, session GET' },
      ];
      for (const t of rated) {
        if (interrupted) break;
        const r = await measureRun(ctx, t, groups, { kind: 'autocannon-rate', ...runOpts, rate }, log);
        if (r !== null) runs.push(r);
      }
    }

    // (g) large bodies through the lean chain.
    const big = [
      { name: 'upload-1mib', label: 'PUT 1 MiB', direction: 'upload' as const, url: `${base}/api/v1/upload`, bytes: UPLOAD_BYTES },
      { name: 'download-10mib', label: 'GET 10 MiB', direction: 'download' as const, url: `${base}/api/v1/big?bytes=${DOWNLOAD_BYTES}`, bytes: DOWNLOAD_BYTES },
      { name: 'download-100mib', label: 'GET 100 MiB', direction: 'download' as const, url: `${base}/api/v1/big?bytes=${HUGE_DOWNLOAD_BYTES}`, bytes: HUGE_DOWNLOAD_BYTES },
    ];
    for (const b of big) {
      if (interrupted) break;
      log(`${b.label}: ${settings.durationSeconds} s at concurrency ${TRANSFER_CONCURRENCY}`);
      const quiet = await waitQuiet(groups, ctx);
      if (quiet !== 'quiet' && quiet !== 'not waited for') warnings.push(`${b.name}: machine ${quiet} before the run; measured anyway`);
      const watch = new Map<string, readonly number[]>([
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
          watch,
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
    await stopChain(chain, procs, notes, problems);
    chain = null;

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
      const r = await measureRun(ctx, nginxTarget, ngroups, { kind: 'closed', ...runOpts }, log);
      if (r !== null) runs.push(r);
    } else if (nginxBin === null) {
      log(`nginx comparison ${nginx.note}`);
      notes.push(`nginx comparison ${nginx.note}`);
    }
  } finally {
    log('stopping processes');
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
    },
    nginx,
    runs,
    transfers,
    budgets: budgets(runs, transfers, nginx.note),
    micro,
    problems,
    warnings,
    notes,
    ok: false,
  };
  // 3 lean runs at peak + 4 at half load + 4 at 1/8 and 1/4 + nginx (when installed).
  const expected = 3 + 4 + 4 + 1 + (nginxBin !== null ? 1 : 0);
  if (runs.length !== expected && !interrupted) problems.push(`${runs.length} load runs completed, expected ${expected}`);
  report.ok = problems.length === 0 && runs.length === expected && transfers.length === 3;
  const md = renderMarkdown(report);
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dir, 'latest.md'), md);
  process.stdout.write(md);
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
