/**
 * Hosted pages in a real headless browser (Debian's Chromium driven by
 * playwright-core), against the real edge, Warpgate and demo origin:
 * protected URL → login page → signup → back on the original URL with the
 * identity in the origin's JSON; logout → redirected again; forgot password →
 * link from the outbox → the new password works, the old one fails, old
 * sessions are dead; a wrong password shows the generic error.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test from 'ava';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { LOGIN_CONFIG, linkToken } from '../integration/login-client.js';

const stack = new Stack(2, LOGIN_CONFIG());
let browser: Browser;
let base = '';

test.before(async () => {
  await stack.start();
  base = `http://127.0.0.1:${stack.port}`;
  // Links in mail come from the configured public URL: point it at this stack.
  const a = stack.applyText(LOGIN_CONFIG().replace('public_url: http://localhost:8080', `public_url: ${base}`));
  if (a.status !== 0) throw new Error(a.stderr);
  await new Promise((r) => setTimeout(r, 400));
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stack.stop();
});

const PW = 'violet staircase under the moon';
const NEW_PW = 'copper kettle sings at dawn';

async function identity(page: Page): Promise<Record<string, string>> {
  const text = await page.locator('body').innerText();
  return (JSON.parse(text) as { identity: Record<string, string> }).identity;
}

test.serial('protected URL → login → signup → back on the URL with identity; logout → login again', async (t) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/api/v1/hello?from=browser`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign in');
  await page.getByRole('link', { name: 'No account yet? Create one' }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/signup');
  const t0 = Date.now();
  await page.getByLabel('Email').fill('ada.browser@example.com');
  await page.getByRole('button', { name: 'Continue' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Check your inbox');
  const token = await linkToken(stack, 'ada.browser@example.com', '/_mezu/signup/confirm', t0 - 1000);
  await page.goto(`${base}/_mezu/signup/confirm?token=${token}`);
  await page.getByLabel('Your name (optional)').fill('Ada Browser');
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${base}/api/v1/hello?from=browser`);
  const id = await identity(page);
  t.is(id['x-mezu-user-email'], 'ada.browser@example.com');
  t.is(id['x-mezu-user-name'], 'Ada Browser');
  t.is(id['x-mezu-principal-type'], 'user');
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'mezu_session')!;
  t.true(session.httpOnly);
  t.is(session.sameSite, 'Lax');

  await page.goto(`${base}/_mezu/logout`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Signed out');
  await page.goto(`${base}/api/v1/hello?again=1`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  t.is(new URL(page.url()).searchParams.get('rd'), '/api/v1/hello?again=1');
  await ctx.close();
});

test.serial('a wrong password shows the generic error, tied to the form, and keeps the email', async (t) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/api/v1/secret`);
  await page.getByLabel('Email').fill('ada.browser@example.com');
  await page.getByLabel('Password').fill('not my password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  t.is(await page.getByRole('alert').innerText(), 'Incorrect email or password.');
  t.is(await page.getByLabel('Email').inputValue(), 'ada.browser@example.com');
  t.is(await page.getByLabel('Password').getAttribute('aria-describedby'), 'form-error');
  // Focus lands on the first empty field: the password, ready to type again.
  t.is(await page.evaluate('document.activeElement && document.activeElement.id'), 'f-password');
  // The same error for an email that has no account.
  await page.getByLabel('Email').fill('nobody.browser@example.com');
  await page.getByLabel('Password').fill('not my password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  t.is(await page.getByRole('alert').innerText(), 'Incorrect email or password.');
  // And then the right one takes the user where they were going.
  await page.getByLabel('Email').fill('ada.browser@example.com');
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/api/v1/secret`);
  t.is((await identity(page))['x-mezu-user-email'], 'ada.browser@example.com');
  await ctx.close();
});

test.serial('forgot password → link from the outbox → new password works, old fails, old sessions are dead', async (t) => {
  // A session signed in elsewhere before the reset.
  const before = await browser.newContext();
  const bp = await before.newPage();
  await bp.goto(`${base}/_mezu/login?rd=%2Fapi%2Fv1%2Fbefore`);
  await bp.getByLabel('Email').fill('ada.browser@example.com');
  await bp.getByLabel('Password').fill(PW);
  await bp.getByRole('button', { name: 'Sign in' }).click();
  await bp.waitForURL(`${base}/api/v1/before`);

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/_mezu/login`);
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  const t0 = Date.now();
  await page.getByLabel('Email').fill('ada.browser@example.com');
  await page.getByRole('button', { name: 'Send the link' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Check your inbox');
  const out = stack.cli('mail', 'outbox', '--to', 'ada.browser@example.com');
  t.regex(out.stdout, /Reset your Demo Co password/);
  const token = await linkToken(stack, 'ada.browser@example.com', '/_mezu/reset', t0 - 1000);
  const link = new RegExp(`${base.replace(/[.:/]/g, '\\$&')}/_mezu/reset\\?token=${token}`);
  t.regex(out.stdout, link, 'the mail carries the full link, built from the public URL');
  await page.goto(`${base}/_mezu/reset?token=${token}`);
  await page.getByLabel('New password').fill(NEW_PW);
  await page.getByRole('button', { name: 'Change password' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Password changed');

  // The session from before is dead.
  await bp.goto(`${base}/api/v1/before`);
  t.is(new URL(bp.url()).pathname, '/_mezu/login');

  // Old password fails, new one works.
  await page.goto(`${base}/api/v1/after`);
  await page.getByLabel('Email').fill('ada.browser@example.com');
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  t.is(await page.getByRole('alert').innerText(), 'Incorrect email or password.');
  await page.getByLabel('Password').fill(NEW_PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/api/v1/after`);
  t.is((await identity(page))['x-mezu-user-email'], 'ada.browser@example.com');
  // The used link does not work a second time.
  await page.goto(`${base}/_mezu/reset?token=${token}`);
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'This link does not work');
  if (process.env.MEZU_SCREENSHOTS !== undefined) {
    await page.goto(`${base}/_mezu/login?rd=%2Fapi%2Fv1%2Fx`);
    await page.screenshot({ path: join(process.env.MEZU_SCREENSHOTS, 'login.png'), fullPage: true });
  }
  await before.close();
  await ctx.close();
});
