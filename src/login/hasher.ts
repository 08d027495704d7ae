/**
 * The password-hashing pool of one edge worker: a piscina pool of worker
 * threads running argon2id (src/login/hash-worker.ts), with a bounded queue.
 * A task that would wait beyond the bound is not queued: the caller gets
 * `null` and answers 503 with Retry-After, so a login storm costs a fixed
 * amount of CPU and memory and never an unbounded wait. Proxied traffic never
 * touches this pool, and the hashing threads run at a lower CPU priority
 * (nice +10) than the event loop that forwards requests.
 */
import { Piscina } from 'piscina';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Argon2Params } from '../../native/sodium.js';
import type { HashResult, HashTask } from './hash-worker.js';

export interface HasherOptions {
  /** Hashing threads (default 1 per edge worker: with one worker per core, that is one per core). */
  threads: number;
  /** Tasks allowed to wait beyond the running ones. */
  queue: number;
  /** Scheduling priority increment of the hashing threads (0 = same as the event loop). */
  nice?: number;
}

const WORKER_FILE = join(__dirname, 'hash-worker.js');

export class PasswordHasher {
  private readonly pool: Piscina<HashTask, HashResult>;
  private readonly threads: number;
  private queue: number;
  /** Tasks submitted and not finished (running + waiting). */
  private pending = 0;
  private readonly dummies = new Map<string, Promise<string>>();

  constructor(opts: HasherOptions) {
    this.threads = opts.threads;
    this.queue = opts.queue;
    this.pool = new Piscina<HashTask, HashResult>({
      filename: WORKER_FILE,
      minThreads: opts.threads,
      maxThreads: opts.threads,
      // We bound the queue ourselves (a verdict, not an exception); piscina's own limit is a backstop.
      maxQueue: Math.max(1, opts.queue) * 2,
      idleTimeout: 60_000,
      niceIncrement: opts.nice ?? 10,
    });
  }

  /** The waiting-queue bound follows the config (hot reload); the thread count is fixed. */
  setQueueLimit(n: number): void {
    this.queue = n;
  }

  get inFlight(): number {
    return this.pending;
  }

  /** True when one more task would exceed the bound. */
  get saturated(): boolean {
    return this.pending >= this.threads + this.queue;
  }

  /** The encoded hash, or null when the pool is saturated. */
  async hash(password: string, params: Argon2Params): Promise<string | null> {
    const r = await this.submit({ op: 'hash', password: Buffer.from(password, 'utf8'), params });
    return r === null ? null : (r as { encoded: string }).encoded;
  }

  /**
   * Verifies against `encoded`, or against a dummy hash made with the same
   * parameters when there is no stored hash (an unknown email costs the same
   * time as a known one). Null when saturated.
   */
  async verify(password: string, encoded: string | null, params: Argon2Params): Promise<{ ok: boolean; needsRehash: boolean } | null> {
    if (this.saturated) return null;
    const target = encoded ?? (await this.dummy(params));
    if (target === null) return null;
    const r = await this.submit({ op: 'verify', password: Buffer.from(password, 'utf8'), encoded: target, params });
    if (r === null) return null;
    const v = r as { ok: boolean; needsRehash: boolean };
    return encoded === null ? { ok: false, needsRehash: false } : { ok: v.ok, needsRehash: v.needsRehash };
  }

  /** Makes the dummy hash for these parameters ahead of the first unknown-email login. */
  async warm(params: Argon2Params): Promise<void> {
    await this.dummy(params);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }

  private dummy(params: Argon2Params): Promise<string> {
    const key = `${params.memoryBytes}:${params.iterations}`;
    let p = this.dummies.get(key);
    if (p === undefined) {
      p = this.pool
        .run({ op: 'hash', password: randomBytes(16), params })
        .then((r) => (r as { encoded: string }).encoded);
      p.catch(() => this.dummies.delete(key));
      this.dummies.set(key, p);
    }
    return p;
  }

  private async submit(task: HashTask): Promise<HashResult | null> {
    if (this.saturated) return null;
    this.pending++;
    try {
      return await this.pool.run(task);
    } finally {
      this.pending--;
    }
  }
}
