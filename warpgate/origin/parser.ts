/**
 * HTTP/1.1 response parser for the Warpgate's origin leg (RFC 9112), strict
 * where leniency lets a response smuggle another one past us.
 *
 * The origin is the operator's own application, but it may be buggy, or a
 * compromised plugin may try to desynchronise a shared keep-alive connection
 * so that the bytes of one response are read as the answer to someone else's
 * request (response splitting / queue poisoning). Whatever this parser cannot
 * read unambiguously is a fault: the request gets MEZU_ORIGIN_FAILED and the
 * connection is discarded, never reused. In detail:
 *
 * - every line ends in CRLF; a bare LF or a CR anywhere else is an error
 *   (RFC 9112 §2.2 allows a recipient to accept bare LF; we do not, because the
 *   application's other clients may not agree with us on where a line ends);
 * - obs-fold (a header line starting with SP/HTAB) is an error (§5.2 allows a
 *   proxy to reject it);
 * - no whitespace between a field name and the colon (§5.1: MUST reject);
 * - Content-Length with Transfer-Encoding, differing Content-Length values, a
 *   non-numeric Content-Length, a Transfer-Encoding other than exactly
 *   `chunked`, or Transfer-Encoding on an HTTP/1.0 response: errors (§6.1, §6.3);
 * - the head (status line + fields) is limited in bytes and in field count;
 *   chunk-size lines (with their ignored extensions) and trailers are bounded
 *   too, so memory held per connection never depends on what the origin sends.
 *
 * The parser is incremental: it keeps at most one incomplete line between
 * reads (bounded by the limits above) and hands body bytes out as soon as
 * they arrive, as subarrays of the buffer it was given.
 */

/** The parser's listener. One per connection; a connection implements it. */
export interface ResponseListener {
  /** The final (non-1xx) head. `headers` is flat `name, value, ...`, names lower-cased, hop-by-hop fields removed. */
  onResponseHead(status: number, headers: string[]): void;
  /** Body bytes: a subarray of the buffer passed to `execute`, valid only as long as that buffer is. */
  onResponseData(buf: Buffer, start: number, end: number): void;
  /** The message is complete. */
  onResponseEnd(): void;
}

export interface ParserLimits {
  /** Bytes of a status line plus header fields (and, separately, of all trailers). */
  maxHeaderBytes: number;
  /** Header fields per head (and trailer fields per message). */
  maxHeaderCount: number;
}

/** What `execute` returns. */
export const PARSE_OK = 0;
export const PARSE_ERROR = 1;

// States.
const S_STATUS: number = 0;
const S_HEADER: number = 1;
const S_BODY_LENGTH: number = 2;
const S_CHUNK_SIZE: number = 3;
const S_CHUNK_DATA: number = 4;
const S_CHUNK_DATA_END: number = 5;
const S_TRAILER: number = 6;
const S_BODY_EOF: number = 7;
const S_DONE: number = 8;
const S_ERROR: number = 9;
const S_STOPPED: number = 10;

/** A chunk-size line, extensions included, longer than this is refused (extensions are discarded, never stored). */
const MAX_CHUNK_LINE = 4096;
/** 13 hex digits = 52 bits: every value is a safe integer. */
const MAX_CHUNK_SIZE_DIGITS = 13;
/** 15 decimal digits: below 2^53. No origin sends a petabyte. */
const MAX_CONTENT_LENGTH_DIGITS = 15;
/** 1xx responses skipped before the final one; more is a broken or hostile origin. */
const MAX_INTERIM = 16;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const HTTP_PREFIX = Buffer.from('HTTP/', 'latin1');

/** tchar (RFC 9110 §5.6.2): 1 = token char, 2 = upper-case letter (also a token char), 0 = not a token char. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 2;

/** Hex digit values, 255 = not a hex digit. */
const HEX = new Uint8Array(256).fill(255);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** Buffer's latin1 slice without `toString`'s encoding dispatch; present on every Node Buffer, absent from the typings. */
interface Latin1Sliceable {
  latin1Slice(start: number, end: number): string;
}
function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Sliceable).latin1Slice(start, end);
}

/**
 * Finds the CRLF that ends the line starting at `pos`, checking that every
 * byte before it is a field-content byte (VCHAR, obs-text, SP, HTAB).
 * Returns the index of the CR, -1 if the buffer ends first, -2 on a bad byte.
 */
function lineEnd(buf: Buffer, pos: number, end: number): number {
  let i = pos;
  while (i < end) {
    const c = buf[i]!;
    if ((c >= 0x20 && c !== 0x7f) || c === HTAB) {
      i++;
      continue;
    }
    if (c !== CR) return -2;
    if (i + 1 === end) return -1;
    return buf[i + 1] === LF ? i : -2;
  }
  return -1;
}

export class ResponseParser {
  /** Why the last PARSE_ERROR happened, for logs (never sent to anyone). */
  reason: string;
  /** Whether the connection may carry another request after this response (valid once the head is parsed). */
  keepAlive: boolean;
  /** True once any byte of the current response was received (for retry decisions). */
  started: boolean;
  /** `Keep-Alive: timeout=N` from the last response, in ms, or -1. */
  keepAliveHintMs: number;

  private state: number;
  private readonly listener: ResponseListener;
  private readonly maxHeaderBytes: number;
  private readonly maxHeaderCount: number;
  /** An incomplete line carried over from the previous read (a copy, never a view of a reused buffer). */
  private carry: Buffer | null;
  private headBytes: number;
  private headerCount: number;
  private interim: number;
  private noBody: boolean;
  private status: number;
  private http10: boolean;
  private headers: string[];
  private contentLength: number;
  private teChunked: boolean;
  private teSeen: boolean;
  private connClose: boolean;
  private connKeepAlive: boolean;
  /** Other tokens of the Connection field: names of hop-by-hop fields to drop (RFC 9110 §7.6.1). */
  private connOther: string[] | null;
  private remaining: number;

  constructor(listener: ResponseListener, limits: ParserLimits) {
    this.reason = '';
    this.keepAlive = false;
    this.started = false;
    this.keepAliveHintMs = -1;
    this.state = S_DONE;
    this.listener = listener;
    this.maxHeaderBytes = limits.maxHeaderBytes;
    this.maxHeaderCount = limits.maxHeaderCount;
    this.carry = null;
    this.headBytes = 0;
    this.headerCount = 0;
    this.interim = 0;
    this.noBody = false;
    this.status = 0;
    this.http10 = false;
    this.headers = [];
    this.contentLength = -1;
    this.teChunked = false;
    this.teSeen = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connOther = null;
    this.remaining = 0;
  }

  /** Expect a response to a request just sent; `noBody` for HEAD (RFC 9112 §6.3 rule 1). */
  reset(noBody: boolean): void {
    this.state = S_STATUS;
    this.noBody = noBody;
    this.carry = null;
    this.started = false;
    this.keepAlive = false;
    this.interim = 0;
    this.newHead();
  }

  /** True between `reset` and the end of the response (or an error). */
  get active(): boolean {
    return this.state !== S_DONE && this.state !== S_ERROR && this.state !== S_STOPPED;
  }

  /** True while waiting for the final head. */
  get awaitingHead(): boolean {
    return this.state === S_STATUS || this.state === S_HEADER;
  }

  /** True when the body runs until the connection closes. */
  get closeDelimited(): boolean {
    return this.state === S_BODY_EOF;
  }

  /**
   * Parses `input[0, length)`. Returns PARSE_OK or PARSE_ERROR (`reason` says why). Bytes
   * after the end of the response are an error: there is no pipelining, so
   * the origin has no business sending them.
   */
  execute(input: Buffer, length: number): number {
    let buf = input;
    let end = length;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, input.subarray(0, length)]);
      end = buf.length;
      this.carry = null;
    }
    let pos = 0;
    if (end > 0) this.started = true;
    while (pos < end) {
      switch (this.state) {
        case S_BODY_LENGTH: {
          const n = Math.min(this.remaining, end - pos);
          this.remaining -= n;
          this.listener.onResponseData(buf, pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.complete();
          break;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - pos);
          this.remaining -= n;
          this.listener.onResponseData(buf, pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_END;
          break;
        }
        case S_BODY_EOF:
          this.listener.onResponseData(buf, pos, end);
          pos = end;
          break;
        case S_STATUS:
        case S_HEADER: {
          const next = this.state === S_STATUS ? this.statusLine(buf, pos, end) : this.headerLine(buf, pos, end);
          if (next < 0) return next === -1 ? this.hold(buf, pos, end, this.maxHeaderBytes - this.headBytes, 'response head too large') : PARSE_ERROR;
          this.headBytes += next - pos;
          if (this.headBytes > this.maxHeaderBytes) return this.fail('response head too large');
          pos = next;
          break;
        }
        case S_CHUNK_SIZE: {
          const next = this.chunkSizeLine(buf, pos, end);
          if (next < 0) return next === -1 ? this.hold(buf, pos, end, MAX_CHUNK_LINE, 'chunk-size line too long') : PARSE_ERROR;
          pos = next;
          break;
        }
        case S_CHUNK_DATA_END: {
          if (end - pos < 2) {
            if (buf[pos] !== CR) return this.fail('chunk data not followed by CRLF');
            return this.hold(buf, pos, end, 2, '');
          }
          if (buf[pos] !== CR || buf[pos + 1] !== LF) return this.fail('chunk data not followed by CRLF');
          pos += 2;
          this.state = S_CHUNK_SIZE;
          break;
        }
        case S_TRAILER: {
          const next = this.trailerLine(buf, pos, end);
          if (next < 0) return next === -1 ? this.hold(buf, pos, end, this.maxHeaderBytes - this.headBytes, 'trailers too large') : PARSE_ERROR;
          this.headBytes += next - pos;
          if (this.headBytes > this.maxHeaderBytes) return this.fail('trailers too large');
          pos = next;
          break;
        }
        case S_DONE:
          return this.fail('bytes after the end of the response');
        case S_STOPPED:
          return PARSE_OK;
        default:
          return PARSE_ERROR;
      }
    }
    return PARSE_OK;
  }

  /**
   * The origin closed its side. Returns PARSE_OK when that ends a
   * close-delimited body (the response is then complete), PARSE_ERROR when
   * the response was cut short.
   */
  finish(): number {
    if (this.state === S_BODY_EOF) {
      this.keepAlive = false;
      this.complete();
      return PARSE_OK;
    }
    if (this.state === S_DONE) return PARSE_OK;
    return this.fail(this.started ? 'connection closed before the end of the response' : 'connection closed before any response byte');
  }

  private fail(reason: string): number {
    this.reason = reason;
    this.state = S_ERROR;
    this.carry = null;
    return PARSE_ERROR;
  }

  /** `fail` for the line readers, which return -2 on error. */
  private bad(reason: string): number {
    this.fail(reason);
    return -2;
  }

  /** `fail` for the field readers, which return false on error. */
  private refuse(reason: string): false {
    this.fail(reason);
    return false;
  }

  /** Stop parsing (the request was aborted): the rest of the current buffer is ignored. */
  stop(): void {
    this.state = S_STOPPED;
    this.carry = null;
  }

  /** Keep an incomplete line for the next read, if it can still fit in `room` bytes. */
  private hold(buf: Buffer, pos: number, end: number, room: number, reason: string): number {
    if (end - pos > room) return this.fail(reason);
    // Copy: `buf` may be a read buffer the socket reuses.
    this.carry = Buffer.from(buf.subarray(pos, end));
    return PARSE_OK;
  }

  private newHead(): void {
    this.headBytes = 0;
    this.headerCount = 0;
    this.status = 0;
    this.http10 = false;
    this.headers = [];
    this.contentLength = -1;
    this.teChunked = false;
    this.teSeen = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connOther = null;
  }

  /** `HTTP/1.x SP 3DIGIT [SP reason-phrase] CRLF`. Returns the next position, -1 incomplete, -2 error. */
  private statusLine(buf: Buffer, pos: number, end: number): number {
    const cr = lineEnd(buf, pos, end);
    if (cr === -2) return this.bad('malformed status line');
    if (cr === -1) {
      // Refuse garbage early instead of waiting for a line end that may never come.
      const n = Math.min(end - pos, HTTP_PREFIX.length);
      for (let i = 0; i < n; i++) if (buf[pos + i] !== HTTP_PREFIX[i]) return this.bad('not an HTTP/1.x response');
      return -1;
    }
    // "HTTP/1.1 200" is 12 bytes; a reason phrase, when present, follows one SP.
    if (
      cr - pos < 12 ||
      buf[pos] !== 0x48 || buf[pos + 1] !== 0x54 || buf[pos + 2] !== 0x54 || buf[pos + 3] !== 0x50 ||
      buf[pos + 4] !== 0x2f || buf[pos + 5] !== 0x31 || buf[pos + 6] !== 0x2e ||
      (buf[pos + 7] !== 0x31 && buf[pos + 7] !== 0x30) || buf[pos + 8] !== SP ||
      (cr - pos > 12 && buf[pos + 12] !== SP)
    ) {
      return this.bad('malformed status line');
    }
    const d0 = buf[pos + 9]! - 0x30;
    const d1 = buf[pos + 10]! - 0x30;
    const d2 = buf[pos + 11]! - 0x30;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.bad('malformed status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    this.http10 = buf[pos + 7] === 0x30;
    this.state = S_HEADER;
    return cr + 2;
  }

  /** One field line, or the empty line that ends the head. */
  private headerLine(buf: Buffer, pos: number, end: number): number {
    const c0 = buf[pos]!;
    if (c0 === CR) {
      if (pos + 1 === end) return -1;
      if (buf[pos + 1] !== LF) return this.bad('bare CR in response head');
      // Checked here, not after: endOfHead hands the head out.
      if (this.headBytes + 2 > this.maxHeaderBytes) return this.bad('response head too large');
      return this.endOfHead(pos + 2);
    }
    if (c0 === SP || c0 === HTAB) return this.bad('obs-fold in response head');
    // Field name: token chars up to the colon; no whitespace before it (RFC 9112 §5.1).
    let i = pos;
    let upper = 0;
    let t: number;
    while (i < end && (t = TOKEN[buf[i]!]!) !== 0) {
      upper |= t;
      i++;
    }
    if (i === end) return -1;
    if (buf[i] !== COLON || i === pos) return this.bad(buf[i] === LF || buf[i] === CR ? 'bare CR/LF or missing colon in response head' : 'malformed field name in response head');
    const nameEnd = i;
    i++;
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    const cr = lineEnd(buf, i, end);
    if (cr === -2) return this.bad('bare CR/LF or control character in a response field value');
    if (cr === -1) return -1;
    let ve = cr;
    while (ve > i && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    if (++this.headerCount > this.maxHeaderCount) return this.bad('too many response header fields');
    let name = latin1(buf, pos, nameEnd);
    if ((upper & 2) !== 0) name = name.toLowerCase();
    const value = latin1(buf, i, ve);
    return this.field(name, value) ? cr + 2 : -2;
  }

  /** Interprets the fields that decide framing and persistence; keeps the rest. Returns false on error. */
  private field(name: string, value: string): boolean {
    switch (name.length) {
      case 14:
        if (name === 'content-length') {
          // Passed on once, as plain digits, whatever duplicates or lists it came as.
          const first = this.contentLength === -1;
          if (value.length === 0 || value.length > MAX_CONTENT_LENGTH_DIGITS || !/^\d+$/.test(value)) {
            // "5, 5" (a list of identical values) is allowed by RFC 9110 §8.6; anything else is not.
            if (!this.contentLengthList(value)) return false;
            if (first) this.headers.push(name, String(this.contentLength));
            return true;
          }
          const n = Number(value);
          if (!first) return this.contentLength === n ? true : this.refuse('conflicting Content-Length values');
          this.contentLength = n;
        }
        break;
      case 17:
        if (name === 'transfer-encoding') {
          if (this.teSeen || value.toLowerCase() !== 'chunked') return this.refuse(`unsupported Transfer-Encoding "${value}"`);
          this.teSeen = true;
          this.teChunked = true;
          return true; // hop-by-hop: not passed on
        }
        break;
      case 10:
        if (name === 'connection') {
          this.connection(value);
          return true;
        }
        if (name === 'keep-alive') {
          const m = /(?:^|[\s,;])timeout\s*=\s*(\d{1,6})/i.exec(value);
          if (m !== null) this.keepAliveHintMs = Number(m[1]) * 1000;
          return true;
        }
        break;
      case 16:
        if (name === 'proxy-connection') return true;
        break;
      case 7:
        if (name === 'upgrade') return true;
        break;
    }
    this.headers.push(name, value);
    return true;
  }

  private contentLengthList(value: string): boolean {
    const parts = value.split(',');
    let n = -1;
    for (const p of parts) {
      const s = p.trim();
      if (s.length === 0 || s.length > MAX_CONTENT_LENGTH_DIGITS || !/^\d+$/.test(s)) return this.refuse(`invalid Content-Length "${value}"`);
      const v = Number(s);
      if (n !== -1 && v !== n) return this.refuse('conflicting Content-Length values');
      n = v;
    }
    if (this.contentLength !== -1 && this.contentLength !== n) return this.refuse('conflicting Content-Length values');
    this.contentLength = n;
    return true;
  }

  private connection(value: string): void {
    for (const raw of value.split(',')) {
      const tok = raw.trim().toLowerCase();
      if (tok === 'close') this.connClose = true;
      else if (tok === 'keep-alive') this.connKeepAlive = true;
      else if (tok.length > 0) (this.connOther ??= []).push(tok);
    }
  }

  private endOfHead(next: number): number {
    const status = this.status;
    if (status < 200) {
      // 101 would switch protocols, which we never ask for; other 1xx are skipped (RFC 9110 §15.2).
      if (status === 101) return this.bad('unexpected 101 Switching Protocols');
      if (++this.interim > MAX_INTERIM) return this.bad('too many 1xx responses');
      this.newHead();
      this.state = S_STATUS;
      return next;
    }
    if (this.teSeen && this.contentLength !== -1) return this.bad('both Content-Length and Transfer-Encoding');
    if (this.teSeen && this.http10) return this.bad('Transfer-Encoding in an HTTP/1.0 response');
    this.keepAlive = this.http10 ? this.connKeepAlive && !this.connClose : !this.connClose;
    let headers = this.headers;
    if (this.connOther !== null) headers = dropNominated(headers, this.connOther);
    // RFC 9112 §6.3: HEAD, 204 and 304 responses end at the head whatever they declare.
    if (this.noBody || status === 204 || status === 304) {
      // Some origins send a body anyway (uWebSockets.js 20.30 does, for HEAD and
      // for 204 when the app writes one). Read as the start of the next response,
      // such a body would answer someone else's request: when the head announces
      // one, the connection is not reused.
      if (this.teSeen || this.contentLength > 0) this.keepAlive = false;
      this.state = S_DONE;
      this.listener.onResponseHead(status, headers);
      this.listener.onResponseEnd();
      return next;
    }
    if (this.teChunked) this.state = S_CHUNK_SIZE;
    else if (this.contentLength >= 0) {
      this.remaining = this.contentLength;
      this.state = S_BODY_LENGTH;
    } else {
      this.keepAlive = false;
      this.state = S_BODY_EOF;
    }
    this.listener.onResponseHead(status, headers);
    if (this.state === S_BODY_LENGTH && this.remaining === 0) this.complete();
    return next;
  }

  /** `1*HEXDIG [BWS ; ext...] CRLF`. */
  private chunkSizeLine(buf: Buffer, pos: number, end: number): number {
    let i = pos;
    let size = 0;
    let h: number;
    while (i < end && (h = HEX[buf[i]!]!) !== 255) {
      if (i - pos === MAX_CHUNK_SIZE_DIGITS) return this.bad('chunk size too large');
      size = size * 16 + h;
      i++;
    }
    if (i === end) return -1;
    if (i === pos) return this.bad('malformed chunk size');
    let c = buf[i]!;
    if (c === SP || c === HTAB) {
      while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
      if (i === end) return -1;
      if (buf[i] !== 0x3b /* ; */) return this.bad('malformed chunk size');
      c = 0x3b;
    }
    if (c === 0x3b) {
      const cr = lineEnd(buf, i, end); // extensions: read and ignored
      if (cr === -2) return this.bad('malformed chunk extension');
      if (cr === -1) return -1;
      i = cr;
    }
    if (buf[i] !== CR) return this.bad('malformed chunk size');
    if (i + 1 === end) return -1;
    if (buf[i + 1] !== LF) return this.bad('bare CR after chunk size');
    if (i + 2 - pos > MAX_CHUNK_LINE) return this.bad('chunk-size line too long');
    if (size === 0) {
      this.headBytes = 0;
      this.headerCount = 0;
      this.state = S_TRAILER;
    } else {
      this.remaining = size;
      this.state = S_CHUNK_DATA;
    }
    return i + 2;
  }

  /** Trailer fields are checked like header fields and discarded (RFC 9110 §6.5.1 lets a recipient drop them). */
  private trailerLine(buf: Buffer, pos: number, end: number): number {
    const c0 = buf[pos]!;
    if (c0 === CR) {
      if (pos + 1 === end) return -1;
      if (buf[pos + 1] !== LF) return this.bad('bare CR in trailers');
      this.complete();
      return pos + 2;
    }
    if (c0 === SP || c0 === HTAB) return this.bad('obs-fold in trailers');
    let i = pos;
    while (i < end && TOKEN[buf[i]!] !== 0) i++;
    if (i === end) return -1;
    if (buf[i] !== COLON || i === pos) return this.bad('malformed trailer field');
    const cr = lineEnd(buf, i + 1, end);
    if (cr === -2) return this.bad('bare CR/LF or control character in a trailer');
    if (cr === -1) return -1;
    if (++this.headerCount > this.maxHeaderCount) return this.bad('too many trailer fields');
    return cr + 2;
  }

  private complete(): void {
    this.state = S_DONE;
    this.listener.onResponseEnd();
  }
}

function dropNominated(headers: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.includes(headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
