/**
 * mTLS of the tunnel on real processes, both directions.
 *
 * 1. The edge (`mezusphere edge`, dev PKI) refuses Warpgates it should not
 *    trust — a real Warpgate process with a client certificate from a foreign
 *    CA, one with an expired certificate from the trusted CA, and a raw TLS
 *    client with no certificate: every handshake is refused (the edge logs
 *    it, again on each redial), no tunnel is registered, requests get 502
 *    MEZU_NO_WARPGATE, and the recording origin sees nothing. A good Warpgate
 *    started afterwards on the same stack is served (control).
 * 2. A Warpgate refuses an edge it should not trust: the real Warpgate process
 *    against the real tunnel listener (in process) whose server certificate
 *    comes from a foreign CA, or does not name the server name the Warpgate
 *    dials. It logs a certificate error, keeps retrying, never completes a
 *    hello and so never serves a stream; the listener never registers it.
 *    Story: a Warpgate that accepted any edge would hand its origin to
 *    whoever can redirect its DNS or route.
 *
 * test/unit/tunnel/mtls.test.ts covers the listener's side in process.
 */
import test from 'ava';
import * as tls from 'node:tls';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Stack, stopProc, waitFor, type Proc } from './harness.js';
import { createCA, ensureDevPki, issueClientCert, issueServerCert, type CertKeyPem } from '../../src/pki/index.js';
import { TunnelServer } from '../../src/tunnel/server.js';

const ROOT = resolve(__dirname, '../../..');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');
const DAY = 86_400_000;

const count = (text: string, re: RegExp) => [...text.matchAll(new RegExp(re.source, 'g'))].length;

test.serial('the edge refuses Warpgates with a foreign-CA, an expired or no client certificate: no tunnel, 502, nothing reaches the origin', async (t) => {
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  await stack.start({ warpgate: false });
  const pkiDir = join(stack.dir, 'pki');
  const devCa: CertKeyPem = { cert: readFileSync(join(pkiDir, 'ca.pem'), 'utf8'), key: readFileSync(join(pkiDir, 'ca-key.pem'), 'utf8') };
  const foreignCa = await createCA('Somebody Else Tunnel CA');
  const files = (name: string, pair: CertKeyPem): string[] => {
    writeFileSync(join(stack.dir, `${name}.pem`), pair.cert);
    writeFileSync(join(stack.dir, `${name}-key.pem`), pair.key, { mode: 0o600 });
    return ['--cert', join(stack.dir, `${name}.pem`), '--key', join(stack.dir, `${name}-key.pem`), '--ca', join(pkiDir, 'ca.pem')];
  };
  const cases: Array<[string, string[]]> = [
    ['foreign CA', files('foreign', await issueClientCert(foreignCa, { commonName: 'warpgate-demo', pool: 'demo' }))],
    ['expired', files('expired', await issueClientCert(devCa, { commonName: 'warpgate-demo', pool: 'demo', notBefore: new Date(Date.now() - 3 * DAY), days: 1 }))],
  ];
  const edge = stack.edge!;
  for (const [what, args] of cases) {
    const mark = edge.err.length;
    const wg = stack.spawnWarpgate(args);
    // Two refusals: the first dial and at least one redial (backoff 100 ms base) are refused.
    await waitFor(`the edge to refuse two handshakes of the ${what} Warpgate`, () => count(edge.err.slice(mark), /tunnel: rejected a handshake/) >= 2 && /cannot reach the edge/.test(wg.err), 20_000);
    const edgeLog = edge.err.slice(mark);
    t.false(/connected for pool/.test(edgeLog), `${what}: no tunnel registered\n${edgeLog}`);
    t.false(/tunnel up to edge worker/.test(wg.err), `${what}: the Warpgate never got a hello\n${wg.err}`);
    const r = await stack.request('/health');
    t.is(r.status, 502, `${what}: requests find no Warpgate`);
    t.regex(r.body, /MEZU_NO_WARPGATE/);
    t.is(wg.child.exitCode, null, `${what}: the Warpgate keeps retrying`);
    t.log(`${what}: edge: "${/tunnel: rejected a handshake(?: from \S+)?: .*/.exec(edgeLog)?.[0]}"; Warpgate: "${/cannot reach the edge.*/.exec(wg.err)?.[0]}"`);
    await stopProc(wg);
  }

  // No client certificate at all: a raw TLS 1.3 client.
  const mark = edge.err.length;
  const bare = tls.connect({ host: '127.0.0.1', port: stack.tunnelPort, servername: 'localhost', ca: devCa.cert, minVersion: 'TLSv1.3', ALPNProtocols: ['h2'] });
  t.teardown(() => bare.destroy());
  let bareData = 0;
  let bareClosed = false;
  bare.on('data', (d: Buffer) => (bareData += d.length));
  bare.on('error', () => undefined);
  bare.on('close', () => (bareClosed = true));
  await waitFor('the edge to refuse the certificate-less handshake', () => /tunnel: rejected a handshake(?: from \S+)?: .*(did not return a certificate|certificate required)/.test(edge.err.slice(mark)) && bareClosed, 20_000);
  t.is(bareData, 0, 'not a byte of HTTP/2 (no SETTINGS, no hello) was sent to it');
  t.false(/connected for pool/.test(edge.err.slice(mark)));
  t.is((await stack.request('/health')).status, 502);

  t.deepEqual(await stack.originSeen(), [], 'nothing reached the origin');

  // Control: a Warpgate with the dev certificate is served, so the refusals above were about the certificates.
  stack.markEdgeLog();
  await stack.startWarpgate();
  const ok = await stack.request('/health');
  t.is(ok.status, 200);
  t.is((await stack.originSeen()).length, 1, 'the control request reached the origin');
});

interface Listener {
  server: TunnelServer;
  port: number;
  log: string[];
}

async function listenerWith(server: CertKeyPem, clientCa: string): Promise<Listener> {
  const log: string[] = [];
  const s = new TunnelServer({
    host: '127.0.0.1',
    port: 0,
    key: server.key,
    cert: server.cert,
    ca: [clientCa],
    edgeId: 'edge-wg-tls-test',
    worker: 0,
    workers: 1,
    issuer: 'http://localhost',
    projectsOf: () => ['demo'],
    jwks: () => ({ keys: [] }),
    responseTimeoutMs: 60_000,
    limits: { pingIntervalMs: 0 },
    log: (m) => log.push(m),
  });
  const port = await s.listen();
  return { server: s, port, log };
}

function warpgate(port: number, pkiDir: string, extra: string[] = []): Proc {
  // The origin is never reached: nothing may get that far.
  const child = spawn(process.execPath, [WARPGATE, '--edge', `127.0.0.1:${port}`, '--origin', 'http://127.0.0.1:9', '--pki-dir', pkiDir, '--pool', 'demo', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  return p;
}

async function warpgateAgainst(t: import('ava').ExecutionContext, serverCert: (ca: CertKeyPem, foreign: CertKeyPem) => Promise<CertKeyPem> | CertKeyPem, extra: string[]): Promise<{ l: Listener; wg: Proc }> {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-wg-tls-'));
  const dev = await ensureDevPki(join(dir, 'pki'), { pools: ['demo'] });
  const devCa: CertKeyPem = { cert: dev.ca, key: readFileSync(join(dev.dir, 'ca-key.pem'), 'utf8') };
  const foreign = await createCA('Somebody Else Edge CA');
  const l = await listenerWith(await serverCert(devCa, foreign), dev.ca);
  const wg = warpgate(l.port, dev.dir, extra);
  t.teardown(async () => {
    await stopProc(wg);
    l.server.close(false);
    rmSync(dir, { recursive: true, force: true });
  });
  return { l, wg };
}

/** The Warpgate refused the listener: certificate error logged, still retrying, no hello, no stream, nothing registered. */
async function assertWarpgateRefused(t: import('ava').ExecutionContext, l: Listener, wg: Proc, why: RegExp): Promise<void> {
  await waitFor('the Warpgate to refuse the listener twice', () => /cannot reach the edge/.test(wg.err) && count(l.log.join('\n'), /tunnel: rejected a handshake/) >= 2 || wg.child.exitCode !== null, 20_000);
  t.is(wg.child.exitCode, null, `the Warpgate keeps retrying\n${wg.err}`);
  t.regex(wg.err, why, 'the Warpgate logs the certificate error');
  t.false(/tunnel up to edge worker/.test(wg.err), `no hello was ever answered, so no stream is served\n${wg.err}`);
  t.is(l.server.pools.count('demo'), 0, 'the listener registered nothing');
  t.deepEqual(l.server.tunnels(), []);
  t.false(l.log.some((m) => /connected for pool|hello with a warpgate/.test(m)), l.log.join('\n'));
}

test('a Warpgate refuses a tunnel listener whose server certificate comes from a foreign CA: certificate error, no stream served', async (t) => {
  const { l, wg } = await warpgateAgainst(t, (_dev, foreign) => issueServerCert(foreign, { commonName: 'impostor-edge', dnsNames: ['localhost'], ips: ['127.0.0.1'] }), []);
  await assertWarpgateRefused(t, l, wg, /cannot reach the edge at 127\.0\.0\.1:\d+: (unable to verify the first certificate|unable to get local issuer certificate|self[- ]signed certificate)/);
});

test('a Warpgate refuses a tunnel listener whose certificate does not name the server name it dials: certificate error, no stream served', async (t) => {
  const { l, wg } = await warpgateAgainst(t, (dev) => issueServerCert(dev, { commonName: 'mezusphere-edge-tunnel', dnsNames: ['localhost'], ips: ['127.0.0.1'] }), ['--servername', 'edge.example.net']);
  await assertWarpgateRefused(t, l, wg, /cannot reach the edge at 127\.0\.0\.1:\d+: Hostname\/IP does not match certificate's altnames: Host: edge\.example\.net/);
});

test('control: the same Warpgate against the dev-CA listener with its name is registered', async (t) => {
  const { l, wg } = await warpgateAgainst(t, (dev) => issueServerCert(dev, { commonName: 'mezusphere-edge-tunnel', dnsNames: ['localhost'], ips: ['127.0.0.1'] }), ['--conns-per-worker', '1']);
  await waitFor('the tunnel registered', () => l.server.pools.count('demo') >= 1 || wg.child.exitCode !== null, 20_000);
  t.true(l.server.pools.count('demo') >= 1, wg.err);
  t.regex(wg.err, /tunnel up to edge worker 0\/1 for pool demo/);
  t.false(/cannot reach the edge/.test(wg.err), wg.err);
});
