/**
 * Warpgates on many nodes, on real processes: a three-server `nats-server`
 * cluster, two edge nodes with --nats (A with its Console), one Warpgate
 * enrolled through A's Console. Enrollment lists both nodes (each advertises
 * its tunnel endpoint in the replicated store), so the Warpgate holds tunnels
 * to both and a request through B reaches the origin. A killed with -9: B
 * keeps serving, the Warpgate keeps its B tunnels and redials A with backoff;
 * A restarted gets its tunnels back. A third node started later is dialed
 * as soon as the nodes' hellos list it.
 *
 * Story: a Warpgate used to dial only the first endpoint enrollment gave it,
 * so in a cluster only the Console's own node could forward to an origin and
 * every other node answered 502 MEZU_NO_WARPGATE for it; and when that node
 * died the origin was unreachable through every node.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { cpSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import { ensureDevPki } from '../../src/pki/index.js';
import { DEMO_CONFIG, Stack, logLines, pidAlive, stopProc, waitFor, type Proc } from './harness.js';
import { NatsCluster } from './nats-cluster.js';

// Every node seals with the same store key: sealed secrets (tunnel CA keys, CSRF keys) replicate as they are.
process.env.MEZU_STORE_KEY = randomBytes(32).toString('base64url');

const ROOT = resolve(__dirname, '../../..');
const WARPGATE = join(ROOT, 'dist/warpgate/main.js');
/** The Warpgate's PING liveness (its defaults): a dead tunnel is declared dead within the timeout. */
const PING_TIMEOUT_MS = 4_000;

class EdgeNode extends Stack {
  consolePid = 0;
  consolePort = 0;

  /**
   * No --issuer: each node's default names its own port, so the nodes run
   * under different issuers, and a session's assertion cached in its
   * replicated record by one node must not be forwarded by the other (the
   * Warpgate checks `iss` against the node whose tunnel carried it).
   */
  constructor(readonly name: string, nats: string, extra: string[] = []) {
    super(1, DEMO_CONFIG, ['--nats', nats, '--node', name, ...extra]);
  }

  /**
   * Every node's tunnel certificate must verify against the CA enrollment hands
   * the Warpgate (the Console node's DATA/pki/ca.pem): the nodes share one
   * development PKI, as the README's three-node setup does.
   */
  async boot(pkiFrom: string | null): Promise<this> {
    if (pkiFrom === null) await ensureDevPki(join(this.dir, 'pki'), { pools: ['demo'] });
    else cpSync(pkiFrom, join(this.dir, 'pki'), { recursive: true });
    await this.start2();
    return this;
  }

  async start2(): Promise<void> {
    await this.startEdge();
    const ready = logLines(this.edge!.out).find((l) => l.event === 'ready') as { console?: { pid: number; port: number } } | undefined;
    this.consolePid = ready?.console?.pid ?? 0;
    this.consolePort = ready?.console?.port ?? 0;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.tunnelPort}`;
  }

  ok(r: { status: number; stdout: string; stderr: string }): string {
    if (r.status !== 0) throw new Error(`${this.name}: CLI failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  async status(path: string, token?: string): Promise<number> {
    try {
      return (await this.request(path, { headers: token === undefined ? {} : { cookie: `mezu_session=${token}` }, timeoutMs: 5_000 })).status;
    } catch {
      return -1;
    }
  }

  async until(path: string, want: number, token?: string, timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last = 0;
    while (Date.now() < end) {
      last = await this.status(path, token);
      if (last === want) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name}: ${path} still answers ${last}, not ${want}\n${this.edge?.err.slice(-3000)}`);
  }

  /** Kills the whole node at once: the primary, its worker and its Console. */
  kill9(): void {
    for (const pid of [this.edge!.child.pid!, ...this.workerPids, this.consolePid]) if (pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

function scrape(port: number): Promise<Map<string, number>> {
  return new Promise((res, rej) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => {
          const m = new Map<string, number>();
          for (const line of body.split('\n')) {
            if (line === '' || line.startsWith('#')) continue;
            const i = line.lastIndexOf(' ');
            m.set(line.slice(0, i), Number(line.slice(i + 1)));
          }
          res(m);
        });
      })
      .on('error', rej);
  });
}

const cluster = new NatsCluster(3);
const nodes: EdgeNode[] = [];
let warpgate: Proc | null = null;

test.before(async () => {
  await cluster.start();
});

test.after.always(async () => {
  await stopProc(warpgate);
  for (const n of nodes) await n.stop();
  await cluster.stop();
});

test.serial('a Warpgate enrolled at one node holds tunnels to every node; a node killed with -9 leaves the others serving, and gets its tunnels back when it returns', async (t) => {
  const urls = cluster.urls();
  const a = new EdgeNode('a', urls, ['--console-port', '0']);
  const b = new EdgeNode('b', urls);
  nodes.push(a, b);
  await a.boot(null);
  await b.boot(join(a.dir, 'pki'));
  t.true(a.consolePort > 0, 'node A runs its Console');

  // Config, a user, a session and an enrollment key, written on A, replicated to B.
  a.ok(a.applyText(DEMO_CONFIG));
  await b.until('/health', 502);
  a.ok(a.cli('users', 'add', '--project', 'demo', '--email', 'ann@example.com'));
  const token = a.ok(a.cli('sessions', 'create', '--project', 'demo', '--email', 'ann@example.com'));
  const sa = JSON.parse(a.ok(a.cli('service-accounts', 'add', '--project', 'demo', '--name', 'gate', '--permissions', 'warpgates:enroll', '--json'))) as { id: string };
  const key = (JSON.parse(a.ok(a.cli('keys', 'create', '--service-account', sa.id, '--json'))) as { key: string }).key;
  const originPort = await a.startExtraOrigin();

  // (a) One Warpgate, enrolled through A's Console: it is told of both nodes and holds tunnels to both.
  const child = spawn(process.execPath, [WARPGATE, '--edge', `http://127.0.0.1:${a.consolePort}`, '--key', key, '--origin', `http://127.0.0.1:${originPort}`, '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const wg: Proc = { child, out: '', err: '' };
  warpgate = wg;
  child.stdout!.on('data', (d: Buffer) => (wg.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (wg.err += d.toString()));
  await waitFor('tunnels on both nodes', () => (a.tunnelsRegistered() >= 1 && b.tunnelsRegistered() >= 1) || child.exitCode !== null, 30_000);
  const enrolledLine = logLines(wg.err).find((l) => typeof l.msg === 'string' && /enrolled as/.test(l.msg))?.msg as string;
  t.true(enrolledLine.includes(a.endpoint) && enrolledLine.includes(b.endpoint), `enrollment listed both nodes: ${enrolledLine}`);
  t.is(await b.status('/health'), 200, 'a public route through B reaches the origin');
  const r = await b.request('/api/v1/hello', { headers: { cookie: `mezu_session=${token}` } });
  t.is(r.status, 200, 'a protected route through B reaches the origin');
  t.is((JSON.parse(r.body) as { identity: Record<string, string> }).identity['x-mezu-user-email'], 'ann@example.com', 'B\'s assertion verified by the Warpgate');
  t.is(await a.status('/api/v1/hello', token), 200, 'and through A');
  const metricsPort = (logLines(wg.out).find((l) => l.event === 'metrics') as { port: number }).port;
  const before = await scrape(metricsPort);
  t.true(before.get(`mezu_warpgate_tunnels{edge="${a.endpoint}"}`)! >= 1 && before.get(`mezu_warpgate_tunnels{edge="${b.endpoint}"}`)! >= 1, 'tunnels counted per endpoint');

  // (b) A dies at once. Requests through B keep succeeding; the Warpgate keeps its B tunnels.
  const wgErrMark = wg.err.length;
  a.kill9();
  const killedAt = Date.now();
  const outcomes: Array<{ at: number; status: number }> = [];
  await Promise.all(
    Array.from({ length: 4 }, async (_, i) => {
      while (Date.now() - killedAt < PING_TIMEOUT_MS + 3_000) {
        const at = Date.now();
        outcomes.push({ at, status: await b.status(i % 2 === 0 ? '/health' : '/api/v1/hello', i % 2 === 0 ? undefined : token) });
      }
    }),
  );
  const failed = outcomes.filter((o) => o.status !== 200);
  t.log(`${outcomes.length} requests through B in the ${PING_TIMEOUT_MS + 3_000} ms after A was killed; ${failed.length} failed (${failed.filter((o) => o.at - killedAt < PING_TIMEOUT_MS).length} within the liveness timeout)`);
  t.true(outcomes.length > 40, 'enough requests');
  t.deepEqual(failed.filter((o) => o.at - killedAt >= PING_TIMEOUT_MS), [], 'no request through B failed after the liveness timeout');
  const after = logLines(wg.err.slice(wgErrMark));
  t.deepEqual(after.filter((l) => l.edge === b.endpoint && /closed/.test(String(l.msg))).map((l) => l.msg), [], 'no tunnel to B closed');
  t.true(after.some((l) => l.edge === a.endpoint && /closed/.test(String(l.msg))), 'the tunnels to A closed');
  await waitFor('the Warpgate redials A', () => logLines(wg.err.slice(wgErrMark)).some((l) => l.edge === a.endpoint && /cannot reach the edge/.test(String(l.msg))), 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; the Warpgate's log since A was killed:\n${wg.err.slice(wgErrMark).slice(-4000)}`);
  });
  const during = await scrape(metricsPort);
  t.is(during.get(`mezu_warpgate_tunnels{edge="${a.endpoint}"}`), 0);
  t.true(during.get(`mezu_warpgate_tunnels{edge="${b.endpoint}"}`)! >= 1, 'B keeps its tunnels');
  t.true(during.get(`mezu_warpgate_tunnel_dials_total{edge="${a.endpoint}",result="failed"}`)! >= 1, 'A is being redialed');

  // A comes back on its ports: the Warpgate's backoff (10 s cap) brings its tunnels back.
  await a.start2();
  await waitFor('a tunnel on the restarted A', () => a.tunnelsRegistered() >= 1, 30_000);
  const back = await a.request('/api/v1/hello', { headers: { cookie: `mezu_session=${token}` } });
  t.is(back.status, 200, `A forwards again: ${back.body}\n${wg.err.slice(-3000)}`);
  t.is(await b.status('/api/v1/hello', token), 200, 'B still does');

  // (c) A node that joins after enrollment: the nodes' hellos list it once it advertises, and the
  // Warpgate dials it then — not at its next certificate renewal, ~40 minutes away.
  const c = new EdgeNode('c', urls);
  nodes.push(c);
  const wgMark = wg.err.length;
  await c.boot(join(a.dir, 'pki'));
  await waitFor('tunnels on the node that joined', () => c.tunnelsRegistered() >= 1, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}; the Warpgate's log since C started:\n${wg.err.slice(wgMark).slice(-3000)}`);
  });
  t.true(logLines(wg.err.slice(wgMark)).some((l) => new RegExp(`told of a node at ${c.endpoint}`).test(String(l.msg))), 'learned from a hello');
  t.is(await c.status('/api/v1/hello', token), 200, 'C forwards to the origin');
});
