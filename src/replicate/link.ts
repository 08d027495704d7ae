/**
 * The journal's link to NATS JetStream (@nats-io/transport-node and
 * @nats-io/jetstream): one connection per process that writes or follows,
 * the stream created if missing, appends with an expected last sequence,
 * and reads of the stream by sequence.
 *
 * Settings and why:
 * - `ignoreClusterUpdates`: a node talks only to the servers it was given.
 *   Servers a cluster gossips may be unreachable from here, and an operator
 *   who fences a node off (or a test that cuts it off) must be obeyed.
 * - Reconnect forever, 250 ms apart: a node cut off keeps trying and catches
 *   up on its own when it is back (no restart).
 * - Pings every 2 s, two missed: a silent network drop is noticed within a
 *   few seconds, far inside the staleness bound.
 */
import type * as Transport from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type * as JetStream from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { MezuError } from '../errors/index.js';
import type { Log } from '../runtime/index.js';
import type { JournalLink, StreamEntry } from './journal.js';
import type { ReplicaSettings } from './settings.js';

/**
 * The NATS client, loaded on the first use, never by a process that does not replicate: an edge
 * worker that imported it at start (64 modules) spent ~8 % more CPU per request in `npm run
 * bench:ci` (edge ÷ origin 3.55 against 3.25, two alternating runs each), though it never
 * connected.
 */
let loaded: { transport: typeof Transport; js: typeof JetStream } | null = null;
export function natsClient(): { transport: typeof Transport; js: typeof JetStream } {
  return (loaded ??= { transport: require('@nats-io/transport-node') as typeof Transport, js: require('@nats-io/jetstream') as typeof JetStream });
}

/** JetStream's error code for a failed `Nats-Expected-Last-Sequence` check. */
const WRONG_LAST_SEQUENCE = 10071;
/** An append waits this long for its acknowledgement; then it is retried with the same message id. */
const APPEND_TIMEOUT_MS = 3_000;
/**
 * Pauses before the retries of an append whose outcome is unknown (a timeout, no responder while a
 * stream's leader is elected): the message id makes every retry safe. The last pause repeats until
 * LEADER_WAIT_MS has passed since the first try.
 */
const APPEND_RETRY_PAUSES_MS = [100, 250, 500, 1_000, 2_000];
/**
 * How long an append, or opening the link, waits for the stream to have a leader. A server lost
 * that held both the JetStream meta leader and the stream's leader left the stream offline for over
 * 10 s here (the replication test's stop of one server of three failed one run in three with a 10 s
 * wait; the two surviving servers' logs showed no new leader for all of it: nats-server's raft
 * waits a randomized election timeout of several seconds before it campaigns, for the meta group and
 * the stream's). Past this the write is refused (MEZU_REPLICA_OFFLINE).
 */
const LEADER_WAIT_MS = 30_000;
/** Under this many missing entries a catch-up reads them one by one; above, through an ordered consumer. */
const SMALL_GAP = 64;
/** Entries applied per LMDB transaction while catching up (one fsync each). */
export const APPLY_BATCH = 1_000;
/**
 * Bytes one pull asks JetStream for, and at most applied in one transaction.
 * A server cuts off a client that has more than 64 MiB pending
 * (`max_pending`, a slow consumer), and an import's entries run to hundreds
 * of KiB each: a pull bounded by count alone (1,000 × 550 KiB) made a new
 * node's catch-up stall, cut off and re-pulling forever.
 */
export const PULL_BYTES = 16 * 1024 * 1024;
/**
 * How long JetStream keeps message ids for de-duplication. It must cover a
 * writer's retries of one append (a few seconds); two minutes is
 * JetStream's own default.
 */
const DUPLICATE_WINDOW_NS = 120 * 1e9;

export const JOURNAL_SUBJECT = 'mezu.journal';

const offline = (why: string): MezuError => new MezuError('MEZU_REPLICA_OFFLINE', `replica: JetStream cannot be reached (${why}); nothing was written`);

export class NatsLink implements JournalLink {
  private connected = true;
  private closed = false;

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly s: ReplicaSettings,
    private readonly log: Log,
  ) {
    void this.watch();
  }

  /** Connects and makes sure the stream exists (created with the settings' replicas when missing). */
  static async open(s: ReplicaSettings, log: Log, name: string): Promise<NatsLink> {
    let nc: NatsConnection;
    try {
      nc = await natsClient().transport.connect({ servers: s.servers, name, ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 2_000, maxPingOut: 2, timeout: 2_000 });
    } catch (err) {
      throw new MezuError('MEZU_REPLICA_OFFLINE', `replica: cannot connect to ${s.servers.join(',')}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const jsm = await natsClient().js.jetstreamManager(nc, { timeout: 5_000 });
      await ensureStream(jsm, s);
      return new NatsLink(nc, natsClient().js.jetstream(nc, { timeout: APPEND_TIMEOUT_MS }), jsm, s, log);
    } catch (err) {
      await nc.close().catch(() => undefined);
      if (err instanceof MezuError) throw err;
      throw new MezuError('MEZU_REPLICA_OFFLINE', `replica: JetStream on ${s.servers.join(',')} did not answer: ${(err as Error).message}`, { cause: err });
    }
  }

  get isConnected(): boolean {
    return this.connected && !this.closed;
  }

  private async watch(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type === 'disconnect') {
        this.connected = false;
        this.log('replica: disconnected from NATS; reconnecting', { level: 'warn' });
      } else if (st.type === 'reconnect') {
        this.connected = true;
        this.log('replica: reconnected to NATS');
      }
    }
  }

  async append(data: Uint8Array, msgId: string, expectLast: number): Promise<number | 'conflict'> {
    // Set by hand: the client leaves the header out when the expected sequence is 0 (an empty stream).
    const h = natsClient().transport.headers();
    h.set('Nats-Expected-Last-Sequence', String(expectLast));
    let lastErr: unknown = null;
    const end = Date.now() + LEADER_WAIT_MS;
    for (let i = 0; ; i++) {
      if (i > 0) {
        const pause = APPEND_RETRY_PAUSES_MS[Math.min(i - 1, APPEND_RETRY_PAUSES_MS.length - 1)]!;
        if (Date.now() + pause >= end) break;
        await new Promise((r) => setTimeout(r, pause));
      }
      if (!this.isConnected) throw offline('disconnected');
      try {
        const ack = await this.js.publish(JOURNAL_SUBJECT, data, { msgID: msgId, headers: h, timeout: APPEND_TIMEOUT_MS, retries: 2 });
        return ack.seq;
      } catch (err) {
        if (err instanceof natsClient().js.JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) return 'conflict';
        lastErr = err;
      }
    }
    throw offline((lastErr as Error).message);
  }

  /** The stream's last sequence, asked of JetStream now. */
  async tail(): Promise<number> {
    const info = await this.jsm.streams.info(this.s.stream);
    return info.state.last_seq;
  }

  async readFrom(from: number, onBatch: (batch: StreamEntry[]) => Promise<void>): Promise<void> {
    if (!this.isConnected) throw offline('disconnected');
    const to = await this.tail();
    if (to < from) return;
    if (to - from < SMALL_GAP) {
      const batch: StreamEntry[] = [];
      for (let seq = from; seq <= to; seq++) {
        const m = await this.jsm.streams.getMessage(this.s.stream, { seq });
        if (m === null) throw new MezuError('MEZU_REPLICA_GAP', `replica: entry ${seq} is no longer in the stream`);
        batch.push({ seq: m.seq, data: m.data });
      }
      await onBatch(batch);
      return;
    }
    await this.consume(from, to, onBatch);
  }

  /**
   * Entries from `from` through an ordered consumer, in batches of up to
   * APPLY_BATCH, until `to` (or forever when `to` is null: the follower).
   * The ordered consumer re-creates itself after a reconnect or a missed
   * heartbeat, starting after the last entry it delivered.
   */
  async consume(from: number, to: number | null, onBatch: (batch: StreamEntry[]) => Promise<void>, stop?: { on: boolean }): Promise<void> {
    const c = await this.js.consumers.get(this.s.stream, { deliver_policy: natsClient().js.DeliverPolicy.StartSequence, opt_start_seq: from });
    const msgs = await c.consume({ max_bytes: PULL_BYTES });
    let batch: StreamEntry[] = [];
    let bytes = 0;
    try {
      for await (const m of msgs) {
        batch.push({ seq: m.seq, data: m.data });
        bytes += m.data.length;
        const last = to !== null && m.seq >= to;
        if (last || m.info.pending === 0 || batch.length >= APPLY_BATCH || bytes >= PULL_BYTES) {
          const b = batch;
          batch = [];
          bytes = 0;
          await onBatch(b);
        }
        if (last || stop?.on === true) break;
      }
    } finally {
      await msgs.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

async function ensureStream(jsm: JetStreamManager, s: ReplicaSettings): Promise<void> {
  const end = Date.now() + LEADER_WAIT_MS;
  // A stream that exists may be offline for a moment (its servers electing a leader after a start
  // or a loss: "stream is offline"): looked up again until the wait ends, then the error stands.
  let found = false;
  for (;;) {
    try {
      await jsm.streams.info(s.stream);
      found = true;
      break;
    } catch (err) {
      // 10059: stream not found; created below.
      if (err instanceof natsClient().js.JetStreamApiError && err.code === 10059) break;
      if (Date.now() >= end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (found) return;
  try {
    await jsm.streams.add({
      name: s.stream,
      subjects: [JOURNAL_SUBJECT],
      storage: natsClient().js.StorageType.File,
      num_replicas: s.replicas,
      duplicate_window: DUPLICATE_WINDOW_NS,
    });
  } catch (err) {
    // Another node created it between our look and our add (10058: name in use): the same stream.
    if (!(err instanceof natsClient().js.JetStreamApiError) || err.code !== 10058) throw err;
  }
  // A replicated stream answers appends only once it has a leader.
  while (Date.now() < end) {
    const info = await jsm.streams.info(s.stream).catch(() => null);
    if (info !== null && (s.replicas <= 1 || info.cluster?.leader)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
