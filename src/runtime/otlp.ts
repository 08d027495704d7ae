/**
 * OpenTelemetry span export, OTLP over HTTP with the JSON encoding (OTLP
 * specification, "OTLP/HTTP": `POST {endpoint}/v1/traces`,
 * `Content-Type: application/json`, trace and span ids as lower-case hex),
 * shared by the edge workers and the Warpgate. Off unless an endpoint is
 * given (`--otlp-endpoint`).
 *
 * Why our own and not the OpenTelemetry SDK: the SDK records a span through a
 * Tracer, a context manager (AsyncLocalStorage), a Span object whose every
 * `setAttribute` validates its value, and a span processor — work per span on
 * the edge's event loop, where every CPU-µs per request is budgeted
 * (docs/ARCHITECTURE.md, "Budgets"), plus a dependency tree of several
 * packages. The request path here builds one small object per span from
 * timestamps it already takes and appends it to an array; everything else —
 * encoding, HTTP — happens in the batch, off the request's turn. What we give
 * up: the SDK's automatic instrumentation, which the edge could not use
 * anyway (its HTTP is uWS and its own HTTP/2 codec, neither instrumented).
 *
 * Never in the request's way: spans wait in a bounded queue (`maxQueue`,
 * 2,048); a full queue drops the new span and counts it. A batch (at most
 * `maxBatch`, 512) leaves every `everyMs` (1 s) or as soon as a full batch is
 * waiting, one request at a time with a timeout; a batch the collector does
 * not take (down, slow, non-2xx — 429/503 included: no retry, the queue would
 * only grow behind it) is dropped and counted. Both counts are metrics
 * (`<prefix>_otlp_spans_dropped_total{reason}`), and failures are logged at
 * most once a minute.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { randomFillSync } from 'node:crypto';
import { labels, type Family } from './metrics.js';
import type { Log } from './log.js';

/** OTLP SpanKind values. */
export const SPAN_INTERNAL = 1;
export const SPAN_SERVER = 2;
export const SPAN_CLIENT = 3;

/** One finished span, as the request path hands it over (times are performance.now() values). */
export interface Span {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Array<[string, string | number]>;
  /** The operation failed (5xx, a tunnel or origin error): OTLP status code ERROR. */
  error: boolean;
}

export interface OtlpOptions {
  /** The collector's base URL (`http://127.0.0.1:4318`; `/v1/traces` is added) or a full traces URL (a path other than `/`). */
  endpoint: URL;
  /** `service.name` of the resource (`mezusphere-edge`, `mezusphere-warpgate`). */
  service: string;
  /** More resource attributes (`service.instance.id`, …). */
  resource?: Array<[string, string]>;
  /** Metric names start with this (`mezu_edge`, `mezu_warpgate`). */
  metricsPrefix: string;
  log: Log;
  maxQueue?: number;
  maxBatch?: number;
  everyMs?: number;
  timeoutMs?: number;
}

/** `--otlp-endpoint`: an http(s) URL; null when it is not one. */
export function parseOtlpEndpoint(s: string): URL | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u;
}

/** Random span ids (8 bytes, hex) from a pooled buffer: a randomBytes call per id costs ~1 µs. */
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;
export function newSpanId(): string {
  if (poolAt + 8 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const s = POOL.toString('hex', poolAt, poolAt + 8);
  poolAt += 8;
  return s === '0000000000000000' ? newSpanId() : s;
}
export function newTraceId(): string {
  return newSpanId() + newSpanId();
}

/** performance.now() milliseconds → Unix nanoseconds as OTLP/JSON writes them (a decimal string); microsecond precision. */
function unixNanos(ms: number): string {
  return `${Math.round((performance.timeOrigin + ms) * 1000)}000`;
}

function attrJson(key: string, v: string | number): string {
  const value = typeof v === 'number' ? (Number.isInteger(v) ? `{"intValue":"${v}"}` : `{"doubleValue":${Number.isFinite(v) ? v : 0}}`) : `{"stringValue":${JSON.stringify(v)}}`;
  return `{"key":${JSON.stringify(key)},"value":${value}}`;
}

/**
 * The ExportTraceServiceRequest of `spans`, JSON-encoded. Written as text
 * rather than built as objects for JSON.stringify: measured in
 * bench/edge-path.ts (`--otlp both --otlp-sample 1`), the object tree was
 * the larger part of the export's cost per span. Ids are hex and names ours,
 * so only attribute strings need escaping (JSON.stringify of the string).
 */
export function otlpJson(spans: readonly Span[], service: string, resource: ReadonlyArray<[string, string]> = []): string {
  let res = attrJson('service.name', service);
  for (const [k, v] of resource) res += `,${attrJson(k, v)}`;
  let out = `{"resourceSpans":[{"resource":{"attributes":[${res}]},"scopeSpans":[{"scope":{"name":"mezusphere"},"spans":[`;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    let attrs = '';
    for (let j = 0; j < s.attributes.length; j++) attrs += (j === 0 ? '' : ',') + attrJson(s.attributes[j]![0], s.attributes[j]![1]);
    out +=
      (i === 0 ? '' : ',') +
      `{"traceId":"${s.traceId}","spanId":"${s.spanId}"${s.parentSpanId === '' ? '' : `,"parentSpanId":"${s.parentSpanId}"`},"name":${JSON.stringify(s.name)},"kind":${s.kind},` +
      `"startTimeUnixNano":"${unixNanos(s.startMs)}","endTimeUnixNano":"${unixNanos(s.endMs)}","attributes":[${attrs}],"status":{"code":${s.error ? 2 : 0}}}`;
  }
  return out + ']}]}]}';
}

const FAILURE_LOG_EVERY_MS = 60_000;

export class SpanExporter {
  private queue: Span[] = [];
  private sending = false;
  private readonly timer: NodeJS.Timeout;
  private readonly agent: http.Agent;
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private readonly timeoutMs: number;
  private exported = 0;
  private droppedFull = 0;
  private droppedFailed = 0;
  private lastFailureLog = 0;
  private failuresSinceLog = 0;
  private closed = false;

  constructor(private readonly o: OtlpOptions) {
    this.maxQueue = o.maxQueue ?? 2048;
    this.maxBatch = o.maxBatch ?? 512;
    this.timeoutMs = o.timeoutMs ?? 5_000;
    // One connection, kept alive: one batch in flight at a time.
    this.agent = o.endpoint.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.timer = setInterval(() => this.flush(), o.everyMs ?? 1_000);
    this.timer.unref();
  }

  /** The request path's call: one array push, or a count when the queue is full. */
  add(s: Span): void {
    if (this.queue.length >= this.maxQueue) {
      this.droppedFull++;
      return;
    }
    this.queue.push(s);
    if (this.queue.length === this.maxBatch && !this.sending) setImmediate(() => this.flush());
  }

  /** Sends the next batch unless one is in flight; resolves when that batch is settled. */
  flush(): Promise<void> {
    if (this.sending || this.queue.length === 0) return Promise.resolve();
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    this.sending = true;
    const body = otlpJson(batch, this.o.service, this.o.resource);
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = (ok: boolean, why: string) => {
        if (settled) return;
        settled = true;
        this.sending = false;
        if (ok) this.exported += batch.length;
        else this.failed(batch.length, why);
        resolve();
        // More than a batch waiting: send the next one now rather than at the next tick.
        if (this.queue.length >= this.maxBatch && !this.closed) setImmediate(() => this.flush());
      };
      const u = this.o.endpoint;
      const req = (u.protocol === 'https:' ? https : http).request(
        { protocol: u.protocol, hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'POST', agent: this.agent, timeout: this.timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300, `status ${res.statusCode}`));
          res.on('error', (err) => done(false, err.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => done(false, err.message));
      req.end(body);
    });
  }

  private failed(n: number, why: string): void {
    this.droppedFailed += n;
    this.failuresSinceLog++;
    const now = Date.now();
    if (now - this.lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.o.log(`otlp: ${this.failuresSinceLog} batch(es) not taken by ${this.o.endpoint.origin} (last: ${why}); their spans are dropped and counted in ${this.o.metricsPrefix}_otlp_spans_dropped_total`, { level: 'warn' });
      this.lastFailureLog = now;
      this.failuresSinceLog = 0;
    }
  }

  stats(): { queued: number; exported: number; droppedFull: number; droppedFailed: number } {
    return { queued: this.queue.length, exported: this.exported, droppedFull: this.droppedFull, droppedFailed: this.droppedFailed };
  }

  families(): Family[] {
    const p = this.o.metricsPrefix;
    return [
      { name: `${p}_otlp_spans_exported_total`, help: 'Spans the OTLP collector accepted.', type: 'counter', samples: [['', this.exported]] },
      { name: `${p}_otlp_spans_dropped_total`, help: 'Spans dropped: the queue was full (queue_full) or the collector did not take their batch (export_failed).', type: 'counter', samples: [[labels([['reason', 'queue_full']]), this.droppedFull], [labels([['reason', 'export_failed']]), this.droppedFailed]] },
      { name: `${p}_otlp_spans_queued`, help: 'Spans waiting to be exported.', type: 'gauge', samples: [['', this.queue.length]] },
    ];
  }

  /** Stops the timer and sends what is queued (one batch), without waiting past the timeout. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
    this.agent.destroy();
  }
}
