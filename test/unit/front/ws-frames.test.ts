/**
 * RFC 6455 framing on the tunnel side of an edge WebSocket
 * (src/front/ws-frames.ts): the masked client frames the edge writes towards
 * the origin (§5.2, §5.3), the Close payloads and the close codes it may send
 * (§5.5.1, §7.4), and the incremental parser of the origin's unmasked frames.
 *
 * The parser is fed every input whole, byte by byte and in odd-sized chunks:
 * the tunnel hands it DATA frames cut anywhere, so a frame header or a Close
 * payload split across chunks must read the same as one in a single chunk.
 * Every protocol error an origin can commit (§5.1, §5.2, §5.4, §5.5) must be
 * reported once, before any byte of the offending frame reaches the client,
 * and must stop the parser. Frames are built by hand here (not by the code
 * under test); one test also cross-checks both directions against the `ws`
 * package, an independent implementation.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { ASSEMBLE_MAX, ServerFrameParser, clientFrame, closePayload, sendableCloseCode, type ServerFrameSink } from '../../../src/front/ws-frames.js';

// Opcodes spelled out (Opcode is a const enum; the numbers are the RFC's, §5.2).
const CONT = 0x0;
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

// ── reading a client frame, independently of the code under test ──

interface Decoded {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** 2, 4 or 10: which length encoding was used. */
  lengthBytes: number;
  length: number;
  key: Buffer;
  /** The payload with the mask removed. */
  payload: Buffer;
  /** The payload as it is on the wire. */
  wire: Buffer;
}

function decodeClientFrame(f: Buffer): Decoded {
  const b0 = f[0]!;
  const b1 = f[1]!;
  const len7 = b1 & 0x7f;
  let length: number;
  let hl: number;
  if (len7 === 126) {
    length = f.readUInt16BE(2);
    hl = 4;
  } else if (len7 === 127) {
    length = Number(f.readBigUInt64BE(2));
    hl = 10;
  } else {
    length = len7;
    hl = 2;
  }
  const key = f.subarray(hl, hl + 4);
  const wire = f.subarray(hl + 4);
  const payload = Buffer.alloc(wire.length);
  for (let i = 0; i < wire.length; i++) payload[i] = wire[i]! ^ key[i % 4]!;
  return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0x0f, masked: (b1 & 0x80) !== 0, lengthBytes: hl, length, key: Buffer.from(key), payload, wire: Buffer.from(wire) };
}

// ── writing server frames (unmasked), by hand ──

interface FrameOpts {
  fin?: boolean;
  /** RSV1..3 as the bits 0x40, 0x20, 0x10 of the first byte. */
  rsv?: number;
  /** A masking key: a server must never mask (§5.1); used to build that error. */
  mask?: Buffer;
  /** Force a length encoding (the minimal one when absent). */
  encoding?: 7 | 16 | 64;
  /** Write this in the length field instead of the payload's length. */
  declared?: number | bigint;
}

function frame(opcode: number, payload: Buffer | string = Buffer.alloc(0), o: FrameOpts = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const n = o.declared ?? p.length;
  const enc = o.encoding ?? (Number(n) < 126 ? 7 : Number(n) < 65536 ? 16 : 64);
  const b0 = ((o.fin ?? true) ? 0x80 : 0) | (o.rsv ?? 0) | opcode;
  const m = o.mask === undefined ? 0 : 0x80;
  let head: Buffer;
  if (enc === 7) head = Buffer.from([b0, m | Number(n)]);
  else if (enc === 16) {
    head = Buffer.from([b0, m | 126, 0, 0]);
    head.writeUInt16BE(Number(n), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = m | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  if (o.mask === undefined) return Buffer.concat([head, p]);
  const masked = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) masked[i] = p[i]! ^ o.mask[i % 4]!;
  return Buffer.concat([head, o.mask, masked]);
}

const closeBody = (code: number, reason: string | Buffer = '') => {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
};

// ── a sink that records what the parser reports ──

type Event =
  | { t: 'part'; data: Buffer; binary: boolean; first: boolean; last: boolean }
  | { t: 'ping'; data: Buffer }
  | { t: 'pong'; data: Buffer }
  | { t: 'close'; code: number; reason: string }
  | { t: 'error'; why: string };

class Recorder implements ServerFrameSink {
  readonly events: Event[] = [];
  // Parts and control payloads are valid only during the call: copied.
  onMessagePart(part: Buffer, binary: boolean, first: boolean, last: boolean): void {
    this.events.push({ t: 'part', data: Buffer.from(part), binary, first, last });
  }
  onPing(payload: Buffer): void {
    this.events.push({ t: 'ping', data: Buffer.from(payload) });
  }
  onPong(payload: Buffer): void {
    this.events.push({ t: 'pong', data: Buffer.from(payload) });
  }
  onClose(code: number, reason: string): void {
    this.events.push({ t: 'close', code, reason });
  }
  onProtocolError(why: string): void {
    this.events.push({ t: 'error', why });
  }
}

/** How the tunnel may cut the bytes: whole, one byte at a time, and in chunks of 3 and 7 bytes. */
const CUTS: { name: string; size: number }[] = [
  { name: 'one chunk', size: Infinity },
  { name: 'byte by byte', size: 1 },
  { name: 'chunks of 3', size: 3 },
  { name: 'chunks of 7', size: 7 },
];

function feed(bytes: Buffer, size: number): Recorder {
  const r = new Recorder();
  const p = new ServerFrameParser(r);
  if (size === Infinity) p.push(bytes);
  else for (let i = 0; i < bytes.length; i += size) p.push(bytes.subarray(i, i + size));
  return r;
}

/**
 * The events as messages: a message's parts joined into `text:…` or
 * `binary:<hex>` at its last part, control frames as they came. Any break of
 * the part protocol (a part after no `first`, a second `first`, the type
 * changing mid-message, a message never ended) shows up as a `!…` entry, so a
 * deepEqual against the expected list fails on it.
 */
function messages(events: Event[]): string[] {
  const out: string[] = [];
  let open: { binary: boolean; chunks: Buffer[] } | null = null;
  for (const e of events) {
    if (e.t === 'part') {
      if (e.first) {
        if (open !== null) out.push('!first inside a message');
        open = { binary: e.binary, chunks: [] };
      } else if (open === null) {
        out.push('!part without first');
        open = { binary: e.binary, chunks: [] };
      }
      if (e.binary !== open.binary) out.push('!type changed mid-message');
      open.chunks.push(e.data);
      if (e.last) {
        const all = Buffer.concat(open.chunks);
        out.push(open.binary ? `binary:${all.toString('hex')}` : `text:${all.toString('utf8')}`);
        open = null;
      }
    } else if (e.t === 'ping') out.push(`ping:${e.data.toString('latin1')}`);
    else if (e.t === 'pong') out.push(`pong:${e.data.toString('latin1')}`);
    else if (e.t === 'close') out.push(`close:${e.code}:${e.reason}`);
    else out.push('error');
  }
  if (open !== null) out.push('!unfinished message');
  return out;
}

/** Every cut gives `expected`. */
function parsesAs(t: ExecutionContext, bytes: Buffer, expected: string[]): void {
  for (const c of CUTS) t.deepEqual(messages(feed(bytes, c.size).events), expected, c.name);
}

/**
 * Every cut reports exactly one protocol error, matching `why`, as the last
 * event, after `before` (what the valid frames ahead of it delivered) — and
 * nothing of the bad frame, nor of the valid frame pushed after it.
 */
function failsWith(t: ExecutionContext, bytes: Buffer, why: RegExp, before: string[] = []): void {
  const trailer = frame(TEXT, 'after the error');
  for (const c of CUTS) {
    const r = feed(Buffer.concat([bytes, trailer]), c.size);
    const errors = r.events.filter((e): e is Extract<Event, { t: 'error' }> => e.t === 'error');
    t.is(errors.length, 1, `${c.name}: one protocol error`);
    t.regex(errors[0]?.why ?? '', why, c.name);
    t.is(r.events[r.events.length - 1]!.t, 'error', `${c.name}: nothing after the error`);
    // Messages delivered before the error; a message left open by the error is not an invariant break here.
    const got = messages(r.events).filter((m) => m !== '!unfinished message');
    t.deepEqual(got, [...before, 'error'], c.name);
  }
}

// ── clientFrame ──

test('clientFrame: FIN set, no reserved bit, the opcode, the mask bit set and the payload XOR its 4-byte key (§5.2, §5.3)', (t) => {
  for (const opcode of [TEXT, BINARY, CLOSE, PING, PONG]) {
    for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 31, 125]) {
      const payload = randomBytes(n);
      const f = clientFrame(opcode, payload);
      const d = decodeClientFrame(f);
      t.true(d.fin, `FIN, opcode ${opcode}, ${n} bytes`);
      t.is(d.rsv, 0);
      t.is(d.opcode, opcode);
      t.true(d.masked, 'every client frame is masked (§5.1)');
      t.is(d.key.length, 4);
      t.is(d.length, n);
      t.is(f.length, 2 + 4 + n, 'header, key and payload, nothing else');
      t.deepEqual(d.payload, payload, `opcode ${opcode}, ${n} bytes: payload XOR key gives the payload back`);
    }
  }
});

test('clientFrame: the payload goes on the wire masked, not in the clear', (t) => {
  // 64 bytes of one value: the wire bytes cycle through value ^ key[i % 4].
  const payload = Buffer.alloc(64, 0x41);
  const f = clientFrame(BINARY, payload);
  const d = decodeClientFrame(f);
  for (let i = 0; i < 64; i++) t.is(d.wire[i], 0x41 ^ d.key[i % 4]!);
  // A zero key would leave it in the clear (odds 2^-32 per frame): draw until one is non-zero.
  let k = d;
  while (k.key.readUInt32BE(0) === 0) k = decodeClientFrame(clientFrame(BINARY, payload));
  t.false(k.wire.equals(payload), 'the wire bytes differ from the payload');
});

test('clientFrame: the caller\'s buffer is copied, not masked in place nor shared', (t) => {
  const payload = Buffer.from('hello, origin');
  const copy = Buffer.from(payload);
  const f = clientFrame(TEXT, payload);
  t.deepEqual(payload, copy, 'the caller\'s bytes are untouched');
  payload.fill(0);
  t.deepEqual(decodeClientFrame(f).payload, copy, 'the frame does not alias the caller\'s buffer');
  // A Uint8Array (uWS hands an ArrayBuffer view) works the same.
  const u8 = new Uint8Array([1, 2, 3, 4, 5, 6]);
  t.deepEqual([...decodeClientFrame(clientFrame(BINARY, u8)).payload], [1, 2, 3, 4, 5, 6]);
});

test('clientFrame: 7-bit length up to 125, 16-bit from 126 to 65535, 64-bit from 65536 (§5.2)', (t) => {
  const cases: [number, number, number][] = [
    // length, header bytes before the key, the 7-bit field
    [0, 2, 0],
    [125, 2, 125],
    [126, 4, 126],
    [127, 4, 126],
    [65535, 4, 126],
    [65536, 10, 127],
    [70001, 10, 127],
  ];
  for (const [n, hl, len7] of cases) {
    const payload = randomBytes(n);
    const f = clientFrame(BINARY, payload);
    t.is(f[1]! & 0x7f, len7, `${n}: the 7-bit length field`);
    t.is(f[1]! & 0x80, 0x80, `${n}: masked`);
    t.is(f.length, hl + 4 + n, `${n}: ${hl} header bytes, the key, the payload`);
    if (hl === 4) t.is(f.readUInt16BE(2), n, `${n}: 16-bit length`);
    if (hl === 10) {
      t.is(f.readUInt32BE(2), 0, `${n}: high 32 bits zero (and so the most significant bit, §5.2)`);
      t.is(f.readUInt32BE(6), n, `${n}: low 32 bits`);
    }
    const d = decodeClientFrame(f);
    t.is(d.lengthBytes, hl);
    t.true(d.payload.equals(payload), `${n}: unmasks to the payload`);
  }
});

test('clientFrame: a fresh masking key per frame, also across the refill of the key pool (§5.3, §10.3)', (t) => {
  // The pool holds 1024 keys; 3000 frames go through it three times. Collisions between 3000
  // random 32-bit keys have odds of about 1 in 1000, so allow a couple; a reused key or a pool
  // refilled with the same bytes would give hundreds.
  const keys: number[] = [];
  for (let i = 0; i < 3000; i++) keys.push(decodeClientFrame(clientFrame(TEXT, Buffer.from('x'))).key.readUInt32BE(0));
  t.true(new Set(keys).size >= 2997, `distinct keys: ${new Set(keys).size} of 3000`);
  let consecutive = 0;
  for (let i = 1; i < keys.length; i++) if (keys[i] === keys[i - 1]) consecutive++;
  t.true(consecutive <= 1, 'consecutive frames do not share a key');
  let samePlaceInPool = 0;
  for (let i = 0; i + 1024 < keys.length; i++) if (keys[i] === keys[i + 1024]) samePlaceInPool++;
  t.true(samePlaceInPool <= 1, 'a refilled pool is new random bytes, not the old ones');
});

// ── closePayload ──

test('closePayload: the code in network order, then the reason in UTF-8 (§5.5.1)', (t) => {
  t.deepEqual([...closePayload(1000, 'bye')], [0x03, 0xe8, 0x62, 0x79, 0x65]);
  t.deepEqual([...closePayload(4999, '')], [0x13, 0x87]);
  t.deepEqual([...closePayload(1008, 'é')], [0x03, 0xf0, 0xc3, 0xa9]);
});

test('closePayload: code 0 is a Close with no body (how a received 1005 is answered)', (t) => {
  t.is(closePayload(0, '').length, 0);
  t.is(closePayload(0, 'ignored').length, 0, 'no reason without a code (§5.5.1)');
});

test('closePayload: the reason is cut so the payload fits a control frame, 125 bytes (§5.5)', (t) => {
  const fits = 'r'.repeat(123);
  t.is(closePayload(1000, fits).length, 125);
  t.is(closePayload(1000, fits).toString('latin1', 2), fits, 'a 123-byte reason is kept whole');
  const over = closePayload(1000, 'q'.repeat(124));
  t.is(over.length, 125, 'one byte over: cut to 123');
  t.is(over.toString('latin1', 2), 'q'.repeat(123));
  const long = 'a'.repeat(300);
  const p = closePayload(1001, long);
  t.is(p.length, 125);
  t.is(p.readUInt16BE(0), 1001);
  t.is(p.toString('latin1', 2), 'a'.repeat(123));
});

// A reason over 123 bytes is cut; 61 × 'é' (2 bytes each) + '€' (3 bytes) is 125 bytes, and a cut
// at byte 123 would keep the first byte of '€' (0xE2), which is not UTF-8 — a Close reason must be
// (§5.5.1) and a receiver MUST fail the connection on one that is not (§8.1). The cut goes back to
// the character boundary: 122 bytes of reason.
test('closePayload: a cut reason is still valid UTF-8 (cut at a character boundary, §5.5.1, §8.1)', (t) => {
  const reason = 'é'.repeat(61) + '€';
  const p = closePayload(1000, reason);
  t.true(p.length <= 125);
  const r = p.subarray(2);
  t.true(r.equals(Buffer.from(r.toString('utf8'), 'utf8')), 'the reason bytes are well-formed UTF-8');
  t.is(r.toString('utf8'), 'é'.repeat(61));
});

// ── sendableCloseCode ──

test('sendableCloseCode: 1000–1003, 1007–1014 and 3000–4999 may be sent (§7.4.1, §7.4.2, IANA registry)', (t) => {
  for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3001, 3999, 4000, 4321, 4999]) {
    t.true(sendableCloseCode(c), String(c));
  }
});

test('sendableCloseCode: 1004 (reserved), 1005, 1006, 1015 (never on the wire), unassigned 1016–2999, below 1000 and from 5000 may not', (t) => {
  for (const c of [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535, -1000]) {
    t.false(sendableCloseCode(c), String(c));
  }
});

// ── ServerFrameParser: messages ──

test('parser: single-frame text and binary messages, several in a row, however the bytes are cut', (t) => {
  const bin = Buffer.from([0x00, 0xff, 0x10, 0x80]);
  parsesAs(t, Buffer.concat([frame(TEXT, 'hello'), frame(BINARY, bin), frame(TEXT, 'ünïcødé ✓'), frame(TEXT, '')]), [
    'text:hello',
    'binary:00ff1080',
    'text:ünïcødé ✓',
    'text:',
  ]);
});

test('parser: a single-frame message in one chunk is one part, first and last', (t) => {
  const r = feed(frame(BINARY, Buffer.from([1, 2, 3])), Infinity);
  t.deepEqual(r.events, [{ t: 'part', data: Buffer.from([1, 2, 3]), binary: true, first: true, last: true }]);
  const e = feed(frame(TEXT, ''), Infinity);
  t.deepEqual(e.events, [{ t: 'part', data: Buffer.alloc(0), binary: false, first: true, last: true }], 'an empty message is still delivered');
});

test('parser: 16-bit and 64-bit lengths, at the 125/126 and 65535/65536 boundaries', (t) => {
  for (const n of [125, 126, 65535, 65536]) {
    const payload = randomBytes(n);
    for (const size of [Infinity, 1000, 1]) {
      const r = feed(frame(BINARY, payload), size);
      t.deepEqual(messages(r.events), [`binary:${payload.toString('hex')}`], `${n} bytes, chunks of ${size}`);
    }
  }
  // A 64-bit encoding of a short length is read as its value (§5.2 asks senders for the minimal one).
  t.deepEqual(messages(feed(frame(TEXT, 'abc', { encoding: 64 }), Infinity).events), ['text:abc']);
  t.deepEqual(messages(feed(frame(TEXT, 'abc', { encoding: 16 }), 1).events), ['text:abc']);
});

test('parser: a frame\'s payload is handed on as it arrives, never held until the frame is whole', (t) => {
  const r = new Recorder();
  const p = new ServerFrameParser(r);
  // A binary frame announcing 1 MiB; three 1000-byte chunks of it arrive.
  p.push(frame(BINARY, Buffer.alloc(0), { declared: 1 << 20 }));
  t.deepEqual(r.events, [], 'nothing before the first payload byte');
  for (let i = 0; i < 3; i++) p.push(Buffer.alloc(1000, i));
  t.is(r.events.length, 3, 'one part per chunk');
  t.deepEqual(
    r.events.map((e) => (e.t === 'part' ? [e.data.length, e.data[0], e.binary, e.first, e.last] : e.t)),
    [
      [1000, 0, true, true, false],
      [1000, 1, true, false, false],
      [1000, 2, true, false, false],
    ],
  );
  // The rest, and the frame ends with the last part.
  p.push(Buffer.alloc((1 << 20) - 3000, 9));
  const last = r.events[3]!;
  t.true(last.t === 'part' && last.last && !last.first && last.data.length === (1 << 20) - 3000);
});

test('parser: a fragmented message (continuation frames) is delivered as parts: first on the first, last on the FIN frame', (t) => {
  const bytes = Buffer.concat([frame(TEXT, 'Hel', { fin: false }), frame(CONT, 'lo, ', { fin: false }), frame(CONT, 'world')]);
  parsesAs(t, bytes, ['text:Hello, world']);
  t.deepEqual(feed(bytes, Infinity).events, [
    { t: 'part', data: Buffer.from('Hel'), binary: false, first: true, last: false },
    { t: 'part', data: Buffer.from('lo, '), binary: false, first: false, last: false },
    { t: 'part', data: Buffer.from('world'), binary: false, first: false, last: true },
  ]);
  // The type of the message is the first frame's, kept by its continuations.
  const bin = Buffer.concat([frame(BINARY, Buffer.from([1]), { fin: false }), frame(CONT, Buffer.from([2]))]);
  t.deepEqual(
    feed(bin, Infinity).events.map((e) => (e.t === 'part' ? e.binary : null)),
    [true, true],
  );
});

test('parser: a fragment split across UTF-8 characters is passed on as bytes, rejoined by the message', (t) => {
  const text = Buffer.from('€uro', 'utf8'); // '€' is 3 bytes
  parsesAs(t, Buffer.concat([frame(TEXT, text.subarray(0, 1), { fin: false }), frame(CONT, text.subarray(1, 2), { fin: false }), frame(CONT, text.subarray(2))]), ['text:€uro']);
});

test('parser: empty fragments — an empty first frame still starts the message, an empty FIN frame still ends it, an empty middle one is skipped', (t) => {
  const bytes = Buffer.concat([frame(BINARY, '', { fin: false }), frame(CONT, 'ab', { fin: false }), frame(CONT, '', { fin: false }), frame(CONT, '')]);
  t.deepEqual(feed(bytes, Infinity).events, [
    { t: 'part', data: Buffer.alloc(0), binary: true, first: true, last: false },
    { t: 'part', data: Buffer.from('ab'), binary: true, first: false, last: false },
    { t: 'part', data: Buffer.alloc(0), binary: true, first: false, last: true },
  ]);
  parsesAs(t, bytes, [`binary:${Buffer.from('ab').toString('hex')}`]);
});

test('parser: control frames between the fragments of a message are delivered at once, and the message goes on (§5.4)', (t) => {
  const bytes = Buffer.concat([
    frame(TEXT, 'one ', { fin: false }),
    frame(PING, 'p1'),
    frame(CONT, 'two ', { fin: false }),
    frame(PONG, 'p2'),
    frame(PING, ''),
    frame(CONT, 'three'),
    frame(BINARY, Buffer.from([7])),
  ]);
  parsesAs(t, bytes, ['ping:p1', 'pong:p2', 'ping:', 'text:one two three', 'binary:07']);
  const kinds = feed(bytes, Infinity).events.map((e) => (e.t === 'part' ? `part${e.first ? ' first' : ''}${e.last ? ' last' : ''}` : e.t));
  t.deepEqual(kinds, ['part first', 'ping', 'part', 'pong', 'ping', 'part last', 'part first last']);
});

test('parser: a Close between fragments is delivered too (the message it cut stays unfinished)', (t) => {
  const r = feed(Buffer.concat([frame(TEXT, 'half', { fin: false }), frame(CLOSE, closeBody(1001, 'going'))]), 1);
  t.deepEqual(
    r.events.map((e) => e.t),
    ['part', 'part', 'part', 'part', 'close'],
  );
  t.deepEqual(r.events[4], { t: 'close', code: 1001, reason: 'going' });
});

// ── ServerFrameParser: control frames ──

test('parser: ping and pong with their payloads, up to 125 bytes, assembled whole however they are cut', (t) => {
  const max = Buffer.alloc(125, 0x61);
  for (const c of CUTS) {
    const r = feed(Buffer.concat([frame(PING, 'are you there'), frame(PONG, 'yes'), frame(PING, max), frame(PONG, '')]), c.size);
    t.deepEqual(
      r.events,
      [
        { t: 'ping', data: Buffer.from('are you there') },
        { t: 'pong', data: Buffer.from('yes') },
        { t: 'ping', data: max },
        { t: 'pong', data: Buffer.alloc(0) },
      ],
      c.name,
    );
  }
});

test('parser: Close with a code and a UTF-8 reason, a code alone, and no body at all (1005, §7.1.5)', (t) => {
  for (const c of CUTS) {
    t.deepEqual(feed(frame(CLOSE, closeBody(1000, 'normal closure')), c.size).events, [{ t: 'close', code: 1000, reason: 'normal closure' }], c.name);
    t.deepEqual(feed(frame(CLOSE, closeBody(4001, 'ça va ✓')), c.size).events, [{ t: 'close', code: 4001, reason: 'ça va ✓' }], `${c.name}: multi-byte reason`);
    t.deepEqual(feed(frame(CLOSE, closeBody(1011)), c.size).events, [{ t: 'close', code: 1011, reason: '' }], `${c.name}: code only`);
    t.deepEqual(feed(frame(CLOSE), c.size).events, [{ t: 'close', code: 1005, reason: '' }], `${c.name}: no body`);
  }
  // The longest Close: code + 123 bytes of reason.
  const r = feed(frame(CLOSE, closeBody(1000, 'z'.repeat(123))), 1);
  t.deepEqual(r.events, [{ t: 'close', code: 1000, reason: 'z'.repeat(123) }]);
});

// ── ServerFrameParser: protocol errors ──

test('parser error: a masked server frame (§5.1), before any of its payload is passed on', (t) => {
  failsWith(t, frame(TEXT, 'secret', { mask: Buffer.from([1, 2, 3, 4]) }), /mask/);
  failsWith(t, Buffer.concat([frame(TEXT, 'ok'), frame(PING, 'x', { mask: Buffer.from([9, 9, 9, 9]) })]), /mask/, ['text:ok']);
});

test('parser error: any reserved bit set with no extension negotiated (§5.2)', (t) => {
  for (const rsv of [0x40, 0x20, 0x10, 0x70]) {
    failsWith(t, frame(TEXT, 'compressed?', { rsv }), /reserved/);
    failsWith(t, frame(PING, '', { rsv }), /reserved/);
  }
});

test('parser error: unknown opcodes, data (3–7) and control (0xB–0xF) (§5.2)', (t) => {
  for (const op of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) failsWith(t, frame(op, 'x'), /opcode/);
});

test('parser error: a control frame longer than 125 bytes or fragmented (§5.5)', (t) => {
  failsWith(t, frame(PING, Buffer.alloc(126)), /control/);
  failsWith(t, frame(CLOSE, closeBody(1000, 'r'.repeat(124))), /control/);
  failsWith(t, frame(PONG, 'x', { fin: false }), /control/);
  failsWith(t, frame(CLOSE, closeBody(1000), { fin: false }), /control/);
  // The length is judged from the header: no need to read 126 bytes first.
  const r = new Recorder();
  new ServerFrameParser(r).push(Buffer.from([0x89, 126, 0x00, 0x7e]));
  t.deepEqual(r.events.map((e) => e.t), ['error']);
});

test('parser error: a continuation frame with no message started (§5.4)', (t) => {
  failsWith(t, frame(CONT, 'orphan'), /continuation/);
  failsWith(t, Buffer.concat([frame(TEXT, 'done'), frame(CONT, 'late')]), /continuation/, ['text:done']);
});

test('parser error: a new data frame while a fragmented message is still open (§5.4)', (t) => {
  failsWith(t, Buffer.concat([frame(TEXT, 'a', { fin: false }), frame(TEXT, 'b')]), /message/);
  failsWith(t, Buffer.concat([frame(BINARY, 'a', { fin: false }), frame(PING, 'ok'), frame(BINARY, 'b', { fin: false })]), /message/, ['ping:ok']);
});

test('parser error: a Close with a one-byte payload (§5.5.1)', (t) => {
  failsWith(t, frame(CLOSE, Buffer.from([0x03])), /one-byte|close/i);
});

test('parser error: a 64-bit length with the most significant bit set (§5.2), or past 2^53', (t) => {
  failsWith(t, frame(BINARY, '', { encoding: 64, declared: 0x8000000000000000n }), /length|2\^53/);
  failsWith(t, frame(BINARY, '', { encoding: 64, declared: 0xffffffffffffffffn }), /length|2\^53/);
  failsWith(t, frame(BINARY, '', { encoding: 64, declared: 2n ** 53n }), /length|2\^53/);
  // Just under 2^53 is a length like any other (the frame is simply long).
  const r = new Recorder();
  const p = new ServerFrameParser(r);
  p.push(frame(BINARY, '', { encoding: 64, declared: 2n ** 53n - 1n }));
  p.push(Buffer.from('abc'));
  t.deepEqual(r.events, [{ t: 'part', data: Buffer.from('abc'), binary: true, first: true, last: false }]);
});

test('parser: after a protocol error nothing more is parsed or reported, whatever is pushed', (t) => {
  const r = new Recorder();
  const p = new ServerFrameParser(r);
  p.push(frame(CONT, 'x'));
  p.push(frame(TEXT, 'valid'));
  p.push(frame(CLOSE, closeBody(1000)));
  p.push(frame(CONT, 'again'));
  t.deepEqual(r.events.map((e) => e.t), ['error']);
});

// A Close reason that is not UTF-8 (here an encoded surrogate, Autobahn case 7.5.1) fails the
// connection (§5.5.1, §8.1) rather than reaching onClose with U+FFFD in place of the bad bytes.
test('parser error: a Close reason that is not valid UTF-8 (§5.5.1, §8.1)', (t) => {
  const bad = Buffer.from('cebae1bdb9cf83cebcceb5eda080', 'hex');
  const r = feed(frame(CLOSE, closeBody(1000, bad)), Infinity);
  t.deepEqual(r.events.map((e) => e.t), ['error']);
});

// ── against an independent implementation ──

/** A `ws` server and a raw TCP client that has done the opening handshake by hand. */
async function wsPeer(t: ExecutionContext): Promise<{ socket: net.Socket; server: Promise<WsSocket> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => r());
  }));
  const server = new Promise<WsSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const port = (wss.address() as net.AddressInfo).port;
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  // Read up to the end of the 101's head; what follows is frames.
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`no 101: ${head}`));
      if (end + 4 < head.length) socket.unshift(Buffer.from(head.slice(end + 4), 'latin1'));
      resolve();
    };
    socket.on('data', onData);
  });
  return { socket, server };
}

test('interop with ws: its server reads clientFrame\'s frames (7/16/64-bit lengths, masked) and ServerFrameParser reads its frames', async (t) => {
  const { socket, server } = await wsPeer(t);
  const ws = await server;
  const got: { data: Buffer; binary: boolean }[] = [];
  ws.on('message', (raw, isBinary: boolean) => {
    const data = raw as Buffer; // one frame or message: a Buffer (binaryType 'nodebuffer')
    got.push({ data: Buffer.from(data), binary: isBinary });
    // Echo back: the same message as one frame, then as three fragments (ws's `fin` option).
    ws.send(data, { binary: isBinary });
    if (data.length >= 3) {
      ws.send(data.subarray(0, 1), { binary: isBinary, fin: false });
      ws.send(data.subarray(1, 2), { binary: isBinary, fin: false });
      ws.send(data.subarray(2), { binary: isBinary, fin: true });
    }
  });
  const r = new Recorder();
  const parser = new ServerFrameParser(r);
  socket.on('data', (c: Buffer) => parser.push(c));

  const sent = [Buffer.from('hi'), randomBytes(125), randomBytes(126), randomBytes(65535), randomBytes(65536)];
  socket.write(clientFrame(TEXT, sent[0]!));
  for (const b of sent.slice(1)) socket.write(clientFrame(BINARY, b));
  const wanted = 1 + 2 * (sent.length - 1); // 'hi' is echoed once (too short to split)
  const deadline = Date.now() + 30_000; // ends as soon as every echo is read; generous for a loaded machine
  while (messages(r.events).length < wanted && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));

  t.deepEqual(got.map((g) => g.binary), [false, true, true, true, true], 'ws read every frame, with its type');
  for (let i = 0; i < sent.length; i++) t.true(got[i]?.data.equals(sent[i]!), `ws read message ${i} intact`);
  const expected: string[] = ['text:hi'];
  for (const b of sent.slice(1)) expected.push(`binary:${b.toString('hex')}`, `binary:${b.toString('hex')}`);
  t.deepEqual(messages(r.events), expected, 'the parser read ws\'s frames, whole and fragmented');

  // Ping from ws, then its close with a code and a reason.
  ws.ping(Buffer.from('ping!'));
  ws.close(4000, 'done here');
  const until = Date.now() + 5000;
  while (!r.events.some((e) => e.t === 'close') && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
  t.deepEqual(messages(r.events).slice(expected.length), ['ping:ping!', 'close:4000:done here']);
});

test('a whole message in one frame up to ASSEMBLE_MAX reaches the client in one piece however the tunnel cut it; a longer one streams in pieces', (t) => {
  const small = Buffer.alloc(16 * 1024, 5);
  const r = feed(frame(BINARY, small), 1000);
  t.is(r.events.length, 1, 'one piece, not one per tunnel chunk');
  const e = r.events[0]! as { t: string; data: Buffer; first: boolean; last: boolean };
  t.true(e.first && e.last);
  t.true(e.data.equals(small));
  const atMax = feed(frame(TEXT, Buffer.alloc(ASSEMBLE_MAX, 0x61)), 16 * 1024);
  t.is(atMax.events.length, 1, 'exactly ASSEMBLE_MAX: still whole');
  const big = Buffer.alloc(ASSEMBLE_MAX + 1, 6);
  const rb = feed(frame(BINARY, big), 16 * 1024);
  t.true(rb.events.length > 1, 'past ASSEMBLE_MAX: streamed, never held whole');
  t.true(Buffer.concat(rb.events.map((x) => (x as { data: Buffer }).data)).equals(big));
  // A fragmented message is streamed as its frames come (only single-frame messages are assembled).
  const frag = feed(Buffer.concat([frame(TEXT, 'ab', { fin: false }), frame(0x0, 'cd')]), 1);
  t.true(frag.events.length >= 2);
});
