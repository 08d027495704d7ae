/**
 * The Console in a real headless browser (Debian's Chromium driven by
 * playwright-core) against a real edge, Console, Warpgate and origin: the
 * owner signs in through the Console's hosted login, creates a user and
 * suspends it (that user's open session is refused at the edge on its next
 * request), edits a route from public to required (the next request is sent
 * to login) and sees a validation error at its field, creates a service
 * account key that is shown once and works at the edge; a viewer gets pages
 * without a single control that changes anything. No page runs a script or
 * loads anything from another origin (strict CSP, checked on every page).
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test from 'ava';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { startConsole, stopConsole, type ConsoleProc } from '../integration/console-client.js';
import { spawnSync } from 'node:child_process';

const CLI = join(__dirname, '../../src/cli/main.js');
const CONFIG = `
projects:
  - id: demo
    name: Demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /docs/*,     auth: public }
      - { path: /webhooks/*, auth: required, principals: [service_account] }
`;
const OWNER_PW = 'owner console passphrase here';
const VIEWER_PW = 'viewer console passphrase here';

const stack = new Stack(2, CONFIG);
let con: ConsoleProc;
let browser: Browser;
let base = '';
/** Content-Security-Policy violations or script errors any page reported. */
const violations: string[] = [];

function cli(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--data', stack.dir], { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

test.before(async () => {
  await stack.start();
  con = await startConsole(stack);
  base = `http://localhost:${con.port}`;
  cli(['console', 'add-owner', '--email', 'owner@example.com', '--password-stdin'], OWNER_PW);
  cli(['console', 'add-user', '--email', 'viewer@example.com', '--role', 'viewer', '--password-stdin'], VIEWER_PW);
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stopConsole(con ?? null);
  await stack.stop();
});

async function signedIn(email: string, password: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => violations.push(e.message));
  await page.goto(`${base}/users`);
  // Not signed in: the Console's hosted login, coming back to /users.
  if (new URL(page.url()).pathname !== '/_mezu/login') throw new Error(`expected the login page, got ${page.url()}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/users`);
  return { ctx, page };
}

async function shot(page: Page, name: string): Promise<void> {
  if (process.env.MEZU_SCREENSHOTS !== undefined) await page.screenshot({ path: join(process.env.MEZU_SCREENSHOTS, `console-${name}.png`), fullPage: true });
}

let owner: { ctx: BrowserContext; page: Page };

test.serial('the owner signs in through the Console login; pages carry a strict CSP', async (t) => {
  owner = await signedIn('owner@example.com', OWNER_PW);
  const { page } = owner;
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Users');
  t.regex(await page.locator('header').innerText(), /owner@example\.com \(owner\)/);
  const res = await page.goto(`${base}/users`);
  const csp = res!.headers()['content-security-policy']!;
  t.regex(csp, /^default-src 'none'; style-src 'sha256-[^']+'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
  t.is(await page.locator('script').count(), 0);
  t.is(await page.locator('link[rel=stylesheet], img[src^="http"]').count(), 0, 'no external assets');
  await shot(page, 'users');
});

test.serial('create a user, then suspend it: its open session is refused on its next request', async (t) => {
  const { page } = owner;
  await page.goto(`${base}/users?directory=demo`);
  await page.getByLabel('Email').fill('grace@example.com');
  await page.getByLabel('Name', { exact: true }).fill('Grace Hopper');
  await page.getByLabel('Roles (comma-separated)').fill('engineer');
  await page.getByRole('button', { name: 'Create user' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'grace@example.com');
  t.is(await page.getByRole('status').innerText(), 'The user was created.');
  // Grace signs in to the application somewhere (a session made from the CLI stands in for her browser).
  const token = stack.session('grace@example.com');
  const asGrace = { headers: { cookie: `mezu_session=${token}` } };
  const before = await stack.request('/api/v1/me', asGrace);
  t.is(before.status, 200);
  t.is((JSON.parse(before.body) as { identity: Record<string, string> }).identity['x-mezu-roles'], 'engineer');
  await page.reload();
  t.regex(await page.locator('section', { hasText: 'Sessions' }).innerText(), /ses_/);
  t.regex(await page.locator('section', { hasText: 'Second factors' }).innerText(), /No second factor[\s\S]*Recovery codes left: 0/);
  await page.getByRole('button', { name: 'Suspend' }).click();
  t.regex(await page.getByRole('status').innerText(), /suspended/);
  t.regex(await page.locator('section', { hasText: 'Status' }).first().innerText(), /suspended/);
  for (let i = 0; i < 4; i++) t.is((await stack.request('/api/v1/me', asGrace)).status, 401, 'refused on the next request, in every worker');
  t.regex(await page.locator('section', { hasText: 'Sessions' }).innerText(), /No open sessions/);
  t.true(await page.getByRole('button', { name: 'Activate', exact: true }).isVisible());
  // Search finds her by name.
  await page.goto(`${base}/users?directory=demo`);
  await page.getByLabel('Search').fill('hopper');
  await page.getByRole('button', { name: 'Search' }).click();
  t.is(await page.locator('tbody tr').count(), 1);
  t.regex(await page.locator('tbody tr').innerText(), /grace@example\.com[\s\S]*suspended/);
  await shot(page, 'user');
});

test.serial('edit a route from public to required: the next request is redirected to login; errors show at the field', async (t) => {
  const { page } = owner;
  const anon = await browser.newContext();
  const app = await anon.newPage();
  await app.goto(`http://127.0.0.1:${stack.port}/docs/intro`);
  t.is(new URL(app.url()).pathname, '/docs/intro', 'public before the edit');
  await page.goto(`${base}/routes?project=demo`);
  const row = page.locator('tbody tr', { has: page.locator('input[value="/docs/*"]') });
  await row.locator('select[name^=auth_]').selectOption('required');
  await page.getByRole('button', { name: 'Save routes' }).click();
  t.regex(await page.getByRole('status').innerText(), /Routes saved/);
  // Live without a restart: the edge polls the store (100 ms in tests).
  const t0 = Date.now();
  for (;;) {
    await app.goto(`http://127.0.0.1:${stack.port}/docs/intro`);
    if (new URL(app.url()).pathname === '/_mezu/login' || Date.now() - t0 > 3_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is(new URL(app.url()).pathname, '/_mezu/login');
  t.is(new URL(app.url()).searchParams.get('rd'), '/docs/intro');
  await anon.close();
  // A mistake: the message sits at its field, nothing is applied.
  const last = page.locator('tbody tr').last();
  await last.locator('input[name^=path_]').fill('docs-without-slash');
  await last.locator('input[name^=roles_]').fill('admin');
  await page.getByRole('button', { name: 'Save routes' }).click();
  t.regex(await page.getByRole('alert').first().innerText(), /not saved/);
  const bad = page.locator('tbody tr').last().locator('input[name^=path_]');
  t.is(await bad.getAttribute('aria-invalid'), 'true');
  const described = await bad.getAttribute('aria-describedby');
  t.regex(await page.locator(`#${described}`).innerText(), /must start with "\/"/);
  t.is(await bad.inputValue(), 'docs-without-slash', 'what was typed is kept');
  await shot(page, 'routes-error');
});

test.serial('create a service account key: shown once, works at the edge, never shown again', async (t) => {
  const { page } = owner;
  await page.goto(`${base}/service-accounts?project=demo`);
  await page.getByLabel('Name').fill('ci-bot');
  await page.getByLabel('Permissions (comma-separated)').fill('users:read');
  await page.getByRole('button', { name: 'Create service account' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'ci-bot');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.locator('#new-key').innerText()).trim();
  t.regex(key, /^mzk_[A-Za-z0-9_-]{16}_[A-Za-z0-9_-]{43}$/);
  t.regex(await page.locator('section', { hasText: 'New key' }).innerText(), /only time the key is shown/);
  await shot(page, 'key-once');
  const hook = await stack.request('/webhooks/build', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
  t.is(hook.status, 200);
  // Back on the page (reloading the answer's URL lands there too): the prefix is listed, the secret is nowhere.
  await page.goto(page.url());
  t.regex(new URL(page.url()).pathname, /^\/service-accounts\/sa_[A-Za-z0-9_-]+$/);
  const html = await page.content();
  t.false(html.includes(key.slice(21)), 'the secret is never shown again');
  t.true(html.includes(key.slice(0, 20)), 'the visible prefix is');
  t.is(await page.locator('#new-key').count(), 0);
  t.regex(await page.locator('tbody').innerText(), /active/);
  // Revoke it from the page: refused on the next request.
  await page.getByRole('button', { name: 'Revoke' }).click();
  t.regex(await page.getByRole('status').innerText(), /revoked/);
  t.is((await stack.request('/webhooks/build', { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' })).status, 401);
});

test.serial('the audit log and the Warpgates page show what happened', async (t) => {
  const { page } = owner;
  await page.goto(`${base}/audit`);
  const log = await page.locator('tbody').innerText();
  for (const a of ['user.create', 'user.suspend', 'routes.update', 'service_account.create', 'key.create', 'key.revoke']) t.true(log.includes(a), a);
  t.regex(log, /owner@example\.com/);
  await page.goto(`${base}/warpgates`);
  // The test stack's Warpgate uses a static certificate: reported by the edge workers, connected.
  t.regex(await page.locator('tbody').innerText(), /connected[\s\S]*static certificate/);
  await shot(page, 'audit');
});

test.serial('the first owner, created from the CLI without a password, sets it through the single-use link it printed', async (t) => {
  const out = cli(['console', 'add-owner', '--email', 'second-owner@example.com', '--console-url', base]);
  const link = /(http:\/\/\S+\/_mezu\/reset\?token=\S+)/.exec(out)![1]!;
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(link);
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Choose a new password');
  await page.getByLabel('New password').fill('second owner passphrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Password changed');
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Email').fill('second-owner@example.com');
  await page.getByLabel('Password').fill('second owner passphrase');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/overview`);
  t.regex(await page.locator('header').innerText(), /second-owner@example\.com \(owner\)/);
  // The link worked once.
  await page.goto(link);
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'This link does not work');
  await ctx.close();
});

test.serial('a viewer sees everything and can change nothing: no control that changes anything on any page', async (t) => {
  const { ctx, page } = await signedIn('viewer@example.com', VIEWER_PW);
  for (const path of ['/users?directory=demo', '/routes?project=demo', '/service-accounts?project=demo', '/warpgates', '/audit']) {
    await page.goto(`${base}${path}`);
    t.is(await page.locator('form[method=post]').count(), 0, `${path}: no POST form`);
  }
  await page.goto(`${base}/users?directory=demo`);
  await page.getByRole('link', { name: 'grace@example.com' }).click();
  t.is(await page.getByRole('button').count(), 0, 'no buttons on a user for a viewer');
  t.regex(await page.locator('main').innerText(), /suspended/);
  await ctx.close();
  t.deepEqual(violations, [], 'no CSP violation or script error on any page');
});
