/**
 * A test-side TunnelRequest (src/tunnel/types.ts) for the tunnel tests
 * (connection, mtls, rotation, adversarial-client): what the front end's
 * EdgeRequest (src/front/request.ts) is to the tunnel, minus uWS.
 *
 * - HeadSource: writes a fixed head, given as a flat header list (pseudo-headers
 *   first), into the connection's HPACK encoder, on every `open` (a replay
 *   encodes it again on the other connection's encoder).
 * - ClientStreamSink: records what the edge's side of the stream delivered.
 * - The replay rule as EdgeRequest applies it: `send` opens the stream and,
 *   when the connection cannot take it, asks the pool registry for a replay
 *   (PoolRegistry.replay(r, false)); onRefused and onLost ask for one too
 *   (lost: true for onLost); when the registry says no, the request fails
 *   with MEZU_TUNNEL_FAILED. Nothing is replayed once `abort` was called (the
 *   client went away).
 */
import type { PoolRegistry } from '../../../../src/tunnel/pools.js';
import type { TunnelConnection, TunnelRequest } from '../../../../src/tunnel/types.js';
import type { H2Stream } from '../../../../wire/h2/connection.js';
import type { HpackEncoder } from '../../../../wire/h2/hpack.js';
import { Errors, type ErrorCode } from '../../../../src/errors/index.js';

export interface RecorderOptions {
  method?: string;
  path?: string;
  authority?: string;
  /** Regular fields after the pseudo-headers: flat [name, value, …], names lower-case. */
  fields?: string[];
  /** A body follows the head (the test writes it on `stream`). */
  hasBody?: boolean;
  /** The registry that replays a refused or lost request (null: never replayed, as with nowhere else to go). */
  registry?: PoolRegistry | null;
}

export class Recorder implements TunnelRequest {
  readonly method: string;
  readonly hasBody: boolean;
  /** The head as sent: [':method', …, ':path', …, fields…]. */
  readonly head: string[];
  conn: TunnelConnection | null = null;
  stream: H2Stream | null = null;
  replayed = false;
  aborted = false;
  /** How many times the head was written into an encoder (once per stream opened). */
  encodes = 0;

  heads = 0;
  status = 0;
  headers: string[] = [];
  body = '';
  bytes = 0;
  ends = 0;
  errors: ErrorCode[] = [];
  private readonly registry: PoolRegistry | null;
  private waiters: Array<() => void> = [];

  constructor(o: RecorderOptions = {}) {
    this.method = o.method ?? 'GET';
    this.hasBody = o.hasBody ?? false;
    this.registry = o.registry ?? null;
    this.head = [':method', this.method, ':scheme', 'https', ':authority', o.authority ?? 'localhost', ':path', o.path ?? '/', ...(o.fields ?? [])];
  }

  // ── HeadSource ──
  encodeHead(enc: HpackEncoder): void {
    this.encodes++;
    const h = this.head;
    for (let i = 0; i < h.length; i += 2) enc.field(h[i]!, h[i + 1]!);
  }

  // ── what the front end does with a request (src/front/request.ts forward, abort) ──

  /** Opens the stream on `conn`; when it cannot take it, replayed elsewhere or failed. True when a stream opened on `conn`. */
  send(conn: TunnelConnection): boolean {
    if (conn.open(this)) return true;
    if (!this.replay(false)) this.onError('MEZU_TUNNEL_FAILED');
    return false;
  }

  /** The client went away: the stream is cancelled and nothing is replayed any more. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.stream?.abort();
  }

  private replay(lost: boolean): boolean {
    return this.registry !== null && this.registry.replay(this, lost);
  }

  // ── ClientStreamSink ──
  onHead(status: number, headers: string[]): void {
    this.heads++;
    this.status = status;
    this.headers = headers;
  }
  onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.body += chunk.toString();
  }
  onEnd(): void {
    this.ends++;
    this.wake();
  }
  onError(code: ErrorCode): void {
    this.errors.push(code);
    this.wake();
  }
  onRefused(): void {
    if (this.aborted) return;
    if (!this.replay(false)) this.onError('MEZU_TUNNEL_FAILED');
  }
  onLost(): void {
    if (this.aborted) return;
    if (!this.replay(true)) this.onError('MEZU_TUNNEL_FAILED');
  }

  get settled(): boolean {
    return this.ends > 0 || this.errors.length > 0;
  }
  /** Resolves once the response ended or failed. */
  whenSettled(): Promise<void> {
    if (this.settled) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }
  /** The status the client gets: the response's, or the error's from the catalogue. */
  get clientStatus(): number {
    return this.errors.length > 0 ? Errors[this.errors[0]!].status : this.status;
  }
  /** The outcome as one string: the status, or the first error code. */
  get outcome(): string {
    return this.errors.length > 0 ? this.errors[0]! : String(this.status);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
