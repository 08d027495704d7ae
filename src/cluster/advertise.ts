/**
 * A replicated node's advertisement (`edge --nats`): the primary writes where
 * Warpgates dial its tunnel listener into the replicated `nodes` database,
 * keyed by its node id, once its workers listen and every `NODE_REFRESH_MS`
 * after, and removes it when it drains. Every node's Console answers
 * enrollment with the live ones (src/enroll/service.ts), so a Warpgate keeps
 * tunnels to every node: any node forwards to any origin, and a node that dies
 * takes only its own tunnels with it.
 *
 * Why a record refreshed on a timer and not the NATS connection's presence:
 * the store is what the Console reads, it replicates already, and a record's
 * age bounds how long a dead node is still handed out (`NODE_STALE_MS`)
 * without any other moving part. A node cut off from NATS cannot refresh it,
 * so it ages out of the others' answers like a dead one.
 */
import { hostname } from 'node:os';
import { NODE_REFRESH_MS, type NodeStore } from '../store/index.js';
import { systemClock, type Log, type Timer, type Timers } from '../runtime/index.js';

/**
 * The endpoint a node advertises when `--tunnel-advertise` is not given: its
 * tunnel listener's host and port, except that a wildcard listener
 * (`0.0.0.0`, `::`) is reached at the machine's host name. IPv6 literals are
 * bracketed (`[::1]:7443`), as the Warpgate parses them.
 */
export function defaultAdvertise(tunnelHost: string, tunnelPort: number): string {
  const host = tunnelHost === '0.0.0.0' || tunnelHost === '::' || tunnelHost === '' ? hostname() : tunnelHost;
  return `${host.includes(':') ? `[${host}]` : host}:${tunnelPort}`;
}

/** How long a draining node waits for its record's removal at most. */
export const WITHDRAW_WAIT_MS = 2_000;

export class NodeAdvertiser {
  private timer: Timer | null = null;
  private stopped = false;
  private failing = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly nodes: NodeStore,
    private readonly me: { node: string; endpoint: string; edgeId: string },
    private readonly log: Log,
    private readonly clock: Timers = systemClock,
  ) {}

  start(): void {
    this.log(`replica: node ${this.me.node} advertises its tunnel endpoint ${this.me.endpoint} to enrolling Warpgates`);
    this.tick();
  }

  private tick(): void {
    if (this.stopped) return;
    this.writing = this.nodes
      .put({ node: this.me.node, endpoint: this.me.endpoint, edgeId: this.me.edgeId, updatedAt: this.clock.now() })
      .then(
        () => {
          if (this.failing) this.log(`replica: node ${this.me.node} advertises ${this.me.endpoint} again`);
          this.failing = false;
        },
        (err: Error) => {
          // Cut off from NATS (the write is refused): the record ages out of the other nodes' answers,
          // which is right, since this node will soon answer protected routes with 503. Said once.
          if (!this.failing) this.log(`replica: node ${this.me.node} cannot refresh its advertisement (${err.message}); retrying every ${NODE_REFRESH_MS / 1000} s`, { level: 'warn' });
          this.failing = true;
        },
      );
    this.timer = this.clock.setTimeout(() => this.tick(), NODE_REFRESH_MS);
    this.timer.unref();
  }

  /**
   * Draining: no longer handed to Warpgates. Resolves once the record is gone,
   * or after `WITHDRAW_WAIT_MS` (NATS unreachable: a write would wait for it,
   * and a drain must not; the record then ages out).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    const removal = this.writing
      .then(() => this.nodes.remove(this.me.node, this.me.edgeId))
      .then(
        () => undefined,
        (err: Error) => this.log(`replica: node ${this.me.node} could not withdraw its advertisement (${err.message}); it ages out`, { level: 'warn' }),
      );
    let timer: Timer | null = null;
    await Promise.race([removal, new Promise<void>((r) => (timer = this.clock.setTimeout(r, WITHDRAW_WAIT_MS)))]);
    if (timer !== null) this.clock.clearTimeout(timer);
  }
}
