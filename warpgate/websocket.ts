/**
 * WebSockets through the Warpgate: one tunnel stream per client WebSocket
 * (extended CONNECT, RFC 8441), one dedicated origin connection per stream
 * (the RFC 6455 opening handshake over HTTP/1.1), and the bytes relayed both
 * ways as they are. The Warpgate never parses a frame: the edge masks what it
 * sends (RFC 6455 §5.3, the client role) and the origin does not mask; both
 * directions are opaque byte streams here, so there is nothing to get wrong
 * about fragmentation, control frames or close codes.
 *
 * The stream's head was read and admitted by LeanForwarder (./lean-forward.ts,
 * `ForwardedHead`, `admit`): the same reserved-name rules and the same
 * assertion check as any forwarded request, and the same identity lines. Then:
 *
 * - a new connection to the origin (not the keep-alive pool: an upgraded
 *   connection never returns to HTTP), TCP or TLS with the origin client's
 *   own settings (host, port, `ca`, servername), TCP_NODELAY and keepalive;
 * - one `GET` with `Upgrade: websocket`, a fresh `Sec-WebSocket-Key`, version
 *   13, the client's forwarded fields and the identity; no
 *   `Sec-WebSocket-Extensions` (permessage-deflate is declined on this leg:
 *   a compressed frame would have to be parsed to be relayed per message);
 * - the origin's response head, strictly read (the origin client's parser
 *   refuses a 101 by design, so this file has a small reader of its own),
 *   within `--origin-timeout` from the connect: a valid 101 becomes `:status
 *   200` on the stream (RFC 8441 §5), a 4xx/5xx is relayed (a small body
 *   with it), anything else is 502 MEZU_WEBSOCKET_UPGRADE_FAILED;
 * - then bytes: origin → `stream.write`, pausing the origin socket while the
 *   stream is above its high-water mark; stream DATA → the socket, pausing
 *   the stream (so the codec withholds WINDOW_UPDATE and HTTP/2 flow control
 *   stops the edge) while the socket's buffer is full. Nothing is buffered
 *   past those two marks.
 * - closing: the origin's FIN ends the stream (END_STREAM after what is
 *   queued); the edge's END_STREAM ends the socket's write side (half-close
 *   both ways, so a close handshake in flight completes). A socket error or
 *   a close without FIN resets the stream (CANCEL); a reset from the edge
 *   destroys the socket, and the stream keeps its work slot until the socket
 *   has closed (ServerStreamSink.onReset, the rapid-reset rule of
 *   wire/h2/connection.ts).
 *
 * At most `maxSockets` (`--origin-websockets`, default 1024) at once; beyond,
 * 503 MEZU_ORIGIN_BUSY with Retry-After. No idle timeout here: the edge owns
 * WebSocket idle timeouts; TCP keepalive finds an origin host that vanished.
 */
import type { Log } from '../src/runtime/index.js';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import type { H2Stream, ServerStreamSink } from '../wire/index.js';
import { IdentityHeader, fieldList } from '../wire/index.js';
import type { ErrorCode } from '../src/errors/index.js';
import { refuse, type ForwardedHead } from './lean-forward.js';
import type { OriginClient } from './origin/client.js';
import { serializeHead } from './origin/request-head.js';

/** `--origin-websockets` when not given. */
export const DEFAULT_ORIGIN_WEBSOCKETS = 1024;
/** Origin response head (status line + fields + the blank line), as the origin client's default. */
const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEAD_FIELDS = 100;
/** A refusal's body is relayed when it declares a Content-Length up to this; longer ones are dropped. */
const MAX_ERROR_BODY = 64 * 1024;
/** TCP keepalive probes start after this much silence (the connection may be idle for hours by design). */
const KEEPALIVE_DELAY_MS = 60_000;
/** RFC 6455 §1.3: the GUID the server appends to the key before hashing. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const HTTP11 = Buffer.from('HTTP/1.1 ', 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

// Phases of one relayed WebSocket.
/** Connecting, the upgrade request sent, reading the origin's response head. */
const W_HEAD: number = 0;
/** The origin refused with 4xx/5xx and a small body: reading it. */
const W_BODY: number = 1;
/** Upgraded: bytes flow both ways. */
const W_RELAY: number = 2;
/** Answered or cut; the origin socket is closing (or closed). */
const W_DONE: number = 3;

/**
 * Not sent on the stream's response: hop-by-hop fields (RFC 9110 §7.6.1; and
 * HTTP/2 forbids them, RFC 9113 §8.2.2), the handshake's own fields (the edge
 * makes its own with the client, RFC 8441 §5), `Date` (the edge writes its own,
 * as for every response) and `Content-Length` (a 2xx to CONNECT must not carry
 * one, RFC 9110 §8.6; a refusal's is recomputed from the body relayed).
 */
const NOT_PASSED_ON = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'date', 'content-length', 'sec-websocket-accept', 'sec-websocket-extensions']);

/** Request fields the Warpgate writes itself on the origin leg, so the edge's (it sends none) never doubles them. */
const OWN_REQUEST_FIELDS = new Set(['sec-websocket-key', 'sec-websocket-extensions', 'sec-websocket-version', 'sec-websocket-accept']);

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** status-line (RFC 9112 §4), HTTP/1.1 only (RFC 6455 §4.1 asks for it); the reason phrase may be absent. */
const STATUS_LINE_RE = /^HTTP\/1\.1 ([1-5]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** field-line (RFC 9112 §5): a token, a colon with no whitespace before it, OWS, field-content, OWS. */
const FIELD_LINE_RE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;

export interface WebSocketRelayStats {
  /** Origin connections open or opening. */
  open: number;
  /** Since the relay was made. */
  opened: number;
  /** Origin sockets paused now because their stream is backed up. */
  paused: number;
}

/** The Warpgate's WebSockets: one per process, shared by every tunnel. */
export class WebSocketRelay {
  /** Relayed WebSockets whose origin connection is open or opening. */
  readonly live = new Set<RelayedWebSocket>();
  opened = 0;

  constructor(
    /** Where and how to connect: the origin client's host, port and TLS settings; its head timeout. */
    readonly origin: OriginClient,
    readonly maxSockets: number,
    readonly log: Log,
  ) {
    if (!Number.isInteger(maxSockets) || maxSockets < 1) throw new TypeError(`warpgate: maxSockets must be a positive integer, got ${maxSockets}`);
  }

  /** An admitted extended CONNECT stream with `:protocol websocket`. */
  open(stream: H2Stream, head: ForwardedHead): void {
    if (this.live.size >= this.maxSockets) {
      this.log(`warpgate: MEZU_ORIGIN_BUSY for websocket ${head.requestId}: ${this.maxSockets} relayed WebSockets open (--origin-websockets)`, { level: 'warn', request_id: head.requestId });
      return refuse(stream, 'MEZU_ORIGIN_BUSY');
    }
    // RFC 6455 §4.1: a fresh random 16-byte nonce, base64, per handshake.
    const key = randomBytes(16).toString('base64');
    const fields: string[] = ['Host', head.authority];
    let offered = '';
    const f = head.fields;
    for (let i = 0; i < f.length; i += 2) {
      const n = f[i]!;
      if (OWN_REQUEST_FIELDS.has(n)) continue;
      if (n === 'sec-websocket-protocol') offered += (offered === '' ? '' : ',') + f[i + 1]!;
      fields.push(n, f[i + 1]!);
    }
    if (head.requestId !== '') fields.push(IdentityHeader.requestId, head.requestId);
    // serializeHead drops any Connection/Upgrade of the client's (the edge sends none) and checks
    // the path; the handshake's own fields ride in `lines`, before the verified identity.
    const lines = `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${head.lines ?? ''}`;
    const s = serializeHead({ method: 'GET', path: head.path, headers: fields, hasBody: false, checked: true, lines }, this.origin.authority);
    if (typeof s === 'string') {
      this.log(`warpgate: MEZU_WEBSOCKET_UPGRADE_FAILED for websocket ${head.requestId}: request head: ${s}`, { level: 'warn', request_id: head.requestId });
      return refuse(stream, 'MEZU_WEBSOCKET_UPGRADE_FAILED');
    }
    const w = new RelayedWebSocket(this, stream, head.requestId, acceptFor(key), fieldList(offered));
    this.live.add(w);
    this.opened++;
    w.socket.write(s.text, 'latin1');
  }

  stats(): WebSocketRelayStats {
    let paused = 0;
    for (const w of this.live) if (w.originPaused) paused++;
    return { open: this.live.size, opened: this.opened, paused };
  }

  /**
   * Shutdown: every relayed WebSocket is cut (stream reset, origin socket
   * destroyed). They never end by themselves, so a graceful tunnel close would
   * otherwise wait for them until it is forced.
   */
  closeAll(): void {
    for (const w of [...this.live]) w.cut();
  }
}

/** One client WebSocket: the tunnel stream's sink and the origin socket's owner. */
export class RelayedWebSocket implements ServerStreamSink {
  phase: number;
  /** The origin accepted the TCP connection (and TLS, for https:). */
  connected: boolean;
  /** The origin's FIN was read. */
  originEnded: boolean;
  /** The socket emitted 'close'. */
  closed: boolean;
  /** onReset returned true: the stream's work slot is released when the socket has closed. */
  holdsSlot: boolean;
  /** Reading from the origin is paused until the stream drains. */
  originPaused: boolean;
  /** Head bytes read so far (W_HEAD), at most MAX_HEAD_BYTES. */
  head: Buffer | null;
  /** The origin's refusal (W_BODY): its status, the fields to relay, the body still expected and read. */
  status: number;
  fields: string[];
  bodyNeed: number;
  body: Buffer[];
  timer: NodeJS.Timeout | null;
  readonly socket: net.Socket;
  /** stream.onDrain's callback: made once per WebSocket, not per backed-up write. */
  private readonly resumeOrigin: () => void;

  constructor(
    readonly relay: WebSocketRelay,
    readonly stream: H2Stream,
    readonly requestId: string,
    /** The Sec-WebSocket-Accept the origin must answer with. */
    readonly accept: string,
    /** Subprotocols the client offered, in its order. */
    readonly offered: string[],
  ) {
    this.phase = W_HEAD;
    this.connected = false;
    this.originEnded = false;
    this.closed = false;
    this.holdsSlot = false;
    this.originPaused = false;
    this.head = null;
    this.status = 0;
    this.fields = [];
    this.bodyNeed = 0;
    this.body = [];
    this.resumeOrigin = () => this.onStreamDrain();
    // Nothing of the edge's goes to the origin before the upgrade: DATA waits in the stream, within
    // its flow-control window (the codec sends no WINDOW_UPDATE for it meanwhile).
    stream.pause();
    stream.reqSink = this;
    const o = relay.origin;
    const t = o.tls;
    // allowHalfOpen: each side's FIN is relayed on its own (a close handshake may still be under
    // way in the other direction); the socket closes when both are done.
    const socket: net.Socket =
      t === null
        ? net.connect({ host: o.host, port: o.port, allowHalfOpen: true })
        : tls.connect({ host: o.host, port: o.port, servername: t.servername, ca: t.ca, ALPNProtocols: ['http/1.1'], allowHalfOpen: true } as tls.ConnectionOptions);
    (socket as RelaySocket).mezuWs = this;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    socket.on(t === null ? 'connect' : 'secureConnect', onOriginConnect);
    socket.on('data', onOriginData);
    socket.on('end', onOriginEnd);
    socket.on('error', onOriginError);
    socket.on('close', onOriginClose);
    socket.on('drain', onOriginDrain);
    this.socket = socket;
    // Connect and the response head within the origin timeout.
    this.timer = setTimeout(onHandshakeTimeout, o.headersTimeoutMs, this);
    this.timer.unref();
  }

  // ── ServerStreamSink: the edge's side ──

  onData(chunk: Buffer): void {
    if (this.phase !== W_RELAY) return; // after a refusal: dropped
    if (!this.socket.write(chunk)) this.stream.pause();
  }

  onEnd(): void {
    if (this.phase === W_RELAY) this.socket.end();
  }

  onReset(): boolean {
    this.phase = W_DONE;
    this.clearTimer();
    if (this.closed) return false;
    this.socket.destroy();
    this.holdsSlot = true;
    return true;
  }

  // ── the origin's side ──

  originData(chunk: Buffer): void {
    if (this.phase === W_RELAY) this.toEdge(chunk);
    else if (this.phase === W_HEAD) this.headData(chunk);
    else if (this.phase === W_BODY) this.bodyData(chunk);
  }

  originEnd(): void {
    this.originEnded = true;
    if (this.phase === W_RELAY) this.stream.end();
    else if (this.phase === W_HEAD) this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', 'the origin closed the connection before a complete response head');
    else if (this.phase === W_BODY) this.finishRefusal(null);
  }

  originError(err: Error & { code?: string }): void {
    const why = err.code ?? err.message;
    if (this.phase === W_HEAD) {
      if (this.connected) this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', `origin connection error before the response head: ${why}`);
      else this.fail('MEZU_ORIGIN_UNREACHABLE', `cannot connect to ${this.relay.origin.authority}: ${why}`);
    } else if (this.phase === W_BODY) this.finishRefusal(null);
    else if (this.phase === W_RELAY) {
      this.phase = W_DONE;
      this.relay.log(`warpgate: websocket ${this.requestId}: origin connection error: ${why}`, { level: 'warn', request_id: this.requestId });
      this.stream.abort();
    }
  }

  originClose(): void {
    this.closed = true;
    this.clearTimer();
    this.originPaused = false;
    this.relay.live.delete(this);
    if (this.phase === W_HEAD) this.fail(this.connected ? 'MEZU_WEBSOCKET_UPGRADE_FAILED' : 'MEZU_ORIGIN_UNREACHABLE', 'the origin connection closed before a response head');
    else if (this.phase === W_BODY) this.finishRefusal(null);
    else if (this.phase === W_RELAY) {
      this.phase = W_DONE;
      // Closed without a FIN read (reset): the WebSocket was cut, not closed; say so (RST_STREAM).
      if (!this.originEnded) this.stream.abort();
    }
    if (this.holdsSlot) {
      this.holdsSlot = false;
      this.stream.release();
    }
  }

  originDrain(): void {
    if (this.phase === W_RELAY) this.stream.resume();
  }

  handshakeTimeout(): void {
    this.timer = null;
    const ms = this.relay.origin.headersTimeoutMs;
    if (this.phase === W_HEAD) this.fail('MEZU_ORIGIN_TIMEOUT', this.connected ? `no response head within ${ms} ms` : `no connection to ${this.relay.origin.authority} within ${ms} ms`);
    else if (this.phase === W_BODY) this.finishRefusal(null);
  }

  /** Shutdown (WebSocketRelay.closeAll). */
  cut(): void {
    this.phase = W_DONE;
    this.clearTimer();
    this.stream.abort();
    this.socket.destroy();
  }

  // ── internals ──

  private toEdge(chunk: Buffer): void {
    if (this.stream.write(chunk) || this.originPaused) return;
    this.originPaused = true;
    this.socket.pause();
    this.stream.onDrain(this.resumeOrigin);
  }

  private onStreamDrain(): void {
    if (!this.originPaused) return;
    this.originPaused = false;
    if (!this.closed) this.socket.resume();
  }

  private headData(chunk: Buffer): void {
    const prev = this.head === null ? 0 : this.head.length;
    const buf = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    // Refuse what is not HTTP/1.1 at once rather than wait for a blank line that may never come.
    const n = Math.min(buf.length, HTTP11.length);
    if (buf.compare(HTTP11, 0, n, 0, n) !== 0) return this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', 'the origin did not answer with HTTP/1.1');
    const end = buf.indexOf(HEAD_END, Math.max(0, prev - 3));
    if (end === -1 && buf.length < MAX_HEAD_BYTES) {
      this.head = buf;
      return;
    }
    if (end === -1 || end + HEAD_END.length > MAX_HEAD_BYTES) return this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', `response head larger than ${MAX_HEAD_BYTES} bytes`);
    this.head = null;
    const h = readResponseHead(buf.toString('latin1', 0, end));
    if (typeof h === 'string') return this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', `malformed response head: ${h}`);
    // What followed the head in the same read: the origin's first frames, or a refusal's body.
    const rest = buf.subarray(end + HEAD_END.length);
    if (h.status === 101) {
      const problem = upgradeProblem(h.fields, this.accept, this.offered);
      if (problem !== null) return this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', `invalid 101: ${problem}`);
      return this.established(h.fields, rest);
    }
    if (h.status >= 400) return this.refused(h.status, h.fields, rest);
    this.fail('MEZU_WEBSOCKET_UPGRADE_FAILED', `the origin answered ${h.status} instead of 101 Switching Protocols`);
  }

  /** A valid 101: `:status 200` on the stream (RFC 8441 §5), then bytes. */
  private established(fields: string[], rest: Buffer): void {
    this.phase = W_RELAY;
    this.clearTimer();
    this.stream.respondStatus(200, passOn(fields), false);
    if (rest.length > 0) this.toEdge(rest);
    this.stream.resume(); // what the edge sent during the handshake, then the rest as it comes
  }

  /** The origin refused the upgrade with 4xx/5xx: relayed with its body when that is small and declared. */
  private refused(status: number, fields: string[], rest: Buffer): void {
    let length = -1;
    let framed = true;
    for (let i = 0; i < fields.length; i += 2) {
      const n = fields[i]!;
      const v = fields[i + 1]!;
      if (n === 'transfer-encoding') framed = false;
      else if (n === 'content-length') {
        // One plain number, or the same one repeated (RFC 9110 §8.6); anything else: no body.
        if (!/^\d{1,15}$/.test(v) || (length !== -1 && Number(v) !== length)) framed = false;
        else length = Number(v);
      }
    }
    this.status = status;
    this.fields = passOn(fields);
    if (!framed || length <= 0 || length > MAX_ERROR_BODY) return this.finishRefusal(null);
    this.phase = W_BODY;
    this.bodyNeed = length;
    if (rest.length > 0) this.bodyData(rest);
  }

  private bodyData(chunk: Buffer): void {
    const n = Math.min(chunk.length, this.bodyNeed);
    this.body.push(chunk.subarray(0, n));
    this.bodyNeed -= n;
    if (this.bodyNeed === 0) this.finishRefusal(Buffer.concat(this.body));
  }

  /** Relays the origin's refusal; `body` null: without a body (none, too large, or cut short). */
  private finishRefusal(body: Buffer | null): void {
    this.phase = W_DONE;
    this.clearTimer();
    const fields = this.fields;
    if (body !== null) fields.push('content-length', String(body.length));
    this.stream.respondStatus(this.status, fields, body === null);
    if (body !== null) this.stream.end(body);
    this.body = [];
    this.afterAnswer();
  }

  /** Answers the stream with the catalogue's error for `code`; logged with what went wrong. */
  private fail(code: ErrorCode, why: string): void {
    if (this.phase === W_DONE || this.phase === W_RELAY) return;
    this.phase = W_DONE;
    this.clearTimer();
    this.head = null;
    this.relay.log(`warpgate: ${code} for websocket ${this.requestId}: ${why}`, { level: 'warn', request_id: this.requestId });
    refuse(this.stream, code);
    this.afterAnswer();
  }

  /**
   * The stream is answered (END_STREAM): the origin connection goes, and
   * whatever the edge still sends is read and dropped (its window returned),
   * until it ends or resets its side.
   */
  private afterAnswer(): void {
    this.socket.destroy();
    this.stream.resume();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

interface RelaySocket extends net.Socket {
  mezuWs: RelayedWebSocket;
}

function onOriginConnect(this: net.Socket): void {
  (this as RelaySocket).mezuWs.connected = true;
}
function onOriginData(this: net.Socket, chunk: Buffer): void {
  (this as RelaySocket).mezuWs.originData(chunk);
}
function onOriginEnd(this: net.Socket): void {
  (this as RelaySocket).mezuWs.originEnd();
}
function onOriginError(this: net.Socket, err: Error): void {
  (this as RelaySocket).mezuWs.originError(err);
}
function onOriginClose(this: net.Socket): void {
  (this as RelaySocket).mezuWs.originClose();
}
function onOriginDrain(this: net.Socket): void {
  (this as RelaySocket).mezuWs.originDrain();
}
function onHandshakeTimeout(w: RelayedWebSocket): void {
  w.handshakeTimeout();
}

/** RFC 6455 §4.2.2 step 5.4: base64(SHA-1(key + GUID)). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface OriginResponseHead {
  status: number;
  /** Flat `name, value, …`, names lower-cased, in the order received. */
  fields: string[];
}

/**
 * The origin's response head (without its final CRLF CRLF), strictly:
 * `HTTP/1.1 NNN [reason]`, then `name: value` lines. Refused, as the origin
 * client's parser does for the same reasons (./origin/parser.ts): a bare CR
 * or LF, obs-fold (a line starting with whitespace), whitespace before the
 * colon, a name that is not a token, controls in a value, more than 100 fields.
 * Returns why when refused.
 */
export function readResponseHead(text: string): OriginResponseHead | string {
  const lines = text.split('\r\n');
  const m = STATUS_LINE_RE.exec(lines[0]!);
  if (m === null) return 'malformed status line';
  if (lines.length - 1 > MAX_HEAD_FIELDS) return `more than ${MAX_HEAD_FIELDS} fields`;
  const fields: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.charCodeAt(0);
    if (c === 0x20 || c === 0x09) return 'obs-fold';
    const f = FIELD_LINE_RE.exec(line);
    if (f === null) return line.includes('\n') || line.includes('\r') ? 'bare CR or LF' : 'malformed field line';
    fields.push(f[1]!.toLowerCase(), f[2]!);
  }
  return { status: Number(m[1]), fields };
}

/**
 * What is wrong with a 101 (RFC 6455 §4.1, the client's checks), or null:
 * `Upgrade: websocket`, `Connection` naming `upgrade`, exactly one
 * `Sec-WebSocket-Accept` for our key, no extension (none was offered), and
 * at most one subprotocol, one the client offered.
 */
export function upgradeProblem(fields: string[], accept: string, offered: readonly string[]): string | null {
  let upgrade = 0;
  let upgradeOk = false;
  let connectionUpgrade = false;
  let accepts = 0;
  let acceptOk = false;
  let protocols = 0;
  let protocolOk = true;
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i]!;
    const v = fields[i + 1]!;
    switch (n) {
      case 'upgrade':
        upgrade++;
        upgradeOk = v.trim().toLowerCase() === 'websocket';
        break;
      case 'connection':
        for (const t of fieldList(v)) if (t.toLowerCase() === 'upgrade') connectionUpgrade = true;
        break;
      case 'sec-websocket-accept':
        accepts++;
        acceptOk = v === accept;
        break;
      case 'sec-websocket-extensions':
        return 'an extension the Warpgate did not offer';
      case 'sec-websocket-protocol':
        protocols++;
        protocolOk = TOKEN_RE.test(v) && offered.includes(v);
        break;
    }
  }
  if (upgrade !== 1 || !upgradeOk) return 'Upgrade is not websocket';
  if (!connectionUpgrade) return 'Connection does not name upgrade';
  if (accepts !== 1 || !acceptOk) return 'wrong Sec-WebSocket-Accept';
  if (protocols > 1 || !protocolOk) return 'a subprotocol the client did not offer';
  return null;
}

/**
 * The origin's response fields for the stream: without NOT_PASSED_ON and the
 * names its Connection field lists (RFC 9110 §7.6.1); Sec-WebSocket-Protocol,
 * when present, first.
 */
function passOn(fields: string[]): string[] {
  let nominated: string[] | null = null;
  let protocol = -1;
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i]!;
    if (n === 'connection') for (const t of fieldList(fields[i + 1]!)) (nominated ??= []).push(t.toLowerCase());
    else if (n === 'sec-websocket-protocol' && protocol === -1) protocol = i;
  }
  const out: string[] = protocol === -1 ? [] : ['sec-websocket-protocol', fields[protocol + 1]!];
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i]!;
    if (i === protocol || NOT_PASSED_ON.has(n) || (nominated !== null && nominated.includes(n))) continue;
    out.push(n, fields[i + 1]!);
  }
  return out;
}
