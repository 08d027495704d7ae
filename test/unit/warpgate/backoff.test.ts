/**
 * The agent's reconnect backoff: exponential with full jitter, capped, forever
 * (the policy itself: test/unit/runtime/backoff.test.ts) — driven by the
 * manual clock so no test sleeps through real delays.
 */
import test from 'ava';
import * as net from 'node:net';
import { Agent } from '../../../warpgate/agent.js';
import { AssertionVerifier } from '../../../wire/assertion.js';
import type { LeanForwarder } from '../../../warpgate/lean-forward.js';
import { ManualClock } from '../../../src/runtime/index.js';

test('the agent retries an unreachable edge forever with growing, capped, jittered delays', async (t) => {
  // A port with nothing listening: every dial fails at once with ECONNREFUSED.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  const delays: number[] = [];
  const clock = new ManualClock(0, () => 0.999999);
  const agent = new Agent(
    { edgeHost: '127.0.0.1', edgePort: port, servername: 'localhost', cert: '', key: '', ca: '', connsPerWorker: 1, backoffBaseMs: 100, backoffCapMs: 2_000, version: 't', limits: {} },
    new AssertionVerifier(),
    null as unknown as LeanForwarder,
    () => undefined,
    clock,
  );
  agent.start();
  for (let i = 0; i < 12; i++) {
    const end = Date.now() + 5_000;
    while (clock.pending().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    t.is(clock.pending().length, 1, `retry ${i} scheduled`);
    const ms = clock.pending()[0]!;
    delays.push(ms);
    clock.advance(ms);
  }
  await agent.stop();
  t.deepEqual(delays.slice(0, 6), [199, 399, 799, 1_599, 1_999, 1_999]);
  t.true(delays.every((d) => d <= 2_000), 'never above the cap');
});
