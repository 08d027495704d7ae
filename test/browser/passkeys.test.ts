/**
 * Passkeys in a real headless Chromium against the real edge, Warpgate and
 * demo origin, with Chromium's virtual authenticator (DevTools protocol
 * `WebAuthn.addVirtualAuthenticator`: CTAP2, internal transport, resident
 * keys, user verification that succeeds): a `step_up` route → sign in with
 * the password → the step-up page → add a passkey on the security page → back
 * to the step-up page → the passkey → the original URL, whose identity says
 * `mfa` with `hwk`; a route whose `max_age` has passed sends the browser
 * through the step-up page again; then, signed out, the passkey alone signs
 * in (user verification required) and satisfies the step-up route at once;
 * a password sign-in from a new device (cookies cleared) under
 * `login.adaptive.new_device: webauthn` is asked for the passkey only.
 * A posted answer replayed is refused (its challenge is single-use), and after
 * an operator resets the factors the browser's copy of the passkey no longer
 * signs in.
 * The pages run the passkey script under the CSP nonce: a CSP violation would
 * stop the ceremony, and the test fails on any console error.
 *
 * The pages are opened on `localhost`: a WebAuthn RP id must be a host name,
 * never an IP address (W3C WebAuthn Level 2 §5.1.3), and http://localhost is
 * a secure context.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
 */
import test from 'ava';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { Stack } from '../integration/harness.js';
import { signUp } from '../integration/login-client.js';

/** Seconds of `max_age` on /fresh/*: short, so the test can let it pass. */
const FRESH_S = 3;
const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /admin/*, auth: required, step_up: { max_age: 10m, factors: [webauthn, totp] } }
      - { path: /fresh/*, auth: required, step_up: { max_age: ${FRESH_S}s, factors: [webauthn] } }
    login: { signup: open, adaptive: { new_device: webauthn } }
`;
const stack = new Stack(2, CONFIG);
let browser: Browser;
let base = '';
const EMAIL = 'ada.passkey@example.com';
const PW = 'copper kettles under the bridge';

test.before(async () => {
  await stack.start();
  base = `http://localhost:${stack.port}`;
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stack.stop();
});

async function identity(page: Page): Promise<Record<string, string>> {
  return (JSON.parse(await page.locator('body').innerText()) as { identity: Record<string, string> }).identity;
}

function here(page: Page): string {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
}

test('passkey: enrol from the step-up page, step up and come back; a stale max_age asks again; then the passkey alone signs in', async (t) => {
  await signUp(stack, EMAIL, PW, 'localhost');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  // 1. Password sign-in on the way to a step-up route; the account has no second factor yet.
  await page.goto(`${base}/admin/panel?tab=keys`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(PW);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  t.is(here(page), `/_mezu/step-up?rd=${encodeURIComponent('/admin/panel?tab=keys')}`);
  await page.getByRole('link', { name: 'Set up a second factor' }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/account/security');
  const csp = (await page.context().request.get(page.url())).headers()['content-security-policy'] ?? '';
  t.regex(csp, /script-src 'nonce-[A-Za-z0-9+/=]+'$/, 'the page with a passkey form allows its script by nonce only');
  t.notRegex(csp, /unsafe-inline|script-src[^;]*'self'/);

  // 2. Add a passkey (with the password, as for an authenticator app).
  await page.getByLabel('Password (to add a passkey)').fill(PW);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.waitForURL((u) => u.pathname === '/_mezu/account/passkey');
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Passkey added');
  t.is(await page.locator('#recovery-codes li').count(), 10, 'the first factor brings ten recovery codes');
  const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.is(creds.credentials.length, 1);
  t.true(creds.credentials[0]!.isResidentCredential, 'a discoverable credential: usable without the email');
  t.is(creds.credentials[0]!.rpId, 'localhost');

  // 3. Back to the step-up page, which now offers the passkey; it returns to the original URL.
  await page.getByRole('link', { name: 'Continue' }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/step-up');
  const posted = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/_mezu/step-up');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  const answer = (await posted).postData() ?? '';
  t.regex(answer, /credential=%7B/, 'the script posted the answer as JSON in the form');
  await page.waitForURL((u) => u.pathname === '/admin/panel');
  t.is(here(page), '/admin/panel?tab=keys');
  let id = await identity(page);
  t.is(id['x-mezu-user-email'], EMAIL);
  t.is(id['x-mezu-auth-acr'], 'mfa');
  t.is(id['x-mezu-auth-method'], 'pwd,hwk');
  const firstStepUp = Number(id['x-mezu-step-up-time']);
  t.true(firstStepUp > 0);
  const steppedAt = Date.now();
  // The same answer posted again (same browser, same session): its challenge was claimed by the first use.
  const replay = await ctx.request.post(`${base}/_mezu/step-up`, { data: answer, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, maxRedirects: 0 });
  t.is(replay.status(), 401);
  t.is(replay.headers()['x-mezu-error-code'], 'MEZU_PASSKEY_INVALID');

  // 4. A route whose max_age has passed sends the browser through the step-up page again, and back.
  await new Promise((r) => setTimeout(r, Math.max(0, FRESH_S * 1000 + 300 - (Date.now() - steppedAt))));
  await page.goto(`${base}/fresh/report`);
  t.is(here(page), `/_mezu/step-up?rd=${encodeURIComponent('/fresh/report')}`);
  t.is(await page.getByLabel('Authentication code').count(), 0, 'a webauthn-only rule offers no code form');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.waitForURL((u) => u.pathname === '/fresh/report');
  id = await identity(page);
  t.true(Number(id['x-mezu-step-up-time']) >= firstStepUp, 'the step-up time moved on');
  t.is(id['x-mezu-auth-method'], 'pwd,hwk');

  // 5. Signed out: the passkey alone signs in (no email, no password), with user verification.
  await ctx.clearCookies();
  await page.goto(`${base}/admin/panel`);
  t.is(new URL(page.url()).pathname, '/_mezu/login');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  // The sign-in used a passkey just now: the step-up route lets it straight through.
  await page.waitForURL((u) => u.pathname === '/admin/panel');
  id = await identity(page);
  t.is(id['x-mezu-user-email'], EMAIL);
  t.is(id['x-mezu-auth-method'], 'hwk,mfa');
  t.is(id['x-mezu-auth-acr'], 'mfa');

  // 5b. Signed out again, a fresh browser profile as far as the edge can tell (no device cookie): the password
  // sign-in is from a new device, and login.adaptive.new_device: webauthn asks for the passkey only (not the
  // recovery codes the user also has); the passkey after the password satisfies the step-up route too.
  await ctx.clearCookies();
  await page.goto(`${base}/admin/panel`);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(PW);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  t.is(new URL(page.url()).pathname, '/_mezu/login/otp');
  t.is(await page.getByLabel('Authentication code').count(), 0, 'a new device: the passkey, nothing else');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/panel');
  id = await identity(page);
  t.is(id['x-mezu-auth-method'], 'pwd,hwk');

  // 6. The history and the audit log have the enrolment and every use.
  const h = JSON.parse(stack.cli('users', 'history', EMAIL, '--project', 'demo', '--json').stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>;
  const events = h.flatMap((x) => x.events).map((e) => `${e.type}:${e.reason ?? ''}`);
  t.true(events.includes('mfa_enrolled:webauthn'), events.join(' '));
  t.is(events.filter((e) => e === 'step_up:webauthn').length, 2);
  t.true(events.includes('mfa_failure:passkey_challenge_reused'), events.join(' '));
  t.true(events.includes('login_success:webauthn'), events.join(' '));
  const audit = (JSON.parse(stack.cli('audit', '--json', '--limit', '50').stdout) as Array<{ action: string; details: Record<string, unknown> }>);
  t.true(audit.some((a) => a.action === 'factor.enroll' && a.details['factor'] === 'webauthn'));
  t.true(audit.filter((a) => a.action === 'factor.use' && a.details['method'] === 'webauthn').length >= 4);
  t.true(events.includes('new_device:mailed'), 'the sign-ins after clearing cookies came from new devices');

  // 7. An operator lists the passkey and resets the factors: the passkey no longer signs in (a failure, recorded).
  const listed = JSON.parse(stack.cli('users', 'factors', '--project', 'demo', '--email', EMAIL, '--json').stdout) as { factors: { passkeys: Array<{ id: string; rp_id: string }>; recovery_codes_left: number } };
  t.is(listed.factors.passkeys.length, 1);
  t.is(listed.factors.passkeys[0]!.id, creds.credentials[0]!.credentialId.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
  t.is(listed.factors.passkeys[0]!.rp_id, 'localhost');
  t.is(listed.factors.recovery_codes_left, 10);
  const reset = JSON.parse(stack.cli('users', 'factors', '--project', 'demo', '--email', EMAIL, 'reset', '--json').stdout) as { reset: boolean; factors: { passkeys: unknown[] } };
  t.true(reset.reset);
  t.deepEqual(reset.factors.passkeys, []);
  await ctx.clearCookies();
  await page.goto(`${base}/_mezu/login`);
  // The browser still holds the credential; the edge no longer knows it (refused: unknown_credential).
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.waitForURL((u) => u.pathname === '/_mezu/login/passkey');
  t.regex(await page.getByRole('alert').first().innerText(), /did not sign you in/);
  const after = (JSON.parse(stack.cli('users', 'history', EMAIL, '--project', 'demo', '--json').stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>).flatMap((x) => x.events).map((e) => `${e.type}:${e.reason ?? ''}`);
  t.true(after.includes('mfa_reset:cli'), after.join(' '));
  t.deepEqual(errors.filter((e) => !/status of 401/.test(e)), [], 'no console error (a CSP violation would be one)');
  await ctx.close();
});
