import test from 'ava';
import { pwhashStr, pwhashStrVerify, pwhashStrNeedsRehash, ARGON2ID_MIN_MEMORY_BYTES } from '../../../native/sodium.js';

const P = { memoryBytes: ARGON2ID_MIN_MEMORY_BYTES, iterations: 2 };

test('argon2id in the standard encoded form, OWASP parameters, verify exactly as typed', (t) => {
  const h = pwhashStr(Buffer.from('Tr0ub4dor&3 ', 'utf8'), P);
  t.regex(h, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  t.true(pwhashStrVerify(h, Buffer.from('Tr0ub4dor&3 ', 'utf8')));
  t.false(pwhashStrVerify(h, Buffer.from('Tr0ub4dor&3', 'utf8')), 'a trailing space matters');
  t.false(pwhashStrVerify(h, Buffer.from('tr0ub4dor&3 ', 'utf8')), 'case matters');
  t.not(pwhashStr(Buffer.from('same'), P), pwhashStr(Buffer.from('same'), P), 'salted');
});

test('needs_rehash follows the parameters', (t) => {
  const h = pwhashStr(Buffer.from('pw'), P);
  t.false(pwhashStrNeedsRehash(h, P));
  t.true(pwhashStrNeedsRehash(h, { ...P, iterations: 3 }));
  t.true(pwhashStrNeedsRehash(h, { ...P, memoryBytes: 2 * P.memoryBytes }));
});

test('malformed hashes never throw: verify false, needs rehash', (t) => {
  for (const bad of ['', 'x', '$argon2id$v=19$m=1,t=1,p=1$$', 'a'.repeat(500)]) {
    t.false(pwhashStrVerify(bad, Buffer.from('pw')), bad);
    t.true(pwhashStrNeedsRehash(bad, P), bad);
  }
});
