/**
 * Large bodies through the chain: `concurrency` keep-alive clients each doing
 * uploads (PUT with a fixed body) or downloads (GET …/big?bytes=N) back to
 * back, bounded by time and by a request count, while the VmRSS of the edge
 * workers and the Warpgate is sampled every 100 ms. The budget: "memory per
 * in-flight request is bounded and does not grow with body size" — if a hop
 * buffered whole bodies, its RSS would grow by about concurrency × body size.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { round } from './measure.js';
import type { RssPeak } from './report.js';

export interface TransferOptions {
  direction: 'upload' | 'download';
  url: string;
  headers: Record<string, string>;
  bodyBytes: number;
  concurrency: number;
  seconds: number;
  maxRequests: number;
  /** component name → pids whose RSS is sampled. */
  watch: ReadonlyMap<string, readonly number[]>;
}

export interface TransferOutcome {
  completed: number;
  ok: number;
  failed: number;
  errorKinds: Record<string, number>;
  bytes: number;
  elapsedSeconds: number;
  latencySortedMs: Float64Array;
  rss: RssPeak[];
  rssSamples: number;
}

/** VmRSS of a process in KiB, or null when it is gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

function oneRequest(agent: http.Agent, o: TransferOptions, body: Buffer | null): Promise<{ ok: boolean; bytes: number; why: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...o.headers };
    if (body !== null) {
      headers['content-length'] = String(body.length);
      headers['content-type'] = 'application/octet-stream';
    }
    const req = http.request(o.url, { method: body === null ? 'GET' : 'PUT', headers, agent, timeout: 30_000 }, (res) => {
      let n = 0;
      let text = '';
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (body !== null && text.length < 256) text += c.toString('latin1');
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) return resolve({ ok: false, bytes: 0, why: `status ${status}` });
        if (body === null) {
          if (n !== o.bodyBytes) return resolve({ ok: false, bytes: n, why: `download of ${n} bytes, expected ${o.bodyBytes}` });
          return resolve({ ok: true, bytes: n, why: '' });
        }
        // The origin answers {"bytes":N}: the whole body must have arrived.
        const m = /"bytes":(\d+)/.exec(text);
        if (m === null || Number(m[1]) !== body.length) return resolve({ ok: false, bytes: 0, why: `origin saw ${m?.[1] ?? '?'} bytes, expected ${body.length}` });
        resolve({ ok: true, bytes: body.length, why: '' });
      });
      res.on('error', (err) => resolve({ ok: false, bytes: 0, why: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', (err) => resolve({ ok: false, bytes: 0, why: err.message }));
    req.end(body ?? undefined);
  });
}

export async function transfer(o: TransferOptions): Promise<TransferOutcome> {
  const u = new URL(o.url);
  if (u.hostname !== '127.0.0.1') throw new Error(`bench: refusing to load ${o.url}: only 127.0.0.1 is a target`);
  const body = o.direction === 'upload' ? Buffer.alloc(o.bodyBytes, 0x62) : null;
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });

  // RSS: a baseline just before, then a sample every 100 ms.
  const baseline = new Map<number, number>();
  const peak = new Map<number, number>();
  for (const pids of o.watch.values()) {
    for (const pid of pids) {
      const k = rssKiB(pid);
      if (k !== null) {
        baseline.set(pid, k);
        peak.set(pid, k);
      }
    }
  }
  let samples = 0;
  const sample = () => {
    samples++;
    for (const pid of baseline.keys()) {
      const k = rssKiB(pid);
      if (k !== null && k > peak.get(pid)!) peak.set(pid, k);
    }
  };
  const sampler = setInterval(sample, 100);

  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let completed = 0, ok = 0, failed = 0, bytes = 0, started = 0;
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + o.seconds * 1_000;
  const worker = async () => {
    while (Date.now() < deadline && started < o.maxRequests) {
      started++;
      const s = process.hrtime.bigint();
      const r = await oneRequest(agent, o, body);
      completed++;
      if (r.ok) {
        ok++;
        bytes += r.bytes;
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      } else {
        failed++;
        errorKinds[r.why] = (errorKinds[r.why] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
  sample();
  const elapsedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

  const rss: RssPeak[] = [];
  for (const [component, pids] of o.watch) {
    for (const pid of pids) {
      const b = baseline.get(pid);
      if (b === undefined) continue;
      const p = peak.get(pid)!;
      rss.push({ component, pid, baselineMiB: round(b / 1024, 1)!, peakMiB: round(p / 1024, 1)!, growthMiB: round((p - b) / 1024, 1)! });
    }
  }
  const sorted = Float64Array.from(latencies).sort();
  return { completed, ok, failed, errorKinds, bytes, elapsedSeconds, latencySortedMs: sorted, rss, rssSamples: samples };
}
