/**
 * The edge primary: supervises only. Forks the workers, respawns a crashed
 * one with full-jitter exponential backoff, and drains on SIGTERM/SIGINT
 * (workers stop accepting at once, finish in-flight requests, exit within the
 * grace period; stragglers are killed).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { openStore, bootstrapReplica, type Store } from '../store/index.js';
import { writeSettings, type FollowHandle } from '../replicate/index.js';
import { Signer } from '../identity/index.js';
import { loadUws } from '../../native/uws.js';
import { systemClock, type Timers } from '../runtime/index.js';
import { Respawner } from './respawn.js';
import { NodeAdvertiser, defaultAdvertise } from './advertise.js';
import { MetricsAggregator } from './metrics.js';
import { TrafficRecorder, TRAFFIC_EVERY_MS, TRAFFIC_MINUTES } from './traffic.js';
import { createLog, serveMetrics, type MetricsListener } from '../runtime/index.js';
import { ENV_OPTIONS, ENV_WORKER_INDEX, ENV_CONSOLE_OPTIONS, type EdgeOptions, type WorkerMessage, type PrimaryMessage } from './options.js';

export async function runPrimary(opts: EdgeOptions, clock: Timers = systemClock): Promise<void> {
  const log = createLog('edge');
  // Refuse to start on the JS fallback before forking anything.
  loadUws();
  // Every process on this data directory (workers, Console, CLI) replicates through the same settings.
  if (opts.nats !== null) {
    writeSettings(opts.dataDir, opts.nats);
    // A new node starts from the newest snapshot, when there is one, rather than replaying the journal.
    const t0 = Date.now();
    try {
      const head = await bootstrapReplica(opts.dataDir, opts.nats, log);
      if (head !== null) log(`replica: node ${opts.nats.node} installed snapshot ${head.id} (sequence ${head.seq}, ${(head.size / 1048576).toFixed(1)} MiB from node ${head.node}) in ${Date.now() - t0} ms; catching up from there`);
    } catch (err) {
      log(`replica: no snapshot installed (${(err as Error).message}); replaying the journal instead`, { level: 'warn' });
    }
  }
  const store = openStore(opts.dataDir);
  let follower: FollowHandle | null = null;
  if (store.replica !== null) {
    // A node reports ready only once it holds everything the stream held when it started.
    await catchUpBeforeReady(store, log);
    follower = store.replica.follow((stale) => {
      const msg: PrimaryMessage = { type: 'replica', stale };
      for (const s of slots) if (s.worker?.isConnected()) s.worker.send(msg);
    });
  } else await Signer.ensureKey(store.signingKeys);
  if (store.config.current() === undefined) log('config: no configuration applied yet; every request gets 503 until `mezusphere apply -f FILE`');
  // The primary keeps its store only while it follows the stream or writes the Console's traffic
  // figures (below, only while counting).
  if (follower === null && opts.metricsPort === null) await store.close();

  if (opts.port === 0) opts.port = await freePort(opts.host);
  opts.edgeId = randomBytes(8).toString('hex');

  const slots: Array<{ worker: Worker | null; keeper: Respawner }> = [];
  let draining = false;
  let readyCount = 0;
  let tunnelPort = opts.tunnelPort;
  // A replicated node tells every node's Console where Warpgates dial it, once its workers listen.
  let advertiser: NodeAdvertiser | null = null;
  let withdrawn = true;
  const aggregator = new MetricsAggregator(() => {
    const out: Array<{ index: number; worker: Worker }> = [];
    slots.forEach((s, index) => {
      if (s.worker !== null && s.worker.isConnected()) out.push({ index, worker: s.worker });
    });
    return out;
  }, opts.dataDir);
  // The Console's traffic figures (src/cluster/traffic.ts): the workers' counters every few seconds,
  // per minute, into the store. Nothing is counted with --metrics-port off, so nothing is recorded then.
  let trafficTimer: NodeJS.Timeout | null = null;
  if (opts.metricsPort !== null) {
    const recorder = new TrafficRecorder(opts.edgeId, Date.now());
    let busy = false;
    let pruned = 0;
    trafficTimer = setInterval(() => {
      if (busy || draining) return;
      busy = true;
      void aggregator
        .traffic()
        .then(async ({ replies, pids }) => {
          const now = Date.now();
          await store.traffic.put(recorder.add(replies, pids, now));
          // Edges that stopped: their record goes once its newest minute is past the hour.
          if (now - pruned > 60_000) {
            pruned = now;
            await store.traffic.prune(now - (TRAFFIC_MINUTES + 1) * 60_000);
          }
        })
        .catch((err: Error) => log(`metrics: traffic figures not written: ${err.message}`, { level: 'warn' }))
        .finally(() => {
          busy = false;
        });
    }, TRAFFIC_EVERY_MS);
    trafficTimer.unref();
  }
  let metrics: MetricsListener | null = null;
  const startMetrics = async (): Promise<void> => {
    if (opts.metricsPort === null) return;
    try {
      metrics = await serveMetrics(opts.metricsHost, opts.metricsPort, () => aggregator.collect(), log);
    } catch (err) {
      // Serving traffic matters more than observing it: the edge runs on, without a metrics listener.
      log(`metrics: cannot listen on ${opts.metricsHost}:${opts.metricsPort} (${(err as Error).message}); no metrics listener (--metrics-port PORT, or off)`);
    }
  };

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
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready' && follower?.stale === true) w.send({ type: 'replica', stale: true } satisfies PrimaryMessage);
      if (m.type === 'ready') {
        tunnelPort = m.tunnelPort;
        if (++readyCount === opts.workers) {
          const announce = (consoleInfo: { port: number; url: string; pid: number } | null) => {
            const mi = metrics as MetricsListener | null;
            // One machine-readable line: tests and the dev stack wait for it.
            process.stdout.write(JSON.stringify({ event: 'ready', port: opts.port, tunnelPort, workers: slots.map((s) => s.worker?.process.pid), ...(consoleInfo === null ? {} : { console: consoleInfo }), ...(mi === null ? {} : { metrics: { port: mi.port, url: mi.url } }) }) + '\n');
            log(`listening on ${opts.scheme}://${opts.host}:${opts.port} with ${opts.workers} workers; tunnel on ${opts.tunnelHost}:${tunnelPort}${consoleInfo === null ? '' : `; Console on ${consoleInfo.url}`}${mi === null ? '' : `; metrics on ${mi.url}`}`);
          };
          if (follower !== null && !draining) {
            advertiser = new NodeAdvertiser(store.nodes, { node: opts.nats!.node, endpoint: opts.tunnelAdvertise ?? defaultAdvertise(opts.tunnelHost, tunnelPort), edgeId: opts.edgeId }, log, clock);
            advertiser.start();
            withdrawn = false;
          }
          void startMetrics().then(() => {
            if (opts.console === null) announce(null);
            else startConsole(opts.console, tunnelPort, announce);
          });
        } else if (readyCount > opts.workers) {
          log(`worker ${index} (pid ${w.process.pid}) respawned and ready`);
        }
      } else if (m.type === 'metrics' || m.type === 'traffic') {
        aggregator.reply(m);
      } else if (m.type === 'fatal') {
        log(`worker ${index} failed to start: ${m.code}: ${m.message}`);
        if (m.code === 'MEZU_NATIVE_UWS' || m.code === 'MEZU_STORE_UNAVAILABLE' || m.code === 'MEZU_STORE_NOT_OWNED' || m.code === 'MEZU_STORE_KEY_INVALID') shutdown(1);
      }
    });
    w.on('exit', (code, signal) => {
      slots[index]!.worker = null;
      slots[index]!.keeper.exited(signal ?? code);
    });
  };

  // The Console: one child, forked once the workers are ready, respawned with the workers' backoff.
  let consoleChild: Worker | null = null;
  let consoleKeeper: Respawner | null = null;
  const startConsole = (c: NonNullable<EdgeOptions['console']>, tPort: number, announce: (info: { port: number; url: string; pid: number }) => void) => {
    // Unless given, Warpgates enroll to dial the tunnel port the workers actually listen on.
    const fixed = { ...c, tunnelEndpoints: c.tunnelEndpoints.map((e) => (e === `${opts.tunnelHost}:7443` && tPort !== 7443 ? `${opts.tunnelHost}:${tPort}` : e)) };
    consoleKeeper = new Respawner('console', (respawn) => forkConsole(fixed, respawn ? (info) => log(`console respawned (pid ${info.pid}) on ${info.url}`) : announce), log, clock);
    consoleKeeper.start();
  };
  const forkConsole = (fixed: NonNullable<EdgeOptions['console']>, announce: (info: { port: number; url: string; pid: number }) => void) => {
    const w = cluster.fork({ [ENV_CONSOLE_OPTIONS]: JSON.stringify(fixed) });
    consoleChild = w;
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
      consoleKeeper?.exited(signal ?? code);
    });
  };

  const shutdown = (exitCode: number) => {
    if (draining) return;
    draining = true;
    for (const s of slots) s.keeper.stop();
    consoleKeeper?.stop();
    if (trafficTimer !== null) clearInterval(trafficTimer);
    // First of all: a draining node is no longer handed to enrolling Warpgates.
    void (advertiser as NodeAdvertiser | null)?.stop().finally(() => (withdrawn = true));
    (consoleChild as Worker | null)?.process.kill('SIGTERM');
    void (metrics as MetricsListener | null)?.close();
    log(`draining: stop accepting, finishing in-flight requests (grace ${opts.drainGraceMs} ms)`);
    const msg: PrimaryMessage = { type: 'drain', graceMs: opts.drainGraceMs };
    for (const s of slots) s.worker?.send(msg);
    const killAt = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      (consoleChild as Worker | null)?.process.kill('SIGKILL');
    }, opts.drainGraceMs + 1_000);
    const check = setInterval(() => {
      if (slots.every((s) => s.worker === null) && consoleChild === null && withdrawn) {
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
    slots.push({ worker: null, keeper: new Respawner(`worker ${i}`, (respawn) => fork(i, respawn), log, clock) });
    slots[i]!.keeper.start();
  }
}

/**
 * Applies the stream's tail before the node takes traffic, retrying while
 * JetStream cannot be reached (a restart during an outage waits for it: a
 * replica of unknown age must not serve).
 */
async function catchUpBeforeReady(store: Store, log: (msg: string, f?: { level?: 'warn' }) => void): Promise<void> {
  const r = store.replica!;
  for (let attempt = 0; ; attempt++) {
    try {
      const before = r.applied();
      await r.catchUp();
      // A replicated write: nodes starting together on an empty stream race for it, and the
      // expected-sequence check lets one key through (the others find it when they retry).
      await Signer.ensureKey(store.signingKeys);
      log(`replica: node ${r.settings.node} caught up with the stream at sequence ${r.applied()} (${r.applied() - before} entries applied)`);
      return;
    } catch (err) {
      if (attempt % 10 === 0) log(`replica: catching up failed (${(err as Error).message}); retrying`, { level: 'warn' });
      await new Promise((res) => setTimeout(res, Math.min(2_000, 200 * (attempt + 1))));
    }
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
