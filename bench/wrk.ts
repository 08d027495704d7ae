#!/usr/bin/env node
/**
 * The chain against nginx `auth_request`, loaded by wrk (`wrk -t1 -c64`, the
 * load operators run), several rounds, every target interleaved in each round:
 *
 *   node dist/bench/wrk.js [--rounds 5] [--duration 8] [--workers 2] [--other DIR] [--no-nginx]
 *
 * Why beside `npm run bench` (autocannon): autocannon is JavaScript and costs
 * ~17–20 CPU-µs per request on the same two cores, about as much as the edge
 * itself; wrk costs a fraction of that, so more of the machine is left to
 * what is measured and the ratios are less the load generator's. The
 * protected GET carries a browser-like head (user agent, accept headers, a
 * second cookie) like the requests the budgets are stated for.
 *
 * `--other DIR` runs the same chain from another built tree (its `dist/`,
 * e.g. a checkout of an earlier commit, built) in the same rounds: a
 * before/after on the same machine in the same minutes. Its CLI must accept
 * the options used here (pki init, apply, users add, sessions create, edge
 * --workers, the Warpgate's --pki-dir/--pool).
 *
 * Per target and round: req/s, p50/p99 (wrk --latency), and CPU-µs per
 * request of every process from /proc/<pid>/stat (the edge's primary and
 * workers, the Warpgate, the origin, nginx's master and workers, the auth
 * service, wrk). Prints a table per round and the medians. Needs `wrk`
 * (Debian: apt-get install wrk) and, for the nginx target, `nginx`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { clockTicksPerSecond, processTicks, processTree } from './cpu.js';
import { findNginx, freePort, writeNginxConfig } from './nginx.js';
import { Proc } from './processes.js';
import { BENCH_CONFIG, BENCH_EMAIL, ROOT, readyLine } from './stack.js';

const READY_MS = 20_000;
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

interface Target {
  name: string;
  url: string;
  cookie: string;
  /** Process groups whose CPU is reported: name → pids. */
  groups: Map<string, number[]>;
}

interface Row {
  target: string;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  cpu: Map<string, number>;
}

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: node dist/bench/wrk.js [--rounds N (default 5)] [--duration S (default 8)] [--workers N (default 2)] [--other DIR] [--no-nginx]\n`);
  process.exit(2);
}

function cli(root: string, data: string, args: string[]): string {
  return execFileSync(process.execPath, [join(root, 'dist/src/cli/main.js'), ...args, '--data', data], { cwd: root, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function service(name: string, root: string, script: string, args: string[], procs: Proc[]): Promise<{ proc: Proc; ready: Record<string, unknown> }> {
  const proc = new Proc(name, [join(root, script), ...args], root);
  procs.push(proc);
  const ready = await proc.waitFor('ready line', READY_MS, readyLine);
  return { proc, ready };
}

/** Data dir, origin, edge and Warpgate of the tree at `root`; returns the protected target. */
async function chain(label: string, root: string, workers: number, procs: Proc[], dirs: string[]): Promise<Target> {
  const data = mkdtempSync(join(tmpdir(), 'mezu-wrk-'));
  dirs.push(data);
  cli(root, data, ['pki', 'init', '--pool', 'demo']);
  writeFileSync(join(data, 'bench.yaml'), BENCH_CONFIG);
  cli(root, data, ['apply', '-f', join(data, 'bench.yaml')]);
  cli(root, data, ['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL]);
  const token = cli(root, data, ['sessions', 'create', '--project', 'demo', '--email', BENCH_EMAIL]);
  const origin = await service(`${label}-origin`, root, 'dist/bench/bench-origin.js', ['--port', '0'], procs);
  const edge = await service(`${label}-edge`, root, 'dist/src/cli/main.js', ['edge', '--data', data, '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0', '--workers', String(workers)], procs);
  const wg = new Proc(`${label}-warpgate`, [join(root, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${String(edge.ready.tunnelPort)}`, '--origin', `http://127.0.0.1:${String(origin.ready.port)}`, '--pki-dir', join(data, 'pki'), '--pool', 'demo'], root);
  procs.push(wg);
  const up = new Set<string>();
  await wg.waitFor('a tunnel to every edge worker', READY_MS, (line) => {
    const m = /tunnel up to edge worker (\d+)\//.exec(line);
    if (m !== null) up.add(m[1]!);
    return up.size >= workers ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 1_000));
  const edgePids = processTree(edge.proc.pid);
  for (const p of (edge.ready.workers as number[] | undefined) ?? []) if (!edgePids.includes(p)) edgePids.push(p);
  return {
    name: label,
    url: `http://127.0.0.1:${String(edge.ready.port)}/api/v1/items`,
    cookie: `theme=dark; mezu_session=${token}`,
    groups: new Map([['edge', edgePids], ['warpgate', processTree(wg.pid)], ['origin', [origin.proc.pid]]]),
  };
}

async function nginxTarget(procs: Proc[], dirs: string[]): Promise<Target | null> {
  const bin = findNginx();
  if (bin === null) return null;
  const dir = mkdtempSync(join(tmpdir(), 'mezu-wrk-nginx-'));
  dirs.push(dir);
  const token = 'A'.repeat(43);
  writeFileSync(join(dir, 'tokens'), `${token}\n`);
  const origin = await service('nginx-origin', ROOT, 'dist/bench/bench-origin.js', ['--port', '0'], procs);
  const auth = await service('auth', ROOT, 'dist/bench/auth-service.js', ['--tokens', join(dir, 'tokens'), '--email', BENCH_EMAIL], procs);
  const port = await freePort();
  const setup = writeNginxConfig(join(dir, 'nginx'), port, Number(origin.ready.port), Number(auth.ready.port), 2);
  const nginx = new Proc('nginx', setup.args, dir, bin);
  procs.push(nginx);
  const deadline = Date.now() + READY_MS;
  for (;;) {
    try {
      execFileSync('curl', ['-sf', '-o', '/dev/null', '-H', `Cookie: mezu_session=${token}`, `http://127.0.0.1:${port}/api/v1/items`], { timeout: 2_000 });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('bench: nginx did not answer 200');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    name: 'nginx auth_request',
    url: `http://127.0.0.1:${port}/api/v1/items`,
    cookie: `theme=dark; mezu_session=${token}`,
    groups: new Map([['nginx', processTree(nginx.pid)], ['auth', [auth.proc.pid]], ['origin', [origin.proc.pid]]]),
  };
}

function wrkArgs(t: Target, seconds: number): string[] {
  return ['-t1', '-c64', `-d${seconds}s`, '--latency', '-H', `Cookie: ${t.cookie}`, '-H', `User-Agent: ${UA}`, '-H', 'Accept: application/json', '-H', 'Accept-Language: en-US,en;q=0.9', '-H', 'Accept-Encoding: gzip, deflate, br', t.url];
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (m === null) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

async function measure(t: Target, round: number, seconds: number): Promise<Row> {
  // Warm-up, not measured.
  execFileSync('wrk', wrkArgs(t, 2), { stdio: 'ignore', timeout: 30_000 });
  const before = new Map<string, number>();
  const ticks = (pids: number[]) => pids.reduce((a, p) => a + (processTicks(p) ?? 0), 0);
  for (const [g, pids] of t.groups) before.set(g, ticks(pids));
  const w = spawn('wrk', wrkArgs(t, seconds), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  w.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let wrkTicks = 0;
  const sampler = setInterval(() => {
    wrkTicks = processTicks(w.pid!) ?? wrkTicks;
  }, 100);
  await new Promise<void>((r) => w.on('exit', () => r()));
  clearInterval(sampler);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(requests) || /Non-2xx/.test(out) || /Socket errors/.test(out)) throw new Error(`bench: wrk against ${t.name} did not get clean 2xx answers:\n${out}`);
  const hz = clockTicksPerSecond();
  const cpu = new Map<string, number>();
  for (const [g, pids] of t.groups) cpu.set(g, ((ticks(pids) - before.get(g)!) / hz) * 1e6 / requests);
  cpu.set('wrk', (wrkTicks / hz) * 1e6 / requests);
  return { target: t.name, round, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''), p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''), cpu };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  let v;
  try {
    v = parseArgs({ options: { rounds: { type: 'string' }, duration: { type: 'string' }, workers: { type: 'string' }, other: { type: 'string' }, 'no-nginx': { type: 'boolean' } } }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  const rounds = Number(v.rounds ?? 5);
  const seconds = Number(v.duration ?? 8);
  const workers = Number(v.workers ?? 2);
  if (![rounds, seconds, workers].every((n) => Number.isInteger(n) && n > 0 && n <= 600)) usage('--rounds, --duration and --workers take whole numbers from 1 to 600');
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const rows: Row[] = [];
  try {
    const targets: Target[] = [await chain('this tree', ROOT, workers, procs, dirs)];
    if (v.other !== undefined) targets.push(await chain(`other tree (${v.other})`, resolve(v.other), workers, procs, dirs));
    if (v['no-nginx'] !== true) {
      const n = await nginxTarget(procs, dirs);
      if (n !== null) targets.push(n);
      else process.stderr.write('bench: nginx not installed; its target is skipped\n');
    }
    for (let r = 1; r <= rounds; r++) {
      for (const t of targets) {
        const row = await measure(t, r, seconds);
        rows.push(row);
        process.stderr.write(`round ${r} ${t.name}: ${row.rps.toFixed(0)} req/s, p99 ${row.p99} ms, ${[...row.cpu].map(([g, x]) => `${g} ${x.toFixed(1)}`).join(', ')} CPU-µs/req\n`);
      }
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const names = [...new Set(rows.map((r) => r.target))];
  const out = [`wrk -t1 -c64, ${seconds} s per run after 2 s of warm-up, ${rounds} rounds, edge --workers ${workers}; medians over the rounds (CPU-µs per request by process)`, '', '| target | req/s | p50 ms | p99 ms | CPU-µs/req by process |', '|---|---:|---:|---:|---|'];
  for (const n of names) {
    const rs = rows.filter((r) => r.target === n);
    const groups = [...rs[0]!.cpu.keys()];
    const cpu = groups.map((g) => `${g} ${median(rs.map((r) => r.cpu.get(g)!)).toFixed(1)}`).join(', ');
    out.push(`| ${n} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ${cpu} |`);
  }
  const nginx = rows.filter((r) => r.target === 'nginx auth_request');
  if (nginx.length > 0) {
    for (const n of names.filter((x) => x !== 'nginx auth_request')) {
      const ratios = rows.filter((r) => r.target === n).map((r) => r.rps / nginx.find((x) => x.round === r.round)!.rps);
      out.push('', `${n} ÷ nginx auth_request, req/s, per round: ${ratios.map((x) => x.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)})`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
