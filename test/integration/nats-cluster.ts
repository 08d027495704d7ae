/**
 * The replication tests' NATS helpers: the local cluster (scripts/nats-cluster.ts)
 * and a TCP proxy that cuts a node off from NATS and lets it back, as a
 * partition would.
 */
import * as net from 'node:net';

export { NatsCluster, freePort } from '../../scripts/nats-cluster.js';

/** A loopback TCP proxy to one NATS server; `cut()` drops every connection and refuses new ones until `heal()`. */
export class CutProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.server = net.createServer((c) => {
      if (!this.open) return c.destroy();
      const u = net.connect(this.target, '127.0.0.1');
      this.sockets.add(c);
      this.sockets.add(u);
      const drop = () => {
        c.destroy();
        u.destroy();
        this.sockets.delete(c);
        this.sockets.delete(u);
      };
      c.on('error', drop).on('close', drop);
      u.on('error', drop).on('close', drop);
      c.pipe(u);
      u.pipe(c);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.open = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => (this.server === null ? r() : this.server.close(() => r())));
  }
}
