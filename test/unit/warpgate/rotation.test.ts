/**
 * Certificate rotation of live tunnels (warpgate/agent.ts), in process against
 * two real tunnel listeners (src/tunnel/server.ts) standing for two edge
 * workers behind a round-robin TCP hand-off (what the edge's primary does).
 *
 * Story: the edge closes a tunnel when the client certificate it was dialed
 * with expires, so after a renewal the Warpgate must move its live tunnels to
 * the new certificate before that happens — without ever leaving an edge
 * worker with fewer ready tunnels than --conns-per-worker, and without failing
 * requests that are running meanwhile. A replacement that cannot be dialed
 * leaves the old tunnel serving.
 */
import test from 'ava';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createCA, issueClientCert, issueServerCert, type CertKeyPem } from '../../../src/pki/index.js';
import { TunnelServer } from '../../../src/tunnel/server.js';
import type { H2Stream } from '../../../wire/h2/connection.js';
import { Agent } from '../../../warpgate/agent.js';
import { systemClock, type Timers } from '../../../src/runtime/index.js';
import { AssertionVerifier } from '../../../wire/assertion.js';
import type { LeanForwarder } from '../../../warpgate/lean-forward.js';
import { Recorder } from '../wire/h2/recorder.js';

const WORKERS = 2;
const CONNS_PER_WORKER = 2;

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const serial = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();

interface Edge {
  servers: TunnelServer[];
  /** Live admitted tunnel sockets per worker, with the serial of the client certificate they were dialed with. */
  live: Array<Map<tls.TLSSocket, string>>;
  proxyPort: number;
  /** While true the hand-off closes new connections at once (the edge unreachable for new dials). */
  refuse: boolean;
  refused: number;
  /** When set, every new connection goes to this worker (instead of each in turn). */
  pin: number | null;
  /** When each connection was handed to a worker, and to which. */
  handed: Array<{ at: number; worker: number }>;
  log: string[];
  close(): Promise<void>;
}

async function startEdge(ca: CertKeyPem, server: CertKeyPem): Promise<Edge> {
  const log: string[] = [];
  const live = Array.from({ length: WORKERS }, () => new Map<tls.TLSSocket, string>());
  const servers: TunnelServer[] = [];
  const ports: number[] = [];
  for (let w = 0; w < WORKERS; w++) {
    const s = new TunnelServer({
      host: '127.0.0.1', port: 0, key: server.key, cert: server.cert, ca: [ca.cert], edgeId: 'edge-1', worker: w, workers: WORKERS,
      issuer: 'http://localhost', projectsOf: () => ['demo'], jwks: () => ({ keys: [] }), responseTimeoutMs: 10_000,
      log: (m) => log.push(`[${w}] ${m}`),
      admit: (socket) => {
        live[w]!.set(socket, String(socket.getPeerCertificate().serialNumber).toUpperCase());
        socket.once('close', () => live[w]!.delete(socket));
        return { credential: null };
      },
    });
    ports.push(await s.listen());
    servers.push(s);
  }
  const sockets = new Set<net.Socket>();
  let next = 0;
  const edge: Edge = { servers, live, proxyPort: 0, refuse: false, refused: 0, pin: null, handed: [], log, close: async () => undefined };
  const proxy = net.createServer((client) => {
    if (edge.refuse) {
      edge.refused++;
      client.destroy();
      return;
    }
    const worker = edge.pin ?? next++ % WORKERS;
    edge.handed.push({ at: Date.now(), worker });
    const port = ports[worker]!;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const gone = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', gone).on('close', gone);
    upstream.on('error', gone).on('close', gone);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  edge.proxyPort = (proxy.address() as net.AddressInfo).port;
  edge.close = async () => {
    for (const s of servers) s.close(false);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => proxy.close(() => r()));
  };
  return edge;
}

/** The origin side: answers every forwarded request with 200 after a few ms, so drains meet in-flight streams. */
const leanOrigin = { handle: (s: H2Stream) => setTimeout(() => { s.respond([':status', '200'], false); s.end(Buffer.from('ok')); }, 3) } as unknown as LeanForwarder;

function makeAgent(edge: Edge, ca: CertKeyPem, client: CertKeyPem, logs: string[], timers?: Timers): Agent {
  return new Agent(
    { edgeHost: '127.0.0.1', edgePort: edge.proxyPort, servername: 'localhost', cert: client.cert, key: client.key, ca: ca.cert, connsPerWorker: CONNS_PER_WORKER, backoffBaseMs: 50, backoffCapMs: 400, version: 't', limits: {} },
    new AssertionVerifier(), leanOrigin, (m) => logs.push(`${Date.now() % 100000} ${m}`), timers,
  );
}

/** Ready tunnels per worker, as the edge's pools see them. */
function ready(edge: Edge): number[] {
  return edge.servers.map((s) => s.pools.all().filter((c) => c.ready).length);
}

/**
 * One request through worker `w`'s pool; resolves to its status, or the error code / 'no tunnel'.
 * With `body`, a POST carrying it: such a request cannot be replayed, so it shows whether a drain
 * refuses streams the edge opened before reading the GOAWAY (RFC 9113 §6.8).
 */
function request(edge: Edge, w: number, body: Buffer | null = null): Promise<string> {
  const pools = edge.servers[w]!.pools;
  const conn = pools.pick('demo');
  if (conn === null) return Promise.resolve('no tunnel');
  // As the front end sends it (src/front/request.ts): refused or lost streams are replayed through the pool registry.
  const r = new Recorder({ method: body === null ? 'GET' : 'POST', path: '/x', fields: ['x-mezu-project', 'demo'], hasBody: body !== null, registry: pools });
  if (r.send(conn) && body !== null) {
    r.stream!.write(body);
    r.stream!.end();
  }
  return r.whenSettled().then(() => r.outcome);
}

async function pki(): Promise<{ ca: CertKeyPem; server: CertKeyPem; a: CertKeyPem; b: CertKeyPem }> {
  const ca = await createCA('rotation test CA');
  const server = await issueServerCert(ca, { commonName: 'edge', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  const a = await issueClientCert(ca, { commonName: 'warpgate-a', pool: 'demo', days: 1 });
  const b = await issueClientCert(ca, { commonName: 'warpgate-b', pool: 'demo', days: 2 });
  return { ca, server, a, b };
}

{
  test.serial('after setCredentials every live tunnel is replaced, make-before-break, and requests meanwhile all succeed', async (t) => {
    const { ca, server, a, b } = await pki();
    const edge = await startEdge(ca, server);
    const logs: string[] = [];
    const agent = makeAgent(edge, ca, a, logs);
    t.teardown(async () => {
      await agent.stop();
      await edge.close();
    });
    agent.start();
    await waitFor('two ready tunnels on each worker', () => ready(edge).every((n) => n >= CONNS_PER_WORKER));
    t.true(edge.live.every((m) => [...m.values()].every((s) => s === serial(a.cert))));

    // Steady load through both workers, and a watch on the ready count of each worker.
    let minReady = Infinity;
    let running = true;
    const watch = setInterval(() => (minReady = Math.min(minReady, ...ready(edge))), 1);
    t.teardown(() => clearInterval(watch));
    const outcomes: string[] = [];
    // Two loops of bodiless GETs and two of POSTs with a body, over both workers.
    const loops = [0, 1, 0, 1].map(async (w, i) => {
      while (running) {
        const o = await request(edge, w, i >= 2 ? Buffer.from('a body that cannot be replayed') : null);
        outcomes.push(o);
        if (o !== '200' && process.env.ROTATION_DEBUG) logs.push(`${Date.now() % 100000} FAILED ${o} on worker ${w}`);
      }
    });

    agent.setCredentials({ cert: b.cert, key: b.key, ca: ca.cert });
    const isB = () => edge.live.every((m) => m.size >= CONNS_PER_WORKER && [...m.values()].every((s) => s === serial(b.cert)));
    await waitFor('every tunnel dialed with the new certificate, the old ones closed', () => isB() && agent.tunnelsByCertificate().draining === 0 && agent.tunnelsByCertificate().stale === 0);
    // A few more requests on the new tunnels only.
    const after = outcomes.length;
    await waitFor('requests on the new tunnels', () => outcomes.length >= after + 50);
    running = false;
    await Promise.all(loops);
    clearInterval(watch);

    const failed = outcomes.filter((o) => o !== '200');
    if (process.env.ROTATION_DEBUG) t.log(logs.join('\n'));
    t.log(`${outcomes.length} requests during the rotation, ${failed.length} failed; fewest ready tunnels on a worker: ${minReady}`);
    t.deepEqual(failed, []);
    t.true(minReady >= CONNS_PER_WORKER, `a worker fell to ${minReady} ready tunnels`);
    t.true(isB());
    t.deepEqual(agent.tunnelsByCertificate(), { current: WORKERS * CONNS_PER_WORKER, stale: 0, draining: 0 });
    t.true(logs.some((l) => /every tunnel now uses the certificate valid until/.test(l)), logs.join('\n'));
    // Drained, never cut: the edge saw GOAWAYs, not errors.
    t.false(edge.log.some((l) => /error|refused/i.test(l)), edge.log.join('\n'));
  });
}

test.serial('a replacement that cannot be dialed leaves the old tunnel serving; the rotation completes once the edge takes dials again', async (t) => {
  const { ca, server, a, b } = await pki();
  const edge = await startEdge(ca, server);
  const logs: string[] = [];
  const agent = makeAgent(edge, ca, a, logs);
  t.teardown(async () => {
    await agent.stop();
    await edge.close();
  });
  agent.start();
  await waitFor('two ready tunnels on each worker', () => ready(edge).every((n) => n >= CONNS_PER_WORKER));

  edge.refuse = true;
  agent.setCredentials({ cert: b.cert, key: b.key, ca: ca.cert });
  await waitFor('three refused replacement dials', () => edge.refused >= 3);
  t.deepEqual(ready(edge), [CONNS_PER_WORKER, CONNS_PER_WORKER], 'the old tunnels still serve');
  t.deepEqual(agent.tunnelsByCertificate(), { current: 0, stale: WORKERS * CONNS_PER_WORKER, draining: 0 });
  for (let w = 0; w < WORKERS; w++) t.is(await request(edge, w), '200');
  t.true(edge.live.every((m) => [...m.values()].every((s) => s === serial(a.cert))));

  edge.refuse = false;
  await waitFor('the rotation completed', () => agent.tunnelsByCertificate().stale === 0 && agent.tunnelsByCertificate().draining === 0 && edge.live.every((m) => m.size >= CONNS_PER_WORKER && [...m.values()].every((s) => s === serial(b.cert))));
  t.deepEqual(ready(edge), [CONNS_PER_WORKER, CONNS_PER_WORKER]);
  for (let w = 0; w < WORKERS; w++) t.is(await request(edge, w), '200');
});

test.serial('replacements that keep landing on a worker with nothing left to replace back off; that worker keeps its tunnels, the other keeps its old ones until a replacement reaches it', async (t) => {
  const { ca, server, a, b } = await pki();
  const edge = await startEdge(ca, server);
  const logs: string[] = [];
  // Backoff without jitter's low end: each delay is just under its ceiling (50 ms · 2^attempt, ≤ 400 ms).
  const agent = makeAgent(edge, ca, a, logs, { ...systemClock, random: () => 0.999 });
  t.teardown(async () => {
    await agent.stop();
    await edge.close();
  });
  agent.start();
  await waitFor('two ready tunnels on each worker', () => ready(edge).every((n) => n >= CONNS_PER_WORKER));

  // The hand-off sends every new connection to worker 0 (another Warpgate's dials interleaving, say).
  edge.pin = 0;
  let minReady1 = Infinity;
  const watch = setInterval(() => (minReady1 = Math.min(minReady1, ready(edge)[1]!)), 1);
  t.teardown(() => clearInterval(watch));
  const mark = edge.handed.length;
  agent.setCredentials({ cert: b.cert, key: b.key, ca: ca.cert });
  await waitFor('worker 0 on the new certificate', () => [...edge.live[0]!.values()].filter((x) => x === serial(b.cert)).length >= CONNS_PER_WORKER && [...edge.live[0]!.values()].every((x) => x === serial(b.cert)));
  // Then replacements meant for worker 1 keep reaching worker 0: at most a few, spaced by the backoff.
  await waitFor('four more replacement dials', () => edge.handed.length - mark >= CONNS_PER_WORKER + 4);
  // From the first miss on (the first CONNS_PER_WORKER replacements were useful), every dial waits for a backoff.
  const missed = edge.handed.slice(mark + CONNS_PER_WORKER);
  const misses = missed.slice(1).map((h, i) => h.at - missed[i]!.at);
  t.log(`gaps between replacement dials that missed: ${misses.join(', ')} ms`);
  t.true(misses.every((g) => g >= 40), `replacements dialed back to back: ${misses.join(', ')} ms`);
  t.true(edge.live[1]!.size >= CONNS_PER_WORKER && [...edge.live[1]!.values()].every((x) => x === serial(a.cert)), 'worker 1 keeps its old tunnels');
  // A surplus beyond twice the share is closed (GOAWAY) right after its hello, so the edge may count it
  // ready for a moment: the bound is where worker 0 settles, not every instant.
  await waitFor(`worker 0 settling at twice its share at most (holds ${ready(edge)[0]})`, () => ready(edge)[0]! <= 2 * CONNS_PER_WORKER, 10_000);

  edge.pin = null;
  await waitFor('the rotation completed', () => agent.tunnelsByCertificate().stale === 0 && agent.tunnelsByCertificate().draining === 0 && edge.live.every((m) => m.size >= CONNS_PER_WORKER && [...m.values()].every((x) => x === serial(b.cert))), 30_000);
  clearInterval(watch);
  t.true(minReady1 >= CONNS_PER_WORKER, `worker 1 fell to ${minReady1} ready tunnels`);
  for (let w = 0; w < WORKERS; w++) t.is(await request(edge, w), '200');
});
