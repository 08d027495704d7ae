/**
 * Devices on the real stack: the device cookie (signed, long-lived, HttpOnly)
 * is set at sign-in and never reaches the origin; `step_up: { device: known }`
 * refuses a session from a device new to the user (RFC 9470 challenge without
 * acr_values for an API client) and lets through one signed in again from the
 * same browser; a sign-in from another browser mails the user and is in the
 * history; `login.adaptive.new_device: totp` makes a new device's sign-in
 * take an authenticator code and refuses anything else, server-side.
 */
import test from 'ava';
import { Stack } from './harness.js';
import { Client, hiddenFields, outbox, signUp, unescapeHtml } from './login-client.js';
import { totpCode } from '../../src/login/factors/totp.js';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    default: required
    routes:
      - { path: /known/*, auth: required, step_up: { device: known } }
      - { path: /api/*, auth: required }
    login: { signup: open, public_url: http://localhost:8080, adaptive: { new_device: totp } }
`;
const stack = new Stack(2, CONFIG);
const EMAIL = 'dev@example.com';
const PW = 'violet trains past midnight';
/** The second test's browser: a session on a device new to the user, kept for the step-up at the end. */
let other: Client;

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

async function signIn(c: Client, rd = '/api/me'): Promise<{ status: number; location: string }> {
  const r = await c.submit(`/_mezu/login?rd=${encodeURIComponent(rd)}`, { email: EMAIL, password: PW });
  return { status: r.status, location: String(r.headers.location ?? '') };
}

function history(): string[] {
  const h = JSON.parse(stack.cli('users', 'history', EMAIL, '--project', 'demo', '--json').stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>;
  return h.flatMap((x) => x.events).map((e) => `${e.type}:${e.reason ?? ''}`);
}

test.serial('device cookie: set at sign-in, HttpOnly and long-lived, stripped before the origin; device: known refuses a first device until it signs in again', async (t) => {
  const a = await signUp(stack, EMAIL, PW);
  const device = a.jar.get('mezu_device');
  t.truthy(device, 'the first sign-in gives the browser a device cookie');
  t.regex(device!, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/);
  // The application never sees it (a product cookie), nor the session cookie.
  await stack.clearOrigin();
  const r = await stack.request('/api/me', { headers: { cookie: `${a.cookieHeader()}; app_pref=dark`, accept: 'application/json' } });
  t.is(r.status, 200);
  const seen = (await stack.originSeen()).at(-1)!;
  t.deepEqual(seen.headers['cookie'], ['app_pref=dark']);
  // The sign-in that made the cookie was the device's first: not known yet.
  const api = await stack.request('/known/x', { headers: { cookie: a.cookieHeader(), accept: 'application/json' } });
  t.is(api.status, 401);
  t.is(api.headers['www-authenticate'], 'Bearer realm="mezusphere", error="insufficient_user_authentication", error_description="A second factor used more recently is required"');
  t.is((await a.get('/known/x')).headers.location, `/_mezu/step-up?rd=${encodeURIComponent('/known/x')}`);
  // Signed out and in again from the same browser: the device is known now.
  await a.submit('/_mezu/logout', {});
  t.is(a.session(), '');
  t.is(a.jar.get('mezu_device'), device, 'the device cookie outlives the session');
  t.is((await signIn(a)).status, 303);
  t.is((await stack.request('/known/x', { headers: { cookie: a.cookieHeader(), accept: 'application/json' } })).status, 200);
  // The session cookie alone, from a browser without this device cookie: refused.
  t.is((await stack.request('/known/x', { headers: { cookie: `mezu_session=${a.session()}`, accept: 'application/json' } })).status, 401);
  const ev = history();
  t.true(ev.includes('new_device:first'), ev.join(' '));
});

test.serial('a sign-in from another browser is a new device: mailed to the user, in the history, and not known for device rules', async (t) => {
  const before = outbox(stack, EMAIL).length;
  const b = new Client(stack);
  other = b;
  const r = await b.submit('/_mezu/login', { email: EMAIL, password: PW });
  t.is(r.status, 303);
  const set = (r.headers['set-cookie'] ?? []).find((x) => x.startsWith('mezu_device='));
  t.regex(set ?? '', /^mezu_device=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}; Path=\/; Max-Age=34560000; HttpOnly; SameSite=Lax$/, '400 days, HttpOnly (Secure and __Host- on https)');
  const mails = outbox(stack, EMAIL).slice(before);
  const m = mails.find((x) => x.subject.startsWith('New sign-in'));
  t.truthy(m, JSON.stringify(mails.map((x) => x.subject)));
  t.regex(m!.text, /from a device it had not used before/);
  t.regex(m!.text, /http:\/\/localhost:8080\/_mezu\/forgot/);
  t.true(history().includes('new_device:mailed'));
  t.is((await stack.request('/known/x', { headers: { cookie: b.cookieHeader(), accept: 'application/json' } })).status, 401);
  // A forged device cookie is replaced by a fresh one at the next sign-in, never recorded.
  const c = new Client(stack);
  c.jar.set('mezu_device', `${'A'.repeat(22)}.${'B'.repeat(22)}`);
  t.is((await signIn(c)).status, 303);
  t.not(c.jar.get('mezu_device'), `${'A'.repeat(22)}.${'B'.repeat(22)}`);
});

test.serial('login.adaptive.new_device: totp — a new device must use the authenticator code; a known one takes the usual factors; a step-up makes a device known', async (t) => {
  // Enrol TOTP from the known browser (the first test's).
  const a = new Client(stack);
  t.is((await signIn(a)).status, 303);
  const page = await a.get('/_mezu/account/security');
  const secret = unescapeHtml(/<code id="totp-secret">([^<]+)<\/code>/.exec(page.body)![1]!).replace(/\s/g, '');
  let at = Date.now();
  const ok = await a.post('/_mezu/account/security', { ...hiddenFields(page.body), code: totpCode(secret, at), password: PW });
  t.is(ok.status, 200);
  const recovery = [...ok.body.matchAll(/<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})<\/li>/g)].map((m) => m[1]!);
  t.is(recovery.length, 10);
  // A browser new to the user: after the password, the code page; a posted passkey answer is refused outright.
  const n = new Client(stack);
  const first = await signIn(n);
  t.is(first.location, '/_mezu/login/otp');
  const otp = await n.get('/_mezu/login/otp');
  t.notRegex(otp.body, /data-webauthn/, 'no passkey form for a new device under new_device: totp');
  const fake = await n.post('/_mezu/login/otp', { ...hiddenFields(otp.body), credential: '{"id":"x"}' });
  t.is(fake.status, 401);
  t.is(fake.headers['x-mezu-error-code'], 'MEZU_PASSKEY_INVALID');
  t.true(history().includes('mfa_failure:adaptive_needs_totp'));
  at += 30_000;
  const done = await n.post('/_mezu/login/otp', { ...hiddenFields(otp.body), code: totpCode(secret, at) });
  t.is(done.status, 303);
  // The code was a second factor used on this device: known for the session.
  t.is((await stack.request('/known/x', { headers: { cookie: n.cookieHeader(), accept: 'application/json' } })).status, 200);
  // The second test's browser still has its session from before the enrolment, on a device not known then:
  // the step-up page takes a code (a recovery code here: the next TOTP step is not due yet), which makes the
  // device known, and returns to the route.
  t.is((await stack.request('/known/x', { headers: { cookie: other.cookieHeader(), accept: 'application/json' } })).status, 401);
  const up = await other.submit(`/_mezu/step-up?rd=${encodeURIComponent('/known/x')}`, { code: recovery[0]! });
  t.is(up.status, 303);
  t.is(up.headers.location, '/known/x');
  t.is((await stack.request('/known/x', { headers: { cookie: other.cookieHeader(), accept: 'application/json' } })).status, 200);
});
