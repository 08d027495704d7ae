/**
 * Extended CONNECT (RFC 8441) in the lean codec: the setting both ways, a
 * WebSocket-shaped stream that carries bytes in both directions after a 200,
 * against node:http2 as the peer in each role, and the malformed spellings
 * a hostile peer could send.
 */
import test from 'ava';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { H2Connection, type ClientStreamSink, type H2Stream } from '../../../../wire/h2/connection.js';
import { HpackEncoder } from '../../../../wire/h2/hpack.js';
import { PREFACE } from '../../../../wire/h2/frames.js';
import { T, E, frame, settings, type Frame } from './raw-frames.js';

const wsHead = (path: string, extra: string[] = []) => [':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'app.test', ':path', path, 'sec-websocket-version', '13', ...extra];

async function until(what: string, pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('lean client ↔ node:http2 server with enableConnectProtocol: the setting is seen, bytes flow both ways on the stream', async (t) => {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  const seen: http2.IncomingHttpHeaders[] = [];
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    stream.respond({ ':status': 200, 'sec-websocket-protocol': 'chat' });
    // Echo every byte back, upper-cased, until the client ends its side.
    stream.on('data', (c: Buffer) => stream.write(Buffer.from(c.toString('latin1').toUpperCase(), 'latin1')));
    stream.on('end', () => stream.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  const c = new H2Connection(socket, 'client', { pingIntervalMs: 0 });
  t.teardown(() => c.destroy('test done'));
  await until('the server settings', () => c.extendedConnect);

  let status = 0;
  let headers: string[] = [];
  let got = '';
  let ended = false;
  const sink: ClientStreamSink = {
    onHead: (s, h) => {
      status = s;
      headers = h;
    },
    onData: (d) => (got += d.toString('latin1')),
    onEnd: () => (ended = true),
    onError: () => undefined,
    onRefused: () => undefined,
    onLost: () => undefined,
  };
  const s = c.request(wsHead('/ws?room=1', ['sec-websocket-protocol', 'chat, superchat']), false, sink)!;
  await until('the 200', () => status === 200);
  t.is(headers[headers.indexOf('sec-websocket-protocol') + 1], 'chat');
  s.write(Buffer.from('hello '));
  s.write(Buffer.from('world'));
  await until('the echo', () => got === 'HELLO WORLD');
  s.end();
  await until('the end', () => ended);
  t.is(seen[0]![':method'], 'CONNECT');
  t.is(seen[0]![':protocol'], 'websocket');
  t.is(seen[0]![':path'], '/ws?room=1');
  t.is(c.outstanding, 0);
});

test('lean client: a server that does not announce the setting is not offered extended CONNECT', async (t) => {
  const server = http2.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  const c = new H2Connection(socket, 'client', { pingIntervalMs: 0 });
  t.teardown(() => c.destroy('test done'));
  // A round trip: a plain request answered means the server's SETTINGS were read.
  server.on('stream', (st) => {
    st.respond({ ':status': 204 });
    st.end();
  });
  let done = false;
  c.request([':method', 'GET', ':scheme', 'https', ':authority', 'x', ':path', '/'], true, {
    onHead: () => undefined,
    onData: () => undefined,
    onEnd: () => (done = true),
    onError: () => (done = true),
    onRefused: () => (done = true),
    onLost: () => (done = true),
  });
  await until('the answer', () => done);
  t.false(c.extendedConnect);
});

test('node:http2 client ↔ lean server with enableConnectProtocol: a WebSocket-shaped stream opens and echoes', async (t) => {
  let seen: string[] = [];
  const server = net.createServer((socket) => {
    const conn = new H2Connection(socket, 'server', { pingIntervalMs: 0, enableConnectProtocol: true });
    conn.onStream = (stream, headers) => {
      seen = headers;
      stream.respond([':status', '200'], false);
      stream.reqSink = { onData: (c) => stream.write(Buffer.from(c)), onEnd: () => stream.end(), onReset: () => undefined };
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.once('remoteSettings', () => r()));
  t.true(client.remoteSettings.enableConnectProtocol, 'the lean server announced SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const req = client.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https', ':authority': 'app.test' }, { endStream: false });
  const status = await new Promise<number>((r) => req.once('response', (h) => r(Number(h[':status']))));
  t.is(status, 200);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
  req.end();
  await new Promise<void>((r) => req.once('end', r));
  t.deepEqual(Buffer.concat(chunks), Buffer.from([0x81, 0x02, 0x68, 0x69]));
  t.is(seen[seen.indexOf(':protocol') + 1], 'websocket');
});

/** A raw client speaking to an H2Connection in the server role. */
async function rawPeer(limits: object): Promise<{ frames: Frame[]; send: (b: Buffer) => void; streams: string[][]; rst: (sid: number) => number | null; goaway: () => number | null; close: () => Promise<void> }> {
  const streams: string[][] = [];
  let conn: H2Connection | null = null;
  const srv = net.createServer((sock) => {
    conn = new H2Connection(sock, 'server', { pingIntervalMs: 0, ...limits });
    conn.onStream = (s: H2Stream, h) => {
      streams.push(h);
      s.respond([':status', '200'], true);
    };
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const socket = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      frames.push({ type: buf[3]!, flags: buf[4]!, sid: buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buf.subarray(9, 9 + len)) });
      buf = buf.subarray(9 + len);
    }
  });
  socket.on('error', () => undefined);
  return {
    frames,
    streams,
    send: (b) => void (socket.destroyed || socket.write(b)),
    rst: (sid) => {
      const f = frames.find((x) => x.type === T.RST && x.sid === sid);
      return f === undefined ? null : f.payload.readUInt32BE(0);
    },
    goaway: () => {
      const g = frames.find((x) => x.type === T.GOAWAY);
      return g === undefined ? null : g.payload.readUInt32BE(4);
    },
    close: () =>
      new Promise<void>((r) => {
        socket.destroy();
        conn?.destroy('test done');
        srv.close(() => r());
      }),
  };
}

test('lean server: `:protocol` without the setting, `:protocol` without CONNECT, and a plain CONNECT are malformed (stream PROTOCOL_ERROR, never handed on)', async (t) => {
  const cases: Array<[object, string[]]> = [
    [{}, wsHead('/a')], // not announced
    [{ enableConnectProtocol: true }, [':method', 'GET', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'x', ':path', '/b']],
    [{ enableConnectProtocol: true }, [':method', 'CONNECT', ':scheme', 'https', ':authority', 'x', ':path', '/c']],
    [{ enableConnectProtocol: true }, [':method', 'CONNECT', ':authority', 'x:443']], // RFC 9113 §8.5 CONNECT
    [{ enableConnectProtocol: true }, [':method', 'CONNECT', ':protocol', 'websocket', ':authority', 'x', ':path', '/d']], // no :scheme
    [{ enableConnectProtocol: true }, [':method', 'CONNECT', ':protocol', 'websocket', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'x', ':path', '/e']],
  ];
  for (const [limits, head] of cases) {
    const p = await rawPeer(limits);
    p.send(Buffer.concat([PREFACE, settings([])]));
    p.send(frame(T.HEADERS, 0x4, 1, new HpackEncoder().encode(head)));
    await until(`rst for ${JSON.stringify(head)}`, () => p.rst(1) !== null);
    t.is(p.rst(1), E.PROTOCOL_ERROR, JSON.stringify(head));
    t.is(p.streams.length, 0);
    await p.close();
  }
  // The control: a well-formed extended CONNECT is handed on when announced.
  const p = await rawPeer({ enableConnectProtocol: true });
  t.teardown(p.close);
  p.send(Buffer.concat([PREFACE, settings([])]));
  p.send(frame(T.HEADERS, 0x4, 1, new HpackEncoder().encode(wsHead('/ok'))));
  await until('the stream', () => p.streams.length === 1);
  t.is(p.rst(1), null);
});

test('ENABLE_CONNECT_PROTOCOL above 1, or withdrawn after 1, is a connection PROTOCOL_ERROR (RFC 8441 §3)', async (t) => {
  for (const pairs of [[[8, 2]], [[8, 1], [8, 0]]] as Array<Array<[number, number]>>) {
    const server = net.createServer((sock) => {
      // The lean side in the client role reads the peer's (the server's) settings.
      sock.on('error', () => undefined);
      sock.resume(); // read (and drop) what the lean side sends, so its FIN is seen and the socket closes
      sock.write(settings(pairs));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', r));
    const c = new H2Connection(socket, 'client', { pingIntervalMs: 0 });
    let reason = '';
    c.onClose = (r) => (reason = r);
    await until('the close', () => reason !== '');
    t.regex(reason, /ENABLE_CONNECT_PROTOCOL/, JSON.stringify(pairs));
    await new Promise<void>((r) => server.close(() => r()));
  }
});
