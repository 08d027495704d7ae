/**
 * WebSockets at the edge (RFC 6455 on the client's side, RFC 8441 on the
 * tunnel). uWS's own WebSocket server shares the client listener: a GET
 * carrying `Upgrade: websocket` reaches `upgrade` here and goes through the
 * same stages as any request (`decide`: host, route, session, authorize,
 * identity); a browser without a session gets 401, never a login redirect (a
 * WebSocket cannot follow one). Allowed, it opens one extended CONNECT stream
 * (`:protocol websocket`) on a tunnel connection of the project's pool, and
 * answers the client's handshake (`101`, uWS computing the accept key) only
 * once the Warpgate says the origin accepted its own HTTP/1.1 Upgrade (a
 * `200` on the stream, with the subprotocol the origin chose). Anything else
 * the origin or the Warpgate answers reaches the client as that status.
 *
 * On the stream, DATA carries the WebSocket byte stream (RFC 8441 §5): the
 * edge writes each client message as one masked frame (ws-frames.ts) and
 * parses the origin's frames, handing their payload to the client as it
 * arrives (whole messages with `send`, larger ones as fragments), so nothing
 * is buffered whole on the way back. Pings are carried both ways (uWS answers
 * the client's itself; the origin answers the edge's copy, which is dropped),
 * close codes and reasons both ways. permessage-deflate is declined (uWS
 * compression off): nothing negotiates an extension on either leg.
 *
 * Limits (a rule's `websocket`, `max_message`, `idle_timeout`, `max_sockets`,
 * docs/SECURITY.md "WebSockets"), each with a close code and an error code as
 * the close reason:
 * - a client message over `max_message` → 1009 MEZU_WEBSOCKET_MESSAGE_TOO_BIG;
 *   uWS itself refuses a frame over MAX_MAX_MESSAGE_BYTES by dropping the
 *   connection (1006, no close frame), before reading its payload;
 * - no message either way for `idle_timeout` → 1001 MEZU_WEBSOCKET_IDLE
 *   (checked by the live registry's tick, not a timer per socket);
 * - client messages waiting for the tunnel beyond TUNNEL_QUEUE_MAX plus one
 *   message → 1013 MEZU_WEBSOCKET_BACKPRESSURE: the pinned uWS build cannot
 *   pause a WebSocket's reads, so a client that outruns the origin is cut
 *   rather than buffered without bound;
 * - origin → client: the tunnel stream is paused while uWS holds more than
 *   CLIENT_HIGH_WATER for a slow client (HTTP/2 flow control then stops the
 *   Warpgate, which stops reading the origin), resumed on uWS's drain;
 * - `max_sockets` per session or key (or client address on a public rule) →
 *   429 MEZU_WEBSOCKET_LIMIT at the handshake.
 * Access is re-checked while the socket is open (src/authorize/live.ts):
 * 1008 MEZU_ACCESS_REVOKED when it ends.
 */
import type { HttpRequest, HttpResponse, UpgradeContext, WebSocket, WebSocketBehavior } from '../../native/uws.js';
import { sendPiece } from '../../native/uws.js';
import type { ClientStreamSink, H2Stream, HpackEncoder } from '../../wire/index.js';
import { fieldList } from '../../wire/index.js';
import type { ErrorCode } from '../errors/index.js';
import { codeOf } from '../errors/index.js';
import { statusLine, writeError, writeErrorNow, writeLoginRequired } from '../errors/http.js';
import { encodeForwarded, nextRequestId } from '../identity/index.js';
import type { LiveRegistry, LiveStream } from '../authorize/index.js';
import type { Principal } from '../session/index.js';
import type { TunnelConnection, TunnelRequest } from '../tunnel/index.js';
import { MAX_MAX_MESSAGE_BYTES } from '../config/index.js';
import { EdgeRequest } from './request.js';
import { BODY_NONE, FRAMING_INVALID } from './framing.js';
import { DEFAULT_CLIENT_INFLIGHT, DEFAULT_MAX_HEAD_BYTES } from './limits.js';
import { answer, clientAddress, createRun, decide, faultCode, Verdict, type FrontContext } from './handler.js';
import { ServerFrameParser, clientFrame, closePayload, sendableCloseCode, Opcode, type ServerFrameSink } from './ws-frames.js';

/** Client messages queued for the tunnel (flow control holding them) beyond this, plus one message: close 1013. */
export const TUNNEL_QUEUE_MAX = 4 * 1024 * 1024;
/** Bytes uWS may hold for a slow client before the tunnel stream is paused, and below which it resumes. */
export const CLIENT_HIGH_WATER = 256 * 1024;
export const CLIENT_LOW_WATER = 64 * 1024;
/**
 * uWS's own drop threshold: far above what the pause lets it reach (the high
 * water plus one stream window), so a message is never silently dropped.
 */
const UWS_MAX_BACKPRESSURE = 64 * 1024 * 1024;
/** A non-101 answer's body kept for the client (the Warpgate relays at most 64 KiB of an origin's refusal). */
const MAX_REFUSAL_BODY = 64 * 1024;
/** After the edge closed its side, how long the origin gets to close the stream before it is reset. */
const CLOSE_GRACE_MS = 5_000;

/** Response fields of the origin's 101 not copied to the client: uWS writes the upgrade's own. */
const SKIP_UPGRADE: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'upgrade', 'proxy-connection', 'trailer', 'te', 'uwebsockets', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions', 'sec-websocket-version']);

const HANDSHAKE = 0;
const OPEN = 1;
const CLOSED = 2;

export interface WebSocketContext extends FrontContext {
  live: LiveRegistry | null;
}

/**
 * The uWS behavior for every path: `upgrade` runs the stages; a GET that
 * names no WebSocket in `Upgrade` is an ordinary request and runs as one.
 */
export function createWebSocket(ctx: WebSocketContext): WebSocketBehavior<SocketData> {
  const run = createRun(ctx);
  const now = ctx.now ?? Date.now;
  const maxHead = ctx.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  return {
    // A frame announcing more than the highest `max_message` a rule may set is refused by uWS
    // before its payload is read; a smaller one over the rule's limit gets 1009 (onMessage).
    maxPayloadLength: MAX_MAX_MESSAGE_BYTES,
    maxBackpressure: UWS_MAX_BACKPRESSURE,
    closeOnBackpressureLimit: 0,
    // idle_timeout is per rule (the live registry's tick); uWS's own timer would be one value for all.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    compression: 0, // uWS.DISABLED: permessage-deflate declined on the client's leg too
    upgrade(res: HttpResponse, req: HttpRequest, context: UpgradeContext): void {
      const r = new EdgeRequest(res, req, ctx.scope, nextRequestId());
      const h = handshakeFields(r.fields);
      if (!h.websocket) return run(r);
      if (ctx.draining.on) return writeError(res, 'MEZU_DRAINING', r.id, true);
      if (r.body !== BODY_NONE) return writeError(res, r.body === FRAMING_INVALID ? 'MEZU_FRAMING_INVALID' : 'MEZU_WEBSOCKET_INVALID', r.id, true);
      if (r.headBytes > maxHead) return writeError(res, 'MEZU_HEAD_TOO_LARGE', r.id, true);
      if (!h.connectionUpgrade || h.version !== '13') {
        // RFC 6455 §4.4: the versions this end speaks.
        res.writeStatus(`${statusLine(400)}\r\nsec-websocket-version: 13`);
        return writeErrorNow(res, 'MEZU_WEBSOCKET_INVALID', r.id, false);
      }
      let v: Verdict;
      try {
        v = decide(ctx, r, now());
      } catch (err) {
        ctx.log(`edge: WebSocket ${r.id} denied on an internal error (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: r.id });
        return writeError(res, faultCode(err), r.id, false);
      }
      if (v === Verdict.LoginRequired) return writeLoginRequired(res, false, r.target, r.id);
      if (v === Verdict.Reserved) return writeError(res, 'MEZU_NOT_FOUND', r.id);
      if (v !== Verdict.Forward) return answer(ctx, r, v, false);
      if (!r.policy!.websocket) return writeError(res, 'MEZU_WEBSOCKET_NOT_ALLOWED', r.id);
      try {
        new EdgeSocket(ctx, r, req.getHeader('sec-websocket-key'), h.protocols, context).begin();
      } catch (err) {
        ctx.log(`edge: WebSocket ${r.id} failed while forwarding (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: r.id });
        writeError(res, faultCode(err), r.id, true);
      }
    },
    open(ws: WebSocket<SocketData>): void {
      guarded(ws, OPENED, null, false);
    },
    message(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
      guarded(ws, isBinary ? Opcode.Binary : Opcode.Text, message, false);
    },
    drain(ws: WebSocket<SocketData>): void {
      guarded(ws, DRAINED, null, false);
    },
    close(ws: WebSocket<SocketData>, code: number, message: ArrayBuffer): void {
      guarded(ws, code, message, true);
    },
    ping(ws: WebSocket<SocketData>, message: ArrayBuffer): void {
      guarded(ws, Opcode.Ping, message, false);
    },
    pong(ws: WebSocket<SocketData>, message: ArrayBuffer): void {
      guarded(ws, Opcode.Pong, message, false);
    },
  };
}

/** What uWS keeps for each socket. */
interface SocketData {
  socket: EdgeSocket;
}

/** `guarded`'s events that are not frames (opcodes are 0–10). */
const OPENED = -1;
const DRAINED = -2;

/**
 * Every uWS WebSocket event goes through here: an exception thrown out of a
 * uWS handler would end the worker, and with it every client's connection
 * (one client must never hurt another). A fault closes this socket only
 * (1011, RFC 6455 §7.4.1) and is logged.
 */
function guarded(ws: WebSocket<SocketData>, what: number, message: ArrayBuffer | null, close: boolean): void {
  const s = ws.getUserData().socket;
  try {
    if (close) s.onClientClose(what, message!);
    else if (what === OPENED) s.onOpen(ws);
    else if (what === DRAINED) s.onClientDrain();
    else if (what === Opcode.Ping || what === Opcode.Pong) s.onClientControl(what, message!);
    else s.onClientMessage(message!, what === Opcode.Binary);
  } catch (err) {
    s.fault(err);
  }
}

interface Handshake {
  /** `Upgrade` names `websocket`: a handshake, valid or not. */
  websocket: boolean;
  connectionUpgrade: boolean;
  version: string;
  /** The client's `Sec-WebSocket-Protocol` fields, joined (forwarded as they are). */
  protocols: string;
}

/** The handshake's fields (RFC 6455 §4.2.1), read from the request's copied fields. */
function handshakeFields(f: readonly string[]): Handshake {
  const h: Handshake = { websocket: false, connectionUpgrade: false, version: '', protocols: '' };
  for (let i = 0; i < f.length; i += 2) {
    const n = f[i]!;
    const v = f[i + 1]!;
    if (n === 'upgrade') h.websocket ||= hasToken(v, 'websocket');
    else if (n === 'connection') h.connectionUpgrade ||= hasToken(v, 'upgrade');
    else if (n === 'sec-websocket-version') h.version = h.version === '' ? v.trim() : 'several';
    else if (n === 'sec-websocket-protocol') h.protocols = h.protocols === '' ? v : `${h.protocols}, ${v}`;
  }
  return h;
}

/** A comma-separated field has `token` as one of its items (ASCII case-insensitive). */
function hasToken(v: string, token: string): boolean {
  for (const item of fieldList(v)) if (item.toLowerCase() === token) return true;
  return false;
}

/**
 * One client WebSocket, from its handshake to its close: the tunnel
 * request (head source and stream sink), uWS's user data for the socket, the
 * parser's sink for the origin's frames, and an open stream of the live
 * registry.
 */
function resumeTunnel(s: EdgeSocket): void {
  try {
    s.resumeTunnel();
  } catch (err) {
    s.fault(err);
  }
}

export class EdgeSocket implements TunnelRequest, ClientStreamSink, ServerFrameSink, LiveStream {
  // ── TunnelRequest ──
  readonly method = 'CONNECT';
  /** The stream stays open for the client's messages; never replayed. */
  readonly hasBody = true;
  conn: TunnelConnection | null = null;
  stream: H2Stream | null = null;
  replayed = false;

  state = HANDSHAKE;
  /** The handshake's response, until the upgrade or the refusal is written (or the client left). */
  private res: HttpResponse | null;
  private ws: WebSocket<SocketData> | null = null;
  private refusalStatus = 0;
  private refusalFields: string[] | null = null;
  private refusalBody: Buffer[] | null = null;
  private refusalBytes = 0;
  /** Tunnel data that came before uWS opened the socket. */
  private early: Buffer[] | null = null;
  private readonly parser: ServerFrameParser;
  private tunnelPaused = false;
  /** onClientDrain scheduled resumeTunnel. */
  private resumeQueued = false;
  /** A close frame went to the origin (and END_STREAM after it). */
  private closeSent = false;
  private counted = false;
  /** Whom this socket counts against on its rule's `max_sockets` (credential or client address), until finish. */
  private socketOf: string | null = null;
  closingSince = 0;

  // ── LiveStream ──
  livePrev: LiveStream | null = null;
  liveNext: LiveStream | null = null;
  principal: Principal | null;
  liveDeadline = Infinity;
  activeAt: number;
  lastMessageAt: number;
  liveIdleMs: number;

  constructor(
    private readonly ctx: WebSocketContext,
    readonly r: EdgeRequest,
    private readonly key: string,
    private readonly protocols: string,
    private readonly context: UpgradeContext,
  ) {
    this.res = r.res;
    this.principal = r.principal;
    this.parser = new ServerFrameParser(this);
    this.activeAt = (ctx.now ?? Date.now)();
    // idle_timeout starts at the open (onOpen): a handshake waiting for the origin is not idle.
    this.lastMessageAt = Infinity;
    this.liveIdleMs = r.policy!.idleTimeoutMs;
  }

  get liveProject(): string {
    return this.r.project!.id;
  }
  get liveMethod(): string {
    return this.r.method;
  }
  get liveKey(): string {
    return this.r.key;
  }
  get liveRequestId(): string {
    return this.r.id;
  }
  get liveClient(): string {
    return this.r.clientAddress;
  }
  get isWebSocket(): boolean {
    return true;
  }

  // ── handshake ──

  /** In the upgrade handler's top half: limits, a tunnel connection, and the stream opened after this read. */
  begin(): void {
    const r = this.r;
    const ctx = this.ctx;
    const res = r.res;
    const conn = ctx.scope.pools.pick(r.project!.upstream);
    if (conn === null) return writeError(res, 'MEZU_NO_WARPGATE', r.id);
    if (!conn.extendedConnect) return writeError(res, 'MEZU_WEBSOCKET_UNSUPPORTED', r.id);
    const addr = clientAddress(r);
    r.clientAddress = addr;
    // A socket is a forwarded request in flight for as long as it is open: one client address
    // cannot hold more than its share of the worker's tunnel streams (--client-inflight).
    const clients = ctx.scope.clients;
    const n = clients.get(addr) ?? 0;
    if (n >= (ctx.clientInflight ?? DEFAULT_CLIENT_INFLIGHT)) return writeError(res, 'MEZU_CLIENT_BUSY', r.id);
    const live = ctx.live;
    if (live !== null) {
      const share = Math.max(1, Math.floor(r.policy!.maxSockets / (ctx.workers ?? 1)));
      const who = this.principal === null ? addr : this.principal.credential;
      if (live.socketsOn(r.policy!.rule, who) >= share) return writeError(res, 'MEZU_WEBSOCKET_LIMIT', r.id);
      live.socketOpened(r.policy!.rule, who);
      this.socketOf = who;
      live.add(this);
    }
    clients.set(addr, n + 1);
    this.counted = true;
    this.conn = conn;
    res.onAborted(() => this.onHandshakeAborted());
    // Opened after the read that carried the handshake, as for any request (request.ts `forward`).
    setImmediate(startSocket, this);
  }

  start(): void {
    if (this.state !== HANDSHAKE || this.res === null) return;
    let conn = this.conn!;
    if (!conn.ready || !conn.extendedConnect) {
      const other = this.ctx.scope.pools.pick(this.r.project!.upstream);
      if (other === null || !other.extendedConnect) return this.refuse('MEZU_NO_WARPGATE');
      conn = other;
    }
    if (!conn.open(this)) return this.refuse('MEZU_NO_WARPGATE');
    conn.flush();
  }

  encodeHead(enc: HpackEncoder): void {
    enc.field(':protocol', 'websocket');
    // No spans are recorded for WebSockets (src/front/spans.ts covers requests): a trace the edge
    // starts for one is never flagged sampled, so nobody looks for a parent span that was not sent.
    encodeForwarded(enc, this.r, 'CONNECT', false);
  }

  private onHandshakeAborted(): void {
    this.res = null;
    this.stream?.abort();
    this.finish();
  }

  /** Answers the handshake with `code` (nothing was upgraded) and forgets the socket. */
  private refuse(code: ErrorCode): void {
    const res = this.res;
    this.res = null;
    this.stream?.abort();
    if (res !== null) res.cork(() => writeErrorNow(res, code, this.r.id, false));
    this.finish();
  }

  // ── ClientStreamSink ──

  onHead(status: number, headers: string[]): void {
    if (this.state !== HANDSHAKE) return;
    const res = this.res;
    if (res === null) {
      this.stream?.abort();
      return;
    }
    if (status !== 200) {
      // The origin's (or the Warpgate's) refusal: relayed with its body when the stream ends.
      this.refusalStatus = status;
      this.refusalFields = headers;
      this.refusalBody = [];
      return;
    }
    let protocol = '';
    let head = '101 Switching Protocols';
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      if (n === 'sec-websocket-protocol') protocol = headers[i + 1]!;
      else if (!SKIP_UPGRADE.has(n)) head += `\r\n${n}: ${headers[i + 1]!}`;
    }
    // The Warpgate checked the origin's choice against the offer; a choice nobody offered is a fault.
    if (protocol !== '' && !fieldList(this.protocols).includes(protocol)) {
      this.ctx.log(`edge: WebSocket ${this.r.id}: the origin chose subprotocol "${protocol}", which the client did not offer`, { level: 'warn', request_id: this.r.id });
      return this.refuse('MEZU_WEBSOCKET_UPGRADE_FAILED');
    }
    this.res = null;
    res.cork(() => {
      res.writeStatus(`${head}\r\nx-mezu-request-id: ${this.r.id}`);
      // Fields were checked by the tunnel's HPACK decoder (request.ts writeHead says why that is enough).
      // uWS copies the user data's own properties onto the socket's data (not its prototype):
      // one field that points here.
      res.upgrade({ socket: this } satisfies SocketData, this.key, protocol, '', this.context);
    });
  }

  onData(chunk: Buffer): void {
    if (this.state === HANDSHAKE) {
      if (this.refusalBody !== null) {
        if (this.refusalBytes + chunk.length <= MAX_REFUSAL_BODY) this.refusalBody.push(Buffer.from(chunk));
        this.refusalBytes += chunk.length;
      } else (this.early ??= []).push(Buffer.from(chunk));
      return;
    }
    if (this.state !== OPEN) return;
    this.lastMessageAt = Date.now();
    corked = this;
    corkedChunk = chunk;
    this.ws!.cork(pushCorked);
    corked = null;
    corkedChunk = null;
    if (!this.tunnelPaused && this.ws !== null && this.ws.getBufferedAmount() > CLIENT_HIGH_WATER) {
      this.tunnelPaused = true;
      this.stream?.pause();
    }
  }

  pushChunk(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  onEnd(): void {
    if (this.state === HANDSHAKE) {
      const res = this.res;
      this.res = null;
      if (res !== null) {
        if (this.refusalFields === null) res.cork(() => writeErrorNow(res, 'MEZU_TUNNEL_FAILED', this.r.id, false));
        else {
          const fields = this.refusalFields;
          let head = statusLine(this.refusalStatus);
          for (let i = 0; i < fields.length; i += 2) if (!SKIP_UPGRADE.has(fields[i]!)) head += `\r\n${fields[i]!}: ${fields[i + 1]!}`;
          const body = this.refusalBytes <= MAX_REFUSAL_BODY ? Buffer.concat(this.refusalBody!) : Buffer.alloc(0);
          res.cork(() => {
            res.writeStatus(`${head}\r\nx-mezu-request-id: ${this.r.id}`);
            res.end(body);
          });
        }
      }
      this.finish();
      return;
    }
    // The origin closed its connection. After its close frame that is the end of the closing
    // handshake; without one, the client is told the origin failed (1006 cannot be sent, §7.4.1).
    if (this.state === OPEN) this.ws?.end(1014, 'MEZU_ORIGIN_FAILED');
    this.finish();
  }

  onError(code: ErrorCode): void {
    if (this.state === HANDSHAKE) return this.refuse(code);
    if (this.state === OPEN) this.ws?.end(1014, code);
    this.finish();
  }
  onRefused(): void {
    this.onError('MEZU_TUNNEL_FAILED');
  }
  onLost(): void {
    this.onError('MEZU_TUNNEL_FAILED');
  }

  // ── uWS: the client's side ──

  onOpen(ws: WebSocket<SocketData>): void {
    this.ws = ws;
    this.state = OPEN;
    // idle_timeout counts from the open, not from the handshake (which waited for the origin).
    this.lastMessageAt = Date.now();
    const early = this.early;
    this.early = null;
    if (early !== null) for (const c of early) this.onData(c);
  }

  onClientMessage(message: ArrayBuffer, isBinary: boolean): void {
    if (this.state !== OPEN) return;
    const ws = this.ws!;
    if (message.byteLength > this.r.policy!.maxMessage) {
      ws.end(1009, 'MEZU_WEBSOCKET_MESSAGE_TOO_BIG');
      return;
    }
    this.activeAt = this.lastMessageAt = Date.now();
    this.toOrigin(clientFrame(isBinary ? Opcode.Binary : Opcode.Text, new Uint8Array(message)));
  }

  onClientControl(opcode: number, message: ArrayBuffer): void {
    if (this.state !== OPEN) return;
    this.lastMessageAt = Date.now();
    this.toOrigin(clientFrame(opcode, new Uint8Array(message)));
  }

  private toOrigin(frame: Buffer): void {
    const s = this.stream;
    if (s === null || s.done) return;
    s.write(frame);
    if (s.pendingOutBytes > TUNNEL_QUEUE_MAX + this.r.policy!.maxMessage) {
      this.ctx.log(`edge: WebSocket ${this.r.id} closed (1013 MEZU_WEBSOCKET_BACKPRESSURE): ${s.pendingOutBytes} bytes of client messages wait for the tunnel, which the origin is not reading`, { level: 'warn', request_id: this.r.id });
      this.ws?.end(1013, 'MEZU_WEBSOCKET_BACKPRESSURE');
    }
  }

  /**
   * uWS's drain handler. The resume (which sends what the tunnel held back) runs from a
   * setImmediate, not from here: uWS writes a message of 16 KiB or more to a socket with nothing
   * buffered by writev (us_socket_write2), which on a short write asks for writable events
   * without marking the write as failed, and the drain handler runs inside uWS's writable event,
   * which stops asking for them when it returns unless a write failed. A short write of the last
   * message sent from here left its rest in uWS's buffer with nothing to send it (the same
   * pattern stalled the demo origin's flood one run in eight).
   */
  onClientDrain(): void {
    if (this.resumeQueued || !this.tunnelPaused || this.ws === null || this.ws.getBufferedAmount() >= CLIENT_LOW_WATER) return;
    this.resumeQueued = true;
    setImmediate(resumeTunnel, this);
  }

  resumeTunnel(): void {
    this.resumeQueued = false;
    if (this.state !== OPEN || !this.tunnelPaused || this.ws === null || this.ws.getBufferedAmount() >= CLIENT_LOW_WATER) return;
    this.tunnelPaused = false;
    this.stream?.resume();
  }

  /** uWS's close handler: the client closed, went away, or the edge ended the socket (`ws.end`). */
  onClientClose(code: number, message: ArrayBuffer): void {
    if (this.state !== OPEN) return;
    this.state = CLOSED;
    this.ws = null;
    const s = this.stream;
    if (s !== null && !s.done && !this.closeSent) {
      this.closeSent = true;
      // The close goes on to the origin with its code and reason (RFC 6455 §5.5.1); a client that
      // vanished (1006) or sent no code (1005) cannot be quoted: 1001 and an empty close stand in.
      const reason = Buffer.from(message).toString('utf8');
      const payload = sendableCloseCode(code) ? closePayload(code, reason) : code === 1005 ? closePayload(0, '') : closePayload(1001, 'client connection lost');
      s.write(clientFrame(Opcode.Close, payload));
      s.end();
      if (this.tunnelPaused) s.resume(); // read what the origin still sends, to its close
      this.closingSince = Date.now();
      closing.add(this);
      if (closing.size === 1) closingSweep.refresh();
    }
    this.finish();
  }

  // ── ServerFrameSink: the origin's frames ──

  onMessagePart(part: Buffer, binary: boolean, first: boolean, last: boolean): void {
    const ws = this.ws;
    if (ws === null) return;
    // In fragments under 16 KiB: a larger uWS send could lose its payload (native/uws.ts).
    sendPiece(ws, part, binary, first, last);
  }
  onPing(payload: Buffer): void {
    this.ws?.ping(payload);
  }
  onPong(): void {
    // The answer to a client ping the edge copied to the origin: uWS answered the client already.
  }
  onClose(code: number, reason: string): void {
    const ws = this.ws;
    if (ws === null) return;
    if (code !== 1005 && !sendableCloseCode(code)) return this.onProtocolError(`close code ${code}`);
    // ws.end runs the close handler at once, which answers the origin's close (onClientClose).
    ws.end(code === 1005 ? 0 : code, reason);
  }
  onProtocolError(why: string): void {
    this.ctx.log(`edge: WebSocket ${this.r.id}: the origin broke RFC 6455 (${why}); closing`, { level: 'warn', request_id: this.r.id });
    this.stream?.abort();
    this.ws?.end(1014, 'MEZU_ORIGIN_FAILED');
  }

  /** A fault in this socket's handling (guarded): closed with 1011, its stream reset. */
  fault(err: unknown): void {
    this.ctx.log(`edge: WebSocket ${this.r.id} failed (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: this.r.id });
    this.stream?.abort();
    const ws = this.ws;
    if (this.state === OPEN && ws !== null) {
      try {
        ws.end(1011, 'MEZU_INTERNAL');
      } catch {
        // already closed
      }
    }
    this.finish();
  }

  // ── LiveStream ──

  revoke(code: ErrorCode, closeCode: number): void {
    if (this.state === OPEN) this.ws?.end(closeCode, code);
    else if (this.state === HANDSHAKE) this.refuse(code);
  }

  /** The socket is over for the client: counters and registry released (once). */
  private finish(): void {
    if (this.state === HANDSHAKE) this.state = CLOSED;
    const live = this.ctx.live;
    if (live !== null) {
      live.remove(this);
      if (this.socketOf !== null) live.socketClosed(this.r.policy!.rule, this.socketOf);
      this.socketOf = null;
    }
    if (!this.counted) return;
    this.counted = false;
    const clients = this.ctx.scope.clients;
    const addr = this.r.clientAddress;
    const n = clients.get(addr)!;
    if (n <= 1) clients.delete(addr);
    else clients.set(addr, n - 1);
  }

  /** The origin did not close within CLOSE_GRACE_MS of the edge's close: reset the stream. */
  expireClose(now: number): boolean {
    const s = this.stream;
    if (s === null || s.done) return true;
    if (now - this.closingSince < CLOSE_GRACE_MS) return false;
    s.abort();
    return true;
  }
}

function startSocket(s: EdgeSocket): void {
  try {
    s.start();
  } catch (err) {
    s.r.scope.log(`edge: WebSocket ${s.r.id} failed while opening its stream (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: s.r.id });
    s.revoke('MEZU_INTERNAL', 1011);
  }
}

let corked: EdgeSocket | null = null;
let corkedChunk: Buffer | null = null;
function pushCorked(): void {
  corked!.pushChunk(corkedChunk!);
}

/** Sockets the edge closed whose streams wait for the origin's close; one sweep for all. */
const closing = new Set<EdgeSocket>();
const closingSweep = setInterval(() => {
  const now = Date.now();
  for (const s of closing) if (s.expireClose(now)) closing.delete(s);
}, 1000);
closingSweep.unref();
