/**
 * A closed-loop HTTP/1.1 load on raw sockets that never retries and counts
 * everything: the client of the pipelined and two-tenant scenarios.
 *
 * Why not autocannon: when a keep-alive connection closes under it,
 * autocannon reconnects and silently writes the lost requests again, so a
 * server that closes connections (uWS does, on asynchronous pipelining) shows
 * up as a lower rate, not as failures. Here each connection keeps `depth`
 * requests outstanding (1: plain keep-alive; more: pipelined, written back to
 * back without waiting, as `autocannon -p`), and a request whose connection
 * closes or resets before its answer is counted lost, never sent again. A
 * new connection may be opened in its place (`reconnect`), bounded in rate
 * and number, carrying only new requests.
 *
 * Responses are parsed fully (Content-Length, chunked, or read until close),
 * so pipelined answers that arrive in one read are each counted. With
 * `checkOrder`, request i goes to `…?n=i` and the answer must carry
 * `x-bench-seq: i` (bench/bench-origin.ts …/seq): an answer that belongs to
 * another request, or comes out of order, is counted as misordered.
 *
 * Bounded: `seconds` of sending, then at most DRAIN_MS for outstanding
 * answers; at most `maxRequests` written and `maxConnects` connections.
 */
import net from 'node:net';

export interface RawLoadOptions {
  /** http://127.0.0.1:PORT/path (loopback only). */
  url: string;
  headers: Record<string, string>;
  connections: number;
  /** Requests kept outstanding per connection: 1 = keep-alive, > 1 = pipelined. */
  depth: number;
  seconds: number;
  maxRequests: number;
  /** Source address: any 127.x.y.z on loopback (a second client address for per-client limits). */
  localAddress?: string;
  /** An answer not complete this long after its request was written: the connection is destroyed. */
  timeoutMs: number;
  /** Replace a connection that closed (its outstanding requests stay lost). */
  reconnect: boolean;
  /** Connections opened per second beyond the first `connections` (token bucket), and in total. */
  maxConnectsPerSecond: number;
  maxConnects: number;
  checkOrder: boolean;
  /** Keep every 2xx latency (ms, from the request's write) for exact percentiles. */
  keepSamples: boolean;
}

export interface RawLoadOutcome {
  elapsedSeconds: number;
  /** Requests written. */
  sent: number;
  /** Complete answers, any status. */
  responses: number;
  ok2xx: number;
  non2xx: number;
  statusCounts: Record<string, number>;
  /** Requests written on a connection that closed or reset before their answer. */
  lost: number;
  /** Requests outstanding on a connection destroyed for exceeding timeoutMs. */
  timeouts: number;
  /** Requests still unanswered when the run ended (after the drain). */
  unanswered: number;
  /** Answers whose x-bench-seq was not the oldest outstanding request's (checkOrder). */
  misordered: number;
  connects: number;
  connectErrors: number;
  /** Connections the server ended (FIN) with requests outstanding. */
  closedWithPending: number;
  /** Connections the server ended with nothing outstanding (e.g. after `connection: close`). */
  closedIdle: number;
  /** Connections that ended with ECONNRESET or EPIPE. */
  resets: number;
  /** Bytes that are not a valid answer (no request outstanding, bad head, bad chunk). */
  protocolErrors: number;
  errorKinds: Record<string, number>;
  bytesRead: number;
  capped: boolean;
  /** Sorted 2xx latencies in ms, or empty when not kept. */
  latencyMs: Float64Array;
}

/** How long outstanding answers may still arrive after the sending window. */
const DRAIN_MS = 2_000;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_SAMPLES = 10_000_000;
const CRLF = Buffer.from('\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');

const enum State {
  Head,
  Body,
  ChunkSize,
  ChunkData,
  Trailer,
  UntilClose,
}

class Conn {
  readonly socket: net.Socket;
  connected = false;
  /** Write times (ns since start) of outstanding requests, oldest first, from `head`. */
  private sentAt: number[] = [];
  private seqs: number[] = [];
  private head = 0;
  private state = State.Head;
  private rest: Buffer | null = null;
  private left = 0;
  private status = 0;
  private seqHeader = -1;
  /** The server said `connection: close`: write nothing more. */
  private closing = false;
  private errored: string | null = null;
  ended = false;
  /** Destroyed by the sweep: its outstanding requests count as timeouts, not as lost. */
  timedOut = false;

  constructor(
    readonly load: RawLoad,
    host: string,
    port: number,
  ) {
    this.socket = net.connect({ host, port, noDelay: true, ...(load.o.localAddress !== undefined ? { localAddress: load.o.localAddress } : {}) });
    this.socket.on('connect', () => {
      this.connected = true;
      this.fill();
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errored = err.code ?? err.message;
    });
    this.socket.on('close', () => this.onClose());
  }

  get outstanding(): number {
    return this.sentAt.length - this.head;
  }

  oldestSentAt(): number {
    return this.outstanding > 0 ? this.sentAt[this.head]! : -1;
  }

  /** Writes requests until `depth` are outstanding (one write for all of them). */
  fill(): void {
    const L = this.load;
    if (!this.connected || this.closing || this.ended || !L.sending) return;
    let n = L.o.depth - this.outstanding;
    if (n <= 0) return;
    n = Math.min(n, L.o.maxRequests - L.sent);
    if (n <= 0) {
      L.capped = true;
      return;
    }
    const now = L.nowNs();
    if (this.head > 1024 && this.head * 2 > this.sentAt.length) {
      this.sentAt = this.sentAt.slice(this.head);
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
    if (n === 1 && !L.o.checkOrder) {
      this.sentAt.push(now);
      L.sent++;
      this.socket.write(L.fixed);
      return;
    }
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const seq = L.sent++;
      this.sentAt.push(now);
      if (L.o.checkOrder) {
        this.seqs.push(seq);
        parts.push(L.tagged(seq));
      } else {
        parts.push(L.fixed);
      }
    }
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private protocolError(why: string): void {
    this.load.protocolErrors++;
    this.load.kind(why);
    this.destroy();
  }

  private onData(chunk: Buffer): void {
    const L = this.load;
    L.bytesRead += chunk.length;
    let b = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = null;
    let off = 0;
    while (off < b.length && !this.ended) {
      switch (this.state) {
        case State.Head: {
          const end = b.indexOf(CRLF2, off);
          if (end < 0) {
            if (b.length - off > MAX_HEAD_BYTES) return this.protocolError('response head over 64 KiB');
            this.rest = b.subarray(off);
            return;
          }
          if (this.outstanding === 0) return this.protocolError('bytes with no request outstanding');
          const head = b.toString('latin1', off, end);
          off = end + 4;
          if (!head.startsWith('HTTP/1.')) return this.protocolError('response does not start with HTTP/1.x');
          this.status = Number(head.slice(9, 12));
          if (this.status >= 100 && this.status < 200) continue; // interim answer: the final one follows
          this.seqHeader = -1;
          if (L.o.checkOrder) {
            const m = /\r\nx-bench-seq: *(\d+)/i.exec(head);
            if (m !== null) this.seqHeader = Number(m[1]);
          }
          if (/\r\nconnection:[^\r]*close/i.test(head)) this.closing = true;
          if (this.status === 204 || this.status === 304) {
            this.complete();
          } else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
            this.state = State.ChunkSize;
          } else {
            const m = /\r\ncontent-length: *(\d+)/i.exec(head);
            if (m === null) {
              this.state = State.UntilClose;
            } else {
              this.left = Number(m[1]);
              if (this.left === 0) this.complete();
              else this.state = State.Body;
            }
          }
          break;
        }
        case State.Body: {
          const take = Math.min(this.left, b.length - off);
          off += take;
          this.left -= take;
          if (this.left === 0) {
            this.state = State.Head;
            this.complete();
          }
          break;
        }
        case State.ChunkSize: {
          const eol = b.indexOf(CRLF, off);
          if (eol < 0) {
            if (b.length - off > 1024) return this.protocolError('chunk size line over 1 KiB');
            this.rest = b.subarray(off);
            return;
          }
          const size = parseInt(b.toString('latin1', off, eol).split(';', 1)[0]!.trim(), 16);
          if (!Number.isSafeInteger(size) || size < 0) return this.protocolError('bad chunk size');
          off = eol + 2;
          if (size === 0) this.state = State.Trailer;
          else {
            this.left = size + 2; // the data and its CRLF
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const take = Math.min(this.left, b.length - off);
          off += take;
          this.left -= take;
          if (this.left === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailer: {
          const eol = b.indexOf(CRLF, off);
          if (eol < 0) {
            if (b.length - off > MAX_HEAD_BYTES) return this.protocolError('trailer over 64 KiB');
            this.rest = b.subarray(off);
            return;
          }
          const empty = eol === off;
          off = eol + 2;
          if (empty) {
            this.state = State.Head;
            this.complete();
          }
          break;
        }
        case State.UntilClose:
          off = b.length; // the answer ends when the connection does
          break;
      }
    }
    if (off < b.length && !this.ended) this.rest = b.subarray(off);
  }

  /** One complete answer for the oldest outstanding request. */
  private complete(): void {
    const L = this.load;
    const sentAt = this.sentAt[this.head]!;
    const seq = L.o.checkOrder ? this.seqs[this.head]! : -1;
    this.head++;
    L.responses++;
    const st = this.status;
    L.statusCounts[st] = (L.statusCounts[st] ?? 0) + 1;
    if (L.o.checkOrder && this.seqHeader !== seq && st >= 200 && st <= 299) L.misordered++;
    if (st >= 200 && st <= 299) {
      L.ok2xx++;
      L.sample((L.nowNs() - sentAt) / 1e6);
    } else {
      L.non2xx++;
    }
    if (this.closing) {
      // The server ends the connection after this answer: what is still outstanding is lost on close.
      return;
    }
    this.fill();
    L.checkDone();
  }

  destroy(): void {
    if (this.ended) return;
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.ended) return;
    this.ended = true;
    const L = this.load;
    if (this.state === State.UntilClose && this.outstanding > 0) {
      this.state = State.Head;
      this.complete();
    }
    const pending = this.outstanding;
    if (!this.connected) {
      L.connectErrors++;
      L.kind(`connect: ${this.errored ?? 'closed'}`);
    } else if (this.errored !== null && (this.errored === 'ECONNRESET' || this.errored === 'EPIPE')) {
      L.resets++;
      L.kind(`${this.errored} with ${pending > 0 ? 'requests outstanding' : 'nothing outstanding'}`);
    } else if (this.errored !== null) {
      L.kind(this.errored);
    } else if (pending > 0) {
      L.closedWithPending++;
    } else {
      L.closedIdle++;
    }
    if (this.timedOut) L.timeouts += pending;
    else L.lost += pending;
    this.head = this.sentAt.length;
    L.closed(this);
  }
}

class RawLoad {
  readonly fixed: Buffer;
  private readonly headBefore: string;
  private readonly headAfter: string;
  readonly host: string;
  readonly port: number;
  conns = new Set<Conn>();
  start = 0n;
  sending = true;
  finished = false;
  sent = 0;
  responses = 0;
  ok2xx = 0;
  non2xx = 0;
  statusCounts: Record<string, number> = {};
  lost = 0;
  timeouts = 0;
  misordered = 0;
  connects = 0;
  connectErrors = 0;
  closedWithPending = 0;
  closedIdle = 0;
  resets = 0;
  protocolErrors = 0;
  errorKinds: Record<string, number> = {};
  bytesRead = 0;
  capped = false;
  samples: Float64Array;
  n = 0;
  private tokens = 0;
  private lastRefill = 0;
  private waitingConnects = 0;
  private connectTimer: NodeJS.Timeout | null = null;
  onIdle: (() => void) | null = null;

  constructor(readonly o: RawLoadOptions) {
    const u = new URL(o.url);
    if (u.hostname !== '127.0.0.1') throw new Error(`bench: refusing to load ${o.url}: only 127.0.0.1 is a target`);
    this.host = u.hostname;
    this.port = Number(u.port);
    let fields = '';
    for (const [k, v] of Object.entries(o.headers)) fields += `${k}: ${v}\r\n`;
    if (!Object.keys(o.headers).some((k) => k.toLowerCase() === 'host')) fields += `host: ${u.host}\r\n`;
    const path = u.pathname + u.search;
    this.fixed = Buffer.from(`GET ${path} HTTP/1.1\r\n${fields}\r\n`, 'latin1');
    this.headBefore = `GET ${path}${u.search === '' ? '?' : '&'}n=`;
    this.headAfter = ` HTTP/1.1\r\n${fields}\r\n`;
    this.samples = new Float64Array(o.keepSamples ? 1 << 16 : 0);
  }

  tagged(seq: number): Buffer {
    return Buffer.from(this.headBefore + seq + this.headAfter, 'latin1');
  }

  nowNs(): number {
    return Number(process.hrtime.bigint() - this.start);
  }

  kind(k: string): void {
    this.errorKinds[k] = (this.errorKinds[k] ?? 0) + 1;
  }

  sample(ms: number): void {
    if (!this.o.keepSamples) return;
    if (this.n === this.samples.length) {
      if (this.n >= MAX_SAMPLES) return;
      const bigger = new Float64Array(Math.min(this.n * 2, MAX_SAMPLES));
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.n++] = ms;
  }

  open(): void {
    if (this.connects >= this.o.maxConnects) return;
    this.connects++;
    this.conns.add(new Conn(this, this.host, this.port));
  }

  /** A connection ended: open another if allowed (rate-limited), else see whether the run is over. */
  closed(c: Conn): void {
    this.conns.delete(c);
    if (this.sending && this.o.reconnect && this.connects < this.o.maxConnects) {
      this.waitingConnects++;
      this.drainConnects();
    }
    this.checkDone();
  }

  private drainConnects(): void {
    const now = Date.now();
    this.tokens = Math.min(this.o.maxConnectsPerSecond, this.tokens + ((now - this.lastRefill) * this.o.maxConnectsPerSecond) / 1000);
    this.lastRefill = now;
    while (this.waitingConnects > 0 && this.tokens >= 1 && this.sending && this.connects < this.o.maxConnects) {
      this.tokens--;
      this.waitingConnects--;
      this.open();
    }
    if (!this.sending || this.connects >= this.o.maxConnects) this.waitingConnects = 0;
    if (this.waitingConnects > 0 && this.connectTimer === null) {
      this.connectTimer = setTimeout(() => {
        this.connectTimer = null;
        this.drainConnects();
      }, Math.max(1, Math.ceil(1000 / this.o.maxConnectsPerSecond)));
    }
  }

  /** After the sending window: done once nothing is outstanding and no connection is pending. */
  checkDone(): void {
    if (this.sending || this.finished) return;
    for (const c of this.conns) if (c.outstanding > 0 || !c.connected) return;
    this.onIdle?.();
  }

  /** Destroys connections whose oldest request waited longer than timeoutMs. */
  sweep(): void {
    const limit = this.nowNs() - this.o.timeoutMs * 1e6;
    for (const c of this.conns) {
      const t = c.oldestSentAt();
      if (t >= 0 && t < limit) {
        c.timedOut = true;
        this.kind(`no answer within ${this.o.timeoutMs} ms`);
        c.destroy();
      }
    }
  }

  finish(): number {
    this.finished = true;
    this.sending = false;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    let unanswered = 0;
    for (const c of this.conns) {
      unanswered += c.outstanding;
      c.ended = true;
      c.socket.removeAllListeners('close');
      c.socket.removeAllListeners('data');
      c.socket.removeAllListeners('error');
      c.socket.on('error', () => {});
      c.socket.destroy();
    }
    this.conns.clear();
    return unanswered;
  }
}

/** Ends of the raw loads in flight, so a SIGINT can end them at once (they are bounded anyway). */
const running = new Set<() => void>();

/** Ends every raw load in flight (run.ts calls it on SIGINT/SIGTERM). */
export function stopRawLoads(): void {
  for (const end of [...running]) end();
}

/** Runs one raw load; resolves when the window and the drain are over. */
export async function rawLoad(o: RawLoadOptions): Promise<RawLoadOutcome> {
  if (!(o.seconds > 0) || o.connections < 1 || o.depth < 1 || o.maxRequests < 1 || o.maxConnects < o.connections || !(o.maxConnectsPerSecond > 0)) {
    throw new Error('bench: raw load needs seconds, connections, depth, maxRequests > 0, maxConnectsPerSecond > 0 and maxConnects ≥ connections');
  }
  const L = new RawLoad(o);
  L.start = process.hrtime.bigint();
  for (let i = 0; i < o.connections; i++) L.open();
  const sweep = setInterval(() => L.sweep(), 100);
  let stop: NodeJS.Timeout | null = null;
  let drain: NodeJS.Timeout | null = null;
  let idleEarly: NodeJS.Timeout | null = null;
  let end: (() => void) | null = null;
  try {
    await new Promise<void>((resolve) => {
      end = resolve;
      running.add(resolve);
      stop = setTimeout(() => {
        L.sending = false;
        drain = setTimeout(resolve, DRAIN_MS);
        L.onIdle = resolve;
        L.checkDone();
      }, o.seconds * 1_000);
      // Nothing left to do before the window ends: every connection is gone and none may be opened.
      idleEarly = setInterval(() => {
        if (L.conns.size === 0 && (!o.reconnect || L.connects >= o.maxConnects)) resolve();
      }, 50);
    });
  } finally {
    if (end !== null) running.delete(end);
    for (const t of [sweep, stop, drain, idleEarly]) if (t !== null) clearTimeout(t);
  }
  const unanswered = L.finish();
  const elapsedSeconds = Number(process.hrtime.bigint() - L.start) / 1e9;
  return {
    elapsedSeconds,
    sent: L.sent,
    responses: L.responses,
    ok2xx: L.ok2xx,
    non2xx: L.non2xx,
    statusCounts: L.statusCounts,
    lost: L.lost,
    timeouts: L.timeouts,
    unanswered,
    misordered: L.misordered,
    connects: L.connects,
    connectErrors: L.connectErrors,
    closedWithPending: L.closedWithPending,
    closedIdle: L.closedIdle,
    resets: L.resets,
    protocolErrors: L.protocolErrors,
    errorKinds: L.errorKinds,
    bytesRead: L.bytesRead,
    capped: L.capped,
    latencyMs: L.samples.slice(0, L.n).sort(),
  };
}
