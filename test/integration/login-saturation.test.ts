/**
 * Hashing-queue saturation on real processes: argon2id made slow on purpose
 * (t=40, ~0.3 s a hash) and a queue of 1 per worker, then a burst of logins.
 * Logins beyond the bound get 503 with Retry-After at once (never an
 * unbounded wait), while proxied requests, public and protected, keep
 * succeeding during the burst.
 */
import test from 'ava';
import { Stack } from './harness.js';
import { Client, LOGIN_CONFIG, signUp } from './login-client.js';

const stack = new Stack(2, LOGIN_CONFIG('passwords: { memory: 19MiB, iterations: 40, queue: 1 }'));
const PW = 'saturation passphrase 1';

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

test('a login burst beyond the hashing queue → 503 + Retry-After; proxied requests still succeed', async (t) => {
  await signUp(stack, 'sat@example.com', PW);
  stack.addUser('proxied@example.com');
  const session = stack.session('proxied@example.com');
  // 24 logins at once: each worker holds 1 running + 1 waiting, the rest are refused.
  const clients = await Promise.all(Array.from({ length: 24 }, async () => {
    const c = new Client(stack);
    await c.get('/_mezu/login');
    return c;
  }));
  const page = await clients[0]!.get('/_mezu/login');
  void page;
  const started = Date.now();
  // Distinct emails, so the per-account throttle (which counts each attempt up front) stays out of the way;
  // an unknown email costs a full argon2id verification (against the dummy hash) like a known one.
  const burst = Promise.all(clients.map((c, i) => c.submit('/_mezu/login', { email: `burst${i}@example.com`, password: PW })));
  const proxied: number[] = [];
  const during = (async () => {
    for (let i = 0; i < 20; i++) {
      proxied.push((await stack.request('/health')).status);
      proxied.push((await stack.request('/api/v1/p', { headers: { cookie: `mezu_session=${session}` } })).status);
    }
  })();
  const [results] = await Promise.all([burst, during]);
  const statuses = results.map((r) => r.status);
  const busy = results.filter((r) => r.status === 503);
  t.true(busy.length > 0, `some logins refused: ${statuses.join(',')}`);
  t.true(statuses.filter((s) => s === 401).length >= 2, `some logins were checked: ${statuses.join(',')}`);
  t.true(statuses.every((s) => s === 401 || s === 503), statuses.join(','));
  for (const b of busy) {
    t.is(b.headers['retry-after'], '1');
    t.is(b.headers['x-mezu-error-code'], 'MEZU_LOGIN_BUSY');
  }
  t.deepEqual([...new Set(proxied)], [200], 'every proxied request succeeded during the burst');
  t.true(Date.now() - started < 20_000);
  // The edge still signs people in once the burst is over.
  const after = new Client(stack);
  t.is((await after.submit('/_mezu/login', { email: 'sat@example.com', password: PW })).status, 303);
});
