/**
 * RFC 6455 framing on the tunnel side of an edge WebSocket. uWS parses the
 * client's frames into messages; on the tunnel, the extended CONNECT stream
 * (RFC 8441 §5) carries the WebSocket byte stream itself, which the
 * Warpgate relays to the origin unparsed. So the edge writes client-to-server
 * frames (masked, §5.3) and reads the origin's server-to-client frames
 * (unmasked) here.
 *
 * Reading streams: a frame's payload is handed on as the tunnel delivers it
 * (each DATA frame ≤ 16 KiB), so a large or endless origin message costs the
 * edge no more than one tunnel chunk. Assembled are control frames (≤ 125
 * bytes, §5.5) and a whole message in one frame of at most ASSEMBLE_MAX: that
 * one goes to the client in one send, not one per tunnel chunk (a 16 KiB echo
 * crossed as two pieces, a 64 KiB one as five: bench/RESULTS.md, WebSockets).
 */
import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

export const enum Opcode {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xa,
}

/**
 * Masking keys (§5.3: unpredictable, from a strong source), drawn from a
 * refilled pool: one randomFillSync per 1024 frames instead of one per frame.
 */
const MASKS = Buffer.allocUnsafe(4096);
let maskPos = MASKS.length;

/** Payloads from this size are masked a 32-bit word at a time (below it, the typed-array view costs more than it saves). */
const WORD_MASK_MIN = 256;
const MASK_BYTES = new Uint8Array(4);
const MASK_WORD = new Int32Array(MASK_BYTES.buffer);

/**
 * One complete masked client frame (FIN set) carrying `payload`. The payload
 * is copied once, into the frame, and masked there: the caller's buffer may
 * be uWS's, which it neuters on return.
 */
export function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
  let f: Buffer;
  if (n < WORD_MASK_MIN) f = Buffer.allocUnsafe(hl + 4 + n);
  else {
    // Placed so the payload starts 4-byte aligned in its ArrayBuffer: masked a 32-bit word at a time.
    const room = Buffer.allocUnsafe(hl + 4 + n + 3);
    const skip = (4 - ((room.byteOffset + hl + 4) & 3)) & 3;
    f = room.subarray(skip, skip + hl + 4 + n);
  }
  f[0] = 0x80 | opcode;
  if (n < 126) f[1] = 0x80 | n;
  else if (n < 65536) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(n, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeUInt32BE(Math.floor(n / 0x100000000), 2);
    f.writeUInt32BE(n >>> 0, 6);
  }
  if (maskPos === MASKS.length) {
    randomFillSync(MASKS);
    maskPos = 0;
  }
  const m0 = MASKS[maskPos]!;
  const m1 = MASKS[maskPos + 1]!;
  const m2 = MASKS[maskPos + 2]!;
  const m3 = MASKS[maskPos + 3]!;
  maskPos += 4;
  f[hl] = m0;
  f[hl + 1] = m1;
  f[hl + 2] = m2;
  f[hl + 3] = m3;
  const o = hl + 4;
  let i = 0;
  if (n >= WORD_MASK_MIN) {
    // A 16 KiB message masked a byte at a time was a fifth of an edge worker's time (bench/RESULTS.md).
    f.set(payload, o);
    MASK_BYTES[0] = m0;
    MASK_BYTES[1] = m1;
    MASK_BYTES[2] = m2;
    MASK_BYTES[3] = m3;
    const m = MASK_WORD[0]!; // the same byte order as the words below: both are views in this machine's order
    const words = new Int32Array(f.buffer, f.byteOffset + o, n >>> 2);
    for (let w = 0; w < words.length; w++) words[w] ^= m;
    i = words.length << 2;
    for (; i < n; i++) f[o + i] = payload[i]! ^ MASK_BYTES[i & 3]!;
    return f;
  }
  for (; i + 4 <= n; i += 4) {
    f[o + i] = payload[i]! ^ m0;
    f[o + i + 1] = payload[i + 1]! ^ m1;
    f[o + i + 2] = payload[i + 2]! ^ m2;
    f[o + i + 3] = payload[i + 3]! ^ m3;
  }
  for (; i < n; i++) f[o + i] = payload[i]! ^ MASKS[maskPos - 4 + (i & 3)]!;
  return f;
}

/** A Close frame's payload (§5.5.1): the code, then the UTF-8 reason, at most 125 bytes in all. */
export function closePayload(code: number, reason: string): Buffer {
  if (code === 0) return Buffer.alloc(0);
  let r = Buffer.from(reason, 'utf8');
  if (r.length > 123) {
    // A control frame carries 125 bytes at most (§5.5); the reason must stay UTF-8 (§5.5.1), so the
    // cut goes back to the start of the character it would split (continuation bytes are 10xxxxxx).
    let end = 123;
    while (end > 0 && (r[end]! & 0xc0) === 0x80) end--;
    r = r.subarray(0, end);
  }
  const p = Buffer.allocUnsafe(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

/**
 * Close codes an endpoint may send (§7.4.1, §7.4.2): 1000–1003, 1007–1014
 * and 3000–4999. 1004, 1005, 1006 and 1015 are reserved and never go on the wire.
 */
export function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** What the parser found; the sink acts on each as it comes. */
export interface ServerFrameSink {
  /**
   * Payload bytes of a data message, as they arrive: `first` on the first
   * piece of a message (with its type), `last` on the piece that ends it (a
   * piece may be both, and may be empty). Valid only during the call.
   */
  onMessagePart(part: Buffer, binary: boolean, first: boolean, last: boolean): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** `code` 1005 when the frame carried none (§7.1.5). */
  onClose(code: number, reason: string): void;
  /** The origin broke RFC 6455: the socket must be failed (§7.1.7). */
  onProtocolError(why: string): void;
}

const S_HEAD = 0;
const S_PAYLOAD = 1;
const S_FAILED = 2;

/** Incremental parser of the origin's (server-to-client, unmasked) frames. */
export class ServerFrameParser {
  private state = S_HEAD;
  /** Header bytes gathered across chunks (at most 10: no mask key on server frames). */
  private readonly head = Buffer.alloc(10);
  private headLen = 0;
  private opcode = 0;
  private fin = false;
  private remaining = 0;
  /** A data message is in progress (its first frame came, its FIN frame has not). */
  private inMessage = false;
  private messageBinary = false;
  /** The client has been given the message's first piece. */
  private started = false;
  /** Control frame payload being gathered. */
  private control: Buffer | null = null;
  private controlLen = 0;
  /** The current frame is a whole message of at most ASSEMBLE_MAX bytes: handed on in one piece. */
  private assemble = false;
  private frameLen = 0;
  /** Its payload gathered so far, when it did not arrive in one piece. */
  private whole: Buffer | null = null;
  private wholeLen = 0;

  constructor(private readonly sink: ServerFrameSink) {}

  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len && this.state !== S_FAILED) {
      if (this.state === S_HEAD) {
        off = this.readHead(chunk, off);
        continue;
      }
      const take = Math.min(this.remaining, len - off);
      const part = chunk.subarray(off, off + take);
      off += take;
      this.remaining -= take;
      this.onPayload(part);
    }
  }

  private readHead(chunk: Buffer, off: number): number {
    const h = this.head;
    // The first two bytes say how long the header is.
    while (this.headLen < 2 && off < chunk.length) h[this.headLen++] = chunk[off++]!;
    if (this.headLen < 2) return off;
    const b0 = h[0]!;
    const b1 = h[1]!;
    const len7 = b1 & 0x7f;
    const need = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
    while (this.headLen < need && off < chunk.length) h[this.headLen++] = chunk[off++]!;
    if (this.headLen < need) return off;
    this.headLen = 0;
    if ((b0 & 0x70) !== 0) return this.fail('a reserved bit is set and no extension was negotiated (RFC 6455 §5.2)', off);
    if ((b1 & 0x80) !== 0) return this.fail('a server frame is masked (RFC 6455 §5.1)', off);
    let n: number;
    if (len7 === 126) n = h.readUInt16BE(2);
    else if (len7 === 127) {
      const hi = h.readUInt32BE(2);
      if (hi > 0x1fffff) return this.fail('a frame length above 2^53', off);
      n = hi * 0x100000000 + h.readUInt32BE(6);
    } else n = len7;
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode >= 0x8) {
      if (opcode > Opcode.Pong) return this.fail(`unknown control opcode ${opcode}`, off);
      if (!fin || n > 125) return this.fail('a fragmented or long control frame (RFC 6455 §5.5)', off);
      this.control = Buffer.allocUnsafe(n);
      this.controlLen = 0;
    } else if (opcode === Opcode.Continuation) {
      if (!this.inMessage) return this.fail('a continuation frame outside a message', off);
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.inMessage) return this.fail('a new message before the last one ended', off);
      this.inMessage = true;
      this.messageBinary = opcode === Opcode.Binary;
      this.started = false;
    } else return this.fail(`unknown data opcode ${opcode}`, off);
    this.opcode = opcode;
    this.fin = fin;
    this.remaining = n;
    this.frameLen = n;
    this.assemble = fin && opcode !== Opcode.Continuation && opcode < 0x8 && n <= ASSEMBLE_MAX;
    this.state = S_PAYLOAD;
    if (n === 0) this.onPayload(EMPTY);
    return off;
  }

  private onPayload(piece: Buffer): void {
    const done = this.remaining === 0;
    let part = piece;
    if (this.opcode >= 0x8) {
      part.copy(this.control!, this.controlLen);
      this.controlLen += part.length;
      if (!done) return;
      const p = this.control!;
      this.control = null;
      this.state = S_HEAD;
      if (this.opcode === Opcode.Ping) this.sink.onPing(p);
      else if (this.opcode === Opcode.Pong) this.sink.onPong(p);
      else {
        if (p.length === 1) return void this.fail('a close frame with a one-byte payload (RFC 6455 §5.5.1)', 0);
        const code = p.length >= 2 ? p.readUInt16BE(0) : 1005;
        // The reason must be UTF-8; an endpoint that gets one that is not fails the connection (§8.1).
        if (p.length > 2 && !isUtf8(p.subarray(2))) return void this.fail('a close reason that is not UTF-8 (RFC 6455 §5.5.1, §8.1)', 0);
        this.sink.onClose(code, p.length > 2 ? p.toString('utf8', 2) : '');
      }
      return;
    }
    if (this.assemble && (!done || this.whole !== null)) {
      // Copied only when it came in pieces; a message that arrived whole is handed on as it is.
      if (this.whole === null) {
        this.whole = Buffer.allocUnsafe(this.frameLen);
        this.wholeLen = 0;
      }
      part.copy(this.whole, this.wholeLen);
      this.wholeLen += part.length;
      if (!done) return;
      part = this.whole;
      this.whole = null;
    }
    const last = done && this.fin;
    // An empty piece is handed on only when it starts or ends the message.
    if (part.length > 0 || last || !this.started) {
      const first = !this.started;
      this.started = true;
      this.sink.onMessagePart(part, this.messageBinary, first, last);
    }
    if (done) {
      this.state = S_HEAD;
      if (this.fin) this.inMessage = false;
    }
  }

  private fail(why: string, off: number): number {
    this.state = S_FAILED;
    this.sink.onProtocolError(why);
    return off;
  }
}

const EMPTY = Buffer.alloc(0);
/** A whole message in one frame up to this size is assembled (per socket, at most this much held). */
export const ASSEMBLE_MAX = 64 * 1024;
