/**
 * Fail closed: a fault while a request is decided denies it (503, or 403),
 * never forwards it. Faults are injected into the real request path
 * (src/front/handler.ts createFront, src/front/request.ts EdgeRequest)
 * running over a real LMDB store, signer, authenticator and assertions, with
 * uWS's request and response replaced by recording doubles and a tunnel pool
 * whose connection records every stream it is asked to open (the head the
 * request writes into its HPACK encoder, decoded as the Warpgate would):
 * an exception in policy evaluation, LMDB read errors, a missing signing key,
 * a fault while the forwarded head is built. The missing signing key is also
 * injected into a running edge (its keys deleted from the store).
 *
 * Story: auth proxies have failed open on exactly these (an error path that
 * fell through to "allow", a parse error treated as "no rule"). Pomerium and
 * oauth2-proxy answer an internal error with a denial; so does the edge.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createFront, type FrontContext } from '../../src/front/index.js';
import { compileConfig, parseConfigYaml } from '../../src/config/index.js';
import type { CompiledConfig, CompiledProject, Policy } from '../../src/config/types.js';
import { openStore, type Store } from '../../src/store/index.js';
import { Assertions, Signer } from '../../src/identity/index.js';
import { Authenticator } from '../../src/session/index.js';
import { PoolRegistry, type TunnelConnection, type TunnelRequest } from '../../src/tunnel/index.js';
import { HpackDecoder, HpackEncoder, type H2Stream } from '../../wire/index.js';
import type { HttpRequest, HttpResponse } from '../../native/uws.js';
import { Stack } from '../integration/harness.js';

const CLI = join(resolve(__dirname, '../../..'), 'dist/src/cli/main.js');

const YAML = `
projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /public/*, auth: public }
      - { path: /admin/*, auth: required, roles: [admin] }
`;

/** Records what the handler wrote; the subset of uWS's HttpResponse the edge uses. */
class FakeResponse {
  status = '';
  headers: [string, string][] = [];
  body = '';
  ended = false;
  closeRequested = false;
  aborted: (() => void) | null = null;
  /** The handler threw instead of answering. */
  threw: Error | null = null;
  /** The edge writes its fields after the status text in the same string (`\r\nname: value` lines), as uWS lets it. */
  writeStatus(s: string) {
    const [status, ...lines] = s.split('\r\n');
    this.status = status!;
    for (const l of lines) {
      const c = l.indexOf(': ');
      this.headers.push([l.slice(0, c), l.slice(c + 2)]);
    }
    return this;
  }
  writeHeader(k: string, v: string) {
    this.headers.push([k, v]);
    return this;
  }
  end(body = '', close = false) {
    this.body += body;
    this.ended = true;
    this.closeRequested = close;
    return this;
  }
  endWithoutBody() {
    this.ended = true;
    return this;
  }
  tryEnd(chunk: string) {
    this.body += chunk;
    this.ended = true;
    return [true, true];
  }
  write(chunk: string) {
    this.body += chunk;
    return true;
  }
  cork(cb: () => void) {
    cb();
    return this;
  }
  onAborted(cb: () => void) {
    this.aborted = cb;
    return this;
  }
  onData() {
    return this;
  }
  onWritable() {
    return this;
  }
  getWriteOffset() {
    return 0;
  }
  getRemoteAddress() {
    return new Uint8Array([127, 0, 0, 1]).buffer;
  }
  getRemoteAddressAsText() {
    return new TextEncoder().encode('127.0.0.1').buffer;
  }
  close() {
    this.ended = true;
    return this;
  }
  pause() {}
  resume() {}
  code(): string {
    return /"code":"(MEZU_[A-Z_]+)"/.exec(this.body)?.[1] ?? '';
  }
}

function fakeRequest(method: string, url: string, headers: [string, string][]): HttpRequest {
  const all: [string, string][] = [['host', 'localhost'], ...headers];
  return {
    getCaseSensitiveMethod: () => method,
    getMethod: () => method.toLowerCase(),
    getUrl: () => url,
    getQuery: () => '',
    getHeader: (k: string) => all.find(([n]) => n === k)?.[1] ?? '',
    forEach: (cb: (k: string, v: string) => void) => {
      for (const [k, v] of all) cb(k, v);
    },
    getParameter: () => '',
    setYield: () => undefined,
  } as unknown as HttpRequest;
}

/** What the request path calls on its stream; does nothing. */
const NOOP_STREAM = { write: () => true, onDrain: () => undefined, end: () => undefined, abort: () => undefined, pause: () => undefined, resume: () => undefined } as unknown as H2Stream;

/**
 * A tunnel connection that records every stream it is asked to open and answers 200. The head is
 * what the request writes into the connection's HPACK encoder (as TunnelConnection.open has
 * H2Connection do), decoded as the Warpgate would: a flat [name, value, …] list.
 */
class RecordingConnection implements TunnelConnection {
  readonly id = 'c1';
  readonly pool = 'demo';
  outstanding = 0;
  ready = true;
  extendedConnect = false;
  opened: string[][] = [];
  private readonly enc = new HpackEncoder();
  private readonly dec = new HpackDecoder();
  open(r: TunnelRequest): boolean {
    this.enc.begin();
    r.encodeHead(this.enc);
    const d = this.dec.decode(Buffer.from(this.enc.view()));
    if (!d.ok) throw new Error(`the forwarded head does not decode: ${d.reason}`);
    this.opened.push(d.headers);
    r.conn = this;
    r.stream = NOOP_STREAM;
    queueMicrotask(() => {
      r.onHead(200, ['content-length', '2']);
      r.onData(Buffer.from('ok'));
      r.onEnd();
    });
    return true;
  }
  flush(): void {}
  close(): void {}
}

interface Env {
  dir: string;
  store: Store;
  signer: Signer;
  cfg: CompiledConfig;
  conn: RecordingConnection;
  pools: PoolRegistry;
  logs: string[];
  ctx: FrontContext;
  token: string;
  key: string;
}

function cli(dir: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--data', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

async function env(t: import('ava').ExecutionContext): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-failclosed-'));
  writeFileSync(join(dir, 'c.yaml'), YAML);
  cli(dir, 'apply', '-f', join(dir, 'c.yaml'));
  cli(dir, 'users', 'add', '--project', 'demo', '--email', 'ada@example.com', '--roles', 'admin');
  const token = cli(dir, 'sessions', 'create', '--project', 'demo', '--email', 'ada@example.com');
  const sa = JSON.parse(cli(dir, 'service-accounts', 'add', '--project', 'demo', '--name', 'ci', '--json')) as { id: string };
  const key = cli(dir, 'keys', 'create', '--service-account', sa.id);
  const store = openStore(dir);
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, 'http://localhost');
  signer.reload();
  const parsed = parseConfigYaml(YAML);
  if (!parsed.ok) throw new Error('config');
  const cfg = compileConfig(parsed.config, 1);
  const conn = new RecordingConnection();
  const pools = new PoolRegistry();
  pools.add(conn);
  const logs: string[] = [];
  const ctx: FrontContext = {
    config: () => cfg,
    auth: new Authenticator(store),
    assertions: new Assertions(store, signer),
    signer,
    scope: { pools, scheme: 'http', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live: null, log: (m) => logs.push(m) },
    cookieName: 'mezu_session',
    deviceCookieName: 'mezu_device',
    draining: { on: false },
    pages: null,
    log: (m) => logs.push(m),
  };
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store, signer, cfg, conn, pools, logs, ctx, token, key };
}

async function run(ctx: FrontContext, method: string, url: string, headers: [string, string][] = []): Promise<FakeResponse> {
  const res = new FakeResponse();
  try {
    createFront(ctx)(res as unknown as HttpResponse, fakeRequest(method, url, headers));
  } catch (err) {
    // A uWS handler must never throw (the fault would escape the fail-closed answer): recorded and asserted on.
    res.threw = err as Error;
  }
  // Let microtasks and one turn run (forwarded answers, answers that close one turn later).
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return res;
}

const withSession = (e: Env): [string, string][] => [['cookie', `mezu_session=${e.token}`]];

test('the doubles are faithful: a valid session on a protected route is forwarded once, a public route too', async (t) => {
  const e = await env(t);
  const r = await run(e.ctx, 'GET', '/admin/x', withSession(e));
  t.is(r.status, '200 OK');
  t.is(e.conn.opened.length, 1);
  t.true(e.conn.opened[0]!.includes('x-mezu-assertion'));
  t.is(e.conn.opened[0]![e.conn.opened[0]!.indexOf(':path') + 1], '/admin/x');
  t.is((await run(e.ctx, 'GET', '/public/x')).status, '200 OK');
  t.is(e.conn.opened.length, 2);
});

test('an exception in policy evaluation (rule matching or authorization) denies with 503; nothing is forwarded', async (t) => {
  const e = await env(t);
  const project = e.cfg.hosts.get('localhost')!;
  // Rule matching throws.
  const throwingMatch = Object.create(project, { match: { value: () => { throw new Error('trie corrupted'); } } }) as CompiledProject;
  const cfg1 = { ...e.cfg, hosts: new Map([['localhost', throwingMatch]]) } as unknown as CompiledConfig;
  const r1 = await run({ ...e.ctx, config: () => cfg1 }, 'GET', '/admin/x', withSession(e));
  t.is(r1.status, '503 Service Unavailable');
  t.is(r1.code(), 'MEZU_INTERNAL');
  // Authorization throws: a policy whose role list cannot be read.
  const evil = Object.defineProperty({ ...project.match('GET', '/admin/x') }, 'roles', { get() { throw new Error('policy evaluation failed'); } }) as Policy;
  const throwingPolicy = Object.create(project, { match: { value: () => evil } }) as CompiledProject;
  const cfg2 = { ...e.cfg, hosts: new Map([['localhost', throwingPolicy]]) } as unknown as CompiledConfig;
  const r2 = await run({ ...e.ctx, config: () => cfg2 }, 'GET', '/admin/x', withSession(e));
  t.is(r2.status, '503 Service Unavailable');
  t.is(r2.code(), 'MEZU_INTERNAL');
  // The config accessor itself throws.
  const r3 = await run({ ...e.ctx, config: () => { throw new Error('snapshot unavailable'); } }, 'GET', '/public/x');
  t.is(r3.status, '503 Service Unavailable');
  t.is(e.conn.opened.length, 0, 'nothing forwarded');
  t.true(e.logs.some((l) => /denied on an internal error .*trie corrupted/.test(l)));
  t.true(e.logs.some((l) => /policy evaluation failed/.test(l)));
});

test('LMDB read errors (session, user, API key) deny with 503; nothing is forwarded', async (t) => {
  const e = await env(t);
  const fail = (what: string) => () => {
    throw Object.assign(new Error(`MDB_CORRUPTED: ${what}`), { code: 'MDB_CORRUPTED' });
  };
  // The request path reads through the stores' getForRequest readers (read every call, decode skipped when unchanged).
  const sessions = e.store.sessions as unknown as { getForRequest: unknown };
  const users = e.store.users as unknown as { getForRequest: unknown };
  const keys = e.store.serviceAccounts as unknown as { getKeyForRequest: unknown };
  const saved = { s: sessions.getForRequest, u: users.getForRequest, k: keys.getKeyForRequest };
  sessions.getForRequest = fail('sessions');
  const r1 = await run(e.ctx, 'GET', '/admin/x', withSession(e));
  sessions.getForRequest = saved.s;
  users.getForRequest = fail('users');
  const r2 = await run(e.ctx, 'GET', '/admin/x', withSession(e));
  users.getForRequest = saved.u;
  keys.getKeyForRequest = fail('apiKeys');
  const r3 = await run(e.ctx, 'GET', '/admin/x', [['authorization', `Bearer ${e.key}`]]);
  keys.getKeyForRequest = saved.k;
  for (const r of [r1, r2, r3]) {
    t.is(r.status, '503 Service Unavailable');
    t.is(r.code(), 'MEZU_INTERNAL');
  }
  t.is(e.conn.opened.length, 0, 'nothing forwarded');
  t.true(e.logs.some((l) => /MDB_CORRUPTED/.test(l)));
  // Healthy again: served.
  t.is((await run(e.ctx, 'GET', '/admin/x', withSession(e))).status, '200 OK');
});

test('a missing signing key denies with 503 MEZU_SIGNING_KEY_MISSING; nothing is forwarded', async (t) => {
  const e = await env(t);
  for (const k of e.store.signingKeys.all()) await e.store.signingKeys.remove(k.kid);
  e.signer.reload();
  t.is(e.signer.activeKid, null);
  const r = await run(e.ctx, 'GET', '/admin/x', withSession(e));
  t.is(r.status, '503 Service Unavailable');
  t.is(r.code(), 'MEZU_SIGNING_KEY_MISSING');
  t.is(e.conn.opened.length, 0);
  // Public routes carry no assertion and still work.
  t.is((await run(e.ctx, 'GET', '/public/x')).status, '200 OK');
});

test('a fault while the forwarded head is built or the stream opened denies with 503; nothing is forwarded', async (t) => {
  const e = await env(t);
  const pools = { pick: () => { throw new Error('pool registry broken'); } } as unknown as PoolRegistry;
  const r1 = await run({ ...e.ctx, scope: { ...e.ctx.scope, pools } }, 'GET', '/admin/x', withSession(e));
  t.is(r1.threw, null, 'the handler answers instead of throwing');
  t.is(r1.status, '503 Service Unavailable');
  t.true(r1.closeRequested, 'the connection is closed with the answer');
  const broken = new RecordingConnection();
  broken.open = () => {
    throw new Error('tunnel codec fault');
  };
  const pools2 = new PoolRegistry();
  pools2.add(broken);
  const r2 = await run({ ...e.ctx, scope: { ...e.ctx.scope, pools: pools2 } }, 'GET', '/admin/x', withSession(e));
  t.is(r2.threw, null);
  t.is(r2.status, '503 Service Unavailable');
  t.is(r2.code(), 'MEZU_INTERNAL');
  t.is(e.conn.opened.length, 0);
  t.true(e.logs.some((l) => /tunnel codec fault/.test(l)));
});

test('a running edge whose signing keys are deleted: protected requests 503, nothing forwarded; a new key restores service', async (t) => {
  const stack = new Stack(2);
  t.teardown(() => stack.stop());
  await stack.start();
  stack.addUser('ada@example.com');
  const token = stack.session('ada@example.com');
  const get = () => stack.request('/api/v1/x', { headers: { cookie: `mezu_session=${token}` } });
  t.is((await get()).status, 200);
  const store = openStore(stack.dir);
  try {
    for (const k of store.signingKeys.all()) await store.signingKeys.remove(k.kid);
  } finally {
    await store.close();
  }
  // Workers re-read keys every --config-poll-ms (100 ms in tests).
  await new Promise((r) => setTimeout(r, 600));
  await stack.clearOrigin();
  for (let i = 0; i < 6; i++) {
    const r = await get();
    t.is(r.status, 503);
    t.is((JSON.parse(r.body) as { error: { code: string } }).error.code, 'MEZU_SIGNING_KEY_MISSING');
  }
  t.is((await stack.request('/health')).status, 200, 'public routes need no key');
  t.deepEqual((await stack.originSeen()).map((s) => s.path), ['/health'], 'no protected request was forwarded');
  t.is(stack.cli('signing-keys', 'rotate').status, 0);
  let ok = 0;
  for (let i = 0; i < 50 && ok < 6; i++) {
    if ((await get()).status === 200) ok++;
    else await new Promise((r) => setTimeout(r, 100));
  }
  t.is(ok, 6, 'served again with the new key');
});
