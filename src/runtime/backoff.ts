/**
 * Retry delays: exponential with full jitter ("full jitter" in AWS's study of
 * backoff for contended retries). Retry n waits a uniform random time in
 * [0, min(cap, base·2^n)), so clients that failed together (every Warpgate
 * of an edge that restarted, every worker of a crashing build) spread their
 * retries over the window instead of arriving in waves. A floor keeps a
 * retry loop from spinning when the draw is near zero; a run that stayed
 * healthy long enough starts the count over.
 */
import { systemClock, type Timers } from './clock.js';

/** Retry `attempt` (0 = the first): uniform in [0, min(cap, base·2^attempt)), whole milliseconds. */
export function fullJitter(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export interface BackoffPolicy {
  /** Ceiling of the first retry's delay; each further one doubles it. */
  baseMs: number;
  /** The ceiling never grows past this. */
  capMs: number;
  /** No delay is shorter than this (0 when absent). */
  floorMs?: number;
  /** A run that lasted longer than this before it failed starts the count over (never when absent). */
  healthyAfterMs?: number;
}

/**
 * One retry loop's backoff. `next()` after each failure gives the delay
 * before the next try; `reset()` after a success starts over; `started()`
 * when a run begins lets a failure after `healthyAfterMs` of health start
 * over too (a worker that crashes after an hour is not in a crash loop).
 * `delay(n)` is the same policy for callers that count attempts themselves.
 */
export class Backoff {
  private attempts = 0;
  private startedAt: number | null = null;

  constructor(
    readonly policy: BackoffPolicy,
    private readonly clock: Timers = systemClock,
  ) {}

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.attempts;
  }

  /** The delay before retry `attempt` (0 = the first), without counting it. */
  delay(attempt: number): number {
    return Math.max(this.policy.floorMs ?? 0, fullJitter(attempt, this.policy.baseMs, this.policy.capMs, () => this.clock.random()));
  }

  /** A failure: the delay before the next try (the count starts over first when the run was healthy). */
  next(): number {
    const healthy = this.policy.healthyAfterMs;
    if (healthy !== undefined && this.startedAt !== null && this.clock.now() - this.startedAt > healthy) this.attempts = 0;
    this.startedAt = null;
    return this.delay(this.attempts++);
  }

  /** A run begins now (a process forked, a connection up). */
  started(): void {
    this.startedAt = this.clock.now();
  }

  /** A success: the next failure waits as little as the first. */
  reset(): void {
    this.attempts = 0;
  }
}
