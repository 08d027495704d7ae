/**
 * Second factors and step-up on the real stack (edge with two workers,
 * Warpgate, origin): an API client gets the RFC 9470 challenge, a browser is
 * sent to the step-up page; TOTP enrolment on the security page; the step-up
 * keeps the session and forwards acr/amr/step-up time; a replayed code is
 * refused; a recovery code works once; an operator's reset removes the factor.
 */
import test from 'ava';
import { Stack } from './harness.js';
import { Client, hiddenFields, signUp, unescapeHtml } from './login-client.js';
import { totpCode } from '../../src/login/factors/totp.js';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /api/v1/*, auth: required }
      - { path: /admin/*, auth: required, step_up: { max_age: 10m, factors: [totp] } }
    login:
      signup: open
      public_url: http://localhost:8080
      throttle:
        account: { delay_after: 100, lock_after: 100, lock: 1s, window: 1m }
        ip: { delay_after: 1000, lock_after: 1000, lock: 1h, window: 1m }
`;
const stack = new Stack(2, CONFIG);
const PW = 'correct horse battery staple';
const EMAIL = 'otp@example.com';
let secret = '';
let recovery: string[] = [];
/** The newest TOTP time used (a later code is needed each time: replay refusal is per step). */
let lastUsed = 0;

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

function nextCode(): string {
  // The next step after the last one used, within the ±1 window of now.
  const now = Date.now();
  const t = Math.max(now - 30_000, lastUsed + 30_000);
  if (t > now + 30_000) throw new Error('no unused step left in the window');
  lastUsed = t;
  return totpCode(secret, t);
}

async function signIn(c: Client, rd = '/api/v1/me'): Promise<{ status: number; location: string }> {
  const r = await c.submit(`/_mezu/login?rd=${encodeURIComponent(rd)}`, { email: EMAIL, password: PW });
  return { status: r.status, location: String(r.headers.location ?? '') };
}

test.serial('a step_up route: API clients get 401 with the RFC 9470 challenge, browsers a 302 to the step-up page', async (t) => {
  const c = await signUp(stack, EMAIL, PW);
  const api = await stack.request('/admin/users', { headers: { cookie: c.cookieHeader(), accept: 'application/json' } });
  t.is(api.status, 401);
  t.is(api.headers['www-authenticate'], 'Bearer realm="mezusphere", error="insufficient_user_authentication", error_description="A second factor used more recently is required", max_age="600", acr_values="mfa"');
  const body = JSON.parse(api.body) as { error: { code: string; step_up_url: string } };
  t.is(body.error.code, 'MEZU_STEP_UP_REQUIRED');
  const browser = await c.get('/admin/users?tab=1');
  t.is(browser.status, 302);
  t.is(browser.headers.location, `/_mezu/step-up?rd=${encodeURIComponent('/admin/users?tab=1')}`);
  // Routes without step_up are as before.
  t.is((await c.get('/api/v1/me')).status, 200);
  // The step-up page of a user without a factor sends to enrolment and back.
  const page = await c.get(String(browser.headers.location));
  t.is(page.status, 200);
  t.regex(page.body, /href="\/_mezu\/account\/security\?rd=%2F_mezu%2Fstep-up%3Frd%3D/);
});

test.serial('enrol TOTP (QR code and key on the page, confirmed with a code and the password), then step up in place', async (t) => {
  const c = new Client(stack);
  t.is((await signIn(c)).status, 303);
  const page = await c.get('/_mezu/account/security');
  t.is(page.status, 200);
  t.regex(page.body, /<div class="qr" role="img"[^>]*><svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // No inline script: the page's one script is the passkey script, allowed by this response's nonce only.
  const scripts = [...page.body.matchAll(/<script[^>]*>/g)].map((m) => m[0]);
  t.is(scripts.length, 1);
  const nonce = /^<script src="\/_mezu\/webauthn\.js" nonce="([A-Za-z0-9+/=]+)"><\/?/.exec(`${scripts[0]!}<`)?.[1];
  t.truthy(nonce, scripts[0]);
  t.true(String(page.headers['content-security-policy']).endsWith(`; script-src 'nonce-${nonce!}'`));
  t.regex(page.body, /<script src="\/_mezu\/webauthn\.js" nonce="[^"]+"><\/script><\/body>/, 'nothing between the tags');
  secret = unescapeHtml(/<code id="totp-secret">([^<]+)<\/code>/.exec(page.body)![1]!).replace(/\s/g, '');
  t.regex(secret, /^[A-Z2-7]{32}$/);
  t.regex(page.body, /otpauth:\/\/totp\//);
  // A wrong password is refused even with the right code.
  const bad = await c.post('/_mezu/account/security', { ...hiddenFields(page.body), code: totpCode(secret, Date.now()), password: 'wrong password here' });
  t.is(bad.status, 401);
  t.is(bad.headers['x-mezu-error-code'], 'MEZU_LOGIN_FAILED');
  const ok = await c.post('/_mezu/account/security', { ...hiddenFields(page.body), code: nextCode(), password: PW });
  t.is(ok.status, 200);
  recovery = [...ok.body.matchAll(/<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})<\/li>/g)].map((m) => m[1]!);
  t.is(recovery.length, 10);
  const status = stack.cli('users', 'factors', '--project', 'demo', '--email', EMAIL, '--json');
  t.is(status.status, 0, status.stderr);
  t.like(JSON.parse(status.stdout), { factors: { totp: true, recovery_codes_left: 10 } });

  // Enrolment is not a step-up: the route still asks, the step-up page takes a new code.
  const before = c.session();
  t.is((await c.get('/admin/users')).status, 302);
  const up = await c.submit(`/_mezu/step-up?rd=${encodeURIComponent('/admin/users')}`, { code: nextCode() });
  t.is(up.status, 303);
  t.is(up.headers.location, '/admin/users');
  t.is(c.session(), before, 'the same session: no new session id');
  await stack.clearOrigin();
  const r = await stack.request('/admin/users', { headers: { cookie: c.cookieHeader(), accept: 'application/json' } });
  t.is(r.status, 200);
  const seen = (await stack.originSeen()).at(-1)!;
  t.deepEqual(seen.headers['x-mezu-auth-acr'], ['mfa']);
  t.deepEqual(seen.headers['x-mezu-auth-method'], ['pwd,otp']);
  const stepUpTime = Number(seen.headers['x-mezu-step-up-time']?.[0]);
  t.true(Math.abs(stepUpTime - Date.now() / 1000) < 30);
});

test.serial('sign-in asks for the code after the password; a replayed code is refused; a recovery code works once', async (t) => {
  const c = new Client(stack);
  const first = await signIn(c, '/admin/users');
  t.is(first.status, 303);
  t.is(first.location, '/_mezu/login/otp');
  t.is(c.session(), '', 'no session before the second factor');
  t.truthy(c.jar.get('mezu_mfa'));
  // The code used for the step-up above: replayed → refused.
  const replay = await c.submit('/_mezu/login/otp', { code: totpCode(secret, lastUsed) });
  t.is(replay.status, 401);
  t.is(replay.headers['x-mezu-error-code'], 'MEZU_OTP_INVALID');
  t.regex(replay.body, /already used/);
  t.is(c.session(), '');
  const rc = await c.submit('/_mezu/login/otp', { code: recovery[0]! });
  t.is(rc.status, 303);
  t.is(rc.headers.location, '/admin/users');
  t.not(c.session(), '');
  // A sign-in with a second factor satisfies the step-up rule at once.
  t.is((await stack.request('/admin/users', { headers: { cookie: c.cookieHeader(), accept: 'application/json' } })).status, 200);

  const again = new Client(stack);
  t.is((await signIn(again)).location, '/_mezu/login/otp');
  const reuse = await again.submit('/_mezu/login/otp', { code: recovery[0]! });
  t.is(reuse.status, 401, 'a recovery code works once');
  const totp = await again.submit('/_mezu/login/otp', { code: nextCode() });
  t.is(totp.status, 303);
  t.not(again.session(), '');

  const h = stack.cli('users', 'history', EMAIL, '--project', 'demo', '--json');
  const events = (JSON.parse(h.stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>)[0]!.events.map((e) => `${e.type}:${e.reason ?? ''}`);
  for (const e of ['mfa_enrolled:totp', 'step_up:totp', 'mfa_failure:replayed', 'mfa_success:recovery_code', 'mfa_failure:recovery_code_unknown', 'mfa_success:totp']) t.true(events.includes(e), e);
  const audit = stack.cli('audit', '--json', '--limit', '50');
  const actions = (JSON.parse(audit.stdout) as Array<{ action: string }>).map((a) => a.action);
  for (const a of ['factor.enroll', 'factor.use', 'factor.failure']) t.true(actions.includes(a), a);
});

test.serial('an operator resets the factors: the next sign-in asks for the password only; audited', async (t) => {
  const r = stack.cli('users', 'factors', '--project', 'demo', '--email', EMAIL, 'reset', '--json');
  t.is(r.status, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { reset: true, factors: { totp: false, recovery_codes_left: 0 } });
  const c = new Client(stack);
  const s = await signIn(c);
  t.is(s.location, '/api/v1/me');
  t.not(c.session(), '');
  const audit = stack.cli('audit', '--json', '--action', 'factor.reset');
  t.is((JSON.parse(audit.stdout) as unknown[]).length, 1);
});

test.serial('passkey answers that are not ours: a malformed one, a foreign challenge, a login page challenge from another browser — refused, recorded, no session', async (t) => {
  // The login page's passwordless form: its challenge is bound to this browser's CSRF cookie.
  const a = new Client(stack);
  const page = await a.get('/_mezu/login');
  t.regex(page.body, /<form method="post" action="\/_mezu\/login\/passkey" id="passkey-login" data-webauthn="authenticate"/);
  const options = JSON.parse(unescapeHtml(/id="passkey-login" data-webauthn="authenticate" data-options="([^"]+)"/.exec(page.body)![1]!)) as { challenge: string; rpId: string; userVerification: string; allowCredentials?: unknown };
  t.is(options.rpId, 'localhost');
  t.is(options.userVerification, 'required');
  t.is(options.allowCredentials, undefined, 'passwordless: the browser offers its discoverable credentials');
  const answer = (challenge: string) => JSON.stringify({
    id: 'AAAA', rawId: 'AAAA', type: 'public-key', clientExtensionResults: {},
    response: { clientDataJSON: Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: 'http://localhost' })).toString('base64url'), authenticatorData: 'AAAA', signature: 'AAAA' },
  });
  const post = (c: Client, credential: string) => c.post('/_mezu/login/passkey', { ...hiddenFields(page.body), credential });
  for (const bad of ['{', answer('bm90LW91cnM'), answer(options.challenge)]) {
    const r = await post(a, bad);
    t.is(r.status, 401);
    t.is(r.headers['x-mezu-error-code'], 'MEZU_PASSKEY_INVALID');
    t.is(a.session(), '');
  }
  // The same challenge from another browser (another CSRF cookie; its own token): not bound to it.
  const b = new Client(stack);
  const other = await b.get('/_mezu/login');
  const r = await b.post('/_mezu/login/passkey', { ...hiddenFields(other.body), credential: answer(options.challenge) });
  t.is(r.status, 401);
  t.is(b.session(), '');
  // No account holds these: recorded under the directory with no email, and each refusal says why.
  const h = JSON.parse(stack.cli('users', 'history', '', '--project', 'demo', '--json').stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>;
  const reasons = h.flatMap((x) => x.events).filter((e) => e.type === 'login_failure').map((e) => e.reason);
  for (const why of ['passkey_malformed', 'passkey_challenge', 'passkey_unknown_credential']) t.true(reasons.includes(why), `${why} in ${JSON.stringify(reasons)}`);
});
