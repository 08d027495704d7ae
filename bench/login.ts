#!/usr/bin/env node
/**
 * Hosted-login benchmark (issue: hosted login): logins per second, and the
 * p99 of proxied protected requests with and without 50 concurrent logins in
 * flight. Not a test: it reports figures, it asserts nothing.
 *
 * Setup: the real edge (2 workers, 1 hashing thread each at nice +10), mTLS
 * tunnel, Warpgate and demo origin on loopback, argon2id at the OWASP minimum
 * (m=19 MiB, t=2, p=1). One user with a password; throttling raised out of
 * the way (we measure hashing and the page path, not the lock).
 *
 * Phases, each `--duration` seconds (default 10):
 *   1. proxied only: `--conns` (default 16) closed-loop keep-alive clients
 *      GET a protected route with a session cookie;
 *   2. logins only: 50 closed-loop clients POST /_mezu/login (each GETs the
 *      page once for its CSRF cookie and token);
 *   3. both at once.
 * Latencies are measured per request with hrtime (exact, not whole-ms
 * buckets). The login clients run on their own worker thread, so a busy
 * login loop does not delay the proxied clients' event loop. The load
 * generator shares the 2 cores with everything else, as in bench/run.ts; the
 * edge workers' CPU time is reported so the figures can be read.
 *
 *   npm run bench:login -- [--duration 10] [--conns 16] [--logins 50]
 */
import * as http from 'node:http';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { availableParallelism, cpus } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Stack } from '../test/integration/harness.js';
import { openStore } from '../src/store/index.js';
import { pwhashStr } from '../native/sodium.js';

const { values } = parseArgs({ options: { duration: { type: 'string' }, conns: { type: 'string' }, logins: { type: 'string' } } });
const DURATION_MS = Number(values.duration ?? '10') * 1000;
const CONNS = Number(values.conns ?? '16');
const LOGINS = Number(values.logins ?? '50');
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench passphrase for login';

const CONFIG = `
passwords: { memory: 19MiB, iterations: 2, queue: 64 }
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    routes:
      - { path: /api/v1/*, auth: required }
      - { path: /health,   auth: public }
    login:
      signup: open
      public_url: http://localhost:8080
      throttle:
        account: { delay_after: 10000, lock_after: 10000, lock: 1m, window: 1m }
        ip: { delay_after: 10000, lock_after: 10000, lock: 1m, window: 1m }
`;

interface Sample {
  ok: number;
  other: Map<number, number>;
  lat: number[];
}
const newSample = (): Sample => ({ ok: 0, other: new Map(), lat: [] });

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function req(agent: http.Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((res, rej) => {
    const r = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { host: 'localhost', ...headers } }, (m) => {
      const chunks: Buffer[] = [];
      m.on('data', (c: Buffer) => chunks.push(c));
      m.on('end', () => res({ status: m.statusCode ?? 0, headers: m.headers, body: Buffer.concat(chunks).toString() }));
      m.on('error', rej);
    });
    r.on('error', rej);
    r.end(body);
  });
}

async function proxiedLoop(port: number, cookie: string, until: number, s: Sample): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (Date.now() < until) {
    const t0 = process.hrtime.bigint();
    const r = await req(agent, port, 'GET', '/api/v1/items', { cookie });
    s.lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status === 200) s.ok++;
    else s.other.set(r.status, (s.other.get(r.status) ?? 0) + 1);
  }
  agent.destroy();
}

async function loginLoop(port: number, until: number, s: Sample): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const page = await req(agent, port, 'GET', '/_mezu/login', { accept: 'text/html' });
  const csrfCookie = (page.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!).join('; ');
  const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  const body = new URLSearchParams({ _csrf: token, email: EMAIL, password: PASSWORD, rd: '/api/v1/items' }).toString();
  while (Date.now() < until) {
    const t0 = process.hrtime.bigint();
    const r = await req(agent, port, 'POST', '/_mezu/login', { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }, body);
    s.lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status === 303) s.ok++;
    else s.other.set(r.status, (s.other.get(r.status) ?? 0) + 1);
  }
  agent.destroy();
}

/** utime+stime in ms of a pid (CLK_TCK 100). */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(parts[11]) + Number(parts[12])) * 10;
  } catch {
    return 0;
  }
}

interface PhaseResult {
  name: string;
  seconds: number;
  proxied: { rps: number; p50: number; p99: number; p999: number; non200: string } | null;
  logins: { perSec: number; p50: number; p99: number; non303: string } | null;
  edgeCpuCores: number;
}

async function phase(name: string, stack: Stack, cookie: string, proxied: boolean, logins: boolean, durationMs = DURATION_MS): Promise<PhaseResult> {
  const pids = stack.workerPids;
  const cpu0 = pids.reduce((a, p) => a + cpuMs(p), 0);
  const start = Date.now();
  const until = start + durationMs;
  const ps = newSample();
  const ls = newSample();
  const loops: Promise<void>[] = [];
  if (proxied) for (let i = 0; i < CONNS; i++) loops.push(proxiedLoop(stack.port, cookie, until, ps));
  if (logins) loops.push(loginThread(stack.port, until, ls));
  await Promise.all(loops);
  const secs = (Date.now() - start) / 1000;
  const cpu1 = pids.reduce((a, p) => a + cpuMs(p), 0);
  const fmtOther = (m: Map<number, number>) => [...m].map(([k, v]) => `${k}×${v}`).join(' ') || '0';
  const pl = ps.lat.sort((a, b) => a - b);
  const ll = ls.lat.sort((a, b) => a - b);
  return {
    name,
    seconds: secs,
    proxied: proxied ? { rps: ps.ok / secs, p50: pct(pl, 50), p99: pct(pl, 99), p999: pct(pl, 99.9), non200: fmtOther(ps.other) } : null,
    logins: logins ? { perSec: ls.ok / secs, p50: pct(ll, 50), p99: pct(ll, 99), non303: fmtOther(ls.other) } : null,
    edgeCpuCores: (cpu1 - cpu0) / 1000 / secs,
  };
}

/** Runs the login clients on a worker thread and merges their sample into `s`. */
function loginThread(port: number, until: number, s: Sample): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { port, until, logins: LOGINS }, argv: [] });
    w.once('message', (m: { ok: number; other: Array<[number, number]>; lat: number[] }) => {
      s.ok += m.ok;
      for (const [k, v] of m.other) s.other.set(k, (s.other.get(k) ?? 0) + v);
      for (const l of m.lat) s.lat.push(l);
      resolve();
    });
    w.once('error', reject);
  });
}

async function loginWorker(): Promise<void> {
  const d = workerData as { port: number; until: number; logins: number };
  const s = newSample();
  await Promise.all(Array.from({ length: d.logins }, () => loginLoop(d.port, d.until, s)));
  parentPort!.postMessage({ ok: s.ok, other: [...s.other], lat: s.lat });
}

async function main(): Promise<void> {
  const stack = new Stack(2, CONFIG);
  await stack.start();
  try {
    stack.addUser(EMAIL);
    stack.addUser('proxied@example.com');
    const cookie = `mezu_session=${stack.session('proxied@example.com')}`;
    const store = openStore(stack.dir);
    const u = store.users.getByEmail('demo', EMAIL)!;
    await store.credentials.set(u.id, pwhashStr(Buffer.from(PASSWORD), { memoryBytes: 19 * 1024 * 1024, iterations: 2 }));
    await store.close();
    // Warm-up (not reported): JIT, the dummy hash, the hashing threads.
    await phase('warm-up', stack, cookie, true, true, Math.min(3_000, DURATION_MS));
    const results: PhaseResult[] = [];
    results.push(await phase('proxied only', stack, cookie, true, false));
    results.push(await phase(`${LOGINS} concurrent logins only`, stack, cookie, false, true));
    results.push(await phase(`proxied + ${LOGINS} concurrent logins`, stack, cookie, true, true));
    report(results);
  } finally {
    await stack.stop();
  }
}

function report(rs: PhaseResult[]): void {
  const f = (n: number | undefined, d = 2) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(d));
  const lines = [
    `# Hosted login benchmark`,
    ``,
    `- Date: ${new Date().toISOString()}; Node ${process.version}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`,
    `- Edge: 2 workers, 1 hashing thread each (nice +10); argon2id m=19 MiB t=2 p=1; queue 64 per worker`,
    `- Proxied load: ${CONNS} closed-loop keep-alive clients, GET /api/v1/items with a session; logins: ${LOGINS} closed-loop clients POSTing /_mezu/login`,
    `- ${DURATION_MS / 1000} s per phase; latencies in ms, exact (hrtime per request); the load generator shares the cores`,
    ``,
    `| phase | proxied req/s | proxied p50 | proxied p99 | proxied p99.9 | proxied non-200 | logins/s | login p50 | login p99 | login non-303 | edge workers' CPU (cores) |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...rs.map((r) => `| ${r.name} | ${r.proxied ? f(r.proxied.rps, 0) : '–'} | ${f(r.proxied?.p50)} | ${f(r.proxied?.p99)} | ${f(r.proxied?.p999)} | ${r.proxied?.non200 ?? '–'} | ${r.logins ? f(r.logins.perSec, 1) : '–'} | ${f(r.logins?.p50, 1)} | ${f(r.logins?.p99, 1)} | ${r.logins?.non303 ?? '–'} | ${f(r.edgeCpuCores)} |`),
  ];
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  const dir = resolve(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'login-latest.md'), text);
  writeFileSync(join(dir, 'login-latest.json'), JSON.stringify(rs, null, 2) + '\n');
}

if (isMainThread) {
  main().catch((err: Error) => {
    process.stderr.write(`bench/login: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
} else {
  void loginWorker();
}
