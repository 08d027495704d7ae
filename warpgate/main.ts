#!/usr/bin/env node
/**
 * `warpgate`: the agent that runs on an origin host, dials the edge and
 * forwards verified requests to the local application.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AssertionVerifier } from '../wire/index.js';
import { Agent, type AgentOptions } from './agent.js';
import { AgentSet, parseEdgeList, type MakeAgent } from './agents.js';
import { LeanForwarder } from './lean-forward.js';
import { OriginClient } from './origin/client.js';
import { DEFAULT_ORIGIN_WEBSOCKETS, WebSocketRelay } from './websocket.js';
import { createLog, ENV_LOG_FORMAT, parseDuration, parseLogFormat, parseOtlpEndpoint, ProcessMetrics, renderText, serveMetrics, SpanExporter, type MetricsListener } from '../src/runtime/index.js';
import { WarpgateMetrics } from './metrics.js';
import { Enrollment, defaultWarpgateId, splitEndpoint } from './enroll.js';

const USAGE = `usage: warpgate --edge CONSOLE_URL --key mzk_… | --key-file FILE --origin URL [--edge-ca FILE] [--id ID] [--allow-http-console]   (enrollment)
       warpgate --edge HOST:PORT[,HOST:PORT…] --origin URL (--pki-dir DIR --pool NAME | --cert FILE --key FILE --ca FILE)   (static certificates)
                [--servername NAME] [--conns-per-worker N] [--origin-timeout 30s] [--origin-connections 1024] [--origin-queue-timeout 5s] [--origin-ca FILE]
                [--origin-websockets 1024] [--tunnel-ping 2s] [--tunnel-ping-timeout 4s] [--metrics-port 9465|off] [--metrics-host 127.0.0.1] [--log-format json|text] [--access-log]
                [--otlp-endpoint URL]

  --edge                  enrollment: the Console URL; the Console lists the tunnel endpoints (every live node of a
                          replicated cluster). Static: the edge nodes to dial. Tunnels are kept to every endpoint,
                          each with its own reconnect backoff and PING liveness
  --origin-websockets N   WebSockets relayed to the origin at once, each on a connection of its own
                          (beyond: 503 MEZU_ORIGIN_BUSY); the handshake must finish within --origin-timeout
  --metrics-port N        Prometheus metrics on http://127.0.0.1:N/metrics (origin pool and latency, tunnels);
                          off by default (several Warpgates may share a host); 9465 beside an edge's 9464
  --log-format json|text  JSON lines on stderr (default; or $MEZU_LOG_FORMAT), or plain [warpgate] msg lines
  --access-log            an access line per request (request id, trace id, status, origin time); off by default
  --otlp-endpoint URL     OpenTelemetry spans of origin calls, OTLP/HTTP JSON to URL (e.g. http://127.0.0.1:4318),
                          for requests whose traceparent from the edge is sampled; off by default`;

const VERSION = '0.1.0';

/** localhost, 127.0.0.0/8 or ::1: a plain-http Console there keeps the key on this host. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The soft RLIMIT_NOFILE, from /proc (Linux); null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

function die(msg: string): never {
  process.stderr.write(`warpgate: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

export async function main(argv: string[]): Promise<void> {
  let v: Record<string, string | undefined>;
  try {
    v = parseArgs({
      args: argv,
      options: {
        edge: { type: 'string' },
        origin: { type: 'string' },
        'pki-dir': { type: 'string' },
        pool: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        servername: { type: 'string' },
        'conns-per-worker': { type: 'string' },
        'origin-timeout': { type: 'string' },
        'origin-connections': { type: 'string' },
        'origin-queue-timeout': { type: 'string' },
        'origin-ca': { type: 'string' },
        'origin-websockets': { type: 'string' },
        'tunnel-ping': { type: 'string' },
        'tunnel-ping-timeout': { type: 'string' },
        'metrics-port': { type: 'string' },
        'metrics-host': { type: 'string' },
        'log-format': { type: 'string' },
        'access-log': { type: 'boolean' },
        'otlp-endpoint': { type: 'string' },
        'key-file': { type: 'string' },
        'edge-ca': { type: 'string' },
        'allow-http-console': { type: 'boolean' },
        id: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (err) {
    die((err as Error).message);
  }
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const logFormat = parseLogFormat(v['log-format'] ?? process.env[ENV_LOG_FORMAT]);
  if (logFormat === null) die(`--log-format must be json or text, got "${v['log-format'] ?? process.env[ENV_LOG_FORMAT]}"`);
  if (!v.edge) die('--edge is required');
  if (!v.origin) die('--origin is required');
  // Enrollment: --edge is the Console URL and --key an API key (`mzk_…`); the certificate comes from enrollment.
  const enrolling = /^https?:\/\//.test(v.edge) || v['key-file'] !== undefined || (v.key ?? '').startsWith('mzk_');
  let keyText = '';
  if (enrolling) {
    if (!/^https?:\/\/[^/]+\/?$/.test(v.edge)) die(`--edge must be the Console URL (like http://localhost:8081) when enrolling with a key; got "${v.edge}"`);
    if (v['pki-dir'] !== undefined || v.cert !== undefined || v.ca !== undefined) die('give either --key (enrollment) or static certificates (--pki-dir, --cert/--key/--ca), not both');
    // The key is a bearer secret: over plain http it may cross only loopback unless the operator says otherwise.
    if (v.edge.startsWith('http:') && !isLoopbackUrl(v.edge) && v['allow-http-console'] === undefined) {
      die(`--edge ${v.edge} is plain http to another host: the key would cross the network in clear. Use an https Console URL (console --tls-cert/--tls-key, or a TLS proxy), or pass --allow-http-console on a network you trust`);
    }
    try {
      keyText = v['key-file'] !== undefined ? readFileSync(v['key-file'], 'utf8').trim() : (v.key ?? process.env.MEZU_WARPGATE_KEY ?? '');
    } catch (err) {
      die(`cannot read --key-file: ${(err as Error).message}`);
    }
    if (!/^mzk_[A-Za-z0-9_-]{16}_[A-Za-z0-9_-]{43}$/.test(keyText)) die('--key must be a service-account API key (mzk_<id>_<secret>)');
  }
  const edges = enrolling ? [] : parseEdgeList(v.edge);
  if (!Array.isArray(edges)) die(edges.error);
  let origin: URL;
  try {
    origin = new URL(v.origin);
  } catch {
    die(`--origin must be a URL like http://127.0.0.1:3000, got "${v.origin}"`);
  }
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') die('--origin must be http:// or https://');
  let certFile = v.cert, keyFile = v.key, caFile = v.ca;
  if (v['pki-dir'] !== undefined) {
    if (!v.pool) die('--pki-dir needs --pool');
    certFile ??= `${v['pki-dir']}/warpgate-${v.pool}.pem`;
    keyFile ??= `${v['pki-dir']}/warpgate-${v.pool}-key.pem`;
    caFile ??= `${v['pki-dir']}/ca.pem`;
  }
  if (!enrolling && (!certFile || !keyFile || !caFile)) die('give --cert, --key and --ca (or --pki-dir and --pool), or enroll with --edge CONSOLE_URL --key mzk_…');
  const timeout = parseDuration(v['origin-timeout'] ?? '30s');
  if (timeout === null || timeout <= 0) die(`--origin-timeout must be a duration like 30s, got "${v['origin-timeout']}"`);
  const pingMs = parseDuration(v['tunnel-ping'] ?? '2s');
  const pingTimeoutMs = parseDuration(v['tunnel-ping-timeout'] ?? '4s');
  if (pingMs === null || pingTimeoutMs === null || pingTimeoutMs <= 0) die('--tunnel-ping and --tunnel-ping-timeout must be durations like 2s');
  const connsPerWorker = Number(v['conns-per-worker'] ?? '2');
  if (!Number.isInteger(connsPerWorker) || connsPerWorker < 1 || connsPerWorker > 16) die('--conns-per-worker must be 1..16');
  // A ceiling: the pool opens connections while requests wait and closes idle ones (4 s).
  const originConns = Number(v['origin-connections'] ?? '1024');
  if (!Number.isInteger(originConns) || originConns < 1) die('--origin-connections must be a positive integer');
  // Each relayed WebSocket holds an origin connection of its own (not the pool's) for its lifetime.
  const originWebsockets = Number(v['origin-websockets'] ?? String(DEFAULT_ORIGIN_WEBSOCKETS));
  if (!Number.isInteger(originWebsockets) || originWebsockets < 1) die('--origin-websockets must be a positive integer');
  const metricsPortRaw = v['metrics-port'] ?? 'off';
  const metricsPort = metricsPortRaw === 'off' ? null : Number(metricsPortRaw);
  if (metricsPort !== null && (!/^\d+$/.test(metricsPortRaw) || metricsPort > 65535)) die(`--metrics-port must be a port (0..65535) or off; got "${metricsPortRaw}"`);
  const otlpUrl = v['otlp-endpoint'] === undefined ? null : parseOtlpEndpoint(v['otlp-endpoint']);
  if (v['otlp-endpoint'] !== undefined && otlpUrl === null) die(`--otlp-endpoint must be an http:// or https:// URL (the collector's OTLP/HTTP port, e.g. http://127.0.0.1:4318); got "${v['otlp-endpoint']}"`);
  const queueTimeout = parseDuration(v['origin-queue-timeout'] ?? '5s');
  if (queueTimeout === null || queueTimeout <= 0) die(`--origin-queue-timeout must be a duration like 5s, got "${v['origin-queue-timeout']}"`);

  let cert = '', key = '', ca = '';
  let consoleCa: string | null = null;
  try {
    if (!enrolling) {
      cert = readFileSync(certFile!, 'utf8');
      key = readFileSync(keyFile!, 'utf8');
      ca = readFileSync(caFile!, 'utf8');
    } else if (v['edge-ca'] !== undefined) consoleCa = readFileSync(v['edge-ca'], 'utf8');
  } catch (err) {
    die(`cannot read credentials: ${(err as Error).message}`);
  }

  const log = createLog('warpgate', undefined, { format: logFormat });
  const fds = openFileLimit();
  // Each origin connection and each relayed WebSocket is a descriptor; the tunnels, the log and the runtime take ~40 more.
  if (fds !== null && fds < originConns + originWebsockets + 64) log(`warpgate: the open-file limit (ulimit -n) is ${fds}, below --origin-connections ${originConns} + --origin-websockets ${originWebsockets} + 64: past it, new origin connections fail with EMFILE (MEZU_ORIGIN_UNREACHABLE); raise the limit or lower --origin-connections / --origin-websockets`);
  let originCa: string | undefined;
  if (v['origin-ca'] !== undefined) {
    if (origin.protocol !== 'https:') die('--origin-ca goes with an https:// --origin');
    try {
      originCa = readFileSync(v['origin-ca'], 'utf8');
    } catch (err) {
      die(`cannot read --origin-ca: ${(err as Error).message}`);
    }
  }
  const originClient = new OriginClient({ origin: origin.origin, ca: originCa, connections: originConns, queueTimeoutMs: queueTimeout, headersTimeoutMs: timeout, bodyTimeoutMs: timeout });
  const websockets = new WebSocketRelay(originClient, originWebsockets, log);
  const metrics = metricsPort === null ? null : new WarpgateMetrics();
  const exporter = otlpUrl === null ? null : new SpanExporter({ endpoint: otlpUrl, service: 'mezusphere-warpgate', resource: [['service.instance.id', v.id ?? `${hostname()}-${process.pid}`]], metricsPrefix: 'mezu_warpgate', log });
  if (exporter !== null) log(`otlp: exporting origin-call spans to ${otlpUrl!.href}`);
  const accessLog = Boolean(v['access-log']);
  // The agents of the moment (an enrolling Warpgate makes them once enrolled), for the tunnel figures.
  let agentsRef: AgentSet | null = null;
  const base: Omit<AgentOptions, 'edgeHost' | 'edgePort' | 'servername' | 'cert' | 'key' | 'ca'> = { connsPerWorker, backoffBaseMs: 100, backoffCapMs: 10_000, version: VERSION, limits: { pingIntervalMs: pingMs, pingTimeoutMs } };
  /**
   * One endpoint's agent. Each gets its own assertion verifier (and so its own
   * forwarder, which is only references): the keys, issuer and projects a
   * request is checked against are those of the node whose tunnel it came on
   * — nodes have their own --issuer, and a node a moment behind on a signing
   * key rotation must not make the others' requests fail.
   */
  const agentMaker = (id: string, servername: (host: string) => string): MakeAgent => (endpoint, creds, onDialFailure, onEndpoints) => {
    const ep = splitEndpoint(endpoint)!;
    const verifier = new AssertionVerifier();
    const forwarder = new LeanForwarder(originClient, verifier, log, websockets, metrics, accessLog, exporter);
    return new Agent({ ...base, ...creds, edgeHost: ep.host, edgePort: ep.port, servername: servername(ep.host), id, onDialFailure, onEndpoints }, verifier, forwarder, (msg) => log(msg, { edge: endpoint }));
  };
  let runner: { stop(): Promise<void> };
  if (enrolling) {
    const warpgateId = v.id ?? defaultWarpgateId(origin.origin, keyText);
    let enrollment: Enrollment | null = null;
    enrollment = new Enrollment({ url: v.edge, key: keyText, consoleCa, warpgateId, hostname: hostname(), version: VERSION }, (e) => {
      const t = e.response.tunnel;
      log(`dialing the edge at ${t.endpoints.join(', ')}; forwarding to ${origin.origin}`);
      agentsRef = new AgentSet(t.endpoints, { cert: e.response.certificate, key: e.key, ca: e.response.ca }, agentMaker(warpgateId, () => v.servername ?? t.servername), log, (_why, n) => enrollment?.onDialFailure(n));
      return agentsRef;
    }, log);
    log(`enrolling with the Console at ${v.edge} as ${warpgateId} (key mzk_${keyText.slice(4, 20)})`);
    void enrollment.run();
    runner = enrollment;
  } else {
    // One id for every endpoint's tunnels: the edges and the Console see one Warpgate.
    const set = new AgentSet(edges, { cert, key, ca }, agentMaker(v.id ?? randomBytes(6).toString('hex'), (host) => v.servername ?? (host === '127.0.0.1' || host === '::1' ? 'localhost' : host)), log);
    agentsRef = set;
    set.start();
    log(`dialing the edge at ${edges.join(', ')}; forwarding to ${origin.origin}`);
    runner = set;
  }
  let metricsListener: MetricsListener | null = null;
  if (metrics !== null) {
    const proc = new ProcessMetrics('mezu_warpgate', 'warpgate');
    const host = v['metrics-host'] ?? '127.0.0.1';
    try {
      metricsListener = await serveMetrics(host, metricsPort!, async () => metrics.render(originClient.stats(), originConns, (agentsRef as AgentSet | null)?.perEndpoint() ?? [], proc) + (exporter === null ? '' : renderText(exporter.families())), log);
      log(`metrics on ${metricsListener.url}`);
      // One machine-readable line, as the edge prints: tests and the dev stack read the port from it.
      process.stdout.write(JSON.stringify({ event: 'metrics', port: metricsListener.port, url: metricsListener.url }) + '\n');
    } catch (err) {
      // Forwarding matters more than observing it: the Warpgate runs on without a metrics listener.
      log(`warpgate: metrics: cannot listen on ${host}:${metricsPort} (${(err as Error).message}); no metrics listener`);
    }
  }
  const stop = () => {
    log('stopping: finishing in-flight requests');
    void metricsListener?.close();
    const t = setTimeout(() => process.exit(0), 5_000);
    t.unref();
    // WebSockets never end by themselves: cut them (the edge tells its clients), so the tunnels'
    // graceful close waits only for the requests in flight.
    websockets.closeAll();
    runner
      .stop()
      .then(() => originClient.close())
      .then(() => exporter?.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) void main(process.argv.slice(2));
