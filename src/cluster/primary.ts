/**
 * The edge primary: supervises only. Forks the workers, respawns a crashed
 * one with exponential backoff, and drains on SIGTERM/SIGINT (workers stop
 * accepting at once, finish in-flight requests, exit within the grace period;
 * stragglers are killed).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { openStore } from '../store/index.js';
import { Signer } from '../identity/index.js';
import { loadUws } from '../../native/uws.js';
import { ENV_OPTIONS, ENV_WORKER_INDEX, ENV_CONSOLE_OPTIONS, type EdgeOptions, type WorkerMessage, type PrimaryMessage } from './options.js';

/** Respawn backoff: 100 ms doubling to 5 s; a worker that lived 30 s resets it. */
const RESPAWN_MIN_MS = 100;
const RESPAWN_MAX_MS = 5_000;
const HEALTHY_AFTER_MS = 30_000;

export async function runPrimary(opts: EdgeOptions): Promise<void> {
  const log = (m: string) => process.stderr.write(`[edge] ${m}\n`);
  // Refuse to start on the JS fallback before forking anything.
  loadUws();
  const store = openStore(opts.dataDir);
  await Signer.ensureKey(store.signingKeys);
  if (store.config.current() === undefined) log('config: no configuration applied yet; every request gets 503 until `mezusphere apply -f FILE`');
  await store.close();

  if (opts.port === 0) opts.port = await freePort(opts.host);
  opts.edgeId = randomBytes(8).toString('hex');

  const slots: Array<{ worker: Worker | null; backoff: number; startedAt: number }> = [];
  let draining = false;
  let readyCount = 0;
  let tunnelPort = opts.tunnelPort;

  const fork = (index: number, respawn: boolean) => {
    const env = {
      [ENV_OPTIONS]: JSON.stringify(opts),
      [ENV_WORKER_INDEX]: String(index),
      MEZU_RESPAWNED: respawn ? '1' : '0',
      // uWS builds from v20.3x read their head limit from here when they load; the pinned 20.30 ignores it
      // (src/front/limits.ts) and the handler enforces --max-head-size itself either way.
      UWS_HTTP_MAX_HEADERS_SIZE: String(opts.maxHeadBytes),
    };
    const w = cluster.fork(env);
    slots[index]!.worker = w;
    slots[index]!.startedAt = Date.now();
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        tunnelPort = m.tunnelPort;
        if (++readyCount === opts.workers) {
          const announce = (consoleInfo: { port: number; url: string; pid: number } | null) => {
            // One machine-readable line: tests and the dev stack wait for it.
            process.stdout.write(JSON.stringify({ event: 'ready', port: opts.port, tunnelPort, workers: slots.map((s) => s.worker?.process.pid), ...(consoleInfo === null ? {} : { console: consoleInfo }) }) + '\n');
            log(`listening on ${opts.scheme}://${opts.host}:${opts.port} with ${opts.workers} workers; tunnel on ${opts.tunnelHost}:${tunnelPort}${consoleInfo === null ? '' : `; Console on ${consoleInfo.url}`}`);
          };
          if (opts.console === null) announce(null);
          else startConsole(opts.console, tunnelPort, announce);
        } else if (readyCount > opts.workers) {
          log(`worker ${index} (pid ${w.process.pid}) respawned and ready`);
        }
      } else if (m.type === 'fatal') {
        log(`worker ${index} failed to start: ${m.code}: ${m.message}`);
        if (m.code === 'MEZU_NATIVE_UWS' || m.code === 'MEZU_STORE_UNAVAILABLE' || m.code === 'MEZU_STORE_NOT_OWNED' || m.code === 'MEZU_STORE_KEY_INVALID') shutdown(1);
      }
    });
    w.on('exit', (code, signal) => {
      slots[index]!.worker = null;
      if (draining) return;
      const s = slots[index]!;
      if (Date.now() - s.startedAt > HEALTHY_AFTER_MS) s.backoff = RESPAWN_MIN_MS;
      log(`worker ${index} exited (${signal ?? code}); respawning in ${s.backoff} ms`);
      const t = setTimeout(() => {
        if (!draining) fork(index, true);
      }, s.backoff);
      t.unref();
      s.backoff = Math.min(s.backoff * 2, RESPAWN_MAX_MS);
    });
  };

  // The Console: one child, forked once the workers are ready, respawned with the workers' backoff.
  let consoleChild: Worker | null = null;
  let consoleBackoff = RESPAWN_MIN_MS;
  const startConsole = (c: NonNullable<EdgeOptions['console']>, tPort: number, announce: (info: { port: number; url: string; pid: number }) => void) => {
    // Unless given, Warpgates enroll to dial the tunnel port the workers actually listen on.
    const fixed = { ...c, tunnelEndpoints: c.tunnelEndpoints.map((e) => (e === `${opts.tunnelHost}:7443` && tPort !== 7443 ? `${opts.tunnelHost}:${tPort}` : e)) };
    const w = cluster.fork({ [ENV_CONSOLE_OPTIONS]: JSON.stringify(fixed) });
    consoleChild = w;
    const startedAt = Date.now();
    let announced = false;
    // The Console prints its own JSON ready line on stdout; the primary reads it through IPC instead.
    w.on('message', (m: { type?: string; port?: number; url?: string; pid?: number }) => {
      if (m?.type === 'console-ready' && !announced) {
        announced = true;
        // Later starts (respawns) keep the port the first one got.
        fixed.port = m.port!;
        announce({ port: m.port!, url: m.url!, pid: m.pid! });
      }
    });
    w.on('exit', (code, signal) => {
      consoleChild = null;
      if (draining) return;
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) consoleBackoff = RESPAWN_MIN_MS;
      log(`console exited (${signal ?? code}); respawning in ${consoleBackoff} ms`);
      const t = setTimeout(() => {
        if (!draining) startConsole(fixed, tPort, (info) => log(`console respawned (pid ${info.pid}) on ${info.url}`));
      }, consoleBackoff);
      t.unref();
      consoleBackoff = Math.min(consoleBackoff * 2, RESPAWN_MAX_MS);
    });
  };

  const shutdown = (exitCode: number) => {
    if (draining) return;
    draining = true;
    (consoleChild as Worker | null)?.process.kill('SIGTERM');
    log(`draining: stop accepting, finishing in-flight requests (grace ${opts.drainGraceMs} ms)`);
    const msg: PrimaryMessage = { type: 'drain', graceMs: opts.drainGraceMs };
    for (const s of slots) s.worker?.send(msg);
    const killAt = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      (consoleChild as Worker | null)?.process.kill('SIGKILL');
    }, opts.drainGraceMs + 1_000);
    const check = setInterval(() => {
      if (slots.every((s) => s.worker === null) && consoleChild === null) {
        clearInterval(check);
        clearTimeout(killAt);
        process.exit(exitCode);
      }
    }, 20);
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  cluster.setupPrimary({ silent: false });
  for (let i = 0; i < opts.workers; i++) {
    slots.push({ worker: null, backoff: RESPAWN_MIN_MS, startedAt: 0 });
    fork(i, false);
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}
