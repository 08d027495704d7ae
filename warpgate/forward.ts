/**
 * Warpgate → origin: keep-alive HTTP/1.1 through an undici Pool. Responses
 * stream back into the tunnel stream with backpressure (pipeline).
 * Origin down → 502; no response head within the timeout → 504; a failure
 * after the head was sent resets the stream (the edge then cuts the client).
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { constants as h2c } from 'node:http2';
import { pipeline, PassThrough } from 'node:stream';
import { IdentityHeader, Tunnel, isReservedHeader } from '../src/contract/index.js';
import { Errors, errorBody, type ErrorCode } from '../src/errors/index.js';
import type { AssertionVerifier } from './verify.js';

/** Hop-by-hop response headers HTTP/2 forbids (RFC 9113 §8.2.2). */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export interface OriginOptions {
  origin: string;
  connections: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export class OriginForwarder {
  private readonly pool: Pool;
  constructor(
    opts: OriginOptions,
    private readonly verifier: AssertionVerifier,
    private readonly log: (m: string) => void,
  ) {
    this.pool = new Pool(opts.origin, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
    });
  }

  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const method = String(headers[':method']);
    const path = String(headers[':path']);
    const project = headers[Tunnel.projectHeader];
    const assertion = headers[IdentityHeader.assertion];
    const requestId = headers[IdentityHeader.requestId];
    if (typeof project !== 'string' || typeof path !== 'string' || path.charCodeAt(0) !== 0x2f) return fail(stream, 'MEZU_ASSERTION_INVALID');

    let identity: readonly string[] | null = null;
    if (assertion !== undefined) {
      if (typeof assertion !== 'string') return fail(stream, 'MEZU_ASSERTION_INVALID');
      const v = this.verifier.verify(assertion, project);
      if (!v.ok) {
        this.log(`warpgate: refused request ${String(requestId)}: assertion ${v.reason}`);
        return fail(stream, 'MEZU_ASSERTION_INVALID');
      }
      identity = v.identity;
    }

    // Every reserved spelling goes; identity comes only from the verified claims.
    const out: Record<string, string | string[]> = {};
    for (const k of Object.keys(headers)) {
      if (k.charCodeAt(0) === 0x3a || k === 'expect' || isReservedHeader(k)) continue;
      const v = headers[k];
      if (v !== undefined) out[k] = v as string | string[];
    }
    out['host'] = String(headers[':authority'] ?? '');
    if (typeof requestId === 'string') out[IdentityHeader.requestId] = requestId;
    if (identity !== null) {
      for (let i = 0; i < identity.length; i += 2) out[identity[i]!] = identity[i + 1]!;
      out[IdentityHeader.assertion] = assertion as string;
    }

    const hasBody = !stream.endAfterHeaders;
    const ac = new AbortController();
    let responded = false;
    stream.on('close', () => {
      if (!responded || !stream.writableFinished) ac.abort();
    });
    // undici destroys a request body stream once it has sent it; handing it the
    // tunnel stream itself would reset the stream before the response could
    // be written back. A pass-through (pipe, which never destroys its source)
    // keeps backpressure and leaves the tunnel stream ours.
    let body: PassThrough | null = null;
    if (hasBody) {
      body = new PassThrough({ highWaterMark: 64 * 1024 });
      stream.pipe(body);
    }
    this.pool
      .request({ method: method as 'GET', path, headers: out, body, signal: ac.signal })
      .then(
        (r) => {
          responded = true;
          if (stream.destroyed) {
            r.body.destroy();
            return;
          }
          const rh: Record<string, string | string[] | number> = { ':status': r.statusCode };
          for (const k of Object.keys(r.headers)) {
            if (DROP_RESPONSE.has(k)) continue;
            const v = r.headers[k];
            if (v !== undefined) rh[k] = v;
          }
          try {
            stream.respond(rh, { endStream: method === 'HEAD' || r.statusCode === 204 || r.statusCode === 304 });
          } catch {
            r.body.destroy();
            stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
            return;
          }
          if (method === 'HEAD' || r.statusCode === 204 || r.statusCode === 304) {
            r.body.resume();
            return;
          }
          pipeline(r.body, stream, (err) => {
            if (err && !ac.signal.aborted) {
              // The head is already on its way: the only honest signal left is a reset (the edge cuts the client).
              const code: ErrorCode = 'MEZU_ORIGIN_FAILED';
              this.log(`warpgate: ${code} for request ${String(requestId)}: ${err.message}`);
              if (!stream.destroyed) stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
            }
          });
        },
        (err: Error & { code?: string }) => {
          if (stream.destroyed || ac.signal.aborted) return;
          const timeout = err instanceof undiciErrors.HeadersTimeoutError || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_CONNECT_TIMEOUT';
          this.log(`warpgate: origin ${timeout ? 'timeout' : 'failure'} for request ${String(requestId)}: ${err.code ?? ''} ${err.message}`);
          fail(stream, timeout ? 'MEZU_ORIGIN_TIMEOUT' : 'MEZU_ORIGIN_UNREACHABLE');
        },
      );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function fail(stream: ServerHttp2Stream, code: ErrorCode): void {
  if (stream.destroyed || stream.headersSent) {
    if (!stream.destroyed) stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  try {
    stream.respond({ ':status': Errors[code].status, 'content-type': 'application/json', 'cache-control': 'no-store' });
    stream.end(errorBody(code));
  } catch {
    stream.destroy();
  }
  // Drain any request body we are not going to use.
  stream.resume();
}
