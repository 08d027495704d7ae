/**
 * Tunnel high availability on real processes: two Warpgates serving one pool,
 * one killed under load; PING liveness against a frozen Warpgate; an edge
 * restart with Warpgates reconnecting.
 */
import test from 'ava';
import { Stack, waitFor, stopProc } from './harness.js';

interface Outcome {
  issuedAt: number;
  status: number;
}

/** Bounded closed-loop load: `conc` loops issuing GETs until `ms` elapse. */
async function load(stack: Stack, path: string, conc: number, ms: number, out: Outcome[]): Promise<void> {
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (Date.now() < end) {
        const issuedAt = Date.now();
        let status = 0;
        try {
          status = (await stack.request(path, { timeoutMs: 10_000 })).status;
        } catch {
          status = -1;
        }
        out.push({ issuedAt, status });
      }
    }),
  );
}

test.serial('killing one of two Warpgates under load: replayable requests issued after the kill all succeed', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  const second = await stack.startExtraWarpgate();
  const results: Outcome[] = [];
  const running = load(stack, '/health?delay=50', 8, 3_000, results);
  await new Promise((r) => setTimeout(r, 1_000));
  await stopProc(second, 'SIGKILL');
  const killedAt = Date.now();
  await running;
  const after = results.filter((r) => r.issuedAt > killedAt);
  const before = results.filter((r) => r.issuedAt <= killedAt);
  t.true(after.length > 20, `enough requests after the kill (${after.length})`);
  t.deepEqual(after.filter((r) => r.status !== 200), [], 'no request issued after the kill failed');
  // Requests in flight at the kill were GETs without bodies: replayed on the surviving Warpgate, or at worst 502.
  for (const r of before) t.true(r.status === 200 || r.status === 502, `in-flight status ${r.status}`);
  t.true(before.filter((r) => r.status === 200).length > 20);
});

test.serial('a frozen Warpgate is detected by PING within the configured timeout and traffic moves to the other', async (t) => {
  const stack = new Stack(1, undefined, ['--tunnel-ping', '1s', '--tunnel-ping-timeout', '2s']);
  t.teardown(async () => {
    for (const p of stack.extra) if (p.child.exitCode === null) p.child.kill('SIGCONT');
    await stack.stop();
  });
  await stack.start();
  const second = await stack.startExtraWarpgate(['--tunnel-ping', '1s', '--tunnel-ping-timeout', '2s']);
  second.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  // Requests routed to the frozen Warpgate hang until liveness gives up on it; then all go to the live one.
  await waitFor('the edge to drop the frozen tunnel', () => /closed: no PING acknowledgement/.test(stack.edge!.err), 10_000);
  const detectedIn = Date.now() - frozenAt;
  t.true(detectedIn < 5_000, `detected in ${detectedIn} ms`);
  for (let i = 0; i < 20; i++) t.is((await stack.request('/health', { timeoutMs: 3_000 })).status, 200);
  second.child.kill('SIGCONT');
});

test.serial('restarting the edge: Warpgates reconnect and traffic resumes', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  t.is((await stack.request('/health')).status, 200);
  await stopProc(stack.edge);
  // Same ports: the Warpgate keeps dialing the tunnel port with backoff and jitter.
  await stack.startEdge();
  await waitFor('tunnels back on every worker', () => stack.tunnelsRegistered() >= stack.workers, 20_000);
  for (let i = 0; i < 10; i++) t.is((await stack.request('/health')).status, 200);
  t.regex(stack.warpgate!.err, /edge instance changed/);
});
