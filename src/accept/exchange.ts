/**
 * One forwarded request: pipes the client's body into the tunnel stream and
 * the tunnel's response back to the uWS response, with backpressure both ways.
 *
 * uWS rules applied here: every write after the handler returned is corked;
 * nothing touches `res` after onAborted; response bodies stream with
 * tryEnd/onWritable when the length is known (so uWS writes one
 * Content-Length) and with write (chunked) when it is not; the tunnel stream
 * is paused while the client socket is backed up.
 */
import type { HttpResponse } from '../../native/uws.js';
import type { ErrorCode } from '../errors/index.js';
import type { PoolRegistry, RequestHead, ResponseSink, TunnelConnection, TunnelStream } from '../tunnel/index.js';
import { statusLine, writeError, writeErrorNow, endWithoutContent } from './responses.js';

/** Response headers never copied to the client: uWS writes its own framing, and these are hop-by-hop (RFC 9110 §7.6.1). */
const SKIP_RESPONSE = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'upgrade', 'proxy-connection', 'trailer', 'te']);

export class Exchange implements ResponseSink {
  stream: TunnelStream | null = null;
  aborted = false;
  done = false;
  headWritten = false;
  /** Content-Length of the response, or -1 when chunked. */
  total = -1;
  /** Chunk waiting for the socket (tryEnd mode), and the write offset it started at. */
  pending: Buffer | null = null;
  pendingBase = 0;
  waitingWritable = false;
  /** A request body is still arriving from the client (set by Upload). */
  uploading = false;

  constructor(
    readonly res: HttpResponse,
    readonly isHead: boolean,
    readonly requestId: string,
    private readonly onFinish: () => void,
  ) {}

  /** A response head received but not yet written: it leaves with the first body bytes, in one send. */
  headPending = false;
  headStatus = 0;
  headHeaders: string[] | null = null;

  onHead(status: number, headers: string[]): void {
    if (this.aborted || this.done) return;
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
    this.headHeaders = headers;
    const res = this.res;
    if (this.isHead || status === 204 || status === 304) {
      res.cork(() => {
        this.writeHead();
        // No body follows (RFC 9110 §6.4.1); a HEAD reports the length a GET would have had,
        // a 204 or 304 none (responses.ts endWithoutContent: how uWS 20.30 must be called).
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

  /** Writes status line and headers; call corked. */
  writeHead(): void {
    const res = this.res;
    const headers = this.headHeaders!;
    res.writeStatus(statusLine(this.headStatus));
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      if (SKIP_RESPONSE.has(n)) continue;
      res.writeHeader(n, headers[i + 1]!);
    }
    res.writeHeader('x-mezu-request-id', this.requestId);
    this.headWritten = true;
    this.headPending = false;
  }

  flushHead(): void {
    if (!this.headPending || this.aborted || this.done) return;
    this.res.cork(() => this.writeHead());
  }

  onData(chunk: Buffer): void {
    if (this.aborted || this.done) return;
    const res = this.res;
    if (this.total >= 0) {
      res.cork(() => {
        if (this.headPending) this.writeHead();
        const base = res.getWriteOffset();
        const [ok, fin] = res.tryEnd(chunk, this.total);
        if (fin) this.finish();
        else if (!ok) {
          this.pending = chunk;
          this.pendingBase = base;
          this.waitForWritable();
        }
      });
    } else {
      res.cork(() => {
        if (this.headPending) this.writeHead();
        if (!res.write(chunk)) this.waitForWritable();
      });
    }
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
      res.cork(() => writeError(res, 'MEZU_TUNNEL_FAILED', this.requestId, false, this.isHead));
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
    if (!this.headWritten) res.cork(() => writeError(res, code, this.requestId, false, this.isHead));
    // Head already sent: the only honest signal left is to cut the connection.
    else res.close();
    this.finish();
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
    this.finish();
    // One turn later, for the reason given at closeWith (responses.ts): a request the client
    // pipelined behind this one then makes uWS abort the connection instead of dispatching it.
    setImmediate(() => this.failNow(code));
  }

  private failNow(code: ErrorCode): void {
    if (this.aborted) return;
    const res = this.res;
    if (!this.headWritten) res.cork(() => writeErrorNow(res, code, this.requestId, true, this.isHead));
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
    this.onFinish();
  }
}

/** Exchanges whose head waits for body bytes; flushed together at the end of the current turn. */
const pendingHeads: Exchange[] = [];
function flushPendingHeads(): void {
  for (let i = 0; i < pendingHeads.length; i++) pendingHeads[i]!.flushHead();
  pendingHeads.length = 0;
}

/**
 * A request body on its way to the tunnel. The tunnel stream is opened on the
 * first body bytes, not with the head: a request whose body never starts
 * (uWS closes it after its idle timeout) or whose first chunk size is
 * malformed (uWS closes the connection) reaches no origin at all. The body is
 * counted against the matched rule's `max_body` as it streams (a chunked body
 * has no length up front): past it, the stream is reset, the client gets 413
 * and the connection is closed. With backpressure: the client socket is
 * paused while the tunnel stream is above its high-water mark.
 */
export class Upload {
  stream: TunnelStream | null = null;
  received = 0;
  closed = false;

  constructor(
    readonly ex: Exchange,
    readonly res: HttpResponse,
    readonly pools: PoolRegistry,
    readonly pool: string,
    readonly conn: TunnelConnection,
    readonly head: RequestHead,
    readonly maxBody: number,
  ) {
    ex.uploading = true;
  }

  onData(ab: ArrayBuffer, isLast: boolean): void {
    if (this.closed) return;
    const ex = this.ex;
    if (ex.aborted || ex.done) {
      // The response is complete (e.g. an early 502): stop the rest of the upload on the tunnel.
      this.closed = true;
      this.stream?.abort();
      return;
    }
    this.received += ab.byteLength;
    if (this.received > this.maxBody) {
      this.closed = true;
      ex.fail('MEZU_REQUEST_TOO_LARGE');
      return;
    }
    let stream = this.stream;
    if (stream === null) {
      let conn: TunnelConnection | null = this.conn;
      // The connection picked with the head may have closed while the body was on its way.
      if (!conn.ready) conn = this.pools.pick(this.pool);
      if (conn === null) {
        this.closed = true;
        ex.fail('MEZU_NO_WARPGATE');
        return;
      }
      stream = conn.open(this.head, true, ex);
      this.stream = stream;
      ex.stream = stream;
    }
    // onData's buffer is neutered on return: copy it.
    const ok = ab.byteLength === 0 ? true : stream.write(Buffer.from(new Uint8Array(ab)));
    if (isLast) {
      this.closed = true;
      ex.uploading = false;
      stream.end();
    } else if (!ok) {
      this.res.pause();
      stream.onDrain(() => {
        if (!ex.aborted) this.res.resume();
      });
    }
  }
}
