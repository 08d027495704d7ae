/**
 * native/sodium.ts secretbox facade: what the store seals its private keys and secrets with
 * (src/store/seal.ts). A sealed value opens only with its key and only unaltered.
 */
import test from 'ava';
import { secretboxKey, secretboxOpen, secretboxSeal, SECRETBOX_KEY_BYTES } from '../../../native/sodium.js';

test('seal and open: round trip, a fresh nonce per seal, nothing but the key opens it', (t) => {
  t.is(SECRETBOX_KEY_BYTES, 32);
  const k = secretboxKey();
  t.is(k.length, 32);
  t.notDeepEqual(secretboxKey(), k);
  const msg = Buffer.from('-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA…\n-----END PRIVATE KEY-----\n');
  const a = secretboxSeal(k, msg);
  const b = secretboxSeal(k, msg);
  t.is(a.length, 24 + 16 + msg.length);
  t.notDeepEqual(a, b, 'random nonce: the same plaintext seals differently');
  t.is(a.indexOf(msg.subarray(0, 16)), -1);
  t.deepEqual(secretboxOpen(k, a), msg);
  t.deepEqual(secretboxOpen(k, b), msg);
  t.is(secretboxOpen(secretboxKey(), a), null, 'another key');
  for (const i of [0, 24, 30, a.length - 1]) {
    const x = Buffer.from(a);
    x[i]! ^= 1;
    t.is(secretboxOpen(k, x), null, `a flipped bit at ${i}`);
  }
  t.is(secretboxOpen(k, a.subarray(0, 39)), null, 'too short');
  t.deepEqual(secretboxOpen(k, secretboxSeal(k, Buffer.alloc(0))), Buffer.alloc(0));
  t.throws(() => secretboxSeal(Buffer.alloc(16), msg), { instanceOf: RangeError });
});
