/**
 * An open-loop, evenly paced GET load for "p99 added at half of peak load"
 * (docs/ARCHITECTURE.md, "Budgets").
 *
 * Why not autocannon's `overallRate`: autocannon 8 gives each connection a
 * budget of rate/connections requests per second, sends them closed-loop as
 * fast as it can, then idles until its 1 s interval resets the budget
 * (lib/httpClient.js, `reqsMadeThisSecond`). All connections reset together,
 * so "half of peak" arrives as full-speed bursts for about half of every
 * second: the latency it reports is close to the latency at peak load. The
 * bench still runs it (the budget names it) and reports how bursty it was, but
 * the budget is judged on this pacer.
 *
 * This pacer schedules request i at start + i/rate. A 1 ms timer releases
 * every request that has come due, each on an idle keep-alive connection (or
 * queued until one is free, so a stall is charged to the target, not hidden:
 * coordinated omission). Latency is kept both from the scheduled time
 * (wrk2's definition, includes any queueing and pacer lateness) and from the
 * moment the request was written. Responses must carry Content-Length (all
 * targets here do); anything else is counted as an error.
 */
import net from 'node:net';

export interface PacedOptions {
  url: string;
  headers: Record<string, string>;
  /** Requests per second. */
  rate: number;
  seconds: number;
  connections: number;
  /** A request without a response after this long counts as a timeout; the run ends at seconds + this. */
  timeoutMs: number;
}

export interface PacedOutcome {
  scheduled: number;
  sent: number;
  completed: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  errorKinds: Record<string, number>;
  elapsedSeconds: number;
  /** Sorted latencies in ms of 2xx responses. */
  fromScheduleMs: Float64Array;
  fromSendMs: Float64Array;
  /** Most requests ever waiting for a free connection. */
  maxQueued: number;
  /** How late the pacer released requests: p99 of (release − scheduled), ms. */
  releaseLagP99Ms: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

class Conn {
  socket: net.Socket;
  busy = false;
  ready = false;
  scheduledAt = 0;
  sentAt = 0;
  buf: Buffer | null = null;
  /** Bytes of the current response still expected after its head, or -1 while reading the head. */
  bodyLeft = -1;
  status = 0;

  constructor(
    readonly load: PacedLoad,
    host: string,
    port: number,
  ) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('connect', () => {
      this.ready = true;
      load.dispatch();
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: Error) => load.fail(this, err.message));
    this.socket.on('close', () => load.fail(this, 'connection closed'));
  }

  send(req: Buffer, scheduledAt: number, now: number): void {
    this.busy = true;
    this.scheduledAt = scheduledAt;
    this.sentAt = now;
    this.bodyLeft = -1;
    this.buf = null;
    this.socket.write(req);
  }

  private onData(chunk: Buffer): void {
    if (!this.busy) {
      this.load.fail(this, 'bytes arrived with no request outstanding');
      return;
    }
    if (this.bodyLeft < 0) {
      const b = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
      const end = b.indexOf(CRLF2);
      if (end < 0) {
        if (b.length > 64 * 1024) this.load.fail(this, 'response head over 64 KiB');
        else this.buf = b;
        return;
      }
      const head = b.toString('latin1', 0, end);
      this.status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (m === null) {
        this.load.fail(this, `response without Content-Length (status ${this.status})`);
        return;
      }
      this.bodyLeft = Number(m[1]) - (b.length - end - 4);
      this.buf = null;
    } else {
      this.bodyLeft -= chunk.length;
    }
    if (this.bodyLeft === 0) {
      this.busy = false;
      this.load.done(this);
    } else if (this.bodyLeft < 0) {
      this.load.fail(this, 'more bytes than Content-Length (pipelined or broken response)');
    }
  }
}

class PacedLoad {
  readonly req: Buffer;
  readonly conns: Conn[] = [];
  readonly total: number;
  readonly intervalNs: number;
  start = 0n;
  released = 0;
  /** Scheduled times (ns since start) of released requests waiting for a connection. */
  queue: number[] = [];
  qHead = 0;
  maxQueued = 0;
  sent = 0;
  completed = 0;
  ok2xx = 0;
  non2xx = 0;
  errors = 0;
  errorKinds: Record<string, number> = {};
  fromSchedule: Float64Array;
  fromSend: Float64Array;
  lag: Float64Array;
  n = 0;
  finished = false;
  onFinish: (() => void) | null = null;

  constructor(
    readonly opts: PacedOptions,
    readonly host: string,
    readonly port: number,
    path: string,
  ) {
    let head = `GET ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(opts.headers)) head += `${k}: ${v}\r\n`;
    if (!Object.keys(opts.headers).some((k) => k.toLowerCase() === 'host')) head += `host: ${host}:${port}\r\n`;
    this.req = Buffer.from(head + '\r\n', 'latin1');
    this.total = Math.floor(opts.rate * opts.seconds);
    this.intervalNs = 1e9 / opts.rate;
    this.fromSchedule = new Float64Array(this.total);
    this.fromSend = new Float64Array(this.total);
    this.lag = new Float64Array(this.total);
  }

  nowNs(): number {
    return Number(process.hrtime.bigint() - this.start);
  }

  /** Releases every request due by now and hands queued ones to idle connections. */
  tick(): void {
    const now = this.nowNs();
    const due = Math.min(this.total, Math.floor(now / this.intervalNs) + 1);
    while (this.released < due) {
      const at = this.released * this.intervalNs;
      this.lag[this.released] = (now - at) / 1e6;
      this.queue.push(at);
      this.released++;
    }
    const q = this.queue.length - this.qHead;
    if (q > this.maxQueued) this.maxQueued = q;
    this.dispatch();
  }

  dispatch(): void {
    if (this.finished) return;
    let now = -1;
    for (const c of this.conns) {
      if (this.qHead >= this.queue.length) break;
      if (c.busy || !c.ready) continue;
      if (now < 0) now = this.nowNs();
      c.send(this.req, this.queue[this.qHead++]!, now);
      this.sent++;
    }
    if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
  }

  done(c: Conn): void {
    const now = this.nowNs();
    this.completed++;
    if (c.status >= 200 && c.status <= 299) {
      this.ok2xx++;
      this.fromSchedule[this.n] = (now - c.scheduledAt) / 1e6;
      this.fromSend[this.n] = (now - c.sentAt) / 1e6;
      this.n++;
    } else {
      this.non2xx++;
    }
    this.checkFinished();
    this.dispatch();
  }

  fail(c: Conn, why: string): void {
    if (this.finished) return;
    const wasBusy = c.busy;
    c.busy = false;
    c.ready = false;
    c.socket.removeAllListeners('close');
    c.socket.destroy();
    if (wasBusy || why !== 'connection closed') {
      this.errors++;
      this.errorKinds[why] = (this.errorKinds[why] ?? 0) + 1;
    }
    if (wasBusy) this.completed++;
    // Replace the connection so the offered load keeps its shape.
    const i = this.conns.indexOf(c);
    if (i >= 0) this.conns[i] = new Conn(this, this.host, this.port);
    this.checkFinished();
  }

  checkFinished(): void {
    if (this.released === this.total && this.completed >= this.total) this.finish();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const c of this.conns) {
      c.socket.removeAllListeners('close');
      c.socket.removeAllListeners('error');
      c.socket.on('error', () => {});
      c.socket.destroy();
    }
    this.onFinish?.();
  }
}

function nearestRank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Runs one paced load; resolves when every request is answered or timed out. */
export async function paced(opts: PacedOptions): Promise<PacedOutcome> {
  const u = new URL(opts.url);
  if (u.hostname !== '127.0.0.1') throw new Error(`bench: refusing to load ${opts.url}: only 127.0.0.1 is a target`);
  if (!(opts.rate > 0) || !(opts.seconds > 0) || opts.connections < 1) throw new Error('bench: paced load needs rate, seconds and connections > 0');
  const load = new PacedLoad(opts, u.hostname, Number(u.port), u.pathname + u.search);
  for (let i = 0; i < opts.connections; i++) load.conns.push(new Conn(load, load.host, load.port));
  // Connect first, then start the clock: connection setup is not part of the measurement.
  const connectDeadline = Date.now() + 5_000;
  while (load.conns.some((c) => !c.ready) && Date.now() < connectDeadline) await new Promise((r) => setTimeout(r, 10));
  if (load.conns.some((c) => !c.ready)) {
    load.finish();
    throw new Error(`bench: paced load could not open ${opts.connections} connections to ${opts.url} within 5 s`);
  }
  load.start = process.hrtime.bigint();
  const t0 = Date.now();
  await new Promise<void>((resolve) => {
    load.onFinish = resolve;
    const timer = setInterval(() => {
      load.tick();
      if (Date.now() - t0 > opts.seconds * 1_000 + opts.timeoutMs) load.finish();
    }, 1);
    const prev = load.onFinish;
    load.onFinish = () => {
      clearInterval(timer);
      prev();
    };
    load.tick();
  });
  const elapsedSeconds = Number(process.hrtime.bigint() - load.start) / 1e9;
  const timeouts = load.total - load.completed;
  const lag = load.lag.slice(0, load.released).sort();
  return {
    scheduled: load.total,
    sent: load.sent,
    completed: load.completed,
    ok2xx: load.ok2xx,
    non2xx: load.non2xx,
    errors: load.errors,
    timeouts,
    errorKinds: load.errorKinds,
    elapsedSeconds,
    fromScheduleMs: load.fromSchedule.slice(0, load.n).sort(),
    fromSendMs: load.fromSend.slice(0, load.n).sort(),
    maxQueued: load.maxQueued,
    releaseLagP99Ms: nearestRank(lag, 99),
  };
}
