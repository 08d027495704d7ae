/**
 * The tunnel's hot path, edge side: one mTLS connection from a Warpgate,
 * spoken with the lean HTTP/2 codec (wire/h2) in the client role. A request
 * writes its own head into this connection's HPACK encoder and is the sink of
 * its stream: nothing is allocated here per request but the stream itself.
 */
import type { Duplex } from 'node:stream';
import { H2Connection, Tunnel, type ClientStreamSink, type H2Limits, type TunnelHello, type TunnelHelloReply } from '../../wire/index.js';
import type { TunnelConnection as Connection, TunnelRequest } from './types.js';

let nextConnId = 0;

/** A hello not answered within this long closes the connection. */
export const HELLO_TIMEOUT_MS = 5_000;

/**
 * HPACK encoder settings for the edge → Warpgate direction. Per-request values
 * (`x-mezu-request-id`, `traceparent`, `:path`…) are not indexed, so they never evict the
 * session's assertion, which is sent once per connection and then costs one
 * byte per request. No Huffman coding: the tunnel is CPU-bound, not
 * bandwidth-bound (loopback or a LAN), and raw literals cost the encoder a
 * copy and the Warpgate's decoder a slice instead of a bit-by-bit code each.
 */
const TUNNEL_NO_INDEX = [':path', 'age', 'content-length', 'etag', 'if-modified-since', 'if-none-match', 'location', 'x-mezu-request-id', 'traceparent', 'x-forwarded-for'];

export class TunnelConnection implements Connection {
  readonly id: string;
  ready = false;
  peer = '';
  readonly h2: H2Connection;

  constructor(
    readonly pool: string,
    socket: Duplex,
    limits: Partial<H2Limits>,
    onClosed: (c: TunnelConnection, reason: string) => void,
  ) {
    this.id = `${process.pid}-l${++nextConnId}`;
    this.h2 = new H2Connection(socket, 'client', limits, { noIndex: TUNNEL_NO_INDEX, huffman: false });
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

  get extendedConnect(): boolean {
    return this.h2.extendedConnect;
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

  open(r: TunnelRequest): boolean {
    r.conn = this;
    r.stream = this.h2.request(r, !r.hasBody, r);
    return r.stream !== null;
  }

  flush(): void {
    this.h2.flushNow();
  }

  close(graceful: boolean): void {
    this.ready = false;
    if (graceful) this.h2.close();
    else this.h2.destroy('closed by the edge');
  }
}
