/**
 * WebSockets, Server-Sent Events and continuous authorization in a real
 * headless browser (Debian's Chromium driven by playwright-core) against the
 * real edge, Warpgate and demo origin: a user created with the CLI chooses a
 * password from the emailed link and signs in through the hosted login, then
 * the demo origin's /api/v1/live page opens a WebSocket (whoami shows the
 * identity, a message comes back as its echo) and an event stream (ticks
 * advance). Revoking the session from the CLI closes the WebSocket with 1008
 * MEZU_ACCESS_REVOKED and cuts the stream within a measured bound; the
 * browser's retry of the stream is refused (401) and never reaches the origin,
 * and so is a new WebSocket handshake.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test, { type ExecutionContext } from 'ava';
import * as http from 'node:http';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { LOGIN_CONFIG, linkToken } from '../integration/login-client.js';

const stack = new Stack(2, LOGIN_CONFIG());
let browser: Browser;
let base = '';

/** How long after the CLI returns the page may take to report the end (the registry ticks every 250 ms). */
const REVOKE_BOUND_MS = 2_000;
/** Bound on any single wait for the page (each is a condition, not a sleep). */
const WAIT_MS = 10_000;
/**
 * How long to wait for the page to report the end, from when the CLI returned: past the bound, so a
 * late end fails on the measured delay (and says it) rather than on a timeout.
 */
const untilReported = (t1: number): number => Math.max(100, t1 + REVOKE_BOUND_MS + 3_000 - Date.now());

test.before(async () => {
  await stack.start();
  // The hosts of project demo are localhost and 127.0.0.1; links in mail name public_url, but only
  // their token is used here (the pages accept a form posted from the Host they were served on).
  base = `http://localhost:${stack.port}`;
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stack.stop();
});

function originGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stack.originPort, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

const PW = 'amber lanterns drift over quiet water';

/**
 * A user created with the CLI (no password yet) chooses one from the reset link in the outbox,
 * then signs in through the hosted login, sent there by the protected live page and back to it.
 */
async function signIn(t: ExecutionContext, email: string, password: string, setPassword: boolean): Promise<{ page: Page; token: string }> {
  const ctx = await browser.newContext();
  // Closed even when an assertion fails, so that no page keeps a socket open into the next test.
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  page.on('pageerror', (e) => t.log(`page error: ${e.message}`));
  if (setPassword) {
    await page.goto(`${base}/_mezu/forgot`);
    const t0 = Date.now();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send the link' }).click();
    t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Check your inbox');
    const token = await linkToken(stack, email, '/_mezu/reset', t0 - 1000);
    await page.goto(`${base}/_mezu/reset?token=${token}`);
    await page.getByLabel('New password').fill(password);
    await page.getByRole('button', { name: 'Change password' }).click();
    t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Password changed');
  }
  await page.goto(`${base}/api/v1/live`);
  t.is(new URL(page.url()).pathname, '/_mezu/login', 'not signed in: sent to the hosted login');
  t.is(new URL(page.url()).searchParams.get('rd'), '/api/v1/live');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/api/v1/live`);
  const session = (await ctx.cookies(base)).find((c) => c.name === 'mezu_session');
  if (session === undefined) throw new Error('no session cookie after signing in');
  return { page, token: session.value };
}

const text = (page: Page, id: string): Promise<string> => page.locator(`#${id}`).innerText();

/** Waits until #id's text matches `re` (checked in the page at every frame); returns it. */
async function waitText(page: Page, id: string, re: RegExp, timeout = WAIT_MS): Promise<string> {
  // In-page code is given as source text: this project compiles without the DOM types.
  await page.waitForFunction(`new RegExp(${JSON.stringify(re.source)}, ${JSON.stringify(re.flags)}).test(document.getElementById(${JSON.stringify(id)}).textContent)`, undefined, { timeout, polling: 'raf' });
  return text(page, id);
}

/** A status line's new text, when it changed, and the tick counter then. */
interface StatusChange {
  id: string;
  text: string;
  at: number;
  ticks: string;
}

/**
 * Records, in the page, each change of the two status lines with its time (Date.now(): the same
 * clock as this process, so it compares with when the CLI returned) and the tick count then.
 */
async function watchStatus(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.statusLog = [];
    const ticks = document.getElementById('ticks');
    for (const id of ['ws-status', 'sse-status']) {
      const el = document.getElementById(id);
      new MutationObserver(() => window.statusLog.push({ id, text: el.textContent, at: Date.now(), ticks: ticks.textContent }))
        .observe(el, { childList: true, characterData: true, subtree: true });
    }
  })()`);
}
function statusLog(page: Page): Promise<StatusChange[]> {
  return page.evaluate('window.statusLog') as Promise<StatusChange[]>;
}

/** A WebSocket opened from the page now: `open`, or how it ended (a refused handshake is 1006 in a browser). */
function tryWebSocket(page: Page): Promise<string> {
  return page.evaluate(`new Promise((resolve) => {
    const ws = new WebSocket('ws://' + location.host + '/api/v1/ws', ['echo.v1']);
    ws.onopen = () => { ws.close(1000); resolve('open'); };
    ws.onclose = (e) => resolve('closed ' + e.code);
  })`) as Promise<string>;
}

test.serial('the live page over the edge: WebSocket echo and identity, SSE ticks; revoking the session closes both at once', async (t) => {
  t.timeout(90_000);
  const email = 'lin.live@example.com';
  stack.addUser(email, ['--name', 'Lin Live', '--roles', 'engineer']);
  const { page, token } = await signIn(t, email, PW, true);

  // The WebSocket opens through the edge and the tunnel; whoami shows what the origin got on the handshake.
  await waitText(page, 'ws-status', /^open$/);
  const whoami = JSON.parse(await waitText(page, 'whoami', /x-mezu-user-email/)) as Record<string, string>;
  t.is(whoami['x-mezu-user-email'], email);
  t.is(whoami['x-mezu-user-name'], 'Lin Live');
  t.is(whoami['x-mezu-roles'], 'engineer');
  t.is(whoami['x-mezu-principal-type'], 'user');

  // A message through the form comes back as its echo.
  await page.getByLabel('Message').fill('hello through the edge');
  await page.getByRole('button', { name: 'Send' }).click();
  await waitText(page, 'echoes', /hello through the edge/);
  t.deepEqual(await page.locator('#echoes li').allInnerTexts(), ['hello through the edge']);
  t.is(await page.getByLabel('Message').inputValue(), '', 'the form is cleared once sent');

  // The event stream: open, and the counter advances (one event a second, the first at once).
  await waitText(page, 'sse-status', /^open$/);
  await waitText(page, 'ticks', /^(?:[2-9]|\d\d+)$/);
  t.true(Number(await text(page, 'ticks')) >= 2);

  // What reached the origin (the login pages are the edge's own): the page, one handshake, one stream.
  const seen = await stack.originSeen();
  t.deepEqual(seen.filter((r) => r.path.startsWith('/api/')).map((r) => `${r.method} ${r.path}${(r as { upgrade?: boolean }).upgrade === true ? ' (upgrade)' : ''}`).sort(), ['GET /api/v1/events', 'GET /api/v1/live', 'GET /api/v1/ws (upgrade)']);
  t.is(seen.find((r) => r.path === '/api/v1/events')!.headers['x-mezu-user-email']?.[0], email);
  t.deepEqual(JSON.parse(await originGet('/__origin/websockets')), { open: 1, opened: 1 });

  // Revoke the session from the CLI; time the page's reports against the CLI's return.
  await watchStatus(page);
  const t0 = Date.now();
  // `--token=T`, not `--token T`: a token is base64url and starts with '-' one time in 64, which
  // node:util parseArgs refuses as an ambiguous option value (the CLI then exits 2 with its usage).
  const r = stack.cli('sessions', 'revoke', `--token=${token}`);
  const t1 = Date.now();
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'sessions: revoked');
  await waitText(page, 'ws-status', /^closed /, untilReported(t1));
  await waitText(page, 'sse-status', /^(?!open$)/, untilReported(t1));
  t.is(await text(page, 'ws-status'), 'closed 1008 MEZU_ACCESS_REVOKED');
  const log = await statusLog(page);
  const wsAt = log.find((e) => e.id === 'ws-status')!.at;
  const sseAt = log.find((e) => e.id === 'sse-status')!.at;
  t.log(`CLI "sessions revoke" took ${t1 - t0} ms; after it returned (negative: before): WebSocket closed in ${wsAt - t1} ms, event stream cut in ${sseAt - t1} ms (from the CLI's start: ${wsAt - t0} / ${sseAt - t0} ms)`);
  t.true(wsAt - t1 < REVOKE_BOUND_MS, `WebSocket closed ${wsAt - t1} ms after the CLI returned`);
  t.true(sseAt - t1 < REVOKE_BOUND_MS, `event stream cut ${sseAt - t1} ms after the CLI returned`);
  // Nothing was reported before the revocation was committed (it happens inside the CLI run).
  t.true(wsAt >= t0 && sseAt >= t0);

  // The browser retries the stream (retry: 1000 from the origin); the edge answers 401 and the browser gives up.
  t.is(await waitText(page, 'sse-status', /^closed$/), 'closed');
  const full = await statusLog(page);
  const cut = full.find((e) => e.id === 'sse-status')!;
  const closed = full.find((e) => e.id === 'sse-status' && e.text === 'closed')!;
  t.log(`event stream: open → ${full.filter((e) => e.id === 'sse-status').map((e) => e.text).join(' → ')}; closed for good (retry refused) ${closed.at - t1} ms after the CLI returned`);
  t.is(await text(page, 'ticks'), cut.ticks, 'no event after the cut');

  // The origin side of both ended too, and the refused retry never reached the origin.
  await waitForOrigin(t, async () => (JSON.parse(await originGet('/__origin/websockets')) as { open: number }).open === 0, 'the origin WebSocket closed');
  await waitForOrigin(t, async () => (await stack.originSeen()).find((e) => e.path === '/api/v1/events')!.aborted, 'the origin saw the event stream go away');
  const after = await stack.originSeen();
  t.is(after.filter((e) => e.path === '/api/v1/events').length, 1, 'the retried stream was refused at the edge');

  // A new handshake and a new request with the revoked session are refused too.
  t.is(await tryWebSocket(page), 'closed 1006', 'a new WebSocket handshake is refused');
  t.is((await stack.request('/api/v1/ws', { headers: { cookie: `mezu_session=${token}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } })).status, 401);
  t.is((await stack.request('/api/v1/events', { headers: { cookie: `mezu_session=${token}`, accept: 'text/event-stream' } })).status, 401);
  t.is((await stack.originSeen()).filter((e) => e.path === '/api/v1/ws').length, 1, 'no refused handshake reached the origin');
  await page.goto(`${base}/api/v1/live`);
  t.is(new URL(page.url()).pathname, '/_mezu/login', 'the page itself sends the browser to sign in again');
});

test.serial('revoking every session of the user closes the live pages of each of its browsers', async (t) => {
  t.timeout(90_000);
  const email = 'max.live@example.com';
  stack.addUser(email);
  const a = await signIn(t, email, PW, true);
  const b = await signIn(t, email, PW, false);
  t.not(a.token, b.token, 'two sessions');
  for (const p of [a.page, b.page]) {
    await waitText(p, 'ws-status', /^open$/);
    await waitText(p, 'sse-status', /^open$/);
    await watchStatus(p);
  }
  const t0 = Date.now();
  const r = stack.cli('sessions', 'revoke', '--project', 'demo', '--email', email, '--all');
  const t1 = Date.now();
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'sessions: revoked 2');
  const delays: string[] = [];
  for (const [name, p] of [['a', a.page], ['b', b.page]] as const) {
    await waitText(p, 'ws-status', /^closed /, untilReported(t1));
    await waitText(p, 'sse-status', /^(?!open$)/, untilReported(t1));
    t.is(await text(p, 'ws-status'), 'closed 1008 MEZU_ACCESS_REVOKED');
    const log = await statusLog(p);
    const ws = log.find((e) => e.id === 'ws-status')!.at - t1;
    const sse = log.find((e) => e.id === 'sse-status')!.at - t1;
    delays.push(`${name}: WebSocket ${ws} ms, stream ${sse} ms (from the CLI's start: ${ws + t1 - t0} / ${sse + t1 - t0} ms)`);
    t.true(ws < REVOKE_BOUND_MS && sse < REVOKE_BOUND_MS, `${name}: ${ws} / ${sse} ms`);
    t.is(await waitText(p, 'sse-status', /^closed$/), 'closed');
  }
  t.log(`CLI "sessions revoke --all" took ${t1 - t0} ms; after it returned (negative: before): ${delays.join('; ')}`);
  await waitForOrigin(t, async () => (JSON.parse(await originGet('/__origin/websockets')) as { open: number }).open === 0, 'every origin WebSocket closed');
});

async function waitForOrigin(t: ExecutionContext, cond: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + WAIT_MS;
  while (!(await cond())) {
    if (Date.now() > end) {
      t.fail(`timed out waiting until ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  t.pass(what);
}
