/**
 * The factor store: TOTP secrets sealed at rest, enrolment confirmed against
 * the pending secret, steps taken once (replay), recovery codes used once,
 * reset, and a summary that holds no secret.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, isSealed } from '../../../src/store/index.js';
import { openEnv, openDb } from '../../../native/lmdb.js';

test('enrol, seal, use a step once, use a recovery code once, reset', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-factors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = openStore(dir);
  try {
    const f = s.factors;
    t.false(f.hasTotp('usr_1'));
    t.true(await f.begin('usr_1', 'JBSWY3DPEHPK3PXP', 1000));
    t.false(await f.confirm('usr_1', 'OTHERSECRETAAAAA', 5, ['h1'], 2000), 'a restarted enrolment is not confirmed with the old secret');
    t.true(await f.confirm('usr_1', 'JBSWY3DPEHPK3PXP', 5, ['h1', 'h2'], 2000));
    t.true(f.hasTotp('usr_1'));
    t.false(await f.begin('usr_1', 'NEWSECRETAAAAAAA', 3000), 'no new enrolment over a confirmed one');
    t.is(f.get('usr_1')!.totp!.secret, 'JBSWY3DPEHPK3PXP');
    t.is(f.get('usr_1')!.totp!.lastStep, 5, 'the confirming code is used');
    t.false(await f.useStep('usr_1', 5, 3000), 'same step: replay');
    t.false(await f.useStep('usr_1', 4, 3000), 'older step');
    t.true(await f.useStep('usr_1', 6, 3000));
    t.is(await f.useRecovery('usr_1', 'h2', 4000), 1);
    t.is(await f.useRecovery('usr_1', 'h2', 4000), -1, 'a recovery code works once');
    t.deepEqual(f.summary('usr_1'), { totp: true, enrolledAt: 2000, lastUsedAt: 3000, pending: false, recoveryLeft: 1, passkeys: [] });
  } finally {
    await s.close();
  }
  // At rest: the secret is sealed.
  const env = openEnv({ path: join(dir, 'store') });
  const raw = openDb<{ totp: { secret: string } }>(env, 'factors').get('usr_1')!;
  t.true(isSealed(raw.totp.secret));
  t.false(raw.totp.secret.includes('JBSWY3DPEHPK3PXP'));
  await env.close();
  const s2 = openStore(dir);
  try {
    t.is(s2.factors.get('usr_1')!.totp!.secret, 'JBSWY3DPEHPK3PXP', 'opened again with the store key');
    t.true(await s2.factors.reset('usr_1'));
    t.false(s2.factors.hasTotp('usr_1'));
    t.false(await s2.factors.reset('usr_1'));
  } finally {
    await s2.close();
  }
});

test('passkeys: added with the first recovery codes, a credential id held by one user only, the counter moves forward or the use is refused, reset removes them and their index', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-factors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = openStore(dir);
  try {
    const f = s.factors;
    const pk = (id: string, counter = 0) => ({ id, publicKey: 'pQECAyYgASFY', counter, transports: ['internal'], rpId: 'localhost', backedUp: false, createdAt: 1000, lastUsedAt: null });
    t.false(f.hasSecondFactor('usr_1'));
    t.is(await f.addPasskey('usr_1', pk('cred-a'), ['r1', 'r2'], 1000), 'ok');
    t.true(f.hasSecondFactor('usr_1'));
    t.false(f.hasTotp('usr_1'), 'a passkey is not an authenticator app');
    t.deepEqual(f.get('usr_1')!.recovery, ['r1', 'r2'], 'the first factor brings the recovery codes');
    t.is(await f.addPasskey('usr_1', pk('cred-b', 7), ['r9'], 1100), 'ok');
    t.deepEqual(f.get('usr_1')!.recovery, ['r1', 'r2'], 'a second passkey keeps the codes');
    t.is(await f.addPasskey('usr_2', pk('cred-a'), [], 1200), 'taken', 'W3C WebAuthn L2 §7.1 step 22: one credential, one user');
    t.is(f.passkeyOwner('cred-a'), 'usr_1');
    // A counter of 0 from an authenticator that keeps none stays acceptable; a counting one must count up.
    t.is(await f.usePasskey('usr_1', 'cred-a', 0, 2000), 'ok');
    t.is(await f.usePasskey('usr_1', 'cred-b', 7, 2000), 'counter', 'not greater than the stored 7');
    t.is(await f.usePasskey('usr_1', 'cred-b', 8, 2000), 'ok');
    t.is(await f.usePasskey('usr_1', 'cred-b', 8, 2001), 'counter', 'the same counter twice: a clone or a replay');
    t.is(await f.usePasskey('usr_1', 'cred-x', 9, 2000), 'unknown');
    t.is(await f.usePasskey('usr_2', 'cred-a', 9, 2000), 'unknown', 'not this user\'s');
    t.is(await f.useRecovery('usr_1', 'r1', 2500), 1, 'recovery codes stand in for passkeys too');
    const sum = f.summary('usr_1');
    t.deepEqual(sum.passkeys.map((x) => [x.id, x.lastUsedAt]), [['cred-a', 2000], ['cred-b', 2000]]);
    t.false('publicKey' in sum.passkeys[0]!, 'the summary holds no key');
    t.true(await f.reset('usr_1'));
    t.false(f.hasSecondFactor('usr_1'));
    t.is(f.passkeyOwner('cred-a'), undefined, 'the index goes with the record');
    t.is(await f.addPasskey('usr_2', pk('cred-a'), [], 3000), 'ok', 'after a reset the credential may be registered again');
  } finally {
    await s.close();
  }
});
