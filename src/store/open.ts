/**
 * Opening the store: one LMDB environment under `DATA/store`, shared by every
 * process, with one typed store per record family over it. Every open makes
 * the files private (files.ts) and seals, under the current store key, any
 * secret still in clear or sealed under an older key (seal.ts).
 */
import { openEnv, openDb, type RootDatabase, type Database } from '../../native/lmdb.js';
import { systemClock, type Clock } from '../runtime/index.js';
import { MezuError } from '../errors/index.js';
import type {
  UserRecord,
  SessionRecord,
  ServiceAccountRecord,
  ApiKeyRecord,
  SigningKeyRecord,
  StoredConfig,
  CredentialRecord,
  LoginEventRecord,
  EmailTokenRecord,
  ThrottleRecord,
  OutboxRecord,
  AuditRecord,
  TunnelCaRecord,
  WarpgateRecord,
  TunnelStatusRecord,
  NodeRecord,
  TrafficRecord,
  FactorRecord,
  DeviceRecord,
  NetworkRecord,
} from './records.js';
import { FactorStore } from './factors.js';
import { DeviceStore } from './devices.js';
import { NetworkStore } from './networks.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StoreSealer, isSealed } from './seal.js';
import { compact, securePaths } from './files.js';
import { ConfigStore } from './config.js';
import { UserStore, CredentialStore } from './users.js';
import { SessionStore } from './sessions.js';
import { ServiceAccountStore } from './service-accounts.js';
import { SigningKeyStore, SecretStore } from './secrets.js';
import { LoginHistoryStore, EmailTokenStore, ThrottleStore, OutboxStore } from './login.js';
import { AuditStore } from './audit.js';
import { ChangeFeed, type ChangeRecord } from './changes.js';
import { TunnelCaStore, WarpgateStore, TunnelStatusStore, NodeStore } from './tunnels.js';
import { TrafficStore } from './traffic.js';
import { Replica, NatsLink, fetchSnapshot, readSettings, type ReplicaSettings, type SnapshotHead } from '../replicate/index.js';
import type { Log } from '../runtime/index.js';

/**
 * Databases that stay on their node when the store replicates: login
 * throttling (per node: a failed attempt never costs a cluster-wide write,
 * so an attacker cannot turn guessing into write load on every node; N
 * nodes allow N times the attempts, docs/SECURITY.md), the mail outbox (the
 * node that queued a mail sends it; replicated, every node would), each
 * worker's tunnel report (about this node's tunnels), and the traffic
 * figures of the Console's overview (this node's requests; replicated, every
 * node would write its minute ring to the stream every few seconds).
 */
export const LOCAL_DBS: ReadonlySet<string> = new Set(['throttle', 'outbox', 'tunnelStatus', 'traffic']);

export interface Store {
  readonly path: string;
  readonly config: ConfigStore;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly serviceAccounts: ServiceAccountStore;
  readonly signingKeys: SigningKeyStore;
  readonly credentials: CredentialStore;
  /** Second factors (TOTP, recovery codes, passkeys) per user; the TOTP secrets sealed at rest. */
  readonly factors: FactorStore;
  /** Devices (device cookies) each user has signed in with. */
  readonly devices: DeviceStore;
  /** Client networks (prefixes) each user has recently signed in from. */
  readonly networks: NetworkStore;
  readonly loginHistory: LoginHistoryStore;
  readonly emailTokens: EmailTokenStore;
  readonly throttle: ThrottleStore;
  readonly outbox: OutboxStore;
  readonly secrets: SecretStore;
  readonly audit: AuditStore;
  readonly tunnelCas: TunnelCaStore;
  readonly warpgates: WarpgateStore;
  readonly tunnelStatus: TunnelStatusStore;
  /** The tunnel endpoints the nodes of a replicated cluster advertise (empty on the single node). */
  readonly nodes: NodeStore;
  /** Each edge's traffic over the last hour, per minute (the Console's overview). */
  readonly traffic: TrafficStore;
  /**
   * The replica when this store replicates through NATS JetStream
   * (`edge --nats`, or DATA/replication.json): every write goes through its
   * journal. Null: the embedded single node, LMDB alone.
   */
  readonly replica: Replica | null;
  /** Changes that can take access away, in commit order (continuous authorization reads it). */
  readonly changes: ChangeFeed;
  /** Seals and opens the secrets kept here (seal.ts); `mezusphere store-key rotate` uses it. */
  readonly sealer: StoreSealer;
  /** Re-seals every sealed field not sealed under the current store key; returns how many changed. */
  reseal(): number;
  /** How many plain values (from a store written before sealing) this open sealed. */
  readonly sealedOnOpen: number;
  /**
   * Rewrites data.mdb without its free pages, then closes the store. Refused
   * while another process has the store open (`mezusphere store compact`).
   */
  compactAndClose(): Promise<{ before: number; after: number }>;
  close(): Promise<void>;
}

/** One kind of sealed value: where it lives and how to read and replace it in a record. */
interface SealedField {
  db: Database<unknown, string>;
  what: string;
  get(v: unknown): string;
  set(v: unknown, sealed: string): unknown;
}

function field<V>(db: Database<V, string>, what: string, get: (v: V) => string, set: (v: V, sealed: string) => V): SealedField {
  return { db: db as Database<unknown, string>, what, get: (v) => get(v as V), set: (v, x) => set(v as V, x) };
}

interface SealedDbs {
  signingKeys: Database<SigningKeyRecord, string>;
  tunnelCas: Database<TunnelCaRecord, string>;
  secrets: Database<string, string>;
  outbox: Database<OutboxRecord, string>;
  factors: Database<FactorRecord, string>;
}

function sealedFields(d: SealedDbs): SealedField[] {
  return [
    field(d.signingKeys, 'signing key', (v) => v.privateKeyPem, (v, x) => ({ ...v, privateKeyPem: x })),
    field(d.tunnelCas, 'tunnel CA key', (v) => v.key, (v, x) => ({ ...v, key: x })),
    field(d.secrets, 'secret', (v) => v, (_v, x) => x),
    field(d.outbox, 'outbox mail', (v) => v.text, (v, x) => ({ ...v, text: x })),
    // Absent secrets read as undefined and are skipped by the reseal pass.
    field(d.factors, 'TOTP secret', (v) => v.totp?.secret as string, (v, x) => ({ ...v, totp: v.totp === null ? null : { ...v.totp, secret: x } })),
    field(d.factors, 'pending TOTP secret', (v) => v.pending?.secret as string, (v, x) => ({ ...v, pending: v.pending === null ? null : { ...v.pending, secret: x } })),
  ];
}

/** The key id of any sealed value in the store, or null when nothing is sealed yet. */
function anySealed(fields: SealedField[]): string | null {
  for (const f of fields) {
    for (const { value } of f.db.getRange()) {
      const v = f.get(value);
      if (typeof v === 'string' && isSealed(v)) return v.split('.')[1] ?? '';
    }
  }
  return null;
}

/**
 * Seals under the current key every value that is not: plain values of a
 * store written before sealing existed (the migration on open), and values
 * sealed under an older key (a rotation, or one interrupted before it
 * finished). A read pass first, so an up-to-date store costs no write; then
 * one synchronous write transaction that re-checks each value (another
 * process may be doing the same).
 */
function resealFields(fields: SealedField[], sealer: StoreSealer): { total: number; plain: number } {
  sealer.reload();
  let n = 0;
  let plain = 0;
  for (const f of fields) {
    const stale: Array<{ key: string; was: string; sealed: string }> = [];
    for (const { key, value } of f.db.getRange()) {
      const v = f.get(value);
      if (typeof v !== 'string' || sealer.isCurrent(v)) continue;
      stale.push({ key, was: v, sealed: '' });
    }
    if (stale.length === 0) continue;
    for (const x of stale) x.sealed = sealer.seal(sealer.open(x.was, `${f.what} ${x.key}`));
    n += f.db.transactionSync(() => {
      let k = 0;
      for (const x of stale) {
        const cur = f.db.get(x.key);
        if (cur === undefined || f.get(cur) !== x.was) continue;
        void f.db.put(x.key, f.set(cur, x.sealed));
        if (!isSealed(x.was)) plain++;
        k++;
      }
      return k;
    });
  }
  return { total: n, plain };
}

/**
 * Opens (creating if needed) the store under `dataDir/store`. `clock` stamps
 * the changes the store makes itself (`updatedAt`, `revokedAt`, `appliedAt`,
 * a retired key's `retiredAt`); tests pass a manual one.
 */
export function openStore(dataDir: string, clock: Clock = systemClock, replication: ReplicaSettings | null | 'auto' = 'auto'): Store {
  const path = `${dataDir}/store`;
  const modes: Array<[string, number]> = [[dataDir, 0o700], [path, 0o700], [join(path, 'data.mdb'), 0o600], [join(path, 'lock.mdb'), 0o600]];
  let root: RootDatabase;
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    securePaths(modes);
    root = openEnv({ path });
    // Files LMDB just created got the umask's mode.
    securePaths(modes);
  } catch (err) {
    if (err instanceof MezuError) throw err;
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  // One handle per database, shared by the migration and the stores (one view of the shared msgpack structures).
  const dbs: SealedDbs = {
    signingKeys: openDb<SigningKeyRecord>(root, 'signingKeys'),
    tunnelCas: openDb<TunnelCaRecord>(root, 'tunnelCas'),
    secrets: openDb<string>(root, 'secrets'),
    outbox: openDb<OutboxRecord>(root, 'outbox'),
    factors: openDb<FactorRecord>(root, 'factors'),
  };
  const fields = sealedFields(dbs);
  let sealer: StoreSealer;
  let sealedOnOpen = 0;
  try {
    sealer = StoreSealer.open(dataDir, () => anySealed(fields), (p) => securePaths([[p, 0o600]]));
    sealedOnOpen = resealFields(fields, sealer).plain;
    if (sealedOnOpen > 0) {
      // Once, at the first open after an upgrade: the plain bytes stay in LMDB's free pages until reused.
      process.stderr.write(`store: sealed ${sealedOnOpen} private key(s) and secret(s) an older version kept in clear in ${path}; their old bytes can remain in free pages of data.mdb until reused: stop the edge and the Console, then run \`mezusphere store compact --data ${dataDir}\`\n`);
    }
  } catch (err) {
    void root.close();
    if (err instanceof MezuError) throw err;
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  // Every database by name, so the journal can route its writes (replicated mode only).
  const named = new Map<string, Database<unknown, string>>();
  const db = <V>(name: string, opened?: Database<V, string>): Database<V, string> => {
    const d = opened ?? openDb<V>(root, name);
    named.set(name, d as Database<unknown, string>);
    return d;
  };
  for (const [name, d] of Object.entries(dbs)) db(name, d as Database<unknown, string>);
  const changes = new ChangeFeed(db<ChangeRecord>('changes'), clock);
  let replica: Replica | null = null;
  try {
    const settings = replication === 'auto' ? readSettings(dataDir) : replication;
    if (settings !== null) replica = new Replica(root, openDb<number>(root, 'replica'), settings, path);
  } catch (err) {
    void root.close();
    throw err;
  }
  const stores = {
    config: new ConfigStore(db('config') as Database<StoredConfig | number, string>, clock),
    users: new UserStore(db<UserRecord>('users'), db<string>('usersByEmail'), clock, changes),
    sessions: new SessionStore(db<SessionRecord>('sessions'), db<string>('sessionsByUser'), clock, changes),
    serviceAccounts: new ServiceAccountStore(db<ServiceAccountRecord>('serviceAccounts'), db<ApiKeyRecord>('apiKeys'), clock, changes),
    credentials: new CredentialStore(db<CredentialRecord>('credentials'), clock),
    loginHistory: new LoginHistoryStore(db<LoginEventRecord>('loginEvents'), clock),
    emailTokens: new EmailTokenStore(db<EmailTokenRecord>('emailTokens'), clock),
    throttle: new ThrottleStore(db<ThrottleRecord>('throttle'), clock),
    audit: new AuditStore(db<AuditRecord>('audit'), clock),
    warpgates: new WarpgateStore(db<WarpgateRecord>('warpgates'), clock),
    tunnelStatus: new TunnelStatusStore(db<TunnelStatusRecord>('tunnelStatus'), clock),
    nodes: new NodeStore(db<NodeRecord>('nodes'), clock),
    devices: new DeviceStore(db<DeviceRecord>('devices'), clock),
    networks: new NetworkStore(db<NetworkRecord>('networks'), clock),
    traffic: new TrafficStore(db<TrafficRecord>('traffic'), clock),
  };
  const passkeyIds = db<string>('passkeyIds');
  if (replica !== null) for (const [name, d] of named) replica.journal.wrap(name, d, !LOCAL_DBS.has(name));
  return {
    path,
    changes,
    replica,
    ...stores,
    signingKeys: new SigningKeyStore(dbs.signingKeys, sealer, clock),
    factors: new FactorStore(dbs.factors, passkeyIds, sealer, clock),
    outbox: new OutboxStore(dbs.outbox, sealer, clock),
    secrets: new SecretStore(dbs.secrets, sealer),
    tunnelCas: new TunnelCaStore(dbs.tunnelCas, sealer, clock),
    sealer,
    reseal: () => resealFields(fields, sealer).total,
    sealedOnOpen,
    compactAndClose: () => compact(root, path),
    close: async () => {
      await replica?.close();
      await root.close();
    },
  };
}

/**
 * A new node's first start (`edge --nats` on a data directory with no store
 * yet): installs the newest snapshot published to JetStream (src/replicate/
 * snapshot.ts) as its store, then empties the databases that belong to the
 * node that took it (LOCAL_DBS). The node then catches up from the
 * snapshot's sequence like any restart. Returns the snapshot's head, or null
 * when there is none or the store exists (the journal is replayed instead).
 */
export async function bootstrapReplica(dataDir: string, settings: ReplicaSettings, log: Log): Promise<SnapshotHead | null> {
  const path = `${dataDir}/store`;
  if (existsSync(join(path, 'data.mdb'))) return null;
  const link = await NatsLink.open(settings, log, `mezusphere ${settings.node} bootstrap`);
  let head: SnapshotHead | null;
  try {
    head = await fetchSnapshot(link, path);
  } finally {
    await link.close();
  }
  if (head === null) return null;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const root = openEnv({ path });
  try {
    for (const name of LOCAL_DBS) openDb(root, name).clearSync();
  } finally {
    await root.close();
  }
  return head;
}
