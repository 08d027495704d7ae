/**
 * Raw-socket client for the security suite. Ordinary HTTP clients normalize
 * what they send (`..`, `//`, header case, framing) and would hide exactly the
 * inputs under test, so these tests write bytes.
 */
import * as net from 'node:net';

export interface RawResult {
  /** Status code of every response head received, in order. */
  statuses: number[];
  /** Everything the edge sent, as latin1 text. */
  text: string;
  /** The edge closed the connection (FIN or reset) before we gave up. */
  closed: boolean;
  /** How: 'fin' (the edge ended its side), 'close' (reset or full close), or '' (still open). */
  how: string;
  /** Milliseconds from connecting to the close, or -1. */
  closedAfterMs: number;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long; default 3 s. */
  waitMs?: number;
  /** Pause between the parts written; default 30 ms. */
  gapMs?: number;
  /** Resolve as soon as this many responses have arrived and `settleMs` passed without a close. */
  responses?: number;
  /** See `responses`; default 150 ms. */
  settleMs?: number;
}

/** A status line anywhere (a pipelined response follows the previous body directly). */
const STATUS_LINE = /HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n/g;

export function statusesOf(text: string): number[] {
  return [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
}

/** Sends `parts` (one write each) on a fresh connection and reports what came back. */
export function raw(port: number, parts: string | Buffer | Array<string | Buffer>, opts: RawOptions = {}): Promise<RawResult> {
  const list = Array.isArray(parts) ? parts : [parts];
  const waitMs = opts.waitMs ?? 3_000;
  const gapMs = opts.gapMs ?? 30;
  const settleMs = opts.settleMs ?? 150;
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.setNoDelay(true);
    let text = '';
    let done = false;
    let settle: NodeJS.Timeout | null = null;
    const finish = (closed: boolean, how = '') => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      if (settle !== null) clearTimeout(settle);
      s.destroy();
      resolve({ statuses: statusesOf(text), text, closed, how, closedAfterMs: closed ? Date.now() - started : -1 });
    };
    const giveUp = setTimeout(() => finish(false), waitMs);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (opts.responses !== undefined && statusesOf(text).length >= opts.responses) {
        if (settle !== null) clearTimeout(settle);
        settle = setTimeout(() => finish(false), settleMs);
      }
    });
    // The edge ending its side (FIN) is the close that matters: it will send nothing more.
    s.on('end', () => finish(true, 'fin'));
    s.on('close', () => finish(true, 'close'));
    s.on('error', () => undefined);
    let i = 0;
    const next = () => {
      if (done || i >= list.length) return;
      s.write(list[i++]!);
      if (i < list.length) setTimeout(next, gapMs);
    };
    s.on('connect', next);
  });
}

/** Body of the last response in `text` (after its blank line); chunked bodies are returned raw. */
export function lastBody(text: string): string {
  const at = text.lastIndexOf('\r\n\r\n');
  return at === -1 ? '' : text.slice(at + 4);
}

/** The JSON error code in the first error response of `text`, or ''. */
export function errorCode(text: string): string {
  const m = /"code":"(MEZU_[A-Z_]+)"/.exec(text);
  return m === null ? '' : m[1]!;
}
