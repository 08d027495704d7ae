/**
 * `GET /api/v1/projects/{id}/stats` on real processes: an edge with two
 * workers, its Warpgate and origin, a Console beside them on the same store.
 * Known traffic — allowed, refused for want of a session, forbidden, denied by
 * the route, failed sign-ins on the hosted login, and 5xx from a project whose
 * pool has no Warpgate — sent on fresh connections so both workers serve it;
 * the stats must equal what was sent, once the primary has gathered the
 * workers' counters (every 5 s), and stay equal on the next rounds (nothing
 * counted twice). The numbers match the schema of docs/openapi.yaml.
 */
import test from 'ava';
import { Stack } from './harness.js';
import { Client } from './login-client.js';
import { call, consoleUser, schemaProblems, startConsole, stopConsole, type ConsoleProc } from './console-client.js';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /health,     auth: public }
      - { path: /admin/*,    auth: required, roles: [admin] }
      - { path: /closed/*,   auth: deny }
  - id: down
    hosts: [down.localhost]
    upstream: nowhere
    routes:
      - { path: /*, auth: public }
`;

const stack = new Stack(2, CONFIG);
let con: ConsoleProc;

test.before(async () => {
  await stack.start();
  con = await startConsole(stack);
});
test.after.always(async () => {
  await stopConsole(con ?? null);
  await stack.stop();
});

async function stats(key: string, project: string): Promise<any> {
  const r = await call(con, 'GET', `/api/v1/projects/${project}/stats`, { key });
  if (r.status !== 200) throw new Error(`stats ${project}: ${r.status} ${r.text}`);
  return r.body;
}

test.serial('the stats of a project equal the traffic sent through both workers', async (t) => {
  const owner = await consoleUser(stack, con, 'owner@example.com', 'owner');
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'dashboards', permissions: ['stats:read'] } })).body;
  const key = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body.key as string;
  const other = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'no-stats', permissions: ['routes:read'] } })).body;
  const otherKey = (await call(con, 'POST', `/api/v1/service-accounts/${other.id}/keys`, { cookie: owner.cookie(), body: {} })).body.key as string;

  stack.addUser('val@example.com', ['--roles', 'viewer']);
  const cookie = { cookie: `mezu_session=${stack.session('val@example.com')}`, accept: 'application/json' };
  const OK = 14;
  const LOGIN = 5;
  const FORBIDDEN = 4;
  const DENIED = 2;
  const PUBLIC = 3;
  const DOWN = 3;
  const FAILED_LOGINS = 3;
  for (let i = 0; i < OK; i++) {
    const r = await stack.request(`/api/v1/items/${i}`, { headers: cookie });
    t.is(r.status, 200);
  }
  for (let i = 0; i < LOGIN; i++) t.is((await stack.request('/api/v1/items', { headers: { accept: 'application/json' } })).status, 401);
  for (let i = 0; i < FORBIDDEN; i++) t.is((await stack.request('/admin/panel', { headers: cookie })).status, 403);
  for (let i = 0; i < DENIED; i++) t.is((await stack.request('/closed/x', { headers: cookie })).status, 403);
  for (let i = 0; i < PUBLIC; i++) t.is((await stack.request('/health')).status, 200);
  for (let i = 0; i < DOWN; i++) t.true((await stack.request('/x', { host: 'down.localhost' })).status >= 500);
  // Failed sign-ins on the hosted login (unknown addresses: the failure is recorded all the same).
  for (let i = 0; i < FAILED_LOGINS; i++) {
    const c = new Client(stack);
    const r = await c.submit('/_mezu/login', { email: `nobody${i}@example.com`, password: 'not the password at all' });
    t.is(r.status, 401, 'the login page again, with an error');
  }

  const total = OK + LOGIN + FORBIDDEN + DENIED + PUBLIC;
  let s: any = null;
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000) {
    s = await stats(key, 'demo');
    if (s.last_hour.requests >= total && s.last_hour.logins.failure >= FAILED_LOGINS) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.deepEqual(schemaProblems('ProjectStats', s), []);
  t.is(s.project, 'demo');
  t.is(s.edges_reporting, 1);
  t.is(s.last_hour.requests, total);
  t.is(s.last_hour.errors_5xx, 0);
  t.deepEqual(s.last_hour.denials, { MEZU_LOGIN_REQUIRED: LOGIN, MEZU_FORBIDDEN: FORBIDDEN, MEZU_ROUTE_DENIED: DENIED });
  t.is(s.last_hour.denials_total, LOGIN + FORBIDDEN + DENIED);
  t.deepEqual(s.last_hour.logins, { success: 0, failure: FAILED_LOGINS });
  t.deepEqual(s.warpgates, { up: 1, total: 1 });
  t.is(s.minutes.length, 60);
  t.is(s.minutes.reduce((a: number, m: any) => a + m.requests, 0), total, 'the minutes add up to the hour');
  t.is(s.minutes.reduce((a: number, m: any) => a + m.denials, 0), LOGIN + FORBIDDEN + DENIED);
  t.true(s.last_hour.latency_ms.p50 > 0 && s.last_hour.latency_ms.p99 >= s.last_hour.latency_ms.p50, JSON.stringify(s.last_hour.latency_ms));
  t.true(s.minutes.some((m: any) => m.p99_ms !== null));

  // 5xx: the project whose pool has no Warpgate.
  const down = (await call(con, 'GET', '/api/v1/projects/down/stats', { cookie: owner.cookie() })).body;
  t.is(down.last_hour.requests, DOWN);
  t.is(down.last_hour.errors_5xx, DOWN);
  t.deepEqual(down.warpgates, { up: 0, total: 0 });

  // Two more rounds of the primary (5 s each): nothing counted twice, the rate back to zero.
  await new Promise((r) => setTimeout(r, 11_000));
  const again = await stats(key, 'demo');
  t.is(again.last_hour.requests, total);
  t.deepEqual(again.last_hour.denials, s.last_hour.denials);
  t.is(again.requests_per_second, 0);

  // A key needs stats:read, and sees only its own project.
  t.is((await call(con, 'GET', '/api/v1/projects/demo/stats', { key: otherKey })).status, 403);
  t.is((await call(con, 'GET', '/api/v1/projects/down/stats', { key })).status, 403);
  t.is((await call(con, 'GET', '/api/v1/projects/nope/stats', { cookie: owner.cookie() })).status, 404);

  // The overview page shows the same numbers, drawn as SVG, and reloads itself.
  const page = await owner.get('/overview');
  t.is(page.status, 200);
  t.regex(page.text, /<meta http-equiv="refresh" content="5">/);
  t.regex(page.text, new RegExp(`data-stat="requests">${total}<`));
  t.regex(page.text, /<svg class="chart" id="chart-requests-demo"/);
  t.false(page.text.includes('<script'));
});
