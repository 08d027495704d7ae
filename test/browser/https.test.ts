/**
 * The hosted login behind TLS, in a real headless Chromium: an edge started
 * with `--scheme https` behind a TLS-terminating proxy (node:https with the dev
 * CA's `localhost` certificate, standing in for the load balancer a deployment
 * puts in front). The browser must accept the `__Host-` cookies the edge sets
 * (Secure, Path=/, no Domain) and carry them through signup, the protected
 * request and logout. Needs /usr/bin/chromium (.ci/run installs it).
 */
import test from 'ava';
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { LOGIN_CONFIG, linkToken } from '../integration/login-client.js';

const stack = new Stack(1, LOGIN_CONFIG(), ['--scheme', 'https']);
let browser: Browser;
let proxy: https.Server;
let base = '';
const upstream = new http.Agent({ keepAlive: true });

test.before(async () => {
  await stack.start();
  const pki = join(stack.dir, 'pki');
  proxy = https.createServer({ cert: readFileSync(join(pki, 'edge-tunnel.pem')), key: readFileSync(join(pki, 'edge-tunnel-key.pem')) }, (req, res) => {
    const up = http.request({ host: '127.0.0.1', port: stack.port, method: req.method, path: req.url, headers: req.headers, agent: upstream }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502).end();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(proxy.address() as AddressInfo).port}`;
  const a = stack.applyText(LOGIN_CONFIG().replace('public_url: http://localhost:8080', `public_url: ${base}`));
  if (a.status !== 0) throw new Error(a.stderr);
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await new Promise((r) => (proxy === undefined ? r(undefined) : proxy.close(r)));
  upstream.destroy();
  await stack.stop();
});

async function identity(page: Page): Promise<Record<string, string>> {
  return (JSON.parse(await page.locator('body').innerText()) as { identity: Record<string, string> }).identity;
}

test.serial('behind TLS: signup → back on the protected URL with identity, on __Host- cookies the browser accepts; logout ends it', async (t) => {
  // The dev CA is not in Chromium's store; the proxy's certificate is the only thing this skips.
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  await page.goto(`${base}/api/v1/hello?via=tls`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  t.true(page.url().startsWith(base), page.url());
  const csrf = (await ctx.cookies()).find((c) => c.name.startsWith('__Host-') && /csrf/.test(c.name));
  t.truthy(csrf, JSON.stringify(await ctx.cookies()));
  t.true(csrf!.secure);

  await page.getByRole('link', { name: 'No account yet? Create one' }).click();
  const t0 = Date.now();
  await page.getByLabel('Email').fill('tls.browser@example.com');
  await page.getByRole('button', { name: 'Continue' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Check your inbox');
  const token = await linkToken(stack, 'tls.browser@example.com', '/_mezu/signup/confirm', t0 - 1000);
  await page.goto(`${base}/_mezu/signup/confirm?token=${token}`);
  await page.getByLabel('Password').fill('quiet harbour lanterns glow');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${base}/api/v1/hello?via=tls`);
  const id = await identity(page);
  t.is(id['x-mezu-user-email'], 'tls.browser@example.com');

  const cookies = await ctx.cookies();
  t.is(cookies.find((c) => c.name === 'mezu_session'), undefined, 'no plain-named session cookie behind TLS');
  const session = cookies.find((c) => c.name === '__Host-mezu_session');
  t.truthy(session, JSON.stringify(cookies.map((c) => c.name)));
  t.true(session!.secure);
  t.true(session!.httpOnly);
  t.is(session!.path, '/');
  t.is(session!.domain, 'localhost', 'host-only (a __Host- cookie has no Domain attribute)');
  t.is(session!.sameSite, 'Lax');

  await page.goto(`${base}/_mezu/logout`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Signed out');
  await page.goto(`${base}/api/v1/hello?via=tls`);
  t.is(new URL(page.url()).pathname, '/_mezu/login', 'the session is gone');
  await ctx.close();
});
