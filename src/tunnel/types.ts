/**
 * The tunnel interface the edge uses. The reference implementation speaks
 * HTTP/2 through node:http2 (`h2-reference.ts`); the fast-tunnel issue
 * replaces it with a lean codec implementing these same types.
 *
 * Roles: the Warpgate dials the edge over mTLS; on that connection the edge
 * is the HTTP/2 client and the Warpgate the HTTP/2 server.
 */
import type { ErrorCode } from '../errors/index.js';

export interface RequestHead {
  /** Upper-case method. */
  method: string;
  /** Normalized path plus `?query` when there is one: exactly what was authorized. */
  path: string;
  authority: string;
  /** Flat [name, value, name, value, …], names lower-case, no hop-by-hop headers. */
  headers: string[];
}

/** Callbacks a stream delivers the response to. */
export interface ResponseSink {
  onHead(status: number, headers: string[]): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  /** The stream failed; `code` says how (502/504 family). Called at most once, never after onEnd. */
  onError(code: ErrorCode): void;
}

export interface TunnelStream {
  /** Writes request body; false means buffered past the high-water mark: wait for onDrain. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(): void;
  /** Cancels the stream (the client went away). */
  abort(): void;
  /** Stops / restarts response body delivery (client backpressure). */
  pause(): void;
  resume(): void;
}

export interface TunnelConnection {
  readonly id: string;
  readonly pool: string;
  /** Streams opened and not yet finished. */
  readonly outstanding: number;
  /** True after the hello exchange and until the connection starts closing. */
  readonly ready: boolean;
  /**
   * The Warpgate's id from its hello reply ('' before): a Warpgate that dies
   * drops all its tunnels at once, so a lost request is replayed on another
   * Warpgate's connection when there is one (pools.ts pickOther).
   */
  peer?: string;
  open(head: RequestHead, hasBody: boolean, sink: ResponseSink): TunnelStream;
  /** graceful: stop new streams, let in-flight ones finish (GOAWAY). */
  close(graceful: boolean): void;
}
