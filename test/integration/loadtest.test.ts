/**
 * `mezusphere loadtest` against the real stack (one edge worker, Warpgate,
 * recording origin) on loopback. Loads stay tiny: 2 s or 50 requests, 4–5
 * connections.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Stack } from './harness.js';
import { openStore } from '../../src/store/index.js';
import type { LoadtestReport } from '../../src/loadtest/index.js';

const CLI = join(resolve(__dirname, '../../..'), 'dist/src/cli/main.js');
const stack = new Stack(1);

function loadtest(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // Asynchronous on purpose: the harness reads the edge's output in this process while the run goes on.
    execFile(process.execPath, [CLI, 'loadtest', ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      done({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

function report(r: { stdout: string }): LoadtestReport {
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as LoadtestReport;
}

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

const items = () => `http://127.0.0.1:${stack.port}/api/v1/items`;

test.serial('a timed run as a provisioned user: every response 2xx, and the user is retired afterwards', async (t) => {
  const r = await loadtest('--data', stack.dir, '--project', 'demo', items(), '-d', '2', '-c', '4', '--json');
  t.is(r.status, 0, r.stderr);
  const rep = report(r);
  t.true(rep.ok);
  t.true(rep.responses['2xx'] > 0, JSON.stringify(rep.responses));
  t.is(rep.responses.non2xx, 0);
  t.is(rep.responses.errors, 0);
  t.is(rep.responses.timeouts, 0);
  t.deepEqual(Object.keys(rep.responses.byStatus), ['200']);
  t.is(rep.target.connections, 4);
  t.true(rep.elapsedS >= 1.5 && rep.elapsedS < 10, `elapsed ${rep.elapsedS}`);
  t.true(rep.latencyMs.p50! > 0 && rep.latencyMs.p50! <= rep.latencyMs.p99! && rep.latencyMs.p99! <= rep.latencyMs.max!);
  t.true(rep.requestsPerSecond.avg! > 0);
  t.true(rep.throughput.bytes > 0);
  if (rep.credential.kind !== 'provisioned') return t.fail(`credential ${rep.credential.kind}`);
  t.regex(rep.credential.email, /^loadtest\+[0-9a-f]{12}@example\.invalid$/);
  t.is(rep.credential.cookie, 'mezu_session');
  t.true(rep.credential.sessionRevoked);
  t.true(rep.credential.userDeactivated);
  // The store agrees: no session left, the user deactivated (so no new session can be made for it).
  const s = openStore(stack.dir);
  try {
    const u = s.users.get(rep.credential.userId);
    t.is(u?.status, 'deactivated');
    t.is(u?.email, rep.credential.email);
    t.deepEqual(s.sessions.listForUser(rep.credential.userId), []);
  } finally {
    await s.close();
  }
  // Progress went to stderr as log lines (not a TTY here), never into the JSON on stdout.
  t.is(r.stdout.trim().split('\n').length, 1);
  await stack.clearOrigin();
});

test.serial('a bounded run: --amount 50 sends exactly 50 requests, and the origin sees the test user', async (t) => {
  await stack.clearOrigin();
  const r = await loadtest('--data', stack.dir, '--project', 'demo', '--email', 'lt-amount@example.com', '--roles', 'viewer', items() + '?n=1', '--amount', '50', '-c', '5', '--json');
  t.is(r.status, 0, r.stderr);
  const rep = report(r);
  t.is(rep.responses.total, 50);
  t.is(rep.responses['2xx'], 50);
  t.false(rep.stoppedAtDuration);
  t.is(rep.target.durationLimitS, 3600);
  const seen = (await stack.originSeen()).filter((x) => x.path === '/api/v1/items' && x.query === 'n=1');
  t.is(seen.length, 50);
  for (const x of seen) {
    t.deepEqual(x.headers['x-mezu-user-email'], ['lt-amount@example.com']);
    t.deepEqual(x.headers['x-mezu-roles'], ['viewer']);
    t.false('cookie' in x.headers, 'the session cookie never reaches the origin');
  }
  // The email is taken now (by a deactivated user): a second run refuses to borrow it.
  const again = await loadtest('--data', stack.dir, '--project', 'demo', '--email', 'lt-amount@example.com', items(), '-a', '5');
  t.is(again.status, 1);
  t.regex(again.stderr, /lt-amount@example\.com already exists in demo/);
});

test.serial('human output: histogram, summary table, retirement line', async (t) => {
  const r = await loadtest('--data', stack.dir, '--project', 'demo', items(), '-a', '20', '-c', '2');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^loadtest: GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/items: 2 connections, 20 responses/m);
  t.regex(r.stdout, /Latency histogram \(20 responses/);
  t.regex(r.stdout, /^\s+p99\.9\s+\S+ (µs|ms)\s+█/m);
  t.regex(r.stdout, /Responses\s+2xx 20\s+non-2xx 0\s+errors 0\s+timeouts 0/);
  t.regex(r.stdout, /session revoked, user deactivated/);
  t.regex(r.stdout, /every request got a 2xx/);
});

test.serial('non-2xx responses fail the run unless --allow-errors; the reason is named', async (t) => {
  const bogus = 'A'.repeat(43);
  const r = await loadtest(items(), '--cookie', `mezu_session=${bogus}`, '-a', '10', '-c', '2');
  t.is(r.status, 1);
  t.regex(r.stdout, /Status\s+401 ×10/);
  t.regex(r.stdout, /10 non-2xx, 0 errors, 0 timeouts; exit 1/);
  t.regex(r.stdout, /401: the edge did not accept the credential/);
  const allowed = await loadtest(items(), '--cookie', `mezu_session=${bogus}`, '-a', '10', '-c', '2', '--allow-errors', '--json');
  t.is(allowed.status, 0);
  const rep = report(allowed);
  t.is(rep.responses.non2xx, 10);
  t.deepEqual(rep.credential, { kind: 'cookie', name: 'mezu_session' });
  // A public route needs no credential at all.
  const pub = await loadtest(`http://127.0.0.1:${stack.port}/health`, '-a', '10', '-c', '1', '--json');
  t.is(pub.status, 0, pub.stderr);
  t.is(report(pub).responses['2xx'], 10);
});

test.serial('bad arguments exit 2 with a one-line reason and the usage; nothing is provisioned', async (t) => {
  const users = async () => {
    const s = openStore(stack.dir);
    try {
      return s.users.list('demo').length;
    } finally {
      await s.close();
    }
  };
  const before = await users();
  for (const args of [
    ['--data', stack.dir, '--project', 'demo', 'ftp://127.0.0.1/'],
    ['--data', stack.dir, '--project', 'demo', 'not-a-url'],
    ['--data', stack.dir, '--project', 'demo', items(), '--connections', '0'],
    ['--data', stack.dir, '--project', 'demo', items(), '-d', '3601'],
    ['--data', stack.dir, '--project', 'demo', items(), '--frobnicate'],
    ['--data', stack.dir, items(), '--cookie', 'a=b', '--project', 'demo'],
  ]) {
    const r = await loadtest(...args);
    t.is(r.status, 2, args.join(' '));
    const [first, second] = r.stderr.split('\n');
    t.regex(first!, /^mezusphere: loadtest: \S/, args.join(' '));
    t.regex(second!, /^usage: mezusphere <command>/);
    t.regex(r.stderr, /^\s+loadtest URL /m);
    t.is(r.stdout, '');
  }
  t.is(await users(), before);
});

test.serial('an unknown project or an unreachable target fails with one line (exit 1) before any load', async (t) => {
  const p = await loadtest('--data', stack.dir, '--project', 'nope', items(), '-a', '5');
  t.is(p.status, 1);
  t.regex(p.stderr, /no project "nope" in the current config \(projects: demo, other\)/);
  // A port nobody listens on: take one from the kernel and close it again.
  const port = await new Promise<number>((done) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address() as { port: number };
      srv.close(() => done(a.port));
    });
  });
  const u = await loadtest('--data', stack.dir, '--project', 'demo', `http://127.0.0.1:${port}/`, '-d', '1');
  t.is(u.status, 1);
  t.regex(u.stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  t.is(u.stdout, '');
});
