#!/usr/bin/env node
/**
 * The bench's origin (a child process): the budgets' reference origin
 * (docs/ARCHITECTURE.md, "Budgets"), a uWS server answering with a fixed
 * ~100-byte JSON body, plus what the demo origin does not do and the bench
 * needs:
 *
 *   GET  …/echo          JSON of the `x-mezu-*` headers received (pre-flight: the identity arrived)
 *   GET  …/big?bytes=N   N bytes of application/octet-stream (N ≤ 1 GiB), streamed with
 *                        tryEnd/onWritable so the origin never holds more than one chunk
 *   GET  …/slow?delay=MS the fixed body after MS milliseconds (1 ≤ MS ≤ 60000): a slow endpoint
 *                        whose requests a hostile client can open and abort mid-flight
 *   GET  …/seq?n=N       the fixed body with `x-bench-seq: N`, so a client that tags each request
 *                        can check that answers come back in order (pipelining) and belong to it
 *   PUT/POST/PATCH …     reads the body and answers {"bytes":<count>}
 *   anything else        the fixed ~100-byte JSON body
 *
 * The query is read only on the paths that use one (…/big, …/slow, …/seq): the
 * hot path (every other GET) stays one path check and one answer, as before.
 *
 * The fixed body is the same for public and protected routes, so the two runs
 * differ only by what the edge does (the demo origin echoes the identity, which
 * made the protected response 861 B instead of 103 B in the first bench).
 *
 *   node dist/bench/bench-origin.js [--host 127.0.0.1] [--port 0]
 * prints {"event":"ready","port":N} on stdout.
 */
import { parseArgs } from 'node:util';
import { loadUws, type HttpResponse } from '../native/uws.js';

/** ~100 bytes, as the budgets' reference origin. */
export const FIXED_BODY = Buffer.from(
  JSON.stringify({ ok: true, items: [{ id: 1, name: 'alpha' }, { id: 2, name: 'beta' }], total: 2, page: 1, of: 1, pad: 'xxxxxx' }),
);
const MAX_BIG = 1 << 30;
/** Longest `delay` of …/slow: long enough for any abort test, short enough that nothing hangs a run. */
const MAX_DELAY_MS = 60_000;
/** One chunk handed to uWS at a time (then onWritable); its content does not matter. */
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

/** Streams `total` bytes: one CHUNK per tryEnd, retrying the unsent tail from onWritable. */
class BigBody {
  sent = 0;
  aborted = false;
  /** Slice waiting for the socket and the write offset it started at, or null. */
  pending: Buffer | null = null;
  pendingBase = 0;

  constructor(
    readonly res: HttpResponse,
    readonly total: number,
  ) {}

  /** Writes until the socket backs up or the body is done. */
  pump(): void {
    const res = this.res;
    while (!this.aborted && this.sent < this.total) {
      const n = Math.min(CHUNK.length, this.total - this.sent);
      const chunk = CHUNK.subarray(0, n);
      const base = res.getWriteOffset();
      const [ok, done] = res.tryEnd(chunk, this.total);
      this.sent += n;
      if (done) return;
      if (!ok) {
        this.pending = chunk;
        this.pendingBase = base;
        res.onWritable((offset) => this.writable(offset));
        return;
      }
    }
  }

  writable(offset: number): boolean {
    if (this.aborted) return true;
    const p = this.pending;
    if (p !== null) {
      const [ok, done] = this.res.tryEnd(p.subarray(offset - this.pendingBase), this.total);
      if (done) return true;
      if (!ok) return false;
      this.pending = null;
    }
    this.pump();
    return true;
  }
}

export function startBenchOrigin(host: string, port: number): Promise<number> {
  const uws = loadUws();
  const app = uws.App();
  app.any('/*', (res, req) => {
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    if (method === 'PUT' || method === 'POST' || method === 'PATCH') {
      let bytes = 0;
      let aborted = false;
      res.onAborted(() => (aborted = true));
      res.onData((chunk, isLast) => {
        bytes += chunk.byteLength;
        if (isLast && !aborted) {
          res.cork(() => {
            res.writeHeader('content-type', 'application/json');
            res.end(`{"bytes":${bytes}}`);
          });
        }
      });
      return;
    }
    if (path.endsWith('/echo')) {
      const mezu: Record<string, string> = {};
      req.forEach((k, v) => {
        if (k.startsWith('x-mezu-') && k !== 'x-mezu-assertion') mezu[k] = v;
      });
      res.writeHeader('content-type', 'application/json').end(JSON.stringify({ path, identity: mezu }));
      return;
    }
    if (path.endsWith('/slow')) {
      const delay = Number(req.getQuery('delay') ?? '');
      if (!Number.isInteger(delay) || delay < 1 || delay > MAX_DELAY_MS) {
        res.writeStatus('400 Bad Request').end(`delay must be 1..${MAX_DELAY_MS} (ms)\n`);
        return;
      }
      // Answered later, so uWS needs onAborted (a response used after its client left is a crash)
      // and cork (a write outside a uWS callback would go out unbatched).
      let aborted = false;
      const timer = setTimeout(() => {
        if (!aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end(FIXED_BODY));
      }, delay);
      res.onAborted(() => {
        aborted = true;
        clearTimeout(timer);
      });
      return;
    }
    if (path.endsWith('/seq')) {
      res.writeHeader('content-type', 'application/json').writeHeader('x-bench-seq', req.getQuery('n') ?? '').end(FIXED_BODY);
      return;
    }
    if (path.endsWith('/big')) {
      const m = /(?:^|&)bytes=(\d+)/.exec(req.getQuery() ?? '');
      const total = m === null ? 0 : Number(m[1]);
      if (!Number.isSafeInteger(total) || total <= 0 || total > MAX_BIG) {
        res.writeStatus('400 Bad Request').end('bytes must be 1..1073741824\n');
        return;
      }
      const body = new BigBody(res, total);
      res.onAborted(() => (body.aborted = true));
      res.writeHeader('content-type', 'application/octet-stream');
      body.pump();
      return;
    }
    res.writeHeader('content-type', 'application/json').end(FIXED_BODY);
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (!s) return reject(new Error(`bench-origin: cannot listen on ${host}:${port}`));
      resolve(uws.us_socket_local_port(s));
    });
  });
}

if (require.main === module) {
  let v: { host?: string; port?: string };
  try {
    v = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`bench-origin: ${(err as Error).message}\nusage: bench-origin [--host 127.0.0.1] [--port 0]\n`);
    process.exit(2);
  }
  startBenchOrigin(v.host ?? '127.0.0.1', Number(v.port ?? '0')).then(
    (port) => process.stdout.write(JSON.stringify({ event: 'ready', port, fixedBodyBytes: FIXED_BODY.length }) + '\n'),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
