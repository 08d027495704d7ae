/**
 * One request at the edge, from the uWS handler to the last byte of its
 * response: `EdgeRequest` is the single object every stage reads and writes
 * (front → route → session → authorize → identity → tunnel), and, once
 * forwarded, the tunnel stream's sink that writes the response back. Its
 * constructor copies everything needed from the uWS request, which dies when
 * the handler returns; every field is assigned there, so all requests share
 * one hidden class (test/unit/front/request.test.ts checks it).
 *
 * uWS rules applied here: every write after the handler returned is corked;
 * nothing touches `res` after onAborted; response bodies stream with
 * tryEnd/onWritable when the length is known (so uWS writes one
 * Content-Length) and with write (chunked) when it is not; the tunnel stream
 * is paused while the client socket is backed up; request-body chunks are
 * copied (uWS neuters them on return).
 */
import type { HttpRequest, HttpResponse } from '../../native/uws.js';
import type { H2Stream, HpackEncoder } from '../../wire/index.js';
import type { CompiledConfig, CompiledProject, Policy } from '../config/types.js';
import { codeOf, Errors, type ErrorCode } from '../errors/index.js';
import { statusLine, writeError, writeErrorNow, endWithoutContent } from '../errors/http.js';
import { encodeForwarded, type ForwardedRequest } from '../identity/index.js';
import type { Principal } from '../session/index.js';
import type { PoolRegistry, TunnelConnection, TunnelRequest } from '../tunnel/index.js';
import type { LiveRegistry, LiveStream } from '../authorize/index.js';
import { BODY_NONE, FRAMING_INVALID, withContentLength, withTransferEncoding } from './framing.js';
import { SLOT_NONE, methodClass, type RequestMetrics } from './metrics.js';
import type { AccessLog } from './access-log.js';
import type { EdgeSpans } from './spans.js';
import type { Log } from '../runtime/index.js';

/** What every request of a worker shares: set once when the worker starts. */
export interface RequestScope {
  pools: PoolRegistry;
  /** Scheme the edge is reached over, for X-Forwarded-Proto. */
  scheme: string;
  /** Forwarded requests whose response has not finished (the drain waits for them). */
  inflight: { n: number };
  /** Forwarded requests in flight per client address (X-Forwarded-For's address) in this worker. */
  clients: Map<string, number>;
  /** Forwarded requests in flight per rule that sets `max_inflight`, in this worker. */
  routes: Map<Policy, number>;
  /** Open streams under continuous authorization (src/authorize/live.ts); null: none (tests, benches). */
  live: LiveRegistry | null;
  /** This worker's request counters (./metrics.ts); absent or null: nothing counted (tests, `--metrics-port off`). */
  metrics?: RequestMetrics | null;
  /** The sampled access log (`--access-log`, ./access-log.ts); absent or null: off. */
  access?: AccessLog | null;
  /** Spans exported over OTLP (`--otlp-endpoint`, ./spans.ts); absent or null: off. */
  spans?: EdgeSpans | null;
  log: Log;
}

/** Response fields never copied to the client: uWS writes its own framing, and these are hop-by-hop (RFC 9110 §7.6.1). */
const SKIP_RESPONSE: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'upgrade', 'proxy-connection', 'trailer', 'te', 'uwebsockets']);

/** The request being read by `collect` (uWS calls forEach's callback synchronously). */
let reading: EdgeRequest | null = null;

/**
 * forEach's callback: one module function, not a closure per request. Copies
 * each field and notes, in the same pass, what the stages will ask for —
 * framing fields, Host, the credential fields, Accept, X-Forwarded-For,
 * Connection, the trace context — so no stage walks the fields again.
 */
function collect(k: string, v: string): void {
  const r = reading!;
  r.fields.push(k, v);
  r.headBytes += k.length + v.length + 4;
  switch (k.length) {
    case 4:
      if (k === 'host') {
        if (r.hostCount++ === 0) r.host = v;
      }
      return;
    case 6:
      if (k === 'cookie') r.cookie = r.cookie === '' ? v : `${r.cookie}; ${v}`;
      else if (k === 'accept') {
        if (v.includes('text/html')) r.acceptsHtml = true;
      }
      return;
    case 7:
      if (k === 'trailer') r.body = FRAMING_INVALID;
      return;
    case 10:
      if (k === 'connection') r.connection = r.connection === '' ? v : `${r.connection},${v}`;
      else if (k === 'tracestate') r.tracestate = r.tracestate === '' ? v : `${r.tracestate},${v}`;
      return;
    case 11:
      if (k === 'traceparent') r.traceparent = r.traceparent === '' ? v : `${r.traceparent},${v}`;
      return;
    case 13:
      if (k === 'authorization') r.authorization = v;
      return;
    case 14:
      if (k === 'content-length') {
        r.body = withContentLength(r.body, r.sawLength, v);
        r.sawLength = true;
      }
      return;
    case 15:
      if (k === 'x-forwarded-for') r.forwardedFor = r.forwardedFor === '' ? v : `${r.forwardedFor},${v}`;
      return;
    case 17:
      if (k === 'transfer-encoding') {
        r.body = withTransferEncoding(r.body, r.sawEncoding, r.sawLength, v);
        r.sawEncoding = true;
      }
      return;
    default:
      return;
  }
}

export class EdgeRequest implements TunnelRequest, ForwardedRequest, LiveStream {
  // ── copied from uWS ──
  readonly res: HttpResponse;
  readonly scope: RequestScope;
  readonly id: string;
  readonly method: string;
  readonly isHead: boolean;
  /** The raw path as the client sent it (before normalization). */
  readonly url: string;
  readonly query: string;
  /** The client's fields in order: flat [name, value, …], names lower-case (uWS). */
  readonly fields: string[];
  /** Request line plus `name: value\r\n` per field, near enough: compared with --max-head-size. */
  headBytes: number;
  /** Host fields seen (exactly one is valid) and the first one's value. */
  hostCount: number;
  host: string;
  /** Every Cookie field, joined with `; ` (RFC 9113 §8.2.3 allows several). */
  cookie: string;
  /** The last Authorization field. */
  authorization: string;
  /** A GET/HEAD from a browser (Accept names text/html): login-required answers with a redirect. */
  acceptsHtml: boolean;
  /** Every X-Forwarded-For field joined with `,` (believed only from a trusted proxy). */
  forwardedFor: string;
  /** Every Connection field joined with `,`. */
  connection: string;
  /** W3C Trace Context as the client sent it (Traceparent fields joined with `,`: several are invalid), and as forwarded (identity/trace.ts). */
  traceparent: string;
  tracestate: string;
  trace: string;
  /** Body framing: BODY_NONE, BODY_CHUNKED, a Content-Length, or FRAMING_INVALID. */
  body: number;
  sawLength: boolean;
  sawEncoding: boolean;

  // ── route ──
  config: CompiledConfig | null;
  project: CompiledProject | null;
  /** Normalized path plus `?query`: what was authorized, and what is forwarded. */
  target: string;
  /** The route match key (normalized path, ASCII letters folded, no trailing slash). */
  key: string;
  policy: Policy | null;

  // ── session, authorize, identity ──
  principal: Principal | null;
  assertion: string | null;
  clientAddress: string;

  // ── tunnel (TunnelRequest) ──
  /** `forward` ran: the response is this object's to write (its onAborted is registered). */
  forwarding: boolean;
  /** Counted against its rule's `max_inflight` (released when the response finishes). */
  routeCounted: boolean;
  /** The stream may be opened: the uWS read that carried this request is over (see `forward`). */
  started: boolean;
  /** Body bytes that arrived before `started`, copied, and whether the last of them ended the body. */
  early: Buffer[] | null;
  earlyEnd: boolean;
  conn: TunnelConnection | null;
  stream: H2Stream | null;
  replayed: boolean;

  // ── request body (streamed to the tunnel) ──
  /** A body is still arriving from the client. */
  uploading: boolean;
  received: number;

  // ── response ──
  aborted: boolean;
  done: boolean;
  headWritten: boolean;
  /** A response head received but not yet written: it leaves with the first body bytes, in one send. */
  headPending: boolean;
  headStatus: number;
  headFields: string[] | null;
  /** Content-Length of the response, or -1 when chunked. */
  total: number;
  /** Chunk waiting for the socket (tryEnd mode), and the write offset it started at. */
  pending: Buffer | null;
  pendingBase: number;
  waitingWritable: boolean;

  // ── continuous authorization (LiveStream), from forward to finish ──
  livePrev: LiveStream | null;
  liveNext: LiveStream | null;
  liveDeadline: number;
  activeAt: number;
  lastMessageAt: number;
  /** A response has no idle_timeout (the tunnel's response timeout applies). */
  liveIdleMs: number;

  // ── metrics (./metrics.ts), only while the scope counts ──
  /** The slot of the request's rule (or project, or none) in the worker's counters. */
  metricSlot: number;
  /** performance.now() when the handler got the request (metrics, access log or spans on), and when it went to the tunnel. */
  startedAt: number;
  sentAt: number;
  /** performance.now() at the verdict and its DecisionKind (spans only, ./spans.ts); 0 and -1 before. */
  decidedAt: number;
  decisionKind: number;

  constructor(res: HttpResponse, req: HttpRequest, scope: RequestScope, id: string) {
    this.res = res;
    this.scope = scope;
    this.id = id;
    const method = req.getCaseSensitiveMethod();
    this.method = method;
    this.isHead = method === 'HEAD';
    this.url = req.getUrl();
    this.query = req.getQuery() ?? '';
    this.fields = [];
    this.headBytes = method.length + this.url.length + this.query.length + 12;
    this.hostCount = 0;
    this.host = '';
    this.cookie = '';
    this.authorization = '';
    this.acceptsHtml = false;
    this.forwardedFor = '';
    this.connection = '';
    this.traceparent = '';
    this.tracestate = '';
    this.trace = '';
    this.body = BODY_NONE;
    this.sawLength = false;
    this.sawEncoding = false;
    this.config = null;
    this.project = null;
    this.target = '';
    this.key = '';
    this.policy = null;
    this.principal = null;
    this.assertion = null;
    this.clientAddress = '';
    this.forwarding = false;
    this.routeCounted = false;
    this.started = false;
    this.early = null;
    this.earlyEnd = false;
    this.conn = null;
    this.stream = null;
    this.replayed = false;
    this.uploading = false;
    this.received = 0;
    this.aborted = false;
    this.done = false;
    this.headWritten = false;
    this.headPending = false;
    this.headStatus = 0;
    this.headFields = null;
    this.total = -1;
    this.pending = null;
    this.pendingBase = 0;
    this.waitingWritable = false;
    this.livePrev = null;
    this.liveNext = null;
    this.liveDeadline = Infinity;
    this.activeAt = 0;
    this.lastMessageAt = 0;
    this.liveIdleMs = Infinity;
    this.metricSlot = SLOT_NONE;
    this.startedAt = scope.metrics == null && scope.access == null && scope.spans == null ? 0 : performance.now();
    this.sentAt = 0;
    this.decidedAt = 0;
    this.decisionKind = -1;
    reading = this;
    req.forEach(collect);
    reading = null;
  }

  /** ForwardedRequest: a trace the edge starts for this request is sampled only when it records spans. */
  newTraceSampled(): boolean {
    const s = this.scope.spans;
    return s != null && s.sampleNew();
  }

  get hasBody(): boolean {
    return this.body !== BODY_NONE;
  }
  get scheme(): string {
    return this.scope.scheme;
  }
  get projectId(): string {
    return this.project!.id;
  }

  // ── LiveStream ──
  get liveProject(): string {
    return this.project!.id;
  }
  get liveMethod(): string {
    return this.method;
  }
  get liveKey(): string {
    return this.key;
  }
  get liveRequestId(): string {
    return this.id;
  }
  get liveClient(): string {
    return this.clientAddress;
  }
  get isWebSocket(): boolean {
    return false;
  }
  /** Continuous authorization ended the access: reset the tunnel stream, and answer 403 or cut the connection. */
  revoke(code: ErrorCode): void {
    this.fail(code);
  }

  // ── HeadSource: the forwarded head, written into the chosen connection's encoder ──
  encodeHead(enc: HpackEncoder): void {
    encodeForwarded(enc, this);
  }

  // ── forwarding ──

  /**
   * Takes the response over and sends the request to `conn` once the uWS read
   * that carried it is done (`start`, from a setImmediate shared by every
   * request of the read). Call from the handler's top half.
   *
   * Why wait: uWS refuses HTTP/1.1 pipelining with asynchronous answers — a
   * request that arrives while an answer is pending makes it close the
   * connection (its HttpContext: "denying async pipelining"), before our
   * handler sees the second request, and it parses a whole read before we get
   * control back. Opened at once, the first request would reach the origin and
   * its answer be lost with the connection; a POST replayed by the client
   * would then run twice. Started after the read, a request whose connection
   * uWS closed is aborted by then and reaches no origin. Cost: one setImmediate
   * per event-loop turn for all the requests of that turn.
   */
  forward(conn: TunnelConnection): void {
    const scope = this.scope;
    scope.inflight.n++;
    scope.live?.add(this);
    this.forwarding = true;
    this.conn = conn;
    this.res.onAborted(() => this.abort());
    if (this.body !== BODY_NONE) {
      this.uploading = true;
      this.res.onData((ab, isLast) => this.onBody(ab, isLast));
    }
    toStart.push(this);
    if (toStart.length === 1) setImmediate(startAll);
  }

  /** The read is over: open the stream (a bodiless request now; with a body, on its first bytes). */
  start(): void {
    this.started = true;
    if (this.aborted || this.done) return;
    if (this.scope.metrics != null || this.scope.spans != null) this.sentAt = performance.now();
    // Picked again now, not kept from the head's turn: every request that arrived in that turn saw
    // the same outstanding counts and would pile onto one connection (one Warpgate got none of 32
    // requests sent at once, test/integration/ha.test.ts); here each open counts for the next pick.
    const conn = this.scope.pools.pick(this.project!.upstream);
    if (conn !== null) this.conn = conn;
    if (this.body === BODY_NONE) {
      if ((conn === null || !conn.open(this)) && !this.scope.pools.replay(this, false)) this.onError('MEZU_TUNNEL_FAILED');
      return;
    }
    // With a body, the stream opens on the first body bytes: a request whose body never starts (uWS
    // closes it after its idle timeout) or whose first chunk is malformed (uWS closes the
    // connection) reaches no origin at all.
    const early = this.early;
    if (early === null) return;
    this.early = null;
    if (conn === null || !conn.open(this)) {
      this.uploading = false;
      return this.fail('MEZU_NO_WARPGATE');
    }
    const stream = this.stream!;
    let ok = true;
    for (let i = 0; i < early.length; i++) ok = stream.write(early[i]!);
    if (this.earlyEnd) {
      this.uploading = false;
      stream.end();
    } else if (!ok) this.waitForTunnelDrain(stream);
  }

  /**
   * A body chunk from the client, counted against the rule's `max_body` as it
   * streams (a chunked body has no length up front): past it, the stream is
   * reset, the client gets 413 and the connection is closed. With
   * backpressure: the client socket is paused while the tunnel stream is above
   * its high-water mark.
   */
  private onBody(ab: ArrayBuffer, isLast: boolean): void {
    if (!this.uploading) return;
    if (this.aborted || this.done) {
      // The response is complete (e.g. an early 502): stop the rest of the upload on the tunnel.
      this.uploading = false;
      this.stream?.abort();
      return;
    }
    this.received += ab.byteLength;
    if (this.received > this.policy!.maxBody) {
      this.uploading = false;
      return this.fail('MEZU_REQUEST_TOO_LARGE');
    }
    if (!this.started) {
      // Still inside the read that carried the head (see forward): keep a copy until start.
      (this.early ??= []).push(Buffer.from(new Uint8Array(ab)));
      if (isLast) this.earlyEnd = true;
      return;
    }
    let stream = this.stream;
    if (stream === null) {
      // The least busy connection now (the one picked with the head may have closed since).
      const conn = this.scope.pools.pick(this.project!.upstream);
      if (conn === null || !conn.open(this)) {
        this.uploading = false;
        return this.fail('MEZU_NO_WARPGATE');
      }
      stream = this.stream!;
    }
    // onData's buffer is neutered on return: copy it.
    const ok = ab.byteLength === 0 ? true : stream.write(Buffer.from(new Uint8Array(ab)));
    if (isLast) {
      this.uploading = false;
      stream.end();
    } else if (!ok) this.waitForTunnelDrain(stream);
  }

  /** The tunnel stream is above its high-water mark: stop reading the client until it drains. */
  private waitForTunnelDrain(stream: H2Stream): void {
    this.res.pause();
    stream.onDrain(() => {
      if (!this.aborted) this.res.resume();
    });
  }

  // ── ClientStreamSink: the response from the tunnel ──

  onHead(status: number, headers: string[]): void {
    if (this.aborted || this.done) return;
    const m = this.scope.metrics;
    if (m != null) m.tunnelWait(this.metricSlot, this.sentAt);
    let cl = -1;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'content-length') {
        const n = Number(headers[i + 1]);
        cl = Number.isSafeInteger(n) && n >= 0 ? n : -1;
      }
    }
    // A response that starts while the client is still uploading ends the connection with it
    // (`end(…, true)`): uWS would otherwise go on reading that body after the response without its
    // idle timeout, however slowly it comes. Only `end` can close, so such a response is chunked.
    const closing = this.uploading;
    this.total = closing ? -1 : cl;
    this.headStatus = status;
    this.headFields = headers;
    const res = this.res;
    if (this.isHead || status === 204 || status === 304) {
      res.cork(() => {
        this.writeHead();
        // No body follows (RFC 9110 §6.4.1); a HEAD reports the length a GET would have had,
        // a 204 or 304 none (errors/http.ts endWithoutContent: how uWS 20.30 must be called).
        endWithoutContent(res, this.isHead ? cl : -1, closing);
        this.finish();
      });
      return;
    }
    // Hold the head until the body's first bytes (usually in the same tunnel read): one corked
    // send instead of two (measured: uWS flushes at the end of every cork). A microtask writes
    // it anyway if no body arrives in this turn, so a slow body never delays the head.
    this.headPending = true;
    pendingHeads.push(this);
    if (pendingHeads.length === 1) queueMicrotask(flushPendingHeads);
  }

  /**
   * Writes status line and fields; call corked. One native call: the fields
   * follow the status text as `\r\nname: value` lines in the string handed
   * to writeStatus (uWS writes `HTTP/1.1 `, that string and `\r\n`, then its
   * own Date and framing). Measured with callgrind on a bare uWS server: each
   * writeHeader call costs ~1,000 instructions of crossing and conversion, so a
   * response with three fields spends ~3,000 less. Safe because every name and
   * value came through the tunnel's HPACK decoder, which refuses names that
   * are not lower-case tokens and values with NUL, CR or LF (RFC 9113 §8.2.1;
   * wire/h2/hpack.ts validName, validValue): no field can end the line early.
   */
  writeHead(): void {
    const headers = this.headFields!;
    let head = statusLine(this.headStatus);
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      if (SKIP_RESPONSE.has(n)) continue;
      head += `\r\n${n}: ${headers[i + 1]!}`;
    }
    this.res.writeStatus(`${head}\r\nx-mezu-request-id: ${this.id}`);
    this.headWritten = true;
    this.headPending = false;
  }

  flushHead(): void {
    if (!this.headPending || this.aborted || this.done) return;
    this.res.cork(() => this.writeHead());
  }

  onData(chunk: Buffer): void {
    if (this.aborted || this.done) return;
    // uWS calls cork's callback at once: a module function reading these two, not a closure per chunk.
    corkedRequest = this;
    corkedChunk = chunk;
    this.res.cork(writeCorkedChunk);
    corkedRequest = null;
    corkedChunk = null;
  }

  /** A response body chunk, corked: tryEnd when the length is known (uWS writes one Content-Length), else chunked. */
  writeChunk(chunk: Buffer): void {
    const res = this.res;
    if (this.headPending) this.writeHead();
    if (this.total >= 0) {
      const base = res.getWriteOffset();
      const [ok, fin] = res.tryEnd(chunk, this.total);
      if (fin) this.finish();
      else if (!ok) {
        this.pending = chunk;
        this.pendingBase = base;
        this.waitForWritable();
      }
    } else if (!res.write(chunk)) this.waitForWritable();
  }

  private waitForWritable(): void {
    this.stream?.pause();
    if (this.waitingWritable) return;
    this.waitingWritable = true;
    this.res.onWritable((offset) => this.onWritable(offset));
  }

  private onWritable(offset: number): boolean {
    if (this.aborted || this.done) return true;
    if (this.pending !== null) {
      const [ok, fin] = this.res.tryEnd(this.pending.subarray(offset - this.pendingBase), this.total);
      if (fin) {
        this.pending = null;
        this.finish();
        return true;
      }
      if (!ok) return false;
      this.pending = null;
    }
    this.stream?.resume();
    return true;
  }

  onEnd(): void {
    if (this.aborted || this.done) return;
    const res = this.res;
    if (!this.headWritten && !this.headPending) {
      // A stream that ended without a response head is a tunnel fault, never an empty 200.
      this.headStatus = Errors.MEZU_TUNNEL_FAILED.status;
      res.cork(() => writeError(res, 'MEZU_TUNNEL_FAILED', this.id, false, this.isHead));
      this.finish();
      return;
    }
    res.cork(() => {
      if (this.headPending) this.writeHead();
      if (this.total < 0) res.end('', this.uploading);
      else if (this.total === 0) res.end();
      // A body shorter than its Content-Length: the client must not take it as complete.
      else res.close();
    });
    this.finish();
  }

  onError(code: ErrorCode): void {
    if (this.aborted || this.done) return;
    // The client is still sending a body the tunnel no longer takes: answer and close (see fail).
    if (this.uploading) return this.fail(code);
    const res = this.res;
    this.headPending = false;
    if (!this.headWritten) {
      this.headStatus = Errors[code].status;
      res.cork(() => writeError(res, code, this.id, false, this.isHead));
    }
    // Head already sent: the only honest signal left is to cut the connection.
    else res.close();
    this.finish();
  }

  /** Refused before the Warpgate processed it (RFC 9113 §8.7): replayed once elsewhere when safe. */
  onRefused(): void {
    if (this.aborted) return;
    if (!this.scope.pools.replay(this, false)) this.onError('MEZU_TUNNEL_FAILED');
  }

  /** The connection died before any response byte: replayed once on another Warpgate if idempotent. */
  onLost(): void {
    if (this.aborted) return;
    if (!this.scope.pools.replay(this, true)) this.onError('MEZU_TUNNEL_FAILED');
  }

  /**
   * The edge gives up on this exchange while the client may still be sending
   * (body over the limit, tunnel gone before the body started, a fault): the
   * tunnel stream is reset, the client gets `code` if no response head went
   * out yet, and the connection is closed either way, so the rest of the
   * upload is never read. Call from the handler's top half or a uWS callback.
   */
  fail(code: ErrorCode): void {
    if (this.aborted || this.done) return;
    this.stream?.abort();
    this.headPending = false;
    if (!this.headWritten) this.headStatus = Errors[code].status;
    this.finish();
    // One turn later, for the reason given at closeWith (errors/http.ts): a request the client
    // pipelined behind this one then makes uWS abort the connection instead of dispatching it.
    setImmediate(failNow, this, code);
  }

  failNow(code: ErrorCode): void {
    if (this.aborted) return;
    const res = this.res;
    if (!this.headWritten) res.cork(() => writeErrorNow(res, code, this.id, true, this.isHead));
    else res.close();
  }

  /** uWS onAborted: the client went away. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.stream?.abort();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const scope = this.scope;
    // Status 0 (`aborted`): the client went away before any head was written.
    answered(this, this.aborted && !this.headWritten ? 0 : this.headStatus);
    scope.inflight.n--;
    scope.live?.remove(this);
    const n = scope.clients.get(this.clientAddress)!;
    if (n <= 1) scope.clients.delete(this.clientAddress);
    else scope.clients.set(this.clientAddress, n - 1);
    if (this.routeCounted) {
      const m = scope.routes.get(this.policy!)!;
      if (m <= 1) scope.routes.delete(this.policy!);
      else scope.routes.set(this.policy!, m - 1);
    }
  }
}

/**
 * `r` was answered with `status`: counted (metrics) and, when sampled, logged
 * (access log) and recorded as spans (OTLP). The one place both happen, for forwarded and refused requests alike.
 */
export function answered(r: EdgeRequest, status: number): void {
  const scope = r.scope;
  const m = scope.metrics;
  if (m != null) m.count(r.metricSlot, methodClass(r.method), status, r.startedAt);
  const a = scope.access;
  if (a != null) a.record(r, status);
  const sp = scope.spans;
  if (sp != null) sp.record(r, status);
}

/** Requests forwarded during the current uWS read(s), started together after them. */
let toStart: EdgeRequest[] = [];
let spare: EdgeRequest[] = [];
function startAll(): void {
  const list = toStart;
  toStart = spare;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    try {
      r.start();
    } catch (err) {
      // Fail closed: a fault while opening the stream denies this request; the others go on.
      r.scope.log(`edge: request ${r.id} failed while forwarding (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: r.id });
      r.fail('MEZU_INTERNAL');
    }
  }
  // Send now what these requests wrote to their tunnels: a flush the codec schedules from here (the
  // check phase) would wait a whole event-loop turn, behind the next poll's events. The first call
  // per connection writes; the others find nothing queued.
  for (let i = 0; i < list.length; i++) list[i]!.conn?.flush();
  list.length = 0;
  spare = list;
}

let corkedRequest: EdgeRequest | null = null;
let corkedChunk: Buffer | null = null;
function writeCorkedChunk(): void {
  corkedRequest!.writeChunk(corkedChunk!);
}

function failNow(r: EdgeRequest, code: ErrorCode): void {
  r.failNow(code);
}

/** Requests whose response head waits for body bytes; flushed together at the end of the current turn. */
const pendingHeads: EdgeRequest[] = [];
function flushPendingHeads(): void {
  for (let i = 0; i < pendingHeads.length; i++) pendingHeads[i]!.flushHead();
  pendingHeads.length = 0;
}
