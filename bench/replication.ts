#!/usr/bin/env node
/**
 * `npm run bench:nats`: replication through NATS JetStream, measured on this
 * machine with real processes.
 *
 * - A three-server `nats-server` cluster with JetStream on loopback
 *   (scripts/nats-cluster.ts), two edge nodes A and B with `--nats` (each with
 *   its own data directory, Warpgate and one worker), and one plain edge P
 *   without `--nats`, all forwarding to one bench origin.
 * - Propagation, under load (`--rate` req/s of protected GETs on each of A
 *   and B, from `mezusphere loadtest` child processes): a session created
 *   on A until B answers 200 with it; a revocation on B until A answers 401;
 *   a config version applied on B until A serves the changed route. Each
 *   sample is timed from the start of the write (the JetStream append
 *   included) to the first answer that shows it, polling back to back on a
 *   kept-alive connection from that same moment. The writes go through the same store API the
 *   edge and the CLI use, from this process, on A's or B's data directory.
 * - Request-path CPU: edge CPU-µs per protected GET for P and A at the same
 *   paced rate, interleaved (P A, A P, …), `--windows` windows each of
 *   `--duration` s; the median per side. Everything is bounded in count and
 *   time, and every process is stopped by its PID.
 *
 *   node dist/bench/replication.js [--rate 2500] [--samples 100] [--configs 10] [--duration 5] [--windows 4]
 *   node dist/bench/replication.js --bootstrap 1000000
 *
 * `--bootstrap N` measures a new node's start instead: N sessions written
 * on node A through the journal (an import: BULK_PER_ENTRY sessions per
 * entry), then a node started on an empty data directory with no snapshot
 * published (it replays the journal), then `replica snapshot` on A, a tail
 * of writes, and another empty node (snapshot plus tail), each timed from
 * its start to its ready line and checked with a session from the bulk and
 * one from the tail.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { openStore, type Store } from '../src/store/index.js';
import { hashToken, newId, newSessionToken } from '../src/session/index.js';
import { parseConfigYaml } from '../src/config/index.js';
import { NatsCluster } from '../scripts/nats-cluster.js';
import { makeSettings } from '../src/replicate/index.js';
import { clockTicksPerSecond, processTicks } from './cpu.js';
import { drive } from './load.js';
import { Proc, stopOrphans } from './processes.js';
import { BENCH_CONFIG, BENCH_EMAIL, ROOT, SESSION_COOKIE, cli, prepareData, startChain, startNodeService, type Chain } from './stack.js';

const { values: v } = parseArgs({
  options: {
    rate: { type: 'string' },
    samples: { type: 'string' },
    configs: { type: 'string' },
    duration: { type: 'string' },
    windows: { type: 'string' },
    bootstrap: { type: 'string' },
  },
});
const int = (s: string | undefined, d: number, min: number, max: number, name: string): number => {
  if (s === undefined) return d;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`bench:nats: --${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
};
const RATE = int(v.rate, 2500, 100, 20_000, 'rate');
const SAMPLES = int(v.samples, 100, 5, 500, 'samples');
const CONFIGS = int(v.configs, 10, 2, 100, 'configs');
const DURATION = int(v.duration, 5, 2, 30, 'duration');
const WINDOWS = int(v.windows, 4, 1, 10, 'windows');
/** `--bootstrap N`: instead of the rest, N sessions on one node, then two new nodes (journal replay, snapshot) timed to ready. */
const BOOTSTRAP = int(v.bootstrap, 0, 0, 2_000_000, 'bootstrap');
/** Sessions per journal entry in the bulk load: ~550 KB of msgpack, under NATS's 1 MiB message limit. */
const BULK_PER_ENTRY = 1_500;
/** One propagation sample gives up after this long (counted as a miss, never waited on forever). */
const SAMPLE_TIMEOUT_MS = 10_000;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function status(port: number, path: string, token: string | null): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { host: '127.0.0.1', ...(token === null ? {} : { cookie: `${SESSION_COOKIE}=${token}` }) }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(-1));
    req.end();
  });
}

/** Milliseconds from `t0` until `path` on `port` answers `want`; null when it never did within the timeout. */
async function until(port: number, path: string, token: string | null, want: number, t0: number): Promise<number | null> {
  while (performance.now() - t0 < SAMPLE_TIMEOUT_MS) {
    if ((await status(port, path, token)) === want) return performance.now() - t0;
  }
  return null;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(name: string, xs: Array<number | null>, budget: number): string {
  const ok = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  const missed = xs.length - ok.length;
  if (ok.length === 0) return `| ${name} | ${xs.length} | – | – | – | ${budget} | FAIL (${missed} never seen) |`;
  const p99 = pct(ok, 99);
  return `| ${name} | ${xs.length} | ${pct(ok, 50).toFixed(1)} | ${p99.toFixed(1)} | ${ok[ok.length - 1]!.toFixed(1)} | ${budget} | ${missed === 0 && p99 <= budget ? 'PASS' : `FAIL${missed > 0 ? ` (${missed} never seen)` : ''}`} |`;
}

function treeTicks(pids: readonly number[]): number {
  let n = 0;
  for (const p of pids) n += processTicks(p) ?? 0;
  return n;
}

async function cpuWindow(chain: Chain, token: string): Promise<{ us: number; rps: number; non2xx: number }> {
  const before = treeTicks(chain.edgePids);
  const out = await drive(
    { name: 'cpu', label: 'cpu', url: `http://127.0.0.1:${chain.edgePort}/api/v1/items`, headers: { host: '127.0.0.1', cookie: `${SESSION_COOKIE}=${token}` } },
    { seconds: DURATION, connections: 16, keepSamples: false, overallRate: RATE },
  );
  const ticks = treeTicks(chain.edgePids) - before;
  const ok = out.result['2xx'];
  return { us: ((ticks / clockTicksPerSecond()) * 1e6) / Math.max(1, ok), rps: ok / out.elapsedSeconds, non2xx: out.result.non2xx + out.result.errors };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts an edge node on an empty data directory and times it to its ready line. */
async function timedNode(name: string, urls: string, dirs: string[], procs: Proc[]): Promise<{ ms: number; port: number; proc: Proc; workers: number[]; log: string[] }> {
  const d = mkdtempSync(join(tmpdir(), `mezu-bench-nats-${name}-`));
  dirs.push(d);
  cli(d, ['pki', 'init', '--pool', 'demo']);
  const t0 = performance.now();
  const proc = new Proc(`edge-${name}`, [join(ROOT, 'dist/src/cli/main.js'), 'edge', '--data', d, '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0', '--workers', '1', '--metrics-port', 'off', '--nats', urls, '--node', name], ROOT);
  procs.push(proc);
  const log: string[] = [];
  proc.onLine((line) => {
    if (line.includes('replica:')) log.push(line);
  });
  const ready = await proc.waitFor('ready line', 600_000, (line, stream) => (stream === 'stdout' && line.startsWith('{"event":"ready"') ? (JSON.parse(line) as { port: number; workers: number[] }) : undefined));
  return { ms: performance.now() - t0, port: ready.port, proc, workers: ready.workers, log };
}

/** Stops a timed node and any worker that outlives its primary (workers ignore signals and wait for the primary's drain). */
async function stopNode(n: { proc: Proc; workers: number[] }, notes: string[]): Promise<void> {
  notes.push(`${n.proc.name}: ${await n.proc.stop()}`);
  notes.push(...(await stopOrphans(n.workers, n.proc.pid)));
}

async function bootstrapBench(): Promise<void> {
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const stores: Store[] = [];
  const cluster = new NatsCluster(3);
  try {
    await cluster.start();
    const urls = cluster.urls();
    const dirA = mkdtempSync(join(tmpdir(), 'mezu-bench-nats-a-'));
    dirs.push(dirA);
    const viaA = ['--nats', urls, '--node', 'a'];
    const cfgFile = join(dirA, 'bench.yaml');
    writeFileSync(cfgFile, BENCH_CONFIG);
    cli(dirA, ['apply', '-f', cfgFile, ...viaA]);
    cli(dirA, ['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL, ...viaA]);
    const sA = openStore(dirA, undefined, makeSettings(urls.split(','), 'a', 60_000));
    stores.push(sA);
    await sA.replica!.catchUp();
    const user = sA.users.list(null).find((u) => u.email === BENCH_EMAIL)!;
    const t0 = performance.now();
    let first = '';
    for (let done = 0; done < BOOTSTRAP; ) {
      const n = Math.min(BULK_PER_ENTRY, BOOTSTRAP - done);
      const now = Date.now();
      const list = [];
      for (let i = 0; i < n; i++) {
        const t = newSessionToken();
        if (first === '') first = t;
        list.push({ tokenHash: hashToken(t), rec: { id: newId('ses'), principalType: 'user' as const, userId: user.id, projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null } });
      }
      await sA.sessions.createMany(list);
      done += n;
    }
    const loadS = (performance.now() - t0) / 1000;
    const entries = sA.replica!.applied();
    process.stderr.write(`bench:nats: ${BOOTSTRAP} sessions written in ${loadS.toFixed(1)} s (${entries} journal entries)\n`);

    const replay = await timedNode('replay', urls, dirs, procs);
    const replayOk = await status(replay.port, '/api/v1/items', first);
    const notes: string[] = [];
    await stopNode(replay, notes);

    const t1 = performance.now();
    const head = await sA.replica!.publishSnapshot();
    const snapS = (performance.now() - t1) / 1000;
    const tail = newSessionToken();
    const now = Date.now();
    await sA.sessions.create(hashToken(tail), { id: newId('ses'), principalType: 'user', userId: user.id, projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
    const snap = await timedNode('snap', urls, dirs, procs);
    const snapOk = [await status(snap.port, '/api/v1/items', first), await status(snap.port, '/api/v1/items', tail)];
    await stopNode(snap, notes);
    const out = [
      `bench:nats --bootstrap ${BOOTSTRAP} — ${new Date().toISOString()}, 3 nats-server (JetStream, R3)`,
      '',
      `- bulk load on A: ${BOOTSTRAP} sessions in ${entries} journal entries, ${loadS.toFixed(1)} s`,
      `- snapshot: ${(head.size / 1048576).toFixed(1)} MiB in ${head.chunks} chunks at sequence ${head.seq}, published in ${snapS.toFixed(1)} s`,
      '',
      'Answers: 502 = the session is accepted (no Warpgate runs in this mode), 401 = unknown.',
      '',
      '| new node | start → ready s | a bulk session | the tail session | budget |',
      '|---|---:|---:|---:|---|',
      `| replays the journal (no snapshot yet) | ${(replay.ms / 1000).toFixed(1)} | ${replayOk} | – | ≤ 60 s |`,
      `| snapshot + tail | ${(snap.ms / 1000).toFixed(1)} | ${snapOk[0]} | ${snapOk[1]} | ≤ 60 s |`,
      '',
      ...snap.log.map((l) => `  ${l.slice(0, 300)}`),
      '',
      ...notes.map((n) => `- ${n}`),
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const pr of procs.reverse()) await pr.stop().catch(() => undefined);
    await cluster.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  // Every node seals with the same store key (docs/ARCHITECTURE.md, "Replication"): set once, inherited by every child.
  process.env.MEZU_STORE_KEY ??= randomBytes(32).toString('base64url');
  if (BOOTSTRAP > 0) return bootstrapBench();
  const procs: Proc[] = [];
  const chains: Chain[] = [];
  const dirs: string[] = [];
  const stores: Store[] = [];
  const notes: string[] = [];
  const cluster = new NatsCluster(3);
  const started = Date.now();
  try {
    await cluster.start();
    const urls = cluster.urls();
    const origin = await startNodeService('origin', 'dist/bench/bench-origin.js', ['--host', '127.0.0.1', '--port', '0'], procs);

    // P: the embedded single node, prepared exactly as the main bench does.
    const dirP = mkdtempSync(join(tmpdir(), 'mezu-bench-nats-p-'));
    dirs.push(dirP);
    const tokenP = prepareData(dirP);
    const p = await startChain(dirP, origin.port, 1, procs, notes);
    chains.push(p);

    // A and B: the same data, written through the stream (the CLI on A's directory with --nats).
    const [dirA, dirB] = ['a', 'b'].map((n) => {
      const d = mkdtempSync(join(tmpdir(), `mezu-bench-nats-${n}-`));
      dirs.push(d);
      cli(d, ['pki', 'init', '--pool', 'demo']);
      return d;
    }) as [string, string];
    const viaA = ['--nats', urls, '--node', 'a'];
    const cfgFile = join(dirA, 'bench.yaml');
    writeFileSync(cfgFile, BENCH_CONFIG);
    cli(dirA, ['apply', '-f', cfgFile, ...viaA]);
    cli(dirA, ['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL, ...viaA]);
    const token = cli(dirA, ['sessions', 'create', '--project', 'demo', '--email', BENCH_EMAIL, ...viaA]);
    const a = await startChain(dirA, origin.port, 1, procs, notes, ['--nats', urls, '--node', 'a']);
    const b = await startChain(dirB, origin.port, 1, procs, notes, ['--nats', urls, '--node', 'b']);
    chains.push(a, b);
    for (const c of [p, a, b]) {
      const s = await status(c.edgePort, '/api/v1/items', c === p ? tokenP : token);
      if (s !== 200) throw new Error(`bench:nats: pre-flight: protected GET on ${c.edge.name} answered ${s}`);
    }

    // ── request-path CPU, with and without --nats, interleaved ──
    const cpuP: number[] = [];
    const cpuA: number[] = [];
    const lines: string[] = [];
    await cpuWindow(p, tokenP);
    await cpuWindow(a, token);
    for (let i = 0; i < WINDOWS; i++) {
      // P A, then A P: a drift in the machine's load over the run weighs on both sides alike.
      let rp, ra;
      if (i % 2 === 0) {
        rp = await cpuWindow(p, tokenP);
        ra = await cpuWindow(a, token);
      } else {
        ra = await cpuWindow(a, token);
        rp = await cpuWindow(p, tokenP);
      }
      cpuP.push(rp.us);
      cpuA.push(ra.us);
      lines.push(`window ${i + 1}: without --nats ${rp.us.toFixed(1)} µs/req at ${rp.rps.toFixed(0)} req/s (${rp.non2xx} non-2xx); with --nats ${ra.us.toFixed(1)} µs/req at ${ra.rps.toFixed(0)} req/s (${ra.non2xx} non-2xx)`);
    }

    // ── propagation under load ──
    const sA = openStore(dirA);
    const sB = openStore(dirB);
    stores.push(sA, sB);
    const loadSeconds = 120;
    const loaders = [a, b].map((c, i) => {
      const l = new Proc(`load-${i}`, [join(ROOT, 'dist/src/cli/main.js'), 'loadtest', `http://127.0.0.1:${c.edgePort}/api/v1/items`, '--cookie', `${SESSION_COOKIE}=${token}`, '-c', '10', '-d', `${loadSeconds}s`, '-R', String(RATE), '--allow-errors', '--data', dirA], ROOT);
      procs.push(l);
      return l;
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const user = sA.users.list(null).find((u) => u.email === BENCH_EMAIL);
    if (user === undefined) throw new Error('bench:nats: the bench user is not in A\'s replica');
    const sessions: Array<number | null> = [];
    const revocations: Array<number | null> = [];
    for (let i = 0; i < SAMPLES; i++) {
      const t = newSessionToken();
      const now = Date.now();
      const t0 = performance.now();
      // B is polled from the moment the write starts, alongside it: A's own commit is not on B's path.
      const [, seen] = await Promise.all([
        sA.sessions.create(hashToken(t), { id: newId('ses'), principalType: 'user', userId: user.id, projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null }),
        until(b.edgePort, '/api/v1/items', t, 200, t0),
      ]);
      sessions.push(seen);
      // Read back on B's replica before B revokes it (B's own write is judged against its replica).
      await sB.replica!.catchUp();
      const t1 = performance.now();
      const [, gone] = await Promise.all([sB.sessions.revoke(hashToken(t)), until(a.edgePort, '/api/v1/items', t, 401, t1)]);
      revocations.push(gone);
    }
    const configs: Array<number | null> = [];
    for (let i = 0; i < CONFIGS; i++) {
      // Flip a route between public (200 through the chain) and deny (403).
      const open = i % 2 === 0;
      const text = BENCH_CONFIG.replace('      - { path: /health,     auth: public }', `      - { path: /health,     auth: public }\n      - { path: /flip/*,     auth: ${open ? 'public' : 'deny'} }`);
      const parsed = parseConfigYaml(text);
      if (!parsed.ok) throw new Error('bench:nats: the flipped config does not validate');
      await sB.replica!.catchUp();
      const t0 = performance.now();
      const [, live] = await Promise.all([sB.config.apply(text, parsed.config, sB.config.currentVersion()), until(a.edgePort, '/flip/x', null, open ? 200 : 403, t0)]);
      configs.push(live);
    }
    for (const l of loaders) await l.stop();

    const pMed = median(cpuP);
    const aMed = median(cpuA);
    const delta = ((aMed - pMed) / pMed) * 100;
    const out = [
      `bench:nats — ${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s, 3 nats-server (JetStream, R3), nodes A and B with --nats, P without; 1 edge worker each`,
      '',
      `Propagation under load (${RATE} req/s of protected GETs on each of A and B), ms from the start of the write:`,
      '',
      '| what | samples | p50 ms | p99 ms | max ms | budget ms | result |',
      '|---|---:|---:|---:|---:|---:|---|',
      summary('session created on A → accepted on B', sessions, 100),
      summary('revocation on B → enforced on A', revocations, 100),
      summary('config applied on B → served by A', configs, 1000),
      '',
      `Request-path CPU (edge primary + worker), protected GET at ${RATE} req/s, ${WINDOWS} interleaved windows of ${DURATION} s:`,
      '',
      ...lines.map((l) => `- ${l}`),
      '',
      `| edge | median CPU-µs/req |`,
      '|---|---:|',
      `| without --nats | ${pMed.toFixed(1)} |`,
      `| with --nats | ${aMed.toFixed(1)} |`,
      `| change | ${delta >= 0 ? '+' : ''}${delta.toFixed(1)} % (budget ≤ +5 %) |`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const pr of procs.reverse()) await pr.stop().catch(() => undefined);
    for (const c of chains) await stopOrphans(c.edgeWorkers, c.edge.pid).catch(() => undefined);
    await cluster.stop();
    agent.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench:nats: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
