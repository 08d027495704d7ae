#!/usr/bin/env node
/**
 * The hostile tenant of the two-tenant scenario (bench/isolation.ts), in a
 * process of its own so that its work does not slow the well-behaved
 * client's event loop in the bench process (it still shares the cores, as
 * a second tenant on the same machine would), and so that its CPU can be
 * read from /proc/<pid>/stat apart from everyone else's.
 *
 * From one loopback source address (--local-address; the edge's per-client
 * limits are per address), for --seconds, starting at --start-at:
 *   (a) pipeliner: --pipeline-connections connections, each writing
 *       --pipeline-depth requests back to back (bench/rawload.ts, never
 *       re-sent); the edge's front end closes such connections, and a new one
 *       is opened in its place, at most --pipeline-connects-per-second;
 *   (b) aborter: GET …/slow?delay=--delay-ms (bench/bench-origin.ts) with a
 *       session, then a TCP reset after a random 1..--abort-after-ms ms, i.e.
 *       while the request is on its way or waiting at the origin; started at
 *       most --abort-rate per second, at most --abort-concurrency at a time.
 *       A reset, not a FIN: the client side keeps no TIME_WAIT socket, so
 *       thousands per second do not run out of ephemeral ports. An answer
 *       that comes first (e.g. 429 MEZU_CLIENT_BUSY) is counted by status.
 *
 * Bounded: requests and connections are capped at rate × seconds; the load
 * ends after the window plus at most 3 s. Prints {"event":"ready"} once
 * parsed, then one {"event":"result",…} line, then waits for SIGTERM.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { rawLoad, type RawLoadOutcome } from './rawload.js';

interface HostileOptions {
  base: string;
  cookie: string;
  localAddress: string;
  seconds: number;
  startAt: number;
  pipelineConnections: number;
  pipelineDepth: number;
  pipelineConnectsPerSecond: number;
  abortRate: number;
  abortConcurrency: number;
  abortAfterMs: number;
  delayMs: number;
}

export interface AbortOutcome {
  /** Requests written on a connection. */
  started: number;
  /** Reset by us before any answer: the cancellations the edge and the Warpgate must absorb. */
  aborted: number;
  /** Answered before the reset, by status (e.g. 429 at the per-client cap). */
  answered: Record<string, number>;
  /** Connections the server closed before our reset and before an answer. */
  closedByServer: number;
  connectErrors: number;
  errorKinds: Record<string, number>;
  elapsedSeconds: number;
  /** Most aborting connections open at once. */
  maxOpen: number;
}

export interface HostileResult {
  event: 'result';
  pid: number;
  options: Omit<HostileOptions, 'cookie'>;
  pipeline: Omit<RawLoadOutcome, 'latencyMs'> | null;
  abort: AbortOutcome | null;
  /** Whether the load began later than --start-at (slow process start on a busy machine), ms. */
  startedLateMs: number;
}

function int(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}; got "${v}"`);
  return n;
}

function parse(): HostileOptions {
  const v = parseArgs({
    options: {
      base: { type: 'string' },
      'cookie-file': { type: 'string' },
      'local-address': { type: 'string' },
      seconds: { type: 'string' },
      'start-at': { type: 'string' },
      'pipeline-connections': { type: 'string' },
      'pipeline-depth': { type: 'string' },
      'pipeline-connects-per-second': { type: 'string' },
      'abort-rate': { type: 'string' },
      'abort-concurrency': { type: 'string' },
      'abort-after-ms': { type: 'string' },
      'delay-ms': { type: 'string' },
    },
    strict: true,
  }).values;
  if (v.base === undefined || !/^http:\/\/127\.0\.0\.1:\d+$/.test(v.base)) throw new Error('--base http://127.0.0.1:PORT is required (loopback only)');
  if (v['cookie-file'] === undefined) throw new Error('--cookie-file is required');
  const localAddress = v['local-address'] ?? '127.0.0.2';
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(localAddress)) throw new Error('--local-address must be a 127.x.y.z address');
  return {
    base: v.base,
    cookie: readFileSync(v['cookie-file'], 'utf8').trim(),
    localAddress,
    seconds: int(v.seconds, 'seconds', 5, 1, 300),
    startAt: v['start-at'] === undefined ? Date.now() : Number(v['start-at']),
    pipelineConnections: int(v['pipeline-connections'], 'pipeline-connections', 4, 0, 256),
    pipelineDepth: int(v['pipeline-depth'], 'pipeline-depth', 10, 1, 100),
    pipelineConnectsPerSecond: int(v['pipeline-connects-per-second'], 'pipeline-connects-per-second', 500, 1, 10_000),
    abortRate: int(v['abort-rate'], 'abort-rate', 2_000, 0, 20_000),
    abortConcurrency: int(v['abort-concurrency'], 'abort-concurrency', 512, 1, 4_096),
    abortAfterMs: int(v['abort-after-ms'], 'abort-after-ms', 20, 1, 10_000),
    delayMs: int(v['delay-ms'], 'delay-ms', 500, 1, 60_000),
  };
}

/** The aborter: connections opened at a bounded rate, each reset mid-request. */
function aborter(o: HostileOptions): Promise<AbortOutcome> {
  const u = new URL(o.base);
  const host = u.hostname;
  const port = Number(u.port);
  const req = Buffer.from(`GET /api/v1/slow?delay=${o.delayMs} HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: ${o.cookie}\r\n\r\n`, 'latin1');
  const cap = o.abortRate * o.seconds;
  const out: AbortOutcome = { started: 0, aborted: 0, answered: {}, closedByServer: 0, connectErrors: 0, errorKinds: {}, elapsedSeconds: 0, maxOpen: 0 };
  const open = new Set<net.Socket>();
  let launched = 0;
  let tokens = 0;
  let last = Date.now();
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + o.seconds * 1_000;

  const launch = () => {
    launched++;
    const s = net.connect({ host, port, localAddress: o.localAddress, noDelay: true });
    open.add(s);
    if (open.size > out.maxOpen) out.maxOpen = open.size;
    let connected = false;
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const settle = () => {
      settled = true;
      if (timer !== null) clearTimeout(timer);
    };
    s.on('connect', () => {
      connected = true;
      s.write(req);
      out.started++;
      timer = setTimeout(() => {
        if (settled) return;
        settle();
        out.aborted++;
        s.resetAndDestroy();
      }, 1 + Math.floor(Math.random() * o.abortAfterMs));
    });
    s.on('data', (chunk: Buffer) => {
      if (settled) return;
      settle();
      const status = chunk.toString('latin1', 9, 12);
      out.answered[status] = (out.answered[status] ?? 0) + 1;
      s.resetAndDestroy();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      const k = err.code ?? err.message;
      out.errorKinds[k] = (out.errorKinds[k] ?? 0) + 1;
    });
    s.on('close', () => {
      open.delete(s);
      if (!connected) out.connectErrors++;
      else if (!settled) {
        settle();
        out.closedByServer++;
      }
    });
  };

  return new Promise((resolve) => {
    // A 2 ms tick releases what the rate allows; a token bucket of at most 10 ms of rate keeps it smooth.
    const tick = setInterval(() => {
      const now = Date.now();
      tokens = Math.min(o.abortRate / 100, tokens + ((now - last) * o.abortRate) / 1000);
      last = now;
      if (now >= deadline || launched >= cap) {
        clearInterval(tick);
        // Let the last ones reach their reset, then end whatever is left.
        const grace = setTimeout(done, Math.min(2_000, o.abortAfterMs + 500));
        const poll = setInterval(() => {
          if (open.size === 0) {
            clearTimeout(grace);
            clearInterval(poll);
            done();
          }
        }, 20);
        return;
      }
      while (tokens >= 1 && open.size < o.abortConcurrency && launched < cap) {
        tokens--;
        launch();
      }
    }, 2);
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      for (const s of open) s.destroy();
      out.elapsedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve(out);
    };
  });
}

async function main(): Promise<void> {
  const o = parse();
  process.stdout.write(JSON.stringify({ event: 'ready', pid: process.pid }) + '\n');
  const wait = o.startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const startedLateMs = Math.max(0, Date.now() - o.startAt);
  const [pipeline, abort] = await Promise.all([
    o.pipelineConnections === 0
      ? Promise.resolve(null)
      : rawLoad({
          url: `${o.base}/api/v1/items`,
          headers: { host: '127.0.0.1', cookie: o.cookie },
          connections: o.pipelineConnections,
          depth: o.pipelineDepth,
          seconds: o.seconds,
          maxRequests: o.pipelineConnectsPerSecond * (o.seconds + 1) * o.pipelineDepth + o.pipelineConnections * o.pipelineDepth * 1_000,
          localAddress: o.localAddress,
          timeoutMs: 5_000,
          reconnect: true,
          maxConnectsPerSecond: o.pipelineConnectsPerSecond,
          maxConnects: o.pipelineConnections + o.pipelineConnectsPerSecond * (o.seconds + 1),
          checkOrder: false,
          keepSamples: false,
        }).then(({ latencyMs: _unused, ...rest }) => rest),
    o.abortRate === 0 ? Promise.resolve(null) : aborter(o),
  ]);
  const { cookie: _secret, ...options } = o;
  const result: HostileResult = { event: 'result', pid: process.pid, options, pipeline, abort, startedLateMs };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/**
 * After its result the process stays (idle) until the bench stops it by pid,
 * at most this long: exiting on its own could race the bench's last CPU
 * reading of the window, and a pid gone by then has no CPU to read.
 */
const LINGER_MS = 30_000;

if (require.main === module) {
  main().then(
    () => setTimeout(() => process.exit(0), LINGER_MS),
    (err: Error) => {
      process.stderr.write(`hostile: ${err.message}\n`);
      process.exit(2);
    },
  );
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}
