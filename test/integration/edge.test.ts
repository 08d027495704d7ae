/**
 * The protected request path end to end on real processes: edge (2 workers),
 * mTLS HTTP/2 tunnel, Warpgate, recording origin.
 */
import test from 'ava';
import { Stack, waitFor } from './harness.js';
import { openStore } from '../../src/store/index.js';
import { hashToken } from '../../src/session/index.js';
import { KeySet } from '../../wire/index.js';
import { raw } from '../security/raw.js';
import type { Jwks } from '../../wire/contract.js';
import { createPublicKey, verify as verifySignature } from 'node:crypto';

const stack = new Stack(2);
let token = '';
let userToken = '';

test.before(async () => {
  await stack.start();
  stack.addUser('admin@example.com', ['--name', 'Ada Admin', '--roles', 'admin,ops', '--permissions', 'admin:write,read']);
  stack.addUser('user@example.com', ['--roles', 'viewer']);
  token = stack.session('admin@example.com');
  userToken = stack.session('user@example.com');
});
test.after.always(async () => {
  await stack.stop();
});

const cookie = (t: string) => ({ cookie: `mezu_session=${t}` });

/** Header (0) or claims (1) of a JWT, decoded. */
function jwtPart(jwt: string, i: 0 | 1): Record<string, unknown> & { exp: number; iat: number } {
  return JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString('utf8'));
}

/** RFC 7515 + RFC 8037 with node:crypto only: the key named by the header's kid, EdDSA over `header.claims`. */
function verifyWithJwks(jwt: string, jwks: { keys: Array<Record<string, string>> }): boolean {
  const [h, p, sig] = jwt.split('.');
  if (h === undefined || p === undefined || sig === undefined) return false;
  const header = jwtPart(jwt, 0);
  if (header.alg !== 'EdDSA' || header.typ !== 'JWT') return false;
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (jwk === undefined) return false;
  const key = createPublicKey({ key: { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }, format: 'jwk' });
  return verifySignature(null, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url'));
}

test.serial('a public route reaches the origin through the tunnel', async (t) => {
  await stack.clearOrigin();
  const r = await stack.request('/health?probe=1');
  t.is(r.status, 200);
  const body = JSON.parse(r.body);
  t.is(body.path, '/health');
  t.is(body.query, 'probe=1');
  t.truthy(r.headers['x-mezu-request-id']);
  const seen = await stack.originSeen();
  t.is(seen.length, 1);
  // No identity on a public route, and no assertion.
  t.false('x-mezu-user-id' in seen[0]!.headers);
  t.false('x-mezu-assertion' in seen[0]!.headers);
});

test.serial('without a session: browsers get 302 to login, API clients 401 JSON; the origin receives nothing', async (t) => {
  await stack.clearOrigin();
  const b = await stack.request('/api/v1/items?x=1', { headers: { accept: 'text/html,application/xhtml+xml' } });
  t.is(b.status, 302);
  t.is(b.headers.location, '/_mezu/login?rd=%2Fapi%2Fv1%2Fitems%3Fx%3D1');
  const a = await stack.request('/api/v1/items', { headers: { accept: 'application/json' } });
  t.is(a.status, 401);
  const body = JSON.parse(a.body);
  t.is(body.error.code, 'MEZU_LOGIN_REQUIRED');
  t.is(body.error.login_url, '/_mezu/login?rd=%2Fapi%2Fv1%2Fitems');
  // A POST from a browser is not redirected (only GET/HEAD).
  const p = await stack.request('/api/v1/items', { method: 'POST', headers: { accept: 'text/html', 'content-type': 'text/plain' }, body: 'x' });
  t.is(p.status, 401);
  // A garbage or unknown cookie is the same as none.
  t.is((await stack.request('/api/v1/items', { headers: cookie('nope') })).status, 401);
  t.is((await stack.request('/api/v1/items', { headers: cookie('A'.repeat(43)) })).status, 401);
  // Uncovered paths default to required.
  t.is((await stack.request('/somewhere/else')).status, 401);
  t.is((await stack.originSeen()).length, 0);
});

test.serial('with a session: 200, and the origin sees exactly one copy of each identity header, forged ones removed', async (t) => {
  await stack.clearOrigin();
  const r = await stack.request('/api/v1/items', {
    headers: {
      ...cookie(token),
      'X-Mezu-User-Id': 'usr_forged',
      'x-mezu-roles': ['root', 'superuser'],
      'X-MEZU-PERMISSIONS': 'everything',
      'x-mezu-assertion': 'forged.jwt.value',
      'X-Mezu-Principal-Type': 'service_account',
    },
  });
  t.is(r.status, 200);
  const seen = await stack.originSeen();
  t.is(seen.length, 1);
  const h = seen[0]!.headers;
  const one = (name: string) => {
    t.is(h[name]?.length, 1, `${name} appears exactly once`);
    return h[name]![0]!;
  };
  t.regex(one('x-mezu-user-id'), /^usr_/);
  t.not(one('x-mezu-user-id'), 'usr_forged');
  t.is(one('x-mezu-user-email'), 'admin@example.com');
  t.is(one('x-mezu-user-name'), 'Ada Admin');
  t.is(one('x-mezu-principal-type'), 'user');
  t.is(one('x-mezu-roles'), 'admin,ops');
  t.is(one('x-mezu-permissions'), 'admin:write,read');
  t.is(one('x-mezu-auth-method'), 'cli');
  t.regex(one('x-mezu-auth-time'), /^\d+$/);
  t.is(one('x-mezu-auth-acr'), 'pwd', 'a session without a second factor');
  t.is(one('x-mezu-request-id'), String(r.headers['x-mezu-request-id']));
  const jwt = one('x-mezu-assertion');
  t.is(jwt.split('.').length, 3);
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
  t.is(claims.aud, 'demo');
  t.is(claims.email, 'admin@example.com');
  t.true(claims.exp - claims.iat <= 300);
  // The session token never reaches the application.
  t.false(JSON.stringify(h).includes(token));
  // Every x-mezu-* header the origin got is one the Warpgate set.
  const allowed = new Set<string>(['x-mezu-user-id', 'x-mezu-user-email', 'x-mezu-user-name', 'x-mezu-principal-type', 'x-mezu-auth-method', 'x-mezu-auth-time', 'x-mezu-auth-acr', 'x-mezu-roles', 'x-mezu-permissions', 'x-mezu-request-id', 'x-mezu-assertion']);
  for (const k of Object.keys(h)) if (k.startsWith('x-mezu-')) t.true(allowed.has(k), `unexpected ${k}`);
});

test.serial('the JWKS is served on every project host and verifies the assertion the origin received', async (t) => {
  await stack.clearOrigin();
  t.is((await stack.request('/api/v1/items', { headers: cookie(token) })).status, 200);
  const jwt = (await stack.originSeen())[0]!.headers['x-mezu-assertion']![0]!;
  const r = await stack.request('/.well-known/mezusphere/jwks.json');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^application\/json/);
  const jwks = JSON.parse(r.body) as { keys: Array<Record<string, string>> };
  t.true(jwks.keys.length >= 1);
  for (const k of jwks.keys) {
    t.like(k, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    t.false('d' in k, 'a JWKS never carries the private key');
  }
  // Checked twice: with node:crypto straight from the JWK (independent of our code), and with
  // the KeySet the Warpgate uses.
  t.true(verifyWithJwks(jwt, jwks), 'node:crypto verifies the assertion with the key named by its kid');
  const ks = new KeySet(jwks as unknown as Jwks).verify(jwt);
  t.true(ks.ok);
  const claims = jwtPart(jwt, 1);
  // The default issuer is built from --host/--port as given (the harness passes --port 0, so the
  // issuer names port 0, not the bound port); the Warpgate checks it against the hello's value.
  t.regex(String(claims.iss), /^http:\/\/localhost:\d+$/);
  t.is(claims.aud, 'demo');
  t.is(claims.typ, 'user');
  t.is(claims.email, 'admin@example.com');
  t.true(claims.exp - claims.iat <= 300);
  t.true(claims.iat <= Date.now() / 1000 + 30);
  // One changed byte in the claims, or the signature of another assertion, fails.
  const [h, p, sig] = jwt.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['root'] })).toString('base64url');
  t.false(verifyWithJwks(`${h}.${forged}.${sig}`, jwks));
  t.false(new KeySet(jwks as unknown as Jwks).verify(`${h}.${forged}.${sig}`).ok);
  t.false(verifyWithJwks(`${h}.${p}.${Buffer.alloc(64, 1).toString('base64url')}`, jwks));
  // Every project host serves the same key set.
  const o = await stack.request('/.well-known/mezusphere/jwks.json', { host: 'other.localhost' });
  t.is(o.status, 200);
  t.deepEqual(JSON.parse(o.body), jwks);
});

test.serial('signing-keys rotate: the JWKS publishes both kids, an assertion minted before still verifies, new assertions carry the new kid', async (t) => {
  await stack.clearOrigin();
  t.is((await stack.request('/api/v1/items', { headers: cookie(token) })).status, 200);
  const before = (await stack.originSeen())[0]!.headers['x-mezu-assertion']![0]!;
  const oldKid = jwtPart(before, 0).kid as string;
  const rot = stack.cli('signing-keys', 'rotate', '--json');
  t.is(rot.status, 0, rot.stderr);
  const newKid = (JSON.parse(rot.stdout) as { kid: string }).kid;
  t.not(newKid, oldKid);
  // Every worker serves the new set once it polls the store (--config-poll-ms 100): fresh
  // connections, spread over both workers, until eight in a row hold both kids.
  let jwks: { keys: Array<Record<string, string>> } = { keys: [] };
  let inARow = 0;
  const end = Date.now() + 15_000;
  while (inARow < 8 && Date.now() < end) {
    const r = await stack.request('/.well-known/mezusphere/jwks.json');
    jwks = JSON.parse(r.body);
    const kids = jwks.keys.map((k) => k.kid);
    inARow = kids.includes(oldKid) && kids.includes(newKid) ? inARow + 1 : 0;
    if (inARow === 0) await new Promise((res) => setTimeout(res, 50));
  }
  t.is(inARow, 8, `JWKS kids: ${JSON.stringify(jwks.keys.map((k) => k.kid))}`);
  t.is(jwks.keys.length, 2);
  t.true(verifyWithJwks(before, jwks), 'the assertion minted before the rotation verifies against the new JWKS (overlap)');
  t.true(new KeySet(jwks as unknown as Jwks).verify(before).ok);
  // Several poll periods more, so that no worker still signs with the old key.
  await new Promise((res) => setTimeout(res, 500));
  // A new session's assertion is signed with the new key, and the Warpgate accepts it.
  stack.addUser('rotated@example.com');
  const fresh = stack.session('rotated@example.com');
  await stack.clearOrigin();
  t.is((await stack.request('/api/v1/items', { headers: cookie(fresh) })).status, 200);
  const after = (await stack.originSeen())[0]!.headers['x-mezu-assertion']![0]!;
  t.is(jwtPart(after, 0).kid, newKid);
  t.true(verifyWithJwks(after, jwks));
  // The old session is re-minted with the new key on its next request (docs/ARCHITECTURE.md, "Assertion").
  await stack.clearOrigin();
  t.is((await stack.request('/api/v1/items', { headers: cookie(token) })).status, 200);
  const again = (await stack.originSeen())[0]!.headers['x-mezu-assertion']![0]!;
  t.is(jwtPart(again, 0).kid, newKid);
  t.true(verifyWithJwks(again, jwks));
});

const headReq = (path: string, lines: string[] = [], host = 'localhost') => `HEAD ${path} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
/** What follows the first response head: a HEAD answer must have nothing there (RFC 9110 §9.3.2). */
const afterHead = (text: string) => (text.includes('\r\n\r\n') ? text.slice(text.indexOf('\r\n\r\n') + 4) : '<no head>');

test.serial('HEAD without a session: Accept text/html → 302 to login with no body, otherwise 401; nothing forwarded; with a session HEAD is forwarded', async (t) => {
  // The edge sends "GET/HEAD with Accept: text/html" to the login page and everything else to a
  // 401. Raw sockets, because an HTTP client discards a HEAD body silently.
  await stack.clearOrigin();
  const browser = await raw(stack.port, headReq('/api/v1/items?x=1', ['Accept: text/html,application/xhtml+xml']), { responses: 1, settleMs: 300 });
  t.deepEqual(browser.statuses, [302]);
  t.regex(browser.text, /\r\nlocation: \/_mezu\/login\?rd=%2Fapi%2Fv1%2Fitems%3Fx%3D1\r\n/i);
  t.is(afterHead(browser.text), '', 'no body after the 302 head');
  const garbage = await raw(stack.port, headReq('/api/v1/items', ['Accept: text/html', 'Cookie: mezu_session=nope']), { responses: 1, settleMs: 300 });
  t.deepEqual(garbage.statuses, [302], 'a garbage session cookie is no session');
  for (const accept of [[], ['Accept: application/json'], ['Accept: */*']]) {
    const api = await raw(stack.port, headReq('/api/v1/items?x=1', accept), { responses: 1, settleMs: 300 });
    t.deepEqual(api.statuses, [401], JSON.stringify(accept));
    t.regex(api.text, /\r\nwww-authenticate: Bearer realm="mezusphere"\r\n/i);
  }
  t.is((await stack.originSeen()).length, 0);
  // With a session, HEAD reaches the origin as HEAD and the answer has no body.
  const ok = await raw(stack.port, headReq('/api/v1/items', ['Accept: text/html', `Cookie: mezu_session=${token}`]), { responses: 1, settleMs: 300 });
  t.deepEqual(ok.statuses, [200]);
  t.is(afterHead(ok.text), '');
  t.deepEqual((await stack.originSeen()).map((s) => `${s.method} ${s.path}`), ['HEAD /api/v1/items']);
});

// Regression: every answer the edge wrote itself sent its JSON body on HEAD too (401, 403, 404,
// 421, 400, the JWKS). RFC 9110 §9.3.2: a HEAD response carries no content; on a keep-alive
// connection the stray bytes are read as the start of the next response (Node's keep-alive client
// failed the HEAD with "Parse Error: Expected HTTP/"). They now end with endWithoutBody(length).
test.serial('HEAD answers the edge writes itself (401, 403, 404, 421, 400, JWKS) carry no body', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['401', headReq('/api/v1/items'), 401],
    ['403 role', headReq('/admin/x', [`Cookie: mezu_session=${userToken}`]), 403],
    ['403 deny', headReq('/closed/x'), 403],
    ['404 reserved', headReq('/_mezu/nope'), 404],
    ['421 unknown host', headReq('/x', [], 'evil.example'), 421],
    ['400 path', headReq('/a%2fb'), 400],
    ['JWKS', headReq('/.well-known/mezusphere/jwks.json'), 200],
  ];
  for (const [name, req, status] of cases) {
    const r = await raw(stack.port, req, { responses: 1, settleMs: 300 });
    t.deepEqual(r.statuses, [status], name);
    t.is(afterHead(r.text), '', `${name}: no body after the head`);
    // A refusal that closes the connection (the bad path) says Content-Length: 0 (uWS can close only so).
    if (/\r\nconnection: close\r\n/i.test(r.text)) t.is(name, '400 path', `${name}: only the bad path closes`);
    else t.regex(r.text, /\r\ncontent-length: [1-9]\d*\r\n/i, `${name}: the length a GET would get`);
  }
});

// Regression: uWS 20.30's endWithoutBody(n) leaves the response waiting for n bytes and
// endWithoutBody(undefined) reports Content-Length 2^63 (src/errors/http.ts
// endWithoutContent). Forwarded HEADs, 204s and 304s went out that way: the next request on the
// connection aborted it, and a 204 carried a Content-Length. Each case here is followed by a GET on
// the same connection, written once the first answer is in (uWS aborts a pipelined request behind
// a forwarded one).
test.serial('keep-alive after answers without content (HEAD refused or forwarded, 204, 304): the next request on the connection is answered', async (t) => {
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
  const cases: Array<[string, string, number, RegExp | null]> = [
    ['HEAD refused', headReq('/api/v1/items'), 401, /\r\ncontent-length: [1-9]\d*\r\n/i],
    ['HEAD forwarded', headReq('/api/v1/items', [`Cookie: mezu_session=${token}`]), 200, /\r\ncontent-length: [1-9]\d*\r\n/i],
    ['204 from the origin', get('/health?status=204'), 204, null],
    ['304 from the origin', get('/health?status=304'), 304, null],
  ];
  for (const [name, first, status, length] of cases) {
    const r = await raw(stack.port, [first, get('/health?then=1')], { gapMs: 1_000, responses: 2, settleMs: 200, waitMs: 8_000 });
    t.deepEqual(r.statuses, [status, 200], `${name}: ${JSON.stringify(r.text.slice(0, 300))}`);
    t.false(r.closed, `${name}: the connection stays open`);
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n') + 2);
    if (length !== null) t.regex(head, length, `${name}: the length a GET would get`);
    else t.notRegex(head, /content-length/i, `${name}: no Content-Length (RFC 9110 §8.6)`);
  }
});

test.serial('authenticated but missing the role or permission → 403, nothing forwarded', async (t) => {
  await stack.clearOrigin();
  const r = await stack.request('/admin/panel', { headers: cookie(userToken) });
  t.is(r.status, 403);
  t.is(JSON.parse(r.body).error.code, 'MEZU_FORBIDDEN');
  // `/admin/*` also covers `/admin` itself.
  t.is((await stack.request('/admin', { headers: cookie(userToken) })).status, 403);
  // A user on a service-account-only route.
  const w = await stack.request('/webhooks/github', { method: 'POST', headers: { ...cookie(token), 'content-type': 'application/json' }, body: '{}' });
  t.is(w.status, 403);
  t.is(JSON.parse(w.body).error.code, 'MEZU_PRINCIPAL_NOT_ALLOWED');
  // A deny route.
  t.is((await stack.request('/closed/x', { headers: cookie(token) })).status, 403);
  t.is((await stack.originSeen()).length, 0);
  // The admin passes.
  t.is((await stack.request('/admin/panel', { headers: cookie(token) })).status, 200);
});

test.serial('a session of one project is not accepted on another project host', async (t) => {
  await stack.clearOrigin();
  const r = await stack.request('/anything', { host: 'other.localhost', headers: cookie(token) });
  t.is(r.status, 401);
  t.is((await stack.originSeen()).length, 0);
});

test.serial('unknown host → 421; malformed path → 400; traversal is normalized before matching', async (t) => {
  await stack.clearOrigin();
  t.is((await stack.request('/health', { host: 'evil.example' })).status, 421);
  t.is((await stack.request('/api%2fv1/items')).status, 400);
  t.is((await stack.request('/docs/..;/admin/x')).status, 400);
  // `/docs/../admin/x` must be judged as /admin/x (required + role), not as public /docs/*.
  const r = await stack.request('/docs/%2e%2e/admin/x');
  t.is(r.status, 401);
  t.is((await stack.request('/TRACE', { method: 'TRACE' })).status, 405);
  t.is((await stack.originSeen()).length, 0);
  // The origin gets exactly the path that was authorized.
  const ok = await stack.request('/docs//a/./b/../c');
  t.is(ok.status, 200);
  t.is(JSON.parse(ok.body).path, '/docs/a/c');
});

test.serial('service-account keys pass routes that allow them', async (t) => {
  const sa = JSON.parse(stack.cli('service-accounts', 'add', '--project', 'demo', '--name', 'ci', '--permissions', 'hooks:write', '--json').stdout);
  const key = stack.cli('keys', 'create', '--service-account', sa.id).stdout;
  t.regex(key, /^mzk_/);
  await stack.clearOrigin();
  const r = await stack.request('/webhooks/github', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"a":1}' });
  t.is(r.status, 200);
  const seen = await stack.originSeen();
  t.is(seen[0]!.headers['x-mezu-principal-type']![0], 'service_account');
  t.is(seen[0]!.headers['x-mezu-user-id']![0], sa.id);
  t.false('authorization' in seen[0]!.headers, 'the key is not forwarded');
  t.is(seen[0]!.bodyBytes, 7);
  // Not on a users-only route.
  t.is((await stack.request('/api/v1/items', { headers: { authorization: `Bearer ${key}` } })).status, 403);
  // Revoked: refused on the next request.
  const kid = key.slice(4, 20);
  t.is(stack.cli('keys', 'revoke', '--id', kid).status, 0);
  t.is((await stack.request('/webhooks/github', { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' })).status, 401);
});

test.serial('request and response bodies stream through the tunnel', async (t) => {
  const body = Buffer.alloc(3 * 1024 * 1024, 0x61);
  const r = await stack.request('/api/v1/upload', { method: 'PUT', headers: { ...cookie(token), 'content-type': 'application/octet-stream' }, body });
  t.is(r.status, 200);
  t.is(JSON.parse(r.body).bodyBytes, body.length);
  const h = await stack.request('/health', { method: 'HEAD' });
  t.is(h.status, 200);
  t.is(h.body, '');
});

test.serial('a revoked session and a suspended user are refused on the next request in every worker', async (t) => {
  stack.addUser('rev@example.com');
  const s1 = stack.session('rev@example.com');
  const s2 = stack.session('rev@example.com');
  // Fresh connections spread across both workers (SO_REUSEPORT).
  for (let i = 0; i < 8; i++) t.is((await stack.request('/api/v1/me', { headers: cookie(s1) })).status, 200);
  t.is(stack.cli('sessions', 'revoke', '--token', s1).status, 0);
  for (let i = 0; i < 8; i++) t.is((await stack.request('/api/v1/me', { headers: cookie(s1) })).status, 401, `request ${i} after revoke`);
  for (let i = 0; i < 4; i++) t.is((await stack.request('/api/v1/me', { headers: cookie(s2) })).status, 200);
  t.is(stack.cli('users', 'set', '--project', 'demo', '--email', 'rev@example.com', '--status', 'suspended').status, 0);
  for (let i = 0; i < 8; i++) t.is((await stack.request('/api/v1/me', { headers: cookie(s2) })).status, 401, `request ${i} after suspend`);
});

test.serial('an expired session is refused (absolute and idle lifetimes)', async (t) => {
  stack.addUser('old@example.com');
  const s = stack.session('old@example.com');
  t.is((await stack.request('/api/v1/me', { headers: cookie(s) })).status, 200);
  const store = openStore(stack.dir);
  try {
    const th = hashToken(s);
    const rec = store.sessions.get(th)!;
    // Idle: last seen 31 minutes ago (idle lifetime 30m).
    await store.sessions.create(th, { ...rec, lastSeenAt: Date.now() - 31 * 60_000 });
    t.is((await stack.request('/api/v1/me', { headers: cookie(s) })).status, 401);
    // Absolute: created 25 hours ago, seen just now (absolute lifetime 24h).
    await store.sessions.create(th, { ...rec, createdAt: Date.now() - 25 * 3600_000, lastSeenAt: Date.now() });
    t.is((await stack.request('/api/v1/me', { headers: cookie(s) })).status, 401);
    await store.sessions.create(th, { ...rec, lastSeenAt: Date.now() });
    t.is((await stack.request('/api/v1/me', { headers: cookie(s) })).status, 200);
  } finally {
    await store.close();
  }
});

test.serial('a role change reaches the application on the next request (assertion re-minted)', async (t) => {
  stack.addUser('promo@example.com', ['--roles', 'viewer']);
  const s = stack.session('promo@example.com');
  t.is((await stack.request('/admin/x', { headers: cookie(s) })).status, 403);
  t.is(stack.cli('users', 'set', '--project', 'demo', '--email', 'promo@example.com', '--roles', 'admin', '--permissions', 'admin:write').status, 0);
  await stack.clearOrigin();
  t.is((await stack.request('/admin/x', { headers: cookie(s) })).status, 200);
  const seen = await stack.originSeen();
  t.is(seen[0]!.headers['x-mezu-roles']![0], 'admin');
  const claims = JSON.parse(Buffer.from(seen[0]!.headers['x-mezu-assertion']![0]!.split('.')[1]!, 'base64url').toString());
  t.deepEqual(claims.roles, ['admin']);
});

test.serial('a config change is served without restart; an invalid config is refused and the old one keeps serving', async (t) => {
  t.is((await stack.request('/api/v1/items')).status, 401);
  const open = stack.applyText(DEMO_PUBLIC_API);
  t.is(open.status, 0, open.stderr);
  await waitFor('new config served', () => false, 0).catch(() => undefined);
  let status = 0;
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    // Both workers must serve it: check several fresh connections.
    const rs = await Promise.all([1, 2, 3, 4].map(() => stack.request('/api/v1/items')));
    if (rs.every((r) => r.status === 200)) {
      status = 200;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(status, 200);
  const bad = stack.applyText('projects:\n  - id: Demo!\n    hosts: []\n    routes:\n      - { path: api, auth: maybe }\n');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /projects\[0\]\.id/);
  t.regex(bad.stderr, /projects\[0\]\.hosts/);
  t.regex(bad.stderr, /projects\[0\]\.routes\[0\]\.path/);
  t.regex(bad.stderr, /projects\[0\]\.routes\[0\]\.auth/);
  t.regex(bad.stderr, /projects\[0\]\.upstream/);
  await new Promise((r) => setTimeout(r, 400));
  t.is((await stack.request('/api/v1/items')).status, 200, 'the last good config keeps serving');
});

const DEMO_PUBLIC_API = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    routes:
      - { path: /api/v1/*, auth: public }
      - { path: /health,   auth: public }
`;
