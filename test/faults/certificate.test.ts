/**
 * Warpgate client certificates expiring while tunnels are up, on real
 * processes (edge with 2 workers, Console, origin, an enrolled Warpgate with
 * certificates of a few seconds: `--warpgate-cert-ttl`).
 *
 * Story: TLS checks a client certificate only at the handshake, so a tunnel
 * dialed with a certificate would otherwise outlive it by as long as the
 * connection lasts — a credential that no longer holds, still trusted. The edge
 * therefore closes each tunnel when its certificate's notAfter passes (GOAWAY).
 *
 * 1. A Warpgate that renews (at two thirds of the life) moves its live tunnels
 *    to the renewed certificate itself, make-before-break, well before the old
 *    one expires: steady traffic across the renewal and the old notAfter sees
 *    no failed request, and the edge never has to cut a tunnel. (Before, live
 *    tunnels kept the old certificate, every tunnel of the Warpgate was cut at
 *    the same instant and requests got 502 until it redialed: every hour.)
 * 2. A Warpgate that cannot renew (its Console is gone) is still cut at
 *    expiry: the backstop. Requests never hang: they get 502 MEZU_NO_WARPGATE
 *    at once, and its redials with the expired certificate are refused.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, stopProc, waitFor, logMessages, type Proc } from '../integration/harness.js';
import { startConsole, stopConsole, call, consoleUser, type ConsoleProc, type ConsoleBrowser } from '../integration/console-client.js';

const ROOT = resolve(__dirname, '../../..');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');

interface Setup {
  stack: Stack;
  con: ConsoleProc;
  owner: ConsoleBrowser;
  wg: Proc;
  /** notAfter of the first certificate, from the Warpgate's log. */
  firstExpiry: number;
}

/** Edge + origin + Console issuing `ttlS`-second certificates + one enrolled Warpgate with tunnels to both workers. */
async function setUp(t: { teardown(fn: () => Promise<void>): void }, ttlS: number): Promise<Setup> {
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
  con = await startConsole(stack, ['--warpgate-cert-ttl', `${ttlS}s`]);
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
  // The certificate's own notAfter (whole seconds), as the Warpgate logs it with each tunnel; the edge closes at it.
  // Read from the messages: in the JSON line the date is followed by the line's closing quote.
  const until = /tunnel up to edge worker .*; certificate until (\S+)/.exec(logMessages(proc.err)) ?? /enrolled as .* certificate until (\S+);/.exec(logMessages(proc.err));
  if (until === null) throw new Error(`no enrollment in the Warpgate's log:\n${proc.err}`);
  return { stack, con, owner, wg: proc, firstExpiry: Date.parse(until[1]!) };
}

interface Outcome {
  at: number;
  path: string;
  status: number;
  code: string;
}

/**
 * Bounded steady load: `loops` sequential clients (fresh connections, so the kernel spreads them
 * over both workers), public and protected GETs in turn (public only without a cookie), until `until` or `max` requests.
 */
async function steadyLoad(stack: Stack, cookie: string, until: () => number, loops: number, max: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: loops }, async (_, i) => {
      for (let n = i; Date.now() < until() && outcomes.length < max; n++) {
        const path = n % 2 === 0 || cookie === '' ? '/health' : '/api/v1/hello';
        const at = Date.now();
        try {
          const r = await stack.request(path, { timeoutMs: 10_000, headers: path === '/health' ? {} : { cookie } });
          let code = '';
          if (r.status !== 200) code = String(r.headers['x-mezu-error-code'] ?? (JSON.parse(r.body) as { error?: { code?: string } }).error?.code ?? '');
          outcomes.push({ at, path, status: r.status, code });
        } catch (err) {
          outcomes.push({ at, path, status: 0, code: (err as Error).message });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }),
  );
  return outcomes;
}

/** This Warpgate as the Console shows it (tunnels reported by the edge workers). */
async function status(s: Setup): Promise<{ tunnels: Array<{ worker: number; since: string }>; renewed_at: string; certificate_expires_at: string }> {
  const list = (await call(s.con, 'GET', '/api/v1/warpgates', { cookie: s.owner.cookie() })).body.items as Array<Record<string, any>>;
  const id = /enrolled as ([0-9a-f]{16})/.exec(s.wg.err)![1]!;
  return list.find((w) => w.id === id) as any;
}

test.serial('a renewing Warpgate moves its live tunnels to the new certificate before the old one expires: no failed request across the renewal and the old expiry', async (t) => {
  const TTL_S = 15;
  const s = await setUp(t, TTL_S);
  const { stack, wg, firstExpiry } = s;
  stack.addUser('ada@example.com');
  const cookie = `mezu_session=${stack.session('ada@example.com')}`;
  t.is((await stack.request('/api/v1/hello', { headers: { cookie } })).status, 200);
  const edgeMark = stack.edge!.err.length;

  // Load from now until well past the first certificate's notAfter (the edge's expiry timers have fired by then).
  const loadEnd = firstExpiry + 1_500;
  const load = steadyLoad(stack, cookie, () => loadEnd, 3, 8_000);

  // Meanwhile, observable events only: the renewal, the Warpgate's rotation, the edge's view of the tunnels.
  await waitFor('the renewal', () => /certificate renewed until/.test(wg.err) || wg.child.exitCode !== null, TTL_S * 1000);
  const renewedUntil = Date.parse(/certificate renewed until (\S+)/.exec(logMessages(wg.err))![1]!);
  t.true(renewedUntil > firstExpiry);
  // The edge's side (worker reports in the store, joined by the Console): every tunnel registered after
  // the renewal (so dialed with the new certificate), on both workers, the old ones gone — before the old notAfter.
  let seen: Awaited<ReturnType<typeof status>> | null = null;
  let seenAt = 0;
  const rotated = () => seen !== null && seen.tunnels.length >= 4 && new Set(seen.tunnels.map((x) => x.worker)).size === 2 && seen.tunnels.every((x) => Date.parse(x.since) >= Date.parse(seen!.renewed_at));
  while (Date.now() < loadEnd) {
    seen = await status(s);
    seenAt = Date.now();
    if (rotated()) break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const outcomes = await load;
  const edgeLog = stack.edge!.err.slice(edgeMark);
  const failed = outcomes.filter((o) => o.status !== 200);
  t.log(`${outcomes.length} requests from ${firstExpiry - outcomes[0]!.at} ms before to ${outcomes.at(-1)!.at - firstExpiry} ms after the old notAfter; ${failed.length} failed`);
  t.true(outcomes.length >= 100, `only ${outcomes.length} requests`);
  t.true(outcomes.at(-1)!.at > firstExpiry, 'the load ran past the old expiry');
  const summary = [...new Set(failed.map((o) => `${o.status} ${o.code}`))].join(', ');
  t.is(failed.length, 0, `${failed.length} failed (${summary}) at ${failed.slice(0, 20).map((o) => o.at - firstExpiry).join(', ')} ms from the old notAfter\n--- edge:\n${edgeLog}\n--- warpgate:\n${wg.err}`);
  t.true(rotated(), `the edge's view of the Warpgate: ${JSON.stringify(seen)}`);
  t.true(seenAt < firstExpiry, `the old tunnels were gone only ${seenAt - firstExpiry} ms after the old certificate's notAfter`);
  t.is(Date.parse(seen!.certificate_expires_at), renewedUntil);
  t.log(`renewed ${firstExpiry - Date.parse(seen!.renewed_at)} ms before the old notAfter; every tunnel on the new certificate (edge view) ${firstExpiry - seenAt} ms before it`);
  t.regex(wg.err, /every tunnel now uses the certificate valid until/);
  // The backstop never had to fire: no tunnel was left on the expiring certificate.
  t.false(/its client certificate expired/.test(edgeLog), edgeLog);
  // The old tunnels were drained by the Warpgate (GOAWAY), one at a time, after their replacements.
  t.true([...wg.err.matchAll(/draining a tunnel to edge worker \d/g)].length >= 4, wg.err);
  t.false(/MEZU_TUNNEL_CREDENTIAL_REVOKED/.test(edgeLog));
});

test.serial('a Warpgate that cannot renew is cut when its certificate expires; requests get 502 at once, never hang; its redials are refused', async (t) => {
  const TTL_S = 6;
  const s = await setUp(t, TTL_S);
  const { stack, wg, firstExpiry } = s;
  // No Console, no renewal: the Warpgate keeps its tunnels while the certificate holds and retries.
  await stopConsole(s.con);
  await waitFor('a failed renewal', () => /cannot reach the Console.*the current certificate holds until/.test(wg.err), TTL_S * 1000 + 5_000);
  t.true(Date.now() < firstExpiry, 'the renewal failed before the certificate expired');
  t.is((await stack.request('/health')).status, 200);

  const edgeMark = stack.edge!.err.length;
  let closedAt = 0;
  let outcomes: Outcome[] = [];
  const watcher = (async () => {
    await waitFor('the edge closing the tunnels at expiry', () => /its client certificate expired/.test(stack.edge!.err.slice(edgeMark)), TTL_S * 1000 + 5_000).catch(() => undefined);
    closedAt = Date.now();
  })();
  // Load until the edge has cut the tunnels and refused the Warpgate's redials for a while.
  const refused = () => /rejected a handshake/.test(stack.edge!.err.slice(edgeMark));
  outcomes = await steadyLoad(stack, '', () => (closedAt > 0 && refused() ? closedAt + 1_500 : firstExpiry + 10_000), 2, 8_000);
  await watcher;
  const edgeLog = stack.edge!.err.slice(edgeMark);
  t.true(closedAt > 0, `the edge closed the tunnels of the expired certificate:\n${edgeLog}`);
  t.true(closedAt - firstExpiry < 1_500, `closed ${closedAt - firstExpiry} ms after the certificate's notAfter`);
  const closes = [...logMessages(edgeLog).matchAll(/closing a tunnel of warpgate \S+ for pool demo: its client certificate expired at (\S+)/g)];
  t.true(closes.length >= 2, `${closes.length} tunnels closed at expiry`);
  for (const m of closes) t.true(Date.parse(m[1]!) <= closedAt);
  t.true(refused(), `redials with the expired certificate refused at the handshake:\n${edgeLog}`);
  // Never a hang or a wrong answer: 200 before the expiry, 502 MEZU_NO_WARPGATE at once after it.
  const bad = outcomes.filter((o) => !(o.status === 200 || (o.status === 502 && o.code === 'MEZU_NO_WARPGATE')));
  t.deepEqual(bad, []);
  t.true(outcomes.some((o) => o.status === 200 && o.at < firstExpiry));
  const after = outcomes.filter((o) => o.at > closedAt + 200);
  t.true(after.length > 0 && after.every((o) => o.status === 502), `no tunnel is left after the expiry: ${JSON.stringify(after.filter((o) => o.status !== 502).slice(0, 5))} of ${after.length}`);
  t.log(`${outcomes.length} requests; cut ${closedAt - firstExpiry} ms after notAfter; ${outcomes.filter((o) => o.status === 502).length} got 502 MEZU_NO_WARPGATE`);
  t.is(wg.child.exitCode, null, 'the Warpgate keeps trying to renew');
});
