import test from 'ava';
import {
  parseConfigYaml,
  validateConfig,
  type ConfigProblem,
  type ValidationResult,
} from '../../../src/config/index.js';

function problems(r: ValidationResult): ConfigProblem[] {
  if (r.ok) throw new Error(`expected problems, got a valid config: ${JSON.stringify(r.config)}`);
  return r.problems;
}

function at(r: ValidationResult): string[] {
  return problems(r).map((p) => p.at);
}

/** The message reported at `where` (fails the lookup loudly when there is none). */
function messageAt(r: ValidationResult, where: string): string {
  const found = problems(r).filter((p) => p.at === where);
  if (found.length !== 1) {
    throw new Error(`expected one problem at ${where}, got ${JSON.stringify(problems(r))}`);
  }
  return found[0]!.message;
}

/** A minimal valid project, with `over` merged on top. */
function proj(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'demo', hosts: ['demo.example'], upstream: 'demo', ...over };
}

/** A config with one project holding `routes`. */
function withRoutes(...routes: unknown[]): unknown {
  return { projects: [proj({ routes })] };
}

const EXAMPLE_YAML = `
projects:
  - id: demo                # required
    name: Demo
    hosts: [Localhost., App.Example.com]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /health,     auth: public, methods: [get, HEAD] }
      - { path: /webhooks/*, auth: required, principals: [service_account] }
      - { path: /docs/*,     auth: public }
      - { path: /admin/*,    auth: required, roles: [admin], permissions: [admin:write] }
  - id: other
    hosts: [other.example]
    upstream: other-pool
`;

test('the documented example parses into a normalized ValidConfig', (t) => {
  const r = parseConfigYaml(EXAMPLE_YAML);
  if (!r.ok) {
    t.fail(JSON.stringify(r.problems, null, 2));
    return;
  }
  const [demo, other] = r.config.projects;
  t.deepEqual(demo, {
    id: 'demo',
    name: 'Demo',
    hosts: ['localhost', 'app.example.com'],
    upstream: 'demo',
    session: { absoluteMs: 86_400_000, idleMs: 1_800_000 },
    default: 'required',
    routes: [
      { path: '/api/v1/*', methods: null, auth: 'required', principals: ['user'], roles: [], permissions: [] },
      { path: '/health', methods: ['GET', 'HEAD'], auth: 'public', principals: ['user'], roles: [], permissions: [] },
      { path: '/webhooks/*', methods: null, auth: 'required', principals: ['service_account'], roles: [], permissions: [] },
      { path: '/docs/*', methods: null, auth: 'public', principals: ['user'], roles: [], permissions: [] },
      { path: '/admin/*', methods: null, auth: 'required', principals: ['user'], roles: ['admin'], permissions: ['admin:write'] },
    ],
  });
  // Defaults: name = id, 24h / 30m, required, no routes.
  t.deepEqual(other, {
    id: 'other',
    name: 'other',
    hosts: ['other.example'],
    upstream: 'other-pool',
    session: { absoluteMs: 86_400_000, idleMs: 1_800_000 },
    default: 'required',
    routes: [],
  });
});

test('a config with zero projects is valid', (t) => {
  t.deepEqual(validateConfig({ projects: [] }), { ok: true, config: { projects: [] } });
  t.deepEqual(parseConfigYaml('projects: []\n'), { ok: true, config: { projects: [] } });
});

test('a config with several mistakes reports every one of them, each at its location', (t) => {
  const r = parseConfigYaml(`
projects:
  - id: Demo_1
    hosts: [localhost, "https://app.example.com", "*.example.com", "app.example.com:8443", ""]
    upstream: demo
    session: { absolute: 1h, idle: 2h }
    default: allow
    rolse: [admin]
    routes:
      - { path: api/*, auth: required }
      - { path: /health, auth: requried }
      - { path: /admin/*, auth: public, roles: [admin] }
      - { path: /a/*/b }
      - { path: /x, methods: [GET, TRACE, "bad method"] }
      - { path: /y, principals: [users] }
      - { path: /z, roles: ["two words", "a,b", ""] }
      - { path: /_mezu/login }
      - { path: /a/../b }
      - just-a-string
  - hosts: localhost
    upstream: 5
`);
  t.deepEqual(at(r), [
    'projects[0].rolse',
    'projects[0].id',
    'projects[0].hosts[1]',
    'projects[0].hosts[2]',
    'projects[0].hosts[3]',
    'projects[0].hosts[4]',
    'projects[0].session.idle',
    'projects[0].default',
    'projects[0].routes[0].path',
    'projects[0].routes[1].auth',
    'projects[0].routes[2].roles',
    'projects[0].routes[3].path',
    'projects[0].routes[4].methods[1]',
    'projects[0].routes[4].methods[2]',
    'projects[0].routes[5].principals[0]',
    'projects[0].routes[6].roles[0]',
    'projects[0].routes[6].roles[1]',
    'projects[0].routes[6].roles[2]',
    'projects[0].routes[7].path',
    'projects[0].routes[8].path',
    'projects[0].routes[9]',
    'projects[1].id',
    'projects[1].hosts',
    'projects[1].upstream',
  ]);
  t.is(messageAt(r, 'projects[0].routes[1].auth'), 'must be one of required, public, deny; got "requried"');
  t.is(messageAt(r, 'projects[0].default'), 'must be one of required, public, deny; got "allow"');
  t.regex(messageAt(r, 'projects[0].rolse'), /did you mean "routes"|did you mean "roles"|unknown key/);
  t.regex(messageAt(r, 'projects[0].id'), /lower-case letters, digits and "-".*got "Demo_1"/);
  t.regex(messageAt(r, 'projects[0].hosts[1]'), /not a URL/);
  t.regex(messageAt(r, 'projects[0].hosts[2]'), /wildcards/);
  t.regex(messageAt(r, 'projects[0].hosts[3]'), /port/);
  t.regex(messageAt(r, 'projects[0].hosts[4]'), /empty/);
  t.regex(messageAt(r, 'projects[0].session.idle'), /not be longer than session\.absolute \(2h > 1h\)/);
  t.regex(messageAt(r, 'projects[0].routes[0].path'), /start with "\/"; write "\/api\/\*"/);
  t.regex(messageAt(r, 'projects[0].routes[2].roles'), /ignored on a "public" route.*set auth: required/);
  t.regex(messageAt(r, 'projects[0].routes[3].path'), /only as a final "\/\*"/);
  t.regex(messageAt(r, 'projects[0].routes[4].methods[1]'), /TRACE/);
  t.regex(messageAt(r, 'projects[0].routes[4].methods[2]'), /HTTP method.*got "bad method"/);
  t.regex(messageAt(r, 'projects[0].routes[5].principals[0]'), /one of user, service_account; got "users"/);
  t.regex(messageAt(r, 'projects[0].routes[7].path'), /reserved/);
  t.regex(messageAt(r, 'projects[0].routes[8].path'), /normalized form.*write "\/b"/);
  t.regex(messageAt(r, 'projects[0].routes[9]'), /mapping.*got "just-a-string"/);
  t.regex(messageAt(r, 'projects[1].id'), /is required/);
  t.regex(messageAt(r, 'projects[1].hosts'), /list of host names.*got "localhost"/);
  t.regex(messageAt(r, 'projects[1].upstream'), /got 5/);
});

test('unknown keys at every level are reported, with a suggestion for near-misses', (t) => {
  const r = validateConfig({
    projets: [],
    projects: [
      proj({
        hots: ['x'],
        session: { absolut: '1h' },
        routes: [{ path: '/a', rolse: ['admin'], method: ['GET'] }],
      }),
    ],
  });
  t.deepEqual(at(r), [
    'projets',
    'projects[0].hots',
    'projects[0].session.absolut',
    'projects[0].routes[0].rolse',
    'projects[0].routes[0].method',
  ]);
  t.regex(messageAt(r, 'projets'), /did you mean "projects"\?/);
  t.regex(messageAt(r, 'projects[0].hots'), /did you mean "hosts"\?/);
  t.regex(messageAt(r, 'projects[0].session.absolut'), /did you mean "absolute"\?/);
  t.regex(messageAt(r, 'projects[0].routes[0].rolse'), /did you mean "roles"\?/);
  t.regex(messageAt(r, 'projects[0].routes[0].method'), /did you mean "methods"\?/);
  t.regex(messageAt(r, 'projects[0].routes[0].rolse'), /allowed here: path, auth, methods, principals, roles, permissions/);
  // A key far from every allowed one gets the list, not a guess.
  const far = validateConfig({ projects: [proj({ upstreamPoolName: 'x' })] });
  t.notRegex(messageAt(far, 'projects[0].upstreamPoolName'), /did you mean/);
  // Odd key names are quoted so the location stays readable.
  const odd = validateConfig({ projects: [proj({ 'two words': 1 })] });
  t.deepEqual(at(odd), ['projects[0]["two words"]']);
});

test('a host may belong to only one project, compared after normalization', (t) => {
  const r = validateConfig({
    projects: [
      proj({ id: 'a', hosts: ['shared.example', 'a.example'] }),
      proj({ id: 'b', hosts: ['b.example', 'SHARED.example.'] }),
      proj({ id: 'c', hosts: ['c.example', 'c.example'] }),
    ],
  });
  t.deepEqual(at(r), ['projects[1].hosts[1]', 'projects[2].hosts[1]']);
  t.is(
    messageAt(r, 'projects[1].hosts[1]'),
    '"shared.example" already belongs to project "a" (projects[0].hosts[0]); a host may belong to only one project',
  );
  t.regex(messageAt(r, 'projects[2].hosts[1]'), /listed twice/);
});

test('project ids must be unique', (t) => {
  const r = validateConfig({
    projects: [proj({ hosts: ['a.example'] }), proj({ hosts: ['b.example'] })],
  });
  t.deepEqual(at(r), ['projects[1].id']);
  t.regex(messageAt(r, 'projects[1].id'), /duplicates the id of projects\[0\]/);
});

test('ids and upstreams follow ^[a-z0-9][a-z0-9-]{0,62}$', (t) => {
  for (const good of ['a', '0', 'demo', 'my-app-2', 'a'.repeat(63)]) {
    t.true(validateConfig({ projects: [proj({ id: good, upstream: good })] }).ok, good);
  }
  for (const bad of ['', '-a', 'A', 'a_b', 'a.b', 'a b', 'a'.repeat(64), 'é', 7, null, ['a'], {}]) {
    const r = validateConfig({ projects: [proj({ id: bad, upstream: bad })] });
    t.deepEqual(at(r), ['projects[0].id', 'projects[0].upstream'], JSON.stringify(bad));
  }
});

test('hosts: lower-cased, one trailing dot stripped; ports, schemes, paths, wildcards and junk rejected', (t) => {
  const ok = validateConfig({
    projects: [proj({ hosts: ['A.Example.COM.', 'localhost', '127.0.0.1', '[::1]', 'my_svc'] })],
  });
  t.true(ok.ok);
  if (ok.ok) t.deepEqual(ok.config.projects[0]!.hosts, ['a.example.com', 'localhost', '127.0.0.1', '[::1]', 'my_svc']);

  const bad: [unknown, RegExp][] = [
    ['', /empty/],
    ['.', /empty/],
    ['localhost:8080', /port/],
    ['[::1]:8080', /port/],
    ['http://app.example.com', /not a URL/],
    ['app.example.com/path', /path/],
    ['*.example.com', /wildcards/],
    ['app .example.com', /whitespace/],
    ['app..example.com', /valid host name/],
    ['-app.example.com', /valid host name/],
    ['user@app.example.com', /valid host name/],
    ['app.example.com..', /valid host name/],
    ['caf\u00e9.example', /valid host name/],
    [`${'a'.repeat(64)}.example`, /valid host name/],
    ['[zz::1]', /IPv6/],
    [42, /host name/],
    [null, /host name/],
  ];
  for (const [host, message] of bad) {
    const r = validateConfig({ projects: [proj({ hosts: [host] })] });
    t.regex(messageAt(r, 'projects[0].hosts[0]'), message, JSON.stringify(host));
  }
  t.regex(messageAt(validateConfig({ projects: [proj({ hosts: [] })] }), 'projects[0].hosts'), /at least one/);
  t.regex(messageAt(validateConfig({ projects: [proj({ hosts: undefined })] }), 'projects[0].hosts'), /required/);
});

test('session: defaults, durations, idle <= absolute, both > 0', (t) => {
  const session = (s: unknown) => validateConfig({ projects: [proj({ session: s })] });
  const ok = (s: unknown) => {
    const r = session(s);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.config.projects[0]!.session;
  };
  t.deepEqual(ok(undefined), { absoluteMs: 86_400_000, idleMs: 1_800_000 });
  t.deepEqual(ok({}), { absoluteMs: 86_400_000, idleMs: 1_800_000 });
  t.deepEqual(ok({ absolute: '7d', idle: '1h30m' }), { absoluteMs: 7 * 86_400_000, idleMs: 5_400_000 });
  t.deepEqual(ok({ absolute: 3600, idle: 3600 }), { absoluteMs: 3_600_000, idleMs: 3_600_000 });
  t.deepEqual(ok({ idle: '10m' }), { absoluteMs: 86_400_000, idleMs: 600_000 });

  t.regex(messageAt(session({ absolute: '1h', idle: '2h' }), 'projects[0].session.idle'), /longer than session.absolute/);
  // Only idle given, longer than the default absolute.
  t.regex(messageAt(session({ idle: '2d' }), 'projects[0].session.idle'), /2d > 1d, the default\)/);
  t.regex(messageAt(session({ absolute: '0s' }), 'projects[0].session.absolute'), /longer than 0/);
  t.regex(messageAt(session({ idle: 0 }), 'projects[0].session.idle'), /longer than 0/);
  t.regex(
    messageAt(session({ absolute: '24 hours' }), 'projects[0].session.absolute'),
    /duration such as 30s, 30m, 24h, 7d or 1h30m.*got "24 hours"/,
  );
  t.deepEqual(at(session({ absolute: 'x', idle: [] })), ['projects[0].session.absolute', 'projects[0].session.idle']);
  t.regex(messageAt(session('24h'), 'projects[0].session'), /mapping/);
});

test('route paths: normalized, * only as a final /*, reserved paths refused', (t) => {
  const good = ['/', '/*', '/health', '/api/v1/*', '/docs/', '/caf%C3%A9', '/.well-known/*', '/_mezu-not-reserved'];
  for (const path of good) {
    t.true(validateConfig(withRoutes({ path })).ok, path);
  }
  const bad: [unknown, RegExp][] = [
    [undefined, /is required/],
    ['', /empty/],
    [5, /got 5/],
    ['api', /start with "\/"/],
    ['/a?b', /"\?" or "#"/],
    ['/a#b', /"\?" or "#"/],
    ['/a*', /final "\/\*"/],
    ['/a/*/b', /final "\/\*"/],
    ['/a/**', /final "\/\*"/],
    ['*', /start with/],
    ['/a//*', /must not end with "\/\/\*"; write "\/a\/\*"/],
    ['/a//b', /normalized form.*write "\/a\/b"/],
    ['/a/./b/*', /normalized form.*write "\/a\/b\/\*"/],
    ['/a/..', /normalized form.*write "\/"/],
    ['/caf%c3%a9', /normalized form.*write "\/caf%C3%A9"/],
    ['/%41', /normalized form.*write "\/A"/],
    ['/..', /not a valid request path.*root/],
    ['/a%2fb', /not a valid request path.*%2F/],
    ['/a\\b', /not a valid request path.*backslash/],
    ['/docs/..;/admin', /not a valid request path/],
    ['/a;v=1', /not a valid request path.*";"/],
    ['/_MEZU/login', /reserved/],
    ['/a b', /not a valid request path/],
    ['/_mezu/*', /reserved/],
    ['/_mezu/login', /reserved/],
    ['/_mezu', /reserved/],
    ['/.well-known/mezusphere/jwks.json', /reserved/],
    ['/.well-known/mezusphere/jwks.json/*', /reserved/],
  ];
  for (const [path, message] of bad) {
    const r = validateConfig(withRoutes({ path }));
    t.regex(messageAt(r, 'projects[0].routes[0].path'), message, String(path));
  }
});

test('methods: upper-cased tokens, TRACE and CONNECT refused, no empty list or repeats', (t) => {
  const r = validateConfig(withRoutes({ path: '/a', methods: ['get', 'Post', 'PROPFIND', 'M-SEARCH'] }));
  if (!r.ok) {
    t.fail(JSON.stringify(r.problems));
    return;
  }
  t.deepEqual(r.config.projects[0]!.routes[0]!.methods, ['GET', 'POST', 'PROPFIND', 'M-SEARCH']);

  const bad = validateConfig(
    withRoutes(
      { path: '/a', methods: ['trace', 'CONNECT', 'GE T', '', 7, 'G/ET', 'GET', 'get'] },
      { path: '/b', methods: [] },
      { path: '/c', methods: 'GET' },
    ),
  );
  t.deepEqual(at(bad), [
    'projects[0].routes[0].methods[0]',
    'projects[0].routes[0].methods[1]',
    'projects[0].routes[0].methods[2]',
    'projects[0].routes[0].methods[3]',
    'projects[0].routes[0].methods[4]',
    'projects[0].routes[0].methods[5]',
    'projects[0].routes[0].methods[7]',
    'projects[0].routes[1].methods',
    'projects[0].routes[2].methods',
  ]);
  t.regex(messageAt(bad, 'projects[0].routes[0].methods[0]'), /TRACE is never forwarded/);
  t.regex(messageAt(bad, 'projects[0].routes[0].methods[7]'), /GET is listed twice/);
  t.regex(messageAt(bad, 'projects[0].routes[1].methods'), /remove "methods" to cover every method/);
});

test('principals, roles and permissions: allowed values, defaults, and refused on public/deny routes', (t) => {
  const r = validateConfig(
    withRoutes(
      { path: '/a', principals: ['service_account', 'user'], roles: ['admin', 'ops'], permissions: ['admin:write'] },
      { path: '/b' },
    ),
  );
  if (!r.ok) {
    t.fail(JSON.stringify(r.problems));
    return;
  }
  t.deepEqual(r.config.projects[0]!.routes[0]!.principals, ['service_account', 'user']);
  t.deepEqual(r.config.projects[0]!.routes[1]!.principals, ['user']);
  t.deepEqual(r.config.projects[0]!.routes[1]!.roles, []);

  const bad = validateConfig(
    withRoutes(
      { path: '/p', auth: 'public', principals: ['user'], roles: ['admin'], permissions: ['x'] },
      { path: '/d', auth: 'deny', roles: [] },
      { path: '/e', principals: [] },
      { path: '/f', principals: 'user' },
      { path: '/g', roles: 'admin', permissions: [' x', 'x\ty', null, 'ok', 'ok'] },
    ),
  );
  t.deepEqual(at(bad), [
    'projects[0].routes[0].principals',
    'projects[0].routes[0].roles',
    'projects[0].routes[0].permissions',
    'projects[0].routes[1].roles',
    'projects[0].routes[2].principals',
    'projects[0].routes[3].principals',
    'projects[0].routes[4].roles',
    'projects[0].routes[4].permissions[0]',
    'projects[0].routes[4].permissions[1]',
    'projects[0].routes[4].permissions[2]',
    'projects[0].routes[4].permissions[4]',
  ]);
  t.regex(messageAt(bad, 'projects[0].routes[1].roles'), /ignored on a "deny" route/);
  t.regex(messageAt(bad, 'projects[0].routes[2].principals'), /must not be empty/);
  t.regex(messageAt(bad, 'projects[0].routes[4].permissions[0]'), /without whitespace or commas/);
});

test('duplicate rules: same path with overlapping methods in one project', (t) => {
  const r = validateConfig(
    withRoutes(
      { path: '/a' },
      { path: '/a', auth: 'public' }, // duplicate: both cover every method
      { path: '/b', methods: ['GET', 'HEAD'] },
      { path: '/b', methods: ['POST'] }, // disjoint: fine
      { path: '/b', methods: ['HEAD', 'PUT'] }, // overlaps on HEAD
      { path: '/b' }, // unnarrowed beside narrowed: the documented precedence
      { path: '/c/*' },
      { path: '/c' }, // exact /c and prefix /c/* are different rules
      { path: '/c/*', methods: ['get'] },
    ),
  );
  t.deepEqual(at(r), ['projects[0].routes[1].path', 'projects[0].routes[4].path']);
  t.regex(messageAt(r, 'projects[0].routes[1].path'), /duplicates projects\[0\]\.routes\[0\]: same path "\/a" for every method/);
  t.regex(messageAt(r, 'projects[0].routes[4].path'), /duplicates projects\[0\]\.routes\[2\].*method HEAD/);

  // The same path in two different projects is not a duplicate.
  const two = validateConfig({
    projects: [
      proj({ id: 'a', hosts: ['a.example'], routes: [{ path: '/x' }] }),
      proj({ id: 'b', hosts: ['b.example'], routes: [{ path: '/x' }] }),
    ],
  });
  t.true(two.ok);
});

test('the document root: empty, wrong type, missing or wrong projects', (t) => {
  t.deepEqual(at(validateConfig(null)), ['(root)']);
  t.regex(messageAt(validateConfig(undefined), '(root)'), /projects: \[\]/);
  t.regex(messageAt(parseConfigYaml(''), '(root)'), /empty/);
  t.regex(messageAt(parseConfigYaml('# only a comment\n'), '(root)'), /empty/);
  t.regex(messageAt(validateConfig([]), '(root)'), /mapping.*got a list/);
  t.regex(messageAt(validateConfig('projects'), '(root)'), /got "projects"/);
  t.regex(messageAt(validateConfig({}), 'projects'), /is required; write "projects: \[\]"/);
  t.regex(messageAt(validateConfig({ projects: null }), 'projects'), /list of projects.*got null/);
  t.regex(messageAt(validateConfig({ projects: {} }), 'projects'), /got a mapping/);
  t.regex(messageAt(validateConfig({ projects: [null] }), 'projects[0]'), /mapping/);
  t.regex(messageAt(validateConfig({ projects: [proj({ routes: {} })] }), 'projects[0].routes'), /list of rules/);
  t.regex(messageAt(validateConfig(new Map([['projects', []]])), '(root)'), /mapping/);
});

test('YAML syntax errors become problems at "yaml" with the line', (t) => {
  const r = parseConfigYaml('projects:\n  - id: demo\n    hosts: [localhost\n    upstream: demo\n');
  const ps = problems(r);
  t.true(ps.length >= 1);
  for (const p of ps) t.is(p.at, 'yaml');
  t.regex(ps[0]!.message, /^line \d+, column \d+: /);

  const dup = problems(parseConfigYaml('projects:\n  - id: a\n    id: b\n'));
  t.deepEqual(dup.map((p) => p.at), ['yaml']);
  t.regex(dup[0]!.message, /^line 3, column 5: .*unique/);

  const multi = problems(parseConfigYaml('projects: []\n---\nprojects: []\n'));
  t.is(multi[0]!.at, 'yaml');
  t.regex(multi[0]!.message, /^line 2/);
  t.false(multi[0]!.message.includes('\n'));

  const tab = problems(parseConfigYaml('projects:\n\t- id: x\n'));
  t.is(tab[0]!.at, 'yaml');
});

test('YAML alias bombs are refused, not expanded', (t) => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 10; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    lines.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  lines.push('projects: []');
  const r = parseConfigYaml(lines.join('\n'));
  t.false(r.ok);
  t.is(problems(r)[0]!.at, 'yaml');
});

test('YAML scalars that look like other types are reported, not coerced', (t) => {
  const r = parseConfigYaml(`
projects:
  - id: 123
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /a, auth: yes }
      - { path: /b, methods: [GET, 1] }
`);
  t.deepEqual(at(r), ['projects[0].id', 'projects[0].routes[0].auth', 'projects[0].routes[1].methods[1]']);
  t.regex(messageAt(r, 'projects[0].routes[0].auth'), /got "yes"/);
});

test('garbage input never throws and always yields located problems', (t) => {
  const circular: Record<string, unknown> = { id: 'demo', hosts: ['x'], upstream: 'demo' };
  circular.routes = [circular];
  const throwing = {
    get projects(): unknown {
      throw new Error('boom');
    },
  };
  const proxy = new Proxy(
    {},
    {
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  const inputs: unknown[] = [
    null,
    undefined,
    0,
    42,
    Number.NaN,
    -1,
    '',
    'projects: []',
    true,
    [],
    [[]],
    {},
    { projects: 1 },
    { projects: 'a' },
    { projects: [1, 'a', null, [], true] },
    { projects: [{}] },
    { projects: [{ id: {}, hosts: {}, upstream: [], session: [], default: {}, routes: 'x' }] },
    { projects: [{ id: 'a', hosts: [[], {}, null], upstream: 'a', routes: [[], null, 1, { path: {} }] }] },
    { projects: [{ id: 'a', hosts: ['a'], upstream: 'a', session: { absolute: {}, idle: [] } }] },
    { projects: [{ id: 'a', hosts: ['a'], upstream: 'a', routes: [{ path: '/a', methods: [{}], principals: [[]], roles: [{}], permissions: [1] }] }] },
    { projects: [circular] },
    throwing,
    proxy,
    Object.create(null),
    { __proto__: { projects: [] } },
    { projects: [], constructor: 1 },
    new Date(),
    () => 1,
    Symbol('x'),
    10n,
  ];
  for (const input of inputs) {
    let r: ValidationResult | undefined;
    t.notThrows(() => {
      r = validateConfig(input);
    }, String(typeof input));
    t.false(r!.ok, `${typeof input} should be refused`);
    if (!r!.ok) {
      t.true(r!.problems.length > 0);
      for (const p of r!.problems) {
        t.is(typeof p.at, 'string');
        t.is(typeof p.message, 'string');
        t.true(p.message.length > 0);
      }
    }
  }
  t.notThrows(() => parseConfigYaml(undefined as unknown as string));
  t.false(parseConfigYaml(42 as unknown as string).ok);
});

test('random mutations of a valid config never throw', (t) => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const junk: unknown[] = [null, 0, -1, '', 'x', '/', '*', [], {}, [null], { a: 1 }, true, '24h', 'GET', '/a/*'];
  const base = (): Record<string, unknown> => ({
    projects: [
      proj({
        session: { absolute: '24h', idle: '30m' },
        routes: [
          { path: '/a/*', auth: 'required', methods: ['GET'], principals: ['user'], roles: ['r'], permissions: ['p'] },
          { path: '/b', auth: 'public' },
        ],
      }),
    ],
  });
  const mutate = (v: unknown, depth: number): unknown => {
    if (depth > 0 && rand(4) === 0) return junk[rand(junk.length)];
    if (Array.isArray(v)) return v.map((x) => mutate(x, depth + 1));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (rand(10) === 0) continue;
        out[rand(20) === 0 ? `${k}x` : k] = mutate(x, depth + 1);
      }
      return out;
    }
    return v;
  };
  for (let i = 0; i < 2000; i++) {
    const input = mutate(base(), 0);
    const r = validateConfig(input);
    if (!r.ok) {
      t.true(r.problems.length > 0);
      t.true(r.problems.every((p) => p.at.length > 0 && p.message.length > 0));
    }
  }
  t.pass();
});

test('the validated config does not alias the input', (t) => {
  const input = { projects: [proj({ routes: [{ path: '/a', roles: ['admin'] }] })] };
  const r = validateConfig(input);
  if (!r.ok) {
    t.fail();
    return;
  }
  (input.projects[0]!.routes as { roles: string[] }[])[0]!.roles.push('other');
  (input.projects[0]!.hosts as string[]).push('evil.example');
  t.deepEqual(r.config.projects[0]!.routes[0]!.roles, ['admin']);
  t.deepEqual(r.config.projects[0]!.hosts, ['demo.example']);
});
