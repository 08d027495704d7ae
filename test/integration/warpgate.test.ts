/**
 * The Warpgate against a hand-driven edge: a TLS server with the edge's
 * tunnel certificate that accepts the Warpgate's connection and speaks the
 * edge side of HTTP/2 itself, so it can send what a real edge never would
 * (forged, expired, foreign assertions) and check the second layer holds.
 */
import test from 'ava';
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureDevPki, type DevPki } from '../../src/pki/index.js';
import { generateSigningKeyPem, loadSigningKey, mintJwt, jwkOf } from '../../wire/index.js';
import { Tunnel, type AssertionClaims, type TunnelHello } from '../../wire/contract.js';
import { waitFor } from './harness.js';

const ROOT = resolve(__dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'mezu-wg-'));
let pki: DevPki;
let origin: ChildProcess;
let originPort = 0;
let seen = '';
const procs: ChildProcess[] = [];

const k = generateSigningKeyPem();
const key = loadSigningKey(k.kid, k.privateKeyPem, k.publicX);
const rogue = generateSigningKeyPem();
const rogueKey = loadSigningKey(k.kid, rogue.privateKeyPem, rogue.publicX); // same kid, different key

function claims(over: Partial<AssertionClaims> = {}): AssertionClaims {
  const now = Math.floor(Date.now() / 1000);
  return { iss: 'http://edge.test', aud: 'demo', sub: 'usr_1', typ: 'user', email: 'a@example.com', name: 'Zoë Ä', amr: ['pwd'], auth_time: now, roles: ['admin'], permissions: ['x:y'], sid: 'ses_1', iat: now, exp: now + 300, ...over };
}

/** Starts a fake edge tunnel listener; resolves with the HTTP/2 client session once a Warpgate has connected and answered the hello. */
async function fakeEdge(warpgateArgs: string[] = []): Promise<{ session: http2.ClientHttp2Session; server: tls.Server; wg: ChildProcess }> {
  const server = tls.createServer({ key: pki.server.key, cert: pki.server.cert, ca: [pki.ca], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', ALPNProtocols: ['h2'] });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connected = new Promise<http2.ClientHttp2Session>((resolveSession) => {
    server.once('secureConnection', (socket) => {
      const session = http2.connect('https://warpgate.invalid', { createConnection: () => socket });
      const hello: TunnelHello = { edgeId: 'e1', worker: 0, workers: 1, pool: 'demo', projects: ['demo'], issuer: 'http://edge.test', jwks: { keys: [jwkOf(k.kid, k.publicX)] } };
      const req = session.request({ ':method': Tunnel.controlMethod, ':path': Tunnel.controlPath });
      req.on('response', () => undefined);
      req.resume();
      req.on('end', () => resolveSession(session));
      req.end(JSON.stringify(hello));
    });
  });
  const wg = spawn(process.execPath, [join(ROOT, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${port}`, '--origin', `http://127.0.0.1:${originPort}`, '--pki-dir', pki.dir, '--pool', 'demo', ...warpgateArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(wg);
  const session = await connected;
  return { session, server, wg };
}

function send(session: http2.ClientHttp2Session, path: string, headers: Record<string, string | string[]> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolveRes, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, ':authority': 'localhost', [Tunnel.projectHeader]: 'demo', 'x-mezu-request-id': 'rid-1', ...headers });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolveRes({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

async function originLog(): Promise<Array<{ path: string; headers: Record<string, string[]> }>> {
  const r = await fetch(`http://127.0.0.1:${originPort}/__origin/requests`);
  return (await r.json()) as Array<{ path: string; headers: Record<string, string[]> }>;
}
async function clearOrigin(): Promise<void> {
  await fetch(`http://127.0.0.1:${originPort}/__origin/requests`, { method: 'DELETE' });
}

test.before(async () => {
  pki = await ensureDevPki(join(dir, 'pki'), { pools: ['demo'] });
  origin = spawn(process.execPath, [join(ROOT, 'dist/scripts/demo-origin.js'), '--port', '0', '--record'], { stdio: ['ignore', 'pipe', 'ignore'] });
  procs.push(origin);
  origin.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
  await waitFor('origin', () => seen.includes('"ready"'));
  originPort = JSON.parse(seen.split('\n')[0]!).port;
});
test.after.always(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test.serial('valid assertion: identity headers from the claims, forged ones removed', async (t) => {
  const { session, server } = await fakeEdge();
  t.teardown(() => { session.destroy(); server.close(); });
  await clearOrigin();
  const jwt = mintJwt(key, claims());
  const r = await send(session, '/api/x', { 'x-mezu-assertion': jwt, 'x-mezu-user-id': 'forged', 'x-mezu-roles': 'root' });
  t.is(r.status, 200);
  const [req] = await originLog();
  t.is(req!.headers['x-mezu-user-id']!.join(), 'usr_1');
  t.is(req!.headers['x-mezu-roles']!.join(), 'admin');
  t.is(req!.headers['x-mezu-user-name']!.join(), encodeURIComponent('Zoë Ä'), 'non-ASCII is percent-encoded');
  t.is(req!.headers['x-mezu-request-id']!.join(), 'rid-1');
  t.false('x-mezu-project' in req!.headers);
});

test.serial('forged, foreign, expired or mis-addressed assertions → 403 and the origin receives nothing', async (t) => {
  const { session, server } = await fakeEdge();
  t.teardown(() => { session.destroy(); server.close(); });
  await clearOrigin();
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, string]> = [
    ['signed by another key under the same kid', mintJwt(rogueKey, claims())],
    ['expired', mintJwt(key, claims({ iat: now - 900, exp: now - 600 }))],
    ['lifetime above 5 minutes', mintJwt(key, claims({ exp: now + 3600 }))],
    ['another audience', mintJwt(key, claims({ aud: 'other' }))],
    ['another issuer', mintJwt(key, claims({ iss: 'http://evil' }))],
    ['issued in the future', mintJwt(key, claims({ iat: now + 600, exp: now + 700 }))],
    ['garbage', 'not-a-jwt'],
    ['alg none', `${Buffer.from('{"alg":"none","kid":"x"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`],
  ];
  for (const [name, jwt] of cases) {
    const r = await send(session, '/api/x', { 'x-mezu-assertion': jwt });
    t.is(r.status, 403, name);
    t.is(JSON.parse(r.body).error.code, 'MEZU_ASSERTION_INVALID', name);
  }
  // A valid assertion for project demo presented on a request the edge labelled for another project.
  const r = await send(session, '/api/x', { 'x-mezu-assertion': mintJwt(key, claims()), [Tunnel.projectHeader]: 'other' });
  t.is(r.status, 403);
  t.is((await originLog()).length, 0);
});

test.serial('origin down → 502; origin too slow → 504', async (t) => {
  const { session, server } = await fakeEdge(['--origin-timeout', '1s']);
  t.teardown(() => { session.destroy(); server.close(); });
  const slow = await send(session, '/health?delay=3000');
  t.is(slow.status, 504);
  t.is(JSON.parse(slow.body).error.code, 'MEZU_ORIGIN_TIMEOUT');
  // Now point a Warpgate at a port nothing listens on.
  const saved = originPort;
  originPort = 1; // nothing listens on port 1 on loopback
  try {
    const e = await fakeEdge();
    t.teardown(() => { e.session.destroy(); e.server.close(); });
    const r = await send(e.session, '/health');
    t.is(r.status, 502);
    t.is(JSON.parse(r.body).error.code, 'MEZU_ORIGIN_UNREACHABLE');
  } finally {
    originPort = saved;
  }
});

/** An extended CONNECT (RFC 8441) for a WebSocket, as the edge opens one; resolves with the response head. */
function connectWs(session: http2.ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; stream: http2.ClientHttp2Stream }> {
  return new Promise((resolveRes, reject) => {
    const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': 'localhost', [Tunnel.projectHeader]: 'demo', 'x-mezu-request-id': 'rid-ws', 'sec-websocket-protocol': 'echo.v1', ...headers });
    stream.on('response', (h) => resolveRes({ status: Number(h[':status']), headers: h, stream }));
    stream.on('error', reject);
  });
}

/** One masked client frame (RFC 6455 §5.3), short payloads only. */
function maskedText(text: string): Buffer {
  const p = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const out = Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), mask, p]);
  for (let i = 0; i < p.length; i++) out[6 + i]! ^= mask[i % 4]!;
  return out;
}

async function originSockets(): Promise<{ open: number; opened: number }> {
  return (await (await fetch(`http://127.0.0.1:${originPort}/__origin/websockets`)).json()) as { open: number; opened: number };
}

test.serial('WebSockets: the assertion is verified on the handshake; forged → 403 and no socket at the origin; valid → 200, the origin’s subprotocol, bytes both ways', async (t) => {
  const { session, server } = await fakeEdge();
  t.teardown(() => { session.destroy(); server.close(); });
  t.true(session.remoteSettings.enableConnectProtocol, 'the Warpgate announces SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const before = await originSockets();
  const forged = await connectWs(session, '/api/v1/ws', { 'x-mezu-assertion': mintJwt(rogueKey, claims()) });
  t.is(forged.status, 403);
  forged.stream.resume();
  const none = await connectWs(session, '/api/v1/ws');
  t.is(none.status, 200, 'no assertion: a public route, admitted without identity');
  none.stream.close();
  const after = await originSockets();
  t.is(after.opened - before.opened, 1, 'only the unauthenticated (public) one reached the origin');
  const ok = await connectWs(session, '/api/v1/ws', { 'x-mezu-assertion': mintJwt(key, claims()) });
  t.is(ok.status, 200);
  t.is(ok.headers['sec-websocket-protocol'], 'echo.v1');
  t.is(ok.headers['sec-websocket-accept'], undefined, 'the origin leg’s handshake fields stay on that leg');
  const echoed = new Promise<Buffer>((r) => {
    let got = Buffer.alloc(0);
    ok.stream.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + (got[1]! & 0x7f)) r(got);
    });
  });
  ok.stream.write(maskedText('whoami'));
  const frame = await echoed;
  t.is(frame[0], 0x81, 'an unmasked text frame from the origin, relayed as bytes');
  const who = JSON.parse(frame.subarray(frame[1]! === 126 ? 4 : 2).toString()) as { whoami: Record<string, string> };
  t.is(who.whoami['x-mezu-user-id'], 'usr_1', 'the identity from the verified assertion rides on the origin handshake');
  ok.stream.close();
  // An origin that refuses the upgrade (no WebSocket there): its status is relayed, not a 200.
  const refused = await connectWs(session, '/not-a-socket', { 'x-mezu-assertion': mintJwt(key, claims()) });
  t.true(refused.status >= 400, `origin refusal relayed (${refused.status})`);
  refused.stream.resume();
});
