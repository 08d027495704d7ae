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
    t.deepEqual(f.summary('usr_1'), { totp: true, enrolledAt: 2000, lastUsedAt: 3000, pending: false, recoveryLeft: 1 });
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
