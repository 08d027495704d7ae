/**
 * Snapshots: how a new node starts from a copy of a replica instead of
 * replaying the whole journal.
 *
 * A snapshot is a compacting copy of one node's LMDB environment
 * (mdb_env_copy2 with MDB_CP_COMPACT, taken in one read transaction), so it
 * holds exactly the state after the stream sequence its `applied` records.
 * `mezusphere replica snapshot` publishes it to a stream of its own, in
 * chunks of SNAPSHOT_CHUNK bytes on `mezu.snapshot.<id>.<n>`, then a head on
 * `mezu.snapshot.head` (id, sequence, size, SHA-256); older snapshots are
 * purged once the new head is stored. A node whose data directory holds no
 * store yet fetches the newest head's chunks, checks the size and SHA-256,
 * installs the file as its `data.mdb`, and catches up from the snapshot's
 * sequence + 1 like any restarting node: snapshot plus the stream tail.
 *
 * Why a file copy and not the records: the copy is consistent by LMDB's own
 * means (one snapshot of every database and `applied` together), needs no
 * code per record family, and installs by a rename; its size is what a
 * compacted replica is, with no per-record framing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { openEnv, openDb, type RootDatabase } from '../../native/lmdb.js';
import { MezuError } from '../errors/index.js';
import { PULL_BYTES, natsClient, type NatsLink } from './link.js';
import type { ReplicaSettings } from './settings.js';

export const SNAPSHOT_STREAM = 'mezusphere-snapshots';
const HEAD_SUBJECT = 'mezu.snapshot.head';
/** Under NATS's default 1 MiB message limit, with room for headers. */
export const SNAPSHOT_CHUNK = 512 * 1024;
/** Chunk appends in flight while publishing (each waits for its acknowledgement). */
const IN_FLIGHT = 16;

export interface SnapshotHead {
  id: string;
  /** The journal sequence the snapshot holds everything up to. */
  seq: number;
  size: number;
  chunks: number;
  sha256: string;
  node: string;
  at: number;
}

async function ensureSnapshotStream(link: NatsLink, s: ReplicaSettings): Promise<void> {
  try {
    await link.jsm.streams.info(SNAPSHOT_STREAM);
    return;
  } catch (err) {
    if (!(err instanceof natsClient().js.JetStreamApiError) || err.code !== 10059) throw err;
  }
  try {
    // One message per subject: each chunk has its own subject, and only the newest head is kept.
    await link.jsm.streams.add({ name: SNAPSHOT_STREAM, subjects: ['mezu.snapshot.>'], storage: natsClient().js.StorageType.File, num_replicas: s.replicas, max_msgs_per_subject: 1 });
  } catch (err) {
    if (!(err instanceof natsClient().js.JetStreamApiError) || err.code !== 10058) throw err;
  }
}

/** The newest snapshot's head, or null when none was published. */
export async function latestSnapshot(link: NatsLink): Promise<SnapshotHead | null> {
  try {
    const m = await link.jsm.streams.getMessage(SNAPSHOT_STREAM, { last_by_subj: HEAD_SUBJECT });
    return m === null ? null : (m.json() as SnapshotHead);
  } catch (err) {
    // No snapshot stream (10059) or no head in it (10037): nothing to start from.
    if (err instanceof natsClient().js.JetStreamApiError && (err.code === 10059 || err.code === 10037)) return null;
    throw err;
  }
}

/**
 * Copies `root` (compacted) under `workDir`, publishes it, and purges the
 * snapshot it replaces. Returns the new head.
 */
export async function publishSnapshot(root: RootDatabase, link: NatsLink, s: ReplicaSettings, workDir: string): Promise<SnapshotHead> {
  // No extension: lmdb-js opens a path that has one as a file, not as a directory.
  const dir = join(workDir, `snapshot-${randomBytes(4).toString('hex')}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    await root.backup(dir, true);
    const file = join(dir, 'data.mdb');
    // The sequence the copy holds, read from the copy itself (the source moves on meanwhile).
    const copy = openEnv({ path: dir, readOnly: true });
    const seq = (openDb<number>(copy, 'replica').get('applied') ?? 0) as number;
    await copy.close();
    await ensureSnapshotStream(link, s);
    const previous = await latestSnapshot(link);
    const id = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
    const hash = createHash('sha256');
    let n = 0;
    const pending = new Set<Promise<unknown>>();
    for await (const chunk of createReadStream(file, { highWaterMark: SNAPSHOT_CHUNK })) {
      const b = chunk as Buffer;
      hash.update(b);
      const p = link.js.publish(`mezu.snapshot.${id}.${n++}`, b, { timeout: 10_000 });
      pending.add(p);
      void p.finally(() => pending.delete(p)).catch(() => undefined);
      if (pending.size >= IN_FLIGHT) await Promise.race(pending);
    }
    await Promise.all(pending);
    const head: SnapshotHead = { id, seq, size: statSync(file).size, chunks: n, sha256: hash.digest('hex'), node: s.node, at: Date.now() };
    await link.js.publish(HEAD_SUBJECT, JSON.stringify(head), { timeout: 10_000 });
    if (previous !== null) await link.jsm.streams.purge(SNAPSHOT_STREAM, { filter: `mezu.snapshot.${previous.id}.>` }).catch(() => undefined);
    return head;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fetches the newest snapshot into `storeDir/data.mdb` (which must not exist
 * yet). Returns its head, or null when there is none (the node replays the
 * journal from the start instead). A snapshot that does not check out (size,
 * chunk order, SHA-256) is refused, never installed.
 */
export async function fetchSnapshot(link: NatsLink, storeDir: string): Promise<SnapshotHead | null> {
  const head = await latestSnapshot(link);
  if (head === null) return null;
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  const tmp = join(storeDir, 'data.mdb.snapshot');
  const out = createWriteStream(tmp, { mode: 0o600 });
  const hash = createHash('sha256');
  let n = 0;
  let size = 0;
  try {
    if (head.chunks > 0) {
      const c = await link.js.consumers.get(SNAPSHOT_STREAM, { filter_subjects: `mezu.snapshot.${head.id}.>`, deliver_policy: natsClient().js.DeliverPolicy.All });
      // Bounded by bytes, far under a server's 64 MiB slow-consumer limit (link.ts PULL_BYTES).
      const msgs = await c.consume({ max_bytes: PULL_BYTES });
      try {
        for await (const m of msgs) {
          if (m.subject !== `mezu.snapshot.${head.id}.${n}`) throw new MezuError('MEZU_REPLICA_GAP', `replica: snapshot ${head.id} chunk ${n} is missing (got ${m.subject})`);
          hash.update(m.data);
          size += m.data.length;
          if (!out.write(m.data)) await once(out, 'drain');
          if (++n === head.chunks) break;
        }
      } finally {
        await msgs.close().catch(() => undefined);
      }
    }
    out.end();
    await once(out, 'close');
    if (n !== head.chunks || size !== head.size || hash.digest('hex') !== head.sha256) throw new MezuError('MEZU_REPLICA_GAP', `replica: snapshot ${head.id} does not check out (${n}/${head.chunks} chunks, ${size}/${head.size} bytes); not installed`);
    chmodSync(tmp, 0o600);
    renameSync(tmp, join(storeDir, 'data.mdb'));
    return head;
  } catch (err) {
    out.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
}
