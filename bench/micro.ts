#!/usr/bin/env node
/**
 * Micro-benchmarks (tinybench) of the hot functions of a protected GET, each
 * run in this process with nothing else going on:
 *   - HPACK encode/decode of the 13-field request the edge sends the Warpgate
 *     (warm table: the connection's steady state; cold: its first request),
 *     decoded result asserted equal to the input;
 *   - Huffman decode of a user-agent and of an assertion-sized string;
 *   - a request/response exchange through two H2Connections (client and
 *     server role) over an in-memory duplex pair: framing, HPACK, flow control
 *     and dispatch on both ends, 64 streams in flight;
 *   - route match (`compileConfig` → `project.match`) and path normalization;
 *   - session lookup (`Authenticator.session`) against a real LMDB store,
 *     with the session's cached assertion (`Assertions.for`);
 *   - the Warpgate's assertion check (`AssertionVerifier.verify`), cached and
 *     uncached;
 *   - the edge's whole request path in this process: the uWS handler
 *     (`createFront`, with a stand-in for uWS's request and response
 *     objects), session lookup, the tunnel client (TunnelConnection) and an
 *     in-memory HTTP/2 peer that answers at once — everything of a protected
 *     GET on the edge except uWS's own parsing and socket I/O and TLS.
 * Each task runs a batch of operations per sample so the timer's own cost
 * (~tens of ns) does not dominate sub-µs operations; ns/op = sample mean ÷
 * batch.
 *
 *   node dist/bench/micro.js [--time MS per task (default 1000)] [--only TEXT (tasks whose name contains it)] [--json-out FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deepStrictEqual } from 'node:assert';
import { compileConfig, parseConfigYaml } from '../src/config/index.js';
import { ASSERTION_MAX_TTL_S, type AssertionClaims } from '../wire/contract.js';
import { Assertions, Signer } from '../src/identity/index.js';
import { generateSigningKeyPem, jwkOf, loadSigningKey, mintJwt } from '../wire/index.js';
import { normalizePath } from '../src/route/index.js';
import { Authenticator, hashToken, newSessionToken } from '../src/session/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { H2Connection, type ClientStreamSink, type H2Stream } from '../wire/h2/connection.js';
import { HpackDecoder, HpackEncoder, DEFAULT_NO_INDEX } from '../wire/h2/hpack.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../wire/h2/huffman.js';
import { AssertionVerifier } from '../wire/assertion.js';
import { createFront } from '../src/front/index.js';
import { PoolRegistry } from '../src/tunnel/pools.js';
import { TunnelConnection } from '../src/tunnel/connection.js';
import type { HttpRequest, HttpResponse } from '../native/uws.js';
import { BENCH_CONFIG } from './stack.js';
import { FakeRequest, FakeResponse, MemSocket } from './uws-standins.js';
import { renderMicro, type MicroResult } from './report.js';

const ISSUER = 'http://127.0.0.1:8080';

function claims(i: number): AssertionClaims {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: 'demo',
    sub: `usr_01J8Z3Q4X5Y6Z7A8B9C0D1E2F${i % 10}`,
    typ: 'user',
    email: 'alice@example.com',
    name: 'Alice Example',
    amr: ['pwd'],
    auth_time: now,
    roles: ['admin', 'editor'],
    permissions: ['admin:write', 'items:read'],
    sid: `ses_${i}`,
    iat: now,
    exp: now + ASSERTION_MAX_TTL_S,
  };
}

const KEY = (() => {
  const g = generateSigningKeyPem();
  return { key: loadSigningKey(g.kid, g.privateKeyPem, g.publicX), jwks: { keys: [jwkOf(g.kid, g.publicX)] } };
})();
const ASSERTION = mintJwt(KEY.key, claims(0));
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

/** What the edge sends the Warpgate for a protected GET (src/identity/forward.ts): 13 fields. */
function requestHeaders(requestId: string): string[] {
  return [
    ':method', 'GET',
    ':scheme', 'https',
    ':authority', 'app.example.com',
    ':path', '/api/v1/items?page=2',
    'user-agent', USER_AGENT,
    'accept', 'application/json',
    'accept-encoding', 'gzip, deflate, br',
    'x-forwarded-for', '203.0.113.7',
    'x-forwarded-proto', 'https',
    'x-forwarded-host', 'app.example.com',
    'x-mezu-request-id', requestId,
    'x-mezu-project', 'demo',
    'x-mezu-assertion', ASSERTION,
  ];
}
const REQUEST_IDS = Array.from({ length: 1024 }, (_, i) => `01J8Z3Q4X5Y6Z7A8B9C0D${String(i).padStart(5, '0')}`);
const HPACK_OPTIONS = { noIndex: [...DEFAULT_NO_INDEX, 'x-mezu-request-id'] };

interface MicroTask {
  name: string;
  /** Operations per call of fn. */
  batch: number;
  fn: () => void | Promise<void>;
  note?: string;
}

// ── HPACK ──

function hpackTasks(): MicroTask[] {
  const headers = requestHeaders(REQUEST_IDS[0]!);
  // Steady state: an encoder/decoder pair that has seen one request already.
  const enc = new HpackEncoder(4096, HPACK_OPTIONS);
  const dec = new HpackDecoder(4096, 64 * 1024);
  const first = enc.encode(headers);
  const r1 = dec.decode(first);
  if (!r1.ok) throw new Error(`micro: hpack decode of the first block failed: ${r1.reason}`);
  deepStrictEqual(r1.headers, headers);
  const warm = enc.encode(headers);
  const r2 = dec.decode(warm);
  if (!r2.ok) throw new Error(`micro: hpack decode of the warm block failed: ${r2.reason}`);
  deepStrictEqual(r2.headers, headers);
  // Decoding the warm block again must not change the table (no insertions) — that is what makes it repeatable.
  const before = dec.tableSize;
  const r3 = dec.decode(warm);
  if (!r3.ok || dec.tableSize !== before) throw new Error('micro: the warm block inserts into the table; it cannot be decoded repeatedly');
  deepStrictEqual(r3.headers, headers);

  const encLoop = new HpackEncoder(4096, HPACK_OPTIONS);
  encLoop.encode(headers);
  let i = 0;
  const B = 200;
  return [
    {
      name: `hpack encode, 13-field request, warm table (${warm.length} B block; ${first.length} B cold)`,
      batch: B,
      fn: () => {
        for (let k = 0; k < B; k++) {
          headers[21] = REQUEST_IDS[i++ & 1023]!;
          encLoop.encode(headers);
        }
      },
    },
    {
      name: 'hpack decode, 13-field request, warm table (asserted equal)',
      batch: B,
      fn: () => {
        let ok = 0;
        for (let k = 0; k < B; k++) {
          const r = dec.decode(warm);
          if (r.ok && r.headers.length === 26 && r.headers[25] === ASSERTION) ok++;
        }
        if (ok !== B) throw new Error('micro: hpack decode mismatch');
      },
    },
    {
      name: 'hpack encode, 13-field request, cold (new encoder: first request on a connection)',
      batch: 20,
      fn: () => {
        for (let k = 0; k < 20; k++) new HpackEncoder(4096, HPACK_OPTIONS).encode(headers);
      },
    },
    {
      name: 'hpack decode, 13-field request, cold (new decoder, asserted equal)',
      batch: 20,
      fn: () => {
        for (let k = 0; k < 20; k++) {
          const r = new HpackDecoder(4096, 64 * 1024).decode(first);
          if (!r.ok || r.headers[25] !== ASSERTION) throw new Error('micro: cold hpack decode mismatch');
        }
      },
    },
  ];
}

// ── Huffman ──

function huffmanTask(label: string, s: string): MicroTask {
  const buf = Buffer.alloc(huffmanEncodedLength(s) + 8);
  const end = huffmanEncode(s, buf, 0);
  if (huffmanDecode(buf, 0, end) !== s) throw new Error(`micro: huffman round trip of ${label} failed`);
  const B = 100;
  return {
    name: `huffman decode, ${label} (${s.length} chars from ${end} B)`,
    batch: B,
    fn: () => {
      for (let k = 0; k < B; k++) if (huffmanDecode(buf, 0, end) === null) throw new Error('micro: huffman decode failed');
    },
  };
}

// ── H2Connection pair over an in-memory duplex ──

const RESPONSE_BODY = Buffer.from('{"ok":true,"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}],"total":2,"page":1,"of":1,"pad":"x"}');
const RESPONSE_HEAD = [':status', '200', 'content-type', 'application/json', 'content-length', String(RESPONSE_BODY.length)];

class Waiter implements ClientStreamSink {
  status = 0;
  bytes = 0;
  constructor(private readonly done: (ok: boolean) => void) {}
  onHead(status: number): void {
    this.status = status;
  }
  onData(chunk: Buffer): void {
    this.bytes += chunk.length;
  }
  onEnd(): void {
    this.done(this.status === 200 && this.bytes === RESPONSE_BODY.length);
  }
  onError(): void {
    this.done(false);
  }
  onRefused(): void {
    this.done(false);
  }
  onLost(): void {
    this.done(false);
  }
}

function h2Pair(): { client: H2Connection; server: H2Connection; close: () => void } {
  const a = new MemSocket();
  const b = new MemSocket();
  a.peer = b;
  b.peer = a;
  const client = new H2Connection(a, 'client', { pingIntervalMs: 0 });
  const server = new H2Connection(b, 'server', { pingIntervalMs: 0 });
  server.onStream = (stream: H2Stream) => {
    stream.respond(RESPONSE_HEAD, false);
    stream.end(RESPONSE_BODY);
  };
  return {
    client,
    server,
    close: () => {
      client.destroy('micro done');
      server.destroy('micro done');
    },
  };
}

function h2Task(pair: ReturnType<typeof h2Pair>): MicroTask {
  const IN_FLIGHT = 64;
  let n = 0;
  return {
    name: `h2 exchange via H2Connection pair (client+server, in-memory duplex, ${IN_FLIGHT} streams in flight, 13-field request, ~100 B response)`,
    batch: IN_FLIGHT,
    note: 'both ends and the event-loop turns between them',
    fn: () =>
      new Promise<void>((resolve, reject) => {
        let left = IN_FLIGHT;
        let bad = 0;
        const done = (ok: boolean) => {
          if (!ok) bad++;
          if (--left === 0) (bad === 0 ? resolve() : reject(new Error(`micro: ${bad} h2 exchanges failed`)));
        };
        for (let k = 0; k < IN_FLIGHT; k++) {
          if (pair.client.request(requestHeaders(REQUEST_IDS[n++ & 1023]!), true, new Waiter(done)) === null) done(false);
        }
      }),
  };
}

// ── the edge's request path, in process ──

async function edgePathTask(store: Store): Promise<{ task: MicroTask; close: () => void }> {
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const now = Date.now();
  await store.users.create({
    id: 'usr_edge', directory: 'demo', email: 'edge@example.com', name: 'Edge', displayName: '', status: 'active',
    roles: ['viewer'], permissions: ['reports:read'], version: 1, createdAt: now, updatedAt: now, lastLoginAt: null,
  });
  const token = newSessionToken();
  await store.sessions.create(hashToken(token), {
    id: 'ses_edge', principalType: 'user', userId: 'usr_edge', projectId: 'demo', createdAt: now, lastSeenAt: now,
    authTime: now, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null,
  });
  const v = parseConfigYaml(BENCH_CONFIG);
  if (!v.ok) throw new Error(`micro: bench config invalid: ${JSON.stringify(v.problems)}`);
  const compiled = compileConfig(v.config, 1);
  const pools = new PoolRegistry();
  const a = new MemSocket();
  const b = new MemSocket();
  a.peer = b;
  b.peer = a;
  const conn = new TunnelConnection('demo', a, { pingIntervalMs: 0 }, () => undefined);
  conn.ready = true;
  pools.add(conn);
  const server = new H2Connection(b, 'server', { pingIntervalMs: 0 });
  server.onStream = (stream: H2Stream, _headers: string[], endStream: boolean) => {
    if (!endStream) return stream.abort();
    stream.respond(RESPONSE_HEAD, false);
    stream.end(RESPONSE_BODY);
  };
  const handle = createFront({
    config: () => compiled,
    auth: new Authenticator(store),
    assertions: new Assertions(store, signer),
    signer,
    scope: { pools, scheme: 'https', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live: null, log: () => undefined },
    cookieName: 'mezu_session',
    deviceCookieName: 'mezu_device',
    draining: { on: false },
    pages: null,
    log: (m) => process.stderr.write(`micro: ${m}\n`),
  });
  const req = new FakeRequest([
    'host', '127.0.0.1',
    'user-agent', USER_AGENT,
    'accept', 'application/json',
    'accept-language', 'en-US,en;q=0.9',
    'accept-encoding', 'gzip, deflate, br',
    'cookie', `theme=dark; mezu_session=${token}`,
  ]) as unknown as HttpRequest;
  const IN_FLIGHT = 64;
  const run = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let left = IN_FLIGHT;
      let bad = 0;
      const done = (ok: boolean) => {
        if (!ok) bad++;
        if (--left === 0) (bad === 0 ? resolve() : reject(new Error(`micro: ${bad} edge requests did not get a 200`)));
      };
      for (let k = 0; k < IN_FLIGHT; k++) handle(new FakeResponse(done) as unknown as HttpResponse, req);
    });
  // The first request mints the session's assertion and writes it back; let that settle.
  await run();
  await new Promise((r) => setTimeout(r, 200));
  return {
    task: {
      // Task name kept as it was (results are compared by name): "lean tunnel client" is TunnelConnection.
      name: `edge request path in process: uWS handler with stand-in req/res, session lookup, lean tunnel client, in-memory HTTP/2 peer answering at once (${IN_FLIGHT} in flight)`,
      batch: IN_FLIGHT,
      note: 'excludes uWS parsing, sockets and TLS; includes the peer\'s HTTP/2 server side',
      fn: run,
    },
    close: () => {
      conn.close(false);
      server.destroy('micro done');
    },
  };
}

// ── route, session, verifier ──

function routeTasks(): MicroTask[] {
  const v = parseConfigYaml(BENCH_CONFIG);
  if (!v.ok) throw new Error(`micro: bench config invalid: ${JSON.stringify(v.problems)}`);
  const compiled = compileConfig(v.config, 1);
  const project = compiled.projects.get('demo');
  if (project === undefined) throw new Error('micro: project demo missing');
  const paths = ['/api/v1/items', '/health', '/admin/users/42', '/docs/getting-started', '/webhooks/github', '/somewhere/else'];
  for (const p of paths) if (project.match('GET', p) === undefined) throw new Error(`micro: no policy for ${p}`);
  const raw = ['/api/v1/items', '/api//v1/./items/../items/%7Ebob', '/docs/a/b/c/d/e/f/g', '/health'];
  for (const p of raw) if (!normalizePath(p).ok) throw new Error(`micro: normalizePath rejected ${p}`);
  const B = 600;
  return [
    {
      name: `route match, project.match (6 paths: exact, prefixes, default)`,
      batch: B,
      fn: () => {
        for (let k = 0; k < B; k++) project.match('GET', paths[k % 6]!);
      },
    },
    {
      name: 'normalizePath, clean /api/v1/items',
      batch: B,
      fn: () => {
        for (let k = 0; k < B; k++) normalizePath('/api/v1/items');
      },
    },
    {
      name: 'normalizePath, messy /api//v1/./items/../items/%7Ebob',
      batch: B,
      fn: () => {
        for (let k = 0; k < B; k++) normalizePath('/api//v1/./items/../items/%7Ebob');
      },
    },
  ];
}

async function sessionTask(store: Store): Promise<MicroTask> {
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const auth = new Authenticator(store);
  const assertions = new Assertions(store, signer);
  const now = Date.now();
  await store.users.create({
    id: 'usr_micro',
    directory: 'demo',
    email: 'micro@example.com',
    name: 'Micro',
    displayName: '',
    status: 'active',
    roles: ['viewer'],
    permissions: ['reports:read'],
    version: 1,
    createdAt: now,
    updatedAt: now,
    lastLoginAt: null,
  });
  const token = newSessionToken();
  await store.sessions.create(hashToken(token), {
    id: 'ses_micro',
    principalType: 'user',
    userId: 'usr_micro',
    projectId: 'demo',
    createdAt: now,
    lastSeenAt: now,
    authTime: now,
    amr: ['pwd'],
    assertion: null,
    assertionExp: 0,
    assertionUserVersion: 0,
    assertionKid: null,
  });
  const ABS = 24 * 3600_000, IDLE = 30 * 60_000;
  // The first request mints the session's assertion and writes it back; wait for that.
  const p = auth.session(token, 'demo', ABS, IDLE);
  if (p === null) throw new Error('micro: session lookup failed');
  assertions.for(p, 'demo', Date.now());
  await new Promise((res) => setTimeout(res, 200));
  const B = 100;
  return {
    // The lookup (Authenticator.session) and the cached assertion (Assertions.for), as one request does both.
    name: 'session lookup, Authenticator.session (SHA-256 + LMDB session and user reads, cached assertion)',
    batch: B,
    fn: () => {
      for (let k = 0; k < B; k++) {
        const q = auth.session(token, 'demo', ABS, IDLE);
        if (q === null) throw new Error('micro: session lookup failed');
        assertions.for(q, 'demo', Date.now());
      }
    },
  };
}

function verifierTasks(): MicroTask[] {
  const cached = new AssertionVerifier();
  cached.update(KEY.jwks, ISSUER, ['demo']);
  if (!cached.verify(ASSERTION, 'demo').ok) throw new Error('micro: assertion does not verify');
  // Uncached: distinct tokens, each verified once by a verifier that has not seen it.
  const pool = Array.from({ length: 2000 }, (_, i) => mintJwt(KEY.key, claims(i + 1)));
  let fresh = new AssertionVerifier();
  fresh.update(KEY.jwks, ISSUER, ['demo']);
  let idx = 0;
  const B = 400;
  return [
    {
      name: 'assertion verify, cached (Warpgate per request)',
      batch: B,
      fn: () => {
        for (let k = 0; k < B; k++) if (!cached.verify(ASSERTION, 'demo').ok) throw new Error('micro: verify failed');
      },
    },
    {
      name: 'assertion verify, uncached (Ed25519 signature + claims)',
      batch: 10,
      fn: () => {
        for (let k = 0; k < 10; k++) {
          if (idx === pool.length) {
            fresh = new AssertionVerifier();
            fresh.update(KEY.jwks, ISSUER, ['demo']);
            idx = 0;
          }
          if (!fresh.verify(pool[idx++]!, 'demo').ok) throw new Error('micro: uncached verify failed');
        }
      },
    },
  ];
}

async function main(): Promise<number> {
  let v: { time?: string; only?: string; 'json-out'?: string };
  try {
    v = parseArgs({ options: { time: { type: 'string' }, only: { type: 'string' }, 'json-out': { type: 'string' } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`micro: ${(err as Error).message}\nusage: node dist/bench/micro.js [--time MS (default 1000)] [--only TEXT] [--json-out FILE]\n`);
    return 2;
  }
  const time = Number(v.time ?? '1000');
  if (!Number.isInteger(time) || time < 50 || time > 60_000) {
    process.stderr.write('micro: --time must be an integer number of ms from 50 to 60000\n');
    return 2;
  }
  // tinybench is ESM-only; this project compiles to CommonJS.
  const { Bench } = await import('tinybench');
  const dir = mkdtempSync(join(tmpdir(), 'mezu-micro-'));
  const store = openStore(dir);
  const pair = h2Pair();
  const results: MicroResult[] = [];
  let edge: { task: MicroTask; close: () => void } | null = null;
  try {
    // Let the pair exchange SETTINGS before the first measured request.
    await new Promise((r) => setTimeout(r, 50));
    const tasks: MicroTask[] = [
      ...hpackTasks(),
      huffmanTask('user-agent', USER_AGENT),
      huffmanTask('assertion JWT', ASSERTION),
      h2Task(pair),
      ...routeTasks(),
      await sessionTask(store),
      ...verifierTasks(),
    ];
    edge = await edgePathTask(store);
    tasks.push(edge.task);
    const bench = new Bench({ time, warmupTime: Math.min(250, time), throws: true });
    for (const t of tasks) if (v.only === undefined || t.name.includes(v.only)) bench.add(t.name, t.fn);
    await bench.run();
    for (const task of bench.tasks) {
      const t = tasks.find((x) => x.name === task.name)!;
      const r = task.result;
      if (r.state !== 'completed') {
        results.push({ name: t.name, nsPerOp: null, opsPerSec: null, rme: null, samples: 0, note: `state ${r.state}` });
        continue;
      }
      const ns = (r.latency.mean * 1e6) / t.batch;
      results.push({
        name: t.name,
        nsPerOp: Math.round(ns),
        opsPerSec: Math.round(1e9 / ns),
        rme: r.latency.mean > 0 ? Math.round((r.latency.moe / r.latency.mean) * 1000) / 10 : null,
        samples: r.latency.samplesCount,
        note: t.note ?? null,
      });
    }
  } finally {
    pair.close();
    edge?.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n### Micro-benchmarks (node ${process.version}, tinybench, ${time} ms per task)\n\n${renderMicro(results)}\n\n`);
  if (v['json-out'] !== undefined) writeFileSync(v['json-out'], JSON.stringify(results, null, 2) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
