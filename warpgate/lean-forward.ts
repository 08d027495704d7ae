/**
 * The Warpgate's hot path on the lean codec: one `LeanForward` per request,
 * which is both the tunnel stream's request sink and the origin request's
 * response sink (no per-request closures; one microtask per origin read
 * coalesces each response head with an end that arrives in the same read).
 * Every stream's head is read and admitted here (`ForwardedHead`,
 * `LeanForwarder.admit`: project, path, assertion); a WebSocket (extended
 * CONNECT, RFC 8441) then goes to the relay in ./websocket.ts.
 */
import { newSpanId, SPAN_CLIENT, type Log, type SpanExporter } from '../src/runtime/index.js';
import type { WarpgateMetrics } from './metrics.js';
import type { H2Stream, ServerStreamSink } from '../wire/index.js';
import { IdentityHeader, Tunnel, isReservedHeader } from '../wire/index.js';
import { Errors, errorBody, type ErrorCode } from '../src/errors/index.js';
import type { AssertionVerifier } from '../wire/index.js';
import type { OriginClient, OriginRequest, OriginSink, OriginErrorCode } from './origin/client.js';
import type { WebSocketRelay } from './websocket.js';

export class LeanForwarder {
  constructor(
    private readonly origin: OriginClient,
    private readonly verifier: AssertionVerifier,
    private readonly log: Log,
    /** Extended CONNECT streams with `:protocol websocket` (RFC 8441) go here; null: refused with 501. */
    private readonly websockets: WebSocketRelay | null = null,
    /** Origin latency and outcomes (`--metrics-port`); null: nothing counted. */
    private readonly metrics: WarpgateMetrics | null = null,
    /** `--access-log`: an `access` line per request answered (request id, trace id, status, origin time). */
    private readonly accessLog = false,
    /** `--otlp-endpoint`: an `origin call` span per request whose trace the edge sampled; null: none. */
    private readonly spans: SpanExporter | null = null,
  ) {}

  /** A request stream from the edge (pseudo-headers included in `headers`). */
  handle(stream: H2Stream, headers: string[], endStream: boolean): void {
    const head = new ForwardedHead(headers);
    if (!this.admit(stream, head)) return;
    if (head.method === 'CONNECT') {
      // The codec delivers CONNECT only in its extended form (RFC 8441 §4: with `:protocol`), and
      // only because the agent announced SETTINGS_ENABLE_CONNECT_PROTOCOL. WebSocket is the one
      // protocol relayed; any other is a method this server does not implement (RFC 9110 §15.6.2).
      if (head.protocol === 'websocket' && this.websockets !== null) return this.websockets.open(stream, head);
      return stream.respond([':status', '501', 'cache-control', 'no-store'], true);
    }
    const out = head.fields;
    out.push('host', head.authority);
    if (head.requestId !== '') out.push(IdentityHeader.requestId, head.requestId);
    const span = this.spans === null ? null : originSpan(out, head.method);
    const f = new LeanForward(stream, head.requestId, this.log, this.metrics, this.accessLog ? traceOf(out) : null, span === null ? null : this.spans, span);
    stream.reqSink = new TunnelSide(f);
    // Every field came out of the tunnel's HPACK decoder, which refused forbidden names and values
    // (RFC 9113 §8.2.1): the origin head is not scanned for them again.
    f.req = this.origin.request({ method: head.method, path: head.path, headers: out, hasBody: !endStream, checked: true, lines: head.lines }, f);
    if (!endStream) f.req.onDrain = () => stream.resume();
  }

  /**
   * The edge's word about a request, checked the same way for every request
   * and every WebSocket: a project and an origin-form path, and an assertion
   * (when the route is not public) that verifies for that project. False: the
   * stream was refused (403), nothing reaches the origin.
   */
  private admit(stream: H2Stream, head: ForwardedHead): boolean {
    if (head.project === null || head.path.charCodeAt(0) !== 0x2f) {
      refuse(stream, 'MEZU_ASSERTION_INVALID');
      return false;
    }
    if (head.assertion === null) return true; // a public route: no identity fields
    const v = this.verifier.verify(head.assertion, head.project);
    if (!v.ok) {
      this.metrics?.assertionRefused();
      this.log(`warpgate: refused request ${head.requestId}: assertion ${v.reason}`, { level: 'warn', request_id: head.requestId });
      refuse(stream, 'MEZU_ASSERTION_INVALID');
      return false;
    }
    // The identity fields and the assertion, serialized once per assertion by the verifier.
    head.lines = v.lines;
    return true;
  }
}

/**
 * A request head from the edge, read in one pass: the pseudo-headers, what
 * the edge says in its reserved fields, and the client's fields to pass on.
 * One implementation for forwarded requests and WebSockets (./websocket.ts).
 */
export class ForwardedHead {
  method: string;
  path: string;
  authority: string;
  /** `:protocol` of an extended CONNECT (RFC 8441), else ''. */
  protocol: string;
  /** `x-mezu-project`; null when the edge sent none. */
  project: string | null;
  /** `x-mezu-assertion`; null on a public route. */
  assertion: string | null;
  requestId: string;
  /**
   * The client's fields for the origin: every reserved `x-mezu-*` spelling
   * dropped (the edge's own are read above; the origin gets them only as the
   * verifier writes them), and `expect` (bodies are sent at once).
   */
  readonly fields: string[];
  /** The verified identity as HTTP/1.1 field lines (AssertionVerifier), set by LeanForwarder.admit. */
  lines: string | undefined;

  constructor(headers: string[]) {
    this.method = '';
    this.path = '';
    this.authority = '';
    this.protocol = '';
    this.project = null;
    this.assertion = null;
    this.requestId = '';
    this.fields = [];
    this.lines = undefined;
    const out = this.fields;
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      const v = headers[i + 1]!;
      if (n.charCodeAt(0) === 0x3a) {
        if (n === ':method') this.method = v;
        else if (n === ':path') this.path = v;
        else if (n === ':authority') this.authority = v;
        else if (n === ':protocol') this.protocol = v;
        continue;
      }
      if (isReservedHeader(n)) {
        // Read what the edge set; every reserved spelling is dropped from what the origin gets.
        if (n === Tunnel.projectHeader) this.project = v;
        else if (n === IdentityHeader.assertion) this.assertion = this.assertion === null ? v : '\u0000duplicate';
        else if (n === IdentityHeader.requestId) this.requestId = v;
        continue;
      }
      if (n === 'expect') continue;
      out.push(n, v);
    }
  }
}

/** Origin response → tunnel stream. */
class LeanForward implements OriginSink {
  req: OriginRequest | null = null;
  headStatus = 0;
  headHeaders: string[] | null = null;
  headSent = false;
  finished = false;
  /** The edge reset the stream while the origin request ran: its end frees the stream's slot. */
  cancelled = false;

  /** performance.now() when handed to the origin client (metrics only). */
  readonly startedAt: number;

  constructor(
    readonly stream: H2Stream,
    readonly requestId: string,
    readonly log: Log,
    readonly metrics: WarpgateMetrics | null,
    /** The edge's traceparent ('' when none) with the access log on; null: no access line. */
    readonly trace: string | null = null,
    /** Where this request's `origin call` span goes, and the span; both null when it has none. */
    readonly spans: SpanExporter | null = null,
    readonly span: OriginSpan | null = null,
  ) {
    this.startedAt = metrics === null && trace === null && span === null ? 0 : performance.now();
  }

  /** The `origin call` span, child of the edge's tunnel round trip: handed to the origin client → the response's end or the failure. */
  private endSpan(status: number, code: string | null): void {
    const s = this.span;
    if (s === null || this.spans === null) return;
    const attrs: Array<[string, string | number]> = [['http.request.method', s.method], ['http.response.status_code', status], ['mezu.request_id', this.requestId]];
    if (code !== null) attrs.push(['error.type', code]);
    this.spans.add({ traceId: s.traceId, spanId: s.id, parentSpanId: s.parent, name: 'origin call', kind: SPAN_CLIENT, startMs: this.startedAt, endMs: performance.now(), attributes: attrs, error: code !== null || status >= 500 });
  }

  /** The access line (`--access-log`): the same request id and trace id as the edge's line for this request. */
  private access(status: number, code?: string): void {
    if (this.trace === null) return;
    this.log('access', { request_id: this.requestId, trace_id: this.trace === '' ? undefined : this.trace.slice(3, 35), status, code, ms: Math.round((performance.now() - this.startedAt) * 1000) / 1000 });
  }

  onHead(status: number, headers: string[]): void {
    this.metrics?.originHead(status, this.startedAt);
    this.headStatus = status;
    this.headHeaders = headers;
    // Coalesce with an end arriving in the same read: one HEADERS frame with END_STREAM. One
    // microtask for all heads of this read, not a closure per response.
    pendingHeads.push(this);
    if (pendingHeads.length === 1) queueMicrotask(flushPendingHeads);
  }
  sendHead(end: boolean): void {
    if (this.headSent || this.finished || this.headHeaders === null) return;
    this.headSent = true;
    this.stream.respondStatus(this.headStatus, withoutDate(this.headHeaders), end);
  }
  onData(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.sendHead(false);
    const ok = this.stream.write(chunk);
    if (!ok) this.stream.onDrain(() => this.req?.resume());
    return ok;
  }
  onEnd(): void {
    if (this.cancelled) return this.stream.release(); // drained: the origin connection is kept
    if (this.finished) return;
    if (!this.headSent) {
      this.sendHead(true);
      this.finished = true;
    } else {
      this.finished = true;
      this.stream.end();
    }
    this.access(this.headStatus);
    this.endSpan(this.headStatus, null);
  }
  onError(code: OriginErrorCode, detail: string): void {
    if (this.cancelled) return this.stream.release(); // not drained in time: the origin connection was closed
    if (this.finished) return;
    this.finished = true;
    this.metrics?.originError(code);
    this.log(`warpgate: ${code} for request ${this.requestId}: ${detail}`, { level: 'warn', request_id: this.requestId });
    this.access(this.headSent ? this.headStatus : 502, code);
    this.endSpan(this.headSent ? this.headStatus : 502, code);
    if (!this.headSent) refuse(this.stream, code);
    // The head is out: a reset is the only honest signal (the edge cuts the client).
    else this.stream.abort();
  }
}

/**
 * The origin's `Date` is not sent over the tunnel: the edge writes its own on
 * every response (uWS does, and the edge drops a forwarded one), so encoding
 * and decoding it per response (a new literal each second) buys nothing.
 * Removed in place; the list is the origin client's, made for this response.
 */
function withoutDate(h: string[]): string[] {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'date') {
      for (let j = i + 2; j < h.length; j++) h[j - 2] = h[j]!;
      h.length -= 2;
      break;
    }
  }
  return h;
}

/** Responses whose head waits for the end of the current read (LeanForward.onHead). */
const pendingHeads: LeanForward[] = [];
function flushPendingHeads(): void {
  for (let i = 0; i < pendingHeads.length; i++) pendingHeads[i]!.sendHead(false);
  pendingHeads.length = 0;
}

/** Tunnel stream (request body, resets) → origin request. */
class TunnelSide implements ServerStreamSink {
  constructor(private readonly f: LeanForward) {}
  onData(chunk: Buffer): void {
    const req = this.f.req;
    if (req !== null && !req.write(chunk)) this.f.stream.pause();
  }
  onEnd(): void {
    this.f.req?.end();
  }
  onReset(): boolean {
    // The edge cancelled (client gone). A request still waiting for a connection is dropped; one
    // whose response is under way is drained to keep its keep-alive connection (closing it
    // would cost a connect and a TIME_WAIT socket per cancelled request under an abort storm),
    // for at most the origin client's abandon grace. Until then the stream holds its slot.
    const f = this.f;
    f.finished = true;
    if (f.req === null || !f.req.abandon()) return false;
    f.cancelled = true;
    return true;
  }
}

/** The catalogue's answer for `code` (JSON body, END_STREAM); also the WebSocket relay's refusals. */
export function refuse(stream: H2Stream, code: ErrorCode): void {
  const head = [':status', String(Errors[code].status), 'content-type', 'application/json', 'cache-control', 'no-store'];
  // Saturation, not failure: the client may come back in a moment (RFC 9110 §10.2.3).
  if (code === 'MEZU_ORIGIN_BUSY') head.push('retry-after', '1');
  stream.respond(head, false);
  stream.end(Buffer.from(errorBody(code)));
}

/** A sampled request's `origin call` span: its trace, the edge's tunnel span as parent, its own id. */
export interface OriginSpan {
  traceId: string;
  parent: string;
  id: string;
  method: string;
}

/**
 * The span of a request whose `traceparent` (as the edge forwards it: version
 * 00, 55 characters) is sampled, or null; its field is rewritten in place with
 * the span's id as the parent, so the origin's spans are children of the
 * Warpgate's (W3C Trace Context §3.2.2.3: each hop passes its own span id).
 */
function originSpan(fields: string[], method: string): OriginSpan | null {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== 'traceparent') continue;
    const v = fields[i + 1]!;
    if (v.length !== 55 || v.charCodeAt(54) !== 0x31 /* 1: sampled */ || !TRACEPARENT.test(v)) return null;
    const span: OriginSpan = { traceId: v.slice(3, 35), parent: v.slice(36, 52), id: newSpanId(), method };
    fields[i + 1] = `00-${span.traceId}-${span.id}-01`;
    return span;
  }
  return null;
}
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;

/** The `traceparent` among the origin-bound fields ('' when none): only read with the access log on. */
function traceOf(fields: string[]): string {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'traceparent') return fields[i + 1]!;
  return '';
}
