/**
 * Stand-ins for uWebSockets.js's request and response objects, for running the
 * edge's handler in process (bench/micro.ts, bench/edge-path.ts): a browser's
 * protected GET, and a response that counts what a real one would send and
 * reports a 200 when it ends. Strings and ArrayBuffers are made per call, as
 * uWS makes them.
 */
import { Duplex } from 'node:stream';

/** Stand-in for uWS's HttpRequest: a GET of /api/v1/items?page=2 with the given fields. */
export class FakeRequest {
  private readonly raw: Buffer[];
  constructor(private readonly headers: readonly string[]) {
    this.raw = headers.map((h) => Buffer.from(h, 'latin1'));
  }
  getCaseSensitiveMethod(): string {
    return 'GET';
  }
  getMethod(): string {
    return 'get';
  }
  getUrl(): string {
    return '/api/v1/items';
  }
  getQuery(): string | undefined {
    return 'page=2';
  }
  getHeader(name: string): string {
    for (let i = 0; i < this.headers.length; i += 2) if (this.headers[i] === name) return this.headers[i + 1]!;
    return '';
  }
  forEach(cb: (k: string, v: string) => void): void {
    // uWS makes new flat strings from its buffer for every request (their hashes not yet computed): so do we.
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) cb(raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1'));
  }
}

const PEER_ADDRESS = new TextEncoder().encode('203.0.113.7');
const PEER_ADDRESS_BINARY = new Uint8Array([203, 0, 113, 7]);

/** Stand-in for uWS's HttpResponse: counts what a real one would send; `done(ok)` when it ends (ok: a 200). */
export class FakeResponse {
  status = '';
  bytes = 0;
  ended = false;
  constructor(private readonly done: (ok: boolean) => void) {}
  cork(cb: () => void): this {
    cb();
    return this;
  }
  writeStatus(s: string): this {
    this.status = s;
    return this;
  }
  writeHeader(k: string, v: string): this {
    this.bytes += k.length + v.length;
    return this;
  }
  write(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return true;
  }
  getWriteOffset(): number {
    return this.bytes;
  }
  tryEnd(chunk: Buffer, _total: number): [boolean, boolean] {
    this.bytes += chunk.length;
    this.finish();
    return [true, true];
  }
  end(body?: string | Buffer): this {
    if (body !== undefined) this.bytes += body.length;
    this.finish();
    return this;
  }
  endWithoutBody(): this {
    this.finish();
    return this;
  }
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.done(this.status.startsWith('200'));
  }
  onAborted(_cb: () => void): this {
    return this;
  }
  onWritable(_cb: (offset: number) => boolean): this {
    return this;
  }
  onData(_cb: (ab: ArrayBuffer, last: boolean) => void): this {
    return this;
  }
  /** uWS hands over a fresh ArrayBuffer per call. */
  getRemoteAddress(): ArrayBuffer {
    return PEER_ADDRESS_BINARY.slice().buffer;
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return PEER_ADDRESS.slice().buffer;
  }
  close(): this {
    this.finish();
    return this;
  }
  pause(): void {}
  resume(): void {}
}

/** One end of an in-memory socket pair; bytes reach the peer on the next tick, as from a real socket. */
export class MemSocket extends Duplex {
  peer: MemSocket | null = null;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const p = this.peer;
    if (p !== null) process.nextTick(deliver, p, chunk);
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    const p = this.peer;
    if (p !== null) process.nextTick(deliver, p, null);
    cb();
  }
}
function deliver(to: MemSocket, chunk: Buffer | null): void {
  if (!to.destroyed) to.push(chunk);
}
