#!/usr/bin/env node
/**
 * What the edge's hardening costs per request, measured in-process (not a
 * test; `node dist/test/security/cost.js [--iterations N]`):
 *   - each new check alone: framing inspection, the client-routing-header
 *     filter, path normalization with its match key, query check;
 *   - the whole request path (src/front/handler.ts createFront, with
 *     src/front/request.ts EdgeRequest) for a protected GET with a valid
 *     session (LMDB lookup, authorization, assertion reuse, the forwarded head
 *     encoded into an HPACK encoder as the tunnel does, stream open) and for
 *     a public GET, against doubles of uWS and the tunnel.
 * Reported: ns per operation, median of 7 rounds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createFront, inspectFraming, type FrontContext } from '../../src/front/index.js';
import { compileConfig, parseConfigYaml } from '../../src/config/index.js';
import { openStore } from '../../src/store/index.js';
import { Assertions, Signer, isClientRoutingHeader } from '../../src/identity/index.js';
import { Authenticator } from '../../src/session/index.js';
import { PoolRegistry, type TunnelConnection, type TunnelRequest } from '../../src/tunnel/index.js';
import { HpackEncoder, type H2Stream } from '../../wire/index.js';
import { normalizePath } from '../../src/route/index.js';
import type { HttpRequest, HttpResponse } from '../../native/uws.js';

const CLI = join(resolve(__dirname, '../../..'), 'dist/src/cli/main.js');
const YAML = `
projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /public/*, auth: public }
      - { path: /api/v1/*, auth: required }
`;

/** A typical browser request head (Chrome, 13 fields). */
function browserHeaders(cookie: string): [string, string][] {
  return [
    ['host', 'localhost'],
    ['connection', 'keep-alive'],
    ['sec-ch-ua', '"Chromium";v="124", "Not-A.Brand";v="99"'],
    ['sec-ch-ua-mobile', '?0'],
    ['sec-ch-ua-platform', '"Linux"'],
    ['upgrade-insecure-requests', '1'],
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'],
    ['accept', 'application/json, text/plain, */*'],
    ['sec-fetch-site', 'same-origin'],
    ['sec-fetch-mode', 'cors'],
    ['accept-encoding', 'gzip, deflate, br'],
    ['accept-language', 'en-US,en;q=0.9'],
    ['cookie', `_ga=GA1.1.1234567890.1700000000; theme=dark; mezu_session=${cookie}`],
  ];
}

const NOOP_STREAM = { write: () => true, onDrain: () => undefined, end: () => undefined, abort: () => undefined, pause: () => undefined, resume: () => undefined } as unknown as H2Stream;
/** Encodes each request's head into an HPACK encoder (what H2Connection.request does), sends nothing, never answers. */
class NullConnection implements TunnelConnection {
  readonly id = 'c';
  readonly pool = 'demo';
  readonly outstanding = 0;
  readonly ready = true;
  readonly extendedConnect = false;
  opened = 0;
  private readonly enc = new HpackEncoder(4096, { huffman: false });
  open(r: TunnelRequest): boolean {
    this.opened++;
    this.enc.begin();
    r.encodeHead(this.enc);
    this.enc.view();
    r.conn = this;
    r.stream = NOOP_STREAM;
    return true;
  }
  flush(): void {}
  close(): void {}
}

const ADDRESS = new TextEncoder().encode('127.0.0.1').buffer;
const ADDRESS_BINARY = new Uint8Array([127, 0, 0, 1]).buffer;
/** The methods the handler calls on a uWS response, doing nothing. */
const res = {
  writeStatus() { return res; },
  writeHeader() { return res; },
  end() { return res; },
  endWithoutBody() { return res; },
  cork(cb: () => void) { cb(); return res; },
  onAborted() { return res; },
  onData() { return res; },
  getRemoteAddress() { return ADDRESS_BINARY; },
  getRemoteAddressAsText() { return ADDRESS; },
} as unknown as HttpResponse;

function request(method: string, url: string, headers: [string, string][]): HttpRequest {
  return {
    getCaseSensitiveMethod: () => method,
    getUrl: () => url,
    getQuery: () => '',
    getHeader: (k: string) => (k === 'host' ? 'localhost' : ''),
    forEach: (cb: (k: string, v: string) => void) => {
      for (let i = 0; i < headers.length; i++) cb(headers[i]![0], headers[i]![1]);
    },
  } as unknown as HttpRequest;
}

function measure(name: string, iterations: number, fn: () => void): void {
  const rounds: number[] = [];
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(); // warm up
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  rounds.sort((a, b) => a - b);
  process.stdout.write(`${name.padEnd(58)} ${rounds[3]!.toFixed(0).padStart(7)} ns/op\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string' } } });
  const n = Number(values.iterations ?? '200000');
  const dir = mkdtempSync(join(tmpdir(), 'mezu-cost-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), YAML);
    const cli = (...a: string[]) => spawnSync(process.execPath, [CLI, ...a, '--data', dir], { encoding: 'utf8' }).stdout.trim();
    cli('apply', '-f', join(dir, 'c.yaml'));
    cli('users', 'add', '--project', 'demo', '--email', 'ada@example.com');
    const token = cli('sessions', 'create', '--project', 'demo', '--email', 'ada@example.com');
    const store = openStore(dir);
    await Signer.ensureKey(store.signingKeys);
    const signer = new Signer(store.signingKeys, 'http://localhost');
    signer.reload();
    const parsed = parseConfigYaml(YAML);
    if (!parsed.ok) throw new Error('config');
    const cfg = compileConfig(parsed.config, 1);
    const conn = new NullConnection();
    const pools = new PoolRegistry();
    pools.add(conn);
    const ctx: FrontContext = {
      config: () => cfg,
      auth: new Authenticator(store),
      assertions: new Assertions(store, signer),
      signer,
      scope: { pools, scheme: 'http', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live: null, log: () => undefined },
      cookieName: 'mezu_session',
      deviceCookieName: 'mezu_device',
      draining: { on: false },
      pages: null,
      log: () => undefined,
    };
    const handle = createFront(ctx);
    const headers = browserHeaders(token);
    // Warm the session's assertion (minted on first use, then cached on the record).
    handle(res, request('GET', '/api/v1/items', headers));
    await new Promise((r) => setTimeout(r, 200));

    // The checks alone (framing: src/front/framing.ts; routing headers: src/identity/routing-headers.ts).
    const names = headers.map((x) => x[0]);
    const vals = headers.map((x) => x[1]);
    measure('inspectFraming, 13-field GET', n, () => void inspectFraming(names, vals));
    measure('isClientRoutingHeader over 13 names', n, () => {
      for (let i = 0; i < names.length; i++) isClientRoutingHeader(names[i]!);
    });
    measure('normalizePath /api/v1/items (fast path)', n, () => void normalizePath('/api/v1/items'));
    measure('normalizePath /api/v1/Items/ (case, slash)', n, () => void normalizePath('/api/v1/Items/'));
    measure('normalizePath /a/./b/../c%41 (slow path)', n, () => void normalizePath('/a/./b/../c%41'));
    const get = request('GET', '/api/v1/items', headers);
    measure('handler: protected GET, valid session, forwarded', n, () => handle(res, get));
    const pub = request('GET', '/public/x', headers);
    measure('handler: public GET, forwarded', n, () => handle(res, pub));
    process.stdout.write(`(streams opened: ${conn.opened})\n`);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
