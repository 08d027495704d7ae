/**
 * Second factors in a real headless Chromium against the real edge, Warpgate
 * and demo origin: a `step_up` route → sign in → the step-up page → enrol an
 * authenticator app on the security page (the key read from the page, codes
 * computed here) → back to the step-up page → a fresh code → back on the
 * original URL, whose identity now says `mfa`.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test from 'ava';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { signUp } from '../integration/login-client.js';
import { totpCode } from '../../src/login/factors/totp.js';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /admin/*, auth: required, step_up: { max_age: 10m, factors: [totp] } }
    login: { signup: open, public_url: http://localhost:8080 }
`;
const stack = new Stack(2, CONFIG);
let browser: Browser;
let base = '';
const EMAIL = 'grace.browser@example.com';
const PW = 'amber lanterns over the harbour';

test.before(async () => {
  await stack.start();
  base = `http://127.0.0.1:${stack.port}`;
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stack.stop();
});

async function identity(page: Page): Promise<Record<string, string>> {
  return (JSON.parse(await page.locator('body').innerText()) as { identity: Record<string, string> }).identity;
}

test('step_up route → sign in → step-up page → enrol TOTP from the page → step up with a fresh code → back on the URL', async (t) => {
  await signUp(stack, EMAIL, PW, '127.0.0.1');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/admin/panel?tab=keys`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Signed in with the password only: the route sends the browser on to the step-up page.
  const stepUp = new URL(page.url());
  t.is(stepUp.pathname, '/_mezu/step-up');
  t.is(stepUp.searchParams.get('rd'), '/admin/panel?tab=keys');
  await page.getByRole('link', { name: 'Set up a second factor' }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/account/security');
  t.true(await page.locator('.qr svg').isVisible(), 'the QR code is drawn (inline SVG under the strict CSP)');
  const secret = (await page.locator('#totp-secret').innerText()).replace(/\s/g, '');
  t.regex(secret, /^[A-Z2-7]{32}$/);
  const enrolAt = Date.now();
  await page.getByLabel('Code from the app').fill(totpCode(secret, enrolAt));
  await page.getByLabel('Your password').fill(PW);
  await page.getByRole('button', { name: 'Turn on' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Authenticator app on');
  t.is(await page.locator('#recovery-codes li').count(), 10);
  await page.getByRole('link', { name: 'Continue' }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/step-up');
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Confirm it is you');
  // The enrolment used this step's code: the next step's (inside the ±1 window) is a fresh one.
  await page.getByLabel('Authentication code').fill(totpCode(secret, enrolAt + 30_000));
  await page.getByRole('button', { name: 'Continue' }).click();
  const back = new URL(page.url());
  t.is(`${back.pathname}${back.search}`, '/admin/panel?tab=keys');
  const id = await identity(page);
  t.is(id['x-mezu-user-email'], EMAIL);
  t.is(id['x-mezu-auth-acr'], 'mfa');
  t.is(id['x-mezu-auth-method'], 'pwd,otp');
  t.truthy(id['x-mezu-step-up-time']);
  await ctx.close();
});
