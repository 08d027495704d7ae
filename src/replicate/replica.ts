/**
 * A node's replica: the journal over its LMDB databases, its connection to
 * JetStream (opened on first use), and — in the edge primary only — the
 * follower that applies every other node's entries as they arrive and
 * judges how fresh this replica is.
 *
 * Staleness: the follower asks JetStream for the stream's last sequence
 * every PROBE_MS. The replica is fresh when a probe succeeded and
 * everything the previous probe saw is applied; it is stale once that has
 * not been true for `stalenessMs`. Until then a node cut off keeps serving
 * from its replica (a revocation made elsewhere may be missing for that
 * long at most); past it protected routes answer 503 MEZU_REPLICA_STALE.
 */
import type { Database, RootDatabase } from '../../native/lmdb.js';
import { createLog, type Log } from '../runtime/index.js';
import { MezuError } from '../errors/index.js';
import { Journal } from './journal.js';
import { NatsLink } from './link.js';
import type { ReplicaSettings } from './settings.js';
import { publishSnapshot, type SnapshotHead } from './snapshot.js';

/** How often the follower asks JetStream for the stream's tail (and so how finely staleness is judged). */
export const PROBE_MS = 1_000;
/** A follower that lags this many probes in a row while connected catches up by reading, past its consumer. */
const LAG_PROBES = 3;

export interface FollowHandle {
  /** True past the staleness bound: protected routes must not be served. */
  readonly stale: boolean;
  stop(): Promise<void>;
}

export class Replica {
  readonly journal: Journal;
  private link: Promise<NatsLink> | null = null;

  constructor(
    private readonly root: RootDatabase,
    meta: Database<number, string>,
    readonly settings: ReplicaSettings,
    /** The store's directory: snapshots are copied here before they are published. */
    private readonly storePath: string,
    private readonly log: Log = createLog('replica'),
  ) {
    this.journal = new Journal(root, meta, settings.node, () => this.connect());
  }

  /** The connection, opened once; a failed open is forgotten, so the next write tries again. */
  connect(): Promise<NatsLink> {
    if (this.link === null) {
      const p = NatsLink.open(this.settings, this.log, `mezusphere ${this.settings.node} pid ${process.pid}`);
      this.link = p;
      p.catch(() => {
        if (this.link === p) this.link = null;
      });
    }
    return this.link;
  }

  /** The last stream sequence applied here. */
  applied(): number {
    return this.journal.applied();
  }

  /** Applies everything the stream holds past this replica (before a node reports ready, before a CLI command). */
  catchUp(): Promise<void> {
    return this.journal.catchUp();
  }

  /**
   * The follower: applies entries as they arrive, probes freshness, and calls
   * `onStale` when the replica crosses the staleness bound either way. Never
   * throws: every failure is logged and retried (a node cut off keeps
   * serving, and recovers without a restart).
   */
  follow(onStale: (stale: boolean) => void): FollowHandle {
    const stop = { on: false };
    let freshAt = Date.now();
    let stale = false;
    let seenTail = this.applied();
    let lagging = 0;
    let probing = false;
    const consumeLoop = async (): Promise<void> => {
      while (!stop.on) {
        try {
          const link = await this.connect();
          await link.consume(this.applied() + 1, null, async (b) => {
            await this.journal.applyBatch(b);
          }, stop);
        } catch (err) {
          if (stop.on) return;
          this.log(`replica: following the stream failed (${(err as MezuError).code ?? 'error'}): ${(err as Error).message}; retrying`, { level: 'warn' });
        }
        if (!stop.on) await new Promise((r) => setTimeout(r, 500).unref());
      }
    };
    void consumeLoop();
    const probe = async (): Promise<void> => {
      if (probing) return;
      probing = true;
      try {
        const link = await this.connect();
        if (!link.isConnected) throw new Error('disconnected');
        const tail = await link.tail();
        this.root.resetReadTxn();
        const applied = this.applied();
        if (applied >= seenTail) {
          freshAt = Date.now();
          lagging = 0;
        } else if (++lagging >= LAG_PROBES) {
          // The consumer should have brought these; read them directly rather than wait on it.
          lagging = 0;
          await this.catchUp();
        }
        seenTail = tail;
      } catch {
        // Unreachable: freshness simply stops advancing.
      } finally {
        probing = false;
      }
      const nowStale = Date.now() - freshAt > this.settings.stalenessMs;
      if (nowStale !== stale) {
        stale = nowStale;
        this.log(stale ? `replica: no contact with JetStream for over ${this.settings.stalenessMs} ms; protected routes answer 503 MEZU_REPLICA_STALE until it is back` : 'replica: caught up with JetStream again; serving protected routes', { level: stale ? 'error' : 'info' });
        onStale(stale);
      }
    };
    const timer = setInterval(() => void probe(), PROBE_MS);
    timer.unref();
    return {
      get stale() {
        return stale;
      },
      stop: async () => {
        stop.on = true;
        clearInterval(timer);
      },
    };
  }

  /** Catches up, then publishes a snapshot of this replica for new nodes (snapshot.ts). */
  async publishSnapshot(): Promise<SnapshotHead> {
    await this.catchUp();
    return publishSnapshot(this.root, await this.connect(), this.settings, this.storePath);
  }

  async close(): Promise<void> {
    const l = this.link;
    this.link = null;
    if (l !== null) await l.then((x) => x.close(), () => undefined);
  }
}
