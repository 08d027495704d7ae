/**
 * An edge worker: one uWS app on the shared port (SO_REUSEPORT: the kernel
 * shards connections across workers), its own tunnel listener end (node:cluster
 * round-robin), the compiled config and key set, refreshed by polling the
 * store. Config snapshots are swapped whole; a config that fails to compile
 * never replaces the one being served.
 */
import { readFileSync } from 'node:fs';
import { loadUws, type ListenSocket } from '../../native/uws.js';
import { openStore } from '../store/index.js';
import { parseConfigYaml, compileConfig, type CompiledConfig } from '../config/index.js';
import { Assertions, Signer } from '../identity/index.js';
import { Authenticator, DEVICE_COOKIE_PLAIN, DEVICE_COOKIE_SECURE, SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE } from '../session/index.js';
import { TunnelServer } from '../tunnel/index.js';
import { AccessLog, EdgeSpans, createFront, createWebSocket, RequestMetrics } from '../front/index.js';
import { ProcessMetrics, SpanExporter, createLog, parseOtlpEndpoint, type Log } from '../runtime/index.js';
import { LoginCounts, workerFamilies, workerTraffic, type ScrapeReply } from './metrics.js';
import { LiveRegistry, feedPoll, type LiveStream } from '../authorize/index.js';
import { setupLogin } from '../login/index.js';
import type { EdgeOptions, PrimaryMessage, WorkerMessage } from './options.js';
import { codeOf } from '../errors/index.js';
import { TunnelGuard } from '../enroll/index.js';

/** Each worker rewrites its tunnel report this often (the Console treats older reports as a stopped edge). */
export const TUNNEL_STATUS_EVERY_MS = 5_000;

/** How long a respawned worker waits for its tunnels before it takes traffic. */
export const RESPAWN_TUNNEL_WAIT_MS = 10_000;

export async function runWorker(opts: EdgeOptions, index: number): Promise<void> {
  const log = createLog('edge', index);
  const send = (m: WorkerMessage) => process.send?.(m);
  try {
    await start(opts, index, log, send);
  } catch (err) {
    send({ type: 'fatal', worker: index, code: codeOf(err), message: (err as Error).message });
    log(`fatal: ${(err as Error).message}`, { level: 'error' });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 50);
  }
}

async function start(opts: EdgeOptions, index: number, log: Log, send: (m: WorkerMessage) => void): Promise<void> {
  const uws = loadUws();
  const store = openStore(opts.dataDir);
  const signer = new Signer(store.signingKeys, opts.issuer);
  signer.reload();

  let current: CompiledConfig | null = null;
  let lastSeenVersion = -1;
  const loadConfig = (): boolean => {
    const stored = store.config.current();
    if (stored === undefined || stored.version === lastSeenVersion) return false;
    lastSeenVersion = stored.version;
    // Re-validate the stored source: the store may hold a version written by an older or newer edge.
    const v = parseConfigYaml(stored.source);
    if (!v.ok) {
      log(`config: version ${stored.version} in the store is invalid; still serving version ${current?.version ?? 'none'}: ${v.problems.map((p) => `${p.at}: ${p.message}`).join('; ')}`);
      return false;
    }
    try {
      current = compileConfig(v.config, stored.version);
      return true;
    } catch (err) {
      log(`config: version ${stored.version} failed to compile; still serving version ${current?.version ?? 'none'}: ${(err as Error).message}`);
      return false;
    }
  };
  loadConfig();

  // Static CAs (--tunnel-ca) plus every project's tunnel CA (enrolled Warpgates, src/enroll).
  const guard = new TunnelGuard(store, () => current);
  const staticCas = opts.tunnelCaFiles.map((f) => readFileSync(f, 'utf8'));
  let statusTimer: NodeJS.Timeout | null = null;
  // Set once the live registry exists (below); a report before that has no stream to count.
  let liveStats: LiveRegistry | null = null;
  const reportTunnels = () => {
    if (statusTimer !== null) return;
    statusTimer = setTimeout(() => {
      statusTimer = null;
      const list = tunnel.tunnels().map((t) => ({ warpgateId: t.warpgateId, version: t.version, pool: t.pool, keyId: t.credential, since: t.since }));
      store.tunnelStatus.put({ edgeId: opts.edgeId, worker: index, pid: process.pid, updatedAt: Date.now(), tunnels: list, ...(liveStats === null ? {} : { live: liveStats.stats() }) }).catch((err: Error) => log(`tunnel: status report failed: ${err.message}`));
    }, 100);
    statusTimer.unref();
  };
  // A replicated node tells its Warpgates of every live node (the hello), so a node that joins gets
  // tunnels within a poll rather than at each Warpgate's next renewal (~40 min).
  const liveEndpoints = (): string[] => (store.replica === null ? [] : [...new Set(store.nodes.live(Date.now()).map((n) => n.endpoint))]);
  let nodeEndpoints = liveEndpoints();
  const tunnel = new TunnelServer({
    host: opts.tunnelHost,
    port: opts.tunnelPort,
    key: readFileSync(opts.tunnelKeyFile, 'utf8'),
    cert: readFileSync(opts.tunnelCertFile, 'utf8'),
    ca: [...staticCas, ...guard.projectCas()],
    admit: (socket, pool) => guard.admit(socket, pool),
    live: (keyId) => guard.live(keyId),
    onTunnelsChanged: reportTunnels,
    edgeId: opts.edgeId,
    worker: index,
    workers: opts.workers,
    issuer: opts.issuer,
    projectsOf: (pool) => {
      const out: string[] = [];
      const c = current as CompiledConfig | null;
      if (c !== null) for (const p of c.projects.values()) if (p.upstream === pool) out.push(p.id);
      return out;
    },
    jwks: () => signer.jwks(),
    endpoints: () => nodeEndpoints,
    responseTimeoutMs: opts.responseTimeoutMs,
    limits: { pingIntervalMs: opts.tunnelPingMs, pingTimeoutMs: opts.tunnelPingTimeoutMs },
    log,
  });
  const tunnelPort = await tunnel.listen();

  if (process.env.MEZU_RESPAWNED === '1') {
    // A respawned worker joins the port only once the Warpgates have redialed
    // it (or after a bound): until then the other workers keep serving, and
    // requests the kernel would hand this worker would get 502 for lack of a tunnel.
    const pools = new Set<string>();
    const c = current as CompiledConfig | null;
    if (c !== null) for (const p of c.projects.values()) pools.add(p.upstream);
    const deadline = Date.now() + RESPAWN_TUNNEL_WAIT_MS;
    while (Date.now() < deadline && [...pools].some((p) => tunnel.pools.pick(p) === null)) await new Promise((r) => setTimeout(r, 25));
  }

  const inflight = { n: 0 };
  const draining = { on: false };
  // Told by the primary, which follows the stream (src/replicate/replica.ts).
  const replica = { stale: false };
  // Metrics (src/cluster/metrics.ts): counted only when the primary serves them.
  const counting = opts.metricsPort !== null;
  const requestMetrics = counting ? new RequestMetrics() : null;
  const logins = new LoginCounts();
  // OpenTelemetry spans (src/front/spans.ts), exported in batches from this worker.
  const otlpUrl = opts.otlpEndpoint === null ? null : parseOtlpEndpoint(opts.otlpEndpoint);
  const exporter = otlpUrl === null ? null : new SpanExporter({ endpoint: otlpUrl, service: 'mezusphere-edge', resource: [['service.instance.id', `${opts.edgeId}-w${index}`]], metricsPrefix: 'mezu_edge', log });
  if (exporter !== null && index === 0) log(`otlp: exporting spans to ${otlpUrl!.href} (new traces sampled at ${opts.otlpSample})`);
  const login = await setupLogin({
    store,
    scheme: opts.scheme,
    sessionCookie: opts.scheme === 'https' ? SESSION_COOKIE_SECURE : SESSION_COOKIE_PLAIN,
    deviceCookie: opts.scheme === 'https' ? DEVICE_COOKIE_SECURE : DEVICE_COOKIE_PLAIN,
    hashThreads: opts.hashThreads,
    smtpUrl: opts.smtpUrl,
    mailFrom: opts.mailFrom,
    config: () => current,
    log,
    sweep: index === 0,
    ...(counting ? { onEvent: (project: string, type: string, reason: string | null) => logins.add(project, type, reason) } : {}),
  });
  if (index === 0) log(`login: hosted pages on /_mezu/; mail goes to the ${login.mailer.description}`);
  const auth = new Authenticator(store);
  // Continuous authorization of open WebSockets and streamed responses (src/authorize/live.ts).
  const live = new LiveRegistry({
    auth,
    config: () => current,
    poll: feedPoll(store.changes),
    now: Date.now,
    audit: (s: LiveStream, reason: string) => auditEnded(store, index, s, reason).catch((err: Error) => log(`live: audit write failed: ${err.message}`)),
    log,
  });
  live.start();
  liveStats = live;
  const front = {
    config: () => current,
    auth,
    assertions: new Assertions(store, signer),
    signer,
    scope: { pools: tunnel.pools, scheme: opts.scheme, inflight, clients: new Map(), routes: new Map(), live, metrics: requestMetrics, access: opts.accessLogRate > 0 ? new AccessLog(opts.accessLogRate, log) : null, spans: exporter === null ? null : new EdgeSpans(exporter, opts.otlpSample), log },
    clientInflight: opts.clientInflight,
    workers: opts.workers,
    cookieName: opts.scheme === 'https' ? SESSION_COOKIE_SECURE : SESSION_COOKIE_PLAIN,
    deviceCookieName: opts.scheme === 'https' ? DEVICE_COOKIE_SECURE : DEVICE_COOKIE_PLAIN,
    draining,
    replica,
    pages: login.pages,
    maxHeadBytes: opts.maxHeadBytes,
    log,
  };
  const handler = createFront(front);

  const app = uws.App();
  // WebSocket handshakes (GET with a Sec-WebSocket-Key) reach the behavior's upgrade; every other
  // request, and a GET that names no WebSocket in Upgrade, runs through the same stages in `handler`.
  app.ws('/*', createWebSocket({ ...front, live }));
  app.any('/*', handler);
  const listenSocket = await new Promise<ListenSocket>((resolve, reject) => {
    app.listen(opts.host, opts.port, (s) => (s ? resolve(s) : reject(new Error(`edge: cannot listen on ${opts.host}:${opts.port}`))));
  });

  const poll = setInterval(() => {
    try {
      const cfgChanged = loadConfig();
      // First, so that nothing failing below skips it: the open streams are judged by the config
      // now served (the next poll would not see this version as new again).
      if (cfgChanged) live.configChanged();
      const keysChanged = signer.reload();
      const endpoints = liveEndpoints();
      // A node gone stale is not told of (the Warpgates keep what they have: they never drop one for it).
      const nodesJoined = endpoints.some((e) => !nodeEndpoints.includes(e));
      nodeEndpoints = endpoints;
      if (cfgChanged || keysChanged || nodesJoined) tunnel.broadcastHello();
      if (cfgChanged) log(`config: now serving version ${(current as CompiledConfig | null)?.version}`);
      if (cfgChanged && current !== null) login.onConfig(current);
      // Enrolled Warpgates: a new project CA is accepted from now on; a revoked key's tunnels close now.
      if (guard.reloadCas()) tunnel.setClientCas([...staticCas, ...guard.projectCas()]);
      tunnel.revalidate((keyId) => guard.live(keyId));
    } catch (err) {
      log(`config: poll failed: ${(err as Error).message}`);
    }
  }, opts.configPollMs);
  poll.unref();
  reportTunnels();
  const heartbeat = setInterval(reportTunnels, TUNNEL_STATUS_EVERY_MS);
  heartbeat.unref();

  const processMetrics = requestMetrics === null ? null : new ProcessMetrics('mezu_edge', `edge-worker-${index}`);
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type === 'metrics') {
      if (requestMetrics === null || processMetrics === null) return;
      const families = workerFamilies({ index, requests: requestMetrics, live, tunnels: () => tunnel.stats(), logins, process: processMetrics });
      if (exporter !== null) families.push(...exporter.families());
      const reply: ScrapeReply = { type: 'metrics', id: m.id, worker: index, families };
      send(reply);
      return;
    }
    if (m?.type === 'traffic') {
      if (requestMetrics !== null) send(workerTraffic(m.id, { index, requests: requestMetrics, logins }));
      return;
    }
    if (m?.type === 'replica') {
      replica.stale = m.stale;
      return;
    }
    if (m?.type !== 'drain' || draining.on) return;
    draining.on = true;
    // Stop accepting at once; let in-flight requests finish within the grace period:
    // proxied ones and hosted pages (a login being hashed, its session being committed).
    uws.us_listen_socket_close(listenSocket);
    // Open WebSockets are told the edge is going away (1001); their streams then finish with the tunnels.
    live.forEachWebSocket((s) => s.revoke('MEZU_DRAINING', 1001));
    tunnel.stopAccepting();
    // The open tunnels stay until the in-flight requests are done: a request decided in the same
    // event-loop turn as this message opens its stream after it (startAll, a setImmediate), and an
    // upload opens its stream on its first body bytes; closing the tunnels here answered those 502
    // (seen under a full test run's load, test/integration/lifecycle.test.ts).
    const deadline = Date.now() + m.graceMs;
    const check = setInterval(() => {
      if ((inflight.n <= 0 && login.pages.inFlight <= 0) || Date.now() >= deadline) {
        clearInterval(check);
        tunnel.close(true);
        if (exporter === null) process.exit(0);
        // The spans still queued go out in one last batch, waited for at most a second.
        setTimeout(() => process.exit(0), 1_000).unref();
        void exporter.close().finally(() => process.exit(0));
      }
    }, 25);
  });
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C reaches the whole process group: the primary coordinates the drain, so a worker
  // ignores the signals itself and waits for the primary's 'drain' message.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);

  send({ type: 'ready', worker: index, port: opts.port, tunnelPort });
}

/** One audit record per stream that continuous authorization ended (the session's public id, never its token). */
async function auditEnded(store: ReturnType<typeof openStore>, worker: number, s: LiveStream, reason: string): Promise<void> {
  const p = s.principal;
  const target = p === null ? { type: 'client', id: s.liveClient } : p.key !== null ? { type: 'key', id: p.key.id } : { type: 'session', id: p.session!.id };
  await store.audit.append({
    at: Date.now(),
    actor: { type: 'system', id: `edge-worker-${worker}`, name: 'continuous authorization' },
    action: s.isWebSocket ? 'websocket.end' : 'stream.end',
    target,
    projectId: s.liveProject,
    details: { reason, request_id: s.liveRequestId, user: p?.user?.id ?? null, service_account: p?.account?.id ?? null },
    ip: s.liveClient,
  });
}
