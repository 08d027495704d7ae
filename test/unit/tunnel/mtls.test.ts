/**
 * mTLS on the real tunnel listener (src/tunnel/server.ts, as each edge worker
 * runs it) with the dev PKI (src/pki ensureDevPki): who may open a tunnel.
 *
 * Story: other tests built their own TLS servers, so nothing showed that the
 * listener the edge actually runs refuses a Warpgate it should not trust. A
 * tunnel is a path into the customer's network and carries signed identity
 * assertions; a listener that registered one for an untrusted peer would send
 * it live traffic. Each bad dialer below must fail the TLS handshake (the
 * listener logs it), never get a tunnel in the pool registry, and never see a
 * stream — not even the hello. A control shows that the same dialer with a
 * good certificate is admitted, registered and carries a request, so the
 * absence of a tunnel in the other cases is not an accident of the harness.
 *
 * Certificates: a client certificate from a foreign CA, none at all, and one
 * from the trusted dev CA that expired (issueClientCert with a notBefore in
 * the past) or is not yet valid.
 */
import test from 'ava';
import * as tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, ensureDevPki, issueClientCert, type CertKeyPem, type DevPki } from '../../../src/pki/index.js';
import { TunnelServer } from '../../../src/tunnel/server.js';
import { H2Connection } from '../../../wire/h2/connection.js';
import { Recorder } from '../wire/h2/recorder.js';

const DAY = 86_400_000;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Pki {
  dev: DevPki;
  devCa: CertKeyPem;
  foreignCa: CertKeyPem;
}

let pkiOnce: Promise<Pki> | null = null;
const dirs: string[] = [];
function pki(): Promise<Pki> {
  pkiOnce ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mezu-mtls-'));
    dirs.push(dir);
    const dev = await ensureDevPki(join(dir, 'pki'), { pools: ['demo'] });
    const devCa = { cert: dev.ca, key: readFileSync(join(dev.dir, 'ca-key.pem'), 'utf8') };
    const foreignCa = await createCA('Somebody Else Tunnel CA');
    return { dev, devCa, foreignCa };
  })();
  return pkiOnce;
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Listener {
  server: TunnelServer;
  port: number;
  log: string[];
}

/** The real listener, configured as an edge worker configures it (trusting the dev CA only). */
async function listener(t: { teardown(fn: () => void): void }): Promise<Listener> {
  const { dev } = await pki();
  const log: string[] = [];
  const server = new TunnelServer({
    host: '127.0.0.1',
    port: 0,
    key: dev.server.key,
    cert: dev.server.cert,
    ca: [dev.ca],
    edgeId: 'edge-mtls-test',
    worker: 0,
    workers: 1,
    issuer: 'http://localhost',
    projectsOf: () => ['demo'],
    jwks: () => ({ keys: [] }),
    responseTimeoutMs: 60_000,
    limits: { pingIntervalMs: 0 },
    log: (m) => log.push(m),
  });
  const port = await server.listen();
  t.teardown(() => server.close(false));
  return { server, port, log };
}

interface Dialer {
  socket: tls.TLSSocket;
  /** TLS said the handshake completed on our side (TLS 1.3: before the server has checked our certificate). */
  secureConnected: boolean;
  error: string | null;
  closed: boolean;
  /** Streams the edge opened towards us: the hello first, then requests. */
  streams: string[];
}

/**
 * A Warpgate-like dialer: TLS 1.3 with ALPN h2, trusting the dev CA for the
 * listener, then the server role of HTTP/2 answering the hello and requests.
 */
async function dial(port: number, client: CertKeyPem | null): Promise<Dialer> {
  const { dev } = await pki();
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: dev.ca, minVersion: 'TLSv1.3', ALPNProtocols: ['h2'], ...(client === null ? {} : { cert: client.cert, key: client.key }) });
  const d: Dialer = { socket, secureConnected: false, error: null, closed: false, streams: [] };
  socket.on('error', (err) => (d.error ??= err.message));
  socket.on('close', () => (d.closed = true));
  socket.once('secureConnect', () => {
    d.secureConnected = true;
    const h2 = new H2Connection(socket, 'server', { pingIntervalMs: 0 });
    h2.onStream = (s, headers, endStream) => {
      const path = headers[headers.indexOf(':path') + 1]!;
      d.streams.push(path);
      const reply = () => {
        if (path === '/.mezu-control/hello') {
          s.respond([':status', '200', 'content-type', 'application/json'], false);
          s.end(Buffer.from(JSON.stringify({ warpgateId: 'dialer', version: 'test' })));
        } else {
          s.respond([':status', '200'], false);
          s.end(Buffer.from('from the dialer'));
        }
      };
      if (endStream) return reply();
      s.reqSink = { onData: () => undefined, onEnd: reply, onReset: () => undefined };
    };
  });
  return d;
}

/** The dialer was refused: handshake error logged by the listener, nothing registered, no stream. Returns the listener's log line. */
async function assertRefused(t: import('ava').ExecutionContext, l: Listener, d: Dialer): Promise<string> {
  await until('the listener to reject the handshake and the dialer to be closed', () => l.log.some((m) => m.startsWith('tunnel: rejected a handshake')) && d.closed);
  // TLS 1.3: the client finishes its side before the server has checked its certificate, and node
  // then destroys the socket without an alert, so the dialer may see `secureConnect` and a plain
  // close. What matters: it was closed, and nothing was ever sent to it.
  t.true(d.closed);
  t.deepEqual(d.streams, [], 'no stream reached the dialer: not even the hello');
  t.is(l.server.pools.count('demo'), 0, 'no tunnel registered');
  t.is(l.server.pools.pick('demo'), null, 'a request for the pool finds no tunnel (the edge answers 502)');
  t.deepEqual(l.server.tunnels(), []);
  t.is(l.server.outstanding, 0);
  t.false(l.log.some((m) => /connected for pool/.test(m)), l.log.join('\n'));
  // The refusal happened in TLS, before the listener's own checks (pool name, enrollment guard) ran.
  t.false(l.log.some((m) => /without a valid pool name|refused a warpgate/.test(m)));
  return l.log.find((m) => m.startsWith('tunnel: rejected a handshake'))!;
}

interface BadCase {
  what: string;
  cert: (p: Pki) => Promise<CertKeyPem | null>;
  /** What the listener's log should say about it. */
  why: RegExp;
}

const BAD: BadCase[] = [
  {
    what: 'a client certificate from a foreign CA',
    cert: (p) => issueClientCert(p.foreignCa, { commonName: 'warpgate-demo', pool: 'demo' }),
    why: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|unknown ca|unable to (verify|get local issuer)/i,
  },
  { what: 'no client certificate', cert: async () => null, why: /did not return a certificate|certificate required/i },
  {
    what: 'an expired client certificate from the trusted CA',
    cert: (p) => issueClientCert(p.devCa, { commonName: 'warpgate-demo', pool: 'demo', notBefore: new Date(Date.now() - 3 * DAY), days: 1 }),
    why: /CERT_HAS_EXPIRED|certificate has expired/i,
  },
  {
    what: 'a client certificate from the trusted CA that is not valid yet',
    cert: (p) => issueClientCert(p.devCa, { commonName: 'warpgate-demo', pool: 'demo', notBefore: new Date(Date.now() + 2 * DAY), days: 1 }),
    why: /CERT_NOT_YET_VALID|not yet valid/i,
  },
];

for (const c of BAD) {
  test(`${c.what} is refused at the handshake: no tunnel registered, no stream, nothing can be forwarded`, async (t) => {
    const l = await listener(t);
    const d = await dial(l.port, await c.cert(await pki()));
    t.teardown(() => d.socket.destroy());
    await assertRefused(t, l, d);
  });
}

// Regression: with TLS 1.3 node completes the handshake, finds the verify error (foreign CA,
// expired, not yet valid) and destroys the socket itself, so `tlsClientError` carries only
// "socket hang up"; the reason is on `socket.authorizationError`, which src/tunnel/server.ts logs.
test('the listener logs why a client certificate was refused (unknown CA, expired, not yet valid), not "socket hang up"', async (t) => {
  for (const c of BAD) {
    const l = await listener(t);
    const d = await dial(l.port, await c.cert(await pki()));
    t.teardown(() => d.socket.destroy());
    const line = await assertRefused(t, l, d);
    t.regex(line, c.why, c.what);
  }
});

test('control: the same dialer with the dev CA’s certificate for the pool is admitted, registered, and carries a request', async (t) => {
  const { dev } = await pki();
  const l = await listener(t);
  const d = await dial(l.port, dev.clients.demo!);
  t.teardown(() => d.socket.destroy());
  await until('the tunnel to be registered', () => l.server.pools.count('demo') === 1);
  t.deepEqual(d.streams, ['/.mezu-control/hello']);
  t.true(l.log.some((m) => m === 'tunnel: warpgate dialer connected for pool demo (worker 0)'), l.log.join('\n'));
  t.false(l.log.some((m) => m.startsWith('tunnel: rejected a handshake')));
  const conn = l.server.pools.pick('demo');
  t.not(conn, null);
  const r = new Recorder({ method: 'GET', path: '/through', fields: ['x-mezu-project', 'demo'], registry: l.server.pools });
  t.true(r.send(conn!));
  await until('the response', () => r.settled);
  t.deepEqual(r.errors, []);
  t.is(r.status, 200);
  t.is(r.body, 'from the dialer');
  t.deepEqual(d.streams, ['/.mezu-control/hello', '/through']);
});
