/**
 * Replication of the store through NATS JetStream: many edge nodes, each
 * keeping LMDB as its local replica (docs/ARCHITECTURE.md, "Replication").
 * `journal.ts` captures a write and applies the stream, `link.ts` is the
 * JetStream connection, `replica.ts` the node's follower and staleness,
 * `settings.ts` where `--nats` is kept for every process of a node.
 */
export { Journal, MAX_ATTEMPTS, type JournalLink, type StreamEntry, type Op } from './journal.js';
export { Replica, PROBE_MS, type FollowHandle } from './replica.js';
export { NatsLink, JOURNAL_SUBJECT } from './link.js';
export { readSettings, writeSettings, parseServers, makeSettings, REPLICATION_FILE, ENV_NATS, ENV_NODE, DEFAULT_STALENESS_MS, DEFAULT_STREAM, type ReplicaSettings } from './settings.js';
export { publishSnapshot, fetchSnapshot, latestSnapshot, SNAPSHOT_STREAM, SNAPSHOT_CHUNK, type SnapshotHead } from './snapshot.js';
