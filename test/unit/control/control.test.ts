/**
 * The control plane against a real store: config edits keep the YAML's
 * comments and validate the whole config, directories follow the projects'
 * scopes, the user lifecycle refuses what it must (deactivation is final, the
 * last Console owner stays), rotation keeps the old key until the overlap
 * ends, and every change leaves one audit record.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore, type Store } from '../../../src/store/index.js';
import { Control, InvalidRequest, CONSOLE_DIRECTORY, setRoutes, addOrganization, addProject, keyState, type Actor } from '../../../src/control/index.js';
import { parseConfigYaml } from '../../../src/config/index.js';

const YAML = `# top comment survives
organizations:
  - { id: acme, name: Acme }
projects:
  - id: demo   # the demo
    organization: acme
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /api/*, auth: required }
  - id: shop
    organization: acme
    directory: organization
    hosts: [shop.localhost]
    upstream: demo
  - id: blog
    organization: acme
    directory: organization
    hosts: [blog.localhost]
    upstream: demo
`;

const ACTOR: Actor = { type: 'cli', id: 'tester', name: 'tester@host', ip: '' };

async function env(t: ExecutionContext): Promise<{ store: Store; c: Control }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-control-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const v = parseConfigYaml(YAML);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  await store.config.apply(YAML, v.config, null);
  return { store, c: new Control(store) };
}

function actions(store: Store): string[] {
  return store.audit.page(null, 1000, () => true).entries.map((a) => a.action).reverse();
}

test('config edits change one node, keep comments, and validate the result', (t) => {
  const r = setRoutes(YAML, 'demo', [{ path: '/health', auth: 'public' }, { path: '/admin/*', auth: 'required', roles: ['admin'] }]);
  t.true(r.ok);
  if (!r.ok) return;
  t.regex(r.text, /# top comment survives/);
  t.regex(r.text, /id: demo +# the demo/);
  t.regex(r.text, /- \{ path: \/health, auth: public \}/);
  t.regex(r.text, /- \{ path: \/admin\/\*, auth: required, roles: \[ admin \] \}/);
  t.true(parseConfigYaml(r.text).ok);
  const o = addOrganization(YAML, { id: 'beta', name: 'Beta' });
  t.true(o.ok && /- \{ id: beta, name: Beta \}/.test(o.text));
  const p = addProject('projects: []\n', { id: 'x', hosts: ['x.localhost'], upstream: 'x' });
  t.true(p.ok && parseConfigYaml(p.text).ok);
  const none = addOrganization('', { id: 'first' });
  t.true(none.ok && parseConfigYaml(none.text).ok);
});

test('organizations and directories: a project-scoped directory is the project id; an organization-scoped one is shared', async (t) => {
  const { c } = await env(t);
  const cfg = c.config()!;
  t.deepEqual([...cfg.organizations.keys()].sort(), ['acme', 'default']);
  t.is(cfg.projects.get('demo')!.directory, 'demo');
  t.is(cfg.projects.get('shop')!.directory, 'org:acme');
  const dirs = c.directories();
  t.deepEqual(dirs.map((d) => d.id), ['_console', 'demo', 'org:acme']);
  t.deepEqual(dirs.find((d) => d.id === 'org:acme')!.projects, ['shop', 'blog']);
  t.is(c.directoryOfProject('blog'), 'org:acme');
  t.throws(() => c.directory('org:nope'), { code: 'MEZU_DIRECTORY_NOT_FOUND' } as never);
});

test('config validation: unknown organization, bad directory scope, duplicate organizations, all reported at once', (t) => {
  const r = parseConfigYaml(`organizations:\n  - { id: a }\n  - { id: a }\n  - { id: Bad }\nprojects:\n  - { id: p, hosts: [p.localhost], upstream: p, organization: nope, directory: team }\n`);
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.problems.map((p) => p.at).sort(), ['organizations[1].id', 'organizations[2].id', 'projects[0].directory']);
  const r2 = parseConfigYaml(`projects:\n  - { id: p, hosts: [p.localhost], upstream: p, organization: nope }\n`);
  t.false(r2.ok);
  if (!r2.ok) t.deepEqual(r2.problems.map((p) => p.at), ['projects[0].organization']);
});

test('user lifecycle: active ⇄ suspended, → deactivated is final; leaving active ends every session', async (t) => {
  const { store, c } = await env(t);
  const u = await c.createUser(ACTOR, 'org:acme', { email: 'Grace@Example.com', name: 'Grace' });
  await store.sessions.create('h1', { id: 'ses_1', principalType: 'user', userId: u.id, projectId: 'shop', createdAt: 1, lastSeenAt: 1, authTime: 1, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
  t.is((await c.setUserStatus(ACTOR, u.id, 'suspended')).status, 'suspended');
  t.is(store.sessions.get('h1'), undefined);
  t.is((await c.setUserStatus(ACTOR, u.id, 'active')).status, 'active');
  t.is((await c.setUserStatus(ACTOR, u.id, 'deactivated')).status, 'deactivated');
  await t.throwsAsync(c.setUserStatus(ACTOR, u.id, 'active'), { code: 'MEZU_STATUS_TRANSITION' } as never);
  await t.throwsAsync(c.setUserStatus(ACTOR, u.id, 'suspended'), { code: 'MEZU_STATUS_TRANSITION' } as never);
  t.deepEqual(actions(store), ['user.create', 'user.suspend', 'user.activate', 'user.deactivate']);
  const rec = store.audit.page(null, 1, () => true).entries[0]!;
  t.deepEqual(rec.actor, { type: 'cli', id: 'tester', name: 'tester@host' });
  t.is(rec.details.from, 'active');
});

test('profile changes: email moves the index and refuses a taken one; invalid input lists every field', async (t) => {
  const { store, c } = await env(t);
  const a = await c.createUser(ACTOR, 'demo', { email: 'a@example.com' });
  await c.createUser(ACTOR, 'demo', { email: 'b@example.com' });
  const moved = await c.updateUser(ACTOR, a.id, { email: 'a2@example.com', roles: ['admin'] });
  t.is(moved.email, 'a2@example.com');
  t.is(store.users.getByEmail('demo', 'A2@example.com')!.id, a.id);
  t.is(store.users.getByEmail('demo', 'a@example.com'), undefined);
  await t.throwsAsync(c.updateUser(ACTOR, a.id, { email: 'B@example.com' }), { code: 'MEZU_USER_EXISTS' } as never);
  const err = await t.throwsAsync(c.createUser(ACTOR, 'demo', { email: 'x', roles: ['ok', 'not ok'], permissions: 'nope' }));
  t.true(err instanceof InvalidRequest);
  t.deepEqual((err as InvalidRequest).problems.map((p) => p.at), ['email', 'roles[1]', 'permissions']);
  const st = await t.throwsAsync(c.updateUser(ACTOR, a.id, { status: 'suspended' }));
  t.deepEqual((st as InvalidRequest).problems.map((p) => p.at), ['status']);
});

test('the Console keeps one active owner; Console users have exactly one Console role', async (t) => {
  const { c } = await env(t);
  const o = await c.createConsoleUser(ACTOR, 'owner@example.com', 'owner');
  await t.throwsAsync(c.setUserStatus(ACTOR, o.id, 'suspended'), { code: 'MEZU_STATUS_TRANSITION' } as never);
  await t.throwsAsync(c.updateUser(ACTOR, o.id, { roles: ['admin'] }), { code: 'MEZU_STATUS_TRANSITION' } as never);
  await c.createConsoleUser(ACTOR, 'second@example.com', 'owner');
  t.is((await c.updateUser(ACTOR, o.id, { roles: ['viewer'] })).roles[0], 'viewer');
  await t.throwsAsync(c.createUser(ACTOR, CONSOLE_DIRECTORY, { email: 'x@example.com', roles: ['admin', 'viewer'] }), { code: 'MEZU_REQUEST_INVALID' } as never);
  await t.throwsAsync(c.createUser(ACTOR, CONSOLE_DIRECTORY, { email: 'y@example.com', roles: ['root'] }), { code: 'MEZU_REQUEST_INVALID' } as never);
});

test('keys: rotation keeps the old key live until the overlap ends; a replaced, revoked or expired key is not rotated', async (t) => {
  const { store, c } = await env(t);
  const sa = await c.createServiceAccount(ACTOR, 'demo', { name: 'ci', permissions: ['users:read'] });
  const k1 = await c.createKey(ACTOR, sa.id, { expires_in: '30d' });
  t.regex(k1.text, /^mzk_/);
  t.is(k1.rec.secretHash.length, 43, 'only a hash is stored');
  t.false(JSON.stringify(store.serviceAccounts.getKey(k1.rec.id)).includes(k1.text.slice(21)));
  const before = Date.now();
  const r = await c.rotateKey(ACTOR, sa.id, k1.rec.id, { overlap: '10m' });
  t.is(r.rec.rotatedFrom, k1.rec.id);
  t.is(r.old.replacedBy, r.rec.id);
  t.true(r.old.expiresAt! >= before + 10 * 60_000 && r.old.expiresAt! <= Date.now() + 10 * 60_000);
  t.true(r.rec.expiresAt! > Date.now() + 29 * 86_400_000, 'the new key gets the old key\'s lifetime');
  t.is(keyState(r.old, Date.now()), 'rotating');
  t.is(keyState(r.old, r.old.expiresAt!), 'expired');
  await t.throwsAsync(c.rotateKey(ACTOR, sa.id, k1.rec.id, {}), { code: 'MEZU_KEY_NOT_LIVE' } as never);
  await c.revokeKey(ACTOR, sa.id, r.rec.id);
  await t.throwsAsync(c.rotateKey(ACTOR, sa.id, r.rec.id, {}), { code: 'MEZU_KEY_NOT_LIVE' } as never);
  await t.throwsAsync(c.rotateKey(ACTOR, sa.id, k1.rec.id, { overlap: '90d' }), { code: 'MEZU_REQUEST_INVALID' } as never);
  await t.throwsAsync(c.revokeKey(ACTOR, 'sa_other', r.rec.id), { code: 'MEZU_SERVICE_ACCOUNT_NOT_FOUND' } as never);
  t.deepEqual(actions(store), ['service_account.create', 'key.create', 'key.rotate', 'key.revoke']);
});

test('routes: problems located relative to the project; a stale version is refused; success is a new version', async (t) => {
  const { store, c } = await env(t);
  const err = await t.throwsAsync(c.setRoutes(ACTOR, 'shop', [{ path: '/ok' }, { path: 'bad' }], null));
  t.is((err as InvalidRequest).code, 'MEZU_CONFIG_INVALID');
  t.deepEqual((err as InvalidRequest).problems.map((p) => p.at), ['routes[1].path']);
  await t.throwsAsync(c.setRoutes(ACTOR, 'shop', [], 99), { code: 'MEZU_CONFIG_STALE' } as never);
  const v = await c.setRoutes(ACTOR, 'shop', [{ path: '/health', auth: 'public' }], 1);
  t.is(v, 2);
  t.regex(store.config.current()!.source, /path: \/health, auth: public/);
  const rec = store.audit.page(null, 1, () => true).entries[0]!;
  t.is(rec.action, 'routes.update');
  t.deepEqual(rec.details.after, ['/health public']);
});

// Regression: createServiceAccount/updateServiceAccount took any permission list from any caller with
// `service-accounts:write`, so a key could give itself (or a new account) every permission, and a
// `users:write` key could create admins. Nobody grants what they do not hold, whatever path the change
// takes (API, pages, CLI all end here); the actor's authority is read from the store.
test('nobody grants what they do not hold: keys, Console admins, route rules', async (t) => {
  const { store, c } = await env(t);
  const sa = await c.createServiceAccount(ACTOR, 'demo', { name: 'ops', roles: ['deployer'], permissions: ['service-accounts:write', 'users:write', 'routes:write', 'reports:read'] });
  const asKey: Actor = { type: 'service_account', id: sa.id, name: 'ops (key mzk_x)', ip: '127.0.0.1' };
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(p)) as unknown as { code: string }).code;
  // Its own account: never, not even to give something away or rename it.
  t.is(await code(c.updateServiceAccount(asKey, sa.id, { permissions: ['service-accounts:write', 'audit:read'] })), 'MEZU_SELF_EDIT_FORBIDDEN');
  t.is(await code(c.updateServiceAccount(asKey, sa.id, { name: 'renamed' })), 'MEZU_SELF_EDIT_FORBIDDEN');
  t.is(await code(c.createKey(asKey, sa.id, {})), 'MEZU_SELF_EDIT_FORBIDDEN');
  // Beyond its own: refused, listing what is missing.
  const err = (await t.throwsAsync(c.createServiceAccount(asKey, 'demo', { name: 'x', roles: ['admin'], permissions: ['users:write', 'warpgates:enroll', 'reports:write'] }))) as unknown as { code: string; message: string };
  t.is(err.code, 'MEZU_GRANT_EXCEEDS_CALLER');
  t.regex(err.message, /role admin, permission warpgates:enroll, permission reports:write/);
  // Write does not stand in for read among route permissions: exact names only.
  t.is(await code(c.createServiceAccount(asKey, 'demo', { name: 'x', permissions: ['reports:write'] })), 'MEZU_GRANT_EXCEEDS_CALLER');
  // Within its own: works, and the result can be changed within its own again.
  const sub = await c.createServiceAccount(asKey, 'demo', { name: 'sub', roles: ['deployer'], permissions: ['users:write', 'reports:read'] });
  t.deepEqual((await c.updateServiceAccount(asKey, sub.id, { permissions: ['reports:read'] })).permissions, ['reports:read']);
  t.is(await code(c.updateServiceAccount(asKey, sub.id, { permissions: ['reports:read', 'audit:read'] })), 'MEZU_GRANT_EXCEEDS_CALLER');
  const subKey = await c.createKey(asKey, sub.id, {});
  t.truthy(subKey.text);
  // A richer account is out of reach: no change, no key, no rotation, no revocation.
  const rich = await c.createServiceAccount(ACTOR, 'demo', { name: 'rich', permissions: ['audit:read'] });
  const richKey = await c.createKey(ACTOR, rich.id, {});
  t.is(await code(c.updateServiceAccount(asKey, rich.id, { status: 'disabled' })), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.createKey(asKey, rich.id, {})), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.rotateKey(asKey, rich.id, richKey.rec.id, {})), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.revokeKey(asKey, rich.id, richKey.rec.id)), 'MEZU_GRANT_EXCEEDS_CALLER');
  // Its own keys it may revoke: that only takes away.
  const own = await c.createKey(ACTOR, sa.id, {});
  t.not((await c.revokeKey(asKey, sa.id, own.rec.id)).revokedAt, null);
  // Users: what it grants and whom it changes.
  t.is(await code(c.createUser(asKey, 'demo', { email: 'me@example.com', roles: ['admin'] })), 'MEZU_GRANT_EXCEEDS_CALLER');
  const plain = await c.createUser(asKey, 'demo', { email: 'plain@example.com', roles: ['deployer'], permissions: ['reports:read'] });
  t.is(plain.roles[0], 'deployer');
  const boss = await c.createUser(ACTOR, 'demo', { email: 'boss@example.com', roles: ['admin'] });
  t.is(await code(c.updateUser(asKey, boss.id, { email: 'me@example.com' })), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.setUserStatus(asKey, boss.id, 'suspended')), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.revokeAllSessions(asKey, boss.id)), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is((await c.setUserStatus(asKey, plain.id, 'suspended')).status, 'suspended');
  // Routes decide who reaches what: a key edits them only while it holds every role and permission they test.
  await c.setRoutes(ACTOR, 'demo', [{ path: '/admin/*', auth: 'required', roles: ['admin'], permissions: ['admin:write'] }], null);
  t.is(await code(c.setRoutes(asKey, 'demo', [{ path: '/admin/*', auth: 'public' }], null)), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.setRoutes(asKey, 'demo', [{ path: '/admin/*', auth: 'required', roles: ['admin'], permissions: ['admin:write'] }, { path: '/admin/panel', auth: 'public' }], null)), 'MEZU_GRANT_EXCEEDS_CALLER');
  await c.setRoutes(ACTOR, 'demo', [{ path: '/reports/*', auth: 'required', roles: ['deployer'], permissions: ['reports:read'] }], null);
  t.true((await c.setRoutes(asKey, 'demo', [{ path: '/reports/*', auth: 'public' }], null)) > 0);
  t.is(await code(c.setRoutes(asKey, 'demo', [{ path: '/reports/*', auth: 'required', permissions: ['audit:read'] }], null)), 'MEZU_GRANT_EXCEEDS_CALLER');
  // A disabled key holds nothing.
  await c.updateServiceAccount(ACTOR, sa.id, { status: 'disabled' });
  t.is(await code(c.createServiceAccount(asKey, 'demo', { name: 'y' })), 'MEZU_CONSOLE_FORBIDDEN');
  // Console: an admin cannot make, promote or change an owner; an owner can.
  const owner = await c.createConsoleUser(ACTOR, 'owner@example.com', 'owner');
  const adminUser = await c.createConsoleUser(ACTOR, 'admin@example.com', 'admin');
  const asAdmin: Actor = { type: 'console_user', id: adminUser.id, name: adminUser.email, ip: '' };
  const asOwner: Actor = { type: 'console_user', id: owner.id, name: owner.email, ip: '' };
  t.is(await code(c.createUser(asAdmin, CONSOLE_DIRECTORY, { email: 'o2@example.com', roles: ['owner'] })), 'MEZU_GRANT_EXCEEDS_CALLER');
  const viewer = await c.createUser(asOwner, CONSOLE_DIRECTORY, { email: 'v@example.com', roles: ['viewer'] });
  t.is(await code(c.updateUser(asAdmin, viewer.id, { roles: ['owner'] })), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.updateUser(asAdmin, owner.id, { email: 'mine@example.com' })), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.is(await code(c.setUserStatus(asAdmin, owner.id, 'suspended')), 'MEZU_GRANT_EXCEEDS_CALLER');
  t.deepEqual((await c.updateUser(asOwner, viewer.id, { roles: ['owner'] })).roles, ['owner']);
  // An admin still grants anything in project directories (it holds every project's objects).
  t.deepEqual((await c.createUser(asAdmin, 'demo', { email: 'pa@example.com', roles: ['admin'], permissions: ['admin:write'] })).roles, ['admin']);
  t.is(store.serviceAccounts.get(sa.id)!.permissions.length, 4, 'the key never changed its own account');
});

// Regression: an email or status change left the user's emailed links live, so a link sent to an
// address the account no longer has (or sent before a suspension) still reset it.
test('email and status changes void the user\'s outstanding reset and signup links', async (t) => {
  const { store, c } = await env(t);
  const u = await c.createUser(ACTOR, 'demo', { email: 'old@example.com' });
  const other = await c.createUser(ACTOR, 'demo', { email: 'other@example.com' });
  const now = Date.now();
  const tok = (email: string, userId: string | null, purpose: 'reset' | 'signup' = 'reset') => ({ purpose, projectId: 'demo', directory: 'demo', email, userId, rd: '/', createdAt: now, expiresAt: now + 60_000 });
  await store.emailTokens.add('h-reset-old', tok('old@example.com', u.id));
  await store.emailTokens.add('h-signup-old', tok('OLD@example.com', u.id, 'signup'));
  await store.emailTokens.add('h-signup-new', tok('new@example.com', null, 'signup'));
  await store.emailTokens.add('h-other', tok('other@example.com', other.id));
  await c.updateUser(ACTOR, u.id, { name: 'Same Email' });
  t.truthy(store.emailTokens.peek('h-reset-old'), 'a profile change without a new email keeps the links');
  await c.updateUser(ACTOR, u.id, { email: 'new@example.com' });
  for (const h of ['h-reset-old', 'h-signup-old', 'h-signup-new']) t.is(store.emailTokens.peek(h), undefined, h);
  t.truthy(store.emailTokens.peek('h-other'), 'another user\'s link is untouched');
  await store.emailTokens.add('h-reset-new', tok('new@example.com', u.id));
  await c.setUserStatus(ACTOR, u.id, 'suspended');
  t.is(store.emailTokens.peek('h-reset-new'), undefined);
  await store.emailTokens.add('h-reset-new2', tok('new@example.com', u.id));
  await c.setUserStatus(ACTOR, u.id, 'active');
  t.is(store.emailTokens.peek('h-reset-new2'), undefined, 'reactivation voids them too');
});
