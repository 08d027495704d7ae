/**
 * Process lifecycle on real processes: worker crash and respawn, Warpgate
 * loss and reconnection, graceful drain, refusal to start on the uWS fallback,
 * and CLI argument errors.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Stack, waitFor, pidAlive, stopProc } from './harness.js';

const CLI = join(resolve(__dirname, '../../..'), 'dist/src/cli/main.js');

test.serial('killing a worker: it is respawned and the others keep serving', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  const [victim, survivor] = stack.workerPids as [number, number];
  process.kill(victim, 'SIGKILL');
  await waitFor('victim gone', () => !pidAlive(victim));
  // Right after the kill, fresh connections all land on the surviving worker's socket.
  for (let i = 0; i < 10; i++) t.is((await stack.request('/health')).status, 200, `request ${i} after the kill`);
  await waitFor('respawn', () => /respawned and ready/.test(stack.edge!.err), 20_000);
  t.true(pidAlive(survivor));
  // The respawned worker took traffic only once its tunnel was up: everything succeeds.
  for (let i = 0; i < 20; i++) {
    const r = await stack.request('/health');
    if (r.status !== 200) t.log(stack.edge!.err.slice(-3000), stack.warpgate!.err.slice(-2000));
    t.is(r.status, 200, `request ${i} after the respawn: ${r.body}`);
  }
});

test.serial('Warpgate killed → 502 at once; it reconnects when restarted', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  t.is((await stack.request('/health')).status, 200);
  await stopProc(stack.warpgate, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  const r = await stack.request('/health');
  t.is(r.status, 502);
  t.is(JSON.parse(r.body).error.code, 'MEZU_NO_WARPGATE');
  t.true(Date.now() - started < 3_000, 'answered at once, not after a timeout');
  stack.markEdgeLog();
  await stack.startWarpgate();
  for (let i = 0; i < 10; i++) t.is((await stack.request('/health')).status, 200);
});

test.serial('SIGTERM drains: in-flight requests finish, then the edge exits', async (t) => {
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  await stack.start();
  const slow = stack.request('/health?delay=1200');
  await new Promise((r) => setTimeout(r, 300));
  const exited = new Promise<number | null>((r) => stack.edge!.child.once('exit', (code) => r(code)));
  stack.edge!.child.kill('SIGTERM');
  const res = await slow;
  t.is(res.status, 200, 'the in-flight request completed');
  t.is(await exited, 0);
  for (const pid of stack.workerPids) t.false(pidAlive(pid));
});

test('the edge refuses to start on the uWebSockets.js JS fallback', (t) => {
  const r = spawnSync(process.execPath, [CLI, 'edge', '--data', '/nonexistent-mezu', '--port', '0'], { env: { ...process.env, UWS_USE_FALLBACK: '1' }, encoding: 'utf8', timeout: 20_000 });
  t.not(r.status, 0);
  // It fails on the certificate check or the native check; with certificates present, on the native check.
  t.regex(r.stderr, /cannot read|native/);
});

test('the edge refuses the fallback even with valid certificates', async (t) => {
  const stack = new Stack(1);
  t.teardown(() => stack.stop());
  const { ensureDevPki } = await import('../../src/pki/index.js');
  await ensureDevPki(join(stack.dir, 'pki'), { pools: ['demo'] });
  const r = spawnSync(process.execPath, [CLI, 'edge', '--data', stack.dir, '--port', '0', '--tunnel-port', '0'], { env: { ...process.env, UWS_USE_FALLBACK: '1' }, encoding: 'utf8', timeout: 20_000 });
  t.not(r.status, 0);
  t.regex(r.stderr, /native: .*UWS_USE_FALLBACK/);
});

test('bad CLI arguments: a one-line reason and the usage, exit 2', (t) => {
  for (const args of [['edge', '--port', 'abc'], ['edge', '--bogus'], ['nonsense'], ['users', 'add', '--email', 'x@y'], ['edge', '--workers', '0']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
    t.is(r.status, 2, args.join(' '));
    const lines = r.stderr.split('\n');
    t.regex(lines[0]!, /^mezusphere: /);
    t.regex(r.stderr, /usage: mezusphere/);
  }
});
