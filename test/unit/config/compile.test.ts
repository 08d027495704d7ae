import test from 'ava';
import {
  compileConfig,
  validateConfig,
  type AuthMode,
  type CompiledProject,
  type ProjectConfig,
  type RouteConfig,
  type ValidConfig,
} from '../../../src/config/index.js';

function route(path: string, over: Partial<RouteConfig> = {}): RouteConfig {
  return {
    path,
    methods: null,
    auth: 'required',
    principals: ['user'],
    roles: [],
    permissions: [],
    ...over,
  };
}

function project(routes: RouteConfig[], over: Partial<ProjectConfig> = {}): ProjectConfig {
  return {
    id: 'demo',
    name: 'Demo',
    hosts: ['demo.example'],
    upstream: 'demo-pool',
    session: { absoluteMs: 86_400_000, idleMs: 1_800_000 },
    default: 'required',
    routes,
    ...over,
  };
}

function compileProject(routes: RouteConfig[], def: AuthMode = 'required'): CompiledProject {
  const compiled = compileConfig({ projects: [project(routes, { default: def })] }, 1);
  const p = compiled.projects.get('demo');
  if (p === undefined) throw new Error('project missing');
  return p;
}

/** The rule that decides (method, path). */
function rule(p: CompiledProject, method: string, path: string): string {
  return p.match(method, path).rule;
}

test('exact match beats any prefix', (t) => {
  const p = compileProject([
    route('/*'),
    route('/api/*'),
    route('/api/health', { auth: 'public' }),
    route('/api/health/*'),
  ]);
  t.is(rule(p, 'GET', '/api/health'), 'demo:/api/health');
  t.is(p.match('GET', '/api/health').auth, 'public');
  // The exact rule covers the exact path only.
  t.is(rule(p, 'GET', '/api/health/'), 'demo:/api/health/*');
  t.is(rule(p, 'GET', '/api/health/x'), 'demo:/api/health/*');
  t.is(rule(p, 'GET', '/api/healthz'), 'demo:/api/*');
});

test('a longer prefix beats a shorter one, whatever the order of the rules', (t) => {
  const routes = [route('/a/*'), route('/a/b/*'), route('/a/b/c/*'), route('/*')];
  for (const ordered of [routes, [...routes].reverse()]) {
    const p = compileProject(ordered);
    t.is(rule(p, 'GET', '/a/b/c/d'), 'demo:/a/b/c/*');
    t.is(rule(p, 'GET', '/a/b/c'), 'demo:/a/b/c/*');
    t.is(rule(p, 'GET', '/a/b/x'), 'demo:/a/b/*');
    t.is(rule(p, 'GET', '/a/bc'), 'demo:/a/*');
    t.is(rule(p, 'GET', '/a'), 'demo:/a/*');
    t.is(rule(p, 'GET', '/x'), 'demo:/*');
  }
});

test('a prefix /a/* covers /a, /a/ and everything below, but not /ab', (t) => {
  const p = compileProject([route('/a/*', { auth: 'public' })]);
  t.is(rule(p, 'GET', '/a'), 'demo:/a/*');
  t.is(rule(p, 'GET', '/a/'), 'demo:/a/*');
  t.is(rule(p, 'GET', '/a/b'), 'demo:/a/*');
  t.is(rule(p, 'GET', '/a/b/c/d/'), 'demo:/a/*');
  t.is(rule(p, 'GET', '/ab'), 'demo:default');
  t.is(rule(p, 'GET', '/ab/c'), 'demo:default');
  t.is(rule(p, 'GET', '/'), 'demo:default');
  t.is(rule(p, 'GET', '/b/a'), 'demo:default');
});

test('/* matches every path, including the root', (t) => {
  const p = compileProject([route('/*', { auth: 'public' })]);
  for (const path of ['/', '/a', '/a/', '/a/b/c', '/_anything']) {
    t.is(rule(p, 'GET', path), 'demo:/*', path);
    t.is(p.match('POST', path).auth, 'public');
  }
});

test('method-narrowed rules: the narrowed rule wins for its methods, the others fall through', (t) => {
  const p = compileProject([
    route('/api/*'),
    route('/api/items', { methods: ['POST'], roles: ['writer'] }),
    route('/api/items', { auth: 'public' }),
    route('/health', { auth: 'public', methods: ['GET', 'HEAD'] }),
    route('/docs/*', { auth: 'public', methods: ['GET'] }),
    route('/docs/edit/*', { methods: ['PUT'], roles: ['editor'] }),
  ]);
  // Same path: the rule listing the method beats the one without methods.
  t.is(rule(p, 'POST', '/api/items'), 'demo:/api/items [POST]');
  t.deepEqual(p.match('POST', '/api/items').roles, ['writer']);
  t.is(rule(p, 'GET', '/api/items'), 'demo:/api/items');
  // An exact rule that does not list the method falls through to the prefixes.
  t.is(rule(p, 'GET', '/health'), 'demo:/health [GET,HEAD]');
  t.is(rule(p, 'HEAD', '/health'), 'demo:/health [GET,HEAD]');
  t.is(rule(p, 'POST', '/health'), 'demo:default');
  // …and to a covering prefix when there is one.
  const q = compileProject([route('/*', { auth: 'public' }), route('/status', { methods: ['POST'] })]);
  t.is(rule(q, 'POST', '/status'), 'demo:/status [POST]');
  t.is(rule(q, 'GET', '/status'), 'demo:/*');
  // A longer prefix that does not list the method falls through to a shorter one.
  t.is(rule(p, 'PUT', '/docs/edit/x'), 'demo:/docs/edit/* [PUT]');
  t.is(rule(p, 'GET', '/docs/edit/x'), 'demo:/docs/* [GET]');
  t.is(rule(p, 'DELETE', '/docs/edit/x'), 'demo:default');
  t.is(rule(p, 'DELETE', '/docs/x'), 'demo:default');
});

test('no rule → the project default, including deny and public defaults', (t) => {
  const denied = compileProject([route('/api/*')], 'deny');
  const d = denied.match('GET', '/elsewhere');
  t.is(d.rule, 'demo:default');
  t.is(d.auth, 'deny');
  t.is(denied.match('GET', '/api/x').auth, 'required');

  const open = compileProject([], 'public');
  t.is(open.match('GET', '/').auth, 'public');
  t.is(open.match('GET', '/').rule, 'demo:default');

  const req = compileProject([]);
  const p = req.match('GET', '/x');
  t.is(p.auth, 'required');
  t.true(p.allowUser);
  t.false(p.allowServiceAccount);
  t.is(p.roles, null);
  t.is(p.permissions, null);
});

test('policies carry principals, roles and permissions; empty lists become null', (t) => {
  const p = compileProject([
    route('/webhooks/*', { principals: ['service_account'] }),
    route('/both/*', { principals: ['user', 'service_account'] }),
    route('/admin/*', { roles: ['admin'], permissions: ['admin:write'] }),
  ]);
  const wh = p.match('POST', '/webhooks/github');
  t.false(wh.allowUser);
  t.true(wh.allowServiceAccount);
  const both = p.match('GET', '/both/x');
  t.true(both.allowUser);
  t.true(both.allowServiceAccount);
  const admin = p.match('GET', '/admin/users');
  t.deepEqual(admin.roles, ['admin']);
  t.deepEqual(admin.permissions, ['admin:write']);
  t.is(wh.roles, null);
  t.is(wh.permissions, null);
});

test('the same Policy object is returned for every request (built once at compile time)', (t) => {
  const p = compileProject([route('/api/*'), route('/health', { auth: 'public' })]);
  t.is(p.match('GET', '/api/a'), p.match('POST', '/api/b/c'));
  t.is(p.match('GET', '/health'), p.match('GET', '/health'));
  t.is(p.match('GET', '/x'), p.match('PUT', '/y'));
  // Same shape for every policy, default included.
  t.deepEqual(Object.keys(p.match('GET', '/x')), Object.keys(p.match('GET', '/api/a')));
});

test('everything returned is frozen', (t) => {
  const compiled = compileConfig(
    { projects: [project([route('/admin/*', { roles: ['admin'], permissions: ['p'] })])] },
    7,
  );
  t.is(compiled.version, 7);
  t.true(Object.isFrozen(compiled));
  t.true(Object.isFrozen(compiled.hosts));
  t.true(Object.isFrozen(compiled.projects));
  const p = compiled.hosts.get('demo.example')!;
  t.true(Object.isFrozen(p));
  const policy = p.match('GET', '/admin/x');
  t.true(Object.isFrozen(policy));
  t.true(Object.isFrozen(policy.roles));
  t.true(Object.isFrozen(policy.permissions));
  t.true(Object.isFrozen(p.match('GET', '/other')));
  // The maps expose no way to change them.
  t.is((compiled.hosts as unknown as { set?: unknown }).set, undefined);
  t.is((compiled.projects as unknown as { delete?: unknown }).delete, undefined);
  t.throws(() => {
    (p as unknown as { upstream: string }).upstream = 'evil';
  });
});

test('compiled output does not alias the input config', (t) => {
  const cfg: ValidConfig = { projects: [project([route('/admin/*', { roles: ['admin'] })])] };
  const compiled = compileConfig(cfg, 1);
  cfg.projects[0]!.routes[0]!.roles.push('intruder');
  cfg.projects[0]!.routes[0]!.auth = 'public';
  const policy = compiled.projects.get('demo')!.match('GET', '/admin/x');
  t.deepEqual(policy.roles, ['admin']);
  t.is(policy.auth, 'required');
});

test('hosts and projects maps resolve every host of every project', (t) => {
  const compiled = compileConfig(
    {
      projects: [
        project([], { id: 'a', hosts: ['a.example', 'www.a.example'], upstream: 'pa' }),
        project([], { id: 'b', name: 'Bee', hosts: ['b.example'], upstream: 'pb' }),
      ],
    },
    3,
  );
  t.is(compiled.hosts.size, 3);
  t.is(compiled.projects.size, 2);
  t.is(compiled.hosts.get('a.example'), compiled.projects.get('a'));
  t.is(compiled.hosts.get('www.a.example'), compiled.projects.get('a'));
  const b = compiled.hosts.get('b.example')!;
  t.is(b.id, 'b');
  t.is(b.name, 'Bee');
  t.is(b.upstream, 'pb');
  t.is(b.sessionAbsoluteMs, 86_400_000);
  t.is(b.sessionIdleMs, 1_800_000);
  t.is(compiled.hosts.get('c.example'), undefined);
  t.deepEqual([...compiled.hosts.keys()].sort(), ['a.example', 'b.example', 'www.a.example']);
  const seen: string[] = [];
  compiled.projects.forEach((v, k, m) => {
    seen.push(k);
    t.is(m, compiled.projects);
    t.is(v.id, k);
  });
  t.deepEqual(seen, ['a', 'b']);
});

test('a config validation would refuse (host used twice) fails loudly instead of misrouting', (t) => {
  t.throws(
    () =>
      compileConfig(
        {
          projects: [
            project([], { id: 'a', hosts: ['x.example'] }),
            project([], { id: 'b', hosts: ['x.example'] }),
          ],
        },
        1,
      ),
    { message: /host "x.example"/ },
  );
  t.throws(() => compileConfig({ projects: [project([]), project([], { hosts: ['other'] })] }, 1), {
    message: /project id "demo"/,
  });
});

test('rules validation would refuse as duplicates: the first one listed wins', (t) => {
  const p = compileProject([
    route('/a', { auth: 'public' }),
    route('/a', { auth: 'deny' }),
    route('/b/*', { methods: ['GET'], auth: 'public' }),
    route('/b/*', { methods: ['GET', 'PUT'], auth: 'deny' }),
  ]);
  t.is(p.match('GET', '/a').auth, 'public');
  t.is(p.match('GET', '/b/x').auth, 'public');
  t.is(p.match('PUT', '/b/x').auth, 'deny');
});

test('a zero-project config compiles to empty maps', (t) => {
  const c = compileConfig({ projects: [] }, 0);
  t.is(c.hosts.size, 0);
  t.is(c.projects.size, 0);
});

test('end to end: the documented example validates and routes as documented', (t) => {
  const v = validateConfig({
    projects: [
      {
        id: 'demo',
        hosts: ['Localhost.'],
        upstream: 'demo',
        routes: [
          { path: '/api/v1/*', auth: 'required' },
          { path: '/health', auth: 'public', methods: ['get', 'HEAD'] },
          { path: '/webhooks/*', auth: 'required', principals: ['service_account'] },
          { path: '/docs/*', auth: 'public' },
          { path: '/admin/*', auth: 'required', roles: ['admin'], permissions: ['admin:write'] },
        ],
      },
    ],
  });
  if (!v.ok) {
    t.fail(JSON.stringify(v.problems));
    return;
  }
  const c = compileConfig(v.config, 1);
  const p = c.hosts.get('localhost')!;
  t.is(p.name, 'demo');
  t.is(p.sessionAbsoluteMs, 24 * 3_600_000);
  t.is(p.sessionIdleMs, 30 * 60_000);
  t.is(p.match('GET', '/health').auth, 'public');
  t.is(p.match('POST', '/health').rule, 'demo:default');
  t.is(p.match('GET', '/docs').auth, 'public');
  t.is(p.match('GET', '/docsx').auth, 'required');
  t.is(p.match('GET', '/api/v1/users').rule, 'demo:/api/v1/*');
  t.true(p.match('POST', '/webhooks/x').allowServiceAccount);
  t.deepEqual(p.match('GET', '/admin').roles, ['admin']);
});

test('match never throws on odd paths and always returns a policy', (t) => {
  const p = compileProject([route('/a/*'), route('/*', { auth: 'public' })]);
  for (const path of ['', 'a', '/a//b', '///', '/a/' + 'x/'.repeat(1000)]) {
    const policy = p.match('GET', path);
    t.truthy(policy.rule, path);
  }
  const none = compileProject([route('/a/*')]);
  t.is(none.match('GET', '').rule, 'demo:default');
});
