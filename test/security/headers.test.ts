/**
 * Headers on raw sockets: reserved identity names in every spelling, names
 * listed in `Connection`, client routing and address claims, X-Forwarded-For
 * from trusted proxies only, and no header that exempts a request from
 * authentication.
 *
 * Story: identity-aware proxies have shipped each of these: a client-sent
 * `X-Forwarded-User`/`Remote-User` passed through as identity, an app that
 * honoured `X-Original-URL` after the proxy authorized a different path
 * (Symfony, CVE-2018-14773), `Connection: X-Auth-User` making a proxy strip the
 * header it had just added (hop-by-hop abuse), `X-Forwarded-For` believed from
 * anyone. The origin here records exactly what it received.
 */
import test from 'ava';
import { Stack } from '../integration/harness.js';
import { SECURITY_CONFIG, head } from './config.js';
import { raw, errorCode } from './raw.js';

const stack = new Stack(1, SECURITY_CONFIG);
let admin = '';
let viewer = '';
let key = '';

test.before(async () => {
  await stack.start();
  stack.addUser('admin@example.com', ['--roles', 'admin']);
  stack.addUser('viewer@example.com', ['--roles', 'viewer']);
  admin = stack.session('admin@example.com');
  viewer = stack.session('viewer@example.com');
  const sa = JSON.parse(stack.cli('service-accounts', 'add', '--project', 'demo', '--name', 'hooks', '--json').stdout) as { id: string };
  key = stack.cli('keys', 'create', '--service-account', sa.id).stdout;
});
test.after.always(async () => {
  await stack.stop();
});

const IDENTITY = ['x-mezu-user-id', 'x-mezu-user-email', 'x-mezu-user-name', 'x-mezu-principal-type', 'x-mezu-auth-method', 'x-mezu-auth-time', 'x-mezu-auth-acr', 'x-mezu-roles', 'x-mezu-permissions', 'x-mezu-request-id', 'x-mezu-assertion'];
/** Set from the assertion only when it has the claim: a session that never used a second factor has no step-up time. */
const OPTIONAL = ['x-mezu-step-up-time'];

async function only(t: import('ava').ExecutionContext, path: string) {
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => s.path), [path]);
  return seen[0]!.headers;
}

test.serial('reserved x-mezu-* names in every case and repeated are stripped; the origin sees one copy of each, set from the verified assertion', async (t) => {
  await stack.clearOrigin();
  const forged = [
    'X-Mezu-User-Id: usr_forged',
    'x-mezu-user-id: usr_forged2',
    'X-MEZU-ROLES: root',
    'x-MeZu-PeRmIsSiOnS: everything',
    'X-Mezu-Principal-Type: service_account',
    'X-Mezu-Assertion: forged.jwt.value',
    'X-Mezu-Request-Id: rid-forged',
    'X-Mezu-Project: other',
    'X-Mezu-Anything: x',
    'X-Mezu-Auth-Acr: mfa',
    'X-Mezu-Step-Up-Time: 1',
  ];
  const r = await raw(stack.port, head('GET', '/admin/x', [`Cookie: mezu_session=${admin}`, ...forged]), { responses: 1 });
  t.deepEqual(r.statuses, [200]);
  const h = await only(t, '/admin/x');
  for (const name of Object.keys(h)) if (name.startsWith('x-mezu-')) t.true(IDENTITY.includes(name) || OPTIONAL.includes(name), `unexpected ${name} at the origin`);
  for (const name of IDENTITY) t.is(h[name]?.length, 1, `${name} exactly once`);
  t.deepEqual(h['x-mezu-auth-acr'], ['pwd'], 'a forged acr is replaced by the assertion\'s');
  t.false('x-mezu-step-up-time' in h, 'no step-up: no step-up time, whatever the client sent');
  t.not(h['x-mezu-user-id']![0], 'usr_forged');
  t.is(h['x-mezu-roles']![0], 'admin');
  t.is(h['x-mezu-principal-type']![0], 'user');
  t.not(h['x-mezu-request-id']![0], 'rid-forged');
  t.not(h['x-mezu-assertion']![0], 'forged.jwt.value');
  t.false('x-mezu-anything' in h);
  // On a public route: no identity at all, forged or not.
  await stack.clearOrigin();
  const p = await raw(stack.port, head('GET', '/public/x', forged), { responses: 1 });
  t.deepEqual(p.statuses, [200]);
  const ph = await only(t, '/public/x');
  for (const name of Object.keys(ph)) t.false(name.startsWith('x-mezu-') && name !== 'x-mezu-request-id', `${name} reached the origin on a public route`);
});

test.serial('names listed in Connection are removed from the client\'s headers only: a client cannot remove or replace a header the edge adds', async (t) => {
  await stack.clearOrigin();
  const listed = 'Connection: keep-alive, x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-mezu-request-id, x-mezu-assertion, x-mezu-project, x-mezu-user-id, cookie, authorization, x-custom, host';
  const r = await raw(stack.port, head('GET', '/admin/x', [listed, `Cookie: mezu_session=${admin}; theme=dark`, 'X-Custom: 1', 'X-Other: 2']), { responses: 1 });
  t.deepEqual(r.statuses, [200], 'the session cookie still authenticates');
  const h = await only(t, '/admin/x');
  t.deepEqual(h['x-forwarded-for'], ['127.0.0.1']);
  t.deepEqual(h['x-forwarded-proto'], ['http']);
  t.deepEqual(h['x-forwarded-host'], ['localhost']);
  t.is(h['x-mezu-user-id']?.length, 1);
  t.is(h['x-mezu-assertion']?.length, 1);
  t.is(h['x-mezu-request-id']?.length, 1);
  t.false('x-custom' in h, 'a client-listed name of its own is removed');
  t.deepEqual(h['x-other'], ['2']);
  t.false('connection' in h && h.connection!.some((v) => v.includes('x-forwarded-for')), 'the Connection list itself is never forwarded');
});

test.serial('client routing and address claims never reach the origin and never change routing or authorization', async (t) => {
  const claims = [
    'X-Original-URL: /admin/x',
    'X-Rewrite-URL: /admin/x',
    'X-Original-URI: /admin/x',
    'X-HTTP-Method-Override: DELETE',
    'X-HTTP-Method: DELETE',
    'X-Method-Override: DELETE',
    'X-Forwarded-Prefix: /admin',
    'X-Forwarded-Uri: /admin/x',
    'X-Forwarded-Method: DELETE',
    'X-Forwarded-Host: other.localhost',
    'X-Forwarded-Proto: https',
    'X-Forwarded-Port: 443',
    'X-Forwarded-Server: evil',
    'X-Forwarded-For: 10.0.0.1',
    'Forwarded: for=10.0.0.1;host=other.localhost;proto=https',
    'X-Real-IP: 10.0.0.1',
    'True-Client-IP: 10.0.0.1',
    'X-Client-IP: 10.0.0.1',
    'CF-Connecting-IP: 10.0.0.1',
    'X-Original-Host: other.localhost',
    'X-Host: other.localhost',
  ];
  // A public path: forwarded as GET /public/x with none of the claims.
  await stack.clearOrigin();
  const pub = await raw(stack.port, head('GET', '/public/x', claims), { responses: 1 });
  t.deepEqual(pub.statuses, [200]);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.method} ${s.path}`), ['GET /public/x']);
  const h = seen[0]!.headers;
  for (const c of claims) {
    const name = c.slice(0, c.indexOf(':')).toLowerCase();
    if (name === 'x-forwarded-for' || name === 'x-forwarded-host' || name === 'x-forwarded-proto') continue;
    t.false(name in h, `${name} reached the origin`);
  }
  t.deepEqual(h['x-forwarded-for'], ['127.0.0.1']);
  t.deepEqual(h['x-forwarded-host'], ['localhost']);
  t.deepEqual(h['x-forwarded-proto'], ['http']);
  // A protected path stays protected whatever the claims say.
  await stack.clearOrigin();
  const prot = await raw(stack.port, head('GET', '/admin/x', claims.map((c) => c.replace('/admin/x', '/public/x'))), { responses: 1 });
  t.deepEqual(prot.statuses, [401]);
  const deny = await raw(stack.port, head('GET', '/closed/x', ['X-Original-URL: /public/x', 'X-HTTP-Method-Override: GET']), { responses: 1 });
  t.deepEqual(deny.statuses, [403]);
  // The project comes from Host, never from X-Forwarded-Host: other.localhost would be public.
  const other = await raw(stack.port, head('GET', '/anything', ['X-Forwarded-Host: other.localhost', 'Forwarded: host=other.localhost']), { responses: 1 });
  t.deepEqual(other.statuses, [401]);
  t.deepEqual(await stack.originSeen(), []);
});

test.serial('no header exempts a request from authentication', async (t) => {
  await stack.clearOrigin();
  // A real assertion, captured from an authorized request, replayed as a header.
  const a = await raw(stack.port, head('GET', '/api/capture', [`Cookie: mezu_session=${viewer}`]), { responses: 1 });
  t.deepEqual(a.statuses, [200]);
  const captured = (await stack.originSeen())[0]!.headers['x-mezu-assertion']![0]!;
  await stack.clearOrigin();
  const attempts: string[][] = [
    ['User-Agent: Googlebot/2.1 (+http://www.google.com/bot.html)'],
    ['User-Agent: kube-probe/1.29', 'X-Forwarded-For: 127.0.0.1'],
    ['X-Real-IP: 127.0.0.1', 'X-Forwarded-For: 127.0.0.1'],
    [`X-Mezu-Assertion: ${captured}`],
    [`X-Mezu-Assertion: ${captured}`, 'X-Mezu-User-Id: usr_x', 'X-Mezu-Principal-Type: user'],
    ['Authorization: Basic YWRtaW46YWRtaW4='],
    [`Authorization: Bearer ${captured}`],
    [`Authorization: Bearer ${viewer}`],
    ['Authorization: Bearer mzk_notakey'],
    [`Cookie: mezu_session=${viewer.slice(0, -1)}x`],
    [`Cookie: __Host-mezu_session=${viewer}`],
    [`Cookie: MEZU_SESSION=${viewer}`],
    ['X-Forwarded-User: admin', 'X-Auth-Request-User: admin', 'Remote-User: admin', 'X-Remote-User: admin'],
    ['Origin: http://localhost', 'Referer: http://localhost/_mezu/login', 'Sec-Fetch-Site: same-origin'],
    ['X-Requested-With: XMLHttpRequest', 'X-Api-Key: anything'],
  ];
  for (const fields of attempts) {
    const r = await raw(stack.port, head('GET', '/api/x', fields), { responses: 1 });
    t.deepEqual(r.statuses, [401], fields.join(' | '));
    t.is(errorCode(r.text), 'MEZU_LOGIN_REQUIRED');
  }
  t.deepEqual(await stack.originSeen(), [], 'nothing forwarded');
});

test.serial('a service-account key is accepted with any case of "Bearer" and never forwarded', async (t) => {
  await stack.clearOrigin();
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    const r = await raw(stack.port, head('POST', '/hooks/x', [`Authorization: ${scheme} ${key}`, 'Content-Length: 2']) + '{}', { responses: 1 });
    t.deepEqual(r.statuses, [200], scheme);
  }
  const seen = await stack.originSeen();
  t.is(seen.length, 3);
  for (const s of seen) {
    t.false('authorization' in s.headers, 'the key never reaches the origin');
    t.deepEqual(s.headers['x-mezu-principal-type'], ['service_account']);
  }
});

test.serial('X-Forwarded-For is believed only from trusted_proxies: then the right-most untrusted hop, else the socket peer', async (t) => {
  await stack.clearOrigin();
  const r0 = await raw(stack.port, head('GET', '/public/xff', ['X-Forwarded-For: 9.9.9.9, 1.2.3.4']), { responses: 1 });
  t.deepEqual(r0.statuses, [200]);
  t.deepEqual((await stack.originSeen())[0]!.headers['x-forwarded-for'], ['127.0.0.1'], 'no trusted proxies: the peer');
  // Trust loopback (the test client is the "proxy").
  const applied = stack.applyText(SECURITY_CONFIG.replace('projects:', 'trusted_proxies: [127.0.0.1]\nprojects:'));
  t.is(applied.status, 0, applied.stderr);
  const cases: [string[], string][] = [
    [['X-Forwarded-For: 9.9.9.9, 1.2.3.4'], '1.2.3.4'],
    [['X-Forwarded-For: 9.9.9.9', 'X-Forwarded-For: 1.2.3.4, 127.0.0.1'], '1.2.3.4'],
    [['X-Forwarded-For: 1.2.3.4, not-an-ip'], '127.0.0.1'],
    [[], '127.0.0.1'],
  ];
  try {
    let ready = false;
    for (let i = 0; i < 50 && !ready; i++) {
      await stack.clearOrigin();
      await raw(stack.port, head('GET', '/public/probe', ['X-Forwarded-For: 5.5.5.5']), { responses: 1 });
      ready = (await stack.originSeen())[0]?.headers['x-forwarded-for']?.[0] === '5.5.5.5';
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    t.true(ready, 'the new config is served');
    for (const [fields, want] of cases) {
      await stack.clearOrigin();
      const r = await raw(stack.port, head('GET', '/public/xff', fields), { responses: 1 });
      t.deepEqual(r.statuses, [200]);
      t.deepEqual((await stack.originSeen())[0]!.headers['x-forwarded-for'], [want], fields.join(' | '));
    }
  } finally {
    stack.applyText(SECURITY_CONFIG);
  }
});
