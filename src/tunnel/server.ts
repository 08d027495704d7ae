/**
 * The edge's tunnel listener, one per worker. Warpgates dial it over TLS 1.3
 * with a client certificate signed by the tunnel CA; the certificate's URI SAN
 * names the upstream pool. Every worker listens on the same port through
 * node:cluster (the primary hands each accepted connection to the next worker
 * in turn), and the hello tells the Warpgate which worker it reached, so it
 * keeps dialing until every worker holds its own tunnels: no request is ever
 * relayed between edge processes.
 */
import type { Log } from '../runtime/index.js';
import * as tls from 'node:tls';
import { poolFromPeerCertificate } from '../pki/index.js';
import type { H2Limits, Jwks, TunnelHello } from '../../wire/index.js';
import { MAX_HELLO_ENDPOINTS } from '../../wire/index.js';
import { TunnelConnection } from './connection.js';
import { PoolRegistry } from './pools.js';
import type { ErrorCode } from '../errors/index.js';

/** Logged when an enrolled Warpgate's key no longer admits it (src/enroll/guard.ts decides). */
const CREDENTIAL_REVOKED: ErrorCode = 'MEZU_TUNNEL_CREDENTIAL_REVOKED';

type Conn = TunnelConnection;

export interface TunnelServerOptions {
  host: string;
  port: number;
  key: string;
  cert: string;
  /** CA certificates accepted for Warpgate client certificates. */
  ca: string[];
  edgeId: string;
  worker: number;
  workers: number;
  issuer: string;
  /** Projects served by a pool (the assertion audiences its Warpgates accept). */
  projectsOf(pool: string): string[];
  jwks(): Jwks;
  responseTimeoutMs: number;
  /** Codec limits (PING liveness, windows, …); defaults in wire/h2/limits.ts. */
  limits?: Partial<H2Limits>;
  log: Log;
  /**
   * Enrolled Warpgates (src/enroll): decides on a connection beyond its CA and
   * pool, returning the credential (API key id) to re-check later with
   * `revalidate`, or why it is refused. Absent: every CA-signed pool certificate is admitted.
   */
  admit?(socket: tls.TLSSocket, pool: string): { credential: string | null } | { refuse: string };
  /** Is an admitted credential still good? Checked again when the hello completes (a revocation may land in between). */
  live?(credential: string): boolean;
  /** Called when a tunnel became ready or closed (status reporting). */
  onTunnelsChanged?(): void;
  /** A replicated node: the live nodes' tunnel endpoints, told to every Warpgate in the hello. */
  endpoints?(): string[];
}

/** What the listener knows of one live tunnel (for the Console's Warpgate page). */
export interface TunnelDescription {
  pool: string;
  warpgateId: string;
  version: string;
  credential: string | null;
  since: number;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** One pool's tunnels in this worker, for metrics. */
export interface PoolStats {
  pool: string;
  /** Ready connections now, and their open streams. */
  connections: number;
  streams: number;
  /** Since the worker started: tunnels that became ready, those from a Warpgate whose earlier tunnel to this worker had closed, RST_STREAM frames either way. */
  connects: number;
  reconnects: number;
  resets: number;
}

export class TunnelServer {
  readonly pools = new PoolRegistry();
  private server: tls.Server | null = null;
  private readonly conns = new Set<Conn>();
  /** Per connection: the credential it was admitted with and, once ready, what its hello reply said. */
  private readonly described = new Map<Conn, TunnelDescription>();

  /** Per pool: counts of closed connections folded in, and tunnels lost per Warpgate (`pool\0id`) awaiting a redial. */
  private readonly totals = new Map<string, { connects: number; reconnects: number; resets: number }>();
  private readonly lost = new Map<string, number>();

  constructor(private readonly opts: TunnelServerOptions) {}

  private totalsOf(pool: string): { connects: number; reconnects: number; resets: number } {
    let t = this.totals.get(pool);
    if (t === undefined) this.totals.set(pool, (t = { connects: 0, reconnects: 0, resets: 0 }));
    return t;
  }

  /** Per pool, for metrics (a scrape; walks the connections). */
  stats(): PoolStats[] {
    const by = new Map<string, PoolStats>();
    const of = (pool: string) => {
      let p = by.get(pool);
      if (p === undefined) {
        const t = this.totalsOf(pool);
        by.set(pool, (p = { pool, connections: 0, streams: 0, connects: t.connects, reconnects: t.reconnects, resets: t.resets }));
      }
      return p;
    };
    for (const pool of this.totals.keys()) of(pool);
    for (const c of this.conns) {
      const p = of(c.pool);
      if (c.ready) p.connections++;
      p.streams += c.outstanding;
      p.resets += c.h2.resetsSent + c.h2.resetsReceived;
    }
    return [...by.values()];
  }

  listen(): Promise<number> {
    const o = this.opts;
    const server = tls.createServer(
      {
        key: o.key,
        cert: o.cert,
        ca: this.caList ?? o.ca,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
        ALPNProtocols: ['h2'],
      },
      (socket) => this.onConnection(socket),
    );
    // With TLS 1.3 node completes the handshake, then finds the client certificate bad and
    // destroys the socket: the error says only "socket hang up" and the reason (CERT_HAS_EXPIRED,
    // an unknown CA…) is on the socket. An operator needs the reason.
    server.on('tlsClientError', (err, socket) => {
      const why = (socket as tls.TLSSocket | undefined)?.authorizationError ?? err.message;
      const peer = socket?.remoteAddress === undefined ? '' : ` from ${socket.remoteAddress}:${socket.remotePort ?? ''}`;
      o.log(`tunnel: rejected a handshake${peer}: ${typeof why === 'string' ? why : why.message}`, { level: 'warn' });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : o.port);
      });
    });
  }

  private onConnection(socket: tls.TLSSocket): void {
    const o = this.opts;
    const pool = poolFromPeerCertificate(socket.getPeerCertificate());
    if (!socket.authorized || pool === null) {
      o.log('tunnel: a client certificate without a valid pool name was refused', { level: 'warn' });
      socket.destroy();
      return;
    }
    const admission = o.admit?.(socket, pool) ?? { credential: null };
    if ('refuse' in admission) {
      o.log(`tunnel: refused a warpgate of pool ${pool} (${CREDENTIAL_REVOKED}): ${admission.refuse}`, { level: 'warn' });
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const notAfter = Date.parse(socket.getPeerCertificate().valid_to);
    const conn: Conn = new TunnelConnection(pool, socket, { responseTimeoutMs: o.responseTimeoutMs, ...(o.limits ?? {}) }, (c, reason) => {
      if (c.ready || this.conns.has(c)) o.log(`tunnel: connection to a warpgate of pool ${pool} closed: ${reason}`);
      this.onClosed(c);
    });
    this.conns.add(conn);
    this.closeAtExpiry(conn, pool, notAfter);
    conn.hello(this.helloFor(pool)).then(
      (reply) => {
        if (!this.conns.has(conn)) return;
        if (admission.credential !== null && o.live !== undefined && !o.live(admission.credential)) {
          o.log(`tunnel: refused warpgate ${reply.warpgateId} of pool ${pool} (${CREDENTIAL_REVOKED}): key ${admission.credential} was revoked during its handshake`);
          conn.close(false);
          return;
        }
        conn.ready = true;
        this.pools.add(conn);
        this.described.set(conn, { pool, warpgateId: String(reply.warpgateId), version: String(reply.version), credential: admission.credential, since: Date.now() });
        conn.peer = String(reply.warpgateId);
        const t = this.totalsOf(pool);
        t.connects++;
        const key = `${pool}\u0000${conn.peer}`;
        const lost = this.lost.get(key) ?? 0;
        if (lost > 0) {
          t.reconnects++;
          if (lost === 1) this.lost.delete(key);
          else this.lost.set(key, lost - 1);
        }
        o.onTunnelsChanged?.();
        o.log(`tunnel: warpgate ${reply.warpgateId} connected for pool ${pool} (worker ${o.worker})`);
      },
      (err: Error) => {
        o.log(`tunnel: hello with a warpgate of pool ${pool} failed: ${err.message}`);
        conn.close(false);
      },
    );
  }

  /** Per connection: the timer that closes it when its client certificate expires. */
  private readonly expiry = new Map<Conn, NodeJS.Timeout>();

  /**
   * TLS checks the client certificate's validity only at the handshake; a
   * tunnel must not outlive its certificate. At `notAfter` the connection is
   * closed gracefully (GOAWAY: in-flight streams finish, new ones go to other
   * tunnels); the Warpgate redials with its renewed certificate (enrollment
   * renews at two thirds of the life), and a Warpgate without one is refused
   * at the handshake. Timers are unref'd and re-armed past the 24.8-day cap.
   */
  private closeAtExpiry(conn: Conn, pool: string, notAfter: number): void {
    if (!Number.isFinite(notAfter)) return;
    const arm = (): void => {
      const left = notAfter - Date.now();
      if (left > 0) {
        const t = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
        t.unref();
        this.expiry.set(conn, t);
        return;
      }
      this.expiry.delete(conn);
      const d = this.described.get(conn);
      this.opts.log(`tunnel: closing a tunnel of ${d === undefined ? 'a warpgate' : `warpgate ${d.warpgateId}`} for pool ${pool}: its client certificate expired at ${new Date(notAfter).toISOString()}`);
      conn.close(true);
    };
    arm();
  }

  private onClosed(c: Conn): void {
    const t = this.expiry.get(c);
    if (t !== undefined) {
      clearTimeout(t);
      this.expiry.delete(c);
    }
    if (this.conns.delete(c)) {
      this.totalsOf(c.pool).resets += c.h2.resetsSent + c.h2.resetsReceived;
      if (c.peer !== '' && !this.closing) {
        const key = `${c.pool}\u0000${c.peer}`;
        this.lost.set(key, (this.lost.get(key) ?? 0) + 1);
      }
    }
    this.pools.remove(c);
    if (this.described.delete(c)) this.opts.onTunnelsChanged?.();
  }

  private caList: string[] | null = null;

  /** Replaces the CAs accepted for client certificates (a project's new tunnel CA); applies to new handshakes. */
  setClientCas(ca: string[]): void {
    this.caList = ca;
    this.server?.setSecureContext({ key: this.opts.key, cert: this.opts.cert, ca, minVersion: 'TLSv1.3' });
  }

  /** Closes at once every tunnel whose credential `live` no longer accepts (a revoked key); returns how many. */
  revalidate(live: (credential: string) => boolean): number {
    let n = 0;
    for (const [c, d] of this.described) {
      if (d.credential === null || live(d.credential)) continue;
      this.opts.log(`tunnel: closing a tunnel of warpgate ${d.warpgateId} (${CREDENTIAL_REVOKED}): key ${d.credential} is no longer valid`);
      this.described.delete(c);
      c.close(false);
      n++;
    }
    if (n > 0) this.opts.onTunnelsChanged?.();
    return n;
  }

  /** The ready tunnels of this worker. */
  tunnels(): TunnelDescription[] {
    return [...this.described.values()];
  }

  /** Sends a fresh hello (new keys, projects or cluster nodes) to every connection. */
  broadcastHello(): void {
    for (const c of this.conns) {
      if (!c.ready) continue;
      c.hello(this.helloFor(c.pool)).catch(() => c.close(false));
    }
  }

  private helloFor(pool: string): TunnelHello {
    const o = this.opts;
    const hello: TunnelHello = { edgeId: o.edgeId, worker: o.worker, workers: o.workers, pool, projects: o.projectsOf(pool), issuer: o.issuer, jwks: o.jwks() };
    const endpoints = o.endpoints?.();
    if (endpoints !== undefined && endpoints.length > 0) hello.endpoints = endpoints.slice(0, MAX_HELLO_ENDPOINTS);
    return hello;
  }

  /** Stops accepting; graceful closes let in-flight streams finish (GOAWAY). */
  private closing = false;
  /** Accepts no new tunnel connection; the open ones keep carrying streams (a draining worker). */
  stopAccepting(): void {
    this.closing = true;
    this.server?.close();
  }

  close(graceful: boolean): void {
    this.stopAccepting();
    for (const c of this.conns) c.close(graceful);
  }

  get outstanding(): number {
    let n = 0;
    for (const c of this.conns) n += c.outstanding;
    return n;
  }
}
