/**
 * The dev stack (`npm start` = build + `node dist/scripts/dev.js`) on real
 * processes, on a temporary data directory and free ports (MEZU_DATA,
 * MEZU_PORT, MEZU_TUNNEL_PORT, MEZU_ORIGIN_PORT, MEZU_CONSOLE_PORT): what it
 * prints, what the demo serves (public, protected for browsers and for API
 * clients, open signup, identity headers at the demo origin), that its
 * Warpgate enrolled with a key, that Ctrl-C (SIGINT to the whole process
 * group, as a terminal sends it) or a SIGINT to the script alone stops every
 * process it started with exit code 0, and that a second start on the same
 * data directory works.
 */
import WebSocket from 'ws';
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import { waitFor } from './harness.js';

const ROOT = resolve(__dirname, '../../..');
const DEV = join(ROOT, 'dist/scripts/dev.js');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const UP = 'Ctrl-C stops everything.';
const SLOW_START = join(__dirname, 'slow-start.js');

const dir = mkdtempSync(join(tmpdir(), 'mezu-dev-'));

interface Ports {
  port: number;
  tunnel: number;
  origin: number;
  console: number;
}

interface Dev {
  child: ChildProcess;
  out: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Four ports that were free a moment ago (all held at once, so they differ). */
async function freePorts(): Promise<Ports> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 4; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    servers.push(s);
    ports.push((s.address() as { port: number }).port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return { port: ports[0]!, tunnel: ports[1]!, origin: ports[2]!, console: ports[3]! };
}

/** Starts dev.js in a process group of its own (so the test can send Ctrl-C to the group). */
async function startDev(p: Ports, extraEnv: NodeJS.ProcessEnv = {}): Promise<Dev> {
  const child = spawn(process.execPath, [DEV], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Metrics on ports of the system's choosing: the defaults (9464, 9465) may be held by another test's processes.
    env: { ...process.env, MEZU_DATA: dir, MEZU_PORT: String(p.port), MEZU_TUNNEL_PORT: String(p.tunnel), MEZU_ORIGIN_PORT: String(p.origin), MEZU_CONSOLE_PORT: String(p.console), MEZU_METRICS_PORT: '0', MEZU_WARPGATE_METRICS_PORT: '0', ...extraEnv },
  });
  const d: Dev = { child, out: '', exit: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))) };
  child.stdout!.on('data', (b: Buffer) => (d.out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (d.out += b.toString()));
  // Bounded well inside ava's 2 min: a stack that does not come up fails with what it printed, and
  // its processes (a detached group) are stopped rather than left behind.
  await waitFor('the dev stack to print that it is up', () => d.out.includes(UP) || child.exitCode !== null, 60_000).catch(() => undefined);
  if (!d.out.includes(UP)) {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    throw new Error(`dev.js did not come up within 60 s:\n${d.out.slice(-6000)}`);
  }
  return d;
}

/** Live (not zombie) processes descending from `pid`, read from /proc. */
function descendants(pid: number): Array<{ pid: number; cmd: string }> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: Array<{ pid: number; cmd: string }> = [];
  const todo = [...(children.get(pid) ?? [])];
  while (todo.length > 0) {
    const c = todo.shift()!;
    out.push({ pid: c, cmd: cmdline(c) });
    todo.push(...(children.get(c) ?? []));
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Running: exists and is not a zombie (an exited child not yet reaped has exited all the same). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { host: 'localhost', ...headers }, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--data', dir], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`mezusphere ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Stops what a failed test left: the script's process group, then any descendant that escaped it. */
function kill(d: Dev | null, known: Array<{ pid: number }>): void {
  if (d === null) return;
  try {
    process.kill(-d.child.pid!, 'SIGKILL');
  } catch {
    // Already gone.
  }
  for (const p of known) if (running(p.pid)) process.kill(p.pid, 'SIGKILL');
}

/** Sends `signal` (to the group: Ctrl-C) and checks exit code 0 and that every process the stack started is gone. */
async function stopAndCheck(t: import('ava').ExecutionContext, d: Dev, procs: Array<{ pid: number; cmd: string }>, group: boolean): Promise<void> {
  process.kill(group ? -d.child.pid! : d.child.pid!, 'SIGINT');
  const r = await Promise.race([d.exit, new Promise<null>((res) => setTimeout(() => res(null), 60_000))]);
  t.not(r, null, `dev.js still running 60 s after SIGINT:\n${d.out.slice(-3000)}`);
  t.deepEqual(r, { code: 0, signal: null }, `dev.js exit after SIGINT${group ? ' to its group' : ''}:\n${d.out.slice(-3000)}`);
  await waitFor('every process of the stack gone', () => procs.every((p) => !running(p.pid)), 20_000).catch(() => undefined);
  t.deepEqual(procs.filter((p) => running(p.pid)).map((p) => `${p.pid} ${p.cmd}`), [], 'left running');
  t.deepEqual(descendants(d.child.pid!), []);
}

test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});

let sessionToken = '';
let firstPorts: Ports | null = null;

test.serial('npm start: prints the Console and its first-owner command, serves the demo, enrolls its Warpgate with a key, Ctrl-C stops every process with exit 0', async (t) => {
  const ports = await freePorts();
  firstPorts = ports;
  // The Warpgate starts 3 s late, as it can on a loaded machine (see the regression below).
  const dev = await startDev(ports, { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${SLOW_START}`.trim(), MEZU_TEST_WARPGATE_START_DELAY_MS: '3000' });
  let procs: Array<{ pid: number; cmd: string }> = [];
  t.teardown(() => kill(dev, procs));
  const consoleUrl = `http://localhost:${ports.console}`;

  // What it prints.
  t.true(dev.out.includes(`Console (users, routes, service accounts and keys, Warpgates, audit log`), dev.out);
  t.true(dev.out.includes(`\n  ${consoleUrl}\n`), `the Console URL ${consoleUrl}`);
  t.true(dev.out.includes(`node dist/src/cli/main.js console add-owner --email you@example.com --data ${dir} --console-url ${consoleUrl}`), 'the command that creates the first owner, for this data dir and Console');
  t.true(dev.out.includes(`http://localhost:${ports.port}/api/v1/hello`), 'the demo URL follows MEZU_PORT');

  // The whole chain (edge → tunnel → Warpgate → origin) on a public route, at once. Regression:
  // dev.js printed this after a fixed 1.5 s pause, before the enrolling Warpgate (whose first
  // certificate alone waits 1 s for the workers to load the new CA) had its tunnels, so on a
  // busy machine the printed curl commands got 502 MEZU_NO_WARPGATE; it now waits for every
  // worker's tunnel. The Warpgate's late start above makes the old behaviour fail every time.
  const health = await get(ports.port, '/health');
  t.is(health.status, 200, `already served when the stack says it is up: ${health.body}`);
  t.is(JSON.parse(health.body).path, '/health', 'answered by the demo origin');

  // Protected, no session: a browser is sent to the hosted login, an API client gets 401 JSON.
  const browser = await get(ports.port, '/api/v1/hello', { accept: 'text/html' });
  t.is(browser.status, 302);
  t.is(browser.headers.location, '/_mezu/login?rd=%2Fapi%2Fv1%2Fhello');
  const api = await get(ports.port, '/api/v1/hello');
  t.is(api.status, 401);
  t.regex(String(api.headers['content-type']), /^application\/json/);
  const err = JSON.parse(api.body).error as { code: string; login_url: string };
  t.is(err.code, 'MEZU_LOGIN_REQUIRED');
  t.is(err.login_url, '/_mezu/login?rd=%2Fapi%2Fv1%2Fhello');

  // Signup is open in the demo (examples/demo.yaml: login.signup: open).
  const signup = await get(ports.port, '/_mezu/signup', { accept: 'text/html' });
  t.is(signup.status, 200);
  t.regex(signup.body, /<form method="post"/);

  // The Warpgate enrolled with the demo's service-account key (not static certificates).
  const keyFile = join(dir, 'warpgate-demo.key');
  t.true(existsSync(keyFile));
  const keyId = readFileSync(keyFile, 'utf8').trim().slice(4, 20);
  t.regex(dev.out, new RegExp(`warpgate \\| \\[warpgate\\] warpgate: enrolled as \\S+ for project demo \\(pool demo, key mzk_${keyId}\\)`));
  procs = descendants(dev.child.pid!);
  const wg = procs.filter((p) => p.cmd.includes('dist/warpgate/main.js'));
  t.is(wg.length, 1, procs.map((p) => p.cmd).join('\n'));
  t.true(wg[0]!.cmd.includes(`--key-file ${keyFile}`) && wg[0]!.cmd.includes(`--edge ${consoleUrl}`), wg[0]!.cmd);
  t.false(/--pki-dir|--cert |--ca /.test(wg[0]!.cmd), 'no static certificates');

  // The demo origin echoes the identity of a session made with the CLI on the same data dir.
  cli('users', 'add', '--project', 'demo', '--email', 'dev-test@example.com', '--name', 'Dev Test', '--roles', 'tester');
  sessionToken = cli('sessions', 'create', '--project', 'demo', '--email', 'dev-test@example.com');
  const me = await get(ports.port, '/api/v1/hello', { cookie: `mezu_session=${sessionToken}`, 'x-mezu-user-email': 'forged@example.com' });
  t.is(me.status, 200, me.body);
  const id = JSON.parse(me.body).identity as Record<string, string>;
  t.is(id['x-mezu-user-email'], 'dev-test@example.com');
  t.is(id['x-mezu-user-name'], 'Dev Test');
  t.is(id['x-mezu-principal-type'], 'user');
  t.is(id['x-mezu-roles'], 'tester');
  t.regex(id['x-mezu-user-id'] ?? '', /^usr_/);
  t.regex(id['x-mezu-assertion'] ?? '', /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  t.true(dev.out.includes(`http://localhost:${ports.port}/api/v1/live`), 'the live page is printed');

  // A WebSocket through the whole chain, the enrolled Warpgate included (extended CONNECT).
  const ws = new WebSocket(`ws://127.0.0.1:${ports.port}/api/v1/ws`, { headers: { host: 'localhost', cookie: `mezu_session=${sessionToken}` } });
  const whoami = await new Promise<Record<string, string>>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no WebSocket answer in 15 s (readyState ${ws.readyState}); the stack said:\n${dev.out.slice(-3000)}`)), 15_000);
    ws.once('close', () => clearTimeout(timer));
    ws.once('message', () => clearTimeout(timer));
    ws.once('open', () => ws.send('whoami'));
    ws.once('message', (m: Buffer) => ok((JSON.parse(m.toString()) as { whoami: Record<string, string> }).whoami));
    ws.once('error', fail);
    ws.once('unexpected-response', (_q, r: { statusCode?: number }) => fail(new Error(`handshake answered ${r.statusCode}`)));
  });
  ws.close(1000);
  t.is(whoami['x-mezu-user-email'], 'dev-test@example.com');

  // Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
  procs = descendants(dev.child.pid!);
  for (const what of ['dist/scripts/demo-origin.js', 'dist/src/cli/main.js edge', 'dist/warpgate/main.js']) t.true(procs.some((p) => p.cmd.includes(what)), `${what} among ${procs.map((p) => p.cmd).join('; ')}`);
  t.true(procs.filter((p) => p.cmd.includes('dist/src/cli/main.js edge')).length >= 3, 'the edge primary, its workers and its Console');
  await stopAndCheck(t, dev, procs, true);
});

test.serial('a second start on the same data directory: nothing re-created, sessions kept; SIGINT to the script alone stops everything', async (t) => {
  t.truthy(firstPorts, 'runs after the first start');
  t.not(sessionToken, '', 'the first start got as far as creating a session');
  // The same ports: what a developer does after Ctrl-C.
  const ports = firstPorts!;
  const dev = await startDev(ports);
  let procs: Array<{ pid: number; cmd: string }> = descendants(dev.child.pid!);
  t.teardown(() => kill(dev, procs));
  t.false(dev.out.includes('applied examples/demo.yaml'), 'the demo config is not applied again');
  t.false(dev.out.includes('created key'), 'the Warpgate key is reused');
  t.true(dev.out.includes(`console add-owner --email you@example.com --data ${dir}`), 'still no owner');
  const h = await get(ports.port, '/health');
  t.is(h.status, 200, h.body);
  const me = await get(ports.port, '/api/v1/hello', { cookie: `mezu_session=${sessionToken}` });
  t.is(me.status, 200, 'a session from the first run still works');
  t.is(JSON.parse(me.body).identity['x-mezu-user-email'], 'dev-test@example.com');
  t.is(JSON.parse(cli('users', 'list', '--project', 'demo', '--json')).length, 3, 'the demo users are not duplicated (ada, val, and the test user)');
  procs = descendants(dev.child.pid!);
  await stopAndCheck(t, dev, procs, false);
});
