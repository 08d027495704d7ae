/**
 * The Warpgate's hot path on the lean codec: one `LeanForward` per request,
 * which is both the tunnel stream's request sink and the origin request's
 * response sink (no per-request closures; one microtask per origin read
 * coalesces each response head with an end that arrives in the same read).
 */
import type { H2Stream, ServerStreamSink } from '../wire/index.js';
import { IdentityHeader, Tunnel, isReservedHeader } from '../wire/index.js';
import { Errors, errorBody, type ErrorCode } from '../src/errors/index.js';
import type { AssertionVerifier } from '../wire/index.js';
import type { OriginClient, OriginRequest, OriginSink, OriginErrorCode } from './origin/client.js';

export class LeanForwarder {
  constructor(
    private readonly origin: OriginClient,
    private readonly verifier: AssertionVerifier,
    private readonly log: (m: string) => void,
  ) {}

  /** A request stream from the edge (pseudo-headers included in `headers`). */
  handle(stream: H2Stream, headers: string[], endStream: boolean): void {
    let method = '';
    let path = '';
    let authority = '';
    let project: string | null = null;
    let assertion: string | null = null;
    let requestId = '';
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      const v = headers[i + 1]!;
      if (n.charCodeAt(0) === 0x3a) {
        if (n === ':method') method = v;
        else if (n === ':path') path = v;
        else if (n === ':authority') authority = v;
        continue;
      }
      if (isReservedHeader(n)) {
        // Read what the edge set; every reserved spelling is dropped from what the origin gets.
        if (n === Tunnel.projectHeader) project = v;
        else if (n === IdentityHeader.assertion) assertion = assertion === null ? v : '\u0000duplicate';
        else if (n === IdentityHeader.requestId) requestId = v;
        continue;
      }
      if (n === 'expect') continue;
      out.push(n, v);
    }
    if (project === null || path.charCodeAt(0) !== 0x2f) return refuse(stream, 'MEZU_ASSERTION_INVALID');
    // The identity fields and the assertion, serialized once per assertion by the verifier.
    let lines: string | undefined;
    if (assertion !== null) {
      const v = this.verifier.verify(assertion, project);
      if (!v.ok) {
        this.log(`warpgate: refused request ${requestId}: assertion ${v.reason}`);
        return refuse(stream, 'MEZU_ASSERTION_INVALID');
      }
      lines = v.lines;
    }
    out.push('host', authority);
    if (requestId !== '') out.push(IdentityHeader.requestId, requestId);
    const f = new LeanForward(stream, requestId, this.log);
    stream.reqSink = new TunnelSide(f);
    // Every field came out of the tunnel's HPACK decoder, which refused forbidden names and values
    // (RFC 9113 §8.2.1): the origin head is not scanned for them again.
    f.req = this.origin.request({ method, path, headers: out, hasBody: !endStream, checked: true, lines }, f);
    if (!endStream) f.req.onDrain = () => stream.resume();
  }
}

/** Origin response → tunnel stream. */
class LeanForward implements OriginSink {
  req: OriginRequest | null = null;
  headStatus = 0;
  headHeaders: string[] | null = null;
  headSent = false;
  finished = false;
  /** The edge reset the stream while the origin request ran: its end frees the stream's slot. */
  cancelled = false;

  constructor(
    readonly stream: H2Stream,
    readonly requestId: string,
    readonly log: (m: string) => void,
  ) {}

  onHead(status: number, headers: string[]): void {
    this.headStatus = status;
    this.headHeaders = headers;
    // Coalesce with an end arriving in the same read: one HEADERS frame with END_STREAM. One
    // microtask for all heads of this read, not a closure per response.
    pendingHeads.push(this);
    if (pendingHeads.length === 1) queueMicrotask(flushPendingHeads);
  }
  sendHead(end: boolean): void {
    if (this.headSent || this.finished || this.headHeaders === null) return;
    this.headSent = true;
    this.stream.respondStatus(this.headStatus, this.headHeaders, end);
  }
  onData(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.sendHead(false);
    const ok = this.stream.write(chunk);
    if (!ok) this.stream.onDrain(() => this.req?.resume());
    return ok;
  }
  onEnd(): void {
    if (this.cancelled) return this.stream.release(); // drained: the origin connection is kept
    if (this.finished) return;
    if (!this.headSent) {
      this.sendHead(true);
      this.finished = true;
    } else {
      this.finished = true;
      this.stream.end();
    }
  }
  onError(code: OriginErrorCode, detail: string): void {
    if (this.cancelled) return this.stream.release(); // not drained in time: the origin connection was closed
    if (this.finished) return;
    this.finished = true;
    this.log(`warpgate: ${code} for request ${this.requestId}: ${detail}`);
    if (!this.headSent) refuse(this.stream, code);
    // The head is out: a reset is the only honest signal (the edge cuts the client).
    else this.stream.abort();
  }
}

/** Responses whose head waits for the end of the current read (LeanForward.onHead). */
const pendingHeads: LeanForward[] = [];
function flushPendingHeads(): void {
  for (let i = 0; i < pendingHeads.length; i++) pendingHeads[i]!.sendHead(false);
  pendingHeads.length = 0;
}

/** Tunnel stream (request body, resets) → origin request. */
class TunnelSide implements ServerStreamSink {
  constructor(private readonly f: LeanForward) {}
  onData(chunk: Buffer): void {
    const req = this.f.req;
    if (req !== null && !req.write(chunk)) this.f.stream.pause();
  }
  onEnd(): void {
    this.f.req?.end();
  }
  onReset(): boolean {
    // The edge cancelled (client gone). A request still waiting for a connection is dropped; one
    // whose response is under way is drained to keep its keep-alive connection (closing it
    // would cost a connect and a TIME_WAIT socket per cancelled request under an abort storm),
    // for at most the origin client's abandon grace. Until then the stream holds its slot.
    const f = this.f;
    f.finished = true;
    if (f.req === null || !f.req.abandon()) return false;
    f.cancelled = true;
    return true;
  }
}

function refuse(stream: H2Stream, code: ErrorCode): void {
  const head = [':status', String(Errors[code].status), 'content-type', 'application/json', 'cache-control', 'no-store'];
  // Saturation, not failure: the client may come back in a moment (RFC 9110 §10.2.3).
  if (code === 'MEZU_ORIGIN_BUSY') head.push('retry-after', '1');
  stream.respond(head, false);
  stream.end(Buffer.from(errorBody(code)));
}
