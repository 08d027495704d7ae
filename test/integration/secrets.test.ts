/**
 * Secrets at rest, on real processes: after a signup and a login through the
 * hosted pages (session cookies), a service-account key created from the CLI,
 * a password reset request (its link in the development outbox) and a Console
 * owner's set-password link, every file of the data directory's store is read
 * as bytes. A copy of data.mdb (a backup, a stolen disk) must not hand out a
 * live session, key, reset link or password: the store keeps SHA-256 of
 * session tokens, API key secrets and emailed tokens, and argon2id hashes of
 * passwords (docs/ARCHITECTURE.md, "Store"). Each secret is looked for as
 * text and, for the random ones, as the raw bytes its base64url encodes.
 *
 * Nor the private keys and secrets the store must keep in some form: the
 * assertion signing key, the CSRF secrets and the development outbox's mail
 * (with its live reset and signup links) are sealed under the store key, which
 * lives outside store/ (src/store/seal.ts).
 *
 * Regression: the signing key, every tunnel CA key and the CSRF secrets were
 * stored in clear, and the outbox kept live reset links in clear, so a copy of
 * data.mdb alone could sign assertions for any user or reset any account with
 * a pending link.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from './harness.js';
import { Client, LOGIN_CONFIG, linkToken } from './login-client.js';
import { hashToken } from '../../src/session/index.js';
import { openStore } from '../../src/store/index.js';

const PW = 'a long and unusual demo passphrase 7';
const EMAIL = 'secret-keeper@example.com';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function indexesOf(hay: Buffer, needle: Buffer): number[] {
  const out: number[] = [];
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + 1)) out.push(i);
  return out;
}

/** The forms a secret could be kept in: its text (UTF-8 and UTF-16) and, for base64url tokens, its raw bytes. */
function forms(secret: string): Buffer[] {
  const f = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le')];
  if (/^[A-Za-z0-9_-]{43}$/.test(secret)) f.push(Buffer.from(secret, 'base64url'));
  return f;
}

test('no session token, API key, reset token, password, private key or CSRF secret is stored in clear', async (t) => {
  const stack = new Stack(1, LOGIN_CONFIG());
  t.teardown(() => stack.stop());
  await stack.start();

  // Signup through the pages: a signup link by mail, a password, a first session.
  const a = new Client(stack);
  const t0 = Date.now() - 1000;
  t.is((await a.submit('/_mezu/signup', { email: EMAIL })).status, 200);
  const signupToken = await linkToken(stack, EMAIL, '/_mezu/signup/confirm', t0);
  t.is((await a.submit(`/_mezu/signup/confirm?token=${signupToken}`, { name: 'Keeper', password: PW })).status, 303);
  const signupSession = a.session();
  t.regex(signupSession, /^[A-Za-z0-9_-]{43}$/);

  // A login: a second session, with the password sent again.
  const b = new Client(stack);
  t.is((await b.submit('/_mezu/login', { email: EMAIL, password: PW })).status, 303);
  const loginSession = b.session();
  t.regex(loginSession, /^[A-Za-z0-9_-]{43}$/);
  t.is((await b.get('/api/v1/me')).status, 200, 'the session works');

  // A reset request: the link waits in the outbox, unused (the token is live).
  const t1 = Date.now() - 1000;
  t.is((await new Client(stack).submit('/_mezu/forgot', { email: EMAIL })).status, 200);
  const resetToken = await linkToken(stack, EMAIL, '/_mezu/reset', t1);

  // A service-account key, shown once.
  const sa = stack.cli('service-accounts', 'add', '--project', 'demo', '--name', 'ci', '--permissions', 'users:read', '--json');
  t.is(sa.status, 0, sa.stderr);
  const key = stack.cli('keys', 'create', '--service-account', (JSON.parse(sa.stdout) as { id: string }).id);
  t.is(key.status, 0, key.stderr);
  const keyText = key.stdout;
  t.regex(keyText, /^mzk_[A-Za-z0-9_-]{16}_[A-Za-z0-9_-]{43}$/);
  const keySecret = keyText.slice(21);
  // LOGIN_CONFIG's routes admit users only: a live key is authenticated and then refused (403), a bad one is not (401).
  t.is((await stack.request('/api/v1/x', { headers: { authorization: `Bearer ${keyText}` } })).status, 403, 'the key is live');
  t.is((await stack.request('/api/v1/x', { headers: { authorization: `Bearer ${keyText.slice(0, 30)}${keyText[30] === 'A' ? 'B' : 'A'}${keyText.slice(31)}` } })).status, 401);

  // A Console owner's single-use set-password link, printed by the CLI (never mailed).
  const owner = stack.cli('console', 'add-owner', '--email', 'owner@example.com', '--json');
  t.is(owner.status, 0, owner.stderr);
  const ownerToken = /token=([A-Za-z0-9_-]{43})/.exec((JSON.parse(owner.stdout) as { password_link: string }).password_link)![1]!;

  // Every write above resolved only once synced; read the store as it lies on disk.
  const files = filesUnder(join(stack.dir, 'store'));
  t.true(files.some((f) => f.endsWith('data.mdb')), files.join(', '));
  const bytes = files.map((f) => ({ f, b: readFileSync(f) }));
  const where = (needle: Buffer) => bytes.flatMap(({ f, b }) => indexesOf(b, needle).map((i) => ({ f, i, b })));

  // The scan reads the records it should: their hashed forms are there.
  for (const [what, secret] of [['login session', loginSession], ['signup session', signupSession], ['API key secret', keySecret], ['reset token', resetToken], ['owner link token', ownerToken]] as const) {
    t.true(where(Buffer.from(hashToken(secret))).length > 0, `the SHA-256 of the ${what} is in the store`);
  }
  t.true(where(Buffer.from('$argon2id$')).length > 0, 'an argon2id hash is in the store');
  t.true(where(Buffer.from(EMAIL)).length > 0, 'the user record is in the store');

  const absent: Array<[string, string]> = [
    ['the login session token', loginSession],
    ['the signup session token', signupSession],
    ['the API key', keyText],
    ['the API key secret', keySecret],
    ['the Console owner link token', ownerToken],
    ['the password', PW],
  ];
  for (const [what, secret] of absent) {
    for (const form of forms(secret)) {
      const hits = where(form);
      t.deepEqual(hits.map((h) => `${h.f}@${h.i}`), [], `${what} (${form.length} bytes) is not in the store`);
    }
  }
  // Mailed tokens: not even inside the mailed link (the outbox's mail is sealed).
  for (const [what, secret] of [['the reset token', resetToken], ['the signup token', signupToken]] as const) {
    for (const form of forms(secret)) t.deepEqual(where(form).map((h) => `${h.f}@${h.i}`), [], `${what} (${form.length} bytes) is not in the store`);
  }
  t.deepEqual(where(Buffer.from('/_mezu/reset?token=')).map((h) => `${h.f}@${h.i}`), [], 'no mailed link at all');
  // Private keys and secrets, as the processes use them (opened with the store key, DATA/store.key).
  const store = openStore(stack.dir);
  let pem: string;
  let csrf: Buffer;
  let consoleCsrf: Buffer;
  try {
    pem = store.signingKeys.active()!.privateKeyPem;
    csrf = await store.secrets.getOrCreate('csrf');
    consoleCsrf = await store.secrets.getOrCreate('console-csrf');
    t.true(store.outbox.list(EMAIL).some((m) => m.text.includes(resetToken)), 'the outbox still lists the link (opened for `mail outbox`)');
  } finally {
    await store.close();
  }
  const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  t.true(body.length > 40);
  t.deepEqual(where(Buffer.from(body.slice(0, 40))).map((h) => `${h.f}@${h.i}`), [], 'the signing key (PEM) is not in the store');
  t.deepEqual(where(Buffer.from(body, 'base64').subarray(-32)).map((h) => `${h.f}@${h.i}`), [], 'nor its raw key bytes');
  for (const [what, secret] of [['the CSRF secret', csrf], ['the Console CSRF secret', consoleCsrf]] as const) {
    t.deepEqual(where(Buffer.from(secret.toString('base64url'))).map((h) => `${h.f}@${h.i}`), [], `${what} (text) is not in the store`);
    t.deepEqual(where(secret).map((h) => `${h.f}@${h.i}`), [], `${what} (bytes) is not in the store`);
  }
});
