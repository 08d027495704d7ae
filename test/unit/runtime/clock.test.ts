/**
 * The manual clock stands in for the system clock in every test that waits or
 * retries, so its own rules are tested here: time moves only when told,
 * timers fire in due order (ties in the order they were set), a timer set by
 * a firing one fires within the same step when it falls due, a cleared timer
 * never fires, and `pass` lets promise chains run between timers.
 */
import test from 'ava';
import { ManualClock, systemClock } from '../../../src/runtime/index.js';

test('time moves only by advance; timers fire in due order, ties in setting order', (t) => {
  const c = new ManualClock(1_000);
  const fired: string[] = [];
  c.setTimeout(() => fired.push(`b@${c.now()}`), 200);
  c.setTimeout(() => fired.push(`a@${c.now()}`), 100);
  c.setTimeout(() => fired.push(`c@${c.now()}`), 200);
  t.is(c.now(), 1_000);
  t.deepEqual(c.pending(), [100, 200, 200]);
  t.is(c.advance(99), 0);
  t.is(c.now(), 1_099);
  t.is(c.advance(101), 3);
  t.deepEqual(fired, ['a@1100', 'b@1200', 'c@1200'], 'each fires at its own due time');
  t.is(c.now(), 1_200);
});

test('a timer set while firing fires in the same step when due; a cleared one never fires; negative delays are 0', (t) => {
  const c = new ManualClock();
  const fired: number[] = [];
  c.setTimeout(() => {
    fired.push(c.now());
    c.setTimeout(() => fired.push(c.now()), 50);
  }, 10);
  const dropped = c.setTimeout(() => fired.push(-1), 20);
  c.clearTimeout(dropped);
  c.setTimeout(() => fired.push(c.now()), -5);
  c.advance(100);
  t.deepEqual(fired, [0, 10, 60]);
  t.deepEqual(c.pending(), []);
  t.is(c.setTimeout(() => undefined, 1).unref().constructor.name, 'ManualTimer', 'unref is there and chains');
});

test('random is what the test gives (0.5 unless told)', (t) => {
  t.is(new ManualClock().random(), 0.5);
  const seq = [0.1, 0.9];
  const c = new ManualClock(0, () => seq.shift()!);
  t.deepEqual([c.random(), c.random()], [0.1, 0.9]);
});

test('pass: the promises a timer starts settle before the next timer fires', async (t) => {
  const c = new ManualClock();
  const log: string[] = [];
  const sleep = (ms: number) => new Promise<void>((r) => c.setTimeout(r, ms));
  const loop = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(1_000);
      await Promise.resolve();
      log.push(`tick ${i} at ${c.now()}`);
    }
  })();
  t.is(await c.pass(2_500), 2);
  t.deepEqual(log, ['tick 0 at 1000', 'tick 1 at 2000']);
  await c.pass(500);
  await loop;
  t.deepEqual(log, ['tick 0 at 1000', 'tick 1 at 2000', 'tick 2 at 3000']);
  t.is(c.now(), 3_000);
});

test('the system clock is the process clock, read at each call', async (t) => {
  const before = Date.now();
  t.true(systemClock.now() >= before);
  const r = systemClock.random();
  t.true(r >= 0 && r < 1);
  const at = Date.now();
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 20));
  t.true(Date.now() - at >= 15);
  let fired = false;
  const x = systemClock.setTimeout(() => (fired = true), 5);
  systemClock.clearTimeout(x);
  await new Promise((r) => setTimeout(r, 30));
  t.false(fired, 'cleared');
});
