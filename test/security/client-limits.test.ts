/**
 * Per-client limits on a running edge (one worker): one client address cannot
 * take the worker's tunnels for itself. Story: the edge is shared by every
 * user of every project; before this limit, one client opening hundreds of
 * slow requests held as many tunnel streams and origin connections as it
 * liked, and everyone else waited behind it.
 */
import test from 'ava';
import { Stack } from '../integration/harness.js';
import { getFrom } from './http.js';
import { SECURITY_CONFIG } from './config.js';

const LIMIT = 3;
const stack = new Stack(1, SECURITY_CONFIG, ['--client-inflight', String(LIMIT)]);

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

/** One GET on a fresh connection (by default from 127.0.0.1). */
const get = (path: string, localAddress = '127.0.0.1') => getFrom(stack.port, path, localAddress);

test.serial('past --client-inflight, a client gets 429 MEZU_CLIENT_BUSY with Retry-After and nothing is forwarded; another client is served; the client is served again once its requests end', async (t) => {
  await stack.clearOrigin();
  const slow = Array.from({ length: LIMIT }, (_, i) => get(`/public/slow-${i}?delay=1500`));
  // Let the slow ones reach the origin (they hold their slots until it answers).
  const deadline = Date.now() + 5_000;
  while ((await stack.originSeen()).length < LIMIT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  const over = await get('/public/one-too-many');
  t.is(over.status, 429);
  t.is(over.code, 'MEZU_CLIENT_BUSY');
  t.is(over.retryAfter, '1');
  // Another client address is not affected.
  t.is((await get('/public/other-client', '127.0.0.2')).status, 200);
  for (const r of await Promise.all(slow)) t.is(r.status, 200);
  // The slots are released with the answers.
  t.is((await get('/public/after')).status, 200);
  const paths = (await stack.originSeen()).map((s) => s.path);
  t.false(paths.includes('/public/one-too-many'), JSON.stringify(paths));
  t.true(paths.includes('/public/other-client'));
});
