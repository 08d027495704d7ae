/**
 * Process faults on real processes: an edge worker killed mid-request, the
 * Warpgate killed mid-request, an origin that hangs. Each asserts what the
 * clients see (a status or a cut connection, never a wrong answer or a hang),
 * what the origin saw, and that the system comes back.
 */
import test from 'ava';
import { Stack, waitFor, pidAlive, stopProc } from '../integration/harness.js';

interface Outcome {
  status: number;
  code: string;
  ms: number;
  error: string;
}

/** One request on a fresh connection; a cut connection is an outcome, not a failure. */
async function attempt(stack: Stack, path: string, headers: Record<string, string> = {}, timeoutMs = 20_000): Promise<Outcome> {
  const started = Date.now();
  try {
    const r = await stack.request(path, { headers, timeoutMs });
    let code = '';
    try {
      code = (JSON.parse(r.body) as { error?: { code?: string } }).error?.code ?? '';
    } catch {
      code = '';
    }
    return { status: r.status, code, ms: Date.now() - started, error: '' };
  } catch (err) {
    return { status: 0, code: '', ms: Date.now() - started, error: (err as Error).message };
  }
}

test.serial('a worker killed mid-request: its requests are cut, the other worker\'s finish, it is respawned, and no session is lost', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  stack.addUser('ada@example.com');
  const token = stack.session('ada@example.com');
  const cookie = { cookie: `mezu_session=${token}` };
  t.is((await attempt(stack, '/api/v1/before', cookie)).status, 200);
  // 16 slow requests on fresh connections: SO_REUSEPORT spreads them over both workers.
  const inflight = Array.from({ length: 16 }, (_, i) => attempt(stack, `/api/v1/slow${i}?delay=1500`, cookie));
  await new Promise((r) => setTimeout(r, 400));
  const [victim, survivor] = stack.workerPids as [number, number];
  process.kill(victim, 'SIGKILL');
  const outcomes = await Promise.all(inflight);
  const ok = outcomes.filter((o) => o.status === 200);
  const cut = outcomes.filter((o) => o.status === 0);
  t.log(`in flight at the kill: ${ok.length} finished (the surviving worker), ${cut.length} cut (the killed one)`);
  t.deepEqual(outcomes.filter((o) => o.status !== 200 && o.status !== 0), [], 'nothing but a 200 or a cut connection');
  t.true(ok.length > 0, 'the surviving worker finished its requests');
  t.true(cut.length > 0, 'the killed worker\'s requests were cut');
  t.true(pidAlive(survivor));
  // Right after the kill the survivor takes every new connection; then the victim is respawned.
  for (let i = 0; i < 6; i++) t.is((await attempt(stack, '/api/v1/after-kill', cookie)).status, 200);
  await waitFor('respawn', () => /respawned and ready/.test(stack.edge!.err), 20_000);
  // The session lives in the store, not in a worker: valid on every worker after the respawn.
  for (let i = 0; i < 16; i++) t.is((await attempt(stack, '/api/v1/after-respawn', cookie)).status, 200, `request ${i}`);
  t.is(stack.warpgate!.child.exitCode, null, 'the Warpgate survived the worker\'s death');
});

test.serial('the Warpgate killed mid-request: in-flight requests get 502 at once, new ones 502 MEZU_NO_WARPGATE, and traffic resumes when it is back', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  const inflight = Array.from({ length: 6 }, (_, i) => attempt(stack, `/health?delay=5000&i=${i}`));
  await new Promise((r) => setTimeout(r, 400));
  const killedAt = Date.now();
  await stopProc(stack.warpgate, 'SIGKILL');
  const outcomes = await Promise.all(inflight);
  for (const o of outcomes) {
    t.is(o.status, 502, JSON.stringify(o));
    t.is(o.code, 'MEZU_TUNNEL_FAILED');
  }
  t.true(Date.now() - killedAt < 4_000, `answered ${Date.now() - killedAt} ms after the kill, not after the 5 s origin delay or the response timeout`);
  const none = await attempt(stack, '/health');
  t.is(none.status, 502);
  t.is(none.code, 'MEZU_NO_WARPGATE');
  t.true(none.ms < 3_000, `answered after ${none.ms} ms`);
  stack.markEdgeLog();
  await stack.startWarpgate();
  for (let i = 0; i < 8; i++) t.is((await attempt(stack, '/health')).status, 200);
});

test.serial('an origin that hangs: 504 after the edge\'s --response-timeout, and the request is cancelled at the origin', async (t) => {
  const stack = new Stack(1, undefined, ['--response-timeout', '2s']);
  t.teardown(() => stack.stop());
  await stack.start();
  await stack.clearOrigin();
  const o = await attempt(stack, '/health?delay=30000');
  t.is(o.status, 504);
  t.is(o.code, 'MEZU_UPSTREAM_TIMEOUT');
  t.true(o.ms >= 1_900 && o.ms < 8_000, `answered after ${o.ms} ms`); // the origin waits 30 s
  // The edge reset the stream; the Warpgate cancels the origin request: the origin sees its client go away.
  let seen = await stack.originSeen();
  const end = Date.now() + 10_000; // a deadline, not a delay: the loop ends as soon as it is seen
  while (Date.now() < end && !(seen[0]?.aborted ?? false)) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await stack.originSeen();
  }
  t.is(seen.length, 1);
  t.true(seen[0]!.aborted, 'the origin saw the request cancelled');
  // The tunnel is fine afterwards.
  t.is((await attempt(stack, '/health')).status, 200);
});

test.serial('an origin that hangs behind the Warpgate\'s --origin-timeout: 504 from the Warpgate, nothing left open at the origin', async (t) => {
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  await stack.start();
  await stopProc(stack.warpgate);
  stack.markEdgeLog();
  await stack.startWarpgate(['--origin-timeout', '2s']);
  await stack.clearOrigin();
  const o = await attempt(stack, '/health?delay=30000');
  t.is(o.status, 504);
  t.is(o.code, 'MEZU_ORIGIN_TIMEOUT');
  t.true(o.ms >= 1_900 && o.ms < 10_000, `answered after ${o.ms} ms`); // the origin waits 30 s
  let seen = await stack.originSeen();
  const end = Date.now() + 10_000; // a deadline, not a delay: the loop ends as soon as it is seen
  while (Date.now() < end && !(seen[0]?.aborted ?? false)) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await stack.originSeen();
  }
  t.true(seen[0]?.aborted ?? false, 'the origin saw the request cancelled');
  t.is((await attempt(stack, '/health')).status, 200);
});
