/**
 * A rule's `max_inflight` on a running edge (two workers, so each takes half):
 * one slow path cannot take every origin connection. Story: 200 requests to an
 * origin path that never answered held every origin connection of the
 * Warpgate, and every other path of the application waited behind them.
 */
import test from 'ava';
import { Stack } from '../integration/harness.js';
import { getFrom } from './http.js';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /slow/*, auth: public, max_inflight: 4 }
      - { path: /fast/*, auth: public }
`;
const stack = new Stack(2, CONFIG);

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

const get = (path: string, localAddress: string) => getFrom(stack.port, path, localAddress);

test.serial('max_inflight 4 over 2 workers: at most 4 of 12 slow requests reach the origin at once, the rest get 503 MEZU_ROUTE_BUSY with Retry-After; another path is served meanwhile', async (t) => {
  await stack.clearOrigin();
  // Twelve clients (one address each, so the per-client limit is not what answers).
  const slow = Array.from({ length: 12 }, (_, i) => get(`/slow/${i}?delay=1500`, `127.0.1.${i + 1}`));
  const deadline = Date.now() + 5_000;
  while ((await stack.originSeen()).length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.is((await get('/fast/meanwhile', '127.0.2.1')).status, 200, 'another path is not held up');
  const answers = await Promise.all(slow);
  const ok = answers.filter((a) => a.status === 200).length;
  const busy = answers.filter((a) => a.status === 503);
  t.log(`slow path: ${ok} answered 200, ${busy.length} answered 503`);
  t.true(ok >= 1 && ok <= 4, `${ok} slow requests were forwarded at once (each worker's share is 2)`);
  t.is(ok + busy.length, 12);
  for (const b of busy) {
    t.is(b.code, 'MEZU_ROUTE_BUSY');
    t.is(b.retryAfter, '1');
  }
  const seen = (await stack.originSeen()).filter((s) => s.path.startsWith('/slow/'));
  t.is(seen.length, ok, 'only the admitted slow requests reached the origin');
  // The slots are released with the answers.
  t.is((await get('/slow/after?delay=10', '127.0.1.1')).status, 200);
});
