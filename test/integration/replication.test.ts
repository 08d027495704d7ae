/**
 * Many edge nodes sharing state through NATS JetStream, on real processes: a
 * three-server `nats-server` cluster with JetStream on loopback and edge
 * nodes each with its own data directory (its LMDB replica). No Warpgate:
 * a protected request whose session is accepted gets 502 MEZU_NO_WARPGATE
 * (it passed authentication and would be forwarded), one whose session is
 * unknown or revoked gets 401, and a node past its staleness bound 503.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { unpack } from 'msgpackr';
import { ensureDevPki } from '../../src/pki/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { NatsLink, makeSettings, type StreamEntry } from '../../src/replicate/index.js';
import { noLog } from '../../src/runtime/index.js';
import { DEMO_CONFIG, Stack, pidAlive, waitFor } from './harness.js';
import { CutProxy, NatsCluster } from './nats-cluster.js';

// Every node seals with the same store key: sealed secrets (CSRF keys, tunnel CA keys) replicate as they are.
process.env.MEZU_STORE_KEY = randomBytes(32).toString('base64url');

const STALENESS = '3s';
const WRITER = join(resolve(__dirname, '../../..'), 'dist/test/integration/replica-writer.js');

class EdgeNode extends Stack {
  constructor(readonly name: string, readonly nats: string) {
    super(1, DEMO_CONFIG, ['--nats', nats, '--node', name, '--nats-staleness', STALENESS]);
  }

  async boot(): Promise<this> {
    await ensureDevPki(join(this.dir, 'pki'), { pools: ['demo'] });
    await this.startEdge();
    return this;
  }

  async status(path: string, token?: string): Promise<number> {
    try {
      return (await this.request(path, { headers: token === undefined ? {} : { cookie: `mezu_session=${token}` }, timeoutMs: 5_000 })).status;
    } catch {
      return -1;
    }
  }

  /** Waits until `path` answers `want`; returns how long that took. */
  async until(path: string, want: number, token?: string, timeoutMs = 15_000): Promise<number> {
    const t0 = Date.now();
    let last = 0;
    const end = t0 + timeoutMs;
    while (Date.now() < end) {
      last = await this.status(path, token);
      if (last === want) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.name}: ${path} still answers ${last}, not ${want}, after ${timeoutMs} ms\n${this.edge?.err.slice(-3000)}`);
  }

  ok(r: { status: number; stdout: string; stderr: string }): string {
    if (r.status !== 0) throw new Error(`${this.name}: CLI failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }
}

const cluster = new NatsCluster(3);
const nodes: EdgeNode[] = [];
const proxies: CutProxy[] = [];

test.before(async () => {
  await cluster.start();
});

test.after.always(async () => {
  for (const n of nodes) await n.stop();
  for (const p of proxies) await p.stop();
  await cluster.stop();
});

async function node(name: string, nats: string): Promise<EdgeNode> {
  const n = new EdgeNode(name, nats);
  nodes.push(n);
  return n.boot();
}

test.serial('sessions, revocations and config cross nodes; one NATS server of three stops; a node cut off past its bound answers 503 and recovers; a new node bootstraps', async (t) => {
  const all = cluster.urls();
  const proxy = new CutProxy(cluster.servers[2]!.client);
  proxies.push(proxy);
  await proxy.start();
  const [a, b, c] = await Promise.all([node('a', all), node('b', all), node('c', proxy.url)]);

  // Config applied on A is served by B and C.
  a.ok(a.applyText(DEMO_CONFIG));
  t.log(`config A → B live in ${await b.until('/health', 502)} ms`);
  await c.until('/health', 502);

  // A session created on A works on B.
  a.ok(a.cli('users', 'add', '--project', 'demo', '--email', 'ann@example.com'));
  const token = a.ok(a.cli('sessions', 'create', '--project', 'demo', '--email', 'ann@example.com'));
  t.is(await a.status('/api/v1/x', token), 502);
  t.log(`session A → B accepted after ${await b.until('/api/v1/x', 502, token)} ms`);

  // A revocation on B is enforced on A.
  b.ok(b.cli('sessions', 'revoke', '--token', token));
  t.is(await b.status('/api/v1/x', token), 401);
  t.log(`revocation B → A enforced after ${await a.until('/api/v1/x', 401, token)} ms`);

  // Config applied on B is served by A: a new public route.
  t.is(await a.status('/extra/x'), 401);
  b.ok(b.applyText(DEMO_CONFIG.replace('      - { path: /health,     auth: public }', '      - { path: /health,     auth: public }\n      - { path: /extra/*,    auth: public }')));
  t.log(`config B → A live in ${await a.until('/extra/x', 502)} ms`);

  // One NATS server of three stops: writes and propagation go on.
  await cluster.stopServer(0);
  // A failure below must not leave the next tests a cluster of two (they create R3 streams).
  t.teardown(async () => {
    if (cluster.servers[0]!.proc === null) await cluster.restartServer(0);
  });
  const token2 = b.ok(b.cli('sessions', 'create', '--project', 'demo', '--email', 'ann@example.com'));
  await a.until('/api/v1/x', 502, token2, 30_000);
  await c.until('/api/v1/x', 502, token2);

  // C is cut off: within the bound it serves from its replica; past it, protected routes get 503
  // MEZU_REPLICA_STALE and public ones keep working; writes on C are refused.
  proxy.cut();
  t.is(await c.status('/api/v1/x', token2), 502);
  const revokedWhileCut = b.ok(b.cli('sessions', 'create', '--project', 'demo', '--email', 'ann@example.com'));
  await c.until('/api/v1/x', 503, token2, 15_000);
  const stale = await c.request('/api/v1/x', { headers: { cookie: `mezu_session=${token2}` } });
  t.regex(stale.body, /MEZU_REPLICA_STALE/);
  t.is(await c.status('/health'), 502, 'public routes keep working');
  const refused = c.cli('sessions', 'create', '--project', 'demo', '--email', 'ann@example.com');
  t.is(refused.status, 1);
  t.regex(refused.stderr, /MEZU_REPLICA_OFFLINE/);
  b.ok(b.cli('sessions', 'revoke', '--token', token2));

  // Back: C catches up without a restart; the revocation made while it was cut off is enforced.
  proxy.heal();
  t.log(`C recovered ${await c.until('/api/v1/x', 502, revokedWhileCut, 30_000)} ms after the network came back`);
  t.is(await c.status('/api/v1/x', token2), 401);

  // A new node bootstraps from the stream: config, users and sessions as every other node has them.
  const d = await node('d', cluster.urls([1, 2]));
  t.is(await d.status('/extra/x'), 502);
  t.is(await d.status('/api/v1/x', revokedWhileCut), 502);
  t.is(await d.status('/api/v1/x', token), 401);
  t.is(await d.status('/api/v1/x', token2), 401);
  await cluster.restartServer(0);
});

/** Every entry of the stream, in order (read through a link of the test's own). */
async function streamEntries(urls: string): Promise<StreamEntry[]> {
  const link = await NatsLink.open(makeSettings(urls.split(','), 'test', 60_000), noLog, 'test reader');
  const out: StreamEntry[] = [];
  try {
    await link.readFrom(1, async (b) => void out.push(...b));
  } finally {
    await link.close();
  }
  return out;
}

function killSessions(s: Store): Set<string> {
  const out = new Set<string>();
  for (const { session } of s.sessions.listForUser('writer')) out.add(session.id);
  return out;
}

test.serial('kill -9 a node mid-write and restart it: every acknowledged write is there, every stream entry applied once, on both nodes', async (t) => {
  const urls = cluster.urls();
  const [e, f] = await Promise.all([node('e', urls), node('f', urls)]);
  const writer = spawn(process.execPath, [WRITER, e.dir, '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('40 writes acknowledged', () => (out.match(/^ok /gm) ?? []).length >= 40 || writer.exitCode !== null, 60_000);
  // The whole node dies at once, mid-write: the writer, the edge primary and its workers.
  process.kill(writer.pid!, 'SIGKILL');
  process.kill(e.edge!.child.pid!, 'SIGKILL');
  for (const pid of e.workerPids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const acked = (out.match(/^ok (\d+)$/gm) ?? []).map((l) => `kill-${l.slice(3)}`);

  await e.startEdge();
  const entries = await streamEntries(urls);
  const inStream: string[] = [];
  for (const en of entries) for (const op of (unpack(en.data) as { o: Array<[string, string, unknown?]> }).o) if (op[0] === 'sessions' && op[1].startsWith('kill-')) inStream.push(op[1]);
  t.is(new Set(inStream).size, inStream.length, 'no write is in the stream twice');
  for (const k of acked) t.true(inStream.includes(k), `${k} acknowledged and in the stream`);
  t.true(inStream.length <= acked.length + 1, 'at most the write in flight at the kill went in unacknowledged');

  const se = openStore(e.dir);
  const sf = openStore(f.dir);
  t.teardown(async () => {
    await se.close();
    await sf.close();
  });
  // E caught up before it reported ready; F follows the stream.
  t.deepEqual([...killSessions(se)].sort(), [...inStream].sort());
  await waitFor('F applied every entry', () => {
    sf.changes.last();
    return killSessions(sf).size === inStream.length;
  }, 15_000);
  t.deepEqual([...killSessions(sf)].sort(), [...inStream].sort());
  t.is(se.replica!.applied(), sf.replica!.applied());
});

test.serial('a new node starts from the newest snapshot plus the stream tail; what belonged to the node that took it is left behind', async (t) => {
  const urls = cluster.urls();
  const g = await node('g', urls);
  g.ok(g.cli('users', 'add', '--project', 'demo', '--email', 'snap@example.com'));
  const before = g.ok(g.cli('sessions', 'create', '--project', 'demo', '--email', 'snap@example.com'));
  // g's worker has written its (local) tunnel report by now; it must not travel with the snapshot.
  await waitFor('g reported its tunnels', () => {
    const s = openStore(g.dir, undefined, null);
    const n = s.tunnelStatus.all().length;
    void s.close();
    return n > 0;
  });
  const head = JSON.parse(g.ok(g.cli('replica', 'snapshot', '--json'))) as { id: string; seq: number; size: number };
  t.true(head.seq > 0);
  // The tail: written after the snapshot.
  const after = g.ok(g.cli('sessions', 'create', '--project', 'demo', '--email', 'snap@example.com'));
  g.ok(g.cli('sessions', 'revoke', '--token', before));

  const h = await node('h', urls);
  t.regex(h.edge!.err, new RegExp(`installed snapshot ${head.id} \\(sequence ${head.seq}`));
  t.is(await h.status('/api/v1/x', after), 502);
  t.is(await h.status('/api/v1/x', before), 401);
  const sh = openStore(h.dir, undefined, null);
  const sg = openStore(g.dir, undefined, null);
  t.teardown(async () => {
    await sh.close();
    await sg.close();
  });
  const gReports = new Set(sg.tunnelStatus.all().map((x) => x.edgeId));
  t.true(gReports.size > 0);
  t.false(sh.tunnelStatus.all().some((r) => gReports.has(r.edgeId)), 'no tunnel report of g on h');
});
