import test from 'ava';
import { countAttempt, releaseAttempt } from '../../../src/login/index.js';
import type { ThrottleRecord } from '../../../src/store/index.js';

const L = { delayAfter: 2, lockAfter: 5, lockMs: 60_000, windowMs: 600_000 };

/** Runs attempts at given times; returns each verdict. */
function run(times: number[]): Array<{ allowed: boolean; retry?: number; lockedNow?: boolean }> {
  let rec: ThrottleRecord | undefined;
  return times.map((now) => {
    const r = countAttempt(rec, now, L);
    rec = r.next ?? undefined;
    return r.result.allowed ? { allowed: true, lockedNow: r.result.lockedNow } : { allowed: false, retry: r.result.retryAfterS };
  });
}

test('free attempts, then growing delays 1 s, 2 s, then the lock at lockAfter', (t) => {
  const r = run([0, 10, 20, 30, 1_100, 1_200, 3_200, 3_300]);
  t.deepEqual(r.map((x) => x.allowed), [true, true, true, false, true, false, true, false]);
  t.is(r[3]!.retry, 1); // after failure 3: wait 1 s
  t.is(r[5]!.retry, 2); // after failure 4: wait 2 s
  t.true(r[6]!.lockedNow); // failure 5 locks
  t.is(r[7]!.retry, 60);
});

test('a lock lifts after lockMs and the count starts over', (t) => {
  const r = run([0, 1, 2_000, 5_000, 20_000, 80_000, 80_001, 80_002]);
  t.true(r[4]!.lockedNow);
  t.true(r[5]!.allowed, 'lifted after 60 s');
  t.false(r[5]!.lockedNow);
  t.true(r[6]!.allowed, 'count restarted: attempt 2 of the new series is free');
});

test('a quiet window forgets the count', (t) => {
  const r = run([0, 1, 1_000_000, 1_000_001, 1_000_002]);
  t.true(r.every((x) => x.allowed));
});

test('release gives one attempt back; a lock is not released', (t) => {
  let rec: ThrottleRecord | null = null;
  rec = countAttempt(undefined, 0, L).next;
  t.is(releaseAttempt(rec ?? undefined, L), null, 'one attempt released → no record');
  let cur: ThrottleRecord | undefined;
  for (let i = 0; i < 5; i++) cur = countAttempt(cur, i * 100_000, { ...L, windowMs: 1e9, lockMs: 10 }).next ?? undefined;
  const locked = countAttempt(undefined, 0, { ...L, lockAfter: 1 }).next!;
  t.true(locked.locked);
  t.deepEqual(releaseAttempt(locked, L), locked);
});
