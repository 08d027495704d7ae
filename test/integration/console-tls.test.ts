/**
 * The Console's own HTTPS listener (`console --tls-cert F --tls-key F`): a
 * Warpgate sends its enrollment key to the Console, so the key must not cross
 * the network in clear. Real processes: an edge, a Console on TLS with the dev
 * CA's server certificate, and enrolling Warpgates that pin (or do not pin)
 * that CA.
 */
import test from 'ava';
import * as https from 'node:https';
import * as http from 'node:http';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Stack, stopProc, waitFor, type Proc } from './harness.js';
import { isLoopbackUrl } from '../../warpgate/main.js';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');

const stack = new Stack(1);
const procs: Proc[] = [];
let consolePort = 0;
let consoleUrl = '';
let pki = '';

function launch(file: string, args: string[]): Proc {
  const child: ChildProcess = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  procs.push(p);
  return p;
}

function get(path: string, ca: string | null): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((done, fail) => {
    const req = https.request({ host: '127.0.0.1', port: consolePort, path, servername: 'localhost', headers: { host: `localhost:${consolePort}` }, ...(ca === null ? {} : { ca }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function enrollKey(): string {
  const sa = stack.cli('service-accounts', 'add', '--project', 'demo', '--name', `gate-${procs.length}`, '--permissions', 'warpgates:enroll', '--json');
  if (sa.status !== 0) throw new Error(sa.stderr);
  const k = stack.cli('keys', 'create', '--service-account', (JSON.parse(sa.stdout) as { id: string }).id, '--json');
  if (k.status !== 0) throw new Error(k.stderr);
  return (JSON.parse(k.stdout) as { key: string }).key;
}

test.before(async () => {
  await stack.start();
  await stopProc(stack.warpgate);
  stack.warpgate = null;
  pki = join(stack.dir, 'pki');
  const con = launch(CLI, ['console', '--data', stack.dir, '--host', '127.0.0.1', '--port', '0', '--tunnel-endpoint', `127.0.0.1:${stack.tunnelPort}`, '--tls-cert', join(pki, 'edge-tunnel.pem'), '--tls-key', join(pki, 'edge-tunnel-key.pem')]);
  await waitFor('console ready', () => con.out.includes('"event":"ready"') || con.child.exitCode !== null);
  if (con.child.exitCode !== null) throw new Error(`console failed: ${con.err}`);
  const line = JSON.parse(con.out.split('\n').find((l) => l.startsWith('{"event":"ready"'))!) as { port: number; url: string };
  consolePort = line.port;
  consoleUrl = line.url;
});
test.after.always(async () => {
  for (const p of procs) await stopProc(p);
  await stack.stop();
});

test.serial('the Console serves HTTPS with the given certificate; its public URL and cookies follow (https, __Host-, Secure)', async (t) => {
  t.is(consoleUrl, `https://localhost:${consolePort}`);
  const ca = readFileSync(join(pki, 'ca.pem'), 'utf8');
  const api = await get('/api/v1/me', ca);
  t.is(api.status, 401);
  t.is((JSON.parse(api.body) as { error: { code: string } }).error.code, 'MEZU_CONSOLE_AUTH_REQUIRED');
  const page = await get('/_mezu/login', ca);
  t.is(page.status, 200);
  const cookies = ([] as string[]).concat(page.headers['set-cookie'] ?? []);
  t.true(cookies.length > 0, 'the login form sets its CSRF cookie');
  for (const c of cookies) {
    t.regex(c, /^__Host-/, c);
    t.regex(c, /;\s*Secure/i, c);
  }
  // Without the CA the certificate is not trusted (it is the dev CA's).
  await t.throwsAsync(get('/api/v1/me', null), { message: /self[- ]signed|unable to verify|certificate/i });
});

test.serial('plain HTTP on the TLS port gets no HTTP answer', async (t) => {
  const status = await new Promise<number | string>((done) => {
    const req = http.request({ host: '127.0.0.1', port: consolePort, path: '/api/v1/me' }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', (err) => done(err.message));
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
  t.is(typeof status, 'string', `answered ${status}`);
});

test.serial('a Warpgate enrolls over HTTPS when it pins the CA (--edge-ca), and serves traffic', async (t) => {
  stack.markEdgeLog();
  const wg = launch(WARPGATE, ['--edge', `https://localhost:${consolePort}`, '--edge-ca', join(pki, 'ca.pem'), '--key', enrollKey(), '--origin', `http://127.0.0.1:${stack.originPort}`]);
  await waitFor('tunnel registered', () => stack.tunnelsRegistered() >= 1 || wg.child.exitCode !== null, 20_000);
  t.is(wg.child.exitCode, null, wg.err);
  t.regex(wg.err, /enrolled as [0-9a-f]{16} for project demo/);
  t.is((await stack.request('/health')).status, 200);
  await stopProc(wg);
});

test.serial('a Warpgate that does not trust the Console\'s certificate does not enroll: it says why and retries', async (t) => {
  const wg = launch(WARPGATE, ['--edge', `https://localhost:${consolePort}`, '--key', enrollKey(), '--origin', `http://127.0.0.1:${stack.originPort}`]);
  await waitFor('two failed attempts', () => (wg.err.match(/enroll/gi) ?? []).length >= 2 || wg.child.exitCode !== null, 20_000);
  t.is(wg.child.exitCode, null, 'it keeps retrying');
  t.log(wg.err.trim().split('\n').slice(0, 2).join('\n'));
  t.regex(wg.err, /self[- ]signed|unable to verify|certificate/i);
  t.notRegex(wg.err, /enrolled as/);
  t.notRegex(wg.err, /mzk_[A-Za-z0-9_-]{20,}/, 'the key secret is not logged');
  await stopProc(wg);
});

test('bad --tls-cert/--tls-key: one clear line, non-zero exit, nothing listening', (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'console', '--data', stack.dir, '--port', '0', ...args], { encoding: 'utf8', timeout: 20_000 });
  const only = run('--tls-cert', join(pki, 'edge-tunnel.pem'));
  t.not(only.status, 0);
  t.regex(only.stderr, /--tls-cert and --tls-key go together/);
  const mismatch = run('--tls-cert', join(pki, 'ca.pem'), '--tls-key', join(pki, 'edge-tunnel-key.pem'));
  t.not(mismatch.status, 0);
  t.regex(mismatch.stderr, /is not the key of the certificate/);
  const missing = run('--tls-cert', join(pki, 'nope.pem'), '--tls-key', join(pki, 'edge-tunnel-key.pem'));
  t.not(missing.status, 0);
  t.regex(missing.stderr, /--tls-cert .*nope\.pem: not a readable PEM certificate/);
  const notKey = run('--tls-cert', join(pki, 'edge-tunnel.pem'), '--tls-key', join(pki, 'edge-tunnel.pem'));
  t.not(notKey.status, 0);
  t.regex(notKey.stderr, /--tls-key .*: not a readable PEM private key/);
});

test('a Warpgate refuses to send its key over plain http to another host (--allow-http-console overrides; not dialled here: TEST-NET is off loopback)', (t) => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): the refusal comes before any dial, so nothing leaves loopback.
  const run = (...args: string[]) => spawnSync(process.execPath, [WARPGATE, '--key', `mzk_${'a'.repeat(16)}_${'b'.repeat(43)}`, '--origin', 'http://127.0.0.1:1', ...args], { encoding: 'utf8', timeout: 20_000 });
  const r = run('--edge', 'http://192.0.2.1:8081');
  t.is(r.status, 2);
  t.regex(r.stderr, /plain http to another host: the key would cross the network in clear/);
  t.notRegex(r.stderr, /b{43}/, 'the secret is not echoed');
  for (const loop of ['http://localhost:1', 'http://127.0.0.2:1', 'http://[::1]:1']) {
    t.true(isLoopbackUrl(loop), loop);
  }
  for (const remote of ['http://192.0.2.1:8081', 'http://localhost.evil.example:1', 'http://128.0.0.1:1', 'http://[::2]:1']) {
    t.false(isLoopbackUrl(remote), remote);
  }
});
