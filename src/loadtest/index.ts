/**
 * `mezusphere loadtest`: autocannon against a URL, as an operator tool.
 *
 * probe the target → provision a test user + session (or use the given
 * cookie/key/headers) → run, bounded by duration or amount, with progress on
 * stderr → retire the test user → report (text or one JSON document) → exit
 * code: 0 when every request got a 2xx, 1 otherwise (unless --allow-errors),
 * 130 when interrupted. Bad arguments are the CLI's business (exit 2).
 */
import { performance } from 'node:perf_hooks';
import { openStore, type Store } from '../store/index.js';
import { REQUEST_TIMEOUT_S, type LoadtestPlan } from './args.js';
import { startRun, type DriverResult, type DriverRun } from './autocannon.js';
import { formatCount, formatSeconds, renderProgress, renderStats, statusHint, type Stats } from './format.js';
import { LatencyHistogram } from './histogram.js';
import { probe } from './probe.js';
import { provision, retire, storeExists, type Cleanup, type Provisioned } from './provision.js';

export { parseLoadtestArgs, type LoadtestPlan, type ParseResult, type CredentialPlan } from './args.js';

/** Progress cadence: a TTY line is rewritten every second; a log gets a line every 5 s. */
const TTY_PROGRESS_MS = 1_000;
const LOG_PROGRESS_MS = 5_000;

export type CredentialReport =
  | { kind: 'none' }
  | { kind: 'cookie'; name: string }
  | { kind: 'key'; keyId: string }
  | { kind: 'provisioned'; project: string; email: string; userId: string; sessionId: string; cookie: string; kept: boolean; sessionRevoked: boolean; userDeactivated: boolean; cleanupError: string | null };

/** The `--json` document. Latencies in ms (to the µs), rates per second. */
export interface LoadtestReport {
  ok: boolean;
  interrupted: boolean;
  /** An --amount run that hit its --duration bound first. */
  stoppedAtDuration: boolean;
  target: { url: string; method: string; connections: number; durationLimitS: number; amount: number | null; rate: number | null };
  credential: CredentialReport;
  elapsedS: number;
  responses: { total: number; '2xx': number; non2xx: number; errors: number; timeouts: number; byStatus: Record<string, number> };
  requestsPerSecond: { avg: number | null; p50: number | null; p99: number | null; samples: number };
  latencyMs: Record<'min' | 'avg' | 'p10' | 'p25' | 'p50' | 'p75' | 'p90' | 'p99' | 'p99_9' | 'max', number | null>;
  throughput: { bytes: number; bytesPerSecond: number };
}

export interface LoadtestIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Counts what autocannon reports per response; one per run, fields assigned up front. */
class Recorder {
  readonly latency = new LatencyHistogram();
  responses = 0;
  ok2xx = 0;
  non2xx = 0;
  /** Error events (connection errors and timeouts), for progress; the report uses autocannon's totals. */
  errorEvents = 0;
  bytes = 0;
  readonly byStatus = new Map<number, number>();
  /** Responses per whole second since t0. */
  readonly perSecond: number[] = [];
  /** Start of the run (reset by begin(), after provisioning). */
  t0 = performance.now();
  lastEventAt = this.t0;

  begin(): void {
    this.t0 = performance.now();
    this.lastEventAt = this.t0;
  }

  onResponse(status: number, bytes: number, ms: number): void {
    const now = performance.now();
    this.lastEventAt = now;
    this.responses++;
    if (status >= 200 && status < 300) this.ok2xx++;
    else this.non2xx++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.bytes += bytes;
    this.latency.recordMs(ms);
    const sec = Math.floor((now - this.t0) / 1000);
    while (this.perSecond.length <= sec) this.perSecond.push(0);
    this.perSecond[sec]!++;
  }

  onError(): void {
    this.lastEventAt = performance.now();
    this.errorEvents++;
  }

  /**
   * The run's statistics. A timed run lasts until autocannon ends it (requests
   * flow until then, also in the pauses of a --rate run); an --amount run ends
   * with its last response or error, since autocannon then idles until its
   * next 1 s tick. Req/s percentiles come from whole seconds only.
   */
  stats(driver: DriverResult, endedAt: number, timed: boolean): Stats {
    const end = !timed && this.responses + this.errorEvents > 0 ? this.lastEventAt : endedAt;
    const elapsedMs = Math.max(1, end - this.t0);
    const whole = this.perSecond.slice(0, Math.floor(elapsedMs / 1000)).sort((a, b) => a - b);
    const rank = (p: number) => (whole.length === 0 ? null : whole[Math.max(0, Math.ceil((p / 100) * whole.length) - 1)]!);
    const h = this.latency;
    const byStatus: Record<string, number> = {};
    for (const [c, n] of [...this.byStatus].sort(([a], [b]) => a - b)) byStatus[String(c)] = n;
    return {
      elapsedMs,
      responses: this.responses,
      ok2xx: this.ok2xx,
      non2xx: this.non2xx,
      errors: driver.errors - driver.timeouts,
      timeouts: driver.timeouts,
      byStatus,
      bytes: this.bytes,
      reqPerSec: { avg: this.responses === 0 ? null : (this.responses * 1000) / elapsedMs, p50: rank(50), p99: rank(99), samples: whole.length },
      latencyUs: { min: h.percentile(0), avg: h.mean(), p10: h.percentile(10), p25: h.percentile(25), p50: h.percentile(50), p75: h.percentile(75), p90: h.percentile(90), p99: h.percentile(99), p99_9: h.percentile(99.9), max: h.percentile(100) },
    };
  }
}

/** Headers autocannon sends: --header ones plus the credential (a Cookie given with --header is kept, the session cookie added to it). */
export function requestHeaders(plan: LoadtestPlan, sessionToken: string | null): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [n, v] of plan.headers) h[n] = v;
  const c = plan.credential;
  let cookie: string | null = null;
  if (c.kind === 'cookie') cookie = `${c.name}=${c.value}`;
  else if (c.kind === 'provision' && sessionToken !== null) cookie = `${c.cookieName}=${sessionToken}`;
  else if (c.kind === 'key') h.Authorization = `Bearer ${c.key}`;
  if (cookie !== null) {
    const existing = Object.keys(h).find((n) => n.toLowerCase() === 'cookie');
    if (existing === undefined) h.Cookie = cookie;
    else h[existing] = `${h[existing]}; ${cookie}`;
  }
  return h;
}

const round = (n: number | null, digits: number): number | null => (n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits);
const msOf = (us: number | null) => round(us === null ? null : us / 1000, 3);

function describeTarget(plan: LoadtestPlan): string {
  const bound = plan.amount === null ? formatSeconds(plan.durationMs) : `${formatCount(plan.amount)} responses (at most ${formatSeconds(plan.durationMs)})`;
  const rate = plan.rate === null ? '' : `, ${formatCount(plan.rate)} req/s`;
  return `${plan.method} ${plan.url.href}: ${plan.connections} connection${plan.connections === 1 ? '' : 's'}, ${bound}${rate}`;
}

function describeCredential(plan: LoadtestPlan, user: Provisioned | null): string {
  const c = plan.credential;
  switch (c.kind) {
    case 'none': return plan.headers.length === 0 ? 'no credential' : 'headers as given';
    case 'cookie': return `cookie ${c.name}`;
    case 'key': return `API key ${c.keyId}`;
    case 'provision': return `test user ${c.email} (${user?.userId ?? '?'}) in ${c.project}, cookie ${c.cookieName}`;
  }
}

export async function runLoadtest(plan: LoadtestPlan, io: LoadtestIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const unreachable = await probe(plan.url, plan.insecure);
  if (unreachable !== null) {
    io.stderr.write(`mezusphere: ${unreachable}\n`);
    return 1;
  }

  const c = plan.credential;
  let store: Store | null = null;
  let user: Provisioned | null = null;
  if (c.kind === 'provision') {
    if (!storeExists(plan.dataDir)) {
      io.stderr.write(`mezusphere: loadtest: no store under ${plan.dataDir} (give --data DIR, or MEZU_DATA)\n`);
      return 1;
    }
    store = openStore(plan.dataDir);
  }

  let interrupted = false;
  let run: DriverRun | null = null;
  const onSignal = () => {
    if (interrupted) {
      io.stderr.write(`\nloadtest: interrupted again; exiting now${user !== null && !(c.kind === 'provision' && c.keep) ? ` — the test user is still active: mezusphere users set --project ${user.project} --email ${user.email} --status deactivated` : ''}\n`);
      process.exit(130);
    }
    interrupted = true;
    io.stderr.write('\nloadtest: interrupted; stopping the run and cleaning up (interrupt again to quit at once)\n');
    run?.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const rec = new Recorder();
  let driver: DriverResult = { errors: 0, timeouts: 0 };
  let stoppedAtDuration = false;
  let cleanup: Cleanup | null = null;
  let cleanupError: string | null = null;
  let endedAt = rec.t0;
  try {
    if (store !== null && c.kind === 'provision') {
      const p = await provision(store, { project: c.project, email: c.email, roles: c.roles, permissions: c.permissions });
      if (!p.ok) {
        io.stderr.write(`mezusphere: ${p.reason}\n`);
        return 1;
      }
      user = p.user;
    }
    if (!plan.json) io.stdout.write(`loadtest: ${describeTarget(plan)}; ${describeCredential(plan, user)}\n`);

    if (!interrupted) {
      const tty = io.stderr.isTTY === true;
      let lastCount = 0;
      let lastAt = performance.now();
      const progress = setInterval(() => {
        const now = performance.now();
        const line = renderProgress({
          elapsedMs: now - rec.t0,
          plannedMs: plan.amount === null ? plan.durationMs : null,
          amount: plan.amount,
          responses: rec.responses,
          currentRate: ((rec.responses - lastCount) * 1000) / (now - lastAt),
          ok2xx: rec.ok2xx,
          non2xx: rec.non2xx,
          errors: rec.errorEvents,
        });
        lastCount = rec.responses;
        lastAt = now;
        io.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      }, tty ? TTY_PROGRESS_MS : LOG_PROGRESS_MS);
      // autocannon ignores its duration when an amount is set: bound that run here.
      const bound = plan.amount === null ? null : setTimeout(() => {
        stoppedAtDuration = true;
        run?.stop();
      }, plan.durationMs);
      try {
        rec.begin();
        run = startRun(
          {
            url: plan.url.href,
            method: plan.method,
            headers: requestHeaders(plan, user?.token ?? null),
            body: plan.body,
            connections: plan.connections,
            durationS: plan.durationMs / 1000,
            amount: plan.amount ?? 0,
            overallRate: plan.rate ?? 0,
            timeoutS: REQUEST_TIMEOUT_S,
          },
          { onResponse: (s, b, ms) => rec.onResponse(s, b, ms), onError: () => rec.onError() },
        );
        driver = await run.done;
      } finally {
        endedAt = performance.now();
        clearInterval(progress);
        if (bound !== null) clearTimeout(bound);
        if (tty) io.stderr.write('\r\x1b[2K');
      }
    }
  } finally {
    if (store !== null) {
      if (user !== null && !(c.kind === 'provision' && c.keep)) {
        try {
          cleanup = await retire(store, user);
        } catch (err) {
          cleanupError = (err as Error).message;
        }
      }
      await store.close();
    }
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  const stats = rec.stats(driver, endedAt, plan.amount === null);
  const failures = stats.non2xx + stats.errors + stats.timeouts;
  const ok = !interrupted && cleanupError === null && stats.responses > 0 && (failures === 0 || plan.allowErrors);
  const credential: CredentialReport =
    c.kind === 'provision' && user !== null
      ? { kind: 'provisioned', project: user.project, email: user.email, userId: user.userId, sessionId: user.sessionId, cookie: c.cookieName, kept: c.keep, sessionRevoked: cleanup?.sessionRevoked ?? false, userDeactivated: cleanup?.userDeactivated ?? false, cleanupError }
      : c.kind === 'cookie' ? { kind: 'cookie', name: c.name }
      : c.kind === 'key' ? { kind: 'key', keyId: c.keyId }
      : { kind: 'none' };

  if (plan.json) {
    const l = stats.latencyUs;
    const report: LoadtestReport = {
      ok,
      interrupted,
      stoppedAtDuration,
      target: { url: plan.url.href, method: plan.method, connections: plan.connections, durationLimitS: plan.durationMs / 1000, amount: plan.amount, rate: plan.rate },
      credential,
      elapsedS: round(stats.elapsedMs / 1000, 3)!,
      responses: { total: stats.responses, '2xx': stats.ok2xx, non2xx: stats.non2xx, errors: stats.errors, timeouts: stats.timeouts, byStatus: stats.byStatus },
      requestsPerSecond: { avg: round(stats.reqPerSec.avg, 1), p50: stats.reqPerSec.p50, p99: stats.reqPerSec.p99, samples: stats.reqPerSec.samples },
      latencyMs: { min: msOf(l.min), avg: msOf(l.avg), p10: msOf(l.p10), p25: msOf(l.p25), p50: msOf(l.p50), p75: msOf(l.p75), p90: msOf(l.p90), p99: msOf(l.p99), p99_9: msOf(l.p99_9), max: msOf(l.max) },
      throughput: { bytes: stats.bytes, bytesPerSecond: Math.round((stats.bytes * 1000) / stats.elapsedMs) },
    };
    io.stdout.write(JSON.stringify(report) + '\n');
  } else {
    const lines = ['', ...renderStats(stats), ''];
    if (stoppedAtDuration) lines.push(`loadtest: stopped at ${formatSeconds(plan.durationMs)} before ${formatCount(plan.amount ?? 0)} responses arrived`);
    if (credential.kind === 'provisioned') {
      if (credential.kept) lines.push(`loadtest: kept ${credential.email} and its session; retire them with: mezusphere users set --project ${credential.project} --email ${credential.email} --status deactivated`);
      else if (cleanupError === null) lines.push(`loadtest: ${credential.email}: session revoked, user deactivated`);
    }
    if (interrupted) lines.push('loadtest: interrupted; the figures cover the run until then');
    else if (stats.responses === 0) lines.push('loadtest: no response arrived');
    else if (failures > 0) {
      lines.push(`loadtest: ${formatCount(stats.non2xx)} non-2xx, ${formatCount(stats.errors)} errors, ${formatCount(stats.timeouts)} timeouts${plan.allowErrors ? ' (allowed by --allow-errors)' : '; exit 1 (--allow-errors accepts them)'}`);
      for (const code of Object.keys(stats.byStatus)) {
        const hint = code.startsWith('2') ? null : statusHint(code);
        if (hint !== null) lines.push(`  ${code}: ${hint}`);
      }
    } else lines.push('loadtest: every request got a 2xx');
    io.stdout.write(lines.join('\n') + '\n');
  }
  if (cleanupError !== null) io.stderr.write(`mezusphere: loadtest: cleaning up ${user?.email ?? ''} failed: ${cleanupError}; retire it with: mezusphere users set --project ${user?.project ?? ''} --email ${user?.email ?? ''} --status deactivated\n`);
  return interrupted ? 130 : ok ? 0 : 1;
}
