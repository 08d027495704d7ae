/**
 * No secret is ever logged (docs/SECURITY.md "What is never logged"): a
 * realistic flow on real processes — signup by mailed link, logins with a
 * password (and a failed one), sessions used, a password reset by mailed
 * link, a service-account key used and refused, a Console owner signing in,
 * a Warpgate enrolling with its key — with the access logs on (the edge's and
 * the Warpgate's) and the debug level, then every process's log output (edge
 * primary and workers, Console, both Warpgates, origin) is searched for each
 * token, key, password and assertion used. Their ids may be logged; never
 * the secret itself.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, stopProc, waitFor, logLines, type Proc } from './harness.js';
import { Client, LOGIN_CONFIG, hiddenFields, linkToken } from './login-client.js';
import { startConsole, stopConsole, consoleUser, type ConsoleProc } from './console-client.js';

const WARPGATE = join(resolve(__dirname, '../../..'), 'dist/warpgate/main.js');
const PW = 'a long and unusual log passphrase 9';
const NEW_PW = 'another unusual log passphrase 10';
const CONSOLE_PW = 'long enough console passphrase for logs';
const EMAIL = 'log-keeper@example.com';

test('no token, key, password or assertion appears in any process\'s log', async (t) => {
  const stack = new Stack(2, LOGIN_CONFIG(), ['--access-log', 'on']);
  let con: ConsoleProc | null = null;
  let wg: Proc | null = null;
  t.teardown(async () => {
    await stopProc(wg);
    await stopConsole(con);
    await stack.stop();
    delete process.env.MEZU_LOG_LEVEL;
  });
  // Every process at the most verbose level (each inherits this test process's environment).
  process.env.MEZU_LOG_LEVEL = 'debug';
  await stack.start({ warpgate: false });
  await stack.startWarpgate(['--access-log']);

  // Signup through the pages (a mailed link), then logins with the password: one failed, one not.
  const a = new Client(stack);
  const t0 = Date.now() - 1000;
  t.is((await a.submit('/_mezu/signup', { email: EMAIL })).status, 200);
  const signupToken = await linkToken(stack, EMAIL, '/_mezu/signup/confirm', t0);
  t.is((await a.submit(`/_mezu/signup/confirm?token=${signupToken}`, { name: 'Keeper', password: PW })).status, 303);
  const signupSession = a.session();
  t.is((await new Client(stack).submit('/_mezu/login', { email: EMAIL, password: `${PW} wrong` })).status, 401);
  const b = new Client(stack);
  t.is((await b.submit('/_mezu/login', { email: EMAIL, password: PW })).status, 303);
  const loginSession = b.session();
  const me = await b.get('/api/v1/me?session=x');
  t.is(me.status, 200);
  // The assertion the origin got: a bearer credential towards the application, never logged either.
  const seen = await stack.originSeen();
  const assertion = seen.find((s) => s.path === '/api/v1/me')?.headers['x-mezu-assertion']?.[0] ?? '';
  t.not(assertion, '');

  // A reset by mailed link, used.
  const t1 = Date.now() - 1000;
  t.is((await new Client(stack).submit('/_mezu/forgot', { email: EMAIL })).status, 200);
  const resetToken = await linkToken(stack, EMAIL, '/_mezu/reset', t1);
  const c = new Client(stack);
  const form = await c.get(`/_mezu/reset?token=${resetToken}`);
  t.is((await c.post('/_mezu/reset', { ...hiddenFields(form.body), password: NEW_PW })).status, 200);

  // A service-account key: used (authenticated, then refused by the users-only routes) and a forged one.
  const sa = stack.cli('service-accounts', 'add', '--project', 'demo', '--name', 'ci', '--permissions', 'users:read,warpgates:enroll', '--json');
  t.is(sa.status, 0, sa.stderr);
  const key = stack.cli('keys', 'create', '--service-account', (JSON.parse(sa.stdout) as { id: string }).id);
  t.is(key.status, 0, key.stderr);
  const keyText = key.stdout;
  const keySecret = keyText.slice(21);
  t.is((await stack.request('/api/v1/x', { headers: { authorization: `Bearer ${keyText}` } })).status, 403);
  t.is((await stack.request('/api/v1/x', { headers: { authorization: `Bearer ${keyText.slice(0, -2)}xx` } })).status, 401);

  // The Console: an owner signs in with a password; the key enrolls a Warpgate there.
  con = await startConsole(stack);
  const owner = await consoleUser(stack, con, 'log-owner@example.com', 'owner', CONSOLE_PW);
  const consoleSession = [...owner.jar.values()].join(' ');
  const child = spawn(process.execPath, [WARPGATE, '--edge', con.base, '--key', keyText, '--origin', `http://127.0.0.1:${stack.originPort}`, '--access-log'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const w: Proc = { child, out: '', err: '' };
  child.stdout.on('data', (d: Buffer) => (w.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (w.err += d.toString()));
  wg = w;
  await waitFor('the enrolled Warpgate up', () => /enrolled as/.test(w.err) || w.child.exitCode !== null, 20_000);
  t.regex(w.err, /enrolled as/);
  // A request through whichever Warpgate, with the session (access lines on both sides).
  t.is((await b.get('/api/v1/after')).status, 302, 'the reset ended every session');

  const logs: Array<[string, string]> = [
    ['edge', stack.edge!.err + stack.edge!.out],
    ['warpgate', stack.warpgate!.err + stack.warpgate!.out],
    ['enrolled warpgate', w.err + w.out],
    ['console', con.err + con.out],
    ['origin', stack.origin!.err + stack.origin!.out],
  ];
  // The logs are there to be searched: access lines with request ids, debug included.
  t.true(logLines(stack.edge!.err).some((l) => l.msg === 'access'), 'the edge wrote access lines');
  t.true(logLines(stack.warpgate!.err).some((l) => l.msg === 'access'), 'the Warpgate wrote access lines');

  const secrets: Array<[string, string]> = [
    ['the password', PW],
    ['the new password', NEW_PW],
    ['the Console password', CONSOLE_PW],
    ['the signup token', signupToken],
    ['the reset token', resetToken],
    ['the signup session', signupSession],
    ['the login session', loginSession],
    ['the API key', keyText],
    ['the API key secret', keySecret],
    ['the assertion', assertion],
    ['the assertion signature', assertion.split('.')[2] ?? ''],
  ];
  for (const v of consoleSession.split(' ')) secrets.push(['a Console cookie', v]);
  for (const [what, secret] of secrets) {
    t.true(secret.length >= 16, `${what} is long enough to be searched for`);
    for (const [name, out] of logs) t.false(out.includes(secret), `${what} is in the ${name}'s log`);
  }
});
