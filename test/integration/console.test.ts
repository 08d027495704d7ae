/**
 * The admin API on a real Console process beside a real edge (2 workers),
 * Warpgate and origin, sharing one data directory: every route answers as
 * docs/openapi.yaml says, roles and key permissions decide who may do what,
 * every change is audited, and what the API changes is what the edge
 * enforces on the next request (suspensions, revocations, rotations, routes).
 */
import test from 'ava';
import { Stack, logMessages } from './harness.js';
import { startConsole, stopConsole, call, consoleUser, ConsoleBrowser, schemaProblems, responseSchema, type ConsoleProc, type ApiResponse } from './console-client.js';
import { API_ROUTES } from '../../src/console/index.js';
import { createCsr } from '../../wire/index.js';

const CONFIG = `
organizations:
  - { id: acme, name: Acme Inc }
projects:
  - id: demo
    organization: acme
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /health,     auth: public }
      - { path: /webhooks/*, auth: required, principals: [service_account] }
      - { path: /open/*,     auth: public }
  - id: other
    organization: acme
    directory: organization
    hosts: [other.localhost]
    upstream: demo
    routes:
      - { path: /*, auth: required }
  - id: third
    organization: acme
    directory: organization
    hosts: [third.localhost]
    upstream: demo
`;

const stack = new Stack(2, CONFIG);
let con: ConsoleProc;
let owner: ConsoleBrowser;
let admin: ConsoleBrowser;
let viewer: ConsoleBrowser;
/** Route templates a test exercised live (method + template), to check every route was. */
const exercised = new Set<string>();

test.before(async () => {
  await stack.start();
  con = await startConsole(stack);
  owner = await consoleUser(stack, con, 'owner@example.com', 'owner');
  admin = await consoleUser(stack, con, 'admin@example.com', 'admin');
  viewer = await consoleUser(stack, con, 'viewer@example.com', 'viewer');
});
test.after.always(async () => {
  await stopConsole(con ?? null);
  await stack.stop();
});

/** Calls as `who` (a signed-in browser or a key) and checks the answer against the documented schema. */
async function api(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, who: ConsoleBrowser | string, method: string, template: string, params: Record<string, string> = {}, body?: unknown, query = ''): Promise<ApiResponse> {
  const path = template.replace(/\{(\w+)\}/g, (_m, k: string) => encodeURIComponent(params[k] ?? 'missing'));
  const opts = typeof who === 'string' ? { key: who, body } : { cookie: who.cookie(), body };
  const r = await call(con, method, `${path}${query}`, opts);
  exercised.add(`${method} ${template}`);
  const schema = responseSchema(method, template, r.status);
  if (schema === null) t.deepEqual(`${r.status} undocumented`, 'documented', `${method} ${template} answered ${r.status}: ${r.text.slice(0, 300)}`);
  else t.deepEqual(schemaProblems(schema, r.body), [], `${method} ${template} ${r.status} matches ${schema}`);
  return r;
}

function session(email: string, project = 'demo'): string {
  return stack.session(email, project);
}
const asUser = (token: string) => ({ headers: { cookie: `mezu_session=${token}` } });

async function auditCount(): Promise<number> {
  let n = 0;
  let cursor: string | null = null;
  do {
    const r: ApiResponse = await call(con, 'GET', `/api/v1/audit?limit=200${cursor === null ? '' : `&cursor=${cursor}`}`, { cookie: owner.cookie() });
    n += r.body.items.length;
    cursor = r.body.next_cursor;
  } while (cursor !== null);
  return n;
}

async function waitUntil(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

test.serial('no credential, a malformed or unknown key: 401 with the code saying why', async (t) => {
  const none = await call(con, 'GET', '/api/v1/me');
  t.is(none.status, 401);
  t.is(none.body.error.code, 'MEZU_CONSOLE_AUTH_REQUIRED');
  t.regex(String(none.headers['www-authenticate']), /^Bearer/);
  t.is((await call(con, 'GET', '/api/v1/me', { headers: { authorization: 'Bearer nope' } })).body.error.code, 'MEZU_KEY_INVALID');
  t.is((await call(con, 'GET', '/api/v1/me', { key: `mzk_${'A'.repeat(16)}_${'B'.repeat(43)}` })).body.error.code, 'MEZU_KEY_INVALID');
  const nf = await call(con, 'GET', '/api/v1/nope', { cookie: owner.cookie() });
  t.is(nf.status, 404);
  t.is(nf.body.error.code, 'MEZU_API_NOT_FOUND');
  const m = await call(con, 'DELETE', '/api/v1/me', { cookie: owner.cookie() });
  t.is(m.status, 405);
  t.is(m.headers.allow, 'GET');
});

test.serial('every documented route answers as documented (owner, and a key for enrollment)', async (t) => {
  const me = await api(t, owner, 'GET', '/api/v1/me');
  t.is(me.body.role, 'owner');
  t.is((await api(t, owner, 'GET', '/api/v1/organizations')).body.items.length, 2);
  t.is((await api(t, owner, 'POST', '/api/v1/organizations', {}, { id: 'beta', name: 'Beta' })).status, 201);
  const pr = await api(t, owner, 'POST', '/api/v1/projects', {}, { id: 'beta-app', organization: 'beta', hosts: ['beta.localhost'], upstream: 'demo', directory: 'organization' });
  t.is(pr.status, 201);
  t.is(pr.body.directory, 'org:beta');
  t.is((await api(t, owner, 'GET', '/api/v1/projects')).body.items.length, 4);
  t.is((await api(t, owner, 'GET', '/api/v1/projects/{project}', { project: 'demo' })).body.organization, 'acme');
  const stats = await api(t, owner, 'GET', '/api/v1/projects/{project}/stats', { project: 'demo' });
  t.is(stats.body.minutes.length, 60);
  const routes = await api(t, owner, 'GET', '/api/v1/projects/{project}/routes', { project: 'demo' });
  t.is(routes.body.routes.length, 4);
  const put = await api(t, owner, 'PUT', '/api/v1/projects/{project}/routes', { project: 'beta-app' }, { routes: [{ path: '/*', auth: 'required' }] });
  t.is(put.status, 200);
  const cfg = await api(t, owner, 'GET', '/api/v1/config');
  t.regex(cfg.body.yaml, /beta-app/);
  t.is((await api(t, owner, 'PUT', '/api/v1/config', {}, { yaml: cfg.body.yaml, expect_version: cfg.body.version })).status, 200);
  const dirs = await api(t, owner, 'GET', '/api/v1/directories');
  t.deepEqual(dirs.body.items.map((d: { id: string }) => d.id).sort(), ['_console', 'demo', 'org:acme', 'org:beta']);
  t.deepEqual(dirs.body.items.find((d: { id: string }) => d.id === 'org:acme').projects, ['other', 'third']);
  const u = await api(t, owner, 'POST', '/api/v1/directories/{directory}/users', { directory: 'demo' }, { email: 'ada@example.com', name: 'Ada', roles: ['admin'], permissions: ['admin:write'] });
  t.is(u.status, 201);
  const uid = u.body.id as string;
  t.is((await api(t, owner, 'GET', '/api/v1/directories/{directory}/users', { directory: 'demo' })).body.items.length, 1);
  t.is((await api(t, owner, 'GET', '/api/v1/users/{user}', { user: uid })).body.email, 'ada@example.com');
  t.is((await api(t, owner, 'PATCH', '/api/v1/users/{user}', { user: uid }, { display_name: 'Ada L.' })).body.display_name, 'Ada L.');
  t.is((await api(t, owner, 'POST', '/api/v1/users/{user}/suspend', { user: uid })).body.status, 'suspended');
  t.is((await api(t, owner, 'POST', '/api/v1/users/{user}/activate', { user: uid })).body.status, 'active');
  const tok = session('ada@example.com');
  const sessions = await api(t, owner, 'GET', '/api/v1/users/{user}/sessions', { user: uid });
  t.is(sessions.body.items.length, 1);
  t.is((await api(t, owner, 'DELETE', '/api/v1/users/{user}/sessions/{session}', { user: uid, session: sessions.body.items[0].id })).body.revoked, 1);
  t.is((await stack.request('/api/v1/x', asUser(tok))).status, 401);
  session('ada@example.com');
  t.is((await api(t, owner, 'DELETE', '/api/v1/users/{user}/sessions', { user: uid })).body.revoked, 1);
  t.is((await api(t, owner, 'GET', '/api/v1/users/{user}/login-history', { user: uid })).body.last_login_at, null);
  t.deepEqual((await api(t, owner, 'GET', '/api/v1/users/{user}/factors', { user: uid })).body, { totp: false, totp_enrolled_at: null, totp_last_used_at: null, enrolment_pending: false, recovery_codes_left: 0, passkeys: [] });
  t.deepEqual((await api(t, owner, 'DELETE', '/api/v1/users/{user}/factors', { user: uid })).body, { reset: false });
  const sa = await api(t, owner, 'POST', '/api/v1/projects/{project}/service-accounts', { project: 'demo' }, { name: 'gate', permissions: ['warpgates:enroll'] });
  const said = sa.body.id as string;
  t.is((await api(t, owner, 'GET', '/api/v1/projects/{project}/service-accounts', { project: 'demo' })).body.items.length, 1);
  t.is((await api(t, owner, 'GET', '/api/v1/service-accounts/{service_account}', { service_account: said })).body.name, 'gate');
  t.is((await api(t, owner, 'PATCH', '/api/v1/service-accounts/{service_account}', { service_account: said }, { name: 'gate-1' })).body.name, 'gate-1');
  const k = await api(t, owner, 'POST', '/api/v1/service-accounts/{service_account}/keys', { service_account: said }, { expires_in: '30d' });
  t.regex(k.body.key, /^mzk_[A-Za-z0-9_-]{16}_[A-Za-z0-9_-]{43}$/);
  t.is(k.body.prefix, `mzk_${k.body.id}`);
  const keys = await api(t, owner, 'GET', '/api/v1/service-accounts/{service_account}/keys', { service_account: said });
  t.false(JSON.stringify(keys.body).includes(k.body.key.slice(21)), 'the secret is never listed');
  const csr = await createCsr('warpgate-test');
  const en = await api(t, k.body.key, 'POST', '/api/v1/warpgates/enroll', {}, { csr: csr.csr, warpgate_id: 'wg-openapi', hostname: 'test', version: '0.1.0' });
  t.is(en.status, 201);
  t.is(en.body.pool, 'demo');
  t.is((await api(t, owner, 'GET', '/api/v1/warpgates')).status, 200);
  const rot = await api(t, owner, 'POST', '/api/v1/service-accounts/{service_account}/keys/{key}/rotate', { service_account: said, key: k.body.id }, { overlap: '1h' });
  t.is(rot.body.previous.state, 'rotating');
  t.is((await api(t, owner, 'DELETE', '/api/v1/service-accounts/{service_account}/keys/{key}', { service_account: said, key: rot.body.id })).body.state, 'revoked');
  t.true((await api(t, owner, 'GET', '/api/v1/audit')).body.items.length > 10);
  t.is((await api(t, owner, 'POST', '/api/v1/users/{user}/deactivate', { user: uid })).body.status, 'deactivated');
  // Every route of the server was called live.
  t.deepEqual(API_ROUTES.map((r) => `${r.method} ${r.path}`).filter((x) => !exercised.has(x)), []);
});

test.serial('errors: problems located at their field, conflicts, final deactivation, stale config', async (t) => {
  const bad = await api(t, owner, 'POST', '/api/v1/directories/{directory}/users', { directory: 'demo' }, { email: 'not-an-email', roles: ['has space'] });
  t.is(bad.status, 400);
  t.is(bad.body.error.code, 'MEZU_REQUEST_INVALID');
  t.deepEqual(bad.body.error.problems.map((p: { at: string }) => p.at), ['email', 'roles[0]']);
  const dup = await api(t, owner, 'POST', '/api/v1/directories/{directory}/users', { directory: 'demo' }, { email: 'ADA@example.com' });
  t.is(dup.status, 409);
  t.is(dup.body.error.code, 'MEZU_USER_EXISTS');
  const ada = (await call(con, 'GET', '/api/v1/directories/demo/users?q=ada', { cookie: owner.cookie() })).body.items[0];
  const again = await api(t, owner, 'POST', '/api/v1/users/{user}/activate', { user: ada.id });
  t.is(again.status, 409);
  t.is(again.body.error.code, 'MEZU_STATUS_TRANSITION');
  const r = await api(t, owner, 'PUT', '/api/v1/projects/{project}/routes', { project: 'demo' }, { routes: [{ path: '/ok/*', auth: 'public' }, { path: 'no-slash', auth: 'sometimes' }, { path: '/pub', auth: 'public', roles: ['admin'] }] });
  t.is(r.status, 400);
  t.is(r.body.error.code, 'MEZU_CONFIG_INVALID');
  t.deepEqual(r.body.error.problems.map((p: { at: string }) => p.at).sort(), ['routes[1].auth', 'routes[1].path', 'routes[2].roles']);
  const stale = await api(t, owner, 'PUT', '/api/v1/projects/{project}/routes', { project: 'demo' }, { routes: [], expect_version: 1 });
  t.is(stale.status, 409);
  t.is(stale.body.error.code, 'MEZU_CONFIG_STALE');
  t.is((await api(t, owner, 'GET', '/api/v1/projects/{project}', { project: 'nope' })).body.error.code, 'MEZU_PROJECT_NOT_FOUND');
  t.is((await api(t, owner, 'GET', '/api/v1/directories/{directory}/users', { directory: 'org:nope' })).body.error.code, 'MEZU_DIRECTORY_NOT_FOUND');
  t.is((await api(t, owner, 'GET', '/api/v1/users/{user}', { user: 'usr_nope' })).body.error.code, 'MEZU_USER_NOT_FOUND');
  t.is((await call(con, 'POST', '/api/v1/organizations', { cookie: owner.cookie(), raw: '{nope', headers: { 'content-type': 'application/json' } })).body.error.code, 'MEZU_REQUEST_INVALID');
  t.is((await call(con, 'PUT', '/api/v1/config', { cookie: owner.cookie(), raw: 'x'.repeat(1024 * 1024 + 10), headers: { 'content-type': 'application/json' } })).body.error.code, 'MEZU_BODY_TOO_LARGE');
  // The last owner cannot lock the Console out.
  const me = (await call(con, 'GET', '/api/v1/me', { cookie: owner.cookie() })).body;
  const demote = await api(t, owner, 'PATCH', '/api/v1/users/{user}', { user: me.id }, { roles: ['viewer'] });
  t.is(demote.body.error.code, 'MEZU_STATUS_TRANSITION');
});

test.serial('a cookie-authenticated change must be a same-origin JSON request', async (t) => {
  const form = await call(con, 'POST', '/api/v1/organizations', { cookie: owner.cookie(), raw: 'id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(form.status, 403);
  t.is(form.body.error.code, 'MEZU_CSRF_FAILED');
  const cross = await call(con, 'POST', '/api/v1/organizations', { cookie: owner.cookie(), body: { id: 'x' }, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } });
  t.is(cross.status, 403);
  t.is(cross.body.error.code, 'MEZU_CSRF_FAILED');
});

// Regression: the Console's cookies reached proxied applications (same host name, other port), and
// the leaked owner cookie alone, sent by a script with neither Origin nor Sec-Fetch-Site, created a new
// Console owner (201): the CSRF check let requests without those headers through. A cookie-carried
// change now also needs the session's token (csrf_token of GET /api/v1/me) in X-CSRF-Token.
test.serial('the Console cookie alone makes no change: the session\'s CSRF token is required even without Origin', async (t) => {
  const count = async () => (await call(con, 'GET', '/api/v1/directories/_console/users', { cookie: owner.cookie() })).body.items.length as number;
  const n = await count();
  const body = { email: 'leaked@example.com', roles: ['owner'] };
  const leaked = await call(con, 'POST', '/api/v1/directories/_console/users', { cookie: owner.cookie(), body, bare: true });
  t.is(leaked.status, 403, leaked.text);
  t.is(leaked.body.error.code, 'MEZU_CSRF_FAILED');
  const bad = async (token: string) => (await call(con, 'POST', '/api/v1/directories/_console/users', { cookie: owner.cookie(), body, bare: true, headers: { 'x-csrf-token': token } })).body?.error?.code;
  t.is(await bad('A'.repeat(43)), 'MEZU_CSRF_FAILED', 'a made-up token');
  t.is(await bad(ConsoleBrowser.csrfOf((await owner.get('/_mezu/login')).text)), 'MEZU_CSRF_FAILED', 'a page form token is not an API token');
  t.is(await bad((await call(con, 'GET', '/api/v1/me', { cookie: admin.cookie() })).body.csrf_token), 'MEZU_CSRF_FAILED', 'another session\'s token');
  t.is(await count(), n, 'nothing was created');
  // With the session's own token (and no Origin: a script, not a cross-site page) the change is made.
  const me = await call(con, 'GET', '/api/v1/me', { cookie: owner.cookie() });
  t.regex(me.body.csrf_token, /^[A-Za-z0-9_-]{43}$/);
  const ok = await call(con, 'POST', '/api/v1/directories/_console/users', { cookie: owner.cookie(), body: { email: 'scripted@example.com', roles: ['viewer'] }, bare: true, headers: { 'x-csrf-token': me.body.csrf_token } });
  t.is(ok.status, 201, ok.text);
  // Keys are not cookies: no token needed, and none is handed out.
  t.false('csrf_token' in (await call(con, 'GET', '/api/v1/me', { key: (await call(con, 'POST', `/api/v1/service-accounts/${(await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'no-csrf' } })).body.id}/keys`, { cookie: owner.cookie(), body: {} })).body.key })).body);
  // The Console shares its host name (localhost) with project demo here: it said so at start-up.
  t.regex(logMessages(con.err), /warning: the Console \(http:\/\/localhost:\d+\) shares its host name with project "demo"/);
});

test.serial('a viewer cannot change anything through the API; an admin cannot manage Console users', async (t) => {
  const before = await auditCount();
  const u = (await call(con, 'POST', '/api/v1/directories/demo/users', { cookie: owner.cookie(), body: { email: 'victim@example.com' } })).body;
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'victim-sa' } })).body;
  const key = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body;
  const session = (await stack.cli('sessions', 'create', '--project', 'demo', '--email', 'victim@example.com', '--json')).stdout;
  const sid = JSON.parse(session).sessionId as string;
  const params: Record<string, string> = { project: 'demo', directory: 'demo', user: u.id, session: sid, service_account: sa.id, key: key.id };
  const bodies: Record<string, unknown> = {
    'POST /api/v1/organizations': { id: 'viewer-org' },
    'POST /api/v1/projects': { id: 'viewer-p', hosts: ['v.localhost'], upstream: 'demo' },
    'PUT /api/v1/projects/{project}/routes': { routes: [] },
    'PUT /api/v1/config': { yaml: 'projects: []' },
    'POST /api/v1/directories/{directory}/users': { email: 'v2@example.com' },
    'PATCH /api/v1/users/{user}': { name: 'x' },
    'POST /api/v1/projects/{project}/service-accounts': { name: 'x' },
    'PATCH /api/v1/service-accounts/{service_account}': { name: 'x' },
    'POST /api/v1/service-accounts/{service_account}/keys': {},
    'POST /api/v1/service-accounts/{service_account}/keys/{key}/rotate': {},
    'POST /api/v1/warpgates/enroll': { csr: 'x', warpgate_id: 'abcd' },
  };
  let changes = 0;
  for (const r of API_ROUTES) {
    if (r.method === 'GET') continue;
    changes++;
    const res = await api(t, viewer, r.method, r.path, params, bodies[`${r.method} ${r.path}`] ?? {});
    t.is(res.status, 403, `${r.method} ${r.path}`);
    t.is(res.body.error.code, 'MEZU_CONSOLE_FORBIDDEN', `${r.method} ${r.path}`);
  }
  t.true(changes >= 15);
  // Reads work for a viewer.
  t.is((await api(t, viewer, 'GET', '/api/v1/users/{user}', { user: u.id })).status, 200);
  // Nothing changed: the session still works, the key too, and the audit log only has the owner's three
  // changes and the CLI's session.create.
  t.is((await stack.request('/api/v1/x', asUser(JSON.parse(session).token))).status, 200);
  t.is(await auditCount(), before + 4);
  // An admin changes project objects but not the Console's own users.
  t.is((await api(t, admin, 'POST', '/api/v1/directories/{directory}/users', { directory: '_console' }, { email: 'op@example.com', roles: ['admin'] })).status, 403);
  t.is((await api(t, admin, 'POST', '/api/v1/directories/{directory}/users', { directory: 'demo' }, { email: 'by-admin@example.com' })).status, 201);
  t.is((await api(t, owner, 'POST', '/api/v1/directories/{directory}/users', { directory: '_console' }, { email: 'op@example.com', roles: ['viewer'] })).status, 201);
  t.is((await api(t, owner, 'POST', '/api/v1/directories/{directory}/users', { directory: '_console' }, { email: 'op2@example.com', roles: ['root'] })).body.error.problems[0].at, 'roles');
});

test.serial('a viewer cannot change anything through the pages either', async (t) => {
  const u = (await call(con, 'GET', '/api/v1/directories/demo/users?q=victim', { cookie: owner.cookie() })).body.items[0];
  const page = await viewer.get(`/users/${u.id}`);
  t.is(page.status, 200);
  t.false(page.text.includes('>Suspend<'), 'no status buttons for a viewer');
  const csrf = ConsoleBrowser.csrfOf((await viewer.get('/_mezu/login')).text);
  const r = await viewer.post(`/users/${u.id}/status`, { _csrf: csrf, status: 'suspended' });
  t.is(r.status, 403);
  t.regex(r.text, /viewer role does not allow users:write/);
  const r2 = await viewer.post('/routes?project=demo', { _csrf: csrf, rows: '1', path_0: '/x', auth_0: 'public' });
  t.is(r2.status, 403);
  const after = (await call(con, 'GET', `/api/v1/users/${u.id}`, { cookie: owner.cookie() })).body;
  t.is(after.status, 'active');
  t.is((await call(con, 'GET', '/api/v1/projects/demo/routes', { cookie: owner.cookie() })).body.routes.length, 4);
  // And without the CSRF token, even the owner's page POST is refused.
  t.is((await owner.post(`/users/${u.id}/status`, { status: 'suspended' })).status, 403);
});

test.serial('key permissions: which APIs, and only the key\'s own project', async (t) => {
  const mk = async (project: string, perms: string[]) => {
    const sa = (await call(con, 'POST', `/api/v1/projects/${project}/service-accounts`, { cookie: owner.cookie(), body: { name: `k-${perms.join('-') || 'none'}`, permissions: perms } })).body;
    return (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body.key as string;
  };
  const reader = await mk('demo', ['users:read']);
  const writer = await mk('demo', ['users:write', 'audit:read', 'routes:write', 'service-accounts:write']);
  const otherKey = await mk('other', ['users:write']);
  const none = await mk('demo', []);
  const code = async (key: string, method: string, path: string, body?: unknown) => {
    const r = await call(con, method, path, { key, body });
    return r.status < 300 ? r.status : `${r.status} ${r.body.error.code}`;
  };
  t.is(await code(reader, 'GET', '/api/v1/directories/demo/users'), 200);
  t.is(await code(reader, 'POST', '/api/v1/directories/demo/users', { email: 'r@example.com' }), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(reader, 'GET', '/api/v1/directories/org:acme/users'), '403 MEZU_CONSOLE_FORBIDDEN', 'another project\'s directory');
  t.is(await code(reader, 'GET', '/api/v1/directories/_console/users'), '403 MEZU_CONSOLE_FORBIDDEN', 'the Console\'s users');
  t.is(await code(reader, 'GET', '/api/v1/audit'), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(reader, 'GET', '/api/v1/projects/demo/service-accounts'), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(none, 'GET', '/api/v1/directories/demo/users'), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(none, 'GET', '/api/v1/me'), 200);
  t.deepEqual((await call(con, 'GET', '/api/v1/directories', { key: reader })).body.items.map((d: { id: string }) => d.id), ['demo']);
  // Write includes read; still only the own project.
  t.is(await code(writer, 'GET', '/api/v1/directories/demo/users'), 200);
  t.is(await code(writer, 'POST', '/api/v1/directories/demo/users', { email: 'w@example.com' }), 201);
  t.is(await code(writer, 'PUT', '/api/v1/projects/demo/routes', { routes: (await call(con, 'GET', '/api/v1/projects/demo/routes', { key: writer })).body.routes }), 200);
  t.is(await code(writer, 'PUT', '/api/v1/projects/other/routes', { routes: [] }), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(writer, 'GET', '/api/v1/organizations'), '403 MEZU_CONSOLE_FORBIDDEN', 'organization-wide: Console users only');
  t.is(await code(writer, 'PUT', '/api/v1/config', { yaml: 'projects: []' }), '403 MEZU_CONSOLE_FORBIDDEN');
  t.is(await code(writer, 'POST', '/api/v1/warpgates/enroll', { csr: 'x', warpgate_id: 'abcd' }), '403 MEZU_CONSOLE_FORBIDDEN');
  const audit = (await call(con, 'GET', '/api/v1/audit?limit=200', { key: writer })).body.items as Array<{ project: string | null; actor: { type: string } }>;
  t.true(audit.length > 0);
  t.true(audit.every((a) => a.project === 'demo'), 'a key sees its project\'s audit entries only');
  t.true(audit.some((a) => a.actor.type === 'service_account'));
  // The other project's key manages the organization directory its project signs in with, not demo's.
  t.is(await code(otherKey, 'POST', '/api/v1/directories/org:acme/users', { email: 'o@example.com' }), 201);
  t.is(await code(otherKey, 'GET', '/api/v1/directories/demo/users'), '403 MEZU_CONSOLE_FORBIDDEN');
  // A disabled account's key, a revoked key, an expired key: refused with their own codes.
  const sa = (await call(con, 'GET', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie() })).body.items.find((x: { name: string }) => x.name === 'k-users:read');
  await call(con, 'PATCH', `/api/v1/service-accounts/${sa.id}`, { cookie: owner.cookie(), body: { status: 'disabled' } });
  t.is(await code(reader, 'GET', '/api/v1/me'), '403 MEZU_SERVICE_ACCOUNT_DISABLED');
  await call(con, 'DELETE', `/api/v1/service-accounts/${sa.id}/keys/${reader.slice(4, 20)}`, { cookie: owner.cookie() });
  t.is(await code(reader, 'GET', '/api/v1/me'), '401 MEZU_KEY_REVOKED');
});

// Regression: a key of service account S holding only `service-accounts:write` sent PATCH
// /api/v1/service-accounts/S with every permission (200), then used `routes:write` to make /admin/*
// public and `warpgates:enroll` to enroll a Warpgate that received the project's traffic; creating a
// second account with any permissions and minting its key worked the same way. Nobody grants what
// they do not hold: the same requests now get 403 with a catalogued code, and nothing changes.
test.serial('a key cannot grant itself, or anyone, more than it holds', async (t) => {
  const mkSa = async (name: string, permissions: string[], roles: string[] = []) =>
    (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name, permissions, roles } })).body as { id: string };
  const keyOf = async (saId: string) => (await call(con, 'POST', `/api/v1/service-accounts/${saId}/keys`, { cookie: owner.cookie(), body: {} })).body.key as string;
  const s = await mkSa('escalator', ['service-accounts:write']);
  const key = await keyOf(s.id);
  const all = ['service-accounts:write', 'users:write', 'routes:write', 'audit:read', 'warpgates:enroll'];
  const patch = await call(con, 'PATCH', `/api/v1/service-accounts/${s.id}`, { key, body: { permissions: all } });
  t.is(patch.status, 403, patch.text);
  t.is(patch.body.error.code, 'MEZU_SELF_EDIT_FORBIDDEN');
  t.deepEqual((await call(con, 'GET', `/api/v1/service-accounts/${s.id}`, { cookie: owner.cookie() })).body.permissions, ['service-accounts:write'], 'unchanged');
  // Nor its own keys: they would outlive the revocation of this one.
  t.is((await call(con, 'POST', `/api/v1/service-accounts/${s.id}/keys`, { key, body: {} })).body.error.code, 'MEZU_SELF_EDIT_FORBIDDEN');
  // A second account with more than the key holds: refused, and nothing is created.
  const count = async () => (await call(con, 'GET', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie() })).body.items.length as number;
  const n = await count();
  const created = await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { key, body: { name: 'sidekick', permissions: all } });
  t.is(created.status, 403);
  t.is(created.body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  t.regex(created.body.error.message, /permission users:write/);
  t.is((await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { key, body: { name: 'sidekick', roles: ['admin'] } })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER', 'roles too');
  t.is(await count(), n);
  // An account richer than the key: no keys minted or rotated for it, no changes to it.
  const rich = await mkSa('rich', ['users:write', 'service-accounts:write']);
  const richKey = await keyOf(rich.id);
  t.is((await call(con, 'POST', `/api/v1/service-accounts/${rich.id}/keys`, { key, body: {} })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is((await call(con, 'POST', `/api/v1/service-accounts/${rich.id}/keys/${richKey.slice(4, 20)}/rotate`, { key, body: {} })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is((await call(con, 'PATCH', `/api/v1/service-accounts/${rich.id}`, { key, body: { permissions: ['service-accounts:write'] } })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  // Within what it holds, it works: an account with a subset, and that account's keys.
  const lesser = await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { key, body: { name: 'lesser', permissions: ['service-accounts:write'] } });
  t.is(lesser.status, 201);
  const lk = await call(con, 'POST', `/api/v1/service-accounts/${lesser.body.id}/keys`, { key, body: {} });
  t.is(lk.status, 201);
  // The same rule for users: a users:write key gives users nothing it does not hold itself (a user
  // created with `admin` and the key holder's email is an admin after one reset link).
  const userKey = await keyOf((await mkSa('user-admin', ['users:write'])).id);
  t.is((await call(con, 'POST', '/api/v1/directories/demo/users', { key: userKey, body: { email: 'mine@example.com', roles: ['admin'], permissions: ['admin:write'] } })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  const boss = (await call(con, 'POST', '/api/v1/directories/demo/users', { cookie: owner.cookie(), body: { email: 'boss@example.com', roles: ['admin'] } })).body;
  t.is((await call(con, 'PATCH', `/api/v1/users/${boss.id}`, { key: userKey, body: { email: 'mine@example.com' } })).body.error.code, 'MEZU_GRANT_EXCEEDS_CALLER', 'taking over a richer user by its email');
  t.is((await call(con, 'POST', '/api/v1/directories/demo/users', { key: userKey, body: { email: 'plain@example.com' } })).status, 201);
  // An admin never makes an owner, through the API or any other way.
  t.is((await call(con, 'POST', '/api/v1/directories/_console/users', { cookie: admin.cookie(), body: { email: 'new-owner@example.com', roles: ['owner'] } })).status, 403);
  // What the key did is in the audit log; what it was refused left no trace of a change.
  const audit = (await call(con, 'GET', '/api/v1/audit?limit=200', { cookie: owner.cookie() })).body.items as Array<{ action: string; actor: { id: string } }>;
  t.deepEqual(audit.filter((a) => a.actor.id === s.id).map((a) => a.action).sort(), ['key.create', 'service_account.create']);
});

// Regression: a foreign key got 404 for a project that does not exist and 403 for one that does, so
// it could list other tenants' project and directory names. Both now get the same refusal.
test.serial('a key cannot tell another tenant\'s project from one that does not exist', async (t) => {
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'prober', permissions: ['service-accounts:read', 'routes:read', 'users:read'] } })).body;
  const key = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body.key as string;
  for (const [exists, missing] of [
    ['/api/v1/projects/other/service-accounts', '/api/v1/projects/no-such-project/service-accounts'],
    ['/api/v1/projects/other', '/api/v1/projects/no-such-project'],
    ['/api/v1/projects/other/routes', '/api/v1/projects/no-such-project/routes'],
    ['/api/v1/directories/org:acme/users', '/api/v1/directories/org:no-such-org/users'],
  ] as const) {
    const a = await call(con, 'GET', exists, { key });
    const b = await call(con, 'GET', missing, { key });
    t.is(a.status, 403, exists);
    t.deepEqual([b.status, b.body], [a.status, a.body], `${missing} answers like ${exists}`);
  }
});

test.serial('audit: one entry per change, with who, what, when', async (t) => {
  const page = (await call(con, 'GET', '/api/v1/audit?limit=200', { cookie: owner.cookie() })).body.items as Array<{ action: string; actor: { type: string; name: string }; at: string; target: { type: string; id: string } }>;
  const actions = new Set(page.map((a) => a.action));
  for (const a of ['organization.create', 'project.create', 'routes.update', 'config.apply', 'user.create', 'user.update', 'user.suspend', 'user.activate', 'user.deactivate', 'session.revoke', 'session.revoke_all', 'service_account.create', 'service_account.update', 'service_account.disable', 'key.create', 'key.rotate', 'key.revoke', 'warpgate.enroll']) {
    t.true(actions.has(a), `an audit entry for ${a}`);
  }
  t.true(page.some((a) => a.actor.type === 'cli'), 'CLI changes are audited (the Console users were created from the CLI)');
  t.true(page.some((a) => a.actor.type === 'console_user' && a.actor.name === 'owner@example.com'));
  const times = page.map((a) => Date.parse(a.at));
  t.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  // Filters and paging.
  const only = (await call(con, 'GET', '/api/v1/audit?action=key', { cookie: owner.cookie() })).body.items as Array<{ action: string }>;
  t.true(only.length >= 3 && only.every((a) => a.action.startsWith('key.')));
  const p1 = (await call(con, 'GET', '/api/v1/audit?limit=3', { cookie: owner.cookie() })).body;
  const p2 = (await call(con, 'GET', `/api/v1/audit?limit=3&cursor=${p1.next_cursor}`, { cookie: owner.cookie() })).body;
  t.is(p1.items.length, 3);
  t.deepEqual(p2.items[0], page[3]);
});

test.serial('users lifecycle as the edge sees it: suspend → refused on the next request in every worker; deactivate is final', async (t) => {
  const u = (await call(con, 'POST', '/api/v1/directories/demo/users', { cookie: owner.cookie(), body: { email: 'life@example.com' } })).body;
  const tok = session('life@example.com');
  for (let i = 0; i < 4; i++) t.is((await stack.request('/api/v1/x', asUser(tok))).status, 200);
  t.is((await call(con, 'POST', `/api/v1/users/${u.id}/suspend`, { cookie: owner.cookie() })).status, 200);
  for (let i = 0; i < 4; i++) t.is((await stack.request('/api/v1/x', asUser(tok))).status, 401, 'refused on the very next request, whichever worker');
  t.throws(() => session('life@example.com'), { message: /suspended/ });
  await call(con, 'POST', `/api/v1/users/${u.id}/activate`, { cookie: owner.cookie() });
  t.is((await stack.request('/api/v1/x', asUser(tok))).status, 401, 'the sessions ended at suspension stay ended');
  const tok2 = session('life@example.com');
  t.is((await stack.request('/api/v1/x', asUser(tok2))).status, 200);
  await call(con, 'POST', `/api/v1/users/${u.id}/deactivate`, { cookie: owner.cookie() });
  t.is((await stack.request('/api/v1/x', asUser(tok2))).status, 401);
  const again = await call(con, 'POST', `/api/v1/users/${u.id}/activate`, { cookie: owner.cookie() });
  t.is(again.body.error.code, 'MEZU_STATUS_TRANSITION');
  // Roles changed through the API reach the application in the next assertion.
  const v = (await call(con, 'POST', '/api/v1/directories/demo/users', { cookie: owner.cookie(), body: { email: 'roles@example.com', roles: ['viewer'] } })).body;
  const tok3 = session('roles@example.com');
  await stack.request('/api/v1/x', asUser(tok3));
  await call(con, 'PATCH', `/api/v1/users/${v.id}`, { cookie: owner.cookie(), body: { roles: ['editor'] } });
  const seen = JSON.parse((await stack.request('/api/v1/x', asUser(tok3))).body) as { identity: Record<string, string> };
  t.is(seen.identity['x-mezu-roles'], 'editor');
});

test.serial('pagination and search of a directory', async (t) => {
  for (let i = 0; i < 5; i++) await call(con, 'POST', '/api/v1/directories/org:acme/users', { cookie: owner.cookie(), body: { email: `page${i}@example.com`, name: i === 3 ? 'Grace Hopper' : `P${i}` } });
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r: ApiResponse = await call(con, 'GET', `/api/v1/directories/org:acme/users?limit=2&q=page${cursor === null ? '' : `&cursor=${cursor}`}`, { cookie: owner.cookie() });
    t.true(r.body.items.length <= 2);
    seen.push(...r.body.items.map((u: { email: string }) => u.email));
    cursor = r.body.next_cursor;
    pages++;
  } while (cursor !== null);
  t.is(pages, 3);
  t.deepEqual(seen, ['page0@example.com', 'page1@example.com', 'page2@example.com', 'page3@example.com', 'page4@example.com']);
  t.deepEqual((await call(con, 'GET', '/api/v1/directories/org:acme/users?q=grace', { cookie: owner.cookie() })).body.items.map((u: { email: string }) => u.email), ['page3@example.com']);
  t.is((await call(con, 'GET', '/api/v1/directories/org:acme/users?limit=0', { cookie: owner.cookie() })).body.error.problems[0].at, 'limit');
  t.is((await call(con, 'GET', '/api/v1/directories/org:acme/users?cursor=%%%', { cookie: owner.cookie() })).body.error.code, 'MEZU_REQUEST_INVALID');
  // An organization directory serves every project that uses it: a user of org:acme signs in to "other" and "third".
  t.is((await stack.request('/x', { host: 'other.localhost', headers: { cookie: `mezu_session=${session('page0@example.com', 'other')}` } })).status, 200);
  t.is((await stack.request('/x', { host: 'third.localhost', headers: { cookie: `mezu_session=${session('page0@example.com', 'third')}` } })).status, 200);
});

test.serial('key rotation: old and new keys both work during the overlap, then only the new; revocation takes effect on the next request', async (t) => {
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'hooks' } })).body;
  const k1 = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body;
  const hook = (key: string) => stack.request('/webhooks/github', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status);
  t.is(await hook(k1.key), 200);
  const rot = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys/${k1.id}/rotate`, { cookie: owner.cookie(), body: { overlap: '2s' } })).body;
  const overlapEnds = Date.parse(rot.previous.expires_at);
  t.is(rot.rotated_from, k1.id);
  t.is(rot.previous.replaced_by, rot.id);
  t.is(await hook(k1.key), 200, 'old key inside the overlap');
  t.is(await hook(rot.key), 200, 'new key');
  const second = await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys/${k1.id}/rotate`, { cookie: owner.cookie(), body: {} });
  t.is(second.body.error.code, 'MEZU_KEY_NOT_LIVE', 'a replaced key is not rotated twice');
  await new Promise((r) => setTimeout(r, Math.max(0, overlapEnds - Date.now() + 50)));
  t.is(await hook(k1.key), 401, 'old key after the overlap');
  t.is(await hook(rot.key), 200);
  const keys = (await call(con, 'GET', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie() })).body.items as Array<{ id: string; state: string; last_used_at: string | null }>;
  t.is(keys.find((k) => k.id === k1.id)!.state, 'expired');
  t.not(keys.find((k) => k.id === rot.id)!.last_used_at, null, 'last-used is recorded');
  await call(con, 'DELETE', `/api/v1/service-accounts/${sa.id}/keys/${rot.id}`, { cookie: owner.cookie() });
  for (let i = 0; i < 4; i++) t.is(await hook(rot.key), 401, 'revoked: refused on the next request in every worker');
});

test.serial('routes edited through the API go live without a restart: public → required sends the next browser request to login', async (t) => {
  t.is((await stack.request('/open/page', { headers: { accept: 'text/html' } })).status, 200);
  const cur = (await call(con, 'GET', '/api/v1/projects/demo/routes', { cookie: owner.cookie() })).body;
  const routes = cur.routes.map((r: { path: string; auth: string }) => (r.path === '/open/*' ? { path: '/open/*', auth: 'required' } : r));
  const put = await call(con, 'PUT', '/api/v1/projects/demo/routes', { cookie: owner.cookie(), body: { routes, expect_version: cur.config_version } });
  t.is(put.status, 200);
  // Every worker polls the store on its own: live means every worker (told apart by its request-id
  // prefix, one per process) has answered 302 twice in a row. Fresh connections may all land on one
  // worker, so counting a run of 302s alone does not show it.
  const runs = new Map<string, number>();
  const ms = await waitUntil('every worker serves the new routes', async () => {
    const r = await stack.request('/open/page', { headers: { accept: 'text/html' } });
    const w = String(r.headers['x-mezu-request-id'] ?? '').slice(0, 8);
    runs.set(w, r.status === 302 ? (runs.get(w) ?? 0) + 1 : 0);
    return runs.size >= stack.workers && [...runs.values()].every((n) => n >= 2);
  });
  t.true(ms < 5_000, `live after ${ms} ms`); // workers poll every 500 ms; room for a loaded CI machine
  for (let i = 0; i < 4; i++) {
    const r = await stack.request('/open/page', { headers: { accept: 'text/html' } });
    t.is(r.headers.location, '/_mezu/login?rd=%2Fopen%2Fpage', `status ${r.status} from ${String(r.headers['x-mezu-request-id'])}`);
  }
  // A project created through the API is served too.
  const nr = await stack.request('/', { host: 'beta.localhost' });
  t.is(nr.status, 401);
});
