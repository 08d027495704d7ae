/**
 * A slow-reading client downloading a large body: the edge holds a bounded
 * amount of it whatever the body's size, and the other streams on the same
 * tunnel connection are not held up.
 *
 * Story: a proxy that reads the upstream as fast as it can and queues for a
 * slow client grows by the body size per such client (docs/ARCHITECTURE.md, "Budgets": "memory per
 * in-flight request is bounded and does not grow with body size"). Here the
 * edge pauses the HTTP/2 stream while the client socket is backed up, the
 * stream window (1 MiB) stops the Warpgate, and the Warpgate stops reading the
 * origin; other streams on the connection keep their own windows.
 */
import test from 'ava';
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { Stack, stopProc } from '../integration/harness.js';

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) / 1024;
}

test('a client that stops reading a 512 MiB download: bounded edge and Warpgate memory, other streams on the tunnel unaffected', async (t) => {
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  await stack.start();
  // One tunnel connection per worker: the slow stream and the others share it.
  await stopProc(stack.warpgate);
  stack.markEdgeLog();
  await stack.startWarpgate(['--conns-per-worker', '1']);
  for (let i = 0; i < 20; i++) await stack.request('/health'); // warm up
  const edgePid = stack.workerPids[0]!;
  const wgPid = stack.warpgate!.child.pid!;
  const base = { edge: rssMiB(edgePid), wg: rssMiB(wgPid) };

  const total = 512 * 1024 * 1024;
  const slow = net.connect(stack.port, '127.0.0.1');
  let received = 0;
  slow.on('data', (d: Buffer) => {
    received += d.length;
    slow.pause();
  });
  slow.on('error', () => undefined);
  slow.write(`GET /health?bytes=${total} HTTP/1.1\r\nHost: localhost\r\n\r\n`);

  const peak = { edge: base.edge, wg: base.wg };
  const sampler = setInterval(() => {
    peak.edge = Math.max(peak.edge, rssMiB(edgePid));
    peak.wg = Math.max(peak.wg, rssMiB(wgPid));
  }, 50);
  try {
    await new Promise((r) => setTimeout(r, 1_500));
    // Other requests on the same tunnel connection while the slow stream is stalled.
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const started = Date.now();
      const r = await stack.request('/health');
      latencies.push(Date.now() - started);
      t.is(r.status, 200);
    }
    latencies.sort((a, b) => a - b);
    t.log(`other streams: p50 ${latencies[20]} ms, max ${latencies[39]} ms; slow client read ${(received / 1048576).toFixed(1)} MiB of 512`);
    // A stream blocked behind the stalled one would never finish (the stall
    // lasts the whole test); 500 ms leaves room for a loaded CI machine.
    t.true(latencies[20]! < 500, `p50 ${latencies[20]} ms`);
    // Read a little more, slowly: still bounded.
    for (let i = 0; i < 10; i++) {
      slow.resume();
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    clearInterval(sampler);
  }
  const growth = { edge: peak.edge - base.edge, wg: peak.wg - base.wg };
  t.log(`RSS growth with a stalled 512 MiB download: edge worker ${growth.edge.toFixed(1)} MiB, Warpgate ${growth.wg.toFixed(1)} MiB`);
  t.true(received < total / 4, 'the client really did not read the body');
  t.true(growth.edge < 48, `edge worker grew ${growth.edge.toFixed(1)} MiB`);
  t.true(growth.wg < 48, `Warpgate grew ${growth.wg.toFixed(1)} MiB`);
  // The client goes away: the stream is cancelled all the way to the origin.
  slow.destroy();
  let seen = await stack.originSeen();
  const end = Date.now() + 10_000; // a deadline, not a delay: the loop ends as soon as it is seen
  while (Date.now() < end && !(seen.find((s) => s.query.startsWith('bytes='))?.aborted ?? false)) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await stack.originSeen();
  }
  t.true(seen.find((s) => s.query.startsWith('bytes='))?.aborted ?? false, 'the origin saw the download cancelled');
  t.is((await stack.request('/health')).status, 200);
});
