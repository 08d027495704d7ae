/**
 * Warpgate enrollment end to end: a real edge (2 workers), Console, origin,
 * and `warpgate --edge CONSOLE_URL --key mzk_…` processes. Enrollment gives a
 * short-lived certificate that opens tunnels to every worker; it is renewed
 * before it expires (a redial after the first certificate expired uses the
 * renewed one); revoking the key closes the tunnels within a second, refuses
 * new handshakes and renewals, and the Warpgate stops; a bad key is reported
 * with its code and retried with backoff.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, logLines, stopProc, waitFor, type Proc } from './harness.js';
import { startConsole, stopConsole, call, consoleUser, type ConsoleProc, type ConsoleBrowser } from './console-client.js';
import { createCsr } from '../../wire/index.js';

const ROOT = resolve(__dirname, '../../..');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');
/** Short on purpose: renewal (at 2/3) must happen within the test. */
const CERT_TTL_S = 6;

const stack = new Stack(2);
let con: ConsoleProc;
let owner: ConsoleBrowser;
const warpgates: Proc[] = [];

function launchWarpgate(args: string[]): Proc {
  const child: ChildProcess = spawn(process.execPath, [WARPGATE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  warpgates.push(p);
  return p;
}

function enrolled(key: string, extra: string[] = []): Proc {
  return launchWarpgate(['--edge', con.base, '--key', key, '--origin', `http://127.0.0.1:${stack.originPort}`, ...extra]);
}

async function newKey(name: string, permissions = ['warpgates:enroll']): Promise<{ sa: string; id: string; key: string }> {
  const sa = (await call(con, 'POST', '/api/v1/projects/demo/service-accounts', { cookie: owner.cookie(), body: { name, permissions } })).body;
  const k = (await call(con, 'POST', `/api/v1/service-accounts/${sa.id}/keys`, { cookie: owner.cookie(), body: {} })).body;
  return { sa: sa.id, id: k.id, key: k.key };
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, 'g'))].length;
}

test.before(async () => {
  await stack.start();
  // Only enrolled Warpgates from here on: the static one (--pki-dir) goes.
  await stopProc(stack.warpgate);
  stack.warpgate = null;
  con = await startConsole(stack, ['--warpgate-cert-ttl', `${CERT_TTL_S}s`]);
  owner = await consoleUser(stack, con, 'owner@example.com', 'owner');
});
test.after.always(async () => {
  for (const w of warpgates) await stopProc(w);
  await stopConsole(con ?? null);
  await stack.stop();
});

let live: { sa: string; id: string; key: string };
let wg: Proc;
let enrolledAt = 0;

test.serial('enrollment: the Warpgate gets a certificate for a CSR of its own and holds tunnels to every edge worker', async (t) => {
  live = await newKey('gate');
  stack.markEdgeLog();
  enrolledAt = Date.now();
  wg = enrolled(live.key);
  await waitFor('tunnels to both workers', () => stack.tunnelsRegistered() >= 2 || wg.child.exitCode !== null, 15_000);
  t.regex(wg.err, /enrolled as [0-9a-f]{16} for project demo \(pool demo, key mzk_/);
  t.is((await stack.request('/health')).status, 200);
  const token = (stack.addUser('ada@example.com'), stack.session('ada@example.com'));
  const r = await stack.request('/api/v1/hello', { headers: { cookie: `mezu_session=${token}` } });
  t.is(r.status, 200);
  t.is((JSON.parse(r.body) as { identity: Record<string, string> }).identity['x-mezu-user-email'], 'ada@example.com');
  // The Console sees it: connected, since when, which workers hold its tunnels, its key.
  // Each worker reports its tunnels to the store (debounced 100 ms); the Console joins the reports.
  let me: Record<string, any> = {};
  const t1 = Date.now();
  while (Date.now() - t1 < 5_000) {
    const list = (await call(con, 'GET', '/api/v1/warpgates', { cookie: owner.cookie() })).body.items as Array<Record<string, any>>;
    me = list.find((w) => w.key === live.id) ?? {};
    if (new Set((me.tunnels ?? []).map((x: { worker: number }) => x.worker)).size === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.truthy(me);
  t.true(me.connected);
  t.is(me.project, 'demo');
  t.is(me.version, '0.1.0');
  t.deepEqual([...new Set((me.tunnels as Array<{ worker: number }>).map((x) => x.worker))].sort(), [0, 1]);
  t.truthy(me.connected_since);
  // And the audit log has the enrollment.
  const audit = (await call(con, 'GET', '/api/v1/audit?action=warpgate', { cookie: owner.cookie() })).body.items as Array<{ action: string; actor: { type: string } }>;
  t.true(audit.some((a) => a.action === 'warpgate.enroll' && a.actor.type === 'service_account'));
  // The Warpgates page shows it.
  const page = await owner.get('/warpgates');
  t.regex(page.text, new RegExp(`mzk_${live.id}`));
  t.regex(page.text, /connected/);
});

test.serial('renewal before expiry: a redial after the first certificate expired uses the renewed one', async (t) => {
  await waitFor('a renewal', () => /certificate renewed until/.test(wg.err), CERT_TTL_S * 1000 + 5_000);
  // When the Warpgate renewed, by its log line's time, not when this process (busy on a loaded
  // machine) noticed it: a full CI run once saw the line after the first certificate's life.
  const renewed = logLines(wg.err).find((l) => /certificate renewed until/.test(String(l.msg)));
  const renewedAt = Date.parse(String(renewed?.time));
  t.true(renewedAt - enrolledAt < CERT_TTL_S * 1000, `renewed ${renewedAt - enrolledAt} ms after enrollment began, before the first certificate expired`);
  // Past the first certificate's life: restart the edge, so every tunnel is dialed again.
  await waitFor('the first certificate expired', () => Date.now() - enrolledAt > CERT_TTL_S * 1000 + 500, CERT_TTL_S * 1000 + 2_000);
  await stopProc(stack.edge);
  await stack.startEdge();
  await waitFor('tunnels to both workers again', () => stack.tunnelsRegistered() >= 2, 20_000);
  t.is((await stack.request('/health')).status, 200);
  t.false(/MEZU_TUNNEL_CREDENTIAL_REVOKED/.test(stack.edge!.err));
});

test.serial('revoking the key closes its tunnels within a second, refuses new handshakes and renewals; the Warpgate stops', async (t) => {
  t.is((await stack.request('/health')).status, 200);
  const markRevoke = stack.edge!.err.length;
  const markWg = wg.err.length;
  const r = await call(con, 'DELETE', `/api/v1/service-accounts/${live.sa}/keys/${live.id}`, { cookie: owner.cookie() });
  t.is(r.status, 200);
  // From the revocation's commit (the API answers after it), not from sending the call: on a loaded
  // machine the Console's own answer time is not what "within a second" is about.
  const t0 = Date.now();
  // Requests need a tunnel: once a worker closed its tunnels, every request it answers gets 502
  // MEZU_NO_WARPGATE. Each worker polls on its own, so the answering worker is told apart by its
  // request-id prefix (8 characters, one per process), and the closure time is when the last worker's
  // final run of 502s began. (Counting one run over fresh connections was wrong: the kernel may send
  // six in a row to the same worker.)
  const streak = new Map<string, number>();
  const since = new Map<string, number>();
  while (Date.now() - t0 < 5_000) {
    const x = await stack.request('/health');
    const w = String(x.headers['x-mezu-request-id'] ?? '').slice(0, 8);
    const n = x.status === 502 ? (streak.get(w) ?? 0) + 1 : 0;
    streak.set(w, n);
    if (n === 1) since.set(w, Date.now());
    if (streak.size >= stack.workers && [...streak.values()].every((k) => k >= 3)) break;
  }
  t.true(streak.size >= stack.workers && [...streak.values()].every((k) => k >= 3), `no tunnel left on any worker: ${JSON.stringify([...streak])}`);
  const closedAt = Math.max(...since.values());
  t.true(closedAt - t0 <= 1_000, `tunnels closed ${closedAt - t0} ms after the revocation`);
  t.regex(stack.edge!.err, /closing a tunnel of warpgate \S+ \(MEZU_TUNNEL_CREDENTIAL_REVOKED\): key \S+ is no longer valid/);
  for (let i = 0; i < 4; i++) {
    const x = await stack.request('/health');
    t.is(x.status, 502, `${stack.edge!.err.slice(markRevoke)}\n--- warpgate:\n${wg.err.slice(markWg)}`);
    t.is(x.headers['x-mezu-error-code'] ?? JSON.parse(x.body).error.code, 'MEZU_NO_WARPGATE');
  }
  // Its certificate is still within its life, so it redials: the edge refuses the handshake.
  await waitFor('a refused handshake', () => /refused a warpgate of pool demo \(MEZU_TUNNEL_CREDENTIAL_REVOKED\): key \S+ is revoked/.test(stack.edge!.err), 5_000);
  // A renewal with the key is refused, with the code saying why.
  const csr = await createCsr('warpgate-x');
  const renew = await call(con, 'POST', '/api/v1/warpgates/enroll', { key: live.key, body: { csr: csr.csr, warpgate_id: 'abcdef0123456789', hostname: 'x', version: '0' } });
  t.is(renew.status, 401);
  t.is(renew.body.error.code, 'MEZU_KEY_REVOKED');
  // The Warpgate finds out on its early renewal and stops its tunnels; it keeps trying to enroll, with backoff.
  await waitFor('the Warpgate stopped', () => /enrollment refused \(401 MEZU_KEY_REVOKED\).*stopping the tunnels/.test(wg.err), 15_000);
  t.is(wg.child.exitCode, null, 'the process stays up, retrying');
  const list = (await call(con, 'GET', '/api/v1/warpgates', { cookie: owner.cookie() })).body.items as Array<Record<string, any>>;
  const me = list.find((w) => w.key === live.id)!;
  t.truthy(me.refused_at);
  await stopProc(wg);
});

test.serial('a bad or revoked key: a clear error, and retries with backoff; a syntactically wrong key is a usage error', async (t) => {
  const unknown = enrolled(`mzk_${'A'.repeat(16)}_${'B'.repeat(43)}`);
  await waitFor('two refused attempts', () => count(unknown.err, /enrollment refused \(401 MEZU_KEY_INVALID\)/) >= 2, 10_000);
  t.is(unknown.child.exitCode, null, 'still retrying');
  t.regex(unknown.err, /console: the API key is unknown or malformed; retrying \(MEZU_KEY_INVALID\)/);
  await stopProc(unknown);

  const revoked = enrolled(live.key);
  await waitFor('a refused attempt', () => /enrollment refused \(401 MEZU_KEY_REVOKED\)/.test(revoked.err), 10_000);
  await stopProc(revoked);

  const noPerm = await newKey('no-enroll', ['users:read']);
  const forbidden = enrolled(noPerm.key);
  await waitFor('a forbidden attempt', () => /enrollment refused \(403 MEZU_CONSOLE_FORBIDDEN\)/.test(forbidden.err), 10_000);
  t.regex(forbidden.err, /does not allow warpgates:enroll/);
  await stopProc(forbidden);

  const nowhere = launchWarpgate(['--edge', 'http://127.0.0.1:1', '--key', live.key, '--origin', `http://127.0.0.1:${stack.originPort}`]);
  await waitFor('an unreachable Console', () => /cannot reach the Console at http:\/\/127\.0\.0\.1:1.*retrying \(MEZU_ENROLL_FAILED\)/.test(nowhere.err), 10_000);
  await stopProc(nowhere);

  const typo = launchWarpgate(['--edge', con.base, '--key', 'mzk_short', '--origin', `http://127.0.0.1:${stack.originPort}`]);
  await waitFor('exit', () => typo.child.exitCode !== null, 5_000);
  t.is(typo.child.exitCode, 2);
  t.regex(typo.err, /--key must be a service-account API key/);
});

test.serial('a fresh key enrolls again and serves; the static --pki-dir flow keeps working beside it', async (t) => {
  const k = await newKey('gate-2');
  stack.markEdgeLog();
  const again = enrolled(k.key);
  await waitFor('tunnels to both workers', () => stack.tunnelsRegistered() >= 2 || again.child.exitCode !== null, 15_000);
  t.is((await stack.request('/health')).status, 200);
  const wgStatic = await stack.startExtraWarpgate();
  t.is(wgStatic.child.exitCode, null);
  t.is((await stack.request('/health')).status, 200);
});
