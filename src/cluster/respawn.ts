/**
 * Keeping one child process alive: the primary holds one Respawner per worker
 * slot and one for the Console. When the child exits it is started again
 * after the respawn backoff, until the primary drains.
 */
import { Backoff, systemClock, type BackoffPolicy, type Timers } from '../runtime/index.js';

/**
 * Never sooner than 100 ms (a crash loop does not spin), the ceiling
 * doubling to 5 s with full jitter; a child that lived longer than 30 s
 * starts the count over (it was not crash-looping).
 */
export const RESPAWN_BACKOFF: BackoffPolicy = { baseMs: 100, capMs: 5_000, floorMs: 100, healthyAfterMs: 30_000 };

export class Respawner {
  private stopped = false;
  private readonly backoff: Backoff;

  constructor(
    /** How the log names the child (`worker 0`, `console`). */
    private readonly name: string,
    /** Forks the child; `respawn` is false the first time. */
    private readonly fork: (respawn: boolean) => void,
    private readonly log: (m: string) => void,
    private readonly clock: Timers = systemClock,
    policy: BackoffPolicy = RESPAWN_BACKOFF,
  ) {
    this.backoff = new Backoff(policy, clock);
  }

  /** Starts the child. */
  start(respawn = false): void {
    this.backoff.started();
    this.fork(respawn);
  }

  /**
   * The child exited (`why`: its signal or exit code): it is started again
   * after the backoff, unless stopped by then. Returns the delay, or null
   * when stopped.
   */
  exited(why: string | number | null): number | null {
    if (this.stopped) return null;
    const delay = this.backoff.next();
    this.log(`${this.name} exited (${why}); respawning in ${delay} ms`);
    this.clock
      .setTimeout(() => {
        if (!this.stopped) this.start(true);
      }, delay)
      .unref();
    return delay;
  }

  /** Draining: no further start, not even one already scheduled. */
  stop(): void {
    this.stopped = true;
  }
}
