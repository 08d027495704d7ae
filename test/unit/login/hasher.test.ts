import test from 'ava';
import { PasswordHasher } from '../../../src/login/index.js';

const P = { memoryBytes: 19 * 1024 * 1024, iterations: 2 };

test('hash and verify run in the pool; an unknown user verifies against a dummy and fails', async (t) => {
  const h = new PasswordHasher({ threads: 1, queue: 4 });
  t.teardown(() => h.close());
  const enc = await h.hash('a fine passphrase', P);
  t.truthy(enc);
  t.deepEqual(await h.verify('a fine passphrase', enc, P), { ok: true, needsRehash: false });
  t.deepEqual(await h.verify('wrong', enc, P), { ok: false, needsRehash: false });
  t.deepEqual(await h.verify('anything', null, P), { ok: false, needsRehash: false });
  t.deepEqual(await h.verify('a fine passphrase', enc, { ...P, iterations: 3 }), { ok: true, needsRehash: true });
});

test('the queue is bounded: beyond threads + queue, null at once (never an unbounded wait)', async (t) => {
  const h = new PasswordHasher({ threads: 1, queue: 1 });
  t.teardown(() => h.close());
  const slow = { memoryBytes: 19 * 1024 * 1024, iterations: 20 };
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 6 }, () => h.hash('x'.repeat(12), slow)));
  t.is(results.filter((r) => r === null).length, 4, 'two admitted (1 running + 1 waiting), four refused');
  t.true(Date.now() - started < 10_000);
  t.false(h.saturated);
  t.truthy(await h.hash('after', P), 'admits again once drained');
});
