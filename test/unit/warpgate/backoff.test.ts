/**
 * Reconnect backoff: exponential with full jitter, capped, forever — driven by
 * an injectable clock so no test sleeps through real delays.
 */
import test from 'ava';
import * as net from 'node:net';
import { Agent, backoffDelay, type Timers } from '../../../warpgate/agent.js';
import { AssertionVerifier } from '../../../wire/assertion.js';
import type { LeanForwarder } from '../../../warpgate/lean-forward.js';

test('full jitter: uniform in [0, min(cap, base·2^attempt))', (t) => {
  t.is(backoffDelay(0, 100, 10_000, () => 0.999999), 99);
  t.is(backoffDelay(3, 100, 10_000, () => 0.5), 400);
  t.is(backoffDelay(10, 100, 10_000, () => 0.999999), 9_999, 'capped');
  t.is(backoffDelay(1_000, 100, 10_000, () => 0.999999), 9_999, 'huge attempt counts do not overflow');
  t.is(backoffDelay(5, 100, 10_000, () => 0), 0);
});

test('the agent retries an unreachable edge forever with growing, capped, jittered delays', async (t) => {
  // A port with nothing listening: every dial fails at once with ECONNREFUSED.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  const delays: number[] = [];
  let pending: (() => void) | null = null;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      delays.push(ms);
      pending = fn;
      return null;
    },
    random: () => 0.999999,
  };
  const agent = new Agent(
    { edgeHost: '127.0.0.1', edgePort: port, servername: 'localhost', cert: '', key: '', ca: '', connsPerWorker: 1, backoffBaseMs: 100, backoffCapMs: 2_000, version: 't', limits: {} },
    new AssertionVerifier(),
    null as unknown as LeanForwarder,
    () => undefined,
    timers,
  );
  agent.start();
  for (let i = 0; i < 12; i++) {
    const before = delays.length;
    const end = Date.now() + 5_000;
    while (delays.length === before && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    t.is(delays.length, before + 1, `retry ${i} scheduled`);
    const fire = pending!;
    pending = null;
    fire();
  }
  await agent.stop();
  t.deepEqual(delays.slice(0, 6), [199, 399, 799, 1_599, 1_999, 1_999]);
  t.true(delays.every((d) => d <= 2_000), 'never above the cap');
});
