/**
 * Store faults on real processes: a process killed while it holds LMDB's
 * write lock, and the whole edge killed (SIGKILL, primary and workers) during
 * a burst of logins.
 *
 * Story: every edge worker and the CLI write one LMDB environment. LMDB's
 * writer lock is a process-shared robust mutex: when its owner dies, the next
 * writer gets EOWNERDEAD and takes it over, so a crash mid-write cannot wedge
 * the edge. Transactions are all-or-nothing and a login answers 303 only after
 * its session commit is synced (`overlappingSync: false`), so a session the
 * client received survives a `kill -9` of everything.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, waitFor, pidAlive, type Proc } from '../integration/harness.js';
import { Client, signUp } from '../integration/login-client.js';
import { openStore } from '../../src/store/index.js';
import { openEnv } from '../../native/lmdb.js';
import { hashToken } from '../../src/session/index.js';

const ROOT = resolve(__dirname, '../../..');
const LOCK_HOLDER = join(ROOT, 'dist/test/faults/lock-holder.js');
const PW = 'fault tolerant passphrase 7';

const CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /health, auth: public }
    login:
      signup: open
      public_url: http://localhost:8080
      throttle:
        account: { delay_after: 1000, lock_after: 1000, lock: 1m, window: 1m }
        ip: { delay_after: 1000, lock_after: 1000, lock: 1m, window: 1m }
`;

function holdLock(dir: string): Proc {
  const child = spawn(process.execPath, [LOCK_HOLDER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  return p;
}

test.serial('a process killed while holding the store\'s write lock: reads go on meanwhile, and the next writer recovers the lock', async (t) => {
  const stack = new Stack(2, CONFIG);
  t.teardown(() => stack.stop());
  await stack.start();
  await signUp(stack, 'ada@example.com', PW);
  stack.addUser('bob@example.com');
  const bob = stack.session('bob@example.com');

  const holder = holdLock(stack.dir);
  t.teardown(() => {
    if (holder.child.exitCode === null) holder.child.kill('SIGKILL');
  });
  await waitFor('the write lock held', () => holder.out.includes('locked') || holder.child.exitCode !== null, 10_000);
  t.true(holder.out.includes('locked'), holder.err);

  // Reads need no lock: proxied requests with an existing session keep being served.
  for (let i = 0; i < 6; i++) t.is((await stack.request('/api/v1/x', { headers: { cookie: `mezu_session=${bob}` } })).status, 200);

  // A login must write (throttle counters, the session): it waits for the lock.
  const c = new Client(stack);
  await c.get('/_mezu/login');
  let answered = 0;
  const login = c.submit('/_mezu/login', { email: 'ada@example.com', password: PW }).then((r) => {
    answered = Date.now();
    return r;
  });
  await new Promise((r) => setTimeout(r, 700));
  t.is(answered, 0, 'the login waits while another process holds the write lock');

  const killedAt = Date.now();
  holder.child.kill('SIGKILL');
  const r = await login;
  t.is(r.status, 303, r.body.slice(0, 200));
  t.true(answered - killedAt < 3_000, `the lock was recovered ${answered - killedAt} ms after its owner died`);
  t.is((await stack.request('/api/v1/x', { headers: { cookie: `mezu_session=${c.session()}` } })).status, 200);
  // Another process writes too.
  const started = Date.now();
  t.is(stack.cli('users', 'add', '--project', 'demo', '--email', 'carl@example.com').status, 0);
  t.true(Date.now() - started < 5_000);
  // The killed holder's transaction was never committed: all or nothing.
  const root = openEnv({ path: `${stack.dir}/store` });
  try {
    t.is(root.openDB<string, string>({ name: 'faults', cache: false }).get('held-by'), undefined);
  } finally {
    await root.close();
  }
});

test.serial('the edge killed (SIGKILL, every process) during a burst of logins: every session a client received survives, and the edge comes back', async (t) => {
  const stack = new Stack(2, CONFIG);
  t.teardown(() => stack.stop());
  await stack.start();
  await signUp(stack, 'ada@example.com', PW);

  const clients = await Promise.all(Array.from({ length: 16 }, async () => {
    const c = new Client(stack);
    await c.get('/_mezu/login');
    return c;
  }));
  const results: Array<{ status: number; session: string } | null> = clients.map(() => null);
  const burst = clients.map((c, i) =>
    c.submit('/_mezu/login', { email: 'ada@example.com', password: PW }).then(
      (r) => {
        results[i] = { status: r.status, session: c.session() };
      },
      () => {
        results[i] = { status: 0, session: '' };
      },
    ),
  );
  // Kill once some logins were answered and others are still running.
  await waitFor('a few logins answered', () => results.filter((r) => r !== null).length >= 3, 20_000);
  const pids = [stack.edge!.child.pid!, ...stack.workerPids];
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all(burst);
  const answered = results.filter((r) => r!.status === 303);
  const cut = results.filter((r) => r!.status === 0);
  t.log(`at the kill: ${answered.length} logins answered, ${cut.length} cut`);
  t.true(answered.length >= 3);
  t.deepEqual(results.filter((r) => r!.status !== 303 && r!.status !== 0), [], 'nothing but a sign-in or a cut connection');

  // The store holds every answered session, whole.
  const store = openStore(stack.dir);
  try {
    for (const r of answered) {
      const s = store.sessions.get(hashToken(r!.session));
      t.truthy(s, 'the session of an answered login is in the store');
      t.is(s?.projectId, 'demo');
    }
  } finally {
    await store.close();
  }

  // Restart on the same ports: the Warpgate redials; every answered session still works.
  await waitFor('every edge process gone', () => pids.every((p) => !pidAlive(p)), 5_000);
  stack.markEdgeLog();
  await stack.startEdge();
  await waitFor('tunnels back', () => stack.tunnelsRegistered() >= 2, 20_000);
  for (const r of answered) t.is((await stack.request('/api/v1/me', { headers: { cookie: `mezu_session=${r!.session}` } })).status, 200);
  const again = new Client(stack);
  t.is((await again.submit('/_mezu/login', { email: 'ada@example.com', password: PW })).status, 303);
  t.is(stack.cli('users', 'add', '--project', 'demo', '--email', 'after@example.com').status, 0);
});
