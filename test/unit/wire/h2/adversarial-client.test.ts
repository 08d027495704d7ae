/**
 * A hostile Warpgate against the edge's CLIENT role. adversarial.test.ts
 * drives a hand-written hostile peer against the codec's server role (the
 * Warpgate's side); here the peer sits on the Warpgate's side and answers the
 * edge's client (TunnelConnection over H2Connection, src/tunnel/connection.ts)
 * with abuse; each request is a test-side TunnelRequest (recorder.ts).
 *
 * Why it matters: the edge dials nothing, but a Warpgate runs on the
 * customer's origin host; a compromised or buggy one must not be able to
 * crash an edge worker, grow its memory, or smuggle a header into the
 * response the edge writes to a browser. Each abuse gets the RFC 9113
 * connection error (GOAWAY + close) or stream error (RST_STREAM), the
 * request's sink is told MEZU_TUNNEL_FAILED (the client gets 502), nothing
 * throws, and no state is left behind.
 */
import test from 'ava';
import * as net from 'node:net';
import { TunnelConnection } from '../../../../src/tunnel/connection.js';
import { PoolRegistry } from '../../../../src/tunnel/pools.js';
import { HpackEncoder } from '../../../../wire/h2/hpack.js';
import { PREFACE } from '../../../../wire/h2/frames.js';
import { T, F, E, frame, u32, type Frame } from './raw-frames.js';
import type { H2Limits } from '../../../../wire/h2/limits.js';
import type { H2Stream } from '../../../../wire/h2/connection.js';
import { Errors } from '../../../../src/errors/index.js';
import { Recorder } from './recorder.js';

async function until(what: string, cond: () => boolean, ms = 10_000, detail: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The hostile Warpgate: the server end of the tunnel, written frame by frame.
 * It does the minimum a peer must (its SETTINGS, ACKs of the edge's) and
 * otherwise sends whatever the test tells it to.
 */
class HostileGate {
  frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private prefaceSeen = false;
  /** Plain literals (no Huffman) so sizes are what the test says. */
  readonly enc = new HpackEncoder(4096, { huffman: false });
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
    this.send(frame(T.SETTINGS, 0, 0));
  }
  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.prefaceSeen) {
      if (this.buf.length < PREFACE.length) return;
      if (!this.buf.subarray(0, PREFACE.length).equals(PREFACE)) throw new Error('the edge sent no client preface');
      this.buf = this.buf.subarray(PREFACE.length);
      this.prefaceSeen = true;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f = { type: this.buf[3]!, flags: this.buf[4]!, sid: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      if (f.type === T.SETTINGS && (f.flags & F.ACK) === 0) this.send(frame(T.SETTINGS, F.ACK, 0));
    }
  }
  send(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }
  /** The edge opened this stream (its HEADERS arrived). */
  opened(sid: number): boolean {
    return this.frames.some((f) => f.type === T.HEADERS && f.sid === sid);
  }
  goaway(): number | null {
    const g = this.frames.find((f) => f.type === T.GOAWAY);
    return g === undefined ? null : g.payload.readUInt32BE(4);
  }
  rst(sid: number): number | null {
    const r = this.frames.find((f) => f.type === T.RST && f.sid === sid);
    return r === undefined ? null : r.payload.readUInt32BE(0);
  }
  /** A complete, valid response on `sid`. */
  respond(sid: number, status = '200', body = 'ok'): void {
    this.send(Buffer.concat([frame(T.HEADERS, F.END_HEADERS, sid, this.enc.encode([':status', status])), frame(T.DATA, F.END_STREAM, sid, Buffer.from(body))]));
  }
  /** `block` as HEADERS + CONTINUATION frames of at most `max` bytes. */
  headerFrames(sid: number, block: Buffer, max = 16_384, endStream = false): Buffer {
    const parts: Buffer[] = [];
    for (let off = 0; off < block.length || off === 0; off += max) {
      const chunk = block.subarray(off, Math.min(off + max, block.length));
      const last = off + max >= block.length;
      parts.push(frame(off === 0 ? T.HEADERS : T.CONTINUATION, (last ? F.END_HEADERS : 0) | (off === 0 && endStream ? F.END_STREAM : 0), sid, chunk));
      if (block.length === 0) break;
    }
    return Buffer.concat(parts);
  }
  framesSummary(): string {
    return `(frames from the edge: ${this.frames.map((f) => `${f.type}@${f.sid}`).join(',')})`;
  }
}


interface Env {
  gate: HostileGate;
  edge: TunnelConnection;
  registry: PoolRegistry;
  closedReason: string | null;
  /** Opens a GET on the edge and waits until the hostile gate has its HEADERS. */
  request(path?: string): Promise<{ sink: Recorder; stream: H2Stream; sid: number }>;
}

async function env(t: { teardown(fn: () => void | Promise<void>): void }, limits: Partial<H2Limits> = {}): Promise<Env> {
  let gate: HostileGate | null = null;
  const server = net.createServer((sock) => (gate = new HostileGate(sock)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  const registry = new PoolRegistry();
  const e: Env = {
    gate: null as unknown as HostileGate,
    edge: null as unknown as TunnelConnection,
    registry,
    closedReason: null,
    async request(path = '/') {
      const sid = nextSid(e);
      const sink = new Recorder({ method: 'GET', path, fields: ['x-mezu-request-id', `r${sid}`, 'x-mezu-project', 'demo'], registry });
      if (!sink.send(e.edge)) throw new Error(`the edge did not open stream ${sid}`);
      await until(`the gate to see stream ${sid}`, () => e.gate.opened(sid));
      return { sink, stream: sink.stream!, sid };
    },
  };
  // As the tunnel listener does: registered once ready, removed when closed.
  e.edge = new TunnelConnection('demo', socket, { pingIntervalMs: 0, ...limits }, (c, reason) => {
    e.closedReason = reason;
    registry.remove(c);
  });
  e.edge.ready = true;
  registry.add(e.edge);
  await until('the hostile gate', () => gate !== null);
  e.gate = gate!;
  await until("the edge's SETTINGS", () => e.gate.frames.some((f) => f.type === T.SETTINGS));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        e.edge.close(false);
        socket.destroy();
        e.gate.socket.destroy();
        server.close(() => r());
      }),
  );
  return e;
}

/** Stream ids the edge's client role uses, in order (odd, from 1). */
const sids = new WeakMap<Env, number>();
function nextSid(e: Env): number {
  const n = (sids.get(e) ?? -1) + 2;
  sids.set(e, n);
  return n;
}

/** A connection error: GOAWAY with `code`, the connection closed, the request failed with 502, nothing left. */
async function assertConnectionError(t: import('ava').ExecutionContext, e: Env, sink: Recorder, code: number): Promise<void> {
  await until('GOAWAY from the edge', () => e.gate.goaway() !== null, 10_000, () => e.gate.framesSummary());
  t.is(e.gate.goaway(), code, `GOAWAY error code`);
  await until('the edge to close the connection', () => e.gate.closed && sink.settled);
  t.true(e.edge.h2.closed);
  t.deepEqual(sink.errors, ['MEZU_TUNNEL_FAILED']);
  t.is(Errors[sink.errors[0]!].status, 502);
  t.is(sink.ends, 0);
  t.is(e.edge.h2.streams.size, 0, 'no stream state kept');
  t.is(e.edge.outstanding, 0);
  t.false(e.edge.ready);
  t.is(e.registry.count('demo'), 0, 'the connection left the pool: no later request is sent to it');
}

/** A stream error: RST_STREAM with `code` on `sid`, the request failed with 502, and the connection still serves. */
async function assertStreamErrorAndConnectionLives(t: import('ava').ExecutionContext, e: Env, sink: Recorder, sid: number, code: number): Promise<void> {
  await until(`RST_STREAM on ${sid}`, () => e.gate.rst(sid) !== null, 10_000, () => e.gate.framesSummary());
  t.is(e.gate.rst(sid), code, 'RST_STREAM error code');
  await until('the sink', () => sink.settled);
  t.deepEqual(sink.errors, ['MEZU_TUNNEL_FAILED']);
  t.is(Errors[sink.errors[0]!].status, 502);
  t.is(sink.ends, 0);
  t.is(e.gate.goaway(), null, 'a stream error keeps the connection');
  t.false(e.edge.h2.closed);
  t.is(e.edge.h2.streams.size, 0, 'the failed stream is forgotten');
  const next = await e.request('/after');
  e.gate.respond(next.sid, '200', 'fine');
  await until('the next response', () => next.sink.settled);
  t.is(next.sink.status, 200, 'the next request on the same connection works');
  t.deepEqual(next.sink.errors, []);
}

test('control: a well-behaved answer from the raw gate is delivered (the harness works)', async (t) => {
  const e = await env(t);
  const { sink, sid } = await e.request();
  e.gate.respond(sid, '200', 'hello');
  await until('the response', () => sink.settled);
  t.is(sink.status, 200);
  t.is(sink.bytes, 5);
  t.is(sink.ends, 1);
  t.is(e.gate.goaway(), null);
});

test('response header list over our SETTINGS_MAX_HEADER_LIST_SIZE → RST_STREAM PROTOCOL_ERROR, 502, the connection lives', async (t) => {
  const e = await env(t, { maxHeaderListSize: 16 * 1024 });
  const { sink, sid } = await e.request();
  // 40 KB of header value: a valid HPACK block (within the 128 KiB block limit, 3 frames), but a decoded list far over 16 KiB.
  const block = e.gate.enc.encode([':status', '200', 'x-big', 'a'.repeat(40_000)]);
  e.gate.send(e.gate.headerFrames(sid, block, 16_384, true));
  await assertStreamErrorAndConnectionLives(t, e, sink, sid, E.PROTOCOL_ERROR);
  t.is(sink.heads, 0, 'no part of the oversized head reached the client');
});

test('response header block over 128 KiB (HEADERS + CONTINUATION) → GOAWAY ENHANCE_YOUR_CALM, 502', async (t) => {
  const e = await env(t);
  const { sink, sid } = await e.request();
  const block = e.gate.enc.encode([':status', '200', 'x-huge', 'b'.repeat(200_000)]);
  e.gate.send(e.gate.headerFrames(sid, block, 16_384));
  await assertConnectionError(t, e, sink, E.ENHANCE_YOUR_CALM);
  t.is(sink.heads, 0);
});

test('CONTINUATION flood in a response (CVE-2024-27316 class) → GOAWAY ENHANCE_YOUR_CALM after the frame limit, 502', async (t) => {
  const e = await env(t, { maxContinuationFrames: 32 });
  const { sink, sid } = await e.request();
  const block = e.gate.enc.encode([':status', '200']);
  const parts = [frame(T.HEADERS, 0, sid, block)];
  for (let i = 0; i < 5000; i++) parts.push(frame(T.CONTINUATION, 0, sid, Buffer.alloc(8, 0x40)));
  e.gate.send(Buffer.concat(parts));
  await assertConnectionError(t, e, sink, E.ENHANCE_YOUR_CALM);
});

test('PUSH_PROMISE although the edge disabled push (SETTINGS_ENABLE_PUSH 0) → GOAWAY PROTOCOL_ERROR, 502', async (t) => {
  const e = await env(t);
  // The edge announced ENABLE_PUSH = 0 in its SETTINGS.
  const settings = e.gate.frames.find((f) => f.type === T.SETTINGS && (f.flags & F.ACK) === 0)!;
  let push = -1;
  for (let o = 0; o < settings.payload.length; o += 6) if (settings.payload.readUInt16BE(o) === 2) push = settings.payload.readUInt32BE(o + 2);
  t.is(push, 0, 'the edge disables push');
  const { sink, sid } = await e.request();
  const promised = Buffer.concat([u32(2), e.gate.enc.encode([':method', 'GET', ':scheme', 'https', ':authority', 'localhost', ':path', '/pushed'])]);
  e.gate.send(frame(T.PUSH_PROMISE, F.END_HEADERS, sid, promised));
  await assertConnectionError(t, e, sink, E.PROTOCOL_ERROR);
});

test('connection send-window overflow (WINDOW_UPDATE on stream 0 past 2^31-1) → GOAWAY FLOW_CONTROL_ERROR, 502', async (t) => {
  const e = await env(t);
  const { sink } = await e.request();
  e.gate.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)));
  await assertConnectionError(t, e, sink, E.FLOW_CONTROL_ERROR);
});

test('stream send-window overflow (WINDOW_UPDATE on the stream past 2^31-1) → RST_STREAM FLOW_CONTROL_ERROR, 502, the connection lives', async (t) => {
  const e = await env(t);
  const { sink, sid } = await e.request();
  e.gate.send(frame(T.WINDOW_UPDATE, 0, sid, u32(0x7fffffff)));
  await assertStreamErrorAndConnectionLives(t, e, sink, sid, E.FLOW_CONTROL_ERROR);
});

test('DATA beyond the stream window while the client is paused → RST_STREAM FLOW_CONTROL_ERROR, 502; buffering stays within the window', async (t) => {
  const window = 64 * 1024;
  const e = await env(t, { initialWindowSize: window });
  const { sink, stream, sid } = await e.request();
  e.gate.send(frame(T.HEADERS, F.END_HEADERS, sid, e.gate.enc.encode([':status', '200'])));
  await until('the head', () => sink.heads === 1);
  stream.pause(); // The browser stopped reading: nothing is delivered, nothing is returned to the peer.
  const parts: Buffer[] = [];
  for (let i = 0; i < 8; i++) parts.push(frame(T.DATA, 0, sid, Buffer.alloc(16_384, 0x61))); // 128 KiB against a 64 KiB window
  e.gate.send(Buffer.concat(parts));
  await until(`RST_STREAM on ${sid}`, () => e.gate.rst(sid) !== null, 10_000, () => e.gate.framesSummary());
  t.is(e.gate.rst(sid), E.FLOW_CONTROL_ERROR);
  await until('the sink', () => sink.settled);
  t.deepEqual(sink.errors, ['MEZU_TUNNEL_FAILED'], 'the response is cut (the client sees the connection close after its 200 head)');
  t.is(sink.bytes, 0, 'nothing was delivered while paused');
  t.is(e.edge.h2.streams.size, 0, 'the paused buffer went with the stream');
  t.is(e.gate.goaway(), null);
  stream.resume(); // Resuming a failed stream delivers nothing and does not throw.
  t.is(sink.bytes, 0);
});

test('bad HPACK index in a response → GOAWAY COMPRESSION_ERROR, 502', async (t) => {
  const e = await env(t);
  const { sink, sid } = await e.request();
  // Indexed field 254: beyond the 61 static entries and the empty dynamic table (RFC 7541 §2.3.3).
  e.gate.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, Buffer.from([0xff, 0x7f])));
  await assertConnectionError(t, e, sink, E.COMPRESSION_ERROR);
});

for (const [label, value] of [
  ['CR/LF', 'ok\r\nset-cookie: stolen=1'],
  ['a bare LF', 'ok\nx-injected: 1'],
  ['NUL', 'ok\u0000tail'],
] as const) {
  test(`${label} in a response header value → RST_STREAM PROTOCOL_ERROR (RFC 9113 §8.2.1), 502, nothing reaches the client, the connection lives`, async (t) => {
    const e = await env(t);
    const { sink, sid } = await e.request();
    e.gate.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, e.gate.enc.encode([':status', '200', 'x-note', value])));
    await assertStreamErrorAndConnectionLives(t, e, sink, sid, E.PROTOCOL_ERROR);
    t.is(sink.heads, 0, 'the head with the smuggled line was never handed to the client side');
  });
}

test('CR/LF in a response header NAME → RST_STREAM PROTOCOL_ERROR, 502', async (t) => {
  const e = await env(t);
  const { sink, sid } = await e.request();
  e.gate.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, e.gate.enc.encode([':status', '200', 'x-a\r\nx-b', 'v'])));
  await assertStreamErrorAndConnectionLives(t, e, sink, sid, E.PROTOCOL_ERROR);
  t.is(sink.heads, 0);
});

test('many hostile streams in a row leave no state behind (bounded)', async (t) => {
  const e = await env(t);
  for (let i = 0; i < 20; i++) {
    const { sink, sid } = await e.request(`/n${i}`);
    e.gate.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, e.gate.enc.encode([':status', '200', 'x-note', `v${i}\r\nx: y`])));
    await until('the sink', () => sink.settled);
    t.deepEqual(sink.errors, ['MEZU_TUNNEL_FAILED']);
  }
  t.is(e.edge.h2.streams.size, 0);
  t.false(e.edge.h2.closed);
  t.is(e.gate.goaway(), null);
});
