/**
 * OriginClient against real origins on 127.0.0.1: node:http servers, a uWS
 * server, and raw TCP servers for what no well-behaved server sends
 * (malformed framing, stalls, closes at the worst moment).
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { loadUws } from '../../../../native/uws.js';
import { OriginClient, type OriginClientOptions, type OriginErrorCode, type OriginRequest, type OriginRequestHead } from '../../../../warpgate/origin/index.js';

// ── helpers ──

interface Result {
  status: number;
  headers: string[];
  body: Buffer;
  error: OriginErrorCode | null;
  detail: string;
  events: string[];
}

function header(r: Result, name: string): string | undefined {
  for (let i = 0; i < r.headers.length; i += 2) if (r.headers[i] === name) return r.headers[i + 1];
  return undefined;
}

/** Sends one request and collects the response; `body` chunks are written honouring backpressure. */
function send(client: OriginClient, head: Partial<OriginRequestHead> & { path: string }, body?: Buffer[]): Promise<Result> & { req: OriginRequest } {
  const r: Result = { status: -1, headers: [], body: Buffer.alloc(0), error: null, detail: '', events: [] };
  const chunks: Buffer[] = [];
  let req!: OriginRequest;
  const p = new Promise<Result>((resolve) => {
    req = client.request(
      { method: head.method ?? (body ? 'POST' : 'GET'), path: head.path, headers: head.headers ?? ['host', 'origin.test'], hasBody: head.hasBody ?? body !== undefined },
      {
        onHead(status, headers) {
          r.status = status;
          r.headers = headers;
          r.events.push('head');
        },
        onData(chunk) {
          chunks.push(chunk);
          if (r.events[r.events.length - 1] !== 'data') r.events.push('data');
          return true;
        },
        onEnd() {
          r.events.push('end');
          r.body = Buffer.concat(chunks);
          resolve(r);
        },
        onError(code, detail) {
          r.events.push('error');
          r.error = code;
          r.detail = detail;
          r.body = Buffer.concat(chunks);
          resolve(r);
        },
      },
    );
  });
  if (body !== undefined) void writeAll(req, body);
  return Object.assign(p, { req });
}

async function writeAll(req: OriginRequest, body: Buffer[]): Promise<void> {
  for (const chunk of body) {
    if (!req.write(chunk)) await new Promise<void>((resolve) => (req.onDrain = resolve));
  }
  req.end();
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function closeServer(server: net.Server, sockets?: Set<net.Socket>): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    (server as http.Server).closeAllConnections?.();
    if (sockets) for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node:http origin that counts its connections. */
async function nodeOrigin(t: ExecutionContext, handler: http.RequestListener, tune?: (s: http.Server) => void): Promise<{ server: http.Server; port: number; connections: () => number; sockets: Set<net.Socket> }> {
  const server = http.createServer(handler);
  tune?.(server);
  let n = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  t.teardown(() => closeServer(server));
  return { server, port, connections: () => n, sockets };
}

/**
 * A raw TCP origin: `answer` gets each request head (text up to the blank
 * line) with its index on the connection and writes whatever it likes.
 */
async function rawOrigin(t: ExecutionContext, answer: (sock: net.Socket, head: string, nth: number, conn: number) => void): Promise<{ server: net.Server; port: number; connections: () => number; closed: () => number }> {
  let conns = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    const conn = conns++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = '';
    let nth = 0;
    sock.on('close', () => closed++);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        answer(sock, head, nth++, conn);
      }
    });
  });
  const port = await listen(server);
  t.teardown(() => closeServer(server, sockets));
  return { server, port, connections: () => conns, closed: () => closed };
}

/** Every client and server is torn down through t.teardown, even when an assertion ends the test early (AVA 6 assertions throw). */
function client(t: ExecutionContext, port: number, opts: Partial<OriginClientOptions> = {}): OriginClient {
  const c = new OriginClient({ origin: `http://127.0.0.1:${port}`, connections: 4, ...opts });
  t.teardown(() => c.destroy());
  return c;
}

const sha = (b: Buffer | Buffer[]) => {
  const h = createHash('sha256');
  for (const c of Array.isArray(b) ? b : [b]) h.update(c);
  return h.digest('hex');
};

// ── node:http origins ──

test('content-length body; names lower-cased, hop-by-hop fields gone', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Seen-Host': req.headers.host ?? '', 'Content-Length': '5' });
    res.end('hello');
  });
  const c = client(t, o.port);
  const r = await send(c, { path: '/a' });
  t.is(r.error, null);
  t.is(r.status, 200);
  t.is(r.body.toString(), 'hello');
  t.is(header(r, 'content-type'), 'text/plain');
  t.is(header(r, 'x-seen-host'), 'origin.test');
  t.is(header(r, 'connection'), undefined);
  t.is(header(r, 'keep-alive'), undefined);
  t.deepEqual(r.events, ['head', 'data', 'end']);
  await c.close();
});

test('chunked body from node:http', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => {
    res.write('hello ');
    setTimeout(() => res.end('world'), 10);
  });
  const c = client(t, o.port);
  const r = await send(c, { path: '/' });
  t.is(r.body.toString(), 'hello world');
  t.is(header(r, 'transfer-encoding'), undefined);
  // Reused for the next one.
  t.is((await send(c, { path: '/' })).body.toString(), 'hello world');
  t.is(o.connections(), 1);
  await c.close();
});

test('chunk extensions are ignored and trailers discarded; the connection is reused', async (t) => {
  const o = await rawOrigin(t, (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n');
    sock.write('5;name=value;quoted="a b"\r\nhello\r\n');
    sock.write('6 ; ext\r\n world\r\n0;final=1\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n');
  });
  const c = client(t, o.port);
  for (let i = 0; i < 3; i++) {
    const r = await send(c, { path: '/' });
    t.is(r.error, null, r.detail);
    t.is(r.body.toString(), 'hello world');
    t.is(header(r, 'x-checksum'), undefined);
  }
  t.is(o.connections(), 1);
  await c.close();
});

test('close-delimited body ends at EOF and the connection is not reused', async (t) => {
  const o = await rawOrigin(t, (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ');
    setTimeout(() => sock.end('part two'), 20);
  });
  const c = client(t, o.port);
  const a = await send(c, { path: '/' });
  const b = await send(c, { path: '/' });
  t.is(a.body.toString(), 'part one, part two');
  t.is(b.body.toString(), 'part one, part two');
  t.is(o.connections(), 2);
  await c.close();
});

test('HEAD: no body read, even with a Content-Length', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    res.writeHead(200, { 'Content-Length': '11', 'Content-Type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const c = client(t, o.port, { connections: 1 });
  const h = await send(c, { method: 'HEAD', path: '/' });
  t.is(h.error, null, h.detail);
  t.is(h.status, 200);
  t.is(header(h, 'content-length'), '11');
  t.is(h.body.length, 0);
  t.deepEqual(h.events, ['head', 'end']);
  const g = await send(c, { path: '/' });
  t.is(g.body.toString(), 'hello world');
  await c.close();
});

test('204 and 304 have no body and keep the connection', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { ETag: '"v1"' }).end();
    else res.end('ok');
  });
  const c = client(t, o.port, { connections: 1 });
  const a = await send(c, { path: '/204' });
  const b = await send(c, { path: '/304' });
  const d = await send(c, { path: '/' });
  t.is(a.status, 204);
  t.is(b.status, 304);
  t.is(header(b, 'etag'), '"v1"');
  t.deepEqual(a.events, ['head', 'end']);
  t.deepEqual(b.events, ['head', 'end']);
  t.is(d.body.toString(), 'ok');
  t.is(o.connections(), 1);
  await c.close();
});

test('100 Continue and 103 Early Hints are skipped (node:http)', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => {
    res.writeContinue();
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => {
      setTimeout(() => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('final'), 10);
    });
  });
  const c = client(t, o.port, { connections: 1 });
  const r = await send(c, { path: '/' });
  t.is(r.status, 200);
  t.is(header(r, 'link'), undefined);
  t.is(r.body.toString(), 'final');
  t.deepEqual(r.events, ['head', 'data', 'end']);
  t.is((await send(c, { path: '/' })).status, 200);
  t.is(o.connections(), 1);
  await c.close();
});

test('interim responses in one write with the final one (raw)', async (t) => {
  const o = await rawOrigin(t, (sock) => {
    sock.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok');
  });
  const c = client(t, o.port);
  const r = await send(c, { path: '/' });
  t.is(r.status, 202);
  t.is(r.body.toString(), 'ok');
  await c.close();
});

test('connections are reused: sequential requests share one, concurrent ones stay within the pool', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const o = await nodeOrigin(t, (_req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      res.end('x');
    }, 2);
  });
  const c = client(t, o.port, { connections: 4 });
  for (let i = 0; i < 50; i++) t.is((await send(c, { path: `/${i}` })).body.toString(), 'x');
  t.is(o.connections(), 1);
  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => send(c, { path: `/c${i}` })));
  t.true(all.every((r) => r.error === null && r.body.toString() === 'x'));
  t.true(o.connections() <= 4, `${o.connections()} connections`);
  t.true(maxInFlight <= 4);
  t.is(c.stats().opened, o.connections());
  t.is(c.stats().busy, 0);
  await c.close();
});

test('origin closing idle keep-alive connections (node:http keepAliveTimeout) fails no request', async (t) => {
  const o = await nodeOrigin(t, 
    (_req, res) => res.end('ok'),
    (s) => {
      s.keepAliveTimeout = 100;
    },
  );
  const c = client(t, o.port, { connections: 2, keepAliveTimeoutMs: 60_000 });
  let failed = 0;
  for (let i = 0; i < 40; i++) {
    const batch = await Promise.all([send(c, { path: '/' }), send(c, { path: '/' })]);
    failed += batch.filter((r) => r.error !== null).length;
    await sleep((i * 37) % 160); // around and across the origin's 100 ms
  }
  t.is(failed, 0);
  await c.close();
});

test('origin closing idle connections without a Keep-Alive hint: detected while idle, none used', async (t) => {
  // Closes every connection 30 ms after its response, announcing nothing.
  const o = await rawOrigin(t, (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    setTimeout(() => sock.end(), 30);
  });
  const c = client(t, o.port, { connections: 1, keepAliveTimeoutMs: 60_000 });
  let failed = 0;
  for (let i = 0; i < 30; i++) {
    const r = await send(c, { path: '/' });
    if (r.error !== null) failed++;
    await sleep(i % 2 === 0 ? 60 : 0);
  }
  t.is(failed, 0);
  await c.close();
});

test('a request that meets a stale connection is replayed once on a fresh one (GET), never with a body', async (t) => {
  // Regression story: an origin closes an idle keep-alive connection at the
  // moment we write the next request on it; nothing was processed, yet the
  // request would fail with 502. RFC 9112 §9.3.1 allows the retry for
  // idempotent requests; we limit it to those without a body.
  const o = await rawOrigin(t, (sock, _head, nth) => {
    if (nth === 0) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else sock.destroy(); // second request on a connection: as if it had been closed while idle
  });
  const c = client(t, o.port, { connections: 1 });
  t.is((await send(c, { path: '/' })).error, null);
  const r = await send(c, { path: '/' });
  t.is(r.error, null, r.detail);
  t.is(r.body.toString(), 'ok');
  t.is(c.stats().retried, 1);
  const post = await send(c, { method: 'POST', path: '/' }, [Buffer.from('data')]);
  t.is(post.error, 'MEZU_ORIGIN_FAILED');
  t.is((await send(c, { path: '/' })).error, null); // a fresh connection, now idle
  const patch = await send(c, { method: 'PATCH', path: '/', hasBody: false });
  t.is(patch.error, 'MEZU_ORIGIN_FAILED', 'non-idempotent: not replayed');
  t.is(c.stats().retried, 1);
  await c.close();
});

test('a request failing on a fresh connection is not replayed', async (t) => {
  const o = await rawOrigin(t, (sock) => sock.destroy());
  const c = client(t, o.port, { connections: 1 });
  const r = await send(c, { path: '/' });
  t.is(r.error, 'MEZU_ORIGIN_FAILED');
  t.is(c.stats().retried, 0);
  t.is(o.connections(), 1);
  await c.close();
});

test('Connection: close and HTTP/1.0 without keep-alive are not reused', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/close') res.setHeader('Connection', 'close');
    res.end('bye');
  });
  const c = client(t, o.port, { connections: 1 });
  for (let i = 0; i < 3; i++) t.is((await send(c, { path: '/close' })).body.toString(), 'bye');
  t.is(o.connections(), 3);
  const raw = await rawOrigin(t, (sock) => sock.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const c2 = client(t, raw.port, { connections: 1 });
  for (let i = 0; i < 3; i++) t.is((await send(c2, { path: '/' })).body.toString(), 'ok');
  t.is(raw.connections(), 3);
  const ka = await rawOrigin(t, (sock) => sock.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok'));
  const c3 = client(t, ka.port, { connections: 1 });
  for (let i = 0; i < 3; i++) t.is((await send(c3, { path: '/' })).body.toString(), 'ok');
  t.is(ka.connections(), 1);
  await Promise.all([c.close(), c2.close(), c3.close()]);
});

test('10 MiB download read slowly: reading pauses, buffered bytes stay bounded', async (t) => {
  const TOTAL = 10 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) block[i] = (i * 31) & 0xff;
  let written = 0;
  let serverSawBackpressure = false;
  const o = await nodeOrigin(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': String(TOTAL) });
    const pump = () => {
      while (written < TOTAL) {
        written += CHUNK;
        if (!res.write(block)) {
          serverSawBackpressure = true;
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  const c = client(t, o.port, { connections: 1, bodyTimeoutMs: 2_000 });
  let received = 0;
  let sincePause = 0;
  let maxSincePause = 0;
  let paused = false;
  let maxAhead = 0;
  const h = createHash('sha256');
  const done = new Promise<OriginErrorCode | null>((resolve) => {
    const req = c.request(
      { method: 'GET', path: '/big', headers: ['host', 'x'], hasBody: false },
      {
        onHead() {},
        onData(chunk) {
          received += chunk.length;
          h.update(chunk);
          maxAhead = Math.max(maxAhead, written - received);
          if (paused) {
            sincePause += chunk.length;
            maxSincePause = Math.max(maxSincePause, sincePause);
            return false;
          }
          // Pause after every chunk; resume 2 ms later: a consumer far slower than loopback.
          paused = true;
          sincePause = 0;
          setTimeout(() => {
            paused = false;
            req.resume();
          }, 2);
          return false;
        },
        onEnd: () => resolve(null),
        onError: (code) => resolve(code),
      },
    );
  });
  t.is(await done, null);
  t.is(received, TOTAL);
  t.is(h.digest('hex'), sha(Array<Buffer>(TOTAL / CHUNK).fill(block)));
  // After onData said false, at most the rest of the current 64 KiB read arrives.
  t.true(maxSincePause <= 64 * 1024, `${maxSincePause} bytes after a pause`);
  // The origin was held back by TCP flow control: it never got far ahead of the reader.
  t.true(serverSawBackpressure);
  t.true(maxAhead < TOTAL / 2, `origin ran ${maxAhead} bytes ahead`);
  await c.close();
});

for (const framing of ['content-length', 'chunked'] as const) {
  test(`10 MiB upload (${framing}) to a slow reader: write() pushes back, buffered bytes stay bounded`, async (t) => {
    const TOTAL = 10 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    const chunks = Array.from({ length: TOTAL / CHUNK }, (_, i) => Buffer.alloc(CHUNK, i & 0xff));
    let got = 0;
    const h = createHash('sha256');
    let sawTe = '';
    const o = await nodeOrigin(t, (req, res) => {
      sawTe = String(req.headers['transfer-encoding'] ?? req.headers['content-length']);
      req.on('data', (d: Buffer) => {
        got += d.length;
        h.update(d);
        req.pause();
        setTimeout(() => req.resume(), 1);
      });
      req.on('end', () => res.end(String(got)));
    });
    const c = client(t, o.port, { connections: 1 });
    const headers = framing === 'content-length' ? ['host', 'x', 'content-length', String(TOTAL)] : ['host', 'x'];
    let maxBuffered = 0;
    let pushedBack = 0;
    const res = new Promise<Result>((resolve) => {
      const out: Buffer[] = [];
      const req = c.request(
        { method: 'PUT', path: '/up', headers, hasBody: true },
        {
          onHead() {},
          onData: (d) => (out.push(d), true),
          onEnd: () => resolve({ status: 200, headers: [], body: Buffer.concat(out), error: null, detail: '', events: [] }),
          onError: (code, detail) => resolve({ status: -1, headers: [], body: Buffer.alloc(0), error: code, detail, events: [] }),
        },
      );
      void (async () => {
        for (const chunk of chunks) {
          const ok = req.write(chunk);
          maxBuffered = Math.max(maxBuffered, req.bufferedAmount);
          if (!ok) {
            pushedBack++;
            await new Promise<void>((r) => (req.onDrain = r));
          }
        }
        req.end();
      })();
    });
    const r = await res;
    t.is(r.error, null, r.detail);
    t.is(r.body.toString(), String(TOTAL));
    t.is(h.digest('hex'), sha(chunks));
    t.is(sawTe, framing === 'chunked' ? 'chunked' : String(TOTAL));
    t.true(pushedBack > 0, 'write() never pushed back');
    t.true(maxBuffered <= 2 * CHUNK, `${maxBuffered} bytes buffered`);
    await c.close();
    await closeServer(o.server);
  });
}

test('body written while the request waits for a connection is sent with its head', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => setTimeout(() => res.end(`${req.method} ${body}`), req.url === '/slow' ? 50 : 0));
  });
  const c = client(t, o.port, { connections: 1 });
  const slow = send(c, { path: '/slow' });
  const queued = c.request({ method: 'POST', path: '/q', headers: ['host', 'x'], hasBody: true }, {
    onHead() {},
    onData: (d) => (out.push(d), true),
    onEnd: () => finish(Buffer.concat(out).toString()),
    onError: (code) => finish(code),
  });
  const out: Buffer[] = [];
  let finish!: (s: string) => void;
  const result = new Promise<string>((r) => (finish = r));
  t.false(queued.write(Buffer.from('abc')), 'no connection yet: caller should wait');
  let drained = false;
  queued.onDrain = () => (drained = true);
  queued.write(Buffer.from('def'));
  queued.end();
  t.is((await slow).body.toString(), 'GET ');
  t.is(await result, 'POST abcdef');
  t.true(drained);
  await c.close();
});

test('a waiting request whose body breaks its Content-Length fails and is never sent', async (t) => {
  const seen: string[] = [];
  const o = await nodeOrigin(t, (req, res) => {
    seen.push(req.url ?? '');
    setTimeout(() => res.end('ok'), req.url === '/slow' ? 50 : 0);
  });
  const c = client(t, o.port, { connections: 1 });
  const slow = send(c, { path: '/slow' });
  const bad = send(c, { method: 'POST', path: '/bad', headers: ['host', 'x', 'content-length', '3'], hasBody: true });
  bad.req.write(Buffer.from('abcd'));
  const r = await bad;
  t.is(r.error, 'MEZU_ORIGIN_FAILED');
  t.regex(r.detail, /longer than its Content-Length/);
  t.is((await slow).error, null);
  t.is((await send(c, { path: '/next' })).error, null);
  t.deepEqual(seen, ['/slow', '/next']);
  await c.close();
});

test('resume() called from inside onData applies to the false it returns', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => {
    res.write('a');
    setTimeout(() => res.end('b'), 20);
  });
  const c = client(t, o.port, { connections: 1 });
  const body = await new Promise<string>((resolve) => {
    let got = '';
    const req = c.request({ method: 'GET', path: '/', headers: ['host', 'x'], hasBody: false }, {
      onHead() {},
      onData(d) {
        got += d.toString();
        req.resume(); // e.g. the tunnel drained synchronously
        return false;
      },
      onEnd: () => resolve(got),
      onError: (code) => resolve(code),
    });
  });
  t.is(body, 'ab');
  await c.close();
});

test('an origin answering before the request body is complete: response delivered, connection dropped', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => {
    res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'keep-alive' }).end('too large');
  });
  const c = client(t, o.port, { connections: 1 });
  const r = send(c, { method: 'POST', path: '/', headers: ['host', 'x', 'content-length', String(1024 * 1024)], hasBody: true });
  r.req.write(Buffer.alloc(1024));
  const res = await r;
  t.is(res.status, 413);
  t.is(res.body.toString(), 'too large');
  t.true(r.req.write(Buffer.alloc(1024)), 'writes after the response are ignored');
  r.req.end();
  t.is(c.stats().connections, 0);
  t.is((await send(c, { path: '/' })).status, 413);
  t.is(o.connections(), 2);
  await c.close();
});

// ── malformed responses: MEZU_ORIGIN_FAILED, and the socket is discarded ──

const MALFORMED: Array<[string, string]> = [
  ['two different Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc'],
  ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n'],
  ['a header too large', 'HTTP/1.1 200 OK\r\nX-Big: ' + 'a'.repeat(20 * 1024) + '\r\nContent-Length: 0\r\n\r\n'],
  ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n'],
  ['garbage', 'hello there\r\n\r\n'],
];

for (const [name, raw] of MALFORMED) {
  test(`malformed response (${name}) → MEZU_ORIGIN_FAILED and the socket is discarded`, async (t) => {
    const o = await rawOrigin(t, (sock) => sock.write(raw));
    const c = client(t, o.port, { connections: 1 });
    const r = await send(c, { path: '/' });
    t.is(r.error, 'MEZU_ORIGIN_FAILED');
    t.regex(r.detail, /malformed response/);
    t.is(c.stats().connections, 0);
    // The origin sees the connection closed; the next request gets a new one.
    const r2 = await send(c, { path: '/' });
    t.is(r2.error, 'MEZU_ORIGIN_FAILED');
    t.is(o.connections(), 2);
    // A deadline, not a fixed sleep: under load the server's close event can take longer than 20 ms.
    for (const end = Date.now() + 2_000; o.closed() < 2 && Date.now() < end; ) await sleep(10);
    t.is(o.closed(), 2);
    await c.close();
    await closeServer(o.server);
  });
}

test('bytes after a complete response: the response stands, the connection is not reused', async (t) => {
  const o = await rawOrigin(t, (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmuggl'));
  const c = client(t, o.port, { connections: 1 });
  const a = await send(c, { path: '/' });
  t.is(a.error, null);
  t.is(a.body.toString(), 'ok');
  const b = await send(c, { path: '/' });
  t.is(b.body.toString(), 'ok', 'never the smuggled response');
  t.is(o.connections(), 2);
  await c.close();
});

test('a truncated body after the head → onHead then MEZU_ORIGIN_FAILED', async (t) => {
  const o = await rawOrigin(t, (sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
  const c = client(t, o.port, { connections: 1 });
  const r = await send(c, { path: '/' });
  t.deepEqual(r.events, ['head', 'data', 'error']);
  t.is(r.error, 'MEZU_ORIGIN_FAILED');
  await c.close();
});

// ── origin down, origin hangs ──

test('origin down → MEZU_ORIGIN_UNREACHABLE for every waiting request', async (t) => {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  const c = client(t, port, { connections: 2 });
  const rs = await Promise.all(Array.from({ length: 5 }, () => send(c, { path: '/' })));
  for (const r of rs) {
    t.is(r.error, 'MEZU_ORIGIN_UNREACHABLE');
    t.regex(r.detail, /ECONNREFUSED/);
  }
  // The queue failed with the first refused attempt; the other attempt ends on its own.
  for (let i = 0; i < 100 && c.stats().connections > 0; i++) await sleep(10);
  t.is(c.stats().connections, 0);
  await c.close();
});

test('origin hangs before the head → MEZU_ORIGIN_TIMEOUT after headersTimeoutMs', async (t) => {
  const o = await rawOrigin(t, () => {});
  const c = client(t, o.port, { connections: 1, headersTimeoutMs: 200 });
  const t0 = Date.now();
  const r = await send(c, { path: '/' });
  const elapsed = Date.now() - t0;
  t.is(r.error, 'MEZU_ORIGIN_TIMEOUT');
  t.true(elapsed >= 200, `fired after ${elapsed} ms`);
  t.true(elapsed < 2_000, `fired after ${elapsed} ms`);
  t.is(c.stats().connections, 0);
  await c.close();
});

test('origin stalls inside the body → onHead, then MEZU_ORIGIN_TIMEOUT after bodyTimeoutMs', async (t) => {
  const o = await rawOrigin(t, (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789'));
  const c = client(t, o.port, { connections: 1, bodyTimeoutMs: 200 });
  const r = await send(c, { path: '/' });
  t.deepEqual(r.events, ['head', 'data', 'error']);
  t.is(r.error, 'MEZU_ORIGIN_TIMEOUT');
  t.is(r.body.toString(), '0123456789');
  await c.close();
});

test('a paused sink is not a stalled origin: no body timeout while paused', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => {
    res.write('a'.repeat(1000));
    setTimeout(() => res.end('b'), 50);
  });
  const c = client(t, o.port, { connections: 1, bodyTimeoutMs: 100 });
  let n = 0;
  const r = await new Promise<OriginErrorCode | null>((resolve) => {
    const req = c.request({ method: 'GET', path: '/', headers: ['host', 'x'], hasBody: false }, {
      onHead() {},
      onData(d) {
        n += d.length;
        setTimeout(() => req.resume(), 400);
        return false;
      },
      onEnd: () => resolve(null),
      onError: (code) => resolve(code),
    });
  });
  t.is(r, null);
  t.is(n, 1001);
  await c.close();
});

test('bounded queue: beyond maxQueue requests get MEZU_ORIGIN_BUSY at once', async (t) => {
  const o = await nodeOrigin(t, (_req, res) => setTimeout(() => res.end('ok'), 200));
  const c = client(t, o.port, { connections: 1, maxQueue: 2, headersTimeoutMs: 5_000 });
  const first = send(c, { path: '/1' });
  while (c.stats().busy === 0) await sleep(5); // on the one connection
  const queued = [send(c, { path: '/2' }), send(c, { path: '/3' })];
  t.is(c.stats().queued, 2);
  const refused = await Promise.race([send(c, { path: '/4' }), sleep(100).then(() => null)]);
  t.truthy(refused, 'refused at once, not after a wait');
  t.is(refused!.error, 'MEZU_ORIGIN_BUSY');
  t.regex(refused!.detail, /busy/);
  const done = await Promise.all([first, ...queued]);
  t.deepEqual(done.map((r) => r.error), [null, null, null]);
  await c.close();
});

test('a request waiting for a connection has its own deadline, shorter than the head timeout: MEZU_ORIGIN_BUSY at the cap', async (t) => {
  // Story: with every connection held by a path that never answers, a waiting request used to
  // wait the whole head timeout (30 s) and then get 504, as if the origin had hung on it.
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url !== '/hang') res.end('ok');
  });
  const c = client(t, o.port, { connections: 2, queueTimeoutMs: 200, headersTimeoutMs: 10_000 });
  const hung = [send(c, { path: '/hang' }), send(c, { path: '/hang' })];
  while (c.stats().busy < 2) await sleep(5);
  const started = Date.now();
  const r = await send(c, { path: '/fast' });
  const waited = Date.now() - started;
  t.is(r.error, 'MEZU_ORIGIN_BUSY');
  t.regex(r.detail, /no origin connection free within 200 ms: all 2 busy/);
  t.true(waited >= 200 && waited < 1_000, `waited ${waited} ms`);
  c.destroy();
  await Promise.all(hung);
});

test('the pool grows while requests wait, up to the cap (default 1024), and shrinks back as connections idle out', async (t) => {
  // Story: a fixed pool of 64 let 200 requests to a path that never answers hold every
  // connection; every other path then waited for the head timeout. Connections are now opened
  // while requests wait, up to the cap, and the surplus closes after keepAliveTimeoutMs.
  const hung: http.ServerResponse[] = [];
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/hang') hung.push(res);
    else res.end('ok');
  });
  const c = new OriginClient({ origin: `http://127.0.0.1:${o.port}`, keepAliveTimeoutMs: 300 });
  t.teardown(() => c.destroy());
  t.is(c.maxConnections, 1024);
  const slow = Array.from({ length: 200 }, () => send(c, { path: '/hang' }));
  while (hung.length < 200) await sleep(5);
  t.is(c.stats().connections, 200);
  // Beside them, another path is served at once, on a connection of its own.
  const started = Date.now();
  for (let i = 0; i < 20; i++) t.is((await send(c, { path: '/fast' })).body.toString(), 'ok');
  t.true(Date.now() - started < 1_000, `20 requests took ${Date.now() - started} ms`);
  t.is(c.stats().connections, 201);
  for (const res of hung) res.end('late');
  t.true((await Promise.all(slow)).every((r) => r.error === null));
  t.is(c.stats().idle, 201);
  // Idle beyond keepAliveTimeoutMs: closed, down to what the traffic uses.
  const end = Date.now() + 5_000;
  while (c.stats().connections > 0 && Date.now() < end) await sleep(50);
  t.is(c.stats().connections, 0);
  t.is(c.stats().opened, 201);
});

test('abort() mid-response: no more callbacks, the connection is closed, the next request works', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/long') {
      res.write('first');
      return; // never ends
    }
    res.end('ok');
  });
  const c = client(t, o.port, { connections: 1 });
  let after = 0;
  await new Promise<void>((resolve) => {
    const req = c.request({ method: 'GET', path: '/long', headers: ['host', 'x'], hasBody: false }, {
      onHead() {},
      onData() {
        req.abort();
        resolve();
        return true;
      },
      onEnd: () => after++,
      onError: () => after++,
    });
  });
  t.is((await send(c, { path: '/' })).body.toString(), 'ok');
  await sleep(20);
  t.is(after, 0);
  t.is(o.connections(), 2);
  // Aborting while queued removes the request.
  const q = c.request({ method: 'GET', path: '/', headers: [], hasBody: false }, { onHead() {}, onData: () => true, onEnd: () => after++, onError: () => after++ });
  q.abort();
  await sleep(20);
  t.is(after, 0);
  await c.close();
});

test('abandon(): a queued request is dropped with no callback; one whose request is still being written closes its connection', async (t) => {
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/hang') return;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const c = client(t, o.port, { connections: 1 });
  let calls = 0;
  const count = { onHead() {}, onData: () => true, onEnd: () => calls++, onError: () => calls++ };
  const first = c.request({ method: 'GET', path: '/hang', headers: [], hasBody: false }, count);
  while (c.stats().busy === 0) await sleep(5);
  const queued = c.request({ method: 'GET', path: '/', headers: [], hasBody: false }, count);
  t.false(queued.abandon(), 'nothing was running');
  t.is(c.stats().queued, 0);
  first.abort();
  // A body still being sent: the connection is mid-message, so it goes.
  const upload = c.request({ method: 'POST', path: '/up', headers: ['content-length', '10'], hasBody: true }, count);
  upload.write(Buffer.from('12345'));
  while (c.stats().busy === 0) await sleep(5);
  t.false(upload.abandon());
  await sleep(30);
  t.is(calls, 0);
  t.is(c.stats().connections, 0);
  t.is((await send(c, { path: '/' })).body.toString(), 'ok');
});

test('abandon(): a response that ends within the grace is read and dropped, and its connection is reused', async (t) => {
  // Story: the Warpgate closed the origin connection of every request the edge cancelled; under
  // an abort storm that is a connect and a TIME_WAIT socket per cancelled request.
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('x'.repeat(20_000)), 100);
    else res.end('ok');
  });
  const c = client(t, o.port, { connections: 1, abandonGraceMs: 2_000 });
  const events: string[] = [];
  const req = c.request({ method: 'GET', path: '/slow', headers: [], hasBody: false }, {
    onHead: () => events.push('head'),
    onData: () => (events.push('data'), true),
    onEnd: () => events.push('end'),
    onError: (code) => events.push(code),
  });
  while (c.stats().busy === 0) await sleep(5);
  t.true(req.abandon(), 'still on its connection');
  t.true(req.abandon(), 'idempotent');
  while (events.length === 0) await sleep(5);
  t.deepEqual(events, ['end'], 'no head or body reaches the sink, only the end');
  t.is(c.stats().idle, 1);
  t.is((await send(c, { path: '/' })).body.toString(), 'ok');
  t.is(o.connections(), 1, 'the same connection served the next request');
});

test('abandon(): no answer within the grace, or a body over the byte budget → onError, the connection is closed', async (t) => {
  const bigRes: { res: http.ServerResponse | null } = { res: null };
  const o = await nodeOrigin(t, (req, res) => {
    if (req.url === '/big') {
      bigRes.res = res;
      res.write(Buffer.alloc(32 * 1024));
    } // '/hang': never answers
  });
  const c = client(t, o.port, { connections: 2, abandonGraceMs: 150, abandonMaxBytes: 64 * 1024 });
  const outcome = (path: string, onData: () => boolean = () => true) => {
    let req!: OriginRequest;
    const p = new Promise<string>((resolve) => {
      req = c.request({ method: 'GET', path, headers: [], hasBody: false }, { onHead() {}, onData, onEnd: () => resolve('end'), onError: (code, detail) => resolve(`${code}: ${detail}`) });
    });
    return { req, p };
  };
  const hang = outcome('/hang');
  // The sink stopped reading (backpressure): abandoning resumes the reads.
  const large = outcome('/big', () => false);
  while (bigRes.res === null || c.stats().busy < 2) await sleep(5);
  await sleep(20);
  const started = Date.now();
  t.true(hang.req.abandon());
  t.true(large.req.abandon());
  bigRes.res.write(Buffer.alloc(128 * 1024)); // more than the budget after the abandon
  t.regex(await large.p, /^MEZU_ORIGIN_FAILED: cancelled response longer than 65536 bytes/);
  t.regex(await hang.p, /^MEZU_ORIGIN_TIMEOUT: cancelled request not answered within 150 ms/);
  const took = Date.now() - started;
  t.true(took >= 150 && took < 1_000, `${took} ms`);
  t.is(c.stats().connections, 0);
});

test('an invalid head is refused through onError, asynchronously, and nothing is sent', async (t) => {
  const o = await rawOrigin(t, () => t.fail('nothing should reach the origin'));
  const c = client(t, o.port);
  let sync = true;
  const p = send(c, { path: '/', headers: ['x-a', 'b\r\nX-Injected: 1'] });
  sync = false;
  const r = await p;
  t.false(sync);
  t.is(r.error, 'MEZU_ORIGIN_FAILED');
  t.regex(r.detail, /request head: invalid value/);
  t.is(o.connections(), 0);
  await c.close();
});

test('close(): in-flight requests finish, new ones are refused', async (t) => {
  // In flight means the origin has the request: wait for its handler rather
  // than for a fixed time (a loaded CI machine may not have connected in 10 ms).
  let arrived!: () => void;
  const atOrigin = new Promise<void>((r) => (arrived = r));
  const o = await nodeOrigin(t, (_req, res) => {
    arrived();
    setTimeout(() => res.end('late'), 50);
  });
  const c = client(t, o.port, { connections: 1 });
  const inFlight = send(c, { path: '/' });
  await atOrigin;
  const closing = c.close();
  const refused = await send(c, { path: '/' });
  t.is(refused.error, 'MEZU_ORIGIN_UNREACHABLE');
  t.is((await inFlight).body.toString(), 'late');
  await closing;
  t.is(c.stats().connections, 0);
});

test('https: origins are refused at construction (they stay on undici)', (t) => {
  t.throws(() => new OriginClient({ origin: 'ftp://127.0.0.1:1' }), { message: /speaks http: and https:/ });
});

// ── a uWS origin (the reference origin of the benchmarks) ──

test('uWS origin: content-length and chunked bodies, uploads, 204, HEAD, reuse', async (t) => {
  const uws = loadUws();
  const app = uws.App();
  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const method = req.getMethod();
    let aborted = false;
    res.onAborted(() => (aborted = true));
    if (url === '/stream') {
      res.cork(() => {
        res.write('abc');
        res.write('def');
        res.end();
      });
      return;
    }
    if (url === '/204') {
      res.writeStatus('204 No Content').end();
      return;
    }
    if (method === 'post' || method === 'put') {
      const h = createHash('sha256');
      let n = 0;
      res.onData((ab, last) => {
        n += ab.byteLength;
        h.update(Buffer.from(ab));
        if (last && !aborted) res.cork(() => res.end(`${n} ${h.digest('hex')}`));
      });
      return;
    }
    res.writeHeader('content-type', 'application/json').end('{"hello":"world"}');
  });
  const listenSocket = await new Promise<unknown>((resolve) => app.listen('127.0.0.1', 0, resolve));
  t.truthy(listenSocket);
  const port = uws.us_socket_local_port(listenSocket as never);
  const c = client(t, port, { connections: 2 });
  try {
    for (let i = 0; i < 20; i++) {
      const r = await send(c, { path: '/json' });
      t.is(r.body.toString(), '{"hello":"world"}');
      t.is(header(r, 'content-type'), 'application/json');
    }
    t.is(c.stats().opened, 1, 'one connection for sequential requests');
    const s = await send(c, { path: '/stream' });
    t.is(s.body.toString(), 'abcdef');
    const n = await send(c, { path: '/204' });
    t.is(n.status, 204);
    t.deepEqual(n.events, ['head', 'end']);
    const body = [Buffer.alloc(300_000, 1), Buffer.alloc(100_000, 2)];
    const up = await send(c, { method: 'POST', path: '/up', headers: ['host', 'x', 'content-length', '400000'] }, body);
    t.is(up.body.toString(), `400000 ${sha(body)}`);
    const chunked = await send(c, { method: 'POST', path: '/up', headers: ['host', 'x'] }, body);
    t.is(chunked.body.toString(), `400000 ${sha(body)}`);
    t.is(c.stats().opened, 1);
    // uWS 20.30 sends the body on HEAD: we read none of it and drop the connection rather than reuse it.
    const head = await send(c, { method: 'HEAD', path: '/json' });
    t.is(head.error, null, head.detail);
    t.is(head.body.length, 0);
    const after = await Promise.all(Array.from({ length: 10 }, () => send(c, { path: '/json' })));
    t.true(after.every((r) => r.body.toString() === '{"hello":"world"}'));
  } finally {
    await c.close();
    uws.us_listen_socket_close(listenSocket as never);
  }
});
