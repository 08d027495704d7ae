/**
 * Paths, methods and hosts on raw sockets: the path the edge authorizes is the
 * path the origin receives (or the request is refused), whatever the client's
 * spelling; `/_mezu/` can be neither escaped from nor traversed into; hosts
 * match case-insensitively with a trailing dot and a port tolerated.
 *
 * Story: the classic authorizer/application splits — `/admin/..;/` (servlet
 * path parameters), `%2e%2e` and `%c0%ae` (decoded once more, or overlong, by
 * the application), `%2f` (decoded into a separator after routing), full-width
 * `．` (NFKC in the application), `/ADMIN` (case-insensitive routers such as
 * Express's default), `/metrics/` (routers that ignore a trailing slash), HEAD
 * served by the GET handler.
 */
import test from 'ava';
import { Stack } from '../integration/harness.js';
import { SECURITY_CONFIG, head, pool } from './config.js';
import { raw, errorCode } from './raw.js';

const stack = new Stack(1, SECURITY_CONFIG);
let admin = '';
let viewer = '';

test.before(async () => {
  await stack.start();
  stack.addUser('admin@example.com', ['--roles', 'admin']);
  stack.addUser('viewer@example.com', ['--roles', 'viewer']);
  admin = stack.session('admin@example.com');
  viewer = stack.session('viewer@example.com');
});
test.after.always(async () => {
  await stack.stop();
});

const as = (token: string) => [`Cookie: mezu_session=${token}`];

test.serial('malformed or ambiguous paths: 400 MEZU_PATH_INVALID, connection closed, nothing forwarded', async (t) => {
  const bad = [
    '/public%2fx', '/public%2Fx', '/public%5cx', '/public\\x', '/public/%00', '/public/%0d%0aX-Mezu-User-Id:%20evil',
    '/public/..;/admin/x', '/public/x;jsessionid=1', '/admin;/x', '/public/%3b/x', '/public/%3B',
    '/public/%c0%ae%c0%ae/admin/x', '/public/%c0%af', '/public/%e0%80%ae', '/public/%ed%a0%80', '/public/%c3', '/public/%ff',
    '/public/%ef%bc%8e%ef%bc%8e/admin/x', '/public%ef%bc%8fadmin', '/%ef%bc%a1dmin/x', '/%e2%84%aaey', '/public/%c2%a0',
    '/public/%e2%88%95admin', '/public/%c2%a5admin',
    '/public/%u002e%u002e/admin', '/public/%2', '/public/%zz',
    '/..', '/../admin/x', '/public/../../admin/x', '/%2e%2e/admin/x',
    '/public/x#frag', '/public/\u00e9', '/public/x?a#b', '/public/x?a=\u00e9',
  ];
  await stack.clearOrigin();
  const results = await pool(bad, 8, (p) => raw(stack.port, head('GET', p, as(admin))));
  bad.forEach((p, i) => {
    const r = results[i]!;
    t.deepEqual(r.statuses, [400], `${p}: ${r.text.slice(0, 80)}`);
    t.is(errorCode(r.text), 'MEZU_PATH_INVALID', p);
    t.true(r.closed, `${p}: closed`);
  });
  t.deepEqual(await stack.originSeen(), []);
});

test.serial('traversal and slashes are resolved before matching: the protected rule decides, and the origin gets the resolved path', async (t) => {
  const spellings = ['/public/../admin/x', '/public/%2e%2e/admin/x', '/public/.%2E/admin/x', '//admin/x', '/public/./../admin/./x', '/public//..//admin/x', '/%61dmin/x', '/admin/y/../x'];
  await stack.clearOrigin();
  for (const p of spellings) {
    t.deepEqual((await raw(stack.port, head('GET', p), { responses: 1 })).statuses, [401], `${p} anonymous`);
    t.deepEqual((await raw(stack.port, head('GET', p, as(viewer)), { responses: 1 })).statuses, [403], `${p} viewer`);
  }
  t.deepEqual(await stack.originSeen(), [], 'nothing forwarded for anonymous or viewer');
  for (const p of spellings) t.deepEqual((await raw(stack.port, head('GET', p, as(admin)), { responses: 1 })).statuses, [200], `${p} admin`);
  const seen = await stack.originSeen();
  t.deepEqual([...new Set(seen.map((s) => s.path))], ['/admin/x'], 'the origin only ever sees the resolved path');
});

test.serial('case and a trailing slash: matched on the folded key; the origin gets the client\'s spelling', async (t) => {
  await stack.clearOrigin();
  const protectedSpellings = ['/ADMIN/x', '/Admin/x', '/aDmIn/', '/ADMIN', '/METRICS', '/metrics/', '/Metrics/', '/%41DMIN/x'];
  for (const p of protectedSpellings) {
    t.deepEqual((await raw(stack.port, head('GET', p), { responses: 1 })).statuses, [401], `${p} anonymous`);
    t.deepEqual((await raw(stack.port, head('GET', p, as(viewer)), { responses: 1 })).statuses, [403], `${p} viewer`);
  }
  t.deepEqual(await stack.originSeen(), []);
  t.deepEqual((await raw(stack.port, head('GET', '/ADMIN/Panel', as(admin)), { responses: 1 })).statuses, [200]);
  t.deepEqual((await raw(stack.port, head('GET', '/Public/X'), { responses: 1 })).statuses, [200]);
  t.deepEqual((await raw(stack.port, head('GET', '/health/'), { responses: 1 })).statuses, [200]);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => s.path), ['/ADMIN/Panel', '/Public/X', '/health/']);
});

test.serial('HEAD follows a GET-narrowed rule; other methods keep their own rule', async (t) => {
  await stack.clearOrigin();
  t.deepEqual((await raw(stack.port, head('GET', '/reports'), { responses: 1 })).statuses, [401]);
  t.deepEqual((await raw(stack.port, head('HEAD', '/reports'), { responses: 1 })).statuses, [401]);
  t.deepEqual((await raw(stack.port, head('HEAD', '/reports', as(viewer)), { responses: 1 })).statuses, [403]);
  t.deepEqual(await stack.originSeen(), []);
  t.deepEqual((await raw(stack.port, head('HEAD', '/reports', as(admin)), { responses: 1 })).statuses, [200]);
  t.deepEqual((await raw(stack.port, head('POST', '/reports', ['Content-Length: 0']), { responses: 1 })).statuses, [200]);
  t.deepEqual((await raw(stack.port, head('OPTIONS', '/reports'), { responses: 1 })).statuses, [200]);
  t.deepEqual((await stack.originSeen()).map((s) => s.method), ['HEAD', 'POST', 'OPTIONS']);
});

test.serial('the query is forwarded verbatim and never routes; "%23" and "%2F" in a query are data', async (t) => {
  await stack.clearOrigin();
  const r = await raw(stack.port, head('GET', '/public/x?next=/../admin/x&a=%23b&c=%2F;d'), { responses: 1 });
  t.deepEqual(r.statuses, [200]);
  const a = await raw(stack.port, head('GET', '/admin/x?/public/x'), { responses: 1 });
  t.deepEqual(a.statuses, [401]);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.path} ${s.query}`), ['/public/x next=/../admin/x&a=%23b&c=%2F;d']);
});

test.serial('/_mezu/ is served by the edge in every spelling and never forwarded; traversal out of it is judged by the target\'s rule', async (t) => {
  await stack.clearOrigin();
  const pages: [string, number][] = [
    ['/_mezu/login', 200],
    ['/_mezu/login/', 200],
    ['/_MEZU/Login', 200],
    ['/%5Fmezu/login', 200],
    ['/public/../_mezu/login', 200],
    ['/public/%2e%2e/_mezu/login', 200],
    ['/_mezu/../_mezu/login', 200],
    ['/_mezu', 404],
    ['/_mezu/', 404],
    ['/_mezu/nope', 404],
    ['/_MEZU/nope', 404],
    ['/.well-known/mezusphere/jwks.json', 200],
    ['/.WELL-KNOWN/MezuSphere/JWKS.json/', 200],
  ];
  for (const [p, want] of pages) {
    const r = await raw(stack.port, head('GET', p, ['Accept: text/html']), { responses: 1 });
    t.deepEqual(r.statuses, [want], p);
  }
  for (const p of ['/_mezu/../admin/x', '/_mezu/%2e%2e/admin/x']) {
    t.deepEqual((await raw(stack.port, head('GET', p, as(viewer)), { responses: 1 })).statuses, [403], p);
  }
  t.deepEqual((await raw(stack.port, head('GET', '/_mezu%2flogin'))).statuses, [400]);
  t.deepEqual(await stack.originSeen(), [], 'nothing under /_mezu/ reaches the origin');
});

test.serial('hosts: case-insensitive, trailing dot and port tolerated; unknown → 421; malformed or repeated → 400', async (t) => {
  await stack.clearOrigin();
  const ok = ['localhost', 'LOCALHOST', 'LocalHost.', 'localhost:80', 'localhost:8080', '127.0.0.1', '127.0.0.1:443'];
  for (const h of ok) {
    const r = await raw(stack.port, `GET /public/host HTTP/1.1\r\nHost: ${h}\r\n\r\n`, { responses: 1 });
    t.deepEqual(r.statuses, [200], h);
  }
  const other = await raw(stack.port, 'GET /anything HTTP/1.1\r\nHost: OTHER.localhost.\r\n\r\n', { responses: 1 });
  t.deepEqual(other.statuses, [200], 'other.localhost is its own project (public)');
  for (const h of ['evil.example', 'localhost..', 'localhost.evil.example', 'xn--localhost']) {
    const unknown = await raw(stack.port, `GET /public/host HTTP/1.1\r\nHost: ${h}\r\n\r\n`, { responses: 1 });
    t.deepEqual(unknown.statuses, [421], h);
    t.is(errorCode(unknown.text), 'MEZU_HOST_UNKNOWN');
  }
  for (const h of ['', 'localhost@evil.example', 'localhost:99999', 'localhost:x', 'local host', '[::1', 'localhost/x', 'localhost%2e']) {
    const r = await raw(stack.port, `GET /public/host HTTP/1.1\r\nHost: ${h}\r\n\r\n`);
    t.deepEqual(r.statuses, [400], JSON.stringify(h));
    t.true(r.closed);
  }
  const dup = await raw(stack.port, 'GET /public/host HTTP/1.1\r\nHost: localhost\r\nHost: other.localhost\r\n\r\n');
  t.deepEqual(dup.statuses, [400]);
  t.is(errorCode(dup.text), 'MEZU_HOST_INVALID');
  const seen = await stack.originSeen();
  t.is(seen.length, ok.length + 1);
  // The origin sees the client's Host as :authority, and the project the edge chose.
  t.deepEqual(seen.map((s) => s.headers['x-forwarded-host']![0]), [...ok, 'OTHER.localhost.']);
});
