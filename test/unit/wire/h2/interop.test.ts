/**
 * Interoperability of the lean HTTP/2 codec with node:http2 (nghttp2) as the
 * peer, both ways, over plain TCP on loopback.
 */
import test from 'ava';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { H2Connection, type ClientStreamSink, type H2Stream } from '../../../../wire/h2/connection.js';

interface Collected {
  status: number;
  headers: string[];
  body: Buffer;
  error: string | null;
  refused: boolean;
}

function collect(): { sink: ClientStreamSink; done: Promise<Collected> } {
  const r: Collected = { status: 0, headers: [], body: Buffer.alloc(0), error: null, refused: false };
  const parts: Buffer[] = [];
  let resolve!: (c: Collected) => void;
  const done = new Promise<Collected>((res) => (resolve = res));
  const sink: ClientStreamSink = {
    onHead(status, headers) {
      r.status = status;
      r.headers = headers;
    },
    onData(chunk) {
      parts.push(Buffer.from(chunk));
    },
    onEnd() {
      r.body = Buffer.concat(parts);
      resolve(r);
    },
    onError(code) {
      r.error = code;
      resolve(r);
    },
    onRefused() {
      r.refused = true;
      resolve(r);
    },
    onLost() {
      r.error = 'lost';
      resolve(r);
    },
  };
  return { sink, done };
}

async function nodeServer(handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http2.createServer({ settings });
  server.on('stream', handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

async function leanClient(port: number): Promise<H2Connection> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  socket.setNoDelay(true);
  return new H2Connection(socket, 'client', { pingIntervalMs: 0 });
}

const req = (path: string, method = 'GET', extra: string[] = []) => [':method', method, ':scheme', 'https', ':authority', 'localhost', ':path', path, ...extra];

test('lean client ↔ node:http2 server: GET, headers both ways, many streams', async (t) => {
  const srv = await nodeServer((stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-echo-path': String(headers[':path']), 'x-got': String(headers['x-mezu-assertion'] ?? '') });
    stream.end(`hello ${headers[':path']}`);
  });
  t.teardown(srv.close);
  const c = await leanClient(srv.port);
  t.teardown(() => c.destroy('test done'));
  const jwt = 'eyJ' + 'a'.repeat(600);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      const { sink, done } = collect();
      c.request(req(`/p/${i}`, 'GET', ['x-mezu-assertion', jwt, 'x-mezu-request-id', `r${i}`]), true, sink);
      return done;
    }),
  );
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    t.is(r.error, null);
    t.is(r.status, 200);
    t.is(r.body.toString(), `hello /p/${i}`);
    t.is(r.headers[r.headers.indexOf('x-echo-path') + 1], `/p/${i}`);
    t.is(r.headers[r.headers.indexOf('x-got') + 1], jwt);
  }
  t.is(c.outstanding, 0);
});

test('lean client ↔ node:http2 server: large upload and download with flow control', async (t) => {
  const size = 5 * 1024 * 1024;
  const srv = await nodeServer((stream) => {
    let got = 0;
    stream.on('data', (c: Buffer) => (got += c.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += chunk.length;
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end(`|${got}`);
      };
      pump();
    });
  });
  t.teardown(srv.close);
  const c = await leanClient(srv.port);
  t.teardown(() => c.destroy('test done'));
  const { sink, done } = collect();
  const s = c.request(req('/up', 'PUT'), false, sink)!;
  const up = Buffer.alloc(size, 0x61);
  let off = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (off < up.length) {
        const n = Math.min(100_000, up.length - off);
        const ok = s.write(up.subarray(off, off + n));
        off += n;
        if (!ok) return s.onDrain(pump);
      }
      s.end();
      resolve();
    };
    pump();
  });
  const r = await done;
  t.is(r.status, 200);
  t.is(r.body.length, size + `|${size}`.length);
  t.true(r.body.toString('latin1').endsWith(`|${size}`));
});

test('lean client: a paused response stops at the window and resumes intact', async (t) => {
  const size = 4 * 1024 * 1024;
  const srv = await nodeServer((stream) => {
    stream.respond({ ':status': 200 });
    const chunk = Buffer.alloc(16 * 1024, 0x63);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
  });
  t.teardown(srv.close);
  const c = await leanClient(srv.port);
  t.teardown(() => c.destroy('test done'));
  let got = 0;
  let pausedOnce = false;
  let s: H2Stream | null = null;
  const finished = new Promise<void>((resolve, reject) => {
    s = c.request(req('/down'), true, {
      onHead: () => undefined,
      onData(chunk) {
        got += chunk.length;
        if (got >= 512 * 1024 && !pausedOnce) {
          pausedOnce = true;
          s!.pause();
        }
      },
      onEnd: () => resolve(),
      onError: (code) => reject(new Error(code)),
      onRefused: () => reject(new Error('refused')),
      onLost: () => reject(new Error('lost')),
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  // Paused: the server can have sent at most about one stream window (1 MiB) beyond what we took.
  t.true(got < 2 * 1024 * 1024, `received ${got} while paused`);
  s!.resume();
  await finished;
  t.is(got, size);
});

test('node:http2 client ↔ lean server: requests, bodies, trailers ignored', async (t) => {
  // Trailers are real here: every request but /a ends with a trailing HEADERS frame (END_STREAM),
  // with or without a body. The lean server must end the request on them, hand their fields to
  // nobody, and still decode them, or its HPACK table would drift from nghttp2's (which indexes
  // the repeated trailer) and a later request would fail with COMPRESSION_ERROR.
  const seenHeaders: string[][] = [];
  const ends = new Map<string, number>();
  const server = net.createServer((socket) => {
    const conn = new H2Connection(socket, 'server', { pingIntervalMs: 0 });
    conn.onStream = (stream, headers, endStream) => {
      seenHeaders.push(headers);
      const path = headers[headers.indexOf(':path') + 1]!;
      let got = 0;
      const finish = () => {
        ends.set(path, (ends.get(path) ?? 0) + 1);
        stream.respond([':status', '201', 'content-type', 'text/plain', 'x-path', path], false);
        stream.end(Buffer.from(`got ${got}`));
      };
      if (endStream) return finish();
      stream.reqSink = { onData: (c) => (got += c.length), onEnd: finish, onReset: () => undefined };
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  t.teardown(() => client.close());
  let sessionError: Error | null = null;
  client.on('error', (err) => (sessionError = err));
  let trailersSent = 0;
  const one = (path: string, body: Buffer | null, trailers: http2.OutgoingHttpHeaders | null) =>
    new Promise<{ status: number; text: string; path: string }>((resolve, reject) => {
      const r = client.request({ ':method': body ? 'POST' : 'GET', ':path': path }, { endStream: body === null && trailers === null, waitForTrailers: trailers !== null });
      if (trailers !== null) {
        r.on('wantTrailers', () => {
          r.sendTrailers(trailers);
          trailersSent++;
        });
      }
      let status = 0;
      let p = '';
      let text = '';
      r.on('response', (h) => {
        status = Number(h[':status']);
        p = String(h['x-path']);
      });
      r.on('data', (c: Buffer) => (text += c.toString()));
      r.on('end', () => resolve({ status, text, path: p }));
      r.on('error', reject);
      if (body) r.end(body);
      else if (trailers !== null) r.end();
    });
  const tr = (i: number): http2.OutgoingHttpHeaders => ({ 'x-checksum': 'sha256-same-for-all', 'x-trailer-seq': String(i) });
  const rs = await Promise.all([
    one('/a', null, null),
    one('/b', Buffer.alloc(3 * 1024 * 1024), tr(-1)),
    one('/get-with-trailers', null, tr(-2)),
    ...Array.from({ length: 50 }, (_, i) => one(`/c${i}`, Buffer.from('xyz'), tr(i))),
  ]);
  t.deepEqual(rs[0], { status: 201, text: 'got 0', path: '/a' });
  t.deepEqual(rs[1], { status: 201, text: `got ${3 * 1024 * 1024}`, path: '/b' });
  t.deepEqual(rs[2], { status: 201, text: 'got 0', path: '/get-with-trailers' });
  for (let i = 0; i < 50; i++) t.deepEqual(rs[i + 3], { status: 201, text: 'got 3', path: `/c${i}` });
  t.is(trailersSent, 52, 'the client really sent trailers');
  t.is(sessionError, null, 'no connection error (the HPACK tables stayed in step)');
  for (const [path, n] of ends) t.is(n, 1, `${path} ended exactly once`);
  t.is(ends.size, 53);
  for (const h of seenHeaders) {
    t.false(h.includes('x-checksum'), 'trailer fields never reach the request head');
    t.false(h.includes('x-trailer-seq'));
  }
  // The connection is still good after all those trailer blocks.
  t.deepEqual(await one('/after', null, null), { status: 201, text: 'got 0', path: '/after' });
});

test('lean client ↔ node:http2 server: response trailers end the stream, the body is intact, the fields are dropped', async (t) => {
  const srv = await nodeServer((stream) => {
    stream.respond({ ':status': 200, 'x-head': 'h' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc', 'grpc-status': '0' }));
    stream.end('body bytes');
  });
  t.teardown(srv.close);
  const c = await leanClient(srv.port);
  t.teardown(() => c.destroy('test done'));
  for (let i = 0; i < 20; i++) {
    const { sink, done } = collect();
    let ends = 0;
    const onEnd = sink.onEnd.bind(sink);
    sink.onEnd = () => {
      ends++;
      onEnd();
    };
    c.request(req(`/t${i}`), true, sink);
    const r = await done;
    t.is(r.error, null);
    t.is(r.status, 200);
    t.is(r.body.toString(), 'body bytes');
    t.is(ends, 1);
    t.is(r.headers[r.headers.indexOf('x-head') + 1], 'h');
    t.false(r.headers.includes('x-checksum'), 'trailer fields are not merged into the head');
  }
  t.is(c.outstanding, 0);
  t.false(c.closed);
});

test('GOAWAY from a node:http2 server: streams above its last id are refused (replayable)', async (t) => {
  let session: http2.ServerHttp2Session | null = null;
  const srv = await nodeServer((stream) => {
    session = stream.session as http2.ServerHttp2Session;
    setTimeout(() => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, 100);
  });
  t.teardown(srv.close);
  const c = await leanClient(srv.port);
  t.teardown(() => c.destroy('test done'));
  const first = collect();
  c.request(req('/first'), true, first.sink);
  await new Promise((r) => setTimeout(r, 50));
  session!.goaway(0, 1); // last processed stream: 1
  for (let i = 0; i < 100 && c.open; i++) await new Promise((r) => setTimeout(r, 10));
  t.false(c.open, 'no new streams after GOAWAY');
  t.is(c.request(req('/late'), true, collect().sink), null);
  const r = await first.done;
  t.is(r.status, 200, 'the stream below the last id finishes');
  await new Promise((r) => setTimeout(r, 50));
  t.true(c.closed, 'the connection closes once its last stream is done');
  // node's server keeps a session it sent GOAWAY on until it is destroyed.
  (session as http2.ServerHttp2Session | null)?.destroy();
});
