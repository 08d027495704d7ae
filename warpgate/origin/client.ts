/**
 * Warpgate → origin: a lean HTTP/1.1 keep-alive client for one `http:` origin.
 *
 * Why not undici: measured against a uWS origin on the 2-core machine,
 * undici's `Pool.dispatch` costs ~39 CPU-µs per request on the client side,
 * twice the Warpgate's whole 20 µs budget (docs/ARCHITECTURE.md, "Budgets"; `bench/origin-client.ts`
 * measures both side by side). This client does only what the Warpgate needs:
 *
 * - keep-alive `net.Socket`s (TCP_NODELAY) opened on demand, while requests
 *   wait, up to `connections`, reused LIFO (so the surplus idles out after
 *   `keepAliveTimeoutMs`), one request at a time per connection (no
 *   pipelining); a request that waits for a connection has its own deadline;
 * - a request whose caller gave up (`abandon()`: the edge cancelled the
 *   stream) keeps its connection when the response ends soon: closing it
 *   instead would cost a connect and a TIME_WAIT socket per cancelled request;
 * - reads through `onread` into one shared buffer: no stream machinery per
 *   read, and body bytes handed to the sink are copies it may keep;
 * - the request head serialized once into one string and one write;
 * - a strict response parser (./parser.ts) whose errors discard the connection;
 * - coarse timeouts from one `unref()`'d ticker per client instead of a timer
 *   per request;
 * - no closures per request: a request is one `OriginRequest` object and its
 *   sink, whose methods are called directly.
 *
 * `https:` origins are spoken to over TLS (tls.connect, certificate verified
 * against Node's roots or the given `ca`), through the same `onread` path.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PARSE_ERROR, ResponseParser, type ResponseListener } from './parser.js';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, SerializedHead, isIdempotent, serializeHead, type RequestHeadInput } from './request-head.js';

export type OriginErrorCode = 'MEZU_ORIGIN_UNREACHABLE' | 'MEZU_ORIGIN_TIMEOUT' | 'MEZU_ORIGIN_FAILED' | 'MEZU_ORIGIN_BUSY';

export type OriginRequestHead = RequestHeadInput;

/**
 * Receives one response. Exactly one of `onEnd` / `onError` ends it (none
 * after `abort()`, nor after an `abandon()` that returned false); `onHead`
 * comes first, at most once, and `onError` may follow it when the body fails.
 * After an `abandon()` that returned true, only that final `onEnd` /
 * `onError` comes: it says the origin connection is free again or closed.
 */
export interface OriginSink {
  /** The final response head: 1xx are skipped; names are lower-case; hop-by-hop fields removed. */
  onHead(status: number, headers: string[]): void;
  /** A body chunk the sink may keep. Return false to stop reading until `OriginRequest.resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  /** `detail` says what happened, for logs only (it may quote the origin). */
  onError(code: OriginErrorCode, detail: string): void;
}

export interface OriginClientOptions {
  /** `http://host:port`, or `https://host:port` (TLS to the origin, certificate verified). */
  origin: string | URL;
  /**
   * For an `https:` origin: PEM CA certificates to trust instead of Node's
   * bundled roots (an application with a self-signed or internal-CA
   * certificate). The certificate must name the origin's host.
   */
  ca?: string;
  /**
   * Connections at most: the pool opens them while requests wait and lets
   * idle ones close, so this is a ceiling, not a size. Default 1024: one
   * origin path that hangs must not take every connection (at the former 64,
   * 200 hung requests stalled every other path for the whole head timeout).
   * Each costs a file descriptor here and one at the origin.
   */
  connections?: number;
  /** Requests waiting for a connection at most; beyond, MEZU_ORIGIN_BUSY at once. Default 1024. */
  maxQueue?: number;
  /**
   * Longest wait for a free connection → MEZU_ORIGIN_BUSY when all
   * `connections` are busy (MEZU_ORIGIN_TIMEOUT while the ones being opened
   * are not yet accepted). Capped by `headersTimeoutMs`. Default 5 s.
   */
  queueTimeoutMs?: number;
  /**
   * After `abandon()`: how long, and how many body bytes, a cancelled
   * response may still take to end so that its connection is kept. Past
   * either, the connection is closed. Defaults 1 s and 64 KiB.
   */
  abandonGraceMs?: number;
  abandonMaxBytes?: number;
  /** TCP connect, per attempt → MEZU_ORIGIN_TIMEOUT (as nginx's proxy_connect_timeout gives 504). Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Once the request is on a connection, the wait for the final response
   * head (restarted by each request-body write, so a slow upload is not cut)
   * → MEZU_ORIGIN_TIMEOUT. Default 30 s.
   */
  headersTimeoutMs?: number;
  /** Longest silence inside a response body while the sink is reading → MEZU_ORIGIN_TIMEOUT. Default 30 s. */
  bodyTimeoutMs?: number;
  /**
   * Idle keep-alive connections close after this long, or 1 s before the
   * origin's own `Keep-Alive: timeout=N` when that is shorter, so that we
   * close first instead of racing the origin's close. Default 4 s.
   */
  keepAliveTimeoutMs?: number;
  /** Response head (status line + fields) size limit, and separately trailers'. Default 16 KiB (Node's and undici's). */
  maxHeaderBytes?: number;
  /** Response header fields at most. Default 100. */
  maxHeaderCount?: number;
}

export interface OriginClientStats {
  /** Open or opening connections. */
  connections: number;
  connecting: number;
  idle: number;
  busy: number;
  queued: number;
  /** Connections opened since the client was created. */
  opened: number;
  /** Requests replayed after a stale keep-alive connection failed. */
  retried: number;
}

/**
 * Every connection reads into this one buffer: reads are synchronous with
 * their callback, and nothing keeps a view of it past the callback (the parser
 * copies an incomplete line, the connection copies body bytes).
 * 64 KiB is the read size of Node's own streams.
 */
const READ_BUFFER_SIZE = 64 * 1024;
let readBuffer: Buffer | null = null;

/** Ticker period bounds: timeouts fire no earlier than configured and at most two periods late. */
const TICK_MIN_MS = 10;
const TICK_MAX_MS = 1000;
/** We close an idle connection this long before the origin says it will (undici uses the same 1 s margin). */
const KEEP_ALIVE_MARGIN_MS = 1000;

// Connection states.
const C_CONNECTING: number = 0;
const C_IDLE: number = 1;
const C_BUSY: number = 2;
const C_CLOSED: number = 3;

// What a connection's deadline means.
const D_NONE: number = 0;
const D_CONNECT: number = 1;
const D_HEADERS: number = 2;
const D_BODY: number = 3;
const D_IDLE: number = 4;

// Request states.
const R_QUEUED: number = 0;
const R_ACTIVE: number = 1;
const R_DONE: number = 2;

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

export class OriginClient {
  readonly host: string;
  readonly port: number;
  /** TLS settings for an `https:` origin, or null. */
  readonly tls: { servername: string | undefined; ca: string | undefined } | null;
  /** Host header when the caller sends none. */
  readonly authority: string;
  readonly maxConnections: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly abandonGraceMs: number;
  readonly abandonMaxBytes: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  /**
   * Clock for deadlines, ms: refreshed on every request and every read from
   * the origin, and by the ticker. A deadline adds one ticker period, so one
   * set from a clock up to a period old still never fires early.
   */
  now: number;
  readonly tickMs: number;

  private readonly conns: Set<Connection>;
  /** Idle connections, most recently used last (LIFO reuse lets the rest idle out). */
  private readonly idle: Connection[];
  private readonly queue: OriginRequest[];
  private connecting: number;
  private opened: number;
  retried: number;
  private closing: boolean;
  private growScheduled: boolean;
  private closeWaiters: Array<() => void> | null;
  private ticker: NodeJS.Timeout | null;

  constructor(opts: OriginClientOptions) {
    const u = typeof opts.origin === 'string' ? new URL(opts.origin) : opts.origin;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`warpgate: the origin client speaks http: and https:, got ${u.protocol}`);
    if (u.pathname !== '/' || u.search !== '' || u.username !== '' || u.password !== '') throw new TypeError(`warpgate: origin must be http(s)://host:port, got ${u.href}`);
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.tls = u.protocol === 'https:' ? { servername: net.isIP(this.host) === 0 ? this.host : undefined, ca: opts.ca } : null;
    this.port = u.port === '' ? (this.tls === null ? 80 : 443) : Number(u.port);
    this.authority = u.host;
    this.maxConnections = positive(opts.connections, 1024, 'connections');
    this.maxQueue = positive(opts.maxQueue, 1024, 'maxQueue');
    this.connectTimeoutMs = positive(opts.connectTimeoutMs, 10_000, 'connectTimeoutMs');
    this.headersTimeoutMs = positive(opts.headersTimeoutMs, 30_000, 'headersTimeoutMs');
    this.queueTimeoutMs = Math.min(positive(opts.queueTimeoutMs, 5_000, 'queueTimeoutMs'), this.headersTimeoutMs);
    this.abandonGraceMs = positive(opts.abandonGraceMs, 1_000, 'abandonGraceMs');
    this.abandonMaxBytes = positive(opts.abandonMaxBytes, 64 * 1024, 'abandonMaxBytes');
    this.bodyTimeoutMs = positive(opts.bodyTimeoutMs, 30_000, 'bodyTimeoutMs');
    this.keepAliveTimeoutMs = positive(opts.keepAliveTimeoutMs, 4_000, 'keepAliveTimeoutMs');
    this.maxHeaderBytes = positive(opts.maxHeaderBytes, 16 * 1024, 'maxHeaderBytes');
    this.maxHeaderCount = positive(opts.maxHeaderCount, 100, 'maxHeaderCount');
    const shortest = Math.min(this.connectTimeoutMs, this.headersTimeoutMs, this.bodyTimeoutMs, this.keepAliveTimeoutMs, this.queueTimeoutMs, this.abandonGraceMs);
    this.tickMs = Math.max(TICK_MIN_MS, Math.min(TICK_MAX_MS, Math.floor(shortest / 8)));
    this.now = Date.now();
    this.conns = new Set();
    this.idle = [];
    this.queue = [];
    this.connecting = 0;
    this.opened = 0;
    this.retried = 0;
    this.closing = false;
    this.growScheduled = false;
    this.closeWaiters = null;
    this.ticker = null;
  }

  /**
   * Sends a request. Errors, including an invalid head, arrive through
   * `sink.onError`, never synchronously from this call.
   */
  request(head: OriginRequestHead, sink: OriginSink): OriginRequest {
    const s = serializeHead(head, this.authority);
    if (typeof s === 'string') {
      const req = new OriginRequest(this, null, head.method, sink);
      req.failSoon('MEZU_ORIGIN_FAILED', `request head: ${s}`);
      return req;
    }
    const req = new OriginRequest(this, s, head.method, sink);
    if (this.closing) {
      req.failSoon('MEZU_ORIGIN_UNREACHABLE', 'client closed');
      return req;
    }
    if (this.ticker === null) this.startTicker();
    this.now = Date.now();
    req.deadline = this.now + this.queueTimeoutMs + this.tickMs;
    const conn = this.idle.pop();
    if (conn !== undefined) {
      conn.assign(req);
      return req;
    }
    if (this.queue.length >= this.maxQueue) {
      req.failSoon('MEZU_ORIGIN_BUSY', `all ${this.maxConnections} origin connections busy and ${this.maxQueue} requests waiting`);
      return req;
    }
    this.queue.push(req);
    // Deferred to the end of this tick: a sink that starts its next request from
    // onEnd finds every connection busy, yet one is released right after;
    // opening a connection for it would be wasted.
    if (!this.growScheduled) {
      this.growScheduled = true;
      process.nextTick(growLater, this);
    }
    return req;
  }

  stats(): OriginClientStats {
    let busy = 0;
    for (const c of this.conns) if (c.state === C_BUSY) busy++;
    return { connections: this.conns.size, connecting: this.connecting, idle: this.idle.length, busy, queued: this.queue.length, opened: this.opened, retried: this.retried };
  }

  /**
   * Refuses new requests at once (MEZU_ORIGIN_UNREACHABLE), fails the
   * waiting ones, lets requests in flight finish, then closes every connection.
   */
  close(): Promise<void> {
    this.closing = true;
    for (const req of this.queue.splice(0)) req.fail('MEZU_ORIGIN_UNREACHABLE', 'client closed');
    for (const c of this.idle.splice(0)) c.destroy();
    for (const c of this.conns) if (c.state === C_CONNECTING) c.destroy();
    if (this.conns.size === 0) {
      this.stopTicker();
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.closeWaiters ??= []).push(resolve));
  }

  /** Closes everything now; requests in flight get MEZU_ORIGIN_FAILED. */
  destroy(): void {
    this.closing = true;
    for (const req of this.queue.splice(0)) req.fail('MEZU_ORIGIN_UNREACHABLE', 'client destroyed');
    for (const c of [...this.conns]) c.fail('MEZU_ORIGIN_FAILED', 'client destroyed');
    this.stopTicker();
  }

  // ── internals (called by Connection and OriginRequest) ──

  /** Opens connections while requests wait and fewer are opening than waiting. */
  grow(): void {
    this.growScheduled = false;
    while (this.queue.length > this.connecting && this.conns.size < this.maxConnections && !this.closing) {
      this.connecting++;
      this.opened++;
      this.conns.add(new Connection(this));
    }
  }

  /** A connection is ready for a request (just connected, or its response is done). */
  release(conn: Connection): void {
    if (this.closing) {
      conn.destroy();
      return;
    }
    let req = this.queue.shift();
    while (req !== undefined && req.state === R_DONE) req = this.queue.shift();
    if (req !== undefined) {
      conn.assign(req);
      return;
    }
    conn.state = C_IDLE;
    const hint = conn.parser.keepAliveHintMs;
    const keepAlive = hint >= 0 ? Math.min(this.keepAliveTimeoutMs, hint - KEEP_ALIVE_MARGIN_MS) : this.keepAliveTimeoutMs;
    if (keepAlive <= 0) {
      conn.destroy();
      return;
    }
    conn.setDeadline(D_IDLE, keepAlive);
    this.idle.push(conn);
  }

  /** A connection attempt ended (connected, or destroyed while opening). */
  openingDone(): void {
    this.connecting--;
  }

  /**
   * A connection attempt failed. With no established connection left, the
   * origin is down for everyone waiting: fail the queue now rather than one
   * attempt per request (each may take `connectTimeoutMs`).
   */
  connectFailed(code: OriginErrorCode, detail: string): void {
    this.connecting--;
    let established = 0;
    for (const c of this.conns) if (c.state === C_IDLE || c.state === C_BUSY) established++;
    if (established === 0) {
      for (const req of this.queue.splice(0)) req.fail(code, detail);
    }
  }

  removed(conn: Connection): void {
    if (!this.conns.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (this.closing) {
      if (this.conns.size === 0) {
        this.stopTicker();
        const w = this.closeWaiters;
        this.closeWaiters = null;
        if (w !== null) for (const f of w) f();
      }
      return;
    }
    this.grow();
  }

  /** Puts a request whose stale connection failed before any response byte back at the head of the queue. */
  retry(req: OriginRequest): void {
    this.retried++;
    req.deadline = this.now + this.queueTimeoutMs + this.tickMs;
    this.queue.unshift(req);
    // A fresh connection: the other idle ones were likely closed by the origin at the same moment.
    if (this.conns.size < this.maxConnections) {
      this.connecting++;
      this.opened++;
      this.conns.add(new Connection(this));
    } else {
      this.grow();
    }
  }

  growPending(): boolean {
    return this.growScheduled;
  }

  dequeue(req: OriginRequest): void {
    const i = this.queue.indexOf(req);
    if (i !== -1) this.queue.splice(i, 1);
  }

  private startTicker(): void {
    this.ticker = setInterval(tick, this.tickMs, this);
    this.ticker.unref();
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }

  /** @internal */
  onTick(): void {
    const now = (this.now = Date.now());
    for (const c of this.conns) if (c.deadlineKind !== D_NONE && now >= c.deadline) c.expire();
    if (this.queue.length > 0) {
      for (let i = 0; i < this.queue.length; ) {
        const req = this.queue[i]!;
        if (now >= req.deadline) {
          this.queue.splice(i, 1);
          // At the cap the origin is saturated: a fast 503 lets clients back off, rather than a
          // wait as long as the head timeout. Below it, connections are being opened and the
          // origin is slow to accept them.
          if (this.conns.size >= this.maxConnections) req.fail('MEZU_ORIGIN_BUSY', `no origin connection free within ${this.queueTimeoutMs} ms: all ${this.maxConnections} busy`);
          else req.fail('MEZU_ORIGIN_TIMEOUT', `no connection to ${this.authority} accepted within ${this.queueTimeoutMs} ms`);
        } else i++;
      }
    }
  }
}

function tick(client: OriginClient): void {
  client.onTick();
}

function growLater(client: OriginClient): void {
  if (client.growPending()) client.grow();
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`warpgate: origin client option ${name} must be a positive number, got ${v}`);
  return v;
}

/**
 * One request: the handle the caller writes the request body through and
 * controls the response with.
 */
export class OriginRequest {
  /** Called when `write` returned false and the connection can take more. */
  onDrain: (() => void) | null;
  state: number;
  deadline: number;
  conn: Connection | null;
  readonly client: OriginClient;
  readonly head: SerializedHead | null;
  readonly method: string;
  readonly sink: OriginSink;
  /** Body bytes still allowed by the declared Content-Length. */
  bodyRemaining: number;
  /** `end()` was called (for BODY_NONE: from the start). */
  bodyEnded: boolean;
  /** Chunks written before a connection was assigned. */
  pending: Buffer[] | null;
  pendingBytes: number;
  needDrain: boolean;
  retried: boolean;
  /** The sink returned false from onData and has not resumed. */
  paused: boolean;
  /** Inside sink.onData: a resume() there applies to the false it is about to return. */
  inData: boolean;
  resumeEarly: boolean;
  /** The caller gave up (abandon()); the response drains to keep the connection. */
  abandoned: boolean;

  constructor(client: OriginClient, head: SerializedHead | null, method: string, sink: OriginSink) {
    this.onDrain = null;
    this.state = R_QUEUED;
    this.deadline = 0;
    this.conn = null;
    this.client = client;
    this.head = head;
    this.method = method;
    this.sink = sink;
    this.bodyRemaining = head !== null && head.bodyMode === BODY_LENGTH ? head.contentLength : 0;
    this.bodyEnded = head === null || head.bodyMode === BODY_NONE;
    this.pending = null;
    this.pendingBytes = 0;
    this.needDrain = false;
    this.retried = false;
    this.paused = false;
    this.inData = false;
    this.resumeEarly = false;
    this.abandoned = false;
  }

  /** Bytes written but not yet handed to the kernel. */
  get bufferedAmount(): number {
    const c = this.conn;
    return c === null ? this.pendingBytes : c.socket.writableLength;
  }

  /** True once the response ended, failed or was aborted. */
  get done(): boolean {
    return this.state === R_DONE;
  }

  /**
   * Writes request body bytes. Returns false when the caller should wait for
   * `onDrain`. Writes after the response ended are ignored (an origin may
   * answer, e.g. 413, before reading the whole body).
   */
  write(chunk: Buffer): boolean {
    if (this.state === R_DONE || this.bodyEnded || chunk.length === 0) return true;
    const head = this.head!;
    if (head.bodyMode === BODY_LENGTH) {
      if (chunk.length > this.bodyRemaining) {
        this.fail('MEZU_ORIGIN_FAILED', 'request body longer than its Content-Length');
        return true;
      }
      this.bodyRemaining -= chunk.length;
    }
    const conn = this.conn;
    if (conn === null) {
      (this.pending ??= []).push(chunk);
      this.pendingBytes += chunk.length;
      this.needDrain = true;
      return false;
    }
    conn.refreshHeadersDeadline();
    return conn.writeBody(chunk, head.bodyMode === BODY_CHUNKED);
  }

  /** Ends the request body. */
  end(): void {
    if (this.state === R_DONE || this.bodyEnded) return;
    this.bodyEnded = true;
    const head = this.head!;
    if (head.bodyMode === BODY_LENGTH && this.bodyRemaining !== 0) {
      this.fail('MEZU_ORIGIN_FAILED', 'request body shorter than its Content-Length');
      return;
    }
    const conn = this.conn;
    if (conn === null) return; // sent on assignment
    conn.refreshHeadersDeadline();
    if (head.bodyMode === BODY_CHUNKED) conn.socket.write(LAST_CHUNK, 'latin1');
    conn.requestSent();
  }

  /** Gives up: no sink callback follows. The connection, if any, is closed (it is mid-message). */
  abort(): void {
    if (this.state === R_DONE) return;
    const wasQueued = this.state === R_QUEUED;
    this.state = R_DONE;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.destroy();
    else if (wasQueued) this.client.dequeue(this);
  }

  /**
   * Gives up on the response, cheaply. A queued request is dropped; one whose
   * request is still being written closes its connection (it is mid-message).
   * A fully written one stays on its connection: the response is read and
   * discarded, and if it ends within `abandonGraceMs` and `abandonMaxBytes`
   * the connection goes back to the pool, else it is closed.
   *
   * Returns true when the request still occupies its connection: exactly one
   * `onEnd` (kept) or `onError` (closed) follows when it stops. False: it has
   * stopped here, and no callback follows.
   */
  abandon(): boolean {
    if (this.state === R_DONE) return false;
    if (this.state === R_QUEUED) {
      this.state = R_DONE;
      this.client.dequeue(this);
      return false;
    }
    if (this.abandoned) return true;
    const conn = this.conn!;
    if (!conn.requestComplete) {
      this.state = R_DONE;
      this.conn = null;
      conn.destroy();
      return false;
    }
    this.abandoned = true;
    conn.drain();
    return true;
  }

  /** Reads again after `onData` returned false. */
  resume(): void {
    if (this.inData) {
      this.resumeEarly = true;
      return;
    }
    if (!this.paused) return;
    this.paused = false;
    const conn = this.conn;
    if (conn !== null && this.state === R_ACTIVE) conn.resumeReading();
  }

  // ── internals ──

  /** Fails on the next tick: `request()` never calls the sink synchronously. */
  failSoon(code: OriginErrorCode, detail: string): void {
    this.state = R_DONE;
    process.nextTick(deliverError, this.sink, code, detail);
  }

  /** Ends with an error now; closes the connection it was on. */
  fail(code: OriginErrorCode, detail: string): void {
    if (this.state === R_DONE) return;
    const wasQueued = this.state === R_QUEUED;
    this.state = R_DONE;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.destroy();
    else if (wasQueued) this.client.dequeue(this);
    this.sink.onError(code, detail);
  }
}

function deliverError(sink: OriginSink, code: OriginErrorCode, detail: string): void {
  sink.onError(code, detail);
}

function emitDrain(req: OriginRequest): void {
  if (req.state !== R_DONE && req.onDrain !== null) req.onDrain();
}

/** One keep-alive connection to the origin and its response parser. */
export class Connection implements ResponseListener {
  state: number;
  deadline: number;
  deadlineKind: number;
  req: OriginRequest | null;
  /** Requests this connection has completed; > 0 means a failure before any byte may be a stale keep-alive. */
  served: number;
  /** The current response ended (set inside parsing, acted on after it). */
  responseDone: boolean;
  /** The request (head, body, terminator) was written in full. */
  requestComplete: boolean;
  /** While an abandoned response drains: the deadline no read may push back (0: none). */
  drainUntil: number;
  /** Body bytes of an abandoned response read and dropped. */
  discarded: number;
  readonly client: OriginClient;
  readonly socket: net.Socket;
  readonly parser: ResponseParser;

  constructor(client: OriginClient) {
    this.state = C_CONNECTING;
    this.deadline = 0;
    this.deadlineKind = D_NONE;
    this.req = null;
    this.served = 0;
    this.responseDone = false;
    this.requestComplete = false;
    this.drainUntil = 0;
    this.discarded = 0;
    this.client = client;
    this.parser = new ResponseParser(this, { maxHeaderBytes: client.maxHeaderBytes, maxHeaderCount: client.maxHeaderCount });
    readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE);
    const onread = { buffer: readBuffer, callback: onSocketRead };
    const t = client.tls;
    // TLS reads through `onread` too (tls.connect passes it to its socket): no stream machinery per read either way.
    const socket: net.Socket =
      t === null
        ? net.connect({ host: client.host, port: client.port, noDelay: true, onread })
        : tls.connect({ host: client.host, port: client.port, servername: t.servername, ca: t.ca, onread, ALPNProtocols: ['http/1.1'] } as tls.ConnectionOptions);
    (socket as ConnectionSocket).mezuConn = this;
    if (t !== null) socket.setNoDelay(true);
    socket.on(t === null ? 'connect' : 'secureConnect', onSocketConnect);
    socket.on('error', onSocketError);
    socket.on('end', onSocketEnd);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
    this.socket = socket;
    this.setDeadline(D_CONNECT, client.connectTimeoutMs);
  }

  setDeadline(kind: number, ms: number): void {
    this.deadlineKind = kind;
    const d = this.client.now + ms + this.client.tickMs;
    this.deadline = this.drainUntil !== 0 && this.drainUntil < d ? this.drainUntil : d;
  }

  refreshHeadersDeadline(): void {
    if (this.deadlineKind === D_HEADERS) this.setDeadline(D_HEADERS, this.client.headersTimeoutMs);
  }

  /** The request was abandoned: read on, without the sink, until the response ends or the grace is over. */
  drain(): void {
    const client = this.client;
    client.now = Date.now();
    this.drainUntil = client.now + client.abandonGraceMs + client.tickMs;
    const req = this.req!;
    if (req.paused) {
      req.paused = false;
      this.resumeReading(); // a body deadline, capped
    } else if (this.deadlineKind === D_NONE || this.deadline > this.drainUntil) {
      if (this.deadlineKind === D_NONE) this.deadlineKind = D_BODY;
      this.deadline = this.drainUntil;
    }
  }

  /** Starts `req` on this connection: the head (and any body written meanwhile) in one write. */
  assign(req: OriginRequest): void {
    this.state = C_BUSY;
    this.req = req;
    req.conn = this;
    req.state = R_ACTIVE;
    this.responseDone = false;
    this.requestComplete = false;
    this.drainUntil = 0;
    this.discarded = 0;
    this.parser.reset(req.method === 'HEAD');
    this.setDeadline(D_HEADERS, this.client.headersTimeoutMs);
    const head = req.head!;
    const socket = this.socket;
    const pending = req.pending;
    let ok: boolean;
    if (pending === null) {
      // The common case: one head, one write.
      ok = req.bodyEnded && head.bodyMode === BODY_CHUNKED ? socket.write(head.text + LAST_CHUNK, 'latin1') : socket.write(head.text, 'latin1');
    } else {
      // While corked, write() still reports whether the buffered total is under the high-water mark.
      socket.cork();
      ok = socket.write(head.text, 'latin1');
      const chunked = head.bodyMode === BODY_CHUNKED;
      for (const chunk of pending) ok = this.writeBody(chunk, chunked);
      if (req.bodyEnded && chunked) ok = socket.write(LAST_CHUNK, 'latin1');
      socket.uncork();
      req.pending = null;
      req.pendingBytes = 0;
    }
    if (req.bodyEnded) this.requestSent();
    if (req.needDrain && ok) {
      req.needDrain = false;
      process.nextTick(emitDrain, req);
    }
  }

  writeBody(chunk: Buffer, chunked: boolean): boolean {
    const socket = this.socket;
    if (!chunked) return socket.write(chunk);
    // One writev for size line, data and CRLF; nested inside assign()'s cork, uncork only decrements.
    socket.cork();
    socket.write(chunk.length.toString(16) + CRLF, 'latin1');
    socket.write(chunk);
    const ok = socket.write(CRLF, 'latin1');
    socket.uncork();
    return ok;
  }

  requestSent(): void {
    this.requestComplete = true;
    if (this.responseDone) this.finishResponse();
  }

  resumeReading(): void {
    if (this.state !== C_BUSY) return;
    this.setDeadline(D_BODY, this.client.bodyTimeoutMs);
    this.socket.resume();
  }

  // ── ResponseListener ──

  onResponseHead(status: number, headers: string[]): void {
    this.setDeadline(D_BODY, this.client.bodyTimeoutMs);
    const req = this.req!;
    if (req.state === R_ACTIVE && !req.abandoned) req.sink.onHead(status, headers);
  }

  onResponseData(buf: Buffer, start: number, end: number): void {
    const req = this.req!;
    if (req.state !== R_ACTIVE) return;
    if (req.abandoned) {
      this.discarded += end - start;
      if (this.discarded > this.client.abandonMaxBytes) this.fail('MEZU_ORIGIN_FAILED', `cancelled response longer than ${this.client.abandonMaxBytes} bytes: connection closed`);
      return;
    }
    // Copy out of the shared read buffer: the sink may keep the chunk.
    const chunk = Buffer.allocUnsafe(end - start);
    buf.copy(chunk, 0, start, end);
    req.inData = true;
    const more = req.sink.onData(chunk);
    req.inData = false;
    if (req.resumeEarly) req.resumeEarly = false;
    else if (!more && !req.abandoned) req.paused = true;
  }

  onResponseEnd(): void {
    this.responseDone = true;
    this.deadlineKind = D_NONE;
    const req = this.req!;
    if (req.state !== R_ACTIVE) return;
    req.state = R_DONE;
    req.sink.onEnd();
  }

  // ── socket events ──

  connected(): void {
    if (this.state !== C_CONNECTING) return;
    this.client.openingDone();
    this.deadlineKind = D_NONE;
    this.client.release(this);
  }

  /** Bytes from the origin. Returns false to stop reading (the sink is backed up). */
  read(buf: Buffer, length: number): boolean {
    const req = this.req;
    if (this.state !== C_BUSY || req === null || !this.parser.active) {
      // Nobody asked: an idle connection the origin writes to is out of step.
      this.destroy();
      return false;
    }
    const client = this.client;
    client.now = Date.now(); // deadlines set while handling this read start from now, not from the last tick
    if (this.deadlineKind === D_BODY) this.setDeadline(D_BODY, client.bodyTimeoutMs);
    const r = this.parser.execute(buf, length);
    if (this.state === C_CLOSED) return false; // the sink aborted while we parsed
    if (r === PARSE_ERROR) {
      if (this.responseDone) this.destroy(); // the response was whole; what followed was not ours
      else this.fail('MEZU_ORIGIN_FAILED', `origin sent a malformed response: ${this.parser.reason}`);
      return false;
    }
    if (this.responseDone) {
      if (this.requestComplete) this.finishResponse();
      else this.destroy(); // answered before the request body was sent: the connection is mid-message
      return this.state !== C_CLOSED;
    }
    if (req.paused) {
      this.deadlineKind = D_NONE; // the sink holds us up, not the origin
      return false;
    }
    return true;
  }

  /** The response and the request are both complete. */
  finishResponse(): void {
    const req = this.req;
    this.req = null;
    if (req !== null && req.conn === this) req.conn = null;
    this.served++;
    if (!this.parser.keepAlive) {
      this.destroy();
      return;
    }
    this.client.release(this);
  }

  /** The origin closed its side. */
  ended(): void {
    if (this.state !== C_BUSY || this.req === null) {
      this.destroy();
      return;
    }
    if (this.parser.closeDelimited) {
      this.parser.finish(); // completes the response
      this.destroy();
      return;
    }
    this.lost('origin closed the connection');
  }

  errored(err: Error & { code?: string }): void {
    if (this.state === C_CONNECTING) {
      this.state = C_CLOSED;
      this.deadlineKind = D_NONE;
      this.socket.destroy();
      this.client.connectFailed('MEZU_ORIGIN_UNREACHABLE', `cannot connect to ${this.client.authority}: ${err.code ?? err.message}`);
      this.client.removed(this);
      return;
    }
    if (this.state === C_BUSY && this.req !== null) {
      this.lost(`origin connection error: ${err.code ?? err.message}`);
      return;
    }
    this.destroy();
  }

  /**
   * The connection broke under a request. Replayed once on a fresh
   * connection when nothing of the response arrived, the connection had
   * served before (so the likely cause is the origin closing an idle
   * keep-alive socket as we wrote), and the request is idempotent without a
   * body (RFC 9110 §9.2.2; RFC 9112 §9.3.1 allows the automatic retry).
   */
  private lost(detail: string): void {
    const req = this.req!;
    if (req.state === R_ACTIVE && !this.parser.started && this.served > 0 && !req.retried && req.head!.bodyMode === BODY_NONE && isIdempotent(req.method)) {
      req.retried = true;
      req.state = R_QUEUED;
      req.conn = null;
      this.req = null;
      this.destroy();
      this.client.retry(req);
      return;
    }
    this.fail('MEZU_ORIGIN_FAILED', detail);
  }

  /** Deadline passed. */
  expire(): void {
    const kind = this.deadlineKind;
    this.deadlineKind = D_NONE;
    switch (kind) {
      case D_CONNECT:
        this.state = C_CLOSED;
        this.socket.destroy();
        this.client.connectFailed('MEZU_ORIGIN_TIMEOUT', `no connection to ${this.client.authority} within ${this.client.connectTimeoutMs} ms`);
        this.client.removed(this);
        return;
      case D_HEADERS:
        if (this.drainUntil !== 0) return this.fail('MEZU_ORIGIN_TIMEOUT', `cancelled request not answered within ${this.client.abandonGraceMs} ms: connection closed`);
        this.fail('MEZU_ORIGIN_TIMEOUT', `no response head within ${this.client.headersTimeoutMs} ms`);
        return;
      case D_BODY:
        if (this.drainUntil !== 0) return this.fail('MEZU_ORIGIN_TIMEOUT', `cancelled response not finished within ${this.client.abandonGraceMs} ms: connection closed`);
        this.fail('MEZU_ORIGIN_TIMEOUT', `response body idle for ${this.client.bodyTimeoutMs} ms`);
        return;
      case D_IDLE:
        this.destroy();
        return;
    }
  }

  /** Fails the request in flight (if any) and closes. */
  fail(code: OriginErrorCode, detail: string): void {
    const req = this.req;
    this.req = null;
    this.destroy();
    if (req !== null && req.state !== R_DONE) {
      req.conn = null;
      req.fail(code, detail);
    }
  }

  /** Closes without telling anyone: the caller handles the request, if any. */
  destroy(): void {
    if (this.state === C_CLOSED) return;
    const wasConnecting = this.state === C_CONNECTING;
    this.state = C_CLOSED;
    this.deadlineKind = D_NONE;
    this.parser.stop();
    this.socket.destroy();
    if (wasConnecting) this.client.openingDone();
    const req = this.req;
    this.req = null;
    if (req !== null && req.conn === this) req.conn = null;
    this.client.removed(this);
    // A request still in flight here was aborted by its owner; or, via fail(), is failed by the caller.
  }
}

interface ConnectionSocket extends net.Socket {
  mezuConn: Connection;
}

function onSocketRead(this: net.Socket, nread: number, buf: Uint8Array): boolean {
  return (this as ConnectionSocket).mezuConn.read(buf as Buffer, nread);
}
function onSocketConnect(this: net.Socket): void {
  (this as ConnectionSocket).mezuConn.connected();
}
function onSocketError(this: net.Socket, err: Error): void {
  (this as ConnectionSocket).mezuConn.errored(err);
}
function onSocketEnd(this: net.Socket): void {
  (this as ConnectionSocket).mezuConn.ended();
}
function onSocketClose(this: net.Socket): void {
  const conn = (this as ConnectionSocket).mezuConn;
  if (conn.state === C_BUSY && conn.req !== null) conn.fail('MEZU_ORIGIN_FAILED', 'origin connection closed');
  else conn.destroy();
}
function onSocketDrain(this: net.Socket): void {
  const req = (this as ConnectionSocket).mezuConn.req;
  if (req !== null && req.state !== R_DONE && req.onDrain !== null) req.onDrain();
}

