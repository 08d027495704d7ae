#!/usr/bin/env node
/**
 * The demo origin: answers every request with JSON listing the method, the
 * path and every `x-mezu-*` header it received, so a user sees exactly what
 * their application would get. With `--record`, it also keeps the requests it
 * received, readable directly (not through the edge) at `GET /__origin/requests`
 * and clearable with `DELETE /__origin/requests`: the integration tests' canary.
 * A request is recorded as soon as its head arrives (`complete` turns true when
 * its body has been read, `aborted` when the connection went away first), so a
 * request that was forwarded but never finished is still seen.
 *
 * `?status=204|304` answers that status with no body; `?delay=MS` answers after MS milliseconds; `?bytes=N` answers with N bytes of
 * application/octet-stream, streamed with backpressure (never more than one
 * 64 KiB chunk held).
 */
import { parseArgs } from 'node:util';
import { loadUws, type HttpResponse } from '../native/uws.js';

interface Seen {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string[]>;
  bodyBytes: number;
  /** The whole body was read (or there was none). */
  complete: boolean;
  /** The connection went away before the answer was sent. */
  aborted: boolean;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x62);
const MAX_BYTES = 1 << 30;

/** Streams `total` bytes one CHUNK at a time, resuming from onWritable. */
function streamBytes(res: HttpResponse, total: number, isAborted: () => boolean): void {
  let sent = 0;
  const pump = (): boolean => {
    for (;;) {
      if (isAborted()) return true;
      const start = sent;
      const base = res.getWriteOffset();
      const [ok, done] = res.tryEnd(CHUNK.subarray(0, Math.min(CHUNK.length, total - start)), total);
      if (done) return true;
      if (!ok) {
        // The socket took part of the chunk (offset - base bytes); the content is constant, so go on from there.
        res.onWritable((offset) => {
          sent = start + (offset - base);
          return pump();
        });
        return false;
      }
      sent = start + Math.min(CHUNK.length, total - start);
    }
  };
  res.cork(() => {
    res.writeHeader('content-type', 'application/octet-stream');
    pump();
  });
}

export function startDemoOrigin(host: string, port: number, record: boolean): Promise<number> {
  const uws = loadUws();
  const seen: Seen[] = [];
  const app = uws.App();
  app.any('/*', (res, req) => {
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    const query = req.getQuery() ?? '';
    const headers: Record<string, string[]> = {};
    req.forEach((k, v) => {
      (headers[k] ??= []).push(v);
    });
    if (record && path === '/__origin/requests') {
      if (method === 'DELETE') seen.length = 0;
      res.writeHeader('content-type', 'application/json').end(JSON.stringify(seen));
      return;
    }
    if (record && path.startsWith('/__origin/')) {
      res.writeStatus('404 Not Found').end();
      return;
    }
    const entry: Seen = { method, path, query, headers, bodyBytes: 0, complete: false, aborted: false };
    if (record) {
      seen.push(entry);
      if (seen.length > 10_000) seen.shift();
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      entry.aborted = true;
    });
    let bodyBytes = 0;
    const finish = () => {
      entry.complete = true;
      if (aborted) return;
      const mezu: Record<string, string | string[]> = {};
      for (const k of Object.keys(headers)) if (k.startsWith('x-mezu-')) mezu[k] = headers[k]!.length === 1 ? headers[k]![0]! : headers[k]!;
      const slow = /(?:^|&)delay=(\d+)/.exec(query);
      const big = /(?:^|&)bytes=(\d+)/.exec(query);
      const bodiless = /(?:^|&)status=(204|304)(?:&|$)/.exec(query);
      const reply = () => {
        if (aborted) return;
        if (big) return streamBytes(res, Math.min(Number(big[1]), MAX_BYTES), () => aborted);
        // No content by definition (RFC 9110 §15.3.5, §15.4.5): what a proxy must pass on without a body.
        if (bodiless) return res.cork(() => res.writeStatus(bodiless[1] === '204' ? '204 No Content' : '304 Not Modified').endWithoutBody());
        res.cork(() => {
          res.writeHeader('content-type', 'application/json');
          res.end(JSON.stringify({ method, path, query, bodyBytes, identity: mezu }));
        });
      };
      if (slow) setTimeout(reply, Math.min(Number(slow[1]), 120_000));
      else reply();
    };
    const hasBody = headers['content-length'] !== undefined && headers['content-length'][0] !== '0' || headers['transfer-encoding'] !== undefined;
    if (!hasBody) return finish();
    res.onData((chunk, isLast) => {
      bodyBytes += chunk.byteLength;
      entry.bodyBytes = bodyBytes;
      if (isLast) finish();
    });
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (!s) return reject(new Error(`demo-origin: cannot listen on ${host}:${port}`));
      resolve(uws.us_socket_local_port(s));
    });
  });
}

if (require.main === module) {
  let v: { host?: string; port?: string; record?: boolean };
  try {
    v = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, record: { type: 'boolean' } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`demo-origin: ${(err as Error).message}\nusage: demo-origin [--host 127.0.0.1] [--port 3000] [--record]\n`);
    process.exit(2);
  }
  startDemoOrigin(v.host ?? '127.0.0.1', Number(v.port ?? '3000'), v.record ?? false).then(
    (port) => process.stdout.write(JSON.stringify({ event: 'ready', port }) + '\n'),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
