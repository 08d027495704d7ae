/** A ResponseSink that records what the edge's side of a tunnel stream delivered (lean and adversarial-client tests). */
import type { ResponseSink } from '../../../../src/tunnel/types.js';
import { Errors, type ErrorCode } from '../../../../src/errors/index.js';

export class Recorder implements ResponseSink {
  heads = 0;
  status = 0;
  headers: string[] = [];
  body = '';
  bytes = 0;
  ends = 0;
  errors: ErrorCode[] = [];
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
  }
  onError(code: ErrorCode): void {
    this.errors.push(code);
  }
  get settled(): boolean {
    return this.ends > 0 || this.errors.length > 0;
  }
  /** The status the client gets: the response's, or the error's from the catalogue. */
  get clientStatus(): number {
    return this.errors.length > 0 ? Errors[this.errors[0]!].status : this.status;
  }
}
