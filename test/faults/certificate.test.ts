/**
 * A Warpgate certificate expiring while its tunnels are up, on real processes
 * (edge with 2 workers, Console, origin, an enrolled Warpgate with 6 s
 * certificates).
 *
 * Story: TLS checks a client certificate only at the handshake, so a tunnel
 * dialed with a certificate would otherwise outlive it by as long as the
 * connection lasts — a credential that no longer holds, still trusted. The edge
 * closes each tunnel when its certificate's notAfter passes (GOAWAY: in-flight
 * requests finish); the Warpgate, which renewed its certificate at two thirds
 * of its life, redials with the new one. Requests never hang: while no tunnel
 * is up they get 502 MEZU_NO_WARPGATE at once.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, stopProc, waitFor, type Proc } from '../integration/harness.js';
import { startConsole, stopConsole, call, consoleUser, type ConsoleProc } from '../integration/console-client.js';

const ROOT = resolve(__dirname, '../../..');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');
const CERT_TTL_S = 6;

test('a tunnel is closed when its client certificate expires, and the Warpgate redials with its renewed certificate', async (t) => {
  const stack = new Stack(2);
  let con: ConsoleProc | null = null;
  let wg: Proc | null = null;
  t.teardown(async () => {
    await stopProc(wg);
    await stopConsole(con);
    await stack.stop();
  });
  await stack.start();
  await stopProc(stack.warpgate);
  stack.warpgate = null;
  con = await startConsole(stack, ['--warpgate-cert-ttl', `${CERT_TTL_S}s`]);
  const owner = await consoleUser(stack, con, 'owner@example.com', 'owner');
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name: 'gate', permissions: ['warpgates:enroll'] } })).body as { id: string };
  const key = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body as { key: string };

  stack.markEdgeLog();
  const child = spawn(process.execPath, [WARPGATE, '--edge', con.base, '--key', key.key, '--origin', `http://127.0.0.1:${stack.originPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { child, out: '', err: '' };
  wg = proc;
  child.stdout!.on('data', (d: Buffer) => (proc.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.err += d.toString()));
  await waitFor('tunnels to both workers', () => stack.tunnelsRegistered() >= 2 || child.exitCode !== null, 15_000);
  const until = /certificate until (\S+);/.exec(proc.err);
  t.truthy(until, proc.err);
  const firstExpiry = Date.parse(until![1]!);

  // Steady load across the expiry; note when the edge reports the close.
  const outcomes: Array<{ at: number; status: number; code: string }> = [];
  let closedAt = 0;
  const loadUntil = firstExpiry + 4_000;
  const load = (async () => {
    while (Date.now() < loadUntil) {
      const at = Date.now();
      try {
        const r = await stack.request('/health', { timeoutMs: 5_000 });
        outcomes.push({ at, status: r.status, code: r.status === 200 ? '' : ((JSON.parse(r.body) as { error?: { code?: string } }).error?.code ?? '') });
      } catch (err) {
        outcomes.push({ at, status: 0, code: (err as Error).message });
      }
      if (closedAt === 0 && /its client certificate expired/.test(stack.edge!.err)) closedAt = Date.now();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await load;
  t.true(closedAt > 0, 'the edge closed the tunnels of the expired certificate');
  t.true(closedAt - firstExpiry < 1_500, `closed ${closedAt - firstExpiry} ms after the certificate's notAfter`);
  const closes = [...stack.edge!.err.matchAll(/closing a tunnel of warpgate \S+ for pool demo: its client certificate expired at (\S+)/g)];
  t.true(closes.length >= 2, `${closes.length} tunnels closed at expiry`);
  for (const m of closes) t.true(Date.parse(m[1]!) <= Date.now());
  t.regex(proc.err, /certificate renewed until/, 'renewed before expiry');
  // Redialed with the renewed certificate: tunnels on both workers again, serving.
  stack.markEdgeLog();
  await waitFor('tunnels back on both workers', () => stack.tunnelsRegistered() >= 2, 15_000).catch(() => undefined);
  for (let i = 0; i < 6; i++) t.is((await stack.request('/health')).status, 200);
  // Never a hang or a wrong answer: 200, or 502 at once while no tunnel was up.
  const bad = outcomes.filter((o) => o.status !== 200 && !(o.status === 502 && o.code === 'MEZU_NO_WARPGATE'));
  t.deepEqual(bad, []);
  // The longest stretch in which requests found no tunnel (from the first 502 of a run to the next 200).
  let gapMs = 0;
  let runStart = -1;
  for (const o of outcomes) {
    if (o.status === 502 && runStart < 0) runStart = o.at;
    if (o.status === 200 && runStart >= 0) {
      gapMs = Math.max(gapMs, o.at - runStart);
      runStart = -1;
    }
  }
  const failed = outcomes.filter((o) => o.status === 502);
  t.log(`${outcomes.length} requests across the expiry: ${failed.length} got 502 MEZU_NO_WARPGATE (at ${failed.map((o) => o.at - firstExpiry).join(', ')} ms from notAfter); longest stretch without a tunnel ${gapMs} ms`);
  t.true(gapMs < 3_000, `no tunnel for ${gapMs} ms`);
  t.false(/MEZU_TUNNEL_CREDENTIAL_REVOKED/.test(stack.edge!.err));
});
