/**
 * The bench's client-isolation scenarios (the budgets for pipelined load and
 * for a well-behaved client beside a hostile one), run by run.ts against its
 * lean chain:
 *
 *   pipelined   the same requests in flight with and without pipelining,
 *               through the chain and against the origin directly, counted
 *               by bench/rawload.ts (never retries), plus `autocannon -p`
 *               through the chain as an operator would run it;
 *   two-tenant  a well-behaved client (closed loop, keep-alive, never
 *               retries) alone, then beside a hostile one (bench/hostile.ts,
 *               another process and another loopback address) that
 *               pipelines and aborts requests to a slow path, then alone
 *               again; with the tunnels closed during each window, counted
 *               from the edge's and the Warpgate's log lines.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measureRun, round, waitQuiet, withCpu, cpuReport, latencyStats, OTHER_CORES_WARN, type Ctx, type Groups, type Target } from './measure.js';
import type { HostileResult } from './hostile.js';
import { Proc } from './processes.js';
import { rawLoad } from './rawload.js';
import { badText, type RawRunReport, type PipelinedReport, type TunnelCloses, type TwoTenantReport, type Setup } from './report.js';
import { ROOT, cli } from './stack.js';

/** An answer not complete this long after its request was written: its connection is destroyed and it counts as timed out. */
const RAW_TIMEOUT_MS = 10_000;
/**
 * Replacement connections per second a raw client may open: enough that a
 * client whose connections the server keeps closing goes on trying for the
 * whole window (as autocannon does), few enough to keep that churn bounded.
 */
const RECONNECTS_PER_SECOND = 1_000;

/** The hostile tenant's loopback source address: the edge's per-client limits are per address. */
export const HOSTILE_ADDRESS = '127.0.0.2';
/** Its pipelining part: connections × depth, reconnecting at most this often. */
const HOSTILE_PIPELINE_CONNECTIONS = 4;
const HOSTILE_PIPELINE_DEPTH = 10;
const HOSTILE_PIPELINE_CONNECTS_PER_SECOND = 500;
/** Its aborting part: at most this many open at once (the reset time is a setting). */
const HOSTILE_ABORT_CONCURRENCY = 512;
/** Time for the hostile process to start before its window (node start-up on a busy machine). */
const HOSTILE_START_MS = 1_500;
/** The hostile tenant's identity: a user of its own, so the two tenants differ by session and by address. */
const HOSTILE_EMAIL = 'hostile@example.com';

/**
 * Counts tunnel closes from the processes' output: the Warpgate logs
 * "tunnel to edge worker N closed" (not "(drained)", which is its own
 * certificate rotation) and the edge "connection to a warpgate … closed";
 * lines naming ENHANCE_YOUR_CALM or "too many" are the HTTP/2 flood guards
 * closing a connection (e.g. a rapid-reset guard counting the streams that
 * clients who left cancelled).
 */
export class TunnelWatch {
  private warpgate = 0;
  private edge = 0;
  private calm = 0;
  private readonly lines: Array<{ at: number; text: string }> = [];
  private seq = 0;
  private readonly off: Array<() => void> = [];

  constructor(procs: ReadonlyArray<Proc>) {
    for (const p of procs) {
      this.off.push(
        p.onLine((line) => {
          let hit = false;
          if (/tunnel to edge worker \d+ closed(?! \(drained\))/.test(line)) {
            this.warpgate++;
            hit = true;
          }
          if (/connection to a warpgate .* closed/.test(line)) {
            this.edge++;
            hit = true;
          }
          if (/ENHANCE_YOUR_CALM|too many/i.test(line)) {
            this.calm++;
            hit = true;
          }
          // The Warpgate's "tunnel closed: <reason>" precedes its counted line: kept for the reason only.
          if (/tunnel closed: /.test(line)) hit = true;
          if (hit && this.lines.length < 1_000) this.lines.push({ at: ++this.seq, text: `${p.name}: ${line}` });
          else if (hit) this.seq++;
        }),
      );
    }
  }

  mark(): { warpgate: number; edge: number; calm: number; seq: number } {
    return { warpgate: this.warpgate, edge: this.edge, calm: this.calm, seq: this.seq };
  }

  since(m: ReturnType<TunnelWatch['mark']>): TunnelCloses {
    return {
      warpgate: this.warpgate - m.warpgate,
      edge: this.edge - m.edge,
      calm: this.calm - m.calm,
      lines: this.lines.filter((l) => l.at > m.seq).slice(0, 5).map((l) => l.text),
    };
  }

  stop(): void {
    for (const f of this.off.splice(0)) f();
  }
}

export interface RawSpec {
  name: string;
  label: string;
  setup: Setup;
  url: string;
  headers: Record<string, string>;
  localAddress?: string;
  connections: number;
  depth: number;
  seconds: number;
  warmupSeconds: number;
  checkOrder: boolean;
  /** See RunOptions.expectFailures (measure.ts). */
  expectFailures: boolean;
  /** False when the caller has just made sure of the moment the window starts (two-tenant). */
  waitQuiet: boolean;
}

/** The raw client's options for a spec and a window length. */
function rawOptions(s: RawSpec, seconds: number, keepSamples: boolean) {
  return {
    url: s.url,
    headers: s.headers,
    connections: s.connections,
    depth: s.depth,
    seconds,
    // Far above what 2 cores serve (the bare origin does ~100k req/s pipelined), so it bounds, never shapes.
    maxRequests: Math.ceil(seconds * 500_000),
    ...(s.localAddress !== undefined ? { localAddress: s.localAddress } : {}),
    timeoutMs: RAW_TIMEOUT_MS,
    reconnect: true,
    maxConnectsPerSecond: RECONNECTS_PER_SECOND,
    maxConnects: s.connections + Math.ceil(RECONNECTS_PER_SECOND * (seconds + 1)),
    checkOrder: s.checkOrder,
    keepSamples,
  };
}

/** One raw-client run: quiet wait, warm-up, then the measured window with every process's CPU. */
export async function measureRaw(ctx: Ctx, s: RawSpec, groups: Groups, watch: TunnelWatch, log: (msg: string) => void): Promise<RawRunReport | null> {
  log(
    `${s.label}: raw client, ${s.connections} connections × ${s.depth} ${s.depth > 1 ? 'pipelined' : 'in flight'}` +
      `${s.localAddress !== undefined ? ` from ${s.localAddress}` : ''}, warm-up ${s.warmupSeconds} s, then ${s.seconds} s`,
  );
  if (s.waitQuiet) {
    const quiet = await waitQuiet(groups, ctx);
    if (quiet !== 'quiet' && quiet !== 'not waited for') ctx.warnings.push(`${s.name}: machine ${quiet} before the run; measured anyway`);
  }
  if (ctx.interrupted()) return null;
  let warmup: RawRunReport['warmup'] = null;
  if (s.warmupSeconds > 0) {
    const wu = await rawLoad(rawOptions(s, s.warmupSeconds, false));
    const bad = wu.non2xx + wu.lost + wu.timeouts + wu.misordered + wu.protocolErrors + wu.connectErrors;
    warmup = { seconds: s.warmupSeconds, requests: wu.responses, non2xx: wu.non2xx, errors: bad - wu.non2xx };
    if (bad > 0 && !s.expectFailures) ctx.problems.push(`${s.name}: warm-up saw ${wu.non2xx} non-2xx and ${bad - wu.non2xx} lost, timed-out, misordered or failed requests`);
  }
  if (ctx.interrupted()) return null;
  const mark = watch.mark();
  const m = await withCpu(groups, ctx.ticksPerSecond, () => rawLoad(rawOptions(s, s.seconds, true)));
  // Log lines of a close arrive a moment after the close itself.
  await new Promise((r) => setTimeout(r, 200));
  const tunnels = watch.since(mark);
  const { latencyMs, elapsedSeconds, ...outcome } = m.value;
  const run: RawRunReport = {
    name: s.name,
    label: s.label,
    setup: s.setup,
    url: new URL(s.url).pathname,
    localAddress: s.localAddress ?? '127.0.0.1',
    connections: s.connections,
    depth: s.depth,
    inFlight: s.connections * s.depth,
    seconds: s.seconds,
    warmup,
    elapsedSeconds: round(elapsedSeconds, 3)!,
    reqPerSec: round(outcome.responses / elapsedSeconds, 0)!,
    okPerSec: round(outcome.ok2xx / elapsedSeconds, 0)!,
    outcome,
    latencyMs: latencyStats(latencyMs),
    cpu: cpuReport(m.cpu, outcome.responses, m.elapsedSeconds, s.name, ctx.problems),
    tunnels,
  };
  for (const p of ctx.procs) if (!p.alive) ctx.problems.push(`${s.name}: ${p.name} (pid ${p.pid}) exited during the run: ${JSON.stringify(p.exit)}`);
  if (run.cpu.foreignCores > OTHER_CORES_WARN) {
    ctx.warnings.push(`${s.name}: the machine was not quiet: ${run.cpu.foreignCores.toFixed(2)} cores busy outside the benchmarked processes during the window`);
  }
  if (!s.expectFailures) {
    const o = outcome;
    const bad = o.non2xx + o.lost + o.timeouts + o.unanswered + o.misordered + o.protocolErrors + o.connectErrors + o.resets + o.closedWithPending;
    if (bad > 0) ctx.problems.push(`${s.name}: ${badText(run)}`);
    if (o.responses === 0) ctx.problems.push(`${s.name}: no response completed`);
  }
  return run;
}

export interface PipelinedEnv {
  originUrl: string;
  chainUrl: string;
  cookie: string;
  groups: Groups;
  watch: TunnelWatch;
}

export interface PipelinedSettings {
  connections: number;
  depth: number;
  seconds: number;
  warmupSeconds: number;
}

/**
 * The pipelined scenario. Each request goes to …/seq?n=i and its answer must
 * carry its own tag, so "every response correct" is checked, not assumed.
 * The unpipelined reference has connections × depth connections with one
 * request each: the same number of requests in flight.
 */
export async function pipelinedScenario(ctx: Ctx, env: PipelinedEnv, s: PipelinedSettings, log: (msg: string) => void): Promise<PipelinedReport | null> {
  const inFlight = s.connections * s.depth;
  const base = { seconds: s.seconds, checkOrder: true, waitQuiet: true };
  const directHeaders = { host: '127.0.0.1' };
  const chainHeaders = { host: '127.0.0.1', cookie: env.cookie };
  const specs: RawSpec[] = [
    { ...base, name: 'pipe-direct-unpipelined', label: `origin direct, ${inFlight} connections × 1`, setup: 'direct', url: `${env.originUrl}/api/v1/seq`, headers: directHeaders, connections: inFlight, depth: 1, warmupSeconds: s.warmupSeconds, expectFailures: false },
    { ...base, name: 'pipe-direct-pipelined', label: `origin direct, ${s.connections} connections × ${s.depth} pipelined`, setup: 'direct', url: `${env.originUrl}/api/v1/seq`, headers: directHeaders, connections: s.connections, depth: s.depth, warmupSeconds: 0, expectFailures: false },
    { ...base, name: 'pipe-chain-unpipelined', label: `edge+lean tunnel+Warpgate, session, ${inFlight} connections × 1`, setup: 'chain', url: `${env.chainUrl}/api/v1/seq`, headers: chainHeaders, connections: inFlight, depth: 1, warmupSeconds: s.warmupSeconds, expectFailures: false },
    // The edge's uWS front end closes a connection on which a request arrives while another's
    // answer is pending: today this run gets ~0 answers. That is its result, not a bench failure.
    { ...base, name: 'pipe-chain-pipelined', label: `edge+lean tunnel+Warpgate, session, ${s.connections} connections × ${s.depth} pipelined`, setup: 'chain', url: `${env.chainUrl}/api/v1/seq`, headers: chainHeaders, connections: s.connections, depth: s.depth, warmupSeconds: 0, expectFailures: true },
  ];
  const runs: RawRunReport[] = [];
  for (const spec of specs) {
    const r = await measureRaw(ctx, spec, env.groups, env.watch, log);
    if (r === null) return null;
    runs.push(r);
  }
  // What an operator runs: autocannon -c C -p D. It re-sends on a closed connection, so its count
  // hides the closes; it is shown beside the raw client's honest one, with its own errors.
  const t: Target = { name: 'pipe-chain-autocannon', label: `edge+lean tunnel+Warpgate, session, autocannon -c ${s.connections} -p ${s.depth}`, url: `${env.chainUrl}/api/v1/items`, headers: chainHeaders, setup: 'chain', tunnel: 'lean' };
  const mark = env.watch.mark();
  const ac = await measureRun(ctx, t, env.groups, { kind: 'closed', seconds: s.seconds, warmupSeconds: 0, connections: s.connections, pipelining: s.depth, expectFailures: true }, log);
  await new Promise((r) => setTimeout(r, 200));
  if (ac === null) return null;
  const ratio = (a: RawRunReport | undefined, b: RawRunReport | undefined) => (a === undefined || b === undefined || b.okPerSec === 0 ? null : round(a.okPerSec / b.okPerSec, 3));
  const byName = (n: string) => runs.find((r) => r.name === n);
  return {
    connections: s.connections,
    depth: s.depth,
    seconds: s.seconds,
    runs,
    autocannon: ac,
    autocannonTunnels: env.watch.since(mark),
    chainRatio: ratio(byName('pipe-chain-pipelined'), byName('pipe-chain-unpipelined')),
    directRatio: ratio(byName('pipe-direct-pipelined'), byName('pipe-direct-unpipelined')),
  };
}

export interface TwoTenantEnv {
  data: string;
  chainUrl: string;
  cookie: string;
  groups: Groups;
  watch: TunnelWatch;
}

export interface TwoTenantSettings {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /**
   * The hostile tenant's aborts started per second, the longest time before
   * each reset (uniform from 1 ms), and the slow path's delay in ms. The
   * Warpgate drains an abandoned answer for up to 1 s to keep its origin
   * connection, so about abortRate × min(delayMs, 1000) / 1000 origin
   * connections are busy with abandoned requests.
   */
  abortRate: number;
  abortAfterMs: number;
  delayMs: number;
}

/** The two-tenant scenario; the hostile process is stopped by pid before it returns. */
export async function twoTenantScenario(ctx: Ctx, env: TwoTenantEnv, s: TwoTenantSettings, log: (msg: string) => void): Promise<TwoTenantReport | null> {
  // A second user with a session of its own for the hostile tenant.
  cli(env.data, ['users', 'add', '--project', 'demo', '--email', HOSTILE_EMAIL]);
  const hostileToken = cli(env.data, ['sessions', 'create', '--project', 'demo', '--email', HOSTILE_EMAIL]);
  const cookieFile = join(env.data, 'hostile-cookie.txt');
  writeFileSync(cookieFile, `mezu_session=${hostileToken}\n`, { mode: 0o600 });

  const good: RawSpec = {
    name: 'tenant-solo',
    label: `well-behaved tenant alone, ${s.connections} keep-alive connections`,
    setup: 'chain',
    url: `${env.chainUrl}/api/v1/seq`,
    headers: { host: '127.0.0.1', cookie: env.cookie },
    connections: s.connections,
    depth: 1,
    seconds: s.seconds,
    warmupSeconds: s.warmupSeconds,
    checkOrder: true,
    expectFailures: false,
    waitQuiet: true,
  };
  const solo = await measureRaw(ctx, good, env.groups, env.watch, log);
  if (solo === null) return null;

  const hostileOptions = {
    localAddress: HOSTILE_ADDRESS,
    seconds: s.seconds,
    pipelineConnections: HOSTILE_PIPELINE_CONNECTIONS,
    pipelineDepth: HOSTILE_PIPELINE_DEPTH,
    pipelineConnectsPerSecond: HOSTILE_PIPELINE_CONNECTS_PER_SECOND,
    abortRate: s.abortRate,
    abortConcurrency: HOSTILE_ABORT_CONCURRENCY,
    abortAfterMs: s.abortAfterMs,
    delayMs: s.delayMs,
  };
  const quiet = await waitQuiet(env.groups, ctx);
  if (quiet !== 'quiet' && quiet !== 'not waited for') ctx.warnings.push(`tenant-beside: machine ${quiet} before the run; measured anyway`);
  if (ctx.interrupted()) return null;
  const startAt = Date.now() + HOSTILE_START_MS;
  const hostile = new Proc(
    'hostile',
    [
      join(ROOT, 'dist/bench/hostile.js'),
      '--base', env.chainUrl,
      '--cookie-file', cookieFile,
      '--local-address', hostileOptions.localAddress,
      '--seconds', String(s.seconds),
      '--start-at', String(startAt),
      '--pipeline-connections', String(hostileOptions.pipelineConnections),
      '--pipeline-depth', String(hostileOptions.pipelineDepth),
      '--pipeline-connects-per-second', String(hostileOptions.pipelineConnectsPerSecond),
      '--abort-rate', String(hostileOptions.abortRate),
      '--abort-concurrency', String(hostileOptions.abortConcurrency),
      '--abort-after-ms', String(hostileOptions.abortAfterMs),
      '--delay-ms', String(hostileOptions.delayMs),
    ],
    ROOT,
  );
  let beside: RawRunReport | null = null;
  let after: RawRunReport | null = null;
  let result: HostileResult | null = null;
  let hostileCpuSeconds: number | null = null;
  try {
    // Listen for the result line from the start: it comes while the bench is busy with its own window.
    const resultLine = hostile
      .waitFor('result line', HOSTILE_START_MS + s.seconds * 1_000 + 20_000, (line, stream) => {
        if (stream !== 'stdout' || !line.startsWith('{"event":"result"')) return undefined;
        return JSON.parse(line) as HostileResult;
      })
      .then(
        (r) => r,
        (err: Error) => {
          ctx.problems.push(`tenant-beside: the hostile tenant gave no result: ${err.message.split('\n')[0]}`);
          return null;
        },
      );
    await hostile.waitFor('ready line', HOSTILE_START_MS + 10_000, (line, stream) => (stream === 'stdout' && line.startsWith('{"event":"ready"') ? true : undefined));
    const late = Date.now() - startAt;
    if (late > 0) ctx.warnings.push(`tenant-beside: the hostile process was ready ${late} ms after its start time; the windows overlap by that much less`);
    else await new Promise((r) => setTimeout(r, -late));
    const groups = new Map(env.groups);
    groups.set('hostile', [hostile.pid]);
    beside = await measureRaw(
      ctx,
      { ...good, name: 'tenant-beside', label: `well-behaved tenant beside the hostile one (${HOSTILE_ADDRESS})`, warmupSeconds: 0, waitQuiet: false, expectFailures: true },
      groups,
      env.watch,
      log,
    );
    hostileCpuSeconds = beside?.cpu.components.hostile?.cpuSeconds ?? null;
    result = await resultLine;
    // Gone before the window after it, so nothing of it runs there.
    log(`hostile tenant (pid ${hostile.pid}) ${await hostile.stop()}`);
    if (beside === null || ctx.interrupted()) return null;
    // Alone again: a lasting effect (tunnels gone, counters leaked) shows here.
    after = await measureRaw(
      ctx,
      // Its errors are a finding about the hostile tenant's lasting effect, reported in the table.
      { ...good, name: 'tenant-after', label: 'well-behaved tenant alone again, after the hostile one', seconds: Math.min(3, s.seconds), warmupSeconds: 0, expectFailures: true },
      env.groups,
      env.watch,
      log,
    );
  } finally {
    // It lingers after its result until stopped; exiting by itself before that is a failure.
    const diedEarly = hostile.alive || hostile.stopping ? null : hostile.exit;
    if (hostile.alive) log(`hostile tenant (pid ${hostile.pid}) ${await hostile.stop()}`);
    if (diedEarly !== null) ctx.problems.push(`hostile tenant (pid ${hostile.pid}) exited by itself with ${JSON.stringify(diedEarly)}: ${hostile.tail.slice(-5).join(' | ')}`);
  }
  const errorsBeside =
    beside.outcome.non2xx + beside.outcome.lost + beside.outcome.timeouts + beside.outcome.unanswered + beside.outcome.misordered + beside.outcome.protocolErrors + beside.outcome.connectErrors + beside.outcome.resets + beside.outcome.closedWithPending;
  return {
    hostile: { options: hostileOptions, result, cpuSeconds: hostileCpuSeconds, cores: hostileCpuSeconds === null ? null : round(hostileCpuSeconds / beside.elapsedSeconds, 2) },
    solo,
    beside,
    after,
    ratio: solo.okPerSec === 0 ? null : round(beside.okPerSec / solo.okPerSec, 3),
    errorsBeside,
    // Each close is logged on both ends (when both notice it): the larger count, over the hostile
    // window and the window after it (log lines of a close can trail the close).
    tunnelsClosed: Math.max(beside.tunnels.warpgate + (after?.tunnels.warpgate ?? 0), beside.tunnels.edge + (after?.tunnels.edge ?? 0)),
  };
}
