/**
 * The Console's overview in a real headless browser (Debian's Chromium driven
 * by playwright-core) against a real edge with two workers, its Warpgate and
 * origin, and a Console on the same store: the owner signs in and lands on the
 * overview; traffic is sent through the edge; the page — reloading itself,
 * nobody navigates — comes to show the numbers (requests, denials by reason)
 * and draws them as SVG charts with a bar per minute that had traffic; no
 * script runs and the CSP is never violated.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test from 'ava';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { type Browser } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { startConsole, stopConsole, type ConsoleProc } from '../integration/console-client.js';

const CLI = join(__dirname, '../../src/cli/main.js');
const OWNER_PW = 'owner console passphrase here';

const stack = new Stack(2);
let con: ConsoleProc;
let browser: Browser;
let base = '';
const violations: string[] = [];

test.before(async () => {
  await stack.start();
  con = await startConsole(stack);
  base = `http://localhost:${con.port}`;
  const r = spawnSync(process.execPath, [CLI, 'console', 'add-owner', '--email', 'owner@example.com', '--password-stdin', '--data', stack.dir], { encoding: 'utf8', input: OWNER_PW });
  if (r.status !== 0) throw new Error(r.stderr);
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stopConsole(con ?? null);
  await stack.stop();
});

test('the overview, first after sign-in, shows the traffic as numbers and SVG charts and follows it without a script', async (t) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => violations.push(e.message));
  await page.goto(`${base}/`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  await page.getByLabel('Email').fill('owner@example.com');
  await page.getByLabel('Password').fill(OWNER_PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/overview`);
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Overview');
  t.is(await page.locator('nav a[aria-current=page]').innerText(), 'Overview');
  const demo = page.locator('section[data-project="demo"]');
  t.is(await demo.locator('[data-stat="requests"]').innerText(), '0', 'no traffic yet');

  // Traffic through both workers: allowed, refused for want of a session, forbidden.
  stack.addUser('val@example.com', ['--roles', 'viewer']);
  const cookie = { cookie: `mezu_session=${stack.session('val@example.com')}`, accept: 'application/json' };
  const OK = 20;
  for (let i = 0; i < OK; i++) t.is((await stack.request(`/api/v1/items/${i}`, { headers: cookie })).status, 200);
  for (let i = 0; i < 6; i++) t.is((await stack.request('/api/v1/items', { headers: { accept: 'application/json' } })).status, 401);
  for (let i = 0; i < 3; i++) t.is((await stack.request('/admin/panel', { headers: cookie })).status, 403);
  const total = OK + 6 + 3;

  // The page reloads itself (meta refresh every 5 s; the edge writes its figures every 5 s): wait, never navigate.
  const t0 = Date.now();
  let shown = '';
  while (Date.now() - t0 < 30_000) {
    shown = await demo.locator('[data-stat="requests"]').innerText().catch(() => '');
    if (shown === String(total)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  t.is(shown, String(total), 'the requests of the last hour, as sent');
  t.is(await demo.locator('[data-stat="denials"]').innerText(), '9');
  t.is(await demo.locator('[data-stat="errors_5xx"]').innerText(), '0');
  t.is(await demo.locator('[data-stat="warpgates"]').innerText(), '1 of 1');
  t.not(await demo.locator('[data-stat="p99"]').innerText(), '—');
  const reasons = await demo.locator('table').innerText();
  t.regex(reasons, /MEZU_LOGIN_REQUIRED\s+6/);
  t.regex(reasons, /MEZU_FORBIDDEN\s+3/);

  // The charts: inline SVG drawn by the server, one bar for the minute that had the traffic.
  t.true((await demo.locator('svg.chart').count()) >= 5);
  const requests = demo.locator('svg#chart-requests-demo');
  t.is(await requests.getAttribute('role'), 'img');
  t.true((await requests.locator('rect').count()) >= 1, 'a bar for the minute with traffic');
  t.regex((await requests.locator('rect title').allTextContents()).join(' '), /\d\d:\d\d UTC: \d+ requests/);
  t.true((await demo.locator('svg#chart-latency-demo circle').count()) >= 1, 'a latency point');
  t.true((await demo.locator('svg#chart-reasons-demo rect').count()) === 2, 'a bar per denial reason');
  const box = await requests.boundingBox();
  t.true(box !== null && box.width > 200 && box.height > 50, 'the chart is drawn at a readable size');

  // Strict CSP kept: no script, nothing from elsewhere, no violation reported.
  const res = await page.goto(`${base}/overview`);
  t.regex(res!.headers()['content-security-policy']!, /^default-src 'none'; style-src 'sha256-[^']+'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
  t.is(await page.locator('script').count(), 0);
  t.is(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '5');
  t.deepEqual(violations, []);
  if (process.env.MEZU_SCREENSHOTS !== undefined) await page.screenshot({ path: join(process.env.MEZU_SCREENSHOTS, 'console-overview.png'), fullPage: true });
  await ctx.close();
});
