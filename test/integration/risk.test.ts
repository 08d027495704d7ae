/**
 * Risk signals on the real stack (login.adaptive), with the client address
 * varied through X-Forwarded-For from a trusted proxy (the test's loopback
 * peer): a password sign-in from a network the user has not signed in from
 * (IPv4 /24, IPv6 /48) must use the authenticator code under
 * `new_network: totp` and refuses anything else, server-side, while another
 * address in a known network is not held to it; after a burst of failed
 * sign-ins the next correct password must use the code too under
 * `failure_burst`, and a success ends the burst. Each decision is in the
 * login history (`risk`) and the audit log (`login.risk`), which holds no
 * address beyond the client IP every record carries.
 */
import test from 'ava';
import { Stack } from './harness.js';
import { Client, hiddenFields, signUp, unescapeHtml } from './login-client.js';
import { totpCode } from '../../src/login/factors/totp.js';

const CONFIG = `
trusted_proxies: [127.0.0.1, "::1"]
projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    default: required
    routes:
      - { path: /api/*, auth: required }
    login:
      signup: open
      public_url: http://localhost:8080
      # Delays and locks out of the way: the burst is counted from the login history, not the throttle.
      throttle: { account: { delay_after: 50, lock_after: 100, lock: 1m, window: 15m } }
      adaptive: { new_network: totp, failure_burst: { after: 3, within: 15m, require: totp } }
`;
const stack = new Stack(2, CONFIG);
const EMAIL = 'risk@example.com';
const PW = 'amber lanterns over harbour';
let recovery: string[] = [];

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

function history(email = EMAIL): string[] {
  const h = JSON.parse(stack.cli('users', 'history', email, '--project', 'demo', '--json').stdout) as Array<{ events: Array<{ type: string; reason: string | null }> }>;
  return h.flatMap((x) => x.events).map((e) => `${e.type}:${e.reason ?? ''}`);
}
const count = (ev: string, email = EMAIL) => history(email).filter((e) => e === ev).length;

/** A password sign-in from `ip` (X-Forwarded-For; '' for the loopback peer itself) in a fresh browser. */
async function signIn(ip: string, password = PW, email = EMAIL): Promise<{ c: Client; ip: Record<string, string>; status: number; location: string }> {
  const c = new Client(stack);
  const h = xff(ip);
  const r = await c.submit('/_mezu/login?rd=%2Fapi%2Fme', { email, password }, h);
  return { c, ip: h, status: r.status, location: String(r.headers.location ?? '') };
}
const xff = (ip: string): Record<string, string> => (ip === '' ? {} : { 'x-forwarded-for': ip });

/** On the code page: a passkey answer is refused when the sign-in is held to the code; `adaptive` says whether it was for that reason. */
async function passkeyRefused(s: { c: Client; ip: Record<string, string> }): Promise<string> {
  const page = await s.c.get('/_mezu/login/otp', s.ip);
  const r = await s.c.post('/_mezu/login/otp', { ...hiddenFields(page.body), credential: '{"id":"x"}' }, s.ip);
  if (r.status !== 401 || r.headers['x-mezu-error-code'] !== 'MEZU_PASSKEY_INVALID') throw new Error(`passkey post: ${r.status}`);
  return r.body;
}

/** Completes the sign-in with a recovery code, from the same address (the network recorded is the completing request's). */
async function finishWithRecovery(s: { c: Client; ip: Record<string, string> }): Promise<number> {
  const page = await s.c.get('/_mezu/login/otp', s.ip);
  const r = await s.c.post('/_mezu/login/otp', { ...hiddenFields(page.body), code: recovery.shift()! }, s.ip);
  return r.status;
}

test.serial('new_network: totp — a network the user has not signed in from must use the code; an address in a known /24 or /48 is not held to it', async (t) => {
  // Signup signs in from the loopback peer: its network is the first, and a first sign-in is not "new".
  const a = await signUp(stack, EMAIL, PW);
  t.is(count('risk:new_network'), 0);
  const page = await a.get('/_mezu/account/security');
  const secret = unescapeHtml(/<code id="totp-secret">([^<]+)<\/code>/.exec(page.body)![1]!).replace(/\s/g, '');
  const ok = await a.post('/_mezu/account/security', { ...hiddenFields(page.body), code: totpCode(secret, Date.now()), password: PW });
  t.is(ok.status, 200);
  recovery = [...ok.body.matchAll(/<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})<\/li>/g)].map((m) => m[1]!);
  t.is(recovery.length, 10);

  // 198.51.100.7: a new /24. The code page; a passkey answer is refused for the risk, and the page says why.
  const n = await signIn('198.51.100.7');
  t.is(n.location, '/_mezu/login/otp');
  t.is(count('risk:new_network'), 1);
  t.regex(await passkeyRefused(n), /from a network you have not used before needs a code from your authenticator app/);
  t.is(count('mfa_failure:adaptive_needs_totp'), 1);
  const otp = await n.c.get('/_mezu/login/otp', n.ip);
  const done = await n.c.post('/_mezu/login/otp', { ...hiddenFields(otp.body), code: totpCode(secret, Date.now() + 30_000) }, n.ip);
  t.is(done.status, 303);
  t.is(done.headers.location, '/api/me');

  // 198.51.100.200: the same /24, known since that sign-in. Not held to the code: a passkey answer is judged
  // as a passkey (and fails as one), not refused for the risk; no new risk event.
  const k = await signIn('198.51.100.200');
  t.is(k.location, '/_mezu/login/otp', 'a user with a second factor always gives one');
  t.is(count('risk:new_network'), 1);
  t.notRegex(await passkeyRefused(k), /have not used before/);
  t.is(count('mfa_failure:adaptive_needs_totp'), 1);
  t.is(await finishWithRecovery(k), 303);

  // IPv6 by /48: a new one is a risk; another address in it is known once a sign-in from it completed.
  const v6 = await signIn('2001:db8:1:2::5');
  t.is(count('risk:new_network'), 2);
  t.regex(await passkeyRefused(v6), /have not used before/);
  t.is(await finishWithRecovery(v6), 303, 'recovery codes count as totp');
  const v6b = await signIn('2001:db8:1:ffff::9');
  t.is(v6b.location, '/_mezu/login/otp');
  t.is(count('risk:new_network'), 2, 'same /48');
  // IPv4-mapped IPv6 is its IPv4 address: the loopback network of the signup.
  await signIn('::ffff:127.0.0.9');
  t.is(count('risk:new_network'), 2);
  // A sign-in abandoned at the code page does not make its network known.
  await signIn('203.0.113.5');
  await signIn('203.0.113.6');
  t.is(count('risk:new_network'), 4);

  // The audit log names the signals and the factor; it holds no address in its details.
  const audit = JSON.parse(stack.cli('audit', '--action', 'login.risk', '--json', '--limit', '100').stdout) as Array<{ details: Record<string, unknown> }>;
  t.is(audit.length, 4);
  t.deepEqual(audit.map((x) => x.details['signals']), [['new_network'], ['new_network'], ['new_network'], ['new_network']]);
  t.true(audit.every((x) => x.details['factor'] === 'totp' && x.details['second_factor'] === true));
  t.false(audit.some((x) => /198\.51|2001:db8|203\.0/.test(JSON.stringify(x.details))));
});

test.serial('failure_burst — after 3 failed sign-ins the next correct password must use the code; a success ends the burst', async (t) => {
  // From the known loopback network: the burst is the only signal.
  for (let i = 0; i < 3; i++) t.is((await signIn('', 'not the password')).status, 401);
  const b = await signIn('');
  t.is(b.location, '/_mezu/login/otp');
  t.is(count('risk:failure_burst'), 1);
  t.regex(await passkeyRefused(b), /after several failed attempts on your account needs a code/);
  t.is(await finishWithRecovery(b), 303);
  // The success ended the burst: the next sign-in is not held to the code.
  const after = await signIn('');
  t.is(after.location, '/_mezu/login/otp');
  t.notRegex(await passkeyRefused(after), /failed attempts/);
  t.is(count('risk:failure_burst'), 1);
  // Two failures are below the threshold (and the abandoned sign-in above was no success: they add up).
  t.is((await signIn('', 'wrong again')).status, 401);
  t.is((await signIn('', 'and again')).status, 401);
  await signIn('');
  t.is(count('risk:failure_burst'), 1, 'two failures since the last success: no burst');
  t.is((await signIn('', 'a third')).status, 401);
  await signIn('');
  t.is(count('risk:failure_burst'), 2, 'the third failure since the last success makes a burst');
});

test.serial('a user without a second factor: the signal is recorded and the password signs in (nothing to ask for)', async (t) => {
  const email = 'plain@example.com';
  await signUp(stack, email, PW);
  const r = await signIn('198.51.100.7', PW, email);
  t.is(r.status, 303);
  t.is(r.location, '/api/me');
  t.is(count('risk:new_network', email), 1);
  const audit = JSON.parse(stack.cli('audit', '--action', 'login.risk', '--json', '--limit', '100').stdout) as Array<{ details: Record<string, unknown> }>;
  t.true(audit.some((x) => x.details['second_factor'] === false));
  // Its network is now known.
  t.is((await signIn('198.51.100.8', PW, email)).status, 303);
  t.is(count('risk:new_network', email), 1);
});
