#!/usr/bin/env node
/**
 * WebSocket messages through the chain against the same origin directly, in
 * the same run: how many echoes per second, how long each takes, and what
 * each message costs every process in CPU time.
 *
 *   npm run bench:ws -- [--rounds 3] [--duration 4] [--warmup 1] [--sockets 64] [--window 8]
 *                       [--size 64] [--large 16384] [--workers 2] [--only pingpong,window,large]
 *                       [--profile-seconds 6 | --no-profile] [--profile-load pingpong,large] [--quiet-wait 20]
 *
 * Why: a WebSocket through the edge is a long-lived RFC 8441 extended
 * CONNECT stream on the tunnel (src/front/websocket.ts, ws-frames.ts), which
 * the Warpgate relays byte for byte to an upgraded connection of its own to
 * the origin (warpgate/websocket.ts). Every message crosses uWS's parser at
 * the edge, is masked into a client frame, goes through the HTTP/2 codec and
 * TLS twice, and the echo comes back the same way, parsed again at the edge.
 * The request benches (run.ts, wrk.ts) measure none of that.
 *
 * Targets, on loopback only:
 *   chain   ws://127.0.0.1:<edge>/api/v1/ws with a session cookie: edge
 *           (`--workers`, uWS) → lean HTTP/2 mTLS tunnel → Warpgate → demo
 *           origin (scripts/demo-origin.ts, uWS, echoes every message);
 *   direct  ws://127.0.0.1:<origin>/api/v1/ws, the same origin process.
 * Loads (each a closed loop, `--sockets` WebSockets opened before the run,
 * binary messages carrying a sequence number that the echo must carry back,
 * in order, at the same size):
 *   pingpong  one `--size` message in flight per socket (request/echo);
 *   window    `--window` messages in flight per socket (throughput);
 *   large     one `--large` message in flight per socket.
 * Each round runs every load against both targets back to back (the order
 * alternating between rounds, so drift of the shared machine does not
 * favour one); figures per round and the median of the rounds.
 *
 * The load generator is a separate process (this file with `--generator`,
 * the `ws` package's client), so its CPU is read apart and its event loop is
 * not the one measuring. It opens its sockets, warms up, prints a `start`
 * line, loads for `--duration` seconds, prints `stop`, lets the messages in
 * flight come back (≤ 5 s), closes every socket with 1000 and prints its
 * result. The measuring process reads utime+stime of every process
 * (/proc/<pid>/stat: the edge's primary and workers, the Warpgate, the
 * origin, the generator) when it reads `start` and `stop`: CPU-µs per echo
 * completed. Latency is from `send` to the echo's arrival, every message
 * kept (exact percentiles). Faults — a handshake refused, an error, a close
 * the generator did not ask for, an echo that is not the message sent, a
 * close answered with another code than 1000, messages never echoed — are
 * counted and printed; nothing is retried or replaced, and any fault makes
 * the exit code 1.
 *
 * Then, unless `--no-profile`: a second edge and Warpgate started under
 * `node --cpu-prof` (the edge's workers inherit it through cluster.fork's
 * execArgv), the `--profile-load` loads through them one after the other
 * (default: ping-pong 64 B, then ping-pong 16 KiB), `--profile-seconds`
 * each, both processes stopped (SIGTERM: the profiles are written at exit),
 * and for each load the top self-time functions of the edge workers
 * (together) and of the Warpgate, and each sample charged to the nearest
 * function of the project's own code, counted only over the samples taken
 * inside that load's window (V8's profile clock is CLOCK_MONOTONIC, as is
 * process.hrtime here). The profiled runs' own figures are shown but are
 * not the measurement: the profiler costs CPU. V8 samples the main thread
 * by wall time; time in native code called from JavaScript (syscalls, TLS,
 * uWS) is charged to the calling frame or to a native frame of Node's.
 *
 * Bounded: at most `--sockets` ≤ 256 sockets, every run ends after warm-up +
 * duration + 5 s of drain + 5 s of closing (the generator exits by itself
 * after 30 s more whatever happens), at most 400,000 messages per second of
 * run are sent. Every process is stopped by pid. Writes the printed report to
 * bench/results/ws-latest.md and the figures to ws-latest.json.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { clockTicksPerSecond, delta, processTree, snapshot, systemTicks, type GroupTicks } from './cpu.js';
import { OTHER_CORES_WARN, waitQuiet, type Ctx } from './measure.js';
import { Proc, stopOrphans } from './processes.js';
import { BENCH_EMAIL, READY_TIMEOUT_MS, ROOT, SESSION_COOKIE, cli, port, readyLine } from './stack.js';

/** Messages sent per second of a run (warm-up included), at most: a bound, far above what 2 cores reach. */
const MAX_MESSAGES_PER_SECOND = 400_000;
/** After `stop`, how long the messages in flight get to come back, and then the closes. */
const DRAIN_MS = 5_000;
const CLOSE_MS = 5_000;
/** The generator exits by itself this long after its run should have ended. */
const GENERATOR_GRACE_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Sampling interval of the profiled run's `--cpu-prof`, µs (Node's default is 1000). */
const PROFILE_INTERVAL_US = 500;
/** Functions listed per profiled process. */
const PROFILE_TOP = 15;

/**
 * The bench's route config: the bench's demo project (bench/stack.ts) with
 * the WebSocket path allowing enough sockets per session for the load (the
 * default `max_sockets` is 32 per session, edge-wide, each worker taking an
 * equal share).
 */
const WS_CONFIG = `# Written by the Mezusphere WebSocket bench (bench/websocket.ts).
projects:
  - id: demo
    name: Bench
    hosts: [127.0.0.1, localhost]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    routes:
      - { path: /api/v1/*, auth: required, max_sockets: 10000 }
      - { path: /health,   auth: public }
`;

// ─────────────────────────────────────────────────────────── the generator ──

interface GenOptions {
  url: string;
  headers: Record<string, string>;
  sockets: number;
  size: number;
  window: number;
  warmupSeconds: number;
  seconds: number;
}

interface Faults {
  /** Handshakes that did not open, by status or error. */
  handshake: Record<string, number>;
  /** 'error' events on open sockets, by message. */
  errors: Record<string, number>;
  /** Closes the generator did not ask for, by code. */
  unexpectedClose: Record<string, number>;
  /** Echoes that were not the message expected next on that socket (type, size, sequence or socket id). */
  wrongEcho: number;
  /** Messages never echoed within DRAIN_MS after `stop` (or on a socket that closed). */
  neverEchoed: number;
  /** Our close (1000) answered with another code, by code; or not answered within CLOSE_MS ("timeout"). */
  closeAnswer: Record<string, number>;
}

interface GenResult {
  event: 'result';
  opened: number;
  /** Echoes completed inside the measured window. */
  echoes: number;
  /** The window by the generator's clock. */
  elapsedSeconds: number;
  latencyMs: LatencyMs;
  /** Longest time inside the window with no echo arriving on any socket, ms: a stall shows here. */
  longestGapMs: number;
  sent: number;
  /** The message bound stopped sending before the window ended. */
  capped: boolean;
  faults: Faults;
}

interface LatencyMs {
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p99_9: number | null;
  max: number | null;
}

const WARMUP = 0;
const MEASURE = 1;
const STOPPING = 2;

function emit(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function latencyOf(samples: Float64Array): LatencyMs {
  const s = samples.sort();
  const r = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
  return { samples: s.length, p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), p99_9: r(percentile(s, 99.9)), max: r(s.length > 0 ? s[s.length - 1]! : null) };
}

/** One client WebSocket of the generator and its messages in flight (a ring of `window` slots). */
interface Sock {
  id: number;
  ws: WebSocket;
  /** One buffer per slot: a slot is rewritten only after its last message's echo came back. */
  bufs: Buffer[];
  sentAt: Float64Array;
  nextSeq: number;
  expectSeq: number;
  inFlight: number;
  open: boolean;
  closedByUs: boolean;
  closed: boolean;
}

async function generator(o: GenOptions): Promise<void> {
  const hardStop = setTimeout(() => {
    process.stderr.write('generator: still running long after its run should have ended; exiting\n');
    process.exit(3);
  }, (o.warmupSeconds + o.seconds) * 1000 + DRAIN_MS + CLOSE_MS + GENERATOR_GRACE_MS);
  const faults: Faults = { handshake: {}, errors: {}, unexpectedClose: {}, wrongEcho: 0, neverEchoed: 0, closeAnswer: {} };
  const maxMessages = Math.ceil((o.warmupSeconds + o.seconds) * MAX_MESSAGES_PER_SECOND);
  const maxSamples = Math.ceil(o.seconds * MAX_MESSAGES_PER_SECOND);
  const samples = new Float64Array(maxSamples);
  let nSamples = 0;
  let echoes = 0;
  let lastEchoAt = 0;
  let longestGap = 0;
  let sent = 0;
  let capped = false;
  let phase = WARMUP;
  let inFlight = 0;
  let drained: (() => void) | null = null;
  let closesLeft = 0;
  let allClosed: (() => void) | null = null;
  const sockets: Sock[] = [];

  const send = (s: Sock) => {
    if (sent >= maxMessages) {
      if (phase === MEASURE) capped = true;
      return;
    }
    const seq = s.nextSeq++;
    const slot = seq % o.window;
    const b = s.bufs[slot]!;
    b.writeUInt32LE(seq, 0);
    b.writeUInt32LE(s.id, 4);
    s.sentAt[slot] = performance.now();
    s.ws.send(b, { binary: true });
    s.inFlight++;
    inFlight++;
    sent++;
  };

  const lost = (s: Sock) => {
    faults.neverEchoed += s.inFlight;
    inFlight -= s.inFlight;
    s.inFlight = 0;
    if (phase === STOPPING && inFlight === 0) drained?.();
  };

  const onMessage = (s: Sock, data: WebSocket.RawData, isBinary: boolean) => {
    const now = performance.now();
    const b = data as Buffer;
    if (s.inFlight === 0) {
      faults.wrongEcho++;
      return;
    }
    if (!isBinary || !Buffer.isBuffer(b) || b.length !== o.size || b.readUInt32LE(0) !== s.expectSeq >>> 0 || b.readUInt32LE(4) !== s.id) faults.wrongEcho++;
    const latency = now - s.sentAt[s.expectSeq % o.window]!;
    s.expectSeq++;
    s.inFlight--;
    inFlight--;
    if (phase === MEASURE) {
      echoes++;
      if (nSamples < maxSamples) samples[nSamples++] = latency;
      if (now - lastEchoAt > longestGap) longestGap = now - lastEchoAt;
      lastEchoAt = now;
    }
    if (phase !== STOPPING) send(s);
    else if (inFlight === 0) drained?.();
  };

  const openOne = (id: number) =>
    new Promise<void>((resolveOpen) => {
      const ws = new WebSocket(o.url, { headers: o.headers, perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: 16 * 1024 * 1024 });
      const bufs: Buffer[] = [];
      for (let i = 0; i < o.window; i++) bufs.push(Buffer.alloc(o.size, 0x61 + (i % 26)));
      const s: Sock = { id, ws, bufs, sentAt: new Float64Array(o.window), nextSeq: 0, expectSeq: 0, inFlight: 0, open: false, closedByUs: false, closed: false };
      let settled = false;
      const settle = () => {
        if (!settled) {
          settled = true;
          resolveOpen();
        }
      };
      ws.on('unexpected-response', (req, res) => {
        bump(faults.handshake, `status ${res.statusCode ?? 0}`);
        req.destroy();
        res.resume();
        settle();
      });
      ws.on('open', () => {
        s.open = true;
        sockets.push(s);
        settle();
      });
      ws.on('message', (data, isBinary) => onMessage(s, data, isBinary));
      ws.on('error', (err: Error & { code?: string }) => {
        if (!s.open) bump(faults.handshake, err.code ?? err.message);
        else bump(faults.errors, err.code ?? err.message);
        settle();
      });
      ws.on('close', (code: number) => {
        if (s.closed) return;
        s.closed = true;
        if (s.open) {
          if (!s.closedByUs) bump(faults.unexpectedClose, String(code));
          else if (code !== 1000) bump(faults.closeAnswer, String(code));
          lost(s);
          if (s.closedByUs && --closesLeft === 0) allClosed?.();
        }
        settle();
      });
    });

  await Promise.all(Array.from({ length: o.sockets }, (_, i) => openOne(i)));
  emit({ event: 'open', opened: sockets.length });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  if (sockets.length > 0) {
    for (const s of sockets) for (let i = 0; i < o.window; i++) send(s);
    await sleep(o.warmupSeconds * 1000);
    phase = MEASURE;
    const t0 = performance.now();
    lastEchoAt = t0;
    emit({ event: 'start' });
    await sleep(o.seconds * 1000);
    phase = STOPPING;
    const t1 = performance.now();
    if (t1 - lastEchoAt > longestGap) longestGap = t1 - lastEchoAt;
    emit({ event: 'stop' });
    if (inFlight > 0) {
      await new Promise<void>((r) => {
        drained = r;
        setTimeout(r, DRAIN_MS);
      });
    }
    for (const s of sockets) if (!s.closed) lost(s);
    const toClose = sockets.filter((s) => !s.closed);
    closesLeft = toClose.length;
    if (closesLeft > 0) {
      const done = new Promise<void>((r) => {
        allClosed = r;
        setTimeout(r, CLOSE_MS);
      });
      for (const s of toClose) {
        s.closedByUs = true;
        s.ws.close(1000, 'bench done');
      }
      await done;
      for (const s of toClose) {
        if (!s.closed) {
          bump(faults.closeAnswer, 'timeout');
          s.closed = true;
          s.ws.terminate();
        }
      }
    }
    const result: GenResult = { event: 'result', opened: sockets.length, echoes, elapsedSeconds: (t1 - t0) / 1000, latencyMs: latencyOf(samples.subarray(0, nSamples)), longestGapMs: longestGap, sent, capped, faults };
    emit(result);
  } else {
    const result: GenResult = { event: 'result', opened: 0, echoes: 0, elapsedSeconds: 0, latencyMs: latencyOf(new Float64Array(0)), longestGapMs: 0, sent: 0, capped: false, faults };
    emit(result);
  }
  clearTimeout(hardStop);
}

// ───────────────────────────────────────────────────────── the measurement ──

type TargetName = 'chain' | 'direct';
type LoadName = 'pingpong' | 'window' | 'large';
const LOADS: readonly LoadName[] = ['pingpong', 'window', 'large'];

interface Settings {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  sockets: number;
  window: number;
  size: number;
  large: number;
  workers: number;
  loads: LoadName[];
  profileSeconds: number;
  /** The loads run, one after the other, through the profiled chain. */
  profileLoads: LoadName[];
  quietWaitSeconds: number;
}

interface Load {
  name: LoadName;
  label: string;
  size: number;
  window: number;
}

interface Target {
  name: TargetName;
  url: string;
  headers: Record<string, string>;
}

/** Process groups read around each window. 'loadgen' is added per run. */
type Groups = Map<string, number[]>;

interface Row {
  round: number;
  load: LoadName;
  target: TargetName;
  opened: number;
  echoes: number;
  msgsPerSec: number;
  mibPerSec: number;
  latencyMs: LatencyMs;
  longestGapMs: number;
  /** CPU-µs per echo, by group (edge, warpgate, origin, loadgen). */
  cpuUs: Record<string, number>;
  /** Server side: edge + Warpgate + origin (chain), origin (direct). */
  serverUs: number;
  /** Server side plus the load generator. */
  allUs: number;
  /** Machine-wide irq + softirq time per echo (mostly loopback TCP receive), already inside the process figures. */
  softirqUs: number;
  /** Cores busy outside the benchmarked processes. */
  foreignCores: number;
  capped: boolean;
  faults: Faults;
  faultCount: number;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench: ${msg}\nusage: node dist/bench/websocket.js [--rounds N (default 3)] [--duration S (default 4)] [--warmup S (default 1)] ` +
      `[--sockets N (default 64, at most 256)] [--window N (default 8)] [--size BYTES (default 64)] [--large BYTES (default 16384)] ` +
      `[--workers N (default 2)] [--only ${LOADS.join(',')}] [--profile-seconds S (default 6) | --no-profile] [--profile-load LOAD[,LOAD] (default pingpong,large)] ` +
      `[--quiet-wait S (default 20; 0 = do not wait)]\n`,
  );
  process.exit(2);
}

function settings(): Settings {
  let v;
  try {
    v = parseArgs({
      options: {
        rounds: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, sockets: { type: 'string' }, window: { type: 'string' },
        size: { type: 'string' }, large: { type: 'string' }, workers: { type: 'string' }, only: { type: 'string' },
        'profile-seconds': { type: 'string' }, 'profile-load': { type: 'string' }, 'no-profile': { type: 'boolean' }, 'quiet-wait': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  const int = (name: string, text: string | undefined, def: number, min: number, max: number): number => {
    const n = Number(text ?? def);
    if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} takes a whole number from ${min} to ${max}`);
    return n;
  };
  const loads = v.only === undefined ? [...LOADS] : v.only.split(',').map((s) => s.trim());
  for (const l of loads) if (!LOADS.includes(l as LoadName)) usage(`--only: unknown load "${l}"`);
  const profileLoads = (v['profile-load'] ?? 'pingpong,large').split(',').map((x) => x.trim());
  for (const l of profileLoads) if (!LOADS.includes(l as LoadName)) usage(`--profile-load: unknown load "${l}"`);
  return {
    rounds: int('rounds', v.rounds, 3, 1, 20),
    seconds: int('duration', v.duration, 4, 1, 60),
    warmupSeconds: int('warmup', v.warmup, 1, 0, 30),
    sockets: int('sockets', v.sockets, 64, 1, 256),
    window: int('window', v.window, 8, 1, 1024),
    size: int('size', v.size, 64, 8, 1024 * 1024),
    large: int('large', v.large, 16384, 8, 1024 * 1024),
    workers: int('workers', v.workers, 2, 1, 16),
    loads: loads as LoadName[],
    profileSeconds: v['no-profile'] === true ? 0 : int('profile-seconds', v['profile-seconds'], 6, 1, 60),
    profileLoads: profileLoads as LoadName[],
    quietWaitSeconds: int('quiet-wait', v['quiet-wait'], 20, 0, 600),
  };
}

function kib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`;
}

function loadsOf(s: Settings, names: readonly LoadName[] = s.loads): Load[] {
  const all: Record<LoadName, Load> = {
    pingpong: { name: 'pingpong', label: `ping-pong ${kib(s.size)}`, size: s.size, window: 1 },
    window: { name: 'window', label: `${s.window} in flight ${kib(s.size)}`, size: s.size, window: s.window },
    large: { name: 'large', label: `ping-pong ${kib(s.large)}`, size: s.large, window: 1 },
  };
  return names.map((n) => all[n]);
}

interface Chain {
  edge: Proc;
  warpgate: Proc;
  edgePort: number;
  edgeWorkers: number[];
  edgePids: number[];
  warpgatePids: number[];
}

/** Edge and Warpgate with `nodeFlags` before their scripts (the edge's workers inherit them); up once every worker has a tunnel. */
async function startChain(label: string, data: string, originPort: number, workers: number, nodeFlags: string[], procs: Proc[]): Promise<Chain> {
  const edge = new Proc(`${label} edge`, [...nodeFlags, join(ROOT, 'dist/src/cli/main.js'), 'edge', '--data', data, '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0', '--workers', String(workers)], ROOT);
  procs.push(edge);
  const ready = await edge.waitFor('ready line', READY_TIMEOUT_MS, readyLine);
  const edgePort = port(ready, 'port', 'edge');
  const tunnelPort = port(ready, 'tunnelPort', 'edge');
  const w = ready.workers;
  if (!Array.isArray(w) || w.length !== workers || !w.every((p) => Number.isInteger(p) && (p as number) > 0)) throw new Error(`bench: edge ready line should list ${workers} worker pids: ${JSON.stringify(ready)}`);
  const warpgate = new Proc(
    `${label} warpgate`,
    [...nodeFlags, join(ROOT, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${tunnelPort}`, '--origin', `http://127.0.0.1:${originPort}`, '--pki-dir', join(data, 'pki'), '--pool', 'demo'],
    ROOT,
  );
  procs.push(warpgate);
  const up = new Set<string>();
  await warpgate.waitFor(`a tunnel to each of the ${workers} edge workers`, READY_TIMEOUT_MS, (line) => {
    const m = /tunnel up to edge worker (\d+)\//.exec(line);
    if (m !== null) up.add(m[1]!);
    return up.size >= workers ? true : undefined;
  });
  // The Warpgate keeps dialing until each worker holds its --conns-per-worker tunnels.
  await new Promise((r) => setTimeout(r, 1_000));
  const edgePids = processTree(edge.pid);
  for (const p of w as number[]) if (!edgePids.includes(p)) edgePids.push(p);
  return { edge, warpgate, edgePort, edgeWorkers: w as number[], edgePids, warpgatePids: processTree(warpgate.pid) };
}

async function stopChain(c: Chain, procs: Proc[], notes: string[], problems: string[]): Promise<void> {
  for (const p of [c.warpgate, c.edge]) {
    if (!p.alive) problems.push(`${p.name} (pid ${p.pid}) had exited on its own: ${JSON.stringify(p.exit)}`);
    notes.push(`${p.name} (pid ${p.pid}) ${await p.stop()}`);
    const i = procs.indexOf(p);
    if (i >= 0) procs.splice(i, 1);
  }
  notes.push(...(await stopOrphans(c.edgeWorkers, c.edge.pid)));
}

/** One WebSocket from this process: the handshake's outcome, and the answer to `first` if it opened. */
function probe(url: string, headers: Record<string, string>, first: string | Buffer): Promise<{ status: number; answer: Buffer | null; closeCode: number | null }> {
  return new Promise((resolveProbe, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    let answer: Buffer | null = null;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`bench: pre-flight WebSocket to ${url} did not finish within 10 s`));
    }, 10_000);
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      req.destroy();
      res.resume();
      resolveProbe({ status: res.statusCode ?? 0, answer: null, closeCode: null });
    });
    ws.on('open', () => ws.send(first));
    ws.on('message', (data) => {
      answer = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      ws.close(1000, 'pre-flight done');
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolveProbe({ status: 101, answer, closeCode: code });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`bench: pre-flight WebSocket to ${url}: ${err.message}`));
    });
  });
}

/**
 * Pre-flight: the chain refuses a WebSocket without a session (401), carries
 * the identity to the origin with one (`whoami`), echoes a binary message
 * byte for byte and closes with 1000; the direct target echoes too.
 */
async function preflight(chain: Target, direct: Target, notes: string[]): Promise<void> {
  const anon = await probe(chain.url, {}, 'whoami');
  if (anon.status !== 401) throw new Error(`bench: pre-flight: a WebSocket to ${chain.url} without a session got ${anon.status}, not 401`);
  const who = await probe(chain.url, chain.headers, 'whoami');
  const text = who.answer?.toString('utf8') ?? '';
  if (who.status !== 101 || !text.includes(BENCH_EMAIL)) throw new Error(`bench: pre-flight: whoami through the chain did not carry the identity: status ${who.status}, answer ${text.slice(0, 300)}`);
  const msg = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  for (const t of [chain, direct]) {
    const e = await probe(t.url, t.headers, msg);
    if (e.status !== 101 || e.answer === null || !e.answer.equals(msg) || e.closeCode !== 1000) throw new Error(`bench: pre-flight: ${t.name} echo: status ${e.status}, echo ${e.answer === null ? 'none' : e.answer.equals(msg) ? 'equal' : 'different'}, close ${e.closeCode}`);
  }
  notes.push(`pre-flight: chain without a session 401; whoami through the chain carries ${BENCH_EMAIL}; a 100-byte binary message echoed byte for byte and closed with 1000 on both targets`);
}

/**
 * irq + softirq ticks of the whole machine (/proc/stat fields 6 and 7): the
 * kernel's receive processing of loopback TCP runs as softirq. This kernel
 * charges those ticks to the process that was running as well (no separate
 * IRQ time accounting: on a quiet machine the per-process ticks add up to
 * the machine's busy time with softirq included), so this is a part of the
 * process figures, shown to say how much of them is the network stack's.
 */
function irqTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  return Number(f[6]) + Number(f[7]);
}

interface Window {
  t0us: number;
  t1us: number;
  before: GroupTicks | null;
  after: GroupTicks | null;
  sys0: number;
  sys1: number;
  irq0: number;
  irq1: number;
  self0: NodeJS.CpuUsage | null;
  selfSeconds: number;
}

/** One generator run against `t`; CPU of `groups` and the generator read on its `start` and `stop` lines. */
async function runLoad(s: Settings, t: Target, load: Load, groups: Groups, seconds: number): Promise<{ result: GenResult; win: Window; gen: Proc }> {
  const opts: GenOptions = { url: t.url, headers: t.headers, sockets: s.sockets, size: load.size, window: load.window, warmupSeconds: s.warmupSeconds, seconds };
  const gen = new Proc(`generator (${t.name}, ${load.label})`, [join(ROOT, 'dist/bench/websocket.js'), '--generator', JSON.stringify(opts)], ROOT);
  const all = new Map(groups);
  all.set('loadgen', [gen.pid]);
  const win: Window = { t0us: 0, t1us: 0, before: null, after: null, sys0: 0, sys1: 0, irq0: 0, irq1: 0, self0: null, selfSeconds: 0 };
  const off = gen.onLine((line, stream) => {
    if (stream !== 'stdout') return;
    if (line === '{"event":"start"}') {
      win.t0us = Number(process.hrtime.bigint() / 1000n);
      win.self0 = process.cpuUsage();
      win.sys0 = systemTicks().busy;
      win.irq0 = irqTicks();
      win.before = snapshot(all);
    } else if (line === '{"event":"stop"}') {
      win.after = snapshot(all);
      win.sys1 = systemTicks().busy;
      win.irq1 = irqTicks();
      const d = process.cpuUsage(win.self0 ?? undefined);
      win.selfSeconds = (d.user + d.system) / 1e6;
      win.t1us = Number(process.hrtime.bigint() / 1000n);
    }
  });
  try {
    const limit = (s.warmupSeconds + seconds) * 1000 + DRAIN_MS + CLOSE_MS + GENERATOR_GRACE_MS + 10_000;
    const result = await gen.waitFor('result line', limit, (line, stream) => {
      if (stream !== 'stdout' || !line.startsWith('{"event":"result"')) return undefined;
      return JSON.parse(line) as GenResult;
    });
    return { result, win, gen };
  } finally {
    off();
    await gen.stop();
  }
}

function faultCount(f: Faults): number {
  const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  return sum(f.handshake) + sum(f.errors) + sum(f.unexpectedClose) + f.wrongEcho + f.neverEchoed + sum(f.closeAnswer);
}

function faultText(f: Faults): string {
  const parts: string[] = [];
  const m = (name: string, x: Record<string, number>) => {
    const e = Object.entries(x);
    if (e.length > 0) parts.push(`${name} ${e.map(([k, n]) => `${k}×${n}`).join(' ')}`);
  };
  m('handshake', f.handshake);
  m('errors', f.errors);
  m('unexpected close', f.unexpectedClose);
  if (f.wrongEcho > 0) parts.push(`wrong echo ×${f.wrongEcho}`);
  if (f.neverEchoed > 0) parts.push(`never echoed ×${f.neverEchoed}`);
  m('close answered', f.closeAnswer);
  return parts.length === 0 ? '0' : parts.join('; ');
}

async function measure(s: Settings, ticks: number, t: Target, load: Load, round: number, groups: Groups, problems: string[], warnings: string[]): Promise<Row> {
  const { result: r, win } = await runLoad(s, t, load, groups, s.seconds);
  if (win.before === null || win.after === null) throw new Error(`bench: the generator for ${t.name} ${load.label} gave a result without its start/stop lines`);
  const d = delta(win.before, win.after, ticks);
  const seconds = (win.t1us - win.t0us) / 1e6;
  const per = (cpuSeconds: number) => (r.echoes > 0 ? (cpuSeconds * 1e6) / r.echoes : NaN);
  const cpuUs: Record<string, number> = {};
  let ours = win.selfSeconds;
  for (const [g, x] of d) {
    ours += x.cpuSeconds;
    if (x.vanished.length > 0) problems.push(`round ${round} ${t.name} ${load.label}: ${g} pid(s) ${x.vanished.join(', ')} vanished during the window`);
    if (t.name === 'direct' && (g === 'edge' || g === 'warpgate')) continue;
    cpuUs[g] = per(x.cpuSeconds);
  }
  const serverUs = (cpuUs.edge ?? 0) + (cpuUs.warpgate ?? 0) + cpuUs.origin!;
  const irqSeconds = (win.irq1 - win.irq0) / ticks;
  const foreignCores = ((win.sys1 - win.sys0) / ticks - ours) / seconds;
  const row: Row = {
    round, load: load.name, target: t.name, opened: r.opened, echoes: r.echoes,
    msgsPerSec: r.echoes / r.elapsedSeconds, mibPerSec: (r.echoes * load.size * 2) / r.elapsedSeconds / (1 << 20),
    latencyMs: r.latencyMs, longestGapMs: r.longestGapMs, cpuUs, serverUs, allUs: serverUs + cpuUs.loadgen!, softirqUs: per(irqSeconds), foreignCores, capped: r.capped, faults: r.faults, faultCount: faultCount(r.faults),
  };
  const name = `round ${round} ${t.name} ${load.label}`;
  if (row.opened !== s.sockets) problems.push(`${name}: ${row.opened} of ${s.sockets} sockets opened`);
  if (row.faultCount > 0) problems.push(`${name}: faults: ${faultText(r.faults)}`);
  if (row.capped) problems.push(`${name}: hit the bound of ${MAX_MESSAGES_PER_SECOND} messages per second; the window ended early`);
  if (row.echoes === 0) problems.push(`${name}: no echo completed`);
  if (foreignCores > OTHER_CORES_WARN) warnings.push(`${name}: ${foreignCores.toFixed(2)} cores busy outside the benchmarked processes during the window`);
  process.stderr.write(
    `${name}: ${row.msgsPerSec.toFixed(0)} msgs/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms, longest gap ${r.longestGapMs.toFixed(1)} ms, ` +
      `${Object.entries(cpuUs).map(([g, x]) => `${g} ${x.toFixed(1)}`).join(', ')} CPU-µs/msg (of which softirq ${row.softirqUs.toFixed(1)}), foreign ${foreignCores.toFixed(2)} cores, faults ${faultText(r.faults)}\n`,
  );
  return row;
}

/** The profiled run's figures, computed as a measured run's (for its own line in the report). */
function profiledRow(r: GenResult, win: Window, load: Load, ticks: number): Row | null {
  if (win.before === null || win.after === null) return null;
  const cpuUs: Record<string, number> = {};
  for (const [g, v] of delta(win.before, win.after, ticks)) cpuUs[g] = r.echoes > 0 ? (v.cpuSeconds * 1e6) / r.echoes : NaN;
  const serverUs = cpuUs.edge! + cpuUs.warpgate! + cpuUs.origin!;
  return {
    round: 0, load: load.name, target: 'chain', opened: r.opened, echoes: r.echoes, msgsPerSec: r.echoes / r.elapsedSeconds,
    mibPerSec: (r.echoes * load.size * 2) / r.elapsedSeconds / (1 << 20), latencyMs: r.latencyMs, longestGapMs: r.longestGapMs, cpuUs, serverUs, allUs: serverUs + cpuUs.loadgen!,
    softirqUs: r.echoes > 0 ? (((win.irq1 - win.irq0) / ticks) * 1e6) / r.echoes : NaN, foreignCores: NaN, capped: r.capped, faults: r.faults, faultCount: faultCount(r.faults),
  };
}

// ──────────────────────────────────────────────────────────────── profiles ──

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One load through the profiled chain: its own figures and the profiles' summaries over its window. */
interface Profiled {
  row: Row;
  summaries: ProfileSummary[];
}

interface ProfileSummary {
  process: string;
  files: string[];
  /** Main-thread time sampled inside the load window, ms: all, idle (in epoll_wait), busy. */
  windowMs: number;
  idleMs: number;
  busyMs: number;
  /** Self time by function; a frame of Node or V8 without a script also names the project function it was called from. */
  top: Array<{ fn: string; where: string; via: string; sampledMs: number; share: number }>;
  /** Each busy sample charged to its nearest project frame (dist/…): what our functions cost with what they call. */
  byProjectFrame: Array<{ frame: string; sampledMs: number; share: number }>;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  const root = ROOT.endsWith('/') ? ROOT : `${ROOT}/`;
  if (u.startsWith(root)) u = u.slice(root.length);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm);
  return u;
}

function frameName(n: CpuProfileNode): string {
  const cf = n.callFrame;
  const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
  const file = shortUrl(cf.url);
  return file === '' ? fn : `${fn} ${file}:${cf.lineNumber + 1}`;
}

/**
 * Self time per function, and per nearest project frame, of the main-thread
 * profiles in `files`, over the samples taken in [t0us, t1us]. V8 samples
 * the main thread at an interval of wall time: a sample taken while the
 * thread is inside a syscall, or preempted, is charged to the frame it is in.
 */
function summarize(name: string, files: string[], t0us: number, t1us: number): ProfileSummary {
  const fnMs = new Map<string, { fn: string; where: string; via: string; us: number }>();
  const projMs = new Map<string, number>();
  let windowUs = 0;
  let idleUs = 0;
  for (const path of files) {
    const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
    const byId = new Map<number, CpuProfileNode>();
    const parent = new Map<number, number>();
    for (const n of p.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    /** Nearest frame of the project's own code (dist/…, not node_modules) at or above `id`. */
    const projectFrame = (id: number): CpuProfileNode | null => {
      for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
        const url = shortUrl(byId.get(x)!.callFrame.url);
        if (url.startsWith('dist/')) return byId.get(x)!;
      }
      return null;
    };
    let t = p.startTime;
    const n = p.samples.length;
    for (let i = 0; i < n; i++) {
      t += p.timeDeltas[i]!;
      if (t < t0us || t > t1us) continue;
      // A sample stands for the time until the next one.
      const dur = i + 1 < n ? p.timeDeltas[i + 1]! : PROFILE_INTERVAL_US;
      const node = byId.get(p.samples[i]!)!;
      const cf = node.callFrame;
      windowUs += dur;
      if (cf.functionName === '(idle)') {
        idleUs += dur;
        continue;
      }
      const file = shortUrl(cf.url);
      const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
      const where = file === '' ? '' : `${file}:${cf.lineNumber + 1}`;
      const proj = projectFrame(node.id);
      const via = file.startsWith('dist/') || proj === null ? '' : frameName(proj);
      const key = `${fn}@${where}@${via}`;
      const e = fnMs.get(key);
      if (e === undefined) fnMs.set(key, { fn, where, via, us: dur });
      else e.us += dur;
      const pk = proj !== null ? frameName(proj) : fn.startsWith('(') ? fn : `(no project frame) ${frameName(node)}`;
      projMs.set(pk, (projMs.get(pk) ?? 0) + dur);
    }
  }
  const busyUs = windowUs - idleUs;
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);
  const top = [...fnMs.values()].sort((a, b) => b.us - a.us).slice(0, PROFILE_TOP).map((e) => ({ fn: e.fn, where: e.where, via: e.via, sampledMs: e.us / 1000, share: share(e.us) }));
  const byProjectFrame = [...projMs.entries()].sort((a, b) => b[1] - a[1]).slice(0, PROFILE_TOP).map(([frame, us]) => ({ frame, sampledMs: us / 1000, share: share(us) }));
  return { process: name, files: files.map((f) => f.slice(f.lastIndexOf('/') + 1)), windowMs: windowUs / 1000, idleMs: idleUs / 1000, busyMs: busyUs / 1000, top, byProjectFrame };
}

/** Main-thread profiles (thread id 0) of `pid` in `dir`: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile. */
function profilesOf(dir: string, pid: number): string[] {
  return readdirSync(dir)
    .filter((f) => new RegExp(`^CPU\\.\\d+\\.\\d+\\.${pid}\\.0\\.\\d+\\.cpuprofile$`).test(f))
    .map((f) => join(dir, f));
}

// ─────────────────────────────────────────────────────────────── reporting ──

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function signed(x: number, digits: number): string {
  return `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x), digits)}`;
}

const GROUP_ORDER = ['edge', 'warpgate', 'origin', 'loadgen'];

function rowLine(label: string, r: Row): string {
  const c = (g: string) => fmt(r.cpuUs[g], 1);
  return `| ${label} | ${fmt(r.msgsPerSec, 0)} | ${fmt(r.mibPerSec, 1)} | ${fmt(r.latencyMs.p50, 3)} | ${fmt(r.latencyMs.p99, 3)} | ${fmt(r.latencyMs.max, 1)} | ${fmt(r.longestGapMs, 1)} | ${GROUP_ORDER.map(c).join(' | ')} | ${fmt(r.serverUs, 1)} | ${fmt(r.allUs, 1)} | ${fmt(r.softirqUs, 1)} | ${fmt(r.foreignCores, 2)} | ${r.faultCount === 0 ? '0' : faultText(r.faults)} |`;
}

const TABLE_HEAD = [
  '| run | msgs/s | MiB/s both ways | p50 ms | p99 ms | max ms | longest gap ms | edge | Warpgate | origin | load gen | server total | all | of which softirq | foreign cores | faults |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
];

function report(s: Settings, loads: Load[], rows: Row[], profiled: Profiled[], notes: string[], problems: string[], warnings: string[], stamp: string): string {
  const out: string[] = [];
  out.push(`# WebSocket bench (bench/websocket.ts), ${stamp}`, '');
  out.push(
    `${s.sockets} WebSockets per run, binary messages echoed by the demo origin; ${s.warmupSeconds} s warm-up, then ${s.seconds} s measured; ${s.rounds} rounds, ` +
      `chain and direct back to back in each (order alternating); edge --workers ${s.workers}. CPU columns are CPU-µs per echo completed, from /proc/<pid>/stat ` +
      `("edge" = primary + workers; "server total" = edge + Warpgate + origin for the chain, the origin for direct; "all" adds the load generator; ` +
      `"of which softirq" is the machine's irq + softirq time per echo, the kernel's loopback TCP receive work, which this kernel charges to whichever process was running, so it is already inside the other columns; ` +
      `"foreign cores" is what else kept the machine busy, beyond 0.1 the window's figures are inflated). ` +
      `Latency from send to echo, every message; "longest gap" is the longest time in the window in which no echo arrived on any socket.`,
    '',
  );
  for (const load of loads) {
    out.push(`## ${load.label} (${load.window} in flight per socket, ${s.sockets * load.window} in all)`, '', ...TABLE_HEAD);
    for (let r = 1; r <= s.rounds; r++) {
      for (const t of ['chain', 'direct'] as const) {
        const row = rows.find((x) => x.load === load.name && x.round === r && x.target === t);
        if (row !== undefined) out.push(rowLine(`round ${r} ${t}`, row));
      }
    }
    const med: Record<TargetName, Row | null> = { chain: null, direct: null };
    for (const t of ['chain', 'direct'] as const) {
      const rs = rows.filter((x) => x.load === load.name && x.target === t);
      if (rs.length === 0) continue;
      const cpuUs: Record<string, number> = {};
      for (const g of GROUP_ORDER) if (rs[0]!.cpuUs[g] !== undefined) cpuUs[g] = median(rs.map((x) => x.cpuUs[g]!));
      const m: Row = {
        round: 0, load: load.name, target: t, opened: 0, echoes: 0,
        msgsPerSec: median(rs.map((x) => x.msgsPerSec)), mibPerSec: median(rs.map((x) => x.mibPerSec)),
        latencyMs: { samples: 0, p50: median(rs.map((x) => x.latencyMs.p50 ?? NaN)), p90: null, p99: median(rs.map((x) => x.latencyMs.p99 ?? NaN)), p99_9: null, max: median(rs.map((x) => x.latencyMs.max ?? NaN)) },
        longestGapMs: median(rs.map((x) => x.longestGapMs)),
        cpuUs, serverUs: median(rs.map((x) => x.serverUs)), allUs: median(rs.map((x) => x.allUs)), softirqUs: median(rs.map((x) => x.softirqUs)), foreignCores: median(rs.map((x) => x.foreignCores)),
        capped: false, faults: { handshake: {}, errors: {}, unexpectedClose: {}, wrongEcho: 0, neverEchoed: 0, closeAnswer: {} }, faultCount: 0,
      };
      const faults = rs.reduce((a, x) => a + x.faultCount, 0);
      out.push(rowLine(`**median ${t}**`, m).replace(/\| 0 \|$/, `| ${faults} in all |`));
      med[t] = m;
    }
    const chain = rows.filter((x) => x.load === load.name && x.target === 'chain');
    const pair = (fn: (r: Row) => number, quietOnly = false) =>
      chain
        .map((c) => {
          const d = rows.find((x) => x.load === load.name && x.target === 'direct' && x.round === c.round);
          if (d === undefined || (quietOnly && (c.foreignCores > OTHER_CORES_WARN || d.foreignCores > OTHER_CORES_WARN))) return NaN;
          return fn(c) / fn(d);
        })
        .filter((x) => Number.isFinite(x));
    if (med.chain !== null && med.direct !== null) {
      const rate = pair((r) => r.msgsPerSec);
      const server = pair((r) => r.serverUs);
      const all = pair((r) => r.allUs);
      out.push(
        '',
        `chain ÷ direct, per round (median): msgs/s ${rate.map((x) => fmt(x, 3)).join(' ')} (${fmt(median(rate), 3)}); ` +
          `server CPU-µs/msg ${server.map((x) => fmt(x, 2)).join(' ')} (${fmt(median(server), 2)}); ` +
          `all incl. load gen ${all.map((x) => fmt(x, 2)).join(' ')} (${fmt(median(all), 2)}). ` +
          `Added by the chain (medians): p50 ${signed(med.chain.latencyMs.p50! - med.direct.latencyMs.p50!, 3)} ms, p99 ${signed(med.chain.latencyMs.p99! - med.direct.latencyMs.p99!, 3)} ms; ` +
          `edge + Warpgate ${fmt(med.chain.cpuUs.edge! + med.chain.cpuUs.warpgate!, 1)} CPU-µs/msg.`,
      );
      const qRate = pair((r) => r.msgsPerSec, true);
      if (qRate.length > 0 && qRate.length < rate.length) {
        const qServer = pair((r) => r.serverUs, true);
        const qAll = pair((r) => r.allUs, true);
        out.push(
          '',
          `Only the rounds whose chain and direct windows were both quiet (≤ ${OTHER_CORES_WARN} foreign cores; ${qRate.length} of ${rate.length}): ` +
            `msgs/s ${qRate.map((x) => fmt(x, 3)).join(' ')} (median ${fmt(median(qRate), 3)}); server CPU-µs/msg ${qServer.map((x) => fmt(x, 2)).join(' ')} (${fmt(median(qServer), 2)}); ` +
            `all incl. load gen ${qAll.map((x) => fmt(x, 2)).join(' ')} (${fmt(median(qAll), 2)}).`,
        );
      }
    }
    out.push('');
  }
  for (const { row: pr, summaries } of profiled) {
    const label = loads.find((l) => l.name === pr.load)?.label ?? loadsOf(s, [pr.load])[0]!.label;
    const cpu = pr.cpuUs.edge! + pr.cpuUs.warpgate!;
    out.push(
      `## CPU profile under the chain's ${label} load`,
      '',
      `A second edge and Warpgate under \`node --cpu-prof --cpu-prof-interval ${PROFILE_INTERVAL_US}\` (the loads one after the other on the same chain), ${s.profileSeconds} s measured after ${s.warmupSeconds} s warm-up; ` +
        `the profiler costs CPU, so these are not the measurement: ${fmt(pr.msgsPerSec, 0)} msgs/s, p50 ${fmt(pr.latencyMs.p50, 3)} ms, p99 ${fmt(pr.latencyMs.p99, 3)} ms, ` +
        `${GROUP_ORDER.map((g) => `${g} ${fmt(pr.cpuUs[g], 1)}`).join(', ')} CPU-µs/msg (of which softirq ${fmt(pr.softirqUs, 1)}), faults ${pr.faultCount === 0 ? '0' : faultText(pr.faults)}. ` +
        `Only the samples taken inside the load window count. V8 samples the main thread by wall time: a sample taken while the thread is in a syscall, or preempted (5 busy processes share 2 cores), ` +
        `is charged to the frame it is in, so "sampled ms" runs above CPU time (compare the busy µs per echo with /proc's figure); shares are of the busy samples.`,
      '',
    );
    for (const p of summaries) {
      const procCpu = p.process === 'Warpgate' ? pr.cpuUs.warpgate! : pr.cpuUs.edge!;
      out.push(
        `### ${p.process} (${p.files.join(', ')})`,
        '',
        `Main thread in the window: ${fmt(p.windowMs, 0)} ms sampled, ${fmt(p.idleMs, 0)} ms idle (epoll_wait), ${fmt(p.busyMs, 0)} ms busy = ${fmt((p.busyMs * 1000) / pr.echoes, 1)} µs per echo ` +
          `(/proc: ${fmt(procCpu, 1)} CPU-µs per echo, all threads; edge + Warpgate ${fmt(cpu, 1)}).`,
        '',
        'Self time by function (a function of Node or V8 with no script names the nearest project function that called it):',
        '',
        '| share | sampled ms | function | where | called from |',
        '|---:|---:|---|---|---|',
      );
      for (const e of p.top) out.push(`| ${fmt(e.share * 100, 1)} % | ${fmt(e.sampledMs, 0)} | \`${e.fn}\` | ${e.where === '' ? '–' : `\`${e.where}\``} | ${e.via === '' ? '–' : `\`${e.via}\``} |`);
      out.push('', 'Each busy sample charged to the nearest project function on its stack (itself plus the Node, V8 and native work it called):', '', '| share | sampled ms | project function |', '|---:|---:|---|');
      for (const e of p.byProjectFrame) out.push(`| ${fmt(e.share * 100, 1)} % | ${fmt(e.sampledMs, 0)} | \`${e.frame}\` |`);
      out.push('');
    }
  }
  out.push('## Notes', '');
  for (const n of notes) out.push(`- ${n}`);
  for (const w of warnings) out.push(`- WARNING: ${w}`);
  for (const p of problems) out.push(`- PROBLEM: ${p}`);
  if (problems.length === 0) out.push('- no problems: every socket opened, no fault in any run');
  return out.join('\n') + '\n';
}

// ──────────────────────────────────────────────────────────────────── main ──

async function main(): Promise<number> {
  const s = settings();
  const loads = loadsOf(s);
  const ticks = clockTicksPerSecond();
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const notes: string[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const rows: Row[] = [];
  const profiled: Profiled[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    process.stderr.write('bench: interrupted; stopping after the current run\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  try {
    const data = mkdtempSync(join(tmpdir(), 'mezu-ws-bench-'));
    dirs.push(data);
    cli(data, ['pki', 'init', '--pool', 'demo']);
    writeFileSync(join(data, 'bench.yaml'), WS_CONFIG);
    cli(data, ['apply', '-f', join(data, 'bench.yaml')]);
    cli(data, ['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL]);
    const token = cli(data, ['sessions', 'create', '--project', 'demo', '--email', BENCH_EMAIL]);
    if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) throw new Error(`bench: sessions create printed something that is not a token: "${token}"`);

    const origin = new Proc('demo origin', [join(ROOT, 'dist/scripts/demo-origin.js'), '--host', '127.0.0.1', '--port', '0'], ROOT);
    procs.push(origin);
    const originPort = port(await origin.waitFor('ready line', READY_TIMEOUT_MS, readyLine), 'port', 'demo origin');
    const chain = await startChain('measured', data, originPort, s.workers, [], procs);
    const headers = { cookie: `${SESSION_COOKIE}=${token}` };
    const targets: Record<TargetName, Target> = {
      chain: { name: 'chain', url: `ws://127.0.0.1:${chain.edgePort}/api/v1/ws`, headers },
      direct: { name: 'direct', url: `ws://127.0.0.1:${originPort}/api/v1/ws`, headers: {} },
    };
    await preflight(targets.chain, targets.direct, notes);
    const groups: Groups = new Map([['edge', chain.edgePids], ['warpgate', chain.warpgatePids], ['origin', [origin.pid]]]);
    const ctx: Ctx = { ticksPerSecond: ticks, quietWaitSeconds: s.quietWaitSeconds, problems, warnings, interrupted: () => interrupted, procs };

    for (let r = 1; r <= s.rounds && !interrupted; r++) {
      const quiet = await waitQuiet(groups, ctx);
      process.stderr.write(`round ${r}: machine ${quiet}\n`);
      if (quiet !== 'quiet' && quiet !== 'not waited for') warnings.push(`round ${r}: machine ${quiet} before the round; measured anyway`);
      for (const load of loads) {
        const order: TargetName[] = r % 2 === 1 ? ['chain', 'direct'] : ['direct', 'chain'];
        for (const t of order) {
          if (interrupted) break;
          rows.push(await measure(s, ticks, targets[t], load, r, groups, problems, warnings));
          for (const p of procs) if (!p.alive) throw p.failure('exited during the run');
        }
      }
    }
    await stopChain(chain, procs, notes, problems);

    if (s.profileSeconds > 0 && !interrupted) {
      const profDir = mkdtempSync(join(tmpdir(), 'mezu-ws-prof-'));
      dirs.push(profDir);
      const flags = ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', String(PROFILE_INTERVAL_US)];
      const pc = await startChain('profiled', data, originPort, s.workers, flags, procs);
      const pt: Target = { name: 'chain', url: `ws://127.0.0.1:${pc.edgePort}/api/v1/ws`, headers };
      const pgroups: Groups = new Map([['edge', pc.edgePids], ['warpgate', pc.warpgatePids], ['origin', [origin.pid]]]);
      const windows: Array<{ load: Load; win: Window }> = [];
      for (const load of loadsOf(s, s.profileLoads)) {
        if (interrupted) break;
        const x = await runLoad(s, pt, load, pgroups, s.profileSeconds);
        const row = profiledRow(x.result, x.win, load, ticks);
        if (row === null) problems.push(`profiled run (${load.label}): the generator gave a result without its start/stop lines`);
        else {
          if (row.faultCount > 0) problems.push(`profiled run (${load.label}): faults: ${faultText(row.faults)}`);
          windows.push({ load, win: x.win });
          profiled.push({ row, summaries: [] });
        }
      }
      await stopChain(pc, procs, notes, problems);
      const workerFiles = pc.edgeWorkers.flatMap((pid) => profilesOf(profDir, pid));
      const wgFiles = profilesOf(profDir, pc.warpgate.pid);
      if (workerFiles.length !== pc.edgeWorkers.length) problems.push(`profiles: ${workerFiles.length} edge worker profile(s) written for ${pc.edgeWorkers.length} workers (${readdirSync(profDir).join(', ')})`);
      if (wgFiles.length !== 1) problems.push(`profiles: ${wgFiles.length} Warpgate profile(s) written (${readdirSync(profDir).join(', ')})`);
      windows.forEach(({ win }, i) => {
        const sums = profiled[i]!.summaries;
        if (workerFiles.length > 0) sums.push(summarize(`edge workers (${pc.edgeWorkers.length}, together)`, workerFiles, win.t0us, win.t1us));
        if (wgFiles.length > 0) sums.push(summarize('Warpgate', wgFiles, win.t0us, win.t1us));
      });
      notes.push(`profiles were written to ${profDir} and removed after the summary`);
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const text = report(s, loads, rows, profiled, notes, problems, warnings, stamp);
  process.stdout.write(text);
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ws-latest.md'), text);
  writeFileSync(join(dir, 'ws-latest.json'), JSON.stringify({ stamp, settings: s, rows, profiled, notes, warnings, problems }, null, 2) + '\n');
  return problems.length > 0 || interrupted ? 1 : 0;
}

if (process.argv[2] === '--generator') {
  let o: GenOptions;
  try {
    o = JSON.parse(process.argv[3] ?? '') as GenOptions;
  } catch {
    process.stderr.write('generator: --generator takes the options as JSON\n');
    process.exit(2);
  }
  generator(o).then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`generator: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
} else {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
