/**
 * The Warpgate agent's tunnel side: dials the edge over TLS 1.3 with its
 * client certificate, then serves HTTP/2 on that connection (roles reversed:
 * the edge is the client). The edge's hello says which edge worker holds a
 * connection; the agent keeps dialing until every worker holds
 * `connsPerWorker` of them, so no request is relayed between edge processes.
 * Reconnects use exponential backoff with full jitter and an injectable clock.
 *
 * Certificate rotation: the edge closes a tunnel when the client certificate it
 * was dialed with expires (TLS checks validity only at the handshake). When
 * enrollment renews the certificate (`setCredentials`), the agent replaces its
 * live tunnels with tunnels dialed with the new one, make-before-break and one
 * at a time: dial a replacement, wait until the edge has registered it (a
 * request arrived on it, or `REPLACEMENT_SETTLE_MS` after its hello), then
 * drain an old tunnel of that same edge worker (GOAWAY: in-flight streams
 * finish, the edge sends new ones to the other tunnels). A worker never holds
 * fewer ready tunnels than `connsPerWorker` because of a rotation; a failed
 * replacement dial leaves the old tunnel serving (its certificate still holds)
 * and is retried with the normal backoff. The edge's close-at-expiry remains
 * the backstop for a Warpgate that could not renew or rotate in time.
 */
import * as tls from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import { Tunnel, type TunnelHello, type TunnelHelloReply } from '../wire/index.js';
import type { AssertionVerifier } from '../wire/index.js';
import type { LeanForwarder } from './lean-forward.js';
import { DEFAULT_NO_INDEX, H2Connection, type H2Stream, type HpackEncoderOptions } from '../wire/index.js';
import type { H2Limits } from '../wire/index.js';
import { Backoff, systemClock, type Timer, type Timers } from '../src/runtime/index.js';

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
  /** Lean codec limits (PING liveness, windows, …). */
  limits: Partial<H2Limits>;
  /** Agent id sent in the hello (enrollment names the Warpgate with it); random when absent. */
  id?: string;
  /** Told of every failed dial (enrollment checks its key when dials keep failing). */
  onDialFailure?(why: string, consecutive: number): void;
  /** Told of the cluster's node endpoints a hello lists (./agents.ts dials those it lacks). */
  onEndpoints?(endpoints: string[]): void;
}

/** notAfter of a PEM certificate as ISO text ('' when it cannot be read). */
function certificateUntil(pem: string): string {
  try {
    return new Date(new X509Certificate(pem).validTo).toISOString();
  } catch {
    return '';
  }
}

/**
 * HPACK for the Warpgate → edge direction: high-churn fields not indexed
 * (they would only evict reusable entries), and no Huffman coding — the
 * tunnel is CPU-bound, not bandwidth-bound, and a raw literal costs the edge's
 * decoder a slice instead of a bit-by-bit decode.
 */
const TUNNEL_HPACK: HpackEncoderOptions = { noIndex: [...DEFAULT_NO_INDEX, 'date'], huffman: false };

/** A dial must complete TLS and the edge's hello within this long. */
export const DIAL_TIMEOUT_MS = 5_000;

/**
 * Rotation: how long after its hello a replacement tunnel counts as registered
 * at the edge when no request has arrived on it yet. The edge registers it in
 * the same event-loop turn as it reads the hello reply (a request on it proves
 * that earlier); the old tunnel's GOAWAY leaves this much later, so the edge
 * reads it after the reply unless the two connections are reordered by more
 * than this on the way.
 */
export const REPLACEMENT_SETTLE_MS = 250;

interface Conn {
  socket: tls.TLSSocket;
  lean: H2Connection | null;
  edgeId: string | null;
  worker: number;
  /** The credentials generation it was dialed with (`Agent.generation` at dial time). */
  generation: number;
  /** notAfter of the certificate it was dialed with (ISO), for the log. */
  certUntil: string;
  /** Known to be registered at the edge: a request arrived on it, or it settled after its hello. */
  confirmed: boolean;
  /** Being drained by us (GOAWAY sent): no longer counted, its close is not a failure. */
  draining: boolean;
  /** Dialed to replace a tunnel with an older certificate. */
  replacement: boolean;
}

export class Agent {
  readonly id: string;
  private readonly conns = new Set<Conn>();
  /** For metrics (./metrics.ts): dials that completed their hello or failed, tunnels that dropped (not drained on purpose), and completed dials that replaced a dropped one. */
  readonly counts = { dialsOk: 0, dialsFailed: 0, drops: 0, reconnects: 0 };
  private dropsToReplace = 0;
  private dialing = 0;
  private failures = 0;
  private edgeId: string | null = null;
  private workers = 1;
  private stopped = false;
  private retryTimer: Timer | null = null;
  /** Bumped by every setCredentials: tunnels of an older generation are replaced. */
  private generation = 0;
  private certUntil: string;
  /** Replacement dials in a row that landed on an edge worker with nothing to replace (backoff). */
  private rotationMisses = 0;
  /** The backoff after a miss has run: the next replacement is dialed. */
  private rotationBackedOff = false;
  private rotating = false;
  /** Delays of redials and rotation retries; the attempt number is `failures` (or `rotationMisses`). */
  private readonly backoff: Backoff;

  constructor(
    private readonly opts: AgentOptions,
    private readonly verifier: AssertionVerifier,
    private readonly forwarder: LeanForwarder,
    private readonly log: (m: string) => void,
    private readonly clock: Timers = systemClock,
  ) {
    this.id = opts.id ?? randomBytes(6).toString('hex');
    this.certUntil = certificateUntil(opts.cert);
    this.backoff = new Backoff({ baseMs: opts.backoffBaseMs, capMs: opts.backoffCapMs }, clock);
  }

  start(): void {
    this.ensure();
  }

  /**
   * Enrollment renewed the client certificate: later dials use it, and the live
   * tunnels are replaced with tunnels dialed with it, one at a time and
   * make-before-break (see the file comment), long before the old one expires.
   */
  setCredentials(c: { cert: string; key: string; ca: string }): void {
    this.opts.cert = c.cert;
    this.opts.key = c.key;
    this.opts.ca = c.ca;
    this.generation++;
    this.certUntil = certificateUntil(c.cert);
    this.rotationMisses = 0;
    const live = this.serving().length;
    if (live > 0 && !this.stopped) {
      this.rotating = true;
      this.log(`warpgate: replacing ${live} live tunnel${live === 1 ? '' : 's'} with tunnels dialed with the renewed certificate (until ${this.certUntil}), one at a time`);
    }
    this.ensure();
  }

  /** Connections holding a completed hello with the current edge instance, per worker (not those being drained). */
  coverage(): number[] {
    const per = new Array<number>(this.workers).fill(0);
    for (const c of this.serving()) per[c.worker]!++;
    return per;
  }

  /** Tunnels open now (hello done, draining ones included). */
  get tunnels(): number {
    let n = 0;
    for (const c of this.conns) if (c.edgeId !== null) n++;
    return n;
  }

  /** Tunnels that serve requests: hello done with the current edge instance, a known worker, not draining. */
  private serving(): Conn[] {
    const out: Conn[] = [];
    for (const c of this.conns) if (!c.draining && c.edgeId !== null && c.edgeId === this.edgeId && c.worker >= 0 && c.worker < this.workers) out.push(c);
    return out;
  }

  /** Tunnels dialed with the current certificate / with an older one (`stale`), per worker; for tests and the log. */
  tunnelsByCertificate(): { current: number; stale: number; draining: number } {
    let current = 0, stale = 0, draining = 0;
    for (const c of this.conns) {
      if (c.edgeId === null) continue;
      if (c.draining) draining++;
      else if (c.generation === this.generation) current++;
      else stale++;
    }
    return { current, stale, draining };
  }

  private ensure(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const per = this.coverage();
    let missing = 0;
    for (const n of per) missing += Math.max(0, this.opts.connsPerWorker - n);
    if (this.edgeId === null) missing = Math.max(missing, this.opts.connsPerWorker);
    // Dial one at a time: the edge's primary hands connections to workers in turn.
    if (missing > 0) {
      if (this.dialing === 0) this.dial(false);
      return;
    }
    this.rotate();
  }

  /**
   * One step of a certificate rotation, per edge worker: drain the old tunnels
   * that confirmed new ones make unnecessary, and dial one replacement while a
   * worker still holds old tunnels it needs (one dial at a time; the edge's
   * primary hands connections to workers in turn, so a replacement may land on
   * another worker than the one that needs it: it then serves as capacity
   * there, and repeated misses back off).
   */
  private rotate(): void {
    if (this.edgeId === null) return;
    const byWorker: Conn[][] = Array.from({ length: this.workers }, () => []);
    for (const c of this.serving()) byWorker[c.worker]!.push(c);
    let needed = 0;
    let stale = 0;
    for (let w = 0; w < this.workers; w++) {
      const list = byWorker[w]!;
      const fresh = list.filter((c) => c.generation === this.generation);
      const old = list.filter((c) => c.generation !== this.generation);
      if (old.length === 0) continue;
      const confirmed = fresh.filter((c) => c.confirmed).length;
      // Old tunnels still needed to keep connsPerWorker ready until the new ones are registered.
      const keep = Math.min(old.length, Math.max(0, this.opts.connsPerWorker - confirmed));
      for (const c of old.slice(0, old.length - keep)) this.drain(c, confirmed);
      stale += keep;
      needed += Math.max(0, Math.min(keep, this.opts.connsPerWorker - fresh.length));
    }
    if (stale === 0) {
      if (this.rotating && this.tunnelsByCertificate().draining === 0) {
        this.rotating = false;
        this.log(`warpgate: every tunnel now uses the certificate valid until ${this.certUntil}`);
      }
      return;
    }
    // One replacement at a time: the next is dialed once the previous one is registered at the edge.
    if (needed === 0 || this.dialing > 0) return;
    for (const c of this.conns) if (c.replacement && !c.confirmed && !c.draining && c.generation === this.generation && c.edgeId !== null) return;
    if (this.rotationMisses > 0 && !this.rotationBackedOff) {
      this.scheduleRetry(this.rotationMisses, () => {
        this.rotationBackedOff = true;
        this.ensure();
      });
      return;
    }
    this.rotationBackedOff = false;
    this.dial(true);
  }

  /** Graceful: GOAWAY, in-flight streams finish, the edge sends new ones to the other tunnels. */
  private drain(c: Conn, registered: number): void {
    if (c.draining) return;
    c.draining = true;
    this.log(`warpgate: draining a tunnel to edge worker ${c.worker} dialed with the certificate valid until ${c.certUntil} (${registered} registered tunnel${registered === 1 ? '' : 's'} with the renewed one there)`);
    if (c.lean !== null) c.lean.close();
    else c.socket.destroy();
  }

  /** The edge has this tunnel in its pool: a request arrived on it, or it settled after its hello. */
  private confirm(conn: Conn): void {
    if (conn.confirmed) return;
    conn.confirmed = true;
    if (conn.generation !== this.generation || !this.conns.has(conn)) return;
    this.ensure();
  }

  private scheduleRetry(attempt = this.failures, then: () => void = () => this.ensure()): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delay = this.backoff.delay(attempt);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      then();
    }, delay);
    // Not unref'd: reconnecting is what keeps a Warpgate process alive.
  }

  private dial(replacement: boolean): void {
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
    const conn: Conn = { socket, lean: null, edgeId: null, worker: -1, generation: this.generation, certUntil: this.certUntil, confirmed: false, draining: false, replacement };
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
        this.counts.dialsOk++;
        if (this.dropsToReplace > 0) {
          this.dropsToReplace--;
          this.counts.reconnects++;
        }
        this.failures = 0;
        this.ensure();
      } else {
        this.counts.dialsFailed++;
        this.failures++;
        if (this.failures === 1 || this.failures % 10 === 0) this.log(`warpgate: cannot reach the edge at ${o.edgeHost}:${o.edgePort}: ${why} (attempt ${this.failures})`);
        this.scheduleRetry();
        o.onDialFailure?.(why, this.failures);
      }
    };
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3): the edge may open WebSockets on this tunnel
      // (extended CONNECT, relayed by ./websocket.ts through LeanForwarder).
      const h2 = new H2Connection(socket, 'server', { ...o.limits, enableConnectProtocol: true }, TUNNEL_HPACK);
      conn.lean = h2;
      this.conns.add(conn);
      h2.onStream = (stream, headers, endStream) => this.onStream(conn, stream, headers, endStream, settle);
      h2.onClose = (reason) => {
        if (conn.edgeId !== null && !this.stopped && !conn.draining) this.log(`warpgate: tunnel closed: ${reason}`);
        this.onClosed(conn);
      };
    });
    socket.on('error', (err) => {
      settle(false, err.message);
      socket.destroy();
    });
    socket.on('close', () => {
      settle(false, 'connection closed before the hello');
      if (conn.lean === null) this.onClosed(conn);
    });
  }

  private onStream(conn: Conn, stream: H2Stream, headers: string[], endStream: boolean, settle: (ok: boolean, why: string) => void): void {
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
    if (!conn.confirmed) this.confirm(conn);
    this.forwarder.handle(stream, headers, endStream);
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
    if (Array.isArray(hello.endpoints)) this.opts.onEndpoints?.(hello.endpoints.filter((e): e is string => typeof e === 'string'));
    if (first) {
      const fresh = this.serving().filter((c) => c.worker === hello.worker && c.generation === conn.generation);
      const old = this.serving().filter((c) => c.worker === hello.worker && c.generation !== conn.generation);
      // Keep a surplus connection (useful capacity) unless a worker has twice its share.
      if (fresh.length > this.opts.connsPerWorker * 2) {
        setImmediate(() => {
          conn.lean?.close();
        });
      } else {
        this.log(`warpgate: tunnel up to edge worker ${hello.worker}/${hello.workers} for pool ${hello.pool} (${hello.projects.join(', ') || 'no projects yet'}); certificate until ${conn.certUntil}`);
        if (conn.replacement) {
          // A replacement that found nothing to replace on its worker: back off before the next one.
          const useful = old.length > 0 && fresh.length <= this.opts.connsPerWorker;
          this.rotationMisses = useful ? 0 : this.rotationMisses + 1;
        }
        const settle = setTimeout(() => this.confirm(conn), REPLACEMENT_SETTLE_MS);
        settle.unref();
      }
    }
  }

  private onClosed(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    if (conn.edgeId !== null) this.log(`warpgate: tunnel to edge worker ${conn.worker} closed${conn.draining ? ' (drained)' : ''}`);
    if (this.stopped) return;
    if (conn.draining) {
      // We drained it on purpose (certificate rotation): not a failure; carry on.
      this.ensure();
      return;
    }
    if (conn.edgeId !== null) {
      this.counts.drops++;
      this.dropsToReplace++;
    }
    // Dropped connections are redialed after a jittered delay, so a restarting edge is not stampeded.
    // (The first redial waits as a first retry would; the failure count is left to the dials, so
    // the first that fails is logged as attempt 1.)
    if (this.dialing === 0) this.scheduleRetry(Math.max(this.failures, 1));
  }

  /** Graceful: GOAWAY on every connection, in-flight streams finish. */
  stop(): Promise<void> {
    this.stopped = true;
    const waits: Promise<void>[] = [];
    for (const c of this.conns) {
      if (c.lean !== null) {
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
