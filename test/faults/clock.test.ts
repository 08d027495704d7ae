/**
 * Clock skew between the edge and the Warpgate, on real processes: the
 * Warpgate's wall clock is shifted (a test preload), the edge's is not.
 *
 * Story: the Warpgate verifies each assertion's `exp` and `iat` with its own
 * clock and a tolerance of ASSERTION_CLOCK_SKEW_S (30 s); the edge re-mints an
 * assertion when less than 60 s of its 300 s remain. Within the tolerance,
 * requests pass; beyond it the Warpgate refuses them (403, nothing reaches the
 * application) instead of trusting a token its clock calls expired or not yet
 * valid — fail closed, with the reason in its log.
 */
import test from 'ava';
import { join, resolve } from 'node:path';
import { Stack, stopProc } from '../integration/harness.js';
import { ASSERTION_CLOCK_SKEW_S } from '../../wire/contract.js';

const PRELOAD = join(resolve(__dirname, '../../..'), 'dist/test/faults/clock-skew.js');

const stack = new Stack(1);
let token = '';

test.before(async () => {
  await stack.start();
  stack.addUser('ada@example.com', ['--roles', 'admin']);
  token = stack.session('ada@example.com');
});
test.after.always(async () => {
  await stack.stop();
});

async function withSkew(skewMs: number): Promise<void> {
  await stopProc(stack.warpgate);
  stack.markEdgeLog();
  await stack.startWarpgate([], { NODE_OPTIONS: `--require ${PRELOAD}`, MEZU_TEST_CLOCK_SKEW_MS: String(skewMs) });
}

const protectedGet = () => stack.request('/api/v1/clock', { headers: { cookie: `mezu_session=${token}` } });

test.serial(`skew within the tolerance (±${ASSERTION_CLOCK_SKEW_S - 10} s): requests pass with their identity`, async (t) => {
  for (const skew of [-(ASSERTION_CLOCK_SKEW_S - 10) * 1000, (ASSERTION_CLOCK_SKEW_S - 10) * 1000]) {
    await withSkew(skew);
    await stack.clearOrigin();
    const r = await protectedGet();
    t.is(r.status, 200, `skew ${skew} ms: ${r.body}`);
    const seen = await stack.originSeen();
    t.deepEqual(seen[0]?.headers['x-mezu-user-email'], ['ada@example.com']);
    t.is((await stack.request('/health')).status, 200);
  }
});

test.serial('skew beyond the tolerance: the Warpgate refuses protected requests (403), nothing reaches the application; public ones pass', async (t) => {
  // Ahead by 10 minutes: every assertion (≤ 300 s) is expired by the Warpgate's clock.
  // Behind by 10 minutes: every assertion was issued in its future.
  for (const [skew, reason] of [[600_000, /expired/], [-600_000, /future/]] as const) {
    await withSkew(skew);
    await stack.clearOrigin();
    const r = await protectedGet();
    t.is(r.status, 403, `skew ${skew} ms`);
    t.is((JSON.parse(r.body) as { error: { code: string } }).error.code, 'MEZU_ASSERTION_INVALID');
    t.deepEqual(await stack.originSeen(), [], 'nothing reached the application');
    t.regex(stack.warpgate!.err, reason);
    // Public routes carry no assertion: served.
    t.is((await stack.request('/health')).status, 200);
  }
  await withSkew(0);
  t.is((await protectedGet()).status, 200, 'clocks agree again: served');
});
