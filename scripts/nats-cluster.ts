/**
 * A local NATS cluster for replication (tests, the bench, trying three edge
 * nodes on one machine): `nats-server` processes (the Debian package) with
 * JetStream on loopback, ports chosen by the system, configs and JetStream
 * storage in a temporary directory, each server stopped by its PID.
 *
 *   node dist/scripts/nats-cluster.js [--servers 3]
 *
 * prints {"event":"ready","urls":"nats://127.0.0.1:P,…"} once JetStream has a
 * leader, and stops every server on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import * as http from 'node:http';

export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';

/** A port the system picks (closed again at once; a server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

interface Server {
  name: string;
  client: number;
  cluster: number;
  monitor: number;
  conf: string;
  proc: ChildProcess | null;
  log: string;
}

export class NatsCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'mezu-nats-'));
  readonly servers: Server[] = [];

  constructor(readonly size = 3) {}

  /** `nats://127.0.0.1:P,…` of every server (or of those named). */
  urls(which: number[] = this.servers.map((_s, i) => i)): string {
    return which.map((i) => `nats://127.0.0.1:${this.servers[i]!.client}`).join(',');
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.size; i++) {
      this.servers.push({ name: `n${i}`, client: await freePort(), cluster: await freePort(), monitor: await freePort(), conf: join(this.dir, `n${i}.conf`), proc: null, log: '' });
    }
    const routes = this.servers.map((s) => `nats-route://127.0.0.1:${s.cluster}`).join(', ');
    for (const s of this.servers) {
      writeFileSync(
        s.conf,
        [
          `server_name: ${s.name}`,
          `listen: 127.0.0.1:${s.client}`,
          `http: 127.0.0.1:${s.monitor}`,
          // Small limits: the tests write little, and the machine is shared.
          `jetstream { store_dir: "${join(this.dir, s.name)}", max_memory_store: 64MB, max_file_store: 1GB }`,
          // A lone server is no cluster: with a route to itself JetStream never elects a meta leader.
          ...(this.size > 1 ? [`cluster { name: mezu, listen: 127.0.0.1:${s.cluster}, routes: [${routes}] }`] : []),
        ].join('\n') + '\n',
      );
    }
    for (let i = 0; i < this.servers.length; i++) this.launch(i);
    await this.waitReady();
  }

  private launch(i: number): void {
    const s = this.servers[i]!;
    const p = spawn(NATS_SERVER, ['-c', s.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    s.log = '';
    p.stdout!.on('data', (d: Buffer) => (s.log += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (s.log += d.toString()));
    s.proc = p;
  }

  /** JetStream is ready when every running server reports a meta leader (`/jsz`; a lone server has none, only its config). */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const s of this.servers) {
        if (s.proc === null) continue;
        try {
          const j = JSON.parse(await get(s.monitor, '/jsz')) as { config?: unknown; meta_cluster?: { leader?: string } };
          if (this.size > 1 ? !j.meta_cluster?.leader : j.config === undefined) ok = false;
        } catch {
          ok = false;
        }
      }
      if (ok) return;
      if (Date.now() > end) throw new Error(`nats: JetStream not ready within ${timeoutMs} ms:\n${this.servers.map((s) => s.log.slice(-2000)).join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops one server (SIGTERM by PID, SIGKILL after 5 s). */
  async stopServer(i: number): Promise<void> {
    const p = this.servers[i]!.proc;
    this.servers[i]!.proc = null;
    await stopChild(p);
  }

  async restartServer(i: number): Promise<void> {
    this.launch(i);
    await this.waitReady();
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.servers.length; i++) await this.stopServer(i);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function stopChild(p: ChildProcess | null): Promise<void> {
  if (p === null || p.exitCode !== null || p.pid === undefined) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  process.kill(p.pid, 'SIGTERM');
  const t = setTimeout(() => p.pid !== undefined && p.exitCode === null && process.kill(p.pid, 'SIGKILL'), 5_000);
  await done;
  clearTimeout(t);
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}


if (require.main === module) {
  const i = process.argv.indexOf('--servers');
  const n = i < 0 ? 3 : Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 5) {
    process.stderr.write('usage: nats-cluster [--servers 1..5]\n');
    process.exit(2);
  }
  const c = new NatsCluster(n);
  const stop = () => void c.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  c.start().then(
    () => process.stdout.write(JSON.stringify({ event: 'ready', urls: c.urls(), dir: c.dir }) + '\n'),
    (err: Error) => {
      process.stderr.write(`nats-cluster: ${err.message}\n`);
      void c.stop().then(() => process.exit(1));
    },
  );
}
