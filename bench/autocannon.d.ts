/**
 * The part of autocannon 8's programmatic API the benchmark uses. autocannon
 * ships no types and @types/autocannon is not installed; this narrow
 * declaration keeps the bench strict without a new dependency.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      method?: string;
      headers?: Record<string, string>;
      connections?: number;
      pipelining?: number;
      /** Seconds. */
      duration?: number;
      /** Seconds per request before it counts as a timeout. */
      timeout?: number;
      /** Stop once this many responses arrived in total (split across connections). */
      maxOverallRequests?: number;
      /** Requests per second across all connections (each connection gets rate/connections per 1 s tick). */
      overallRate?: number;
      /** Request body. */
      body?: string | Buffer;
      /** Latency of non-2xx responses counts too unless this is true (default false). */
      excludeErrorStats?: boolean;
    }

    /** hdr-histogram-percentiles-obj output: `p50`, `p99`, `p99_9`, … */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      p50: number;
      p90: number;
      p99: number;
      p99_9: number;
      p99_99: number;
      total?: number;
      totalCount?: number;
      sent?: number;
    }

    interface Result {
      url: string;
      connections: number;
      pipelining: number;
      duration: number;
      start: Date;
      finish: Date;
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      '1xx': number;
      '2xx': number;
      '3xx': number;
      '4xx': number;
      '5xx': number;
      statusCodeStats: Record<string, { count: number }>;
      /** Milliseconds, recorded as integers (sub-millisecond values truncate). */
      latency: Histogram & { totalCount: number };
      requests: Histogram & { total: number; sent: number };
      throughput: Histogram & { total: number };
    }

    /** The tracker is also a thenable resolving to the result. */
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): this;
      on(event: 'reqError', listener: (err: Error) => void): this;
      on(event: string, listener: (...args: unknown[]) => void): this;
    }
  }

  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
