/**
 * Interop with the nghttp2 command-line tools (Debian's nghttp2-client): our
 * server role answers `nghttp` and sustains an `h2load` run; our client role
 * talks to `nghttpd`. Skipped, loudly, when the tools are not installed
 * (.ci/run installs them).
 */
import test from 'ava';
import * as net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { H2Connection, type ClientStreamSink } from '../../../../wire/h2/connection.js';

const have = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** Runs a tool asynchronously (the server under test lives in this process: spawnSync would block it). */
function run(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
    c.stdin.end(input ?? '');
  });
}
const haveNghttp = have('nghttp') && have('h2load');
const maybe = haveNghttp ? test : test.skip;
if (!haveNghttp) console.warn('nghttp2 interop tests skipped: install Debian nghttp2-client');

async function leanServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const conns: H2Connection[] = [];
  const server = net.createServer((sock) => {
    const c = new H2Connection(sock, 'server', { pingIntervalMs: 0 });
    conns.push(c);
    c.onStream = (s, headers, endStream) => {
      const path = headers[headers.indexOf(':path') + 1]!;
      let got = 0;
      const answer = () => {
        s.respond([':status', '200', 'content-type', 'application/json', 'x-path', path], false);
        s.end(Buffer.from(JSON.stringify({ path, got })));
      };
      if (endStream) return answer();
      s.reqSink = { onData: (b) => (got += b.length), onEnd: answer, onReset: () => undefined };
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy('test done');
        server.close(() => r());
      }),
  };
}

maybe('nghttp (client) ↔ lean server: GET and POST with a body', async (t) => {
  const srv = await leanServer();
  t.teardown(srv.close);
  const get = await run('nghttp', ['-v', `http://127.0.0.1:${srv.port}/hello?x=1`]);
  t.is(get.status, 0, get.stderr);
  t.regex(get.stdout, /"path":"\/hello\?x=1"/);
  t.regex(get.stdout, /x-path: \/hello\?x=1/);
  const post = await run('nghttp', ['-d', '-', `http://127.0.0.1:${srv.port}/up`], 'x'.repeat(100_000));
  t.is(post.status, 0, post.stderr);
  t.regex(post.stdout, /"got":100000/);
});

maybe('h2load (client) ↔ lean server: 20 000 requests on 4 connections × 32 streams, all 2xx', async (t) => {
  const srv = await leanServer();
  t.teardown(srv.close);
  const r = await run('h2load', ['-n', '20000', '-c', '4', '-m', '32', `http://127.0.0.1:${srv.port}/load`], undefined, 60_000);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored/);
  t.regex(r.stdout, /status codes: 20000 2xx/);
});

const maybeServer = have('nghttpd') ? test : test.skip;
if (!have('nghttpd')) console.warn('nghttpd interop test skipped: install Debian nghttp2-server');

maybeServer('lean client ↔ nghttpd (server)', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const d = spawn('nghttpd', ['--no-tls', '-d', '/usr/share/doc', String(port)], { stdio: 'ignore' });
  t.teardown(() => d.kill('SIGKILL'));
  let sock: net.Socket | null = null;
  for (let i = 0; i < 50 && sock === null; i++) {
    sock = await new Promise<net.Socket | null>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(null));
    });
    if (sock === null) await new Promise((r) => setTimeout(r, 50));
  }
  t.truthy(sock, 'nghttpd started');
  const c = new H2Connection(sock!, 'client', { pingIntervalMs: 0 });
  t.teardown(() => c.destroy('test done'));
  const got = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    let status = 0;
    let bytes = 0;
    const sink: ClientStreamSink = {
      onHead: (s) => (status = s),
      onData: (b) => (bytes += b.length),
      onEnd: () => resolve({ status, bytes }),
      onError: (e) => reject(new Error(e)),
      onRefused: () => reject(new Error('refused')),
      onLost: () => reject(new Error('lost')),
    };
    c.request([':method', 'GET', ':scheme', 'http', ':authority', `127.0.0.1:${port}`, ':path', '/nghttp2-client/copyright'], true, sink);
  });
  t.is(got.status, 200);
  t.true(got.bytes > 100);
});
