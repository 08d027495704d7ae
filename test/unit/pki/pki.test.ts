import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { POOL_URI_PREFIX } from '../../../wire/contract.js';
import {
  createCA,
  ensureDevPki,
  issueClientCert,
  issueServerCert,
  poolFromPeerCertificate,
  type CertKeyPem,
} from '../../../src/pki/index.js';

const DAY_MS = 86_400_000;

// One CA, server and client shared by the handshake tests (key generation is cheap, but keep it once).
const fixtures = (async () => {
  const ca = await createCA('Test Tunnel CA');
  const server = await issueServerCert(ca, {
    commonName: 'edge-tunnel',
    dnsNames: ['localhost'],
    ips: ['127.0.0.1', '::1'],
  });
  const client = await issueClientCert(ca, { commonName: 'warpgate-demo', pool: 'demo' });
  return { ca, server, client };
})();

interface ServerOutcome {
  accepted: boolean;
  authorized?: boolean;
  pool?: string | null;
  error?: Error;
  /** Why node rejected the client certificate (it verifies after the handshake and destroys the socket). */
  authorizationError?: string;
}
interface ClientOutcome {
  data: string;
  error?: Error;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Runs one mTLS handshake against a fresh node:tls server (TLS 1.3, client
 * cert required and verified against `serverTls.ca`). The server writes `ok`
 * to an accepted client. Everything opened here is closed before returning.
 */
async function handshake(
  serverTls: { key: string; cert: string; ca: string },
  clientTls: tls.ConnectionOptions,
): Promise<{ server: ServerOutcome; client: ClientOutcome }> {
  const srv = tls.createServer({
    ...serverTls,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  const rawSockets = new Set<Socket>();
  srv.on('connection', (s: Socket) => {
    rawSockets.add(s);
    s.on('close', () => rawSockets.delete(s));
  });
  const serverSide = new Promise<ServerOutcome>((resolve) => {
    srv.on('secureConnection', (s: tls.TLSSocket) => {
      resolve({ accepted: true, authorized: s.authorized, pool: poolFromPeerCertificate(s.getPeerCertificate()) });
      s.end('ok');
    });
    srv.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      const reason = (s as tls.TLSSocket & { authorizationError?: Error | string }).authorizationError;
      resolve({ accepted: false, error: err, authorizationError: reason === undefined ? undefined : String(reason) });
      s.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as AddressInfo;
  let sock: tls.TLSSocket | undefined;
  try {
    sock = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', ...clientTls });
    const s = sock;
    const clientSide = new Promise<ClientOutcome>((resolve) => {
      let data = '';
      let error: Error | undefined;
      s.setEncoding('utf8');
      s.on('data', (d: string) => (data += d));
      s.on('error', (e) => (error = e));
      s.on('close', () => resolve({ data, error }));
    });
    const [server, client] = await withTimeout(Promise.all([serverSide, clientSide]), 10_000, 'handshake');
    return { server, client };
  } finally {
    sock?.destroy();
    for (const s of rawSockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

function serverOpts(f: { ca: CertKeyPem; server: CertKeyPem }) {
  return { key: f.server.key, cert: f.server.cert, ca: f.ca.cert };
}

test('mTLS handshake succeeds and the server reads the pool from the client certificate', async (t) => {
  const f = await fixtures;
  const { server, client } = await handshake(serverOpts(f), {
    ca: f.ca.cert,
    key: f.client.key,
    cert: f.client.cert,
  });
  t.true(server.accepted);
  t.true(server.authorized);
  t.is(server.pool, 'demo');
  t.is(client.data, 'ok');
  t.is(client.error, undefined);
});

test('the client verifies the server certificate by DNS name (localhost)', async (t) => {
  const f = await fixtures;
  const { server, client } = await handshake(serverOpts(f), {
    ca: f.ca.cert,
    key: f.client.key,
    cert: f.client.cert,
    servername: 'localhost',
  });
  t.true(server.accepted);
  t.is(client.data, 'ok');
});

test('a client certificate from a different CA is rejected', async (t) => {
  const f = await fixtures;
  const otherCa = await createCA('Other CA');
  const foreign = await issueClientCert(otherCa, { commonName: 'warpgate-demo', pool: 'demo' });
  const { server, client } = await handshake(serverOpts(f), {
    ca: f.ca.cert,
    key: foreign.key,
    cert: foreign.cert,
  });
  t.false(server.accepted);
  t.truthy(server.error);
  t.regex(String(server.authorizationError), /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  t.not(client.data, 'ok');
});

test('a client without a certificate is rejected', async (t) => {
  const f = await fixtures;
  const { server, client } = await handshake(serverOpts(f), { ca: f.ca.cert });
  t.false(server.accepted);
  t.truthy(server.error);
  t.not(client.data, 'ok');
  t.truthy(client.error);
});

test('an expired client certificate is rejected', async (t) => {
  const f = await fixtures;
  const expired = await issueClientCert(f.ca, {
    commonName: 'warpgate-demo',
    pool: 'demo',
    notBefore: new Date(Date.now() - 10 * DAY_MS),
    days: 1,
  });
  const x = new X509Certificate(expired.cert);
  t.true(Date.parse(x.validTo) < Date.now());
  const { server, client } = await handshake(serverOpts(f), {
    ca: f.ca.cert,
    key: expired.key,
    cert: expired.cert,
  });
  t.false(server.accepted);
  t.is(server.authorizationError, 'CERT_HAS_EXPIRED');
  t.not(client.data, 'ok');
});

test('a not-yet-valid client certificate is rejected', async (t) => {
  const f = await fixtures;
  const future = await issueClientCert(f.ca, {
    commonName: 'warpgate-demo',
    pool: 'demo',
    notBefore: new Date(Date.now() + 2 * DAY_MS),
    days: 10,
  });
  const { server } = await handshake(serverOpts(f), { ca: f.ca.cert, key: future.key, cert: future.cert });
  t.false(server.accepted);
  t.is(server.authorizationError, 'CERT_NOT_YET_VALID');
});

test('a server certificate (EKU serverAuth only) is not accepted as a client certificate', async (t) => {
  const f = await fixtures;
  const { server, client } = await handshake(serverOpts(f), {
    ca: f.ca.cert,
    key: f.server.key,
    cert: f.server.cert,
  });
  t.false(server.accepted);
  t.is(server.authorizationError, 'INVALID_PURPOSE');
  t.not(client.data, 'ok');
});

test('the client rejects a server presenting a client certificate (EKU clientAuth only)', async (t) => {
  const f = await fixtures;
  const srvTls = { key: f.client.key, cert: f.client.cert, ca: f.ca.cert };
  const { server, client } = await handshake(srvTls, {
    ca: f.ca.cert,
    key: f.client.key,
    cert: f.client.cert,
    servername: 'localhost',
    checkServerIdentity: () => undefined, // isolate the purpose check from the name check
  });
  t.false(server.accepted);
  t.truthy(client.error);
  t.is((client.error as NodeJS.ErrnoException | undefined)?.code, 'INVALID_PURPOSE');
  t.not(client.data, 'ok');
});

test('certificate contents: CA flags, EKUs, SANs, positive 16-byte serials, notBefore backdated', async (t) => {
  const f = await fixtures;
  const ca = new X509Certificate(f.ca.cert);
  const srv = new X509Certificate(f.server.cert);
  const cli = new X509Certificate(f.client.cert);
  t.true(ca.ca);
  t.false(srv.ca);
  t.false(cli.ca);
  t.is(ca.subject, 'CN=Test Tunnel CA');
  t.true(srv.checkIssued(ca) && srv.verify(ca.publicKey));
  t.true(cli.checkIssued(ca) && cli.verify(ca.publicKey));
  t.deepEqual(srv.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  t.deepEqual(cli.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  t.is(srv.checkHost('localhost'), 'localhost');
  t.is(srv.checkIP('127.0.0.1'), '127.0.0.1');
  t.truthy(srv.checkIP('::1'));
  t.is(cli.subjectAltName, `URI:${POOL_URI_PREFIX}demo`);
  for (const c of [ca, srv, cli]) {
    t.regex(c.serialNumber, /^[0-7][0-9A-F]{31}$/i);
    const nb = Date.parse(c.validFrom);
    t.true(nb <= Date.now() - 55_000 && nb >= Date.now() - 5 * 60_000, `notBefore ${c.validFrom}`);
    t.is(c.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  }
  const caYears = (Date.parse(ca.validTo) - Date.now()) / (365 * DAY_MS);
  t.true(caYears > 9.9 && caYears < 10.1);
  t.true(f.ca.key.startsWith('-----BEGIN PRIVATE KEY-----\n'));
  t.true(f.client.key.startsWith('-----BEGIN PRIVATE KEY-----\n'));
  t.not(new X509Certificate(f.client.cert).serialNumber, new X509Certificate(f.server.cert).serialNumber);
});

test('issueClientCert and issueServerCert reject bad input', async (t) => {
  const f = await fixtures;
  for (const pool of ['', 'Demo', '-demo', 'a'.repeat(64), 'de mo', 'demo,x', 'demo\n']) {
    await t.throwsAsync(issueClientCert(f.ca, { commonName: 'x', pool }), { instanceOf: RangeError }, pool);
  }
  await t.throwsAsync(issueServerCert(f.ca, { commonName: 'x', dnsNames: [], ips: [] }));
  await t.throwsAsync(issueServerCert(f.ca, { commonName: 'x', dnsNames: [], ips: ['300.1.1.1'] }));
  await t.throwsAsync(issueServerCert(f.ca, { commonName: 'x', dnsNames: ['a b'], ips: [] }));
  // A leaf cannot act as an issuer.
  await t.throwsAsync(issueClientCert(f.client, { commonName: 'x', pool: 'demo' }), { message: /not a CA/ });
  // A key that is not the CA's.
  await t.throwsAsync(issueClientCert({ cert: f.ca.cert, key: f.client.key }, { commonName: 'x', pool: 'demo' }), {
    message: /does not match/,
  });
});

test('poolFromPeerCertificate: well-formed SANs', async (t) => {
  const f = await fixtures;
  t.is(poolFromPeerCertificate(new X509Certificate(f.client.cert)), 'demo');
  t.is(poolFromPeerCertificate(new X509Certificate(f.server.cert)), null);
  const pc = (subjectaltname?: string) => ({ subjectaltname }) as unknown as tls.PeerCertificate;
  t.is(poolFromPeerCertificate(pc(`URI:${POOL_URI_PREFIX}demo`)), 'demo');
  t.is(poolFromPeerCertificate(pc(`DNS:localhost, URI:${POOL_URI_PREFIX}pool-2, IP Address:127.0.0.1`)), 'pool-2');
  t.is(poolFromPeerCertificate(pc(`URI:https://example.com/, URI:${POOL_URI_PREFIX}demo`)), 'demo');
  // The same pool twice is still one pool.
  t.is(poolFromPeerCertificate(pc(`URI:${POOL_URI_PREFIX}demo, URI:${POOL_URI_PREFIX}demo`)), 'demo');
  t.is(poolFromPeerCertificate(pc(`URI:${POOL_URI_PREFIX}${'a'.repeat(63)}`)), 'a'.repeat(63));
});

test('poolFromPeerCertificate: null on missing, malformed and multi-pool SANs', (t) => {
  const pc = (subjectaltname?: string) => ({ subjectaltname }) as unknown as tls.PeerCertificate;
  const P = POOL_URI_PREFIX;
  const cases: Array<string | undefined> = [
    undefined,
    '',
    'DNS:localhost',
    'URI:https://example.com/',
    `DNS:${P}demo`, // not a URI SAN
    `URI:${P}`, // empty pool
    `URI:${P}Demo`,
    `URI:${P}-demo`,
    `URI:${P}${'a'.repeat(64)}`,
    `URI:${P}demo/x`,
    `URI:${P}demo x`,
    `URI:${P}demo, URI:${P}other`, // two different pools
    `URI:${P}demo, DNS:x, URI:${P}other`,
    `URI:${P}demo, URI:${P}BAD`, // one good, one invalid
    `URI:${P}demo,`, // trailing separator
    `URI:${P}demo, `,
    `garbage`,
    `URI:"${P}demo`, // unterminated quote
    `URI:"${P}demo, URI:${P}evil"`, // node quotes a name containing ", " — one (invalid) name, not two
    `URI:"${P}demo"x`,
    `: ${P}demo`,
  ];
  for (const c of cases) t.is(poolFromPeerCertificate(pc(c)), null, String(c));
  t.is(poolFromPeerCertificate({} as tls.PeerCertificate), null);
  // A JSON-quoted but otherwise valid value is decoded.
  t.is(poolFromPeerCertificate(pc(`URI:"${P}demo"`)), 'demo');
  t.is(poolFromPeerCertificate(pc(`DNS:"a, b", URI:${P}demo`)), 'demo');
});

async function tmpDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'mezu-pki-'));
  t.teardown(() => fsp.rm(base, { recursive: true, force: true }));
  return base;
}

test('ensureDevPki creates the files with tight modes and is idempotent', async (t) => {
  const base = await tmpDir(t);
  const dir = path.join(base, 'pki');
  const first = await ensureDevPki(dir, { pools: ['demo', 'billing'] });
  t.is(first.dir, dir);

  const st = await fsp.stat(dir);
  t.is(st.mode & 0o777, 0o700);
  const files = (await fsp.readdir(dir)).sort();
  t.deepEqual(files, [
    'ca-key.pem',
    'ca.pem',
    'edge-tunnel-key.pem',
    'edge-tunnel.pem',
    'warpgate-billing-key.pem',
    'warpgate-billing.pem',
    'warpgate-demo-key.pem',
    'warpgate-demo.pem',
  ]);
  for (const f of files.filter((n) => n.endsWith('-key.pem'))) {
    t.is((await fsp.stat(path.join(dir, f))).mode & 0o777, 0o600, f);
  }
  t.is(await fsp.readFile(path.join(dir, 'ca.pem'), 'utf8'), first.ca);
  t.is(await fsp.readFile(path.join(dir, 'edge-tunnel-key.pem'), 'utf8'), first.server.key);
  t.is(poolFromPeerCertificate(new X509Certificate(first.clients.demo!.cert)), 'demo');
  t.is(poolFromPeerCertificate(new X509Certificate(first.clients.billing!.cert)), 'billing');
  const srv = new X509Certificate(first.server.cert);
  t.truthy(srv.checkHost('localhost'));
  t.truthy(srv.checkIP('127.0.0.1'));
  t.truthy(srv.checkIP('::1'));

  const second = await ensureDevPki(dir, { pools: ['demo', 'billing'] });
  t.deepEqual(second, first);

  // A new pool or server name is added with the same CA; existing files stay.
  const third = await ensureDevPki(dir, { pools: ['demo', 'new-pool'], serverNames: ['edge.test'] });
  t.is(third.ca, first.ca);
  t.deepEqual(third.clients.demo, first.clients.demo);
  t.deepEqual(Object.keys(third.clients).sort(), ['demo', 'new-pool']);
  const np = new X509Certificate(third.clients['new-pool']!.cert);
  t.true(np.checkIssued(new X509Certificate(first.ca)));
  t.is(poolFromPeerCertificate(np), 'new-pool');
  t.not(third.server.cert, first.server.cert);
  t.truthy(new X509Certificate(third.server.cert).checkHost('edge.test'));
  t.truthy(new X509Certificate(third.server.cert).checkHost('localhost'));
  t.is((await fsp.stat(path.join(dir, 'warpgate-new-pool-key.pem'))).mode & 0o777, 0o600);
  t.false((await fsp.readdir(dir)).some((n) => n.endsWith('.tmp') || n === '.lock'));
});

test('ensureDevPki output works for a real mTLS handshake', async (t) => {
  const dir = path.join(await tmpDir(t), 'pki');
  const pki = await ensureDevPki(dir, { pools: ['demo'] });
  const { server, client } = await handshake(
    { key: pki.server.key, cert: pki.server.cert, ca: pki.ca },
    { ca: pki.ca, key: pki.clients.demo!.key, cert: pki.clients.demo!.cert, servername: 'localhost' },
  );
  t.true(server.accepted && server.authorized === true);
  t.is(server.pool, 'demo');
  t.is(client.data, 'ok');
});

test('ensureDevPki: concurrent calls on one directory agree on a single CA', async (t) => {
  const dir = path.join(await tmpDir(t), 'pki');
  const results = await Promise.all([
    ensureDevPki(dir, { pools: ['demo'] }),
    ensureDevPki(dir, { pools: ['demo'] }),
    ensureDevPki(dir, { pools: ['demo'] }),
  ]);
  t.is(results[1]!.ca, results[0]!.ca);
  t.is(results[2]!.ca, results[0]!.ca);
  t.is(await fsp.readFile(path.join(dir, 'ca.pem'), 'utf8'), results[0]!.ca);
});

test('ensureDevPki re-issues a leaf from a foreign CA or a missing key, and tightens a loose key mode', async (t) => {
  const dir = path.join(await tmpDir(t), 'pki');
  const first = await ensureDevPki(dir, { pools: ['demo'] });
  const other = await createCA('Other CA');
  const foreign = await issueClientCert(other, { commonName: 'x', pool: 'demo' });
  await fsp.writeFile(path.join(dir, 'warpgate-demo.pem'), foreign.cert);
  await fsp.writeFile(path.join(dir, 'warpgate-demo-key.pem'), foreign.key);
  await fsp.rm(path.join(dir, 'edge-tunnel-key.pem'));
  await fsp.chmod(path.join(dir, 'ca-key.pem'), 0o644);

  const second = await ensureDevPki(dir, { pools: ['demo'] });
  t.is(second.ca, first.ca);
  t.not(second.clients.demo!.cert, foreign.cert);
  t.true(new X509Certificate(second.clients.demo!.cert).checkIssued(new X509Certificate(first.ca)));
  t.not(second.server.cert, first.server.cert);
  t.true(new X509Certificate(second.server.cert).checkIssued(new X509Certificate(first.ca)));
  t.is((await fsp.stat(path.join(dir, 'ca-key.pem'))).mode & 0o777, 0o600);
  t.is((await fsp.stat(path.join(dir, 'edge-tunnel-key.pem'))).mode & 0o777, 0o600);
  t.is((await fsp.stat(path.join(dir, 'warpgate-demo-key.pem'))).mode & 0o777, 0o600);
});

test('ensureDevPki refuses a CA certificate without its key and invalid pool names', async (t) => {
  const dir = path.join(await tmpDir(t), 'pki');
  await ensureDevPki(dir, { pools: ['demo'] });
  await fsp.rm(path.join(dir, 'ca-key.pem'));
  await t.throwsAsync(ensureDevPki(dir, { pools: ['demo'] }), { message: /ca-key\.pem is missing/ });
  await t.throwsAsync(ensureDevPki(path.join(dir, 'x'), { pools: ['Bad'] }), { instanceOf: RangeError });
});
