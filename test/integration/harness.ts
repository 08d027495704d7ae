/**
 * Test environment: real processes on loopback (demo origin as a recording
 * canary, the edge with its workers, a Warpgate), ports from listen(0), a
 * fresh data directory, and teardown of every process by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import { ensureDevPki } from '../../src/pki/index.js';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');
const ORIGIN = join(ROOT, 'dist/scripts/demo-origin.js');

export const DEMO_CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    routes:
      - { path: /api/v1/*,   auth: required }
      - { path: /health,     auth: public }
      - { path: /webhooks/*, auth: required, principals: [service_account] }
      - { path: /docs/*,     auth: public }
      - { path: /admin/*,    auth: required, roles: [admin], permissions: [admin:write] }
      - { path: /closed/*,   auth: deny }
  - id: other
    hosts: [other.localhost]
    upstream: demo
    routes:
      - { path: /*, auth: required }
`;

export interface Proc {
  child: ChildProcess;
  out: string;
  err: string;
}

function launch(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  return p;
}

/**
 * A process's log (src/runtime/log.ts: JSON lines on stderr), parsed; lines
 * that are not JSON (a crash's stack, a child's plain output) are skipped.
 */
export function logLines(out: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const l of out.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a line cut by the read in progress
    }
  }
  return lines;
}

/** A process's log as its messages, one a line: what a grep of the plain format saw (JSON escapes quotes). */
export function logMessages(out: string): string {
  return out
    .split('\n')
    .map((l) => {
      if (!l.startsWith('{')) return l;
      try {
        return String((JSON.parse(l) as { msg?: unknown }).msg);
      } catch {
        return l;
      }
    })
    .join('\n');
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function readyLine(p: Proc): Record<string, unknown> | null {
  for (const line of p.out.split('\n')) {
    if (line.startsWith('{"event":"ready"')) return JSON.parse(line) as Record<string, unknown>;
  }
  return null;
}

export async function stopProc(p: Proc | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p === null || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
  p.child.kill(signal);
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class Stack {
  dir = mkdtempSync(join(tmpdir(), 'mezu-it-'));
  origin: Proc | null = null;
  edge: Proc | null = null;
  warpgate: Proc | null = null;
  originPort = 0;
  port = 0;
  tunnelPort = 0;
  /** The edge's metrics listener (the harness asks for an ephemeral port: tests run side by side). */
  metricsPort = 0;
  workerPids: number[] = [];

  /** `config`: the YAML applied at start; `edgeArgs`: extra `mezusphere edge` options (e.g. `--smtp`). */
  constructor(readonly workers = 2, readonly config = DEMO_CONFIG, readonly edgeArgs: string[] = []) {}

  cli(...args: string[]): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, ...args, '--data', this.dir], { encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  }

  applyText(yaml: string): { status: number; stdout: string; stderr: string } {
    const f = join(this.dir, `config-${Date.now()}-${Math.random()}.yaml`);
    writeFileSync(f, yaml);
    return this.cli('apply', '-f', f);
  }

  /** `warpgate: false`: the origin and the edge only, for tests that dial the tunnel port themselves. */
  async start(opts: { warpgate?: boolean } = {}): Promise<void> {
    await ensureDevPki(join(this.dir, 'pki'), { pools: ['demo'] });
    const a = this.applyText(this.config);
    if (a.status !== 0) throw new Error(`apply failed: ${a.stderr}`);
    this.origin = launch([ORIGIN, '--host', '127.0.0.1', '--port', '0', '--record']);
    await waitFor('origin ready', () => readyLine(this.origin!) !== null);
    this.originPort = readyLine(this.origin)!.port as number;
    await this.startEdge();
    if (opts.warpgate !== false) await this.startWarpgate();
  }

  async startEdge(): Promise<void> {
    this.edgeErrMark = 0;
    // With --port 0 the edge picks a free port and then listens on it; another test's process can
    // take it in between (a full CI run saw "cannot listen"): then the edge is started again, on a
    // new port. A port given by the test (a restart on the same port) is not retried.
    const chosen = this.port === 0;
    for (let attempt = 1; ; attempt++) {
      this.edge = launch([CLI, 'edge', '--data', this.dir, '--host', '127.0.0.1', '--port', String(this.port), '--tunnel-port', String(this.tunnelPort), '--workers', String(this.workers), '--config-poll-ms', '100', '--drain-grace', '5s', '--metrics-port', '0', ...this.edgeArgs]);
      const taken = () => chosen && attempt < 3 && /cannot listen on/.test(this.edge!.err);
      await waitFor('edge ready', () => readyLine(this.edge!) !== null || this.edge!.child.exitCode !== null || taken());
      if (readyLine(this.edge) !== null || !taken()) break;
      await stopProc(this.edge, 'SIGKILL');
    }
    const r = readyLine(this.edge);
    if (r === null) throw new Error(`edge failed: ${this.edge.err}`);
    this.port = r.port as number;
    this.tunnelPort = r.tunnelPort as number;
    this.workerPids = r.workers as number[];
    this.metricsPort = (r.metrics as { port: number } | undefined)?.port ?? 0;
  }

  /** `env`: extra environment of the Warpgate process (e.g. NODE_OPTIONS for a test preload). */
  async startWarpgate(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
    const wg = launch([WARPGATE, '--edge', `127.0.0.1:${this.tunnelPort}`, '--origin', `http://127.0.0.1:${this.originPort}`, '--pki-dir', join(this.dir, 'pki'), '--pool', 'demo', ...extra], env);
    this.warpgate = wg;
    // Ready when every edge worker has registered a tunnel of this Warpgate process (the edge logs
    // it after the hello reply, so a request sent now finds the tunnel).
    await waitFor('tunnels registered by every worker', () => this.tunnelsRegistered() >= this.workers || wg.child.exitCode !== null);
    if (wg.child.exitCode !== null) throw new Error(`warpgate failed: ${wg.err}`);
  }

  /** Distinct edge workers that registered a tunnel since the current Warpgate started. */
  private edgeErrMark = 0;
  tunnelsRegistered(): number {
    if (this.edge === null) return 0;
    const seen = new Set<string>();
    for (const m of this.edge.err.slice(this.edgeErrMark).matchAll(/connected for pool demo \(worker (\d+)\)/g)) seen.add(m[1]!);
    return seen.size;
  }

  /** Edge workers that registered a tunnel of each Warpgate id (as logged by the edge). */
  registrations(): Map<string, Set<string>> {
    const by = new Map<string, Set<string>>();
    if (this.edge === null) return by;
    for (const m of this.edge.err.slice(this.edgeErrMark).matchAll(/warpgate ([0-9a-f]+) connected for pool demo \(worker (\d+)\)/g)) {
      let set = by.get(m[1]!);
      if (set === undefined) by.set(m[1]!, (set = new Set()));
      set.add(m[2]!);
    }
    return by;
  }

  /** Starts one more Warpgate for pool demo; resolves once every edge worker registered one of its tunnels. */
  extra: Proc[] = [];
  async startExtraWarpgate(extra: string[] = [], originPort = this.originPort): Promise<Proc> {
    const before = new Set(this.registrations().keys());
    const wg = launch([WARPGATE, '--edge', `127.0.0.1:${this.tunnelPort}`, '--origin', `http://127.0.0.1:${originPort}`, '--pki-dir', join(this.dir, 'pki'), '--pool', 'demo', ...extra]);
    this.extra.push(wg);
    await waitFor('the extra Warpgate registered by every worker', () => {
      for (const [id, workers] of this.registrations()) if (!before.has(id) && workers.size >= this.workers) return true;
      return wg.child.exitCode !== null;
    });
    if (wg.child.exitCode !== null) throw new Error(`warpgate failed: ${wg.err}`);
    return wg;
  }

  /**
   * Spawns a Warpgate dialing this edge's tunnel port and forwarding to the origin, with `args`
   * for its credentials (e.g. --cert/--key/--ca); waits for nothing. Stopped with the stack.
   */
  spawnWarpgate(args: string[]): Proc {
    const wg = launch([WARPGATE, '--edge', `127.0.0.1:${this.tunnelPort}`, '--origin', `http://127.0.0.1:${this.originPort}`, ...args]);
    this.extra.push(wg);
    return wg;
  }

  /** Starts one more recording demo origin (read it with originSeen(port)); stopped with the stack. */
  async startExtraOrigin(): Promise<number> {
    const o = launch([ORIGIN, '--host', '127.0.0.1', '--port', '0', '--record']);
    this.extraOrigins.push(o);
    await waitFor('extra origin ready', () => readyLine(o) !== null || o.child.exitCode !== null);
    const r = readyLine(o);
    if (r === null) throw new Error(`origin failed: ${o.err}`);
    return r.port as number;
  }
  extraOrigins: Proc[] = [];

  /** Marks the edge log so that tunnelsRegistered() counts only what comes after (before a Warpgate restart). */
  markEdgeLog(): void {
    this.edgeErrMark = this.edge === null ? 0 : this.edge.err.length;
  }

  addUser(email: string, extra: string[] = [], project = 'demo'): string {
    const r = this.cli('users', 'add', '--project', project, '--email', email, ...extra);
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout;
  }

  session(email: string, project = 'demo'): string {
    const r = this.cli('sessions', 'create', '--project', project, '--email', email);
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout;
  }

  /** One request on a fresh connection (so successive requests spread across workers). */
  request(path: string, opts: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; host?: string; timeoutMs?: number } = {}): Promise<Response> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.port, path, method: opts.method ?? 'GET', agent: false, headers: { host: opts.host ?? 'localhost', ...(opts.headers ?? {}) }, timeout: opts.timeoutMs ?? 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  /** Every request the canary origin received, recorded when its head arrived (`complete`/`aborted` tell how it ended). */
  async originSeen(port = this.originPort): Promise<Array<{ method: string; path: string; query: string; headers: Record<string, string[]>; bodyBytes: number; complete: boolean; aborted: boolean }>> {
    const r = await directGet(port, '/__origin/requests');
    return JSON.parse(r) as Array<{ method: string; path: string; query: string; headers: Record<string, string[]>; bodyBytes: number; complete: boolean; aborted: boolean }>;
  }

  async clearOrigin(): Promise<void> {
    await directGet(this.originPort, '/__origin/requests', 'DELETE');
  }

  async stop(): Promise<void> {
    for (const p of this.extra) await stopProc(p);
    await stopProc(this.warpgate);
    await stopProc(this.edge);
    await stopProc(this.origin);
    for (const p of this.extraOrigins) await stopProc(p);
    // Workers are children of the edge primary; make sure none outlives it.
    for (const pid of this.workerPids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function directGet(port: number, path: string, method = 'GET'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.end();
  });
}
