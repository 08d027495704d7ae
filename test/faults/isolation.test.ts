/**
 * One client never hurts another, on real processes (edge, Warpgate, demo
 * origin on loopback): clients that abort by the thousand do not close the
 * tunnel everyone shares, and a path that never answers does not stall the
 * application's other paths.
 *
 * Errors are counted with clients that never retry: node:http with its own
 * agent and raw sockets. (autocannon re-sends a request when a keep-alive
 * connection closes under it, which would hide exactly the failures looked for.)
 * Serial: each test measures latency beside its own load, not beside the other's.
 */
import test from 'ava';
import * as http from 'node:http';
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { Stack, stopProc } from '../integration/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Loopback TCP sockets whose remote port is `port` — the client ends of connections to it — by state (/proc/net/tcp: 01 ESTABLISHED, 06 TIME_WAIT). */
function socketsTo(port: number): { established: number; timeWait: number } {
  let established = 0;
  let timeWait = 0;
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !f[2]!.endsWith(`:${hex}`)) continue;
    if (f[3] === '01') established++;
    else if (f[3] === '06') timeWait++;
  }
  return { established, timeWait };
}

/** CPU time (user + system) of a process, in clock ticks (/proc/PID/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
const TICKS_PER_S = 100; // _SC_CLK_TCK on Linux

/** Tunnel closes as the Warpgate and the edge log them. */
function tunnelCloses(stack: Stack, wgMark: number, edgeMark: number): string[] {
  const wg = stack.warpgate!.err.slice(wgMark).split('\n').filter((l) => /tunnel closed|tunnel to edge worker \d+ closed/.test(l));
  const edge = stack.edge!.err.slice(edgeMark).split('\n').filter((l) => /connection to a warpgate of pool demo closed/.test(l));
  return [...wg, ...edge];
}

interface Steady {
  latencies: number[];
  errors: string[];
}

/**
 * `loops` clients on keep-alive connections, each sending `path` again as soon as the previous
 * answer is read, until `stop()`; every status but 200 and every socket error is an error.
 */
function steadyClients(port: number, path: string, loops: number, timeoutMs: number): { result: Steady; stop: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: loops });
  const result: Steady = { latencies: [], errors: [] };
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const started = process.hrtime.bigint();
      const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { host: 'localhost' }, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => {
          result.latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
          if (res.statusCode !== 200) result.errors.push(`status ${res.statusCode}`);
          resolve();
        });
        res.on('error', (err) => {
          result.errors.push(err.message);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => {
        result.errors.push(err.message);
        resolve();
      });
      req.end();
    });
  const done = Array.from({ length: loops }, async () => {
    while (running) await one();
  });
  return {
    result,
    stop: async () => {
      running = false;
      await Promise.all(done);
      agent.destroy();
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

test.serial('clients aborting mid-request by the thousand: the shared tunnel stays up, a well-behaved client on it sees no error', async (t) => {
  // Story: the edge resets the tunnel stream of every client that goes away. The Warpgate's
  // rapid-reset guard counted those resets per second (2000) and closed the whole tunnel with
  // ENHANCE_YOUR_CALM, so every other user's requests on it failed or were replayed; under
  // aborting load it closed both tunnels 15 times in a few seconds. A reset is an ordinary event
  // (RFC 9113 §8.7); the guard now bounds the work reset streams keep (ServerStreamSink.onReset).
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  await stack.start();
  // The worst case: one tunnel, so every abort lands on the connection the steady client uses.
  await stopProc(stack.warpgate);
  stack.markEdgeLog();
  await stack.startWarpgate(['--conns-per-worker', '1']);
  for (let i = 0; i < 20; i++) t.is((await stack.request('/health')).status, 200);
  await stack.clearOrigin();
  const wgPid = stack.warpgate!.child.pid!;
  const wgMark = stack.warpgate!.err.length;
  const edgeMark = stack.edge!.err.length;

  const steady = steadyClients(stack.port, '/health', 2, 5_000);
  // Aborters: each connects, sends a request the origin answers after 20 ms, and goes away 4 ms
  // later — after the edge forwarded it, before the answer.
  // Until 3000 requests were aborted (4 s on a quiet machine), or 12 s on a busy one: the count,
  // not the time, is what makes the storm real.
  const STORM_ABORTS = 3_000;
  const STORM_MAX_MS = 12_000;
  const stormStart = Date.now();
  const stormEnd = stormStart + STORM_MAX_MS;
  let aborts = 0;
  const tw0 = socketsTo(stack.originPort).timeWait;
  const cpu0 = cpuTicks(wgPid);
  const aborter = async () => {
    while (Date.now() < stormEnd && aborts < STORM_ABORTS) {
      await new Promise<void>((resolve) => {
        const s = net.connect(stack.port, '127.0.0.1', () => {
          s.write('GET /health?delay=20&storm=1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
          setTimeout(() => {
            s.destroy();
            aborts++;
            resolve();
          }, 4);
        });
        s.on('error', () => resolve());
      });
    }
  };
  await Promise.all(Array.from({ length: 48 }, aborter));
  const STORM_MS = Date.now() - stormStart;
  const cpu1 = cpuTicks(wgPid);
  const tw1 = socketsTo(stack.originPort).timeWait;
  await sleep(500); // requests that were in flight when the storm ended
  await steady.stop();

  const seen = (await stack.originSeen()).filter((s) => s.query.includes('storm=1'));
  const forwarded = seen.length;
  const cut = seen.filter((s) => s.aborted).length;
  const lat = steady.result.latencies.sort((a, b) => a - b);
  const closes = tunnelCloses(stack, wgMark, edgeMark);
  t.log(`aborts: ${aborts} in ${STORM_MS / 1000} s (${Math.round(aborts / (STORM_MS / 1000))}/s); ${forwarded} reached the origin (its record keeps 10,000), ${cut} of those cut off at the origin`);
  t.log(`Warpgate: ${(((cpu1 - cpu0) / TICKS_PER_S) * 1e6 / Math.max(1, aborts)).toFixed(0)} CPU-µs per aborted request (steady traffic included); origin sockets in TIME_WAIT +${tw1 - tw0}`);
  t.log(`steady client: ${lat.length} requests, p50 ${percentile(lat, 0.5).toFixed(1)} ms, p99 ${percentile(lat, 0.99).toFixed(1)} ms, errors ${steady.result.errors.length}${steady.result.errors.length > 0 ? ` (${[...new Set(steady.result.errors)].slice(0, 3).join('; ')})` : ''}`);
  t.log(`tunnel closes: ${closes.length}${closes.length > 0 ? ` (${closes.slice(0, 2).join(' | ')})` : ''}`);
  // The storm must be real: thousands of requests cancelled mid-flight on the one tunnel.
  t.true(forwarded >= 2_000, `only ${forwarded} aborted requests reached the origin in ${STORM_MS} ms`);
  t.deepEqual(closes, [], 'no tunnel closed');
  t.deepEqual(steady.result.errors, [], 'the well-behaved client saw no error');
  t.true(lat.length > 100, `only ${lat.length} steady requests`);
  // Cancelled requests whose answer came within the Warpgate's grace kept their origin connection.
  t.true(cut < forwarded / 10, `${cut} of ${forwarded} origin requests were cut off (connection closed)`);
  t.is((await stack.request('/health')).status, 200);
});

test.serial('200 requests to a path that never answers: another path keeps flowing (p99 under 50 ms); origin connections grow, then shrink back', async (t) => {
  // Story: the Warpgate's origin pool was a fixed 64 connections. 200 requests to a path that
  // never answered held all of them, and every request to any other path waited for the origin
  // timeout (30 s) and got 504. The pool now opens connections while requests wait, up to
  // --origin-connections (1024), and closes idle ones after 4 s.
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  for (let i = 0; i < 20; i++) t.is((await stack.request('/health')).status, 200);
  const before = socketsTo(stack.originPort).established;

  const hung = Array.from({ length: 200 }, () => {
    const req = http.request({ host: '127.0.0.1', port: stack.port, path: '/health?delay=120000', agent: false, headers: { host: 'localhost' } });
    req.on('error', () => undefined);
    req.end();
    return req;
  });
  // Until all 200 hang at the origin, or (with a smaller pool) until no more arrive.
  let atOrigin = 0;
  let stableSince = Date.now();
  while (atOrigin < 200 && Date.now() - stableSince < 1_000) {
    await sleep(20);
    const n = (await stack.originSeen()).filter((s) => s.query === 'delay=120000').length;
    if (n !== atOrigin) stableSince = Date.now();
    atOrigin = n;
  }
  const grown = socketsTo(stack.originPort).established;

  const steady = steadyClients(stack.port, '/health', 1, 2_000);
  await sleep(1_500);
  await steady.stop();
  const lat = steady.result.latencies.sort((a, b) => a - b);
  const p99 = lat.length > 0 ? percentile(lat, 0.99) : Infinity;

  // Their clients give up: the edge cancels the streams, the Warpgate waits its 1 s grace for an
  // answer, then closes those connections; the one the steady traffic used idles out (4 s).
  for (const req of hung) req.destroy();
  const gaveUpAt = Date.now();
  let left = socketsTo(stack.originPort).established;
  let cancelledGoneMs = -1;
  while (left > 0 && Date.now() - gaveUpAt < 10_000) {
    await sleep(100);
    left = socketsTo(stack.originPort).established;
    if (cancelledGoneMs < 0 && left <= 1) cancelledGoneMs = Date.now() - gaveUpAt;
  }
  const idleOutMs = Date.now() - gaveUpAt;
  t.log(`Warpgate → origin connections: ${before} before; ${grown} with ${atOrigin} requests hung at the origin; ≤ 1 ${(cancelledGoneMs / 1000).toFixed(1)} s after their clients left; ${left} after ${(idleOutMs / 1000).toFixed(1)} s`);
  t.log(`other path beside them: ${lat.length} requests, p50 ${lat.length > 0 ? percentile(lat, 0.5).toFixed(1) : '-'} ms, p99 ${p99.toFixed(1)} ms, errors ${steady.result.errors.length}${steady.result.errors.length > 0 ? ` (${[...new Set(steady.result.errors)].slice(0, 3).join('; ')})` : ''}`);
  t.deepEqual(steady.result.errors, []);
  t.true(lat.length >= 50, `only ${lat.length} requests`);
  t.true(p99 < 50, `p99 ${p99.toFixed(1)} ms`);
  t.is(atOrigin, 200, 'all 200 reached the origin and hung there');
  t.true(grown >= 200, `${grown} connections: the pool grew past the 200 hung requests`);
  t.true(cancelledGoneMs >= 0 && cancelledGoneMs < 3_000, `the cancelled requests' connections closed after ${cancelledGoneMs} ms`);
  t.is(left, 0, 'idle connections closed');
});
