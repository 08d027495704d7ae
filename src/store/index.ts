/**
 * The store: one typed store per record family over the shared LMDB
 * environment (`open.ts` opens it): config, users and their passwords,
 * sessions, service accounts and keys, the edge's secrets, what the hosted
 * pages keep, the audit log and the tunnels' records. Every record store is a
 * `Table` (`table.ts`: get, the request path's read, the batched sweep).
 * Nothing here caches records in process memory: a revocation written by one
 * process is seen by every other on its next read. test/unit/store/contract.ts
 * is the behaviour any implementation of `Store` must keep.
 */
export * from './records.js';
export { openStore, bootstrapReplica, LOCAL_DBS, type Store } from './open.js';
export { ConfigStore } from './config.js';
export { UserStore, CredentialStore } from './users.js';
export { SessionStore } from './sessions.js';
export { ServiceAccountStore } from './service-accounts.js';
export { SigningKeyStore, SecretStore } from './secrets.js';
export { LoginHistoryStore, EmailTokenStore, ThrottleStore, OutboxStore } from './login.js';
export { AuditStore, auditKey } from './audit.js';
export { FactorStore, type FactorSummary } from './factors.js';
export { DeviceStore } from './devices.js';
export { NetworkStore, NETWORKS_KEPT } from './networks.js';
export { ChangeFeed, FEED_KEEP_MS, type ChangeKind, type ChangeRecord, type FeedRead } from './changes.js';
export { TunnelCaStore, WarpgateStore, TunnelStatusStore, NodeStore, NODE_REFRESH_MS, NODE_STALE_MS, type TunnelCaPublic } from './tunnels.js';
export { TrafficStore } from './traffic.js';
export { Table, SealedTable, SWEEP_BATCH } from './table.js';
export { StoreSealer, ENV_STORE_KEY, STORE_KEY_FILE, isSealed } from './seal.js';
