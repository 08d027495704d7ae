/**
 * The system under test, started the same way by the full bench (run.ts) and
 * the CI check (ci.ts): a data dir with dev PKI, the demo config, a user and a
 * session; the bench origin; the edge (node:cluster workers) and a Warpgate
 * with a chosen tunnel implementation. Every process is a child of the bench,
 * on loopback, stopped by pid.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { processTree } from './cpu.js';
import { Proc, stopOrphans } from './processes.js';

export const ROOT = resolve(__dirname, '..', '..');
export const READY_TIMEOUT_MS = 20_000;
const CLI_TIMEOUT_MS = 30_000;
export const SESSION_COOKIE = 'mezu_session';
export const BENCH_EMAIL = 'bench@example.com';

/** One CLI call for the data dir; its stdout, trimmed. */
export function cli(data: string, args: readonly string[]): string {
  try {
    return execFileSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args, '--data', data], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: CLI_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`bench: \`mezusphere ${args.join(' ')}\` failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/**
 * The bench's own route config (not examples/demo.yaml, which changes with the
 * demo): the demo's project with one public and one protected prefix.
 */
export const BENCH_CONFIG = `# Written by the Mezusphere bench (bench/stack.ts).
projects:
  - id: demo
    name: Bench
    hosts: [127.0.0.1, localhost]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /health,     auth: public }
      - { path: /webhooks/*, auth: required, principals: [service_account] }
      - { path: /docs/*,     auth: public }
      - { path: /admin/*,    auth: required, roles: [admin], permissions: [admin:write] }
`;

/** PKI, the bench config, one user and one session in `data`; returns the session token. */
export function prepareData(data: string): string {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('bench: dist/src/cli/main.js is missing; build first (npx tsc -p tsconfig.json)');
  cli(data, ['pki', 'init', '--pool', 'demo']);
  const config = join(data, 'bench.yaml');
  writeFileSync(config, BENCH_CONFIG);
  cli(data, ['apply', '-f', config]);
  cli(data, ['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL]);
  const token = cli(data, ['sessions', 'create', '--project', 'demo', '--email', BENCH_EMAIL]);
  if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) throw new Error(`bench: sessions create printed something that is not a token: "${token}"`);
  return token;
}

export function readyLine(line: string, stream: 'stdout' | 'stderr'): Record<string, unknown> | undefined {
  if (stream !== 'stdout' || !line.startsWith('{')) return undefined;
  try {
    const obj = JSON.parse(line) as Record<string, unknown>;
    return obj.event === 'ready' ? obj : undefined;
  } catch {
    return undefined;
  }
}

export function port(obj: Record<string, unknown>, key: string, who: string): number {
  const p = obj[key];
  if (typeof p !== 'number' || !Number.isInteger(p) || p <= 0 || p > 65535) throw new Error(`bench: ${who} ready line has no valid "${key}": ${JSON.stringify(obj)}`);
  return p;
}

/** A node script of the bench or the project as a child process, up once it prints its ready line. */
export async function startNodeService(name: string, script: string, args: readonly string[], procs: Proc[]): Promise<{ proc: Proc; port: number; ready: Record<string, unknown> }> {
  const proc = new Proc(name, [join(ROOT, script), ...args], ROOT);
  procs.push(proc);
  const ready = await proc.waitFor('ready line', READY_TIMEOUT_MS, readyLine);
  return { proc, port: port(ready, 'port', name), ready };
}

export interface Chain {
  edge: Proc;
  warpgate: Proc;
  edgePort: number;
  edgeWorkers: number[];
  /** Edge primary and workers. */
  edgePids: number[];
  warpgatePids: number[];
}

/** Starts the edge and a Warpgate and waits until every edge worker has its tunnels. */
export async function startChain(data: string, originPort: number, workers: number, procs: Proc[], notes: string[], edgeArgs: readonly string[] = []): Promise<Chain> {
  const edge = new Proc(
    'edge',
    [
      join(ROOT, 'dist/src/cli/main.js'), 'edge', '--data', data, '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0',
      '--workers', String(workers), ...edgeArgs,
    ],
    ROOT,
  );
  procs.push(edge);
  const edgeReady = await edge.waitFor('ready line', READY_TIMEOUT_MS, readyLine);
  const edgePort = port(edgeReady, 'port', 'edge');
  const tunnelPort = port(edgeReady, 'tunnelPort', 'edge');
  const w = edgeReady.workers;
  if (!Array.isArray(w) || w.length !== workers || !w.every((p) => Number.isInteger(p) && (p as number) > 0)) {
    throw new Error(`bench: edge ready line should list ${workers} worker pids: ${JSON.stringify(edgeReady)}`);
  }
  const edgeWorkers = w as number[];

  const warpgate = new Proc(
    'warpgate',
    [
      join(ROOT, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${tunnelPort}`, '--origin', `http://127.0.0.1:${originPort}`,
      '--pki-dir', join(data, 'pki'), '--pool', 'demo',
    ],
    ROOT,
  );
  procs.push(warpgate);
  // Wait until a tunnel is up to every edge worker, else some requests would find no agent.
  const up = new Set<string>();
  await warpgate.waitFor(`"tunnel up to edge worker" for all ${workers} workers`, READY_TIMEOUT_MS, (line) => {
    const m = /tunnel up to edge worker (\d+)\/(\d+)/.exec(line);
    if (m === null) return undefined;
    up.add(m[1]!);
    return up.size >= workers ? true : undefined;
  });
  // The Warpgate keeps dialing until each worker holds --conns-per-worker (default 2) tunnels;
  // give the extra connections a moment so the measured window sees the steady state.
  await new Promise((r) => setTimeout(r, 1_000));

  const edgeTree = new Set(processTree(edge.pid));
  for (const p of edgeWorkers) {
    if (!edgeTree.has(p)) notes.push(`edge worker ${p} from the ready line is not a descendant of the edge primary ${edge.pid}; counted anyway`);
    edgeTree.add(p);
  }
  return { edge, warpgate, edgePort, edgeWorkers, edgePids: [...edgeTree], warpgatePids: processTree(warpgate.pid) };
}

/** Stops the Warpgate, then the edge, then any edge worker that outlived the primary. */
export async function stopChain(chain: Chain, procs: Proc[], notes: string[], problems: string[]): Promise<void> {
  for (const p of [chain.warpgate, chain.edge]) {
    const diedEarly = !p.alive;
    notes.push(`${p.name} (pid ${p.pid}) ${await p.stop()}`);
    if (diedEarly) problems.push(`${p.name} (pid ${p.pid}) had exited on its own before the bench stopped it: ${JSON.stringify(p.exit)}`);
    const i = procs.indexOf(p);
    if (i >= 0) procs.splice(i, 1);
  }
  notes.push(...(await stopOrphans(chain.edgeWorkers, chain.edge.pid)));
}

/** One plain request on loopback, for pre-flight checks. */
export function request(url: string, headers: Record<string, string>, method = 'GET', body: Buffer | null = null): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolveGet, reject) => {
    const req = http.request(url, { method, headers, timeout: 5_000, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${method} ${url}`)));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/** Retries `request` until it answers 2xx or the deadline passes (a server that is still binding). */
export async function requestUntilOk(url: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await request(url, headers);
      if (r.status >= 200 && r.status <= 299) return r;
      last = `status ${r.status}: ${r.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`bench: ${url} did not answer 2xx within ${timeoutMs} ms (last: ${last})`);
}

/**
 * Pre-flight for a chain: every target answers 2xx, the protected route
 * carries the identity to the origin, and without the cookie it is refused —
 * so the protected runs measure the authenticated path, not a redirect.
 */
export async function preflightChain(base: string, token: string, notes: string[], impl: string): Promise<void> {
  const pub = await request(`${base}/health`, { host: '127.0.0.1' });
  if (pub.status !== 200) throw new Error(`bench: pre-flight (${impl}) public GET /health answered ${pub.status}: ${pub.body.slice(0, 300)}`);
  const echo = await request(`${base}/api/v1/echo`, { host: '127.0.0.1', cookie: `${SESSION_COOKIE}=${token}` });
  if (echo.status !== 200 || !echo.body.includes(BENCH_EMAIL)) throw new Error(`bench: pre-flight (${impl}) protected response does not carry the identity: ${echo.status} ${echo.body.slice(0, 300)}`);
  const prot = await request(`${base}/api/v1/items`, { host: '127.0.0.1', cookie: `${SESSION_COOKIE}=${token}` });
  if (prot.status !== 200) throw new Error(`bench: pre-flight (${impl}) protected GET answered ${prot.status}`);
  const anon = await request(`${base}/api/v1/items`, { host: '127.0.0.1' });
  if (anon.status >= 200 && anon.status <= 299) throw new Error(`bench: ${base}/api/v1/items answered ${anon.status} without a session; it is not protected`);
  notes.push(`pre-flight (${impl} tunnel): public 200; protected 200 with the identity at the origin; protected without a cookie answers ${anon.status}`);
}

export function chainGroups(originPid: number, chain: Chain): Map<string, readonly number[]> {
  return new Map<string, readonly number[]>([
    ['origin', processTree(originPid)],
    ['edge', chain.edgePids],
    ['warpgate', chain.warpgatePids],
  ]);
}
