/**
 * The Warpgate's enrollment loop, driven with a fake Console and the manual
 * clock: renewal at renew_after, a refused renewal stops the tunnels, failures
 * back off, dial failures ask for an early check.
 */
import test from 'ava';
import { Enrollment, EnrollError, type Enrolled, type EnrollConfig, type TunnelAgent } from '../../../warpgate/enroll.js';
import { ManualClock } from '../../../src/runtime/index.js';

function response(clock: ManualClock, n: number): Enrolled {
  const now = clock.now();
  return {
    key: `key-${n}`,
    response: {
      certificate: `cert-${n}`, ca: 'ca', tunnel: { endpoints: ['127.0.0.1:7443'], servername: 'localhost' },
      project: 'demo', pool: 'demo', service_account: 'sa', key: 'k',
      expires_at: new Date(now + 60_000).toISOString(), renew_after: new Date(now + 40_000).toISOString(),
    },
  };
}

class FakeAgent implements TunnelAgent {
  started = 0;
  stopped = 0;
  creds: string[] = [];
  start(): void {
    this.started++;
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
  setCredentials(c: { cert: string }): void {
    this.creds.push(c.cert);
  }
  endpoints: string[][] = [];
  setEndpoints(e: readonly string[]): void {
    this.endpoints.push([...e]);
  }
}

const CFG: EnrollConfig = { url: 'http://console', key: 'k', consoleCa: null, warpgateId: 'wg', hostname: 'h', version: '1' };

test('Enrollment loop: enroll, renew at renew_after, stop the tunnels when a renewal is refused, back off while refused', async (t) => {
  const clock = new ManualClock(1_000_000);
  const agents: FakeAgent[] = [];
  let calls = 0;
  let mode: 'ok' | 'refused' | 'down' = 'ok';
  let lastOk = 0;
  const logs: string[] = [];
  const e = new Enrollment(CFG, () => {
    const a = new FakeAgent();
    agents.push(a);
    return a;
  }, (m) => logs.push(m), async () => {
    calls++;
    if (mode === 'refused') throw new EnrollError('MEZU_KEY_REVOKED', 'warpgate: enrollment refused (401 MEZU_KEY_REVOKED)', true);
    if (mode === 'down') throw new EnrollError('MEZU_ENROLL_FAILED', 'warpgate: cannot reach the Console', false);
    lastOk = clock.now();
    return response(clock, calls);
  }, clock);
  void e.run();
  await clock.pass(0);
  t.is(agents.length, 1);
  t.is(agents[0]!.started, 1);
  await clock.pass(39_000);
  t.is(calls, 1, 'no renewal before renew_after');
  await clock.pass(1_000);
  t.is(calls, 2);
  t.deepEqual(agents[0]!.creds, ['cert-2'], 'the renewed certificate is handed to the agent');
  t.deepEqual(agents[0]!.endpoints, [['127.0.0.1:7443']], 'and the endpoints the renewal listed');
  // The Console is down at the next renewal: the tunnels stay, renewal is retried.
  mode = 'down';
  await clock.pass(40_000);
  t.is(agents[0]!.stopped, 0);
  t.true(logs.some((l) => /certificate holds until/.test(l)));
  // Back up: the next attempt renews, and the backoff starts over.
  mode = 'ok';
  const renewed = agents[0]!.creds.length;
  await clock.pass(61_000);
  t.true(agents[0]!.creds.length > renewed);
  // The key is revoked: the next renewal is refused and the tunnels stop; enrollment keeps retrying with backoff.
  mode = 'refused';
  const before = calls;
  await clock.pass(lastOk + 40_000 - clock.now() + 1);
  t.true(calls > before);
  t.is(agents[0]!.stopped, 1);
  t.true(logs.some((l) => /stopping the tunnels \(MEZU_KEY_REVOKED\)/.test(l)));
  const afterStop = calls;
  await clock.pass(10_000);
  t.true(calls - afterStop >= 2 && calls - afterStop <= 8, `retries with growing delays (${calls - afterStop} in 10 s)`);
  // Dial failures ask for an early check (a renewal) — but only after several in a row, and not more often than every 5 s.
  mode = 'ok';
  await clock.pass(60_000);
  t.is(agents.length, 2, 'a key that works again enrolls a new agent');
  const c0 = calls;
  e.onDialFailure(1);
  await clock.pass(0);
  t.is(calls, c0);
  e.onDialFailure(3);
  await clock.pass(0);
  t.is(calls, c0 + 1);
  e.onDialFailure(4);
  await clock.pass(0);
  t.is(calls, c0 + 1, 'rate-limited');
  await e.stop();
  t.is(agents[1]!.stopped, 1);
});
