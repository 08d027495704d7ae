/**
 * The tunnel as the edge's request path sees it. Roles: the Warpgate dials
 * the edge over mTLS; on that connection the edge is the HTTP/2 client and
 * the Warpgate the HTTP/2 server (the lean codec of wire/h2 on both ends).
 */
import type { ClientStreamSink, H2Stream, HeadSource } from '../../wire/index.js';

/**
 * One request the edge forwards, as the tunnel sees it: it writes its own
 * head into the chosen connection's HPACK encoder (HeadSource), receives the
 * response as its HTTP/2 stream's sink (ClientStreamSink), and carries the
 * tunnel's per-request state — which connection, which stream, whether it
 * was replayed — so the tunnel makes no object of its own per request.
 */
export interface TunnelRequest extends HeadSource, ClientStreamSink {
  /** Upper-case method (replays are for idempotent methods only). */
  readonly method: string;
  /** A request body follows the head: the stream stays open for it, and the request is never replayed. */
  readonly hasBody: boolean;
  /** The connection the request went out on, set by `TunnelConnection.open`. */
  conn: TunnelConnection | null;
  /** Its HTTP/2 stream (null before `open`, or when the connection refused it). */
  stream: H2Stream | null;
  /** Replayed once already (RFC 9113 §8.7 allows a retry of what was not processed; we allow one). */
  replayed: boolean;
}

export interface TunnelConnection {
  readonly id: string;
  readonly pool: string;
  /** Streams opened and not yet finished. */
  readonly outstanding: number;
  /** True after the hello exchange and until the connection starts closing. */
  readonly ready: boolean;
  /** The Warpgate announced extended CONNECT (RFC 8441): WebSockets may be opened on this connection. */
  readonly extendedConnect: boolean;
  /**
   * The Warpgate's id from its hello reply ('' before): a Warpgate that dies
   * drops all its tunnels at once, so a lost request is replayed on another
   * Warpgate's connection when there is one (pools.ts pickOther).
   */
  peer?: string;
  /** Opens `r`'s stream here (sets `r.conn` and `r.stream`); false when this connection cannot take it. */
  open(r: TunnelRequest): boolean;
  /** Writes to the socket now what this turn queued (the codec otherwise flushes from a setImmediate). */
  flush(): void;
  /** graceful: stop new streams, let in-flight ones finish (GOAWAY). */
  close(graceful: boolean): void;
}
