/**
 * The one importer of autocannon, behind a narrow typed facade. autocannon
 * ships no types; bench/ keeps its own ambient declaration, which src/ must not
 * depend on, so this module loads it with `require` and types only what the
 * loadtest uses. Loading is lazy: autocannon compiles a WebAssembly histogram
 * when required, which no other `mezusphere` command should pay for.
 *
 * What autocannon does and does not do, as relied on here (autocannon 8):
 * - each connection is its own keep-alive socket sending one request at a time
 *   (no pipelining); a response's time runs from the write of the request to
 *   the end of the response, measured with hrtime (milliseconds, fractional);
 * - `overallRate` is split across connections, each sending its share per
 *   1 s tick then pausing (bursts, not evenly spaced);
 * - `amount` is split across connections and ends the run when all are done;
 * - a run ends at the next 1 s sample tick after its duration, its amount or
 *   `stop()`; requests keep flowing until that tick;
 * - a request with no response within `timeout` seconds counts as an error and
 *   a timeout, and the connection is re-opened; a connection error re-opens at
 *   once (so a dead target yields many errors, hence the probe before a run);
 * - TLS peers are never verified (`rejectUnauthorized: false` is hard-coded);
 * - the response parser does not know a request was HEAD, so HEAD responses
 *   with a Content-Length never complete: the loadtest refuses HEAD.
 */

export interface DriverOptions {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | null;
  connections: number;
  /** Seconds; ignored by autocannon when `amount` is set. */
  durationS: number;
  /** Responses in total, or 0 for none. */
  amount: number;
  /** Requests per second across all connections, or 0 for unlimited. */
  overallRate: number;
  /** Seconds per request before it counts as a timeout. */
  timeoutS: number;
}

/** The counters of autocannon's result the loadtest reads (it keeps its own for the rest). */
export interface DriverResult {
  /** Connection errors plus timeouts. */
  errors: number;
  timeouts: number;
}

export interface DriverRun {
  /** Ends the run at the next sample tick; `done` then resolves. */
  stop(): void;
  readonly done: Promise<DriverResult>;
}

export interface DriverEvents {
  onResponse(status: number, bytes: number, ms: number): void;
  /** A connection error or a timeout. */
  onError(err: Error): void;
}

/** The tracker autocannon returns: an EventEmitter that is also a thenable of the result. */
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'reqError', fn: (err: Error) => void): void;
  stop(): void;
}

/** Its `requests.sent` is not read: under overallRate it counts a second's quota per connection that is never sent. */
interface AutocannonResult {
  errors: number;
  timeouts: number;
}

type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;

let loaded: Autocannon | null = null;

export function startRun(o: DriverOptions, ev: DriverEvents): DriverRun {
  loaded ??= require('autocannon') as Autocannon;
  const inst = loaded({
    url: o.url,
    method: o.method,
    headers: o.headers,
    ...(o.body === null ? {} : { body: o.body }),
    connections: o.connections,
    pipelining: 1,
    duration: o.durationS,
    // autocannon rejects 0 for these ("can not be less than 1"): absent means none.
    ...(o.amount > 0 ? { amount: o.amount } : {}),
    ...(o.overallRate > 0 ? { overallRate: o.overallRate } : {}),
    timeout: o.timeoutS,
  });
  inst.on('response', (_client, status, bytes, ms) => ev.onResponse(status, bytes, ms));
  inst.on('reqError', (err) => ev.onError(err));
  const done = Promise.resolve(inst).then((r): DriverResult => ({ errors: r.errors, timeouts: r.timeouts }));
  return { stop: () => inst.stop(), done };
}
