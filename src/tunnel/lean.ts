/**
 * The tunnel's hot path, edge side: the lean HTTP/2 codec (`h2/`) behind the
 * tunnel interface. A request refused before any of it was processed
 * (REFUSED_STREAM, or a GOAWAY below its id, RFC 9113 §8.7) is replayed once
 * on another connection of the pool when it has no body (a body already
 * streamed into the refused stream cannot be replayed without buffering it,
 * which this edge never does).
 */
import type { Duplex } from 'node:stream';
import { H2Connection, type ClientStreamSink, type H2Stream } from '../../wire/index.js';
import type { H2Limits } from '../../wire/index.js';
import { Tunnel, type TunnelHello, type TunnelHelloReply } from '../../wire/index.js';
import type { ErrorCode } from '../errors/index.js';
import type { RequestHead, ResponseSink, TunnelConnection, TunnelStream } from './types.js';
import type { PoolRegistry } from './pools.js';

let nextConnId = 0;

/** A hello not answered within this long closes the connection. */
export const HELLO_TIMEOUT_MS = 5_000;

/** Methods a lost request may be replayed for (RFC 9110 §9.2.2), when it has no body. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export class LeanTunnelConnection implements TunnelConnection {
  readonly id: string;
  ready = false;
  peer = '';
  readonly h2: H2Connection;

  constructor(
    readonly pool: string,
    socket: Duplex,
    private readonly registry: PoolRegistry,
    limits: Partial<H2Limits>,
    onClosed: (c: LeanTunnelConnection, reason: string) => void,
  ) {
    this.id = `${process.pid}-l${++nextConnId}`;
    this.h2 = new H2Connection(socket, 'client', limits);
    this.h2.onGoaway = () => {
      // The Warpgate is draining: new requests go to other connections.
      this.ready = false;
    };
    this.h2.onClose = (reason) => {
      this.ready = false;
      onClosed(this, reason);
    };
  }

  get outstanding(): number {
    return this.h2.outstanding;
  }

  hello(h: TunnelHello): Promise<TunnelHelloReply> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status = 0;
      const timer = setTimeout(() => {
        s?.abort();
        reject(new Error('tunnel: hello timed out'));
      }, HELLO_TIMEOUT_MS);
      timer.unref();
      const sink: ClientStreamSink = {
        onHead: (st) => (status = st),
        onData: (c) => chunks.push(Buffer.from(c)),
        onEnd: () => {
          clearTimeout(timer);
          if (status !== 200) return reject(new Error(`tunnel: hello refused with ${status}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelHelloReply);
          } catch (e) {
            reject(e as Error);
          }
        },
        onError: (code) => {
          clearTimeout(timer);
          reject(new Error(`tunnel: hello failed (${code})`));
        },
        onRefused: () => {
          clearTimeout(timer);
          reject(new Error('tunnel: hello refused'));
        },
        onLost: () => {
          clearTimeout(timer);
          reject(new Error('tunnel: connection lost during the hello'));
        },
      };
      const s = this.h2.request([':method', Tunnel.controlMethod, ':scheme', 'https', ':authority', 'warpgate', ':path', Tunnel.controlPath, 'content-type', 'application/json'], false, sink);
      if (s === null) return reject(new Error('tunnel: connection not open'));
      s.end(Buffer.from(JSON.stringify(h)));
    });
  }

  open(head: RequestHead, hasBody: boolean, sink: ResponseSink): TunnelStream {
    const r = new LeanRequest(head, hasBody, sink, this.registry);
    r.start(this);
    return r;
  }

  /** Opens the HTTP/2 stream for `r`; false when this connection cannot take it. */
  startStream(r: LeanRequest, headers: string[]): H2Stream | null {
    return this.h2.request(headers, !r.hasBody, r);
  }

  close(graceful: boolean): void {
    this.ready = false;
    if (graceful) this.h2.close();
    else this.h2.destroy('closed by the edge');
  }
}

/** One forwarded request: the Exchange's TunnelStream and the HTTP/2 stream's sink. */
class LeanRequest implements TunnelStream, ClientStreamSink {
  stream: H2Stream | null = null;
  conn: LeanTunnelConnection | null = null;
  replayed = false;
  aborted = false;
  private headers: string[] | null = null;

  constructor(
    readonly head: RequestHead,
    readonly hasBody: boolean,
    private readonly sink: ResponseSink,
    private readonly registry: PoolRegistry,
  ) {}

  start(conn: LeanTunnelConnection): void {
    const h = this.head;
    if (this.headers === null) {
      // Sized once: growing by push reallocated it twice per request (~1 KiB of garbage each).
      const src = h.headers;
      const flat = new Array<string>(8 + src.length);
      flat[0] = ':method';
      flat[1] = h.method;
      flat[2] = ':scheme';
      flat[3] = 'https';
      flat[4] = ':authority';
      flat[5] = h.authority;
      flat[6] = ':path';
      flat[7] = h.path;
      for (let i = 0; i < src.length; i++) flat[8 + i] = src[i]!;
      this.headers = flat;
    }
    this.conn = conn;
    this.stream = conn.startStream(this, this.headers);
    if (this.stream === null) this.onRefused();
  }

  // ── TunnelStream ──
  write(chunk: Buffer): boolean {
    return this.stream === null ? false : this.stream.write(chunk);
  }
  onDrain(cb: () => void): void {
    this.stream?.onDrain(cb);
  }
  end(): void {
    this.stream?.end();
  }
  abort(): void {
    this.aborted = true;
    this.stream?.abort();
  }
  pause(): void {
    this.stream?.pause();
  }
  resume(): void {
    this.stream?.resume();
  }

  // ── ClientStreamSink ──
  onHead(status: number, headers: string[]): void {
    this.sink.onHead(status, headers);
  }
  onData(chunk: Buffer): void {
    this.sink.onData(chunk);
  }
  onEnd(): void {
    this.sink.onEnd();
  }
  onError(code: ErrorCode): void {
    this.sink.onError(code);
  }
  onLost(): void {
    if (this.aborted) return;
    // The Warpgate went away mid-request: retry once elsewhere only when repeating it is harmless,
    // preferring another Warpgate (its siblings may be dead too, their closes not read yet).
    if (IDEMPOTENT.has(this.head.method)) this.onRefused(this.conn?.peer);
    else this.sink.onError('MEZU_TUNNEL_FAILED');
  }
  onRefused(avoidPeer?: string): void {
    if (this.aborted) return;
    if (!this.hasBody && !this.replayed) {
      // RFC 9113 §8.7: not processed, so safe to retry — once, elsewhere.
      this.replayed = true;
      const other = this.registry.pickOther(this.poolName(), this.conn, avoidPeer);
      if (other instanceof LeanTunnelConnection) {
        this.start(other);
        return;
      }
    }
    this.sink.onError('MEZU_TUNNEL_FAILED');
  }
  private poolName(): string {
    return this.conn === null ? '' : this.conn.pool;
  }
}
