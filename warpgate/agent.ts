/**
 * The Warpgate agent's tunnel side: dials the edge over TLS 1.3 with its
 * client certificate, then serves HTTP/2 on that connection (roles reversed:
 * the edge is the client). The edge's hello says which edge worker holds a
 * connection; the agent keeps dialing until every worker holds
 * `connsPerWorker` of them, so no request is relayed between edge processes.
 * Reconnects use exponential backoff with full jitter and an injectable clock.
 */
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import { Tunnel, type TunnelHello, type TunnelHelloReply } from '../src/contract/index.js';
import type { AssertionVerifier } from './verify.js';
import type { OriginForwarder } from './forward.js';
import type { LeanForwarder } from './lean-forward.js';
import { H2Connection, type H2Stream } from '../src/tunnel/h2/connection.js';
import type { H2Limits } from '../src/tunnel/h2/limits.js';

export interface AgentOptions {
  edgeHost: string;
  edgePort: number;
  servername: string;
  cert: string;
  key: string;
  ca: string;
  connsPerWorker: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  version: string;
  /** `lean`: our HTTP/2 codec (default); `node`: node:http2, the reference. Must match the edge's. */
  impl: 'lean' | 'node';
  /** Lean codec limits (PING liveness, windows, …). */
  limits: Partial<H2Limits>;
  /** Agent id sent in the hello (enrollment names the Warpgate with it); random when absent. */
  id?: string;
  /** Told of every failed dial (enrollment checks its key when dials keep failing). */
  onDialFailure?(why: string, consecutive: number): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  random(): number;
}
export const realTimers: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), random: Math.random };

/** Full-jitter backoff (AWS architecture blog's "full jitter"): uniform in [0, min(cap, base·2^attempt)). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** A dial must complete TLS and the edge's hello within this long. */
export const DIAL_TIMEOUT_MS = 5_000;

/** HTTP/2 settings the Warpgate (server) announces. */
export const SERVER_SETTINGS: http2.Settings = {
  maxConcurrentStreams: 1000,
  initialWindowSize: 1 << 20,
  maxHeaderListSize: 64 * 1024,
};

interface Conn {
  socket: tls.TLSSocket;
  session: http2.ServerHttp2Session | null;
  lean: H2Connection | null;
  edgeId: string | null;
  worker: number;
}

export class Agent {
  readonly id: string;
  private readonly conns = new Set<Conn>();
  private dialing = 0;
  private failures = 0;
  private edgeId: string | null = null;
  private workers = 1;
  private stopped = false;
  private retryTimer: unknown = null;

  constructor(
    private readonly opts: AgentOptions,
    private readonly verifier: AssertionVerifier,
    private readonly forwarder: OriginForwarder | null,
    private readonly leanForwarder: LeanForwarder | null,
    private readonly log: (m: string) => void,
    private readonly timers: Timers = realTimers,
  ) {
    this.id = opts.id ?? randomBytes(6).toString('hex');
  }

  start(): void {
    this.ensure();
  }

  /** Enrollment renewed the client certificate: later dials use it; live tunnels keep theirs. */
  setCredentials(c: { cert: string; key: string; ca: string }): void {
    this.opts.cert = c.cert;
    this.opts.key = c.key;
    this.opts.ca = c.ca;
  }

  /** Connections holding a completed hello with the current edge instance, per worker. */
  coverage(): number[] {
    const per = new Array<number>(this.workers).fill(0);
    for (const c of this.conns) if (c.edgeId === this.edgeId && c.worker >= 0 && c.worker < this.workers) per[c.worker]!++;
    return per;
  }

  private ensure(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const per = this.coverage();
    let missing = 0;
    for (const n of per) missing += Math.max(0, this.opts.connsPerWorker - n);
    if (this.edgeId === null) missing = Math.max(missing, this.opts.connsPerWorker);
    // Dial one at a time: the edge's primary hands connections to workers in turn.
    if (missing > 0 && this.dialing === 0) this.dial();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delay = backoffDelay(this.failures, this.opts.backoffBaseMs, this.opts.backoffCapMs, this.timers.random);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.ensure();
    }, delay);
    // Not unref'd: reconnecting is what keeps a Warpgate process alive.
  }

  private dial(): void {
    const o = this.opts;
    this.dialing++;
    const socket = tls.connect({
      host: o.edgeHost,
      port: o.edgePort,
      servername: o.servername,
      cert: o.cert,
      key: o.key,
      ca: o.ca,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
    });
    const conn: Conn = { socket, session: null, lean: null, edgeId: null, worker: -1 };
    let settled = false;
    // A dial that never completes its handshake and hello (e.g. the edge's primary handed the
    // connection to a worker that just died) must not block the dialer forever.
    const deadline = setTimeout(() => {
      if (settled) return;
      socket.destroy();
      settle(false, `no TLS handshake and hello within ${DIAL_TIMEOUT_MS} ms`);
    }, DIAL_TIMEOUT_MS);
    const settle = (ok: boolean, why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      this.dialing--;
      if (ok) {
        this.failures = 0;
        this.ensure();
      } else {
        this.failures++;
        if (this.failures === 1 || this.failures % 10 === 0) this.log(`warpgate: cannot reach the edge at ${o.edgeHost}:${o.edgePort}: ${why} (attempt ${this.failures})`);
        this.scheduleRetry();
        o.onDialFailure?.(why, this.failures);
      }
    };
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      if (o.impl === 'lean') {
        const h2 = new H2Connection(socket, 'server', o.limits);
        conn.lean = h2;
        this.conns.add(conn);
        h2.onStream = (stream, headers, endStream) => this.onLeanStream(conn, stream, headers, endStream, settle);
        h2.onClose = (reason) => {
          if (conn.edgeId !== null && !this.stopped) this.log(`warpgate: tunnel closed: ${reason}`);
          this.onClosed(conn);
        };
        return;
      }
      const session = http2.performServerHandshake(socket, { settings: SERVER_SETTINGS });
      conn.session = session;
      this.conns.add(conn);
      session.on('stream', (stream, headers) => this.onStream(conn, stream, headers, settle));
      session.on('error', () => session.destroy());
      session.on('close', () => this.onClosed(conn));
    });
    socket.on('error', (err) => {
      settle(false, err.message);
      socket.destroy();
    });
    socket.on('close', () => {
      settle(false, 'connection closed before the hello');
      if (conn.session === null && conn.lean === null) this.onClosed(conn);
    });
  }

  private onStream(conn: Conn, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, settle: (ok: boolean, why: string) => void): void {
    stream.on('error', () => undefined);
    if (headers[':method'] === Tunnel.controlMethod && headers[':path'] === Tunnel.controlPath && headers[Tunnel.projectHeader] === undefined) {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 1 << 20) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        else chunks.push(c);
      });
      stream.on('end', () => {
        let hello: TunnelHello;
        try {
          hello = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelHello;
        } catch {
          stream.respond({ ':status': 400 });
          stream.end();
          return;
        }
        this.onHello(conn, hello);
        const reply: TunnelHelloReply = { warpgateId: this.id, version: this.opts.version };
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(reply));
        settle(true, '');
      });
      return;
    }
    if (conn.edgeId === null) {
      // No request before the hello: we do not yet know the keys to verify it with.
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    this.forwarder!.handle(stream, headers);
  }

  private onLeanStream(conn: Conn, stream: H2Stream, headers: string[], endStream: boolean, settle: (ok: boolean, why: string) => void): void {
    let method = '';
    let path = '';
    let project = false;
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      if (n === ':method') method = headers[i + 1]!;
      else if (n === ':path') path = headers[i + 1]!;
      else if (n === Tunnel.projectHeader) project = true;
    }
    if (method === Tunnel.controlMethod && path === Tunnel.controlPath && !project) {
      const chunks: Buffer[] = [];
      let size = endStream ? 0 : 0;
      const answer = () => {
        let hello: TunnelHello;
        try {
          hello = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TunnelHello;
        } catch {
          stream.respond([':status', '400'], true);
          return;
        }
        this.onHello(conn, hello);
        const reply: TunnelHelloReply = { warpgateId: this.id, version: this.opts.version };
        stream.respond([':status', '200', 'content-type', 'application/json'], false);
        stream.end(Buffer.from(JSON.stringify(reply)));
        settle(true, '');
      };
      if (endStream) return answer();
      stream.reqSink = {
        onData: (c) => {
          size += c.length;
          if (size > 1 << 20) stream.abort();
          else chunks.push(Buffer.from(c));
        },
        onEnd: answer,
        onReset: () => undefined,
      };
      return;
    }
    if (conn.edgeId === null) {
      // No request before the hello: we do not yet know the keys to verify it with.
      stream.respond([':status', '503'], true);
      return;
    }
    this.leanForwarder!.handle(stream, headers, endStream);
  }

  private onHello(conn: Conn, hello: TunnelHello): void {
    const first = conn.edgeId === null;
    if (hello.edgeId !== this.edgeId) {
      if (this.edgeId !== null) this.log(`warpgate: edge instance changed (${this.edgeId} → ${hello.edgeId}); redialing every worker`);
      this.edgeId = hello.edgeId;
    }
    this.workers = Math.max(1, hello.workers | 0);
    conn.edgeId = hello.edgeId;
    conn.worker = hello.worker;
    this.verifier.update(hello.jwks, hello.issuer, hello.projects);
    if (first) {
      const per = this.coverage();
      // Keep a surplus connection (useful capacity) unless a worker has twice its share.
      if (per[hello.worker]! > this.opts.connsPerWorker * 2) {
        setImmediate(() => {
          conn.session?.close();
          conn.lean?.close();
        });
      } else {
        this.log(`warpgate: tunnel up to edge worker ${hello.worker}/${hello.workers} for pool ${hello.pool} (${hello.projects.join(', ') || 'no projects yet'})`);
      }
    }
  }

  private onClosed(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    if (conn.edgeId !== null) this.log(`warpgate: tunnel to edge worker ${conn.worker} closed`);
    if (this.stopped) return;
    // Dropped connections are redialed after a jittered delay, so a restarting edge is not stampeded.
    if (this.dialing === 0) {
      this.failures = Math.max(this.failures, 1);
      this.scheduleRetry();
    }
  }

  /** Graceful: GOAWAY on every connection, in-flight streams finish. */
  stop(): Promise<void> {
    this.stopped = true;
    const waits: Promise<void>[] = [];
    for (const c of this.conns) {
      if (c.session !== null) waits.push(new Promise((r) => c.session!.close(() => r())));
      else if (c.lean !== null) {
        const h2 = c.lean;
        waits.push(new Promise((r) => {
          const prev = h2.onClose;
          h2.onClose = (reason) => {
            prev?.(reason);
            r();
          };
          h2.close();
          if (h2.closed) r();
        }));
      } else c.socket.destroy();
    }
    return Promise.all(waits).then(() => undefined);
  }
}
