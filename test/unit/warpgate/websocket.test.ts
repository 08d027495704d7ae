/**
 * The Warpgate's side of a WebSocket (warpgate/websocket.ts): the RFC 6455
 * opening handshake it makes with the origin over HTTP/1.1. `acceptFor` is the
 * §4.2.2 hash the origin must answer with (checked against the RFC's own
 * example, §1.3); `readResponseHead` reads the origin's response head as
 * strictly as the origin client's parser does (a head it would refuse for
 * request smuggling reasons must be refused here too); `upgradeProblem` is
 * the client's checks of a 101 (§4.1): a 101 that fails any of them must not
 * become a relayed WebSocket.
 *
 * Last, `WebSocketRelay` end to end against a real local TCP server standing
 * in for the origin, with a recording fake for the tunnel stream: the
 * request it sends, a valid 101 relayed as :status 200 with bytes both ways,
 * and a 101 with the wrong accept refused with 502.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { acceptFor, readResponseHead, upgradeProblem, WebSocketRelay } from '../../../warpgate/websocket.js';
import { ForwardedHead } from '../../../warpgate/lean-forward.js';
import type { OriginClient } from '../../../warpgate/origin/client.js';
import type { H2Stream, ServerStreamSink } from '../../../wire/index.js';
import { Errors } from '../../../src/errors/index.js';

// ── acceptFor ──

test('acceptFor: the RFC 6455 §1.3 example, key dGhlIHNhbXBsZSBub25jZQ== → s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', (t) => {
  t.is(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('acceptFor: another known pair, and the key is hashed exactly as given (no trimming, case kept)', (t) => {
  // The example used by the hybi drafts and many implementations' tests.
  t.is(acceptFor('x3JJHMbDL1EzLkh9GBhXDw=='), 'HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
  const k = 'dGhlIHNhbXBsZSBub25jZQ==';
  t.not(acceptFor(` ${k}`), acceptFor(k));
  t.not(acceptFor(k.toLowerCase()), acceptFor(k));
  t.is(acceptFor(k).length, 28, 'base64 of a 20-byte SHA-1');
});

// ── readResponseHead ──

const HEAD_101 = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo='];

function refused(t: ExecutionContext, text: string, why?: RegExp): void {
  const r = readResponseHead(text);
  t.is(typeof r, 'string', `refused: ${JSON.stringify(text)}`);
  if (why !== undefined && typeof r === 'string') t.regex(r, why, JSON.stringify(text));
}

test('readResponseHead: a 101 → its status and fields, names lower-cased, values as sent, in order', (t) => {
  t.deepEqual(readResponseHead(HEAD_101.join('\r\n')), {
    status: 101,
    fields: ['upgrade', 'websocket', 'connection', 'Upgrade', 'sec-websocket-accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
  });
});

test('readResponseHead: any status 100–599, with or without a reason phrase; a status line alone has no fields', (t) => {
  for (const [line, status] of [
    ['HTTP/1.1 101', 101],
    ['HTTP/1.1 101 ', 101],
    ['HTTP/1.1 403 Forbidden', 403],
    ['HTTP/1.1 503 Service Unavailable\tnow', 503],
    ['HTTP/1.1 200 OK', 200],
    ['HTTP/1.1 599 x', 599],
    ['HTTP/1.1 101 Sw\u00e9tching', 101],
  ] as const) {
    t.deepEqual(readResponseHead(line), { status, fields: [] }, line);
  }
});

test('readResponseHead: optional whitespace around a value is not part of it; an empty value is kept; a repeated field is kept twice', (t) => {
  const r = readResponseHead('HTTP/1.1 101 OK\r\nX-A:   spaced  out \t\r\nX-B:\r\nX-C:\tv\r\nSet-Cookie: a=1\r\nset-cookie: b=2');
  t.deepEqual(r, { status: 101, fields: ['x-a', 'spaced  out', 'x-b', '', 'x-c', 'v', 'set-cookie', 'a=1', 'set-cookie', 'b=2'] });
  // obs-text (bytes 0x80–0xFF, read as latin1) is field-content (RFC 9110 §5.5).
  t.deepEqual(readResponseHead('HTTP/1.1 101\r\nX-Name: caf\u00e9'), { status: 101, fields: ['x-name', 'caf\u00e9'] });
});

test('readResponseHead refuses a status line that is not `HTTP/1.1 NNN [reason]`', (t) => {
  for (const line of [
    'HTTP/1.0 101 Switching Protocols', // RFC 6455 §4.1: HTTP/1.1 or higher; the reader takes 1.1 only
    'HTTP/2 101',
    'HTTP/1.2 101',
    'http/1.1 101',
    'HTTP/1.1 99 x',
    'HTTP/1.1 600 x',
    'HTTP/1.1 1010',
    'HTTP/1.1 10',
    'HTTP/1.1  101',
    ' HTTP/1.1 101',
    'HTTP/1.1 101x',
    'HTTP/1.1',
    'ICY 101 OK',
    '',
    'HTTP/1.1 101 OK\u0000',
    'HTTP/1.1 101 bad\u007f',
  ]) {
    refused(t, `${line}\r\nUpgrade: websocket`, /status line/);
  }
});

test('readResponseHead refuses obs-fold: a field line starting with a space or a tab (RFC 9112 §5.2)', (t) => {
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n  , h2c', /obs-fold/);
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\tcontinued', /obs-fold/);
  refused(t, 'HTTP/1.1 101 OK\r\n Upgrade: websocket', /obs-fold/);
});

test('readResponseHead refuses whitespace between the name and the colon (RFC 9112 §5.1)', (t) => {
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade : websocket');
  refused(t, 'HTTP/1.1 101 OK\r\nSec-WebSocket-Accept\t: x');
});

test('readResponseHead refuses a bare CR or LF anywhere', (t) => {
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade: websocket\nX-Smuggled: 1', /bare CR or LF/);
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade: websocket\rX-Smuggled: 1', /bare CR or LF/);
  refused(t, 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r', /bare CR or LF/);
  refused(t, 'HTTP/1.1 101 OK\nUpgrade: websocket');
  refused(t, 'HTTP/1.1 101 OK\rUpgrade: websocket');
});

test('readResponseHead refuses a field name that is not a token, a line with no colon, and controls in a value', (t) => {
  for (const line of ['Up grade: websocket', 'Up(grade): x', 'X"y: 1', 'X/y: 1', 'X@y: 1', 'X[y]: 1', 'X{y}: 1', 'caf\u00e9: 1', ': no name', 'no colon at all', '', 'X: a\u0000b', 'X: a\u0001b', 'X: a\u007fb', 'X: a\u001bb']) {
    refused(t, `HTTP/1.1 101 OK\r\n${line}`);
  }
  // Every tchar is accepted (RFC 9110 §5.6.2).
  t.deepEqual(readResponseHead("HTTP/1.1 101\r\n!#$%&'*+-.^_`|~09AZaz: v"), { status: 101, fields: ["!#$%&'*+-.^_`|~09azaz", 'v'] });
});

test('readResponseHead: 100 fields are read, 101 are refused', (t) => {
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}`);
  const ok = readResponseHead(['HTTP/1.1 101', ...fields(100)].join('\r\n'));
  t.true(typeof ok !== 'string' && ok.fields.length === 200);
  refused(t, ['HTTP/1.1 101', ...fields(101)].join('\r\n'), /more than 100 fields/);
});

// ── upgradeProblem ──

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const VALID = ['upgrade', 'websocket', 'connection', 'Upgrade', 'sec-websocket-accept', ACCEPT];
/** VALID with field `name` removed (every occurrence). */
const without = (name: string, f: string[] = VALID) => f.filter((_, i) => f[i - (i & 1)] !== name);

test('upgradeProblem: a valid 101 (Upgrade, Connection naming upgrade, the right accept) → null', (t) => {
  t.is(acceptFor(KEY), ACCEPT);
  t.is(upgradeProblem(VALID, ACCEPT, []), null);
  t.is(upgradeProblem([...VALID, 'server', 'origin/1.0', 'set-cookie', 'a=1'], ACCEPT, []), null, 'other fields are no problem');
  t.is(upgradeProblem(['upgrade', 'WebSocket', 'connection', 'keep-alive, UPGRADE', 'sec-websocket-accept', ACCEPT], ACCEPT, []), null, 'Upgrade and the Connection token are case-insensitive');
  t.is(upgradeProblem([...VALID, 'connection', 'keep-alive'], ACCEPT, []), null, 'Connection is a list across fields');
  t.is(upgradeProblem(['connection', 'close', ...VALID], ACCEPT, []), null);
});

test('upgradeProblem: Upgrade missing, not websocket, or given twice → refused (§4.1 item 2)', (t) => {
  t.regex(upgradeProblem(without('upgrade'), ACCEPT, []) ?? '', /Upgrade/);
  for (const v of ['websockets', 'h2c', 'websocket, h2c', 'websocket/13', '']) {
    t.regex(upgradeProblem(['upgrade', v, ...without('upgrade')], ACCEPT, []) ?? '', /Upgrade/, v);
  }
  t.regex(upgradeProblem(['upgrade', 'websocket', ...VALID], ACCEPT, []) ?? '', /Upgrade/, 'two Upgrade fields, both websocket');
  t.regex(upgradeProblem(['upgrade', 'h2c', ...VALID], ACCEPT, []) ?? '', /Upgrade/, 'two Upgrade fields, one websocket');
});

test('upgradeProblem: Connection missing or without the upgrade token → refused (§4.1 item 3)', (t) => {
  t.regex(upgradeProblem(without('connection'), ACCEPT, []) ?? '', /Connection/);
  for (const v of ['keep-alive', 'close', 'upgraded', 'upgrade-insecure', 'x upgrade', '']) {
    t.regex(upgradeProblem(['connection', v, ...without('connection')], ACCEPT, []) ?? '', /Connection/, v);
  }
});

test('upgradeProblem: Sec-WebSocket-Accept missing, wrong, or given twice → refused (§4.1 item 4)', (t) => {
  t.regex(upgradeProblem(without('sec-websocket-accept'), ACCEPT, []) ?? '', /Accept/);
  for (const v of [acceptFor('x3JJHMbDL1EzLkh9GBhXDw=='), ACCEPT.toLowerCase(), ACCEPT.slice(0, -1), `${ACCEPT},${ACCEPT}`, KEY, '']) {
    t.regex(upgradeProblem([...without('sec-websocket-accept'), 'sec-websocket-accept', v], ACCEPT, []) ?? '', /Accept/, v);
  }
  t.regex(upgradeProblem([...VALID, 'sec-websocket-accept', ACCEPT], ACCEPT, []) ?? '', /Accept/, 'the right one twice');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-accept', 'wrong'], ACCEPT, []) ?? '', /Accept/, 'the right one, then a wrong one');
  t.regex(upgradeProblem(['sec-websocket-accept', 'wrong', ...VALID], ACCEPT, []) ?? '', /Accept/, 'a wrong one, then the right one');
});

test('upgradeProblem: any Sec-WebSocket-Extensions → refused: none was offered (§4.1 item 5)', (t) => {
  for (const v of ['permessage-deflate', 'permessage-deflate; client_max_window_bits', 'x-webkit-deflate-frame', '']) {
    t.regex(upgradeProblem([...VALID, 'sec-websocket-extensions', v], ACCEPT, ['chat']) ?? '', /extension/, v);
  }
});

test('upgradeProblem: a subprotocol must be one the client offered, and one only (§4.1 item 6)', (t) => {
  const offered = ['chat', 'superchat'];
  t.is(upgradeProblem([...VALID, 'sec-websocket-protocol', 'chat'], ACCEPT, offered), null);
  t.is(upgradeProblem([...VALID, 'sec-websocket-protocol', 'superchat'], ACCEPT, offered), null);
  t.is(upgradeProblem(VALID, ACCEPT, offered), null, 'the origin may pick none');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'other'], ACCEPT, offered) ?? '', /subprotocol/, 'not offered');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'chat'], ACCEPT, []) ?? '', /subprotocol/, 'none offered');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'chat, superchat'], ACCEPT, offered) ?? '', /subprotocol/, 'two in one field');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'chat', 'sec-websocket-protocol', 'superchat'], ACCEPT, offered) ?? '', /subprotocol/, 'two fields');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'chat', 'sec-websocket-protocol', 'chat'], ACCEPT, offered) ?? '', /subprotocol/, 'the same one twice');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'other', 'sec-websocket-protocol', 'chat'], ACCEPT, offered) ?? '', /subprotocol/, 'a wrong one first');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', ''], ACCEPT, offered) ?? '', /subprotocol/, 'empty');
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'cha'], ACCEPT, offered) ?? '', /subprotocol/, 'a prefix of an offered one');
  // A subprotocol is a token (§4.1, §11.3.4): not accepted even when the client's list held the same string.
  t.regex(upgradeProblem([...VALID, 'sec-websocket-protocol', 'two words'], ACCEPT, ['two words']) ?? '', /subprotocol/, 'not a token');
});

// ── WebSocketRelay against a real origin socket ──

/** A tunnel stream as the relay uses it: what it was told, recorded. */
class FakeStream {
  reqSink: ServerStreamSink | null = null;
  paused = false;
  status = 0;
  headers: readonly string[] = [];
  endedOnHead = false;
  readonly written: Buffer[] = [];
  ended = false;
  aborted = false;
  body: Buffer | null = null;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  respondStatus(status: number, headers: readonly string[], endStream: boolean): void {
    this.status = status;
    this.headers = headers;
    this.endedOnHead = endStream;
  }
  respond(headers: string[], endStream: boolean): void {
    this.respondStatus(Number(headers[1]), headers.slice(2), endStream);
  }
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    return true;
  }
  onDrain(): void {}
  end(chunk?: Buffer): void {
    if (chunk !== undefined) this.body = Buffer.from(chunk);
    this.ended = true;
  }
  abort(): void {
    this.aborted = true;
  }
  release(): void {}
}

async function until(what: string, pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * An origin on 127.0.0.1: reads one request head, hands it to `answer`, which
 * writes the response; in echo mode it then sends back every byte upper-cased
 * and ends when the relay ends.
 */
async function origin(t: ExecutionContext, answer: (head: string, s: net.Socket) => 'echo' | 'done'): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    let buf = '';
    let echo = false;
    s.on('data', (c: Buffer) => {
      if (echo) return void s.write(Buffer.from(c.toString('latin1').toUpperCase(), 'latin1'));
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      heads.push(buf.slice(0, end));
      echo = answer(buf.slice(0, end), s) === 'echo';
      const rest = buf.slice(end + 4);
      if (echo && rest !== '') s.write(Buffer.from(rest.toUpperCase(), 'latin1'));
    });
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, heads };
}

function relayTo(t: ExecutionContext, port: number): { relay: WebSocketRelay; logs: string[] } {
  const logs: string[] = [];
  const client = { host: '127.0.0.1', port, tls: null, headersTimeoutMs: 3000, authority: `127.0.0.1:${port}` } as unknown as OriginClient;
  const relay = new WebSocketRelay(client, 4, (m) => logs.push(m));
  t.teardown(() => relay.closeAll());
  return { relay, logs };
}

const connectHead = () =>
  new ForwardedHead([':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'app.test', ':path', '/chat?room=1', 'sec-websocket-protocol', 'chat, superchat', 'x-mezu-request-id', 'req-42', 'sec-websocket-key', 'from-the-client']);

/** The request's fields, name (lower-cased) → values. */
function fieldsOf(head: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    const n = line.slice(0, i).toLowerCase();
    m.set(n, [...(m.get(n) ?? []), line.slice(i + 1).trim()]);
  }
  return m;
}

/** RFC 6455 §4.2.2, computed here rather than with acceptFor. */
const expectedAccept = (key: string) => createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

test('relay: a valid 101 becomes :status 200 with the chosen subprotocol, then bytes flow both ways and the ends are relayed', async (t) => {
  const o = await origin(t, (head, s) => {
    const key = fieldsOf(head).get('sec-websocket-key')![0]!;
    // The head and the origin's first bytes in one write: the relay must pass those bytes on too.
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${expectedAccept(key)}\r\nSec-WebSocket-Protocol: chat\r\nX-Origin: yes\r\n\r\nhello`);
    return 'echo';
  });
  const { relay } = relayTo(t, o.port);
  const stream = new FakeStream();
  relay.open(stream as unknown as H2Stream, connectHead());
  t.true(stream.paused, 'nothing of the edge goes to the origin before the upgrade');
  t.is(relay.live.size, 1);
  await until('the 200', () => stream.status !== 0);

  // The request the origin got (RFC 6455 §4.1).
  const head = o.heads[0]!;
  t.true(head.startsWith('GET /chat?room=1 HTTP/1.1\r\n'), head);
  const f = fieldsOf(head);
  t.deepEqual(f.get('host'), ['app.test']);
  t.deepEqual(f.get('upgrade'), ['websocket']);
  t.deepEqual(f.get('connection'), ['Upgrade']);
  t.deepEqual(f.get('sec-websocket-version'), ['13']);
  t.deepEqual(f.get('sec-websocket-protocol'), ['chat, superchat']);
  t.deepEqual(f.get('x-mezu-request-id'), ['req-42']);
  t.is(f.get('sec-websocket-extensions'), undefined, 'no extension offered');
  const keys = f.get('sec-websocket-key')!;
  t.is(keys.length, 1, 'one key, the Warpgate\'s own: the client\'s is dropped');
  t.not(keys[0], 'from-the-client');
  t.is(Buffer.from(keys[0]!, 'base64').length, 16, 'a 16-byte nonce, base64 (§4.1)');

  // The answer on the stream (RFC 8441 §5).
  t.is(stream.status, 200);
  t.false(stream.endedOnHead);
  t.deepEqual([...stream.headers], ['sec-websocket-protocol', 'chat', 'x-origin', 'yes'], 'the subprotocol first; no handshake or hop-by-hop field');
  await until('the origin\'s first bytes', () => Buffer.concat(stream.written).toString() === 'hello');
  t.false(stream.paused, 'the stream resumed after the upgrade');

  // Edge → origin → (upper-cased) → edge.
  stream.reqSink!.onData(Buffer.from('ping me'));
  await until('the echo', () => Buffer.concat(stream.written).toString() === 'helloPING ME');
  // The edge's END_STREAM half-closes the socket; the origin's FIN ends the stream.
  stream.reqSink!.onEnd();
  await until('the stream end', () => stream.ended);
  t.false(stream.aborted);
  await until('the socket closed', () => relay.live.size === 0);
  t.deepEqual(relay.stats(), { open: 0, opened: 1, paused: 0 });
});

test('relay: a 101 with the wrong Sec-WebSocket-Accept is refused with 502 MEZU_WEBSOCKET_UPGRADE_FAILED, and nothing is relayed', async (t) => {
  const o = await origin(t, (_head, s) => {
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${expectedAccept('not-the-key')}\r\n\r\nframes`);
    return 'echo';
  });
  const { relay, logs } = relayTo(t, o.port);
  const stream = new FakeStream();
  relay.open(stream as unknown as H2Stream, connectHead());
  await until('the answer', () => stream.ended);
  t.is(stream.status, Errors.MEZU_WEBSOCKET_UPGRADE_FAILED.status);
  t.is(stream.status, 502);
  t.regex(stream.body?.toString() ?? '', /MEZU_WEBSOCKET_UPGRADE_FAILED/);
  t.deepEqual(stream.written, [], 'the origin\'s bytes after the bad 101 never reach the edge');
  t.true(logs.some((l) => /Sec-WebSocket-Accept/.test(l)), logs.join('\n'));
  await until('the socket closed', () => relay.live.size === 0);
});
