/**
 * The Warpgate's origin leg, three ways, same load, same run:
 *   (a) undici Pool.request (what the Warpgate's node:http2 mode, warpgate/forward.ts, used;
 *       that mode is gone: the Warpgate forwards with (c), warpgate/lean-forward.ts),
 *   (b) undici Pool.dispatch with a minimal handler,
 *   (c) warpgate/origin OriginClient.
 * and, with `--only abandon,abort`, what a request the edge cancels costs the
 * Warpgate: OriginClient requests given up when their response head arrives,
 * by `abandon()` (read the rest and keep the connection: what the Warpgate
 * does) or by `abort()` (close the connection: what it did before).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/origin-client.js [--seconds 10] [--concurrency 64] [--rounds 1] [--only request,dispatch,origin,abandon,abort]
 *
 * The origin is a uWS server in a child process answering every GET with a
 * fixed ~100-byte JSON body (the budgets' reference origin). The load is a
 * closed loop of `concurrency` requests in flight, bounded by time and by a
 * request cap, after a short warm-up. Reported per client: req/s, latency
 * p50/p99 (exact, from per-request samples), CPU-µs per request of this
 * process (process.cpuUsage; the load loop is the same for all three, so the
 * differences are the clients') and of the origin process (/proc utime+stime).
 * Requests carry the headers the Warpgate sends (identity headers and an
 * assertion), so head serialization costs what it will cost in production.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { clockTicksPerSecond, processTicks } from './cpu.js';
import { loadUws } from '../native/uws.js';
import { OriginClient, type OriginErrorCode, type OriginRequest, type OriginSink } from '../warpgate/origin/index.js';

const BODY = JSON.stringify({ method: 'GET', path: '/api/v1/items', query: '', bodyBytes: 0, identity: { user: 'usr_1', ok: true } });
const WARMUP_S = 2;
/** Far above what 2 cores serve; bounds the count if the clock misbehaved. */
const MAX_REQUESTS_PER_SECOND = 300_000;
/** One latency sample per request up to this many per run; counts continue beyond it. */
const MAX_SAMPLES = 4_000_000;

/** What the Warpgate sends the origin for a protected GET: ~1 KiB of head. */
const ASSERTION = 'eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.' + 'x'.repeat(420) + '.' + 'y'.repeat(86);
const HEADERS: string[] = [
  'host', 'app.example.com',
  'user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'accept', 'application/json',
  'accept-encoding', 'gzip, deflate, br',
  'x-forwarded-for', '203.0.113.7',
  'x-mezu-request-id', '01J8Z3Q4X5Y6Z7A8B9C0D1E2F3',
  'x-mezu-user-id', 'usr_01J8Z3Q4X5Y6Z7A8B9C0D1E2F3',
  'x-mezu-user-email', 'alice@example.com',
  'x-mezu-user-name', 'Alice Example',
  'x-mezu-principal-type', 'user',
  'x-mezu-auth-method', 'pwd',
  'x-mezu-auth-time', '1700000000',
  'x-mezu-roles', 'admin,editor',
  'x-mezu-permissions', 'admin:write,items:read',
  'x-mezu-assertion', ASSERTION,
];
const PATH = '/api/v1/items';

// ── the origin (child process) ──

function runOrigin(): void {
  const uws = loadUws();
  const app = uws.App();
  app.any('/*', (res) => {
    res.writeHeader('content-type', 'application/json').end(BODY);
  });
  app.listen('127.0.0.1', 0, (s) => {
    if (!s) {
      process.stderr.write('origin: cannot listen\n');
      process.exit(1);
    }
    process.stdout.write(JSON.stringify({ event: 'ready', port: uws.us_socket_local_port(s) }) + '\n');
  });
  process.on('SIGTERM', () => process.exit(0));
}

async function startOrigin(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [__filename, '--origin'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout!, crlfDelay: Infinity });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('bench: origin not ready within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`bench: origin exited (${code}) before ready`)));
    rl.on('line', (line) => {
      if (!line.startsWith('{"event":"ready"')) return;
      clearTimeout(t);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  return { child, port };
}

async function stopOrigin(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

// ── the load: a closed loop of `concurrency` slots ──

/** Counts and latencies of one run; every client reports into one of these. */
class Recorder {
  done = 0;
  errors = 0;
  badBodies = 0;
  samples: Float64Array;
  nSamples = 0;
  recording = false;
  stopAt = 0;
  cap = 0;
  inFlight = 0;
  onIdle: (() => void) | null = null;
  constructor() {
    this.samples = new Float64Array(MAX_SAMPLES);
  }
  /** True if the slot should issue another request. */
  finish(startedMs: number, ok: boolean, bytes: number): boolean {
    this.inFlight--;
    if (this.recording) {
      this.done++;
      if (!ok) this.errors++;
      else if (bytes !== BODY.length) this.badBodies++;
      if (this.nSamples < MAX_SAMPLES) this.samples[this.nSamples++] = performance.now() - startedMs;
    }
    const more = performance.now() < this.stopAt && this.done < this.cap;
    if (!more && this.inFlight === 0 && this.onIdle !== null) this.onIdle();
    return more;
  }
}

interface Driver {
  name: string;
  /** Starts one request on slot `i`; the slot calls rec.finish and restarts itself. */
  start(rec: Recorder, slot: number): void;
  close(): Promise<void>;
  /** Origin connections opened so far, where the client counts them. */
  opened: (() => number) | null;
}

// (a) Pool.request: promise API, body as a Readable.
function poolRequestDriver(origin: string, connections: number): Driver {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const run = (rec: Recorder): void => {
    const t0 = performance.now();
    rec.inFlight++;
    pool.request({ method: 'GET', path: PATH, headers: HEADERS }).then(
      (r) => {
        let bytes = 0;
        const ok = r.statusCode === 200;
        r.body.on('data', (c: Buffer) => (bytes += c.length));
        r.body.on('end', () => {
          if (rec.finish(t0, ok, bytes)) run(rec);
        });
        r.body.on('error', () => {
          if (rec.finish(t0, false, 0)) run(rec);
        });
      },
      () => {
        if (rec.finish(t0, false, 0)) run(rec);
      },
    );
  };
  return { name: 'undici Pool.request', start: (rec) => run(rec), close: () => pool.close(), opened: null };
}

// (b) Pool.dispatch: one handler object per slot, reused.
class DispatchSlot implements Dispatcher.DispatchHandlers {
  t0 = 0;
  bytes = 0;
  status = 0;
  constructor(
    private readonly pool: Pool,
    private readonly rec: Recorder,
  ) {}
  go(): void {
    this.t0 = performance.now();
    this.bytes = 0;
    this.status = 0;
    this.rec.inFlight++;
    this.pool.dispatch({ method: 'GET', path: PATH, headers: HEADERS }, this);
  }
  onConnect(): void {}
  onHeaders(status: number): boolean {
    this.status = status;
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return true;
  }
  onComplete(): void {
    if (this.rec.finish(this.t0, this.status === 200, this.bytes)) this.go();
  }
  onError(): void {
    if (this.rec.finish(this.t0, false, 0)) this.go();
  }
}

function poolDispatchDriver(origin: string, connections: number): Driver {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  return { name: 'undici Pool.dispatch', start: (rec) => new DispatchSlot(pool, rec).go(), close: () => pool.close(), opened: null };
}

// (c) OriginClient: one sink object per slot, reused.
const HEAD = { method: 'GET', path: PATH, headers: HEADERS, hasBody: false };
class OriginSlot implements OriginSink {
  t0 = 0;
  bytes = 0;
  status = 0;
  constructor(
    private readonly client: OriginClient,
    private readonly rec: Recorder,
  ) {}
  go(): void {
    this.t0 = performance.now();
    this.bytes = 0;
    this.status = 0;
    this.rec.inFlight++;
    this.client.request(HEAD, this);
  }
  onHead(status: number): void {
    this.status = status;
  }
  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return true;
  }
  onEnd(): void {
    if (this.rec.finish(this.t0, this.status === 200, this.bytes)) this.go();
  }
  onError(_code: OriginErrorCode): void {
    if (this.rec.finish(this.t0, false, 0)) this.go();
  }
}

function originClientDriver(origin: string, connections: number): Driver {
  const client = new OriginClient({ origin, connections });
  return { name: 'OriginClient (warpgate/origin)', start: (rec) => new OriginSlot(client, rec).go(), close: () => client.close(), opened: () => client.stats().opened };
}

// (d), (e) OriginClient, every request given up when its response head arrives (the edge
// cancelled it while the answer was on its way). Counted as served once the client is done
// with it: at once for abort(), when the rest is read for abandon().
class CancelSlot implements OriginSink {
  t0 = 0;
  req: OriginRequest | null = null;
  constructor(
    private readonly client: OriginClient,
    private readonly rec: Recorder,
    private readonly how: 'abandon' | 'abort',
  ) {}
  go(): void {
    this.t0 = performance.now();
    this.rec.inFlight++;
    this.req = this.client.request(HEAD, this);
  }
  onHead(): void {
    const req = this.req!;
    if (this.how === 'abort') req.abort();
    else if (req.abandon()) return; // onEnd or onError follows
    this.next();
  }
  onData(): boolean {
    return true;
  }
  onEnd(): void {
    this.next();
  }
  onError(_code: OriginErrorCode): void {
    if (this.rec.finish(this.t0, false, 0)) this.go();
  }
  private next(): void {
    if (this.rec.finish(this.t0, true, BODY.length)) setImmediate(goSlot, this); // not from inside the origin read
  }
}
function goSlot(s: CancelSlot): void {
  s.go();
}

function cancelDriver(how: 'abandon' | 'abort') {
  return (origin: string, connections: number): Driver => {
    const client = new OriginClient({ origin, connections });
    return { name: `OriginClient, cancelled at the head: ${how}()`, start: (rec) => new CancelSlot(client, rec, how).go(), close: () => client.close(), opened: () => client.stats().opened };
  };
}

interface RunResult {
  name: string;
  requests: number;
  errors: number;
  badBodies: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  clientUs: number;
  originUs: number;
  /** Origin connections opened per request (-1: not counted by this client). */
  connsPerReq: number;
}

async function measure(driver: Driver, originPid: number, seconds: number, concurrency: number, hz: number): Promise<RunResult> {
  const rec = new Recorder();
  // Warm-up: same loop, not recorded.
  rec.stopAt = performance.now() + WARMUP_S * 1000;
  rec.cap = Number.MAX_SAFE_INTEGER;
  await new Promise<void>((resolve) => {
    rec.onIdle = resolve;
    for (let i = 0; i < concurrency; i++) driver.start(rec, i);
  });
  global.gc?.();
  rec.onIdle = null;
  rec.recording = true;
  rec.cap = Math.ceil(seconds * MAX_REQUESTS_PER_SECOND);
  const origin0 = processTicks(originPid);
  const opened0 = driver.opened?.() ?? 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  rec.stopAt = t0 + seconds * 1000;
  await new Promise<void>((resolve) => {
    rec.onIdle = resolve;
    for (let i = 0; i < concurrency; i++) driver.start(rec, i);
  });
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const origin1 = processTicks(originPid);
  const opened1 = driver.opened?.() ?? 0;
  await driver.close();
  if (origin0 === null || origin1 === null) throw new Error('bench: the origin process went away during the run');
  const lat = rec.samples.subarray(0, rec.nSamples).sort();
  const pct = (p: number): number => (lat.length === 0 ? NaN : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!);
  return {
    name: driver.name,
    requests: rec.done,
    errors: rec.errors,
    badBodies: rec.badBodies,
    seconds: elapsed,
    rps: rec.done / elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    clientUs: ((cpu.user + cpu.system) / rec.done),
    originUs: (((origin1 - origin0) / hz) * 1e6) / rec.done,
    connsPerReq: driver.opened === null ? -1 : (opened1 - opened0) / rec.done,
  };
}

function table(rows: RunResult[], seconds: number, concurrency: number): string {
  const out = [
    `Origin leg, ${concurrency} requests in flight, ${seconds} s per client after ${WARMUP_S} s warm-up, GET with ${HEADERS.length / 2} headers (~${HEADERS.join('').length + HEADERS.length * 2} B head), ${BODY.length}-byte JSON from a uWS origin on 127.0.0.1, Node ${process.version}.`,
    '',
    '| client | requests | req/s | p50 ms | p99 ms | client CPU-µs/req | origin CPU-µs/req | connections opened/req | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.name} | ${r.requests} | ${Math.round(r.rps)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.clientUs.toFixed(1)} | ${r.originUs.toFixed(1)} | ${r.connsPerReq < 0 ? '–' : r.connsPerReq.toFixed(3)} | ${r.errors + r.badBodies} |`,
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' }, only: { type: 'string' }, origin: { type: 'boolean' } },
    strict: true,
  });
  if (values.origin) return runOrigin();
  const seconds = Number(values.seconds ?? '10');
  const concurrency = Number(values.concurrency ?? '64');
  const rounds = Number(values.rounds ?? '1');
  if (!(seconds > 0) || !(concurrency >= 1) || !(rounds >= 1)) {
    process.stderr.write('usage: node dist/bench/origin-client.js [--seconds 10] [--concurrency 64] [--rounds 1] [--only request,dispatch,origin,abandon,abort]\n');
    process.exit(2);
  }
  const hz = clockTicksPerSecond();
  const { child, port } = await startOrigin();
  const origin = `http://127.0.0.1:${port}`;
  const all = { request: poolRequestDriver, dispatch: poolDispatchDriver, origin: originClientDriver, abandon: cancelDriver('abandon'), abort: cancelDriver('abort') };
  const factories = values.only === undefined ? [all.request, all.dispatch, all.origin] : values.only.split(',').map((k) => {
    const f = all[k as keyof typeof all];
    if (f === undefined) throw new Error(`bench: --only takes request, dispatch, origin, abandon, abort; got "${k}"`);
    return f;
  });
  const rows: RunResult[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate the order between rounds so drift (thermal, noisy neighbours) does not favour one client.
      const order = round % 2 === 0 ? factories : [...factories].reverse();
      for (const f of order) {
        const r = await measure(f(origin, concurrency), child.pid!, seconds, concurrency, hz);
        process.stderr.write(`${r.name}: ${Math.round(r.rps)} req/s, client ${r.clientUs.toFixed(1)} µs/req, origin ${r.originUs.toFixed(1)} µs/req\n`);
        rows.push(r);
      }
    }
  } finally {
    await stopOrigin(child);
  }
  process.stdout.write(table(rows, seconds, concurrency) + '\n');
  if (rows.some((r) => r.errors + r.badBodies > 0)) process.exitCode = 1;
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
