/**
 * Config pieces of edge hardening: `max_body` (project default, per route),
 * rule matching on folded keys (ASCII case, trailing slash), HEAD following a
 * GET-narrowed rule.
 */
import test from 'ava';
import { validateConfig, compileConfig, parseSize, DEFAULT_MAX_BODY_BYTES } from '../../../src/config/index.js';
import { normalizePath } from '../../../src/route/index.js';

function compiled(routes: unknown[], extra: Record<string, unknown> = {}) {
  const r = validateConfig({ projects: [{ id: 'p', hosts: ['p.example'], upstream: 'p', routes, ...extra }] });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return compileConfig(r.config, 1).projects.get('p')!;
}
/** Matches a request path the way the handler does: by its normalized key. */
function match(project: ReturnType<typeof compiled>, method: string, rawPath: string) {
  const n = normalizePath(rawPath);
  if (!n.ok) throw new Error(n.reason);
  return project.match(method, n.key);
}

test('parseSize: bytes and units', (t) => {
  t.is(parseSize(0), 0);
  t.is(parseSize(1024), 1024);
  t.is(parseSize('1024'), 1024);
  t.is(parseSize('512KiB'), 512 * 1024);
  t.is(parseSize('10MiB'), 10 * 1024 * 1024);
  t.is(parseSize('1.5GB'), 1.5e9);
  t.is(parseSize('2 kb'), 2000);
  for (const bad of ['', 'x', '-1', '1 XB', '1e3', -5, 1.5, null, {}]) t.is(parseSize(bad), null, JSON.stringify(bad));
});

test('max_body: project default, route override, 10 MiB when absent', (t) => {
  const p = compiled([{ path: '/up/*', auth: 'public', max_body: '1MiB' }, { path: '/small', auth: 'public' }], { max_body: '64KiB' });
  t.is(match(p, 'POST', '/up/x').maxBody, 1024 * 1024);
  t.is(match(p, 'POST', '/small').maxBody, 64 * 1024);
  t.is(match(p, 'POST', '/other').maxBody, 64 * 1024, 'the project default rule');
  const d = compiled([{ path: '/x', auth: 'public' }]);
  t.is(match(d, 'POST', '/x').maxBody, DEFAULT_MAX_BODY_BYTES);
  t.is(match(d, 'POST', '/y').maxBody, DEFAULT_MAX_BODY_BYTES);
});

test('max_body: every problem is reported with its place', (t) => {
  const r = validateConfig({ projects: [{ id: 'p', hosts: ['p.example'], upstream: 'p', max_body: 'lots', routes: [{ path: '/a', max_body: '2TiB' }, { path: '/b', max_body: -1 }] }] });
  t.false(r.ok);
  if (r.ok) return;
  const at = r.problems.map((p) => p.at);
  t.true(at.includes('projects[0].max_body'));
  t.true(at.includes('projects[0].routes[0].max_body'));
  t.true(at.includes('projects[0].routes[1].max_body'));
});

test('max_inflight: per rule, 0 (none) when absent and on the project default', (t) => {
  const p = compiled([{ path: '/slow/*', auth: 'public', max_inflight: 8 }, { path: '/fast', auth: 'public' }]);
  t.is(match(p, 'GET', '/slow/x').maxInflight, 8);
  t.is(match(p, 'GET', '/fast').maxInflight, 0);
  t.is(match(p, 'GET', '/other').maxInflight, 0);
});

test('max_inflight: whole numbers from 1 to 1,000,000; every problem reported with its place', (t) => {
  const r = validateConfig({ projects: [{ id: 'p', hosts: ['p.example'], upstream: 'p', routes: [{ path: '/a', max_inflight: 0 }, { path: '/b', max_inflight: 2.5 }, { path: '/c', max_inflight: '10' }, { path: '/d', max_inflight: 1_000_001 }, { path: '/e', max_inflight: 1_000_000 }] }] });
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.problems.map((p) => p.at), ['projects[0].routes[0].max_inflight', 'projects[0].routes[1].max_inflight', 'projects[0].routes[2].max_inflight', 'projects[0].routes[3].max_inflight']);
  t.regex(r.problems[0]!.message, /whole number of requests from 1 to 1000000/);
});

test('rules match ignoring ASCII case and one trailing slash', (t) => {
  const p = compiled([
    { path: '/admin/*', roles: ['admin'] },
    { path: '/metrics', roles: ['ops'] },
    { path: '/API/V1/*', auth: 'public' },
  ]);
  for (const path of ['/admin/x', '/ADMIN/x', '/Admin/', '/admin', '/ADMIN']) t.deepEqual(match(p, 'GET', path).roles, ['admin'], path);
  for (const path of ['/metrics', '/metrics/', '/METRICS', '/Metrics/']) t.deepEqual(match(p, 'GET', path).roles, ['ops'], path);
  for (const path of ['/api/v1/x', '/Api/V1/x']) t.is(match(p, 'GET', path).auth, 'public', path);
  t.is(match(p, 'GET', '/metricsx').rule, 'p:default');
});

test('rules that differ only by case or a trailing slash are duplicates', (t) => {
  const r = validateConfig({ projects: [{ id: 'p', hosts: ['p.example'], upstream: 'p', routes: [{ path: '/Admin' }, { path: '/admin/', auth: 'public' }] }] });
  t.false(r.ok);
  if (!r.ok) t.regex(r.problems[0]!.message, /one path \(matching ignores case and a trailing slash\)/);
});

test('HEAD follows a GET-narrowed rule unless HEAD has its own', (t) => {
  const p = compiled([
    { path: '/reports', methods: ['GET'], roles: ['admin'] },
    { path: '/reports', auth: 'public' },
    { path: '/feeds/*', methods: ['GET'], roles: ['reader'] },
    { path: '/feeds/*', methods: ['HEAD'], auth: 'public' },
  ]);
  t.deepEqual(match(p, 'HEAD', '/reports').roles, ['admin']);
  t.deepEqual(match(p, 'GET', '/reports').roles, ['admin']);
  t.is(match(p, 'POST', '/reports').auth, 'public');
  t.is(match(p, 'HEAD', '/feeds/a').auth, 'public');
  t.deepEqual(match(p, 'GET', '/feeds/a').roles, ['reader']);
});

test('WebSocket settings: per rule, with defaults (websocket on, 1 MiB messages, 5 min idle, 32 sockets) on rules that set none and on the project default', (t) => {
  const p = compiled([
    { path: '/live/*', websocket: true, max_message: '64KiB', idle_timeout: '30s', max_sockets: 2 },
    { path: '/files/*', websocket: false },
  ]);
  const live = match(p, 'GET', '/live/x');
  t.is(live.websocket, true);
  t.is(live.maxMessage, 64 * 1024);
  t.is(live.idleTimeoutMs, 30_000);
  t.is(live.maxSockets, 2);
  t.is(match(p, 'GET', '/files/a').websocket, false);
  for (const other of [match(p, 'GET', '/files/a'), match(p, 'GET', '/elsewhere')]) {
    t.is(other.maxMessage, 1024 * 1024);
    t.is(other.idleTimeoutMs, 5 * 60_000);
    t.is(other.maxSockets, 32);
  }
  t.is(match(p, 'GET', '/elsewhere').websocket, true);
});

test('WebSocket settings: wrong values are refused with their place (max_message up to the 16 MiB ceiling)', (t) => {
  const r = validateConfig({
    projects: [{
      id: 'p', hosts: ['p.example'], upstream: 'p', routes: [
        { path: '/a', websocket: 'yes' }, { path: '/b', max_message: '17MiB' }, { path: '/c', max_message: 0 },
        { path: '/d', idle_timeout: 'soon' }, { path: '/e', max_sockets: 0 }, { path: '/f', max_message: '16MiB', max_sockets: 100_000 },
      ],
    }],
  });
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.problems.map((p) => p.at), ['projects[0].routes[0].websocket', 'projects[0].routes[1].max_message', 'projects[0].routes[2].max_message', 'projects[0].routes[3].idle_timeout', 'projects[0].routes[4].max_sockets']);
  t.regex(r.problems[1]!.message, /16MiB/);
});
