/**
 * Passkey challenges and the relying party (src/login/factors/webauthn.ts):
 * a challenge verifies only for the purpose and binding it was made for,
 * until it expires, unaltered; its single-use id is stable; the RP id is the
 * page's host name and an IP address gets none (W3C WebAuthn Level 2 §5.1.3).
 * The ceremony itself is tested in Chromium (test/browser/passkeys.test.ts).
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { DeviceCookies } from '../../../src/login/device.js';
import { Challenges, CHALLENGE_TTL_MS, bindingOf, parseAnswer, relyingParty, registrationOptions, authenticationOptions } from '../../../src/login/factors/webauthn.js';

const b64u = (u: Uint8Array) => Buffer.from(u).toString('base64url');

test('a challenge opens for its purpose and binding until it expires, and nothing else', (t) => {
  const c = new Challenges(randomBytes(32));
  const bind = bindingOf('session-token-hash');
  const now = 1_700_000_000_000;
  const ch = b64u(c.make('step_up', bind, now));
  t.true(ch.length >= 43, 'at least 16 random bytes and more (L2 §13.4.3)');
  const opened = c.open(ch, 'step_up', bind, now + 1000);
  t.truthy(opened);
  t.is(opened!.expiresAt, now + CHALLENGE_TTL_MS);
  t.deepEqual(c.open(ch, 'step_up', bind, now + 2000), opened, 'the same single-use id every time: the store claims it once');
  t.is(c.open(ch, 'passwordless', bind, now), null, 'another ceremony');
  t.is(c.open(ch, 'step_up', bindingOf('another session'), now), null, 'another session');
  t.is(c.open(ch, 'step_up', bind, now + CHALLENGE_TTL_MS), null, 'expired');
  t.is(new Challenges(randomBytes(32)).open(ch, 'step_up', bind, now), null, 'another edge secret');
  const raw = Buffer.from(ch, 'base64url');
  raw[3] = raw[3]! ^ 1; // the expiry, pushed forward
  t.is(c.open(raw.toString('base64url'), 'step_up', bind, now), null, 'tampered');
  t.is(c.open('', 'step_up', bind, now), null);
  t.is(c.open('x'.repeat(400), 'step_up', bind, now), null);
  t.not(b64u(c.make('step_up', bind, now)), ch, 'fresh randomness each time');
});

test('relying party: the page host name without its port; an IP address has none', (t) => {
  t.deepEqual(relyingParty('http', 'localhost:8080', 'Demo'), { id: 'localhost', name: 'Demo', origin: 'http://localhost:8080' });
  t.deepEqual(relyingParty('https', 'App.Example.com', 'Demo'), { id: 'app.example.com', name: 'Demo', origin: 'https://app.example.com' });
  t.is(relyingParty('http', '127.0.0.1:8080', 'Demo'), null);
  t.is(relyingParty('http', '[::1]:8080', 'Demo'), null);
});

test('options: discoverable credential with user verification required to register; passwordless asks UV and lists no credential', async (t) => {
  const rp = relyingParty('https', 'app.example.com', 'Demo')!;
  const c = new Challenges(randomBytes(32));
  const ch = c.make('register', 'b', 0);
  const reg = await registrationOptions(rp, { id: 'usr_abc', email: 'a@b.c', name: 'A' }, [{ id: 'old', publicKey: '', counter: 0, transports: ['internal'], rpId: 'app.example.com', backedUp: false, createdAt: 0, lastUsedAt: null }], ch);
  t.is(reg.challenge, b64u(ch));
  t.is(reg.rp.id, 'app.example.com');
  t.is(Buffer.from(reg.user.id, 'base64url').toString(), 'usr_abc', 'the user handle is the opaque id, not the email (L2 §14.6.1)');
  t.is(reg.authenticatorSelection?.residentKey, 'required');
  t.is(reg.authenticatorSelection?.userVerification, 'required');
  t.is(reg.attestation, 'none');
  t.deepEqual(reg.excludeCredentials?.map((x) => x.id), ['old']);
  const auth = await authenticationOptions(rp, null, 'required', c.make('passwordless', 'b', 0));
  t.is(auth.userVerification, 'required');
  t.is(auth.allowCredentials, undefined);
});

test('parseAnswer: the posted JSON and the challenge its clientDataJSON names; anything else is null', (t) => {
  const cd = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: 'abc', origin: 'https://x' })).toString('base64url');
  const ok = parseAnswer(JSON.stringify({ id: 'i', rawId: 'i', type: 'public-key', response: { clientDataJSON: cd } }));
  t.is(ok?.challenge, 'abc');
  t.is(parseAnswer(''), null);
  t.is(parseAnswer('{'), null);
  t.is(parseAnswer(JSON.stringify({ id: 'i', rawId: 'i', type: 'other', response: { clientDataJSON: cd } })), null);
  t.is(parseAnswer(JSON.stringify({ id: 'i', rawId: 'i', type: 'public-key', response: { clientDataJSON: 'not json' } })), null);
  t.is(parseAnswer('x'.repeat(20_000)), null);
});

test('device cookie: its id when we signed it; forged, altered or malformed values give nothing', (t) => {
  const d = new DeviceCookies(randomBytes(32));
  const { id, value } = d.make();
  t.regex(value, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/);
  t.is(d.open(value), id);
  t.is(d.open(`${id}.${'A'.repeat(22)}`), '', 'a MAC of our own making');
  t.is(new DeviceCookies(randomBytes(32)).open(value), '', 'another edge secret');
  t.is(d.open(''), '');
  t.is(d.open(`${value}x`), '');
  t.not(d.make().id, id);
});
