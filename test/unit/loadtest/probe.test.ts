import test from 'ava';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createCA, issueServerCert } from '../../../src/pki/index.js';
import { endpointOf, probe } from '../../../src/loadtest/probe.js';

function listen(server: net.Server): Promise<number> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done((server.address() as net.AddressInfo).port)));
}

test('endpointOf: default ports, IPv6 brackets removed', (t) => {
  t.deepEqual(endpointOf(new URL('http://example.com/x')), { host: 'example.com', port: 80 });
  t.deepEqual(endpointOf(new URL('https://example.com/x')), { host: 'example.com', port: 443 });
  t.deepEqual(endpointOf(new URL('http://[::1]:8080/')), { host: '::1', port: 8080 });
});

test('http: a listening port passes; a closed one is named with the error code', async (t) => {
  const srv = net.createServer((s) => s.destroy());
  const port = await listen(srv);
  t.is(await probe(new URL(`http://127.0.0.1:${port}/`), false), null);
  await new Promise<void>((r) => srv.close(() => r()));
  t.is(await probe(new URL(`http://127.0.0.1:${port}/`), false), `loadtest: cannot connect to 127.0.0.1:${port}: ECONNREFUSED`);
});

test('https: a certificate that does not verify is refused unless --insecure (autocannon would not check)', async (t) => {
  const ca = await createCA('loadtest test CA');
  const leaf = await issueServerCert(ca, { commonName: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  const srv = tls.createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.destroy());
  srv.on('tlsClientError', () => {});
  const port = await listen(srv);
  try {
    const r = await probe(new URL(`https://127.0.0.1:${port}/`), false);
    t.regex(r ?? '', /^loadtest: the TLS certificate of 127\.0\.0\.1:\d+ does not verify \([A-Z_]+\); .*--insecure/);
    t.is(await probe(new URL(`https://127.0.0.1:${port}/`), true), null);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('https against a port that never answers the handshake: bounded by the timeout', async (t) => {
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => held.push(s));
  const port = await listen(srv);
  try {
    t.is(await probe(new URL(`https://127.0.0.1:${port}/`), false, 200), `loadtest: cannot connect to 127.0.0.1:${port}: no TLS handshake (is it an http:// port?) within 0.2 s`);
  } finally {
    for (const s of held) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
