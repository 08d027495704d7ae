/**
 * The Warpgate's origin client over TLS: an `https:` origin is spoken to by
 * the same client as an `http:` one (its reads through `onread` too), with the
 * origin's certificate verified against `ca` (or Node's roots). Story: the
 * node:http2 reference path went, and with it the undici client that carried
 * `https:` origins; a Warpgate in front of a TLS-only application must keep
 * working and must never skip verifying whom it talks to.
 */
import test from 'ava';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { OriginClient } from '../../../warpgate/origin/index.js';
import { createCA, issueServerCert, type CertKeyPem } from '../../../src/pki/index.js';

interface Outcome {
  status: number;
  body: string;
  error: string | null;
  detail: string;
}

function get(c: OriginClient, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const o: Outcome = { status: -1, body: '', error: null, detail: '' };
    c.request(
      { method: 'GET', path, headers: ['host', 'origin.test'], hasBody: false },
      {
        onHead: (status) => (o.status = status),
        onData: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        onEnd: () => {
          o.body = Buffer.concat(chunks).toString();
          resolve(o);
        },
        onError: (code, detail) => {
          o.error = code;
          o.detail = detail;
          resolve(o);
        },
      },
    );
  });
}

async function origin(t: import('ava').ExecutionContext, cert: CertKeyPem): Promise<{ port: number; sockets: () => number }> {
  let sockets = 0;
  const s = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => res.end(`tls ${req.url}`));
  s.on('secureConnection', () => sockets++);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    s.closeAllConnections();
    s.close(() => r());
  }));
  return { port: (s.address() as AddressInfo).port, sockets: () => sockets };
}

test('https origin: requests answered over TLS, the connection kept alive and reused', async (t) => {
  const ca = await createCA('origin test CA');
  const o = await origin(t, await issueServerCert(ca, { commonName: 'origin', dnsNames: ['localhost'], ips: ['127.0.0.1'] }));
  const c = new OriginClient({ origin: `https://127.0.0.1:${o.port}`, ca: ca.cert });
  t.teardown(() => c.destroy());
  for (let i = 0; i < 5; i++) {
    const r = await get(c, `/x${i}`);
    t.is(r.error, null, r.detail);
    t.is(r.status, 200);
    t.is(r.body, `tls /x${i}`);
  }
  t.is(o.sockets(), 1, 'one TLS connection for five sequential requests');
});

test('https origin: a certificate the client cannot verify is refused (MEZU_ORIGIN_UNREACHABLE), nothing is sent', async (t) => {
  const ca = await createCA('origin test CA');
  const other = await createCA('another CA');
  const o = await origin(t, await issueServerCert(ca, { commonName: 'origin', dnsNames: ['localhost'], ips: ['127.0.0.1'] }));
  // Not trusted: signed by a CA the client was not given (and not one of Node's roots).
  const c1 = new OriginClient({ origin: `https://127.0.0.1:${o.port}`, ca: other.cert });
  t.teardown(() => c1.destroy());
  const r1 = await get(c1, '/secret');
  t.is(r1.error, 'MEZU_ORIGIN_UNREACHABLE');
  // Trusted CA, but the certificate names another host.
  const o2 = await origin(t, await issueServerCert(ca, { commonName: 'elsewhere', dnsNames: ['elsewhere.test'], ips: ['10.0.0.1'] }));
  const c2 = new OriginClient({ origin: `https://127.0.0.1:${o2.port}`, ca: ca.cert });
  t.teardown(() => c2.destroy());
  const r2 = await get(c2, '/secret');
  t.is(r2.error, 'MEZU_ORIGIN_UNREACHABLE');
  t.regex(r2.detail, /ERR_TLS_CERT_ALTNAME_INVALID|altname|IP/i);
});
