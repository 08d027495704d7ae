/**
 * `mezusphere edge --console-port`: the primary forks the Console once its
 * workers are ready, reports it in its ready line, hands it the tunnel port
 * the workers listen on (for enrollment answers), respawns it when it dies
 * (on the same port), and stops it on SIGTERM with everything else.
 */
import test from 'ava';
import { Stack, pidAlive, waitFor } from './harness.js';
import { call, type ConsoleProc } from './console-client.js';
import { createCsr } from '../../wire/index.js';

const stack = new Stack(2, undefined, ['--console-port', '0']);
let con: ConsoleProc;
let consolePid = 0;

test.before(async () => {
  await stack.start();
  const line = JSON.parse(stack.edge!.out.split('\n').find((l) => l.startsWith('{"event":"ready"'))!) as { console: { port: number; url: string; pid: number } };
  con = { child: stack.edge!.child, out: '', err: '', port: line.console.port, base: `http://127.0.0.1:${line.console.port}` };
  consolePid = line.console.pid;
});
test.after.always(async () => {
  await stack.stop();
  if (consolePid !== 0 && pidAlive(consolePid)) process.kill(consolePid, 'SIGKILL');
});

test.serial('a Console that dies is respawned on the same port', async (t) => {
  // Before any client connected: a killed listener's accepted connections linger in TIME_WAIT and keep the
  // port from being bound again for up to a minute (the primary keeps retrying; docs/ARCHITECTURE.md).
  process.kill(consolePid, 'SIGKILL');
  await waitFor('the respawn', () => /console respawned \(pid (\d+)\)/.test(stack.edge!.err), 10_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${stack.edge!.err}`);
  });
  const pid = Number(/console respawned \(pid (\d+)\)/.exec(stack.edge!.err)![1]);
  t.not(pid, consolePid);
  consolePid = pid;
  t.is((await call(con, 'GET', '/api/v1/me')).status, 401);
});


test.serial('the ready line names the Console; it answers the admin API; enrollment answers carry the real tunnel port', async (t) => {
  t.true(con.port > 0);
  t.regex(stack.edge!.err, /Console on http:\/\/localhost:\d+/);
  const r = await call(con, 'GET', '/api/v1/me');
  t.is(r.status, 401);
  t.is(r.body.error.code, 'MEZU_CONSOLE_AUTH_REQUIRED');
  const sa = JSON.parse(stack.cli('service-accounts', 'add', '--project', 'demo', '--name', 'gate', '--permissions', 'warpgates:enroll', '--json').stdout) as { id: string };
  const key = stack.cli('keys', 'create', '--service-account', sa.id).stdout;
  const { csr } = await createCsr('x');
  const en = await call(con, 'POST', '/api/v1/warpgates/enroll', { key, body: { csr, warpgate_id: 'wg-edge-test', hostname: 'h', version: '0' } });
  t.is(en.status, 201);
  t.deepEqual(en.body.tunnel.endpoints, [`127.0.0.1:${stack.tunnelPort}`]);
});

test.serial('SIGTERM to the edge stops the Console too', async (t) => {
  await stack.stop();
  t.false(pidAlive(consolePid), 'the Console stopped with the edge');
});

