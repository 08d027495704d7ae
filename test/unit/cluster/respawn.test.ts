/**
 * How the primary keeps its children alive (src/cluster/respawn.ts), on the
 * manual clock with fake children: a crash loop backs off (full jitter, never
 * under 100 ms, up to 5 s), a child that lived past the healthy period
 * starts the count over, and a drain stops every respawn, one already
 * scheduled included.
 */
import test from 'ava';
import { Respawner, RESPAWN_BACKOFF } from '../../../src/cluster/index.js';
import { ManualClock } from '../../../src/runtime/index.js';

function keeper(random: () => number) {
  const clock = new ManualClock(0, random);
  const starts: Array<{ at: number; respawn: boolean }> = [];
  const logs: string[] = [];
  const r = new Respawner('worker 3', (respawn) => starts.push({ at: clock.now(), respawn }), (m) => logs.push(m), clock);
  return { clock, starts, logs, r };
}

test('a crash loop: each respawn waits longer, up to the cap, never under the floor', (t) => {
  const { clock, starts, logs, r } = keeper(() => 0.999);
  r.start();
  t.deepEqual(starts, [{ at: 0, respawn: false }]);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    delays.push(r.exited(1)!);
    clock.advance(delays[i]!);
  }
  t.deepEqual(delays, [100, 199, 399, 799, 1_598, 3_196, 4_995, 4_995]);
  t.is(starts.length, 9);
  t.true(starts.slice(1).every((s) => s.respawn), 'later starts are respawns');
  t.is(logs[0], 'worker 3 exited (1); respawning in 100 ms');
});

test('jitter: children that crash together do not come back together; none sooner than 100 ms', (t) => {
  const draws = [0.05, 0.5, 0.95];
  const delays = draws.map((d) => {
    const { r } = keeper(() => d);
    r.start();
    r.exited('SIGKILL');
    r.start(true);
    return r.exited('SIGKILL')!;
  });
  t.deepEqual(delays, [100, 100, 190], 'second respawn: uniform below 200 ms, floored at 100 ms');
  t.is(RESPAWN_BACKOFF.floorMs, 100);
});

test('a child that lived longer than the healthy period starts the count over', (t) => {
  const { clock, r } = keeper(() => 0.999);
  r.start();
  for (let i = 0; i < 4; i++) clock.advance(r.exited(1)!);
  t.is(r.exited(1), 1_598, 'still in the loop');
  clock.advance(1_598);
  clock.advance(30_001);
  t.is(r.exited(1), 100, 'it ran for more than 30 s: back to the first delay');
});

test('a drain stops every respawn, one already scheduled included', (t) => {
  const { clock, starts, logs, r } = keeper(() => 0.5);
  r.start();
  t.is(r.exited('SIGSEGV'), 100);
  r.stop();
  clock.advance(10_000);
  t.is(starts.length, 1, 'the scheduled respawn did not run');
  t.is(r.exited(0), null, 'an exit while draining schedules nothing');
  t.is(logs.length, 1);
  t.deepEqual(clock.pending(), []);
});
