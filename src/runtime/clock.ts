/**
 * Time, timers and randomness, as one injectable object. Code that reads the
 * time takes a `Clock`; code that waits or retries takes `Timers` (which is
 * a Clock too). Production passes `systemClock`; a test passes a
 * `ManualClock`, which moves only when the test says so, so an expiry, a
 * renewal or a backoff is tested without sleeping through it.
 */

/** Wall-clock time, in milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** A pending timer: the handle `Timers.setTimeout` returns. */
export interface Timer {
  /** Lets the process exit while the timer is pending (a node Timeout's `unref`). */
  unref(): Timer;
}

/** What waiting and retrying need: the time, one-shot timers, and a uniform random number for jitter. */
export interface Timers extends Clock {
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  /** Uniform in [0, 1). */
  random(): number;
}

/**
 * The process's own clock and timers. `now` calls `Date.now()` at each read
 * (never a reference taken at load), so a test preload that shifts the
 * process's wall clock shifts this one too.
 */
export const systemClock: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  random: () => Math.random(),
};

class ManualTimer implements Timer {
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly ms: number,
    readonly fn: () => void,
  ) {}
  unref(): Timer {
    return this;
  }
}

/**
 * A clock for tests: the time moves only by `advance` / `pass`, and timers
 * fire then, in order of their due time (and of their setting, for equal
 * times). `random` returns what the test gave (0.5 by default), so a jittered
 * delay is a known number.
 */
export class ManualClock implements Timers {
  private t: number;
  private seq = 0;
  private readonly timers: ManualTimer[] = [];

  constructor(
    start = 0,
    private readonly rnd: () => number = () => 0.5,
  ) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  random(): number {
    return this.rnd();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = new ManualTimer(this.t + Math.max(0, ms), this.seq++, ms, fn);
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(timer: Timer): void {
    const i = this.timers.indexOf(timer as ManualTimer);
    if (i !== -1) this.timers.splice(i, 1);
  }

  /** The delays of the timers not fired yet, in the order they will fire. */
  pending(): number[] {
    return this.sorted().map((x) => x.ms);
  }

  /**
   * Moves the time `ms` forward, firing every timer due by then (one set by a
   * firing timer too, when it falls due within the step); returns how many fired.
   */
  advance(ms: number): number {
    const end = this.t + ms;
    let fired = 0;
    for (let next = this.next(end); next !== null; next = this.next(end)) {
      this.t = next.at;
      next.fn();
      fired++;
    }
    this.t = end;
    return fired;
  }

  /**
   * `advance` for code that awaits between timers: before each timer fires,
   * and once at the end, the event loop turns so the promises the last one
   * started settle (and set the timers they set) first.
   */
  async pass(ms: number): Promise<number> {
    const end = this.t + ms;
    let fired = 0;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = this.next(end);
      if (next === null) break;
      this.t = next.at;
      next.fn();
      fired++;
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
    return fired;
  }

  private sorted(): ManualTimer[] {
    return [...this.timers].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Takes the first timer due by `end`, or null. */
  private next(end: number): ManualTimer | null {
    const first = this.sorted()[0];
    if (first === undefined || first.at > end) return null;
    this.timers.splice(this.timers.indexOf(first), 1);
    return first;
  }
}
