/**
 * Reference tunnel: node:http2 over the Warpgate's mTLS socket, edge side
 * (the HTTP/2 client). Correct and standard, but ~70 CPU-µs per request on the
 * 2-core machine (brief §2); the fast-tunnel issue replaces it with a lean
 * codec implementing the same interface.
 */
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { ErrorCode } from '../errors/index.js';
import { Tunnel, type TunnelHello, type TunnelHelloReply } from '../contract/index.js';
import type { RequestHead, ResponseSink, TunnelConnection, TunnelStream } from './types.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** HTTP/2 settings the edge (client) announces. Larger windows than the 64 KiB default keep a 1 Gbit/s stream fed over loopback. */
export const CLIENT_SETTINGS: http2.Settings = {
  enablePush: false,
  initialWindowSize: 1 << 20,
  maxHeaderListSize: 64 * 1024,
};
/** Connection-level receive window. */
export const CONNECTION_WINDOW = 16 << 20;
/** A hello not answered within this long closes the connection. */
export const HELLO_TIMEOUT_MS = 5_000;

let nextConnId = 0;

export class H2TunnelConnection implements TunnelConnection {
  readonly id: string;
  outstanding = 0;
  ready = false;
  peer = '';
  private readonly session: http2.ClientHttp2Session;

  constructor(
    readonly pool: string,
    socket: tls.TLSSocket,
    private readonly onClosed: (c: H2TunnelConnection) => void,
    /** No response head within this long → 504 and the stream is cancelled. */
    readonly responseTimeoutMs: number = 60_000,
  ) {
    this.id = `${process.pid}-${++nextConnId}`;
    this.session = http2.connect('https://warpgate.invalid', {
      createConnection: () => socket,
      settings: CLIENT_SETTINGS,
      // The peer is authenticated by mTLS; its limits are explicit below.
      maxSessionMemory: 64,
    });
    this.session.on('connect', () => this.session.setLocalWindowSize(CONNECTION_WINDOW));
    this.session.on('error', () => this.session.destroy());
    this.session.on('goaway', () => {
      // RFC 9113 §6.8: the peer is going away; new streams go elsewhere.
      this.ready = false;
    });
    this.session.on('close', () => {
      this.ready = false;
      this.onClosed(this);
    });
    socket.on('error', () => this.session.destroy());
  }

  /** Sends the hello; resolves with the Warpgate's reply, rejects on timeout or refusal. */
  hello(h: TunnelHello): Promise<TunnelHelloReply> {
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': Tunnel.controlMethod, ':path': Tunnel.controlPath, 'content-type': 'application/json' });
      const timer = setTimeout(() => {
        req.close(NGHTTP2_CANCEL);
        reject(new Error('tunnel: hello timed out'));
      }, HELLO_TIMEOUT_MS);
      timer.unref();
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        clearTimeout(timer);
        if (status !== 200) return reject(new Error(`tunnel: hello refused with ${status}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelHelloReply);
        } catch (e) {
          reject(e as Error);
        }
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(JSON.stringify(h));
    });
  }

  open(head: RequestHead, hasBody: boolean, sink: ResponseSink): TunnelStream {
    const h: http2.OutgoingHttpHeaders = {
      ':method': head.method,
      ':path': head.path,
      ':authority': head.authority,
      ':scheme': 'https',
    };
    const hs = head.headers;
    for (let i = 0; i < hs.length; i += 2) {
      const n = hs[i]!;
      const prev = h[n];
      if (prev === undefined) h[n] = hs[i + 1]!;
      else if (Array.isArray(prev)) prev.push(hs[i + 1]!);
      else h[n] = [prev as string, hs[i + 1]!];
    }
    this.outstanding++;
    let req: http2.ClientHttp2Stream;
    try {
      req = this.session.request(h, { endStream: !hasBody });
    } catch {
      this.outstanding--;
      queueMicrotask(() => sink.onError('MEZU_TUNNEL_FAILED'));
      return DEAD_STREAM;
    }
    return new H2Stream(this, req, sink);
  }

  streamDone(): void {
    this.outstanding--;
  }

  close(graceful: boolean): void {
    this.ready = false;
    if (graceful) this.session.close();
    else this.session.destroy();
  }
}

class H2Stream implements TunnelStream {
  private finished = false;
  private gotHead = false;

  constructor(
    private readonly conn: H2TunnelConnection,
    private readonly req: http2.ClientHttp2Stream,
    private readonly sink: ResponseSink,
  ) {
    req.setTimeout(conn.responseTimeoutMs, () => {
      if (this.gotHead) return;
      this.finish('MEZU_UPSTREAM_TIMEOUT');
      req.close(NGHTTP2_CANCEL);
    });
    req.on('response', (headers) => {
      this.gotHead = true;
      req.setTimeout(0);
      const status = Number(headers[':status']);
      const flat: string[] = [];
      for (const k of Object.keys(headers)) {
        if (k.charCodeAt(0) === 0x3a) continue;
        const v = headers[k];
        if (Array.isArray(v)) for (const x of v) flat.push(k, x);
        else if (v !== undefined) flat.push(k, String(v));
      }
      sink.onHead(status, flat);
    });
    req.on('data', (c: Buffer) => sink.onData(c));
    req.on('end', () => this.finish(null));
    req.on('error', () => undefined);
    req.on('close', () => {
      if (this.finished) return;
      // A stream reset or a dropped connection: nothing more will come. (Replay of
      // refused streams, RFC 9113 §8.7, arrives with the fast-tunnel issue.)
      this.finish('MEZU_TUNNEL_FAILED');
    });
  }

  private finish(err: ErrorCode | null): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.streamDone();
    if (err === null) this.sink.onEnd();
    else this.sink.onError(err);
  }

  write(chunk: Buffer): boolean {
    return this.req.write(chunk);
  }
  onDrain(cb: () => void): void {
    this.req.once('drain', cb);
  }
  end(): void {
    this.req.end();
  }
  abort(): void {
    if (!this.finished) {
      this.finished = true;
      this.conn.streamDone();
    }
    this.req.close(NGHTTP2_CANCEL);
  }
  pause(): void {
    this.req.pause();
  }
  resume(): void {
    this.req.resume();
  }
}

const DEAD_STREAM: TunnelStream = {
  write: () => true,
  onDrain: () => undefined,
  end: () => undefined,
  abort: () => undefined,
  pause: () => undefined,
  resume: () => undefined,
};
